"""``billwise demo``: the embedded broker, a worker and a sample practice's events, end to end.

Starts Tansu (memory-only) unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster, starts a worker in a
child process, streams the events, reads what the engine wrote to every output topic and prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas.audit import verify_chain
from streams.brokers import BrokerEngine, free_port, start_broker
from streams.kafka_io import Record, produce_events, read_topics
from streams.settings import StreamSettings
from streams.worker_process import start_worker

SAMPLE_EVENTS = Path(__file__).parent / "sample_events.jsonl"


@contextlib.contextmanager
def _bootstrap(console: Console, settings: StreamSettings, data_dir: Path) -> Iterator[str]:
    """The cluster to use: the configured one if the environment names it, else embedded Tansu."""
    import os

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield settings.kafka_bootstrap_servers
        return
    with console.status("starting the embedded Tansu broker (memory-only)"):
        broker = start_broker(BrokerEngine.TANSU, free_port(), data_dir=data_dir / "broker")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def run_demo(events_path: Path | None = None, console: Console | None = None) -> int:
    """Run the demo; returns the exit code (0 when every output arrived and the audit chain holds)."""
    console = console or Console()
    settings = StreamSettings()
    lines = (events_path or SAMPLE_EVENTS).read_bytes().splitlines()
    events: list[dict[str, Any] | bytes] = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append(line)
    with tempfile.TemporaryDirectory(prefix="billwise-demo-") as scratch:
        data_dir = Path(scratch)
        with _bootstrap(console, settings, data_dir) as bootstrap:
            web_port = free_port()
            with console.status("starting the worker"):
                started = time.monotonic()
                worker = start_worker(
                    bootstrap,
                    web_port,
                    log_path=data_dir / "worker.log",
                    env={"BILLWISE_STORE": "memory://", "BILLWISE_DATA_DIR": str(data_dir / "worker")},
                )
                ready_s = time.monotonic() - started
            console.print(f"worker ready in {ready_s:.1f} s; metrics at http://127.0.0.1:{web_port}/metrics")
            with worker:
                asyncio.run(produce_events(bootstrap, settings.topic("events"), events))
                console.print(f"streamed {len(events)} events to {settings.topic('events')}")
                with console.status("reading the engine's outputs"):
                    topics = [settings.topic(name) for name in ("actions", "review", "audit", "dlq")]
                    records = asyncio.run(read_topics(bootstrap, topics, idle_timeout_s=4.0))
    return _report(console, settings, records)


def _report(console: Console, settings: StreamSettings, records: list[Record]) -> int:
    by_topic: dict[str, list[Record]] = {}
    for record in records:
        by_topic.setdefault(record.topic, []).append(record)
    table = Table(title="Actions (billing.actions and billing.review)")
    for column in ("topic", "account", "kind", "channel", "not before (UTC)", "review reasons", "message"):
        table.add_column(column, overflow="fold")
    for name in ("actions", "review"):
        for record in by_topic.get(settings.topic(name), []):
            action = record.value
            message = " ".join((action.get("message") or {}).get("body", "").split())
            table.add_row(
                name,
                record.key or "",
                action["kind"],
                action["channel"],
                action["not_before"],
                ", ".join(action["review"]["reasons"]),
                message[:90] + ("…" if len(message) > 90 else ""),
            )
    console.print(table)
    audit = [record.value for record in by_topic.get(settings.topic("audit"), [])]
    dead = by_topic.get(settings.topic("dlq"), [])
    for record in dead:
        error = record.value["error"]
        console.print(f"[yellow]dead letter[/]: {error['type']} at {error.get('path')}: {error['message']}")
    problem = verify_chain(audit)
    chain = "intact" if problem is None else f"BROKEN at {problem.audit_id} ({problem.reason})"
    console.print(f"audit records: {len(audit)}, hash chain {chain}")
    actions = sum(len(by_topic.get(settings.topic(name), [])) for name in ("actions", "review"))
    return 0 if problem is None and actions > 0 else 1
