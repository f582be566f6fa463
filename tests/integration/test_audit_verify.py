"""``billwise audit verify`` on a real broker: intact after a real run; a tampered, a deleted and a
reordered record are each found (first break, with the record's id and account) in crafted topics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.audit import GENESIS_HASH, Actor, AuditDraft, AuditRecord, record_hash, seal
from streams.audit_reader import verify_topic
from streams.kafka_io import produce_events, read_topics
from streams.settings import StreamSettings
from streams.topics import ensure_topics
from tests.integration.conftest import RunningEngine

pytestmark = [pytest.mark.broker]

SAMPLE = Path("streams/sample_events.jsonl")
Json = dict[str, Any]


def cli_verify(settings: StreamSettings) -> subprocess.CompletedProcess[str]:
    """``billwise audit verify`` as an operator runs it, against ``settings``' broker and prefix."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "BILLWISE_TOPIC_PREFIX": settings.topic_prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "streams", "audit", "verify", "--timeout-s", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- a real run -------------------------------------------------------------------------------------


def test_verify_passes_on_a_real_runs_audit_topic(engine: RunningEngine) -> None:
    events = [json.loads(line) for line in SAMPLE.read_text().splitlines() if '"sample-bad"' not in line]
    bootstrap = engine.settings.kafka_bootstrap_servers
    asyncio.run(produce_events(bootstrap, engine.topic("events"), events))
    # Wait until the engine has written its audit records (at least one per account).
    accounts = {event["data"]["account_id"] for event in events}
    records = asyncio.run(
        read_topics(bootstrap, [engine.topic("audit")], until=len(accounts), overall_timeout_s=90)
    )
    assert {record.key for record in records} == accounts

    problem, count = asyncio.run(verify_topic(engine.settings, idle_timeout_s=2.0))
    assert problem is None
    assert count >= len(records)
    result = cli_verify(engine.settings)
    assert result.returncode == 0, result.stderr
    assert "audit trail intact" in result.stdout


# -- crafted chains on fresh topics -----------------------------------------------------------------

T0 = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)


def chain(account_id: str, length: int) -> list[AuditRecord]:
    """A valid chain of ``length`` records for one account, as the engine would write it."""
    records: list[AuditRecord] = []
    head = GENESIS_HASH
    for n in range(length):
        record = seal(
            AuditDraft(
                audit_id=f"aud-{account_id}-{n}",
                at=T0 + timedelta(minutes=n),
                account_id=account_id,
                actor=Actor(type="engine", id="billwise"),
                kind="decision" if n % 2 else "review_requested",
                action_id=f"act-{account_id}-{n}",
                event_id=f"evt-{account_id}-{n}",
                policy_version="test-1",
                details={"kind": "payment_reminder", "gates": ["G-QUIET-HOURS"], "n": n},
            ),
            head,
        )
        head = record.hash
        records.append(record)
    return records


async def _produce(bootstrap: str, topic: str, values: Iterable[Json]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            # One at a time: the order on the partition is the order of the (possibly broken) chain.
            await producer.send_and_wait(
                topic, key=value["account_id"].encode(), value=json.dumps(value).encode()
            )
    finally:
        await producer.stop()


def audit_topic_with(kafka_bootstrap: str, values: list[Json]) -> StreamSettings:
    """A fresh prefix whose audit topic holds exactly ``values``, in order."""
    settings = StreamSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"av{uuid.uuid4().hex[:8]}", partitions=4
    )
    asyncio.run(ensure_topics(settings, ("audit",)))
    asyncio.run(_produce(kafka_bootstrap, settings.topic("audit"), values))
    return settings


def dumped(records: Iterable[AuditRecord]) -> list[Json]:
    return [record.model_dump(mode="json") for record in records]


@pytest.fixture
def chains() -> tuple[list[Json], list[Json]]:
    """Two accounts' chains of five records each."""
    return dumped(chain("ACC-A", 5)), dumped(chain("ACC-B", 5))


def interleave(a: list[Json], b: list[Json]) -> list[Json]:
    return [record for pair in zip(a, b, strict=True) for record in pair]


def test_verify_passes_on_intact_chains_and_redeliveries(
    kafka_bootstrap: str,
    chains: tuple[list[Json], list[Json]],
) -> None:
    a, b = chains
    # At-least-once delivery: a record written twice is the same record, not a break.
    settings = audit_topic_with(kafka_bootstrap, [*interleave(a, b), a[-1]])
    problem, count = asyncio.run(verify_topic(settings, idle_timeout_s=2.0))
    assert problem is None
    assert count == 11
    assert cli_verify(settings).returncode == 0


def test_verify_detects_a_tampered_record(
    kafka_bootstrap: str,
    chains: tuple[list[Json], list[Json]],
) -> None:
    a, b = chains
    tampered = json.loads(json.dumps(a[2]))
    tampered["details"]["gates"] = []  # someone hides a gate that fired, and keeps the old hash
    settings = audit_topic_with(kafka_bootstrap, interleave([*a[:2], tampered, *a[3:]], b))
    problem, _ = asyncio.run(verify_topic(settings, idle_timeout_s=2.0))
    assert problem is not None
    assert (problem.reason, problem.audit_id, problem.account_id) == ("tampered", "aud-ACC-A-2", "ACC-A")

    # Re-hashing the tampered record does not help: the next record's link no longer matches.
    rehashed = {k: v for k, v in tampered.items() if k != "hash"}
    rehashed["hash"] = record_hash(rehashed)
    settings = audit_topic_with(kafka_bootstrap, [*a[:2], rehashed, *a[3:]])
    problem, _ = asyncio.run(verify_topic(settings, idle_timeout_s=2.0))
    assert problem is not None
    assert (problem.reason, problem.audit_id) == ("broken_link", "aud-ACC-A-3")

    result = cli_verify(settings)
    assert result.returncode == 1
    assert "aud-ACC-A-3" in result.stderr and "broken_link" in result.stderr


def test_verify_detects_a_deleted_record(
    kafka_bootstrap: str,
    chains: tuple[list[Json], list[Json]],
) -> None:
    a, b = chains
    without_b1 = [b[0], b[2], b[3], b[4]]
    settings = audit_topic_with(kafka_bootstrap, [*interleave(a[:4], without_b1), a[4]])
    problem, _ = asyncio.run(verify_topic(settings, idle_timeout_s=2.0))
    assert problem is not None
    assert (problem.reason, problem.audit_id, problem.account_id) == ("broken_link", "aud-ACC-B-2", "ACC-B")


def test_verify_detects_a_deleted_first_record(
    kafka_bootstrap: str,
    chains: tuple[list[Json], list[Json]],
) -> None:
    a, _ = chains
    settings = audit_topic_with(kafka_bootstrap, a[1:])
    problem, _ = asyncio.run(verify_topic(settings, idle_timeout_s=2.0))
    assert problem is not None
    assert (problem.reason, problem.audit_id) == ("broken_link", "aud-ACC-A-1")


def test_verify_detects_a_reordered_record(
    kafka_bootstrap: str,
    chains: tuple[list[Json], list[Json]],
) -> None:
    a, b = chains
    swapped = [a[0], a[1], a[3], a[2], a[4]]
    settings = audit_topic_with(kafka_bootstrap, interleave(swapped, b))
    problem, _ = asyncio.run(verify_topic(settings, idle_timeout_s=2.0))
    assert problem is not None
    assert (problem.reason, problem.audit_id, problem.account_id) == ("broken_link", "aud-ACC-A-3", "ACC-A")
    result = cli_verify(settings)
    assert result.returncode == 1
    assert "aud-ACC-A-3" in result.stderr
