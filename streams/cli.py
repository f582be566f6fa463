"""The ``billwise`` command line (names are stable: ARCHITECTURE.md lists them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from streams.brokers import BrokerEngine
from streams.demo_defaults import DEFAULT_DAYS, DEFAULT_PATIENTS, DEFAULT_REPORT, DEFAULT_SEED

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Billwise: streaming decisions for patient billing."
)
schema_app = typer.Typer(no_args_is_help=True, help="The contract's JSON Schemas.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail.")
llm_app = typer.Typer(no_args_is_help=True, help="The self-hosted language model (vLLM, GPU hosts).")
connector_app = typer.Typer(no_args_is_help=True, help="Platform connectors for the engine's write-backs.")
app.add_typer(schema_app, name="schema")
app.add_typer(connector_app, name="connector")
app.add_typer(audit_app, name="audit")
app.add_typer(llm_app, name="llm")


@app.command()
def worker(web_port: Annotated[int, typer.Option(help="HTTP port for /health and /metrics")] = 6066) -> None:
    """Run the engine (a Faust worker) against KAFKA_BOOTSTRAP_SERVERS."""
    import asyncio

    from streams.app import Engine, faust_worker
    from streams.gc_tuning import tune_garbage_collector, watch_garbage_collector
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    settings = StreamSettings(web_port=web_port)
    asyncio.run(ensure_topics(settings))
    engine = Engine(settings)
    tune_garbage_collector(settings.gc_gen0_threshold)
    watch_garbage_collector()
    # JSON lines on stderr, with a filter that redacts anything that looks like patient data.
    faust_worker(engine.app).execute_from_commandline()


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
    from inference.drafting import Drafter
    from rules.policy import load_policy
    from streams.offline import decide_lines
    from streams.settings import StreamSettings

    prefix = StreamSettings().topic_prefix
    source = sys.stdin.buffer if str(events) == "-" else events.open("rb")
    with source:
        outputs = decide_lines(source, load_policy(policy), prefix=prefix, drafter=Drafter.from_env())
    for output in outputs:
        sys.stdout.write(json.dumps(output.as_line(prefix), separators=(",", ":")) + "\n")


@app.command()
def replay(
    policy: Annotated[Path, typer.Option(help="the policy to try", exists=True, dir_okay=False)],
    events: Annotated[Path, typer.Option(help="canonical events as JSON lines", exists=True, dir_okay=False)],
    json_output: Annotated[bool, typer.Option("--json", help="print the diff as one JSON object")] = False,
) -> None:
    """What POLICY would have decided on EVENTS, against the current policy (BILLWISE_POLICY or shipped)."""
    from rules.policy import load_policy
    from rules.replay import as_dict
    from rules.replay import replay as replay_events

    with events.open("rb") as lines:
        diff = replay_events(lines, load_policy(), load_policy(policy))
    typer.echo(json.dumps(as_dict(diff)) if json_output else diff.render())


@app.command()
def demo(
    patients: Annotated[
        int, typer.Option(min=1, help="simulated patients (guarantor accounts)")
    ] = DEFAULT_PATIENTS,
    days: Annotated[
        int, typer.Option(min=1, help="simulated days, streamed one day at a time")
    ] = DEFAULT_DAYS,
    seed: Annotated[
        int, typer.Option(help="simulator seed (the baseline runs on the same one)")
    ] = DEFAULT_SEED,
    report: Annotated[
        Path, typer.Option(help="where to write the self-contained HTML report")
    ] = DEFAULT_REPORT,
    broker: Annotated[
        BrokerEngine,
        typer.Option(help="local broker when KAFKA_BOOTSTRAP_SERVERS is unset (apache answers faster)"),
    ] = BrokerEngine.TANSU,
    events: Annotated[
        Path | None,
        typer.Option(help="stream this file of canonical events instead of the simulation (no KPIs)"),
    ] = None,
) -> None:
    """Embedded broker + worker + a simulated practice, against a fixed-cadence baseline; HTML report."""
    from streams.demo import run_demo

    raise typer.Exit(run_demo(patients, days, seed, report, broker=broker, events=events))


@app.command()
def bench(
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    events: Annotated[int, typer.Option(help="simulated events per throughput run")] = 20_000,
    broker: Annotated[
        BrokerEngine, typer.Option(help="broker to start when KAFKA_BOOTSTRAP_SERVERS is unset")
    ] = (BrokerEngine.APACHE),
    latency_rate: Annotated[int, typer.Option(help="events per second for the latency run")] = 1_000,
    drafting: Annotated[
        bool, typer.Option(help="also run the engine drafting through a slow stub model")
    ] = True,
) -> None:
    """Throughput and latency against baselines measured in the same run."""
    from streams.bench import BenchConfig, run_bench

    result = run_bench(
        BenchConfig(events=events, broker=broker, latency_rate=latency_rate, drafting=drafting)
    )
    if json_output:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"billwise bench on {result['broker']} ({result['events']} simulated events)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key not in ("config", "broker", "events", "gates", "drafting", "gc_pauses"):
            table.add_row(key, str(value))
    for generation, pauses in result["gc_pauses"].items():
        table.add_row(f"gc_pauses.generation_{generation}", ", ".join(f"{k} {v}" for k, v in pauses.items()))
    for section in ("gates", "drafting"):
        for key, value in (result.get(section) or {}).items():
            table.add_row(f"{section}.{key}", str(value))
    Console().print(table)


@app.command()
def adapt(
    platform: Annotated[str, typer.Argument(help="drchrono, tebra, advancedmd, carecloud, fhir or x12-835")],
    file: Annotated[Path, typer.Argument(help="a native payload file", exists=True, dir_okay=False)],
) -> None:
    """Map a platform payload file to canonical events, printed as JSON lines (CloudEvents)."""
    from schemas.adapters import PLATFORMS, AdapterError
    from schemas.adapters import adapt as adapt_payload

    if platform not in PLATFORMS:
        typer.echo(f"unknown platform {platform!r}; one of: {', '.join(PLATFORMS)}", err=True)
        raise typer.Exit(2)
    try:
        events = adapt_payload(platform, file.read_bytes(), source=f"{platform}/{file.name}")
    except AdapterError as exc:
        where = f" at {exc.path}" if exc.path else ""
        typer.echo(f"cannot map {file}{where}: {exc}", err=True)
        raise typer.Exit(1) from None
    for event in events:
        sys.stdout.write(event.model_dump_json(exclude_none=True) + "\n")


@app.command()
def evaluate(
    events: Annotated[int, typer.Option(help="simulated events to validate on")] = 20_000,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 7,
) -> None:
    """Model quality on the simulator against the oracle, as JSON."""
    from models.evaluate import evaluate as evaluate_models

    typer.echo(json.dumps(evaluate_models(events=events, seed=seed)))


@llm_app.command("serve")
def llm_serve(
    model: Annotated[str, typer.Option(help="Hugging Face model id (a small instruct model)")] = (
        "Qwen/Qwen2.5-1.5B-Instruct"
    ),
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the OpenAI-compatible API")] = 8000,
    max_model_len: Annotated[int, typer.Option(help="context length")] = 4096,
    backend: Annotated[
        str, typer.Option(help="structured-output backend: auto, xgrammar, guidance")
    ] = "xgrammar",
) -> None:
    """Start vLLM's OpenAI-compatible server with the settings drafting needs (needs vllm and a GPU)."""
    from inference.serve import build_vllm_command, run_vllm

    command = build_vllm_command(model, port, max_model_len, host=host, structured_output_backend=backend)
    raise typer.Exit(run_vllm(command))


@connector_app.command("drchrono")
def connector_drchrono(
    base_url: Annotated[str, typer.Option(help="DrChrono API root")] = "https://app.drchrono.com",
    doctor: Annotated[
        int | None, typer.Option(help="doctor id for accounts whose practice_id names none")
    ] = None,
    ledger: Annotated[Path, typer.Option(help="SQLite file of applied action ids")] = Path(
        "billwise-drchrono-ledger.sqlite"
    ),
    all_accounts: Annotated[
        bool, typer.Option(help="apply every write-back, not only accounts mapped from DrChrono")
    ] = False,
) -> None:
    """Apply platform_update actions from the actions topic to DrChrono (token in DRCHRONO_ACCESS_TOKEN)."""
    import asyncio
    import contextlib
    import os

    from streams.connectors.drchrono import DrChronoConnector, Ledger, run
    from streams.settings import StreamSettings

    token = os.environ.get("DRCHRONO_ACCESS_TOKEN", "")
    if not token:
        typer.echo("DRCHRONO_ACCESS_TOKEN is not set", err=True)
        raise typer.Exit(2)
    settings = StreamSettings()
    connector = DrChronoConnector(base_url, token, default_doctor=doctor, ledger=Ledger(ledger))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            counts = asyncio.run(
                run(
                    settings.kafka_bootstrap_servers,
                    settings.topic_prefix,
                    connector,
                    platform="" if all_accounts else "drchrono",
                )
            )
            typer.echo(json.dumps(counts))
    finally:
        connector.close()


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
