"""The ``billwise`` command line (names are stable: ARCHITECTURE.md lists them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from streams.brokers import BrokerEngine

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Billwise: streaming decisions for patient billing."
)
schema_app = typer.Typer(no_args_is_help=True, help="The contract's JSON Schemas.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail.")
app.add_typer(schema_app, name="schema")
app.add_typer(audit_app, name="audit")


@app.command()
def worker(web_port: Annotated[int, typer.Option(help="HTTP port for /health and /metrics")] = 6066) -> None:
    """Run the engine (a Faust worker) against KAFKA_BOOTSTRAP_SERVERS."""
    import asyncio

    import faust

    from streams.app import Engine
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    settings = StreamSettings(web_port=web_port)
    asyncio.run(ensure_topics(settings))
    engine = Engine(settings)
    faust.Worker(engine.app, loglevel="info").execute_from_commandline()


@app.command()
def broker(
    engine: Annotated[
        BrokerEngine, typer.Option(help="tansu (embedded, memory-only) or apache (Kafka 4, KRaft)")
    ] = (BrokerEngine.TANSU),
    port: Annotated[int, typer.Option(help="listener port")] = 9092,
) -> None:
    """Run a local broker in the foreground."""
    from streams.brokers import run_broker_foreground

    raise typer.Exit(run_broker_foreground(engine, port))


@app.command()
def decide(
    events: Annotated[
        Path, typer.Option(help="canonical events as JSON lines; - for stdin", allow_dash=True)
    ],
    policy: Annotated[
        Path | None, typer.Option(help="policy file (default: BILLWISE_POLICY or shipped)")
    ] = None,
) -> None:
    """Run the decision core offline and print every output as one JSON object a line."""
    from rules.policy import load_policy
    from streams.offline import decide_lines
    from streams.settings import StreamSettings

    prefix = StreamSettings().topic_prefix
    source = sys.stdin.buffer if str(events) == "-" else events.open("rb")
    with source:
        for output in decide_lines(source, load_policy(policy)):
            sys.stdout.write(json.dumps(output.as_line(prefix), separators=(",", ":")) + "\n")


@app.command()
def demo(
    events: Annotated[
        Path | None, typer.Option(help="events to stream (default: the shipped sample)")
    ] = None,
) -> None:
    """Embedded broker + worker + a sample practice's events; prints the resulting actions."""
    from streams.demo import run_demo

    raise typer.Exit(run_demo(events))


@schema_app.command("export")
def schema_export(
    check: Annotated[bool, typer.Option(help="fail if schemas/json/ is stale")] = False,
) -> None:
    """Write (or check) the JSON Schemas under schemas/json/."""
    from schemas.export import SCHEMA_DIR, drift, export

    if check:
        stale = drift()
        if stale:
            typer.echo(f"schemas/json/ is stale: {', '.join(stale)}; run `billwise schema export`", err=True)
            raise typer.Exit(1)
        typer.echo(f"schemas/json/ matches the models ({SCHEMA_DIR})")
        return
    for path in export():
        typer.echo(f"wrote {path}")


@audit_app.command("verify")
def audit_verify(
    timeout_s: Annotated[float, typer.Option(help="stop reading after this long without new records")] = 5.0,
) -> None:
    """Re-check the audit hash chain on the audit topic."""
    import asyncio

    from streams.audit_reader import verify_topic

    problem, count = asyncio.run(verify_topic(idle_timeout_s=timeout_s))
    if problem is None:
        typer.echo(f"audit trail intact: {count} records")
        return
    typer.echo(
        f"audit trail broken at record {problem.index} ({problem.audit_id}, account {problem.account_id}): "
        f"{problem.reason}",
        err=True,
    )
    raise typer.Exit(1)
