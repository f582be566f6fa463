"""The walking skeleton through a real broker: events in, actions, audit and dead letters out.

The same events through ``billwise decide`` (offline) give the same actions as through Kafka.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rules.policy import load_policy
from rules.usecases import SCAN_EVENT_TYPE
from schemas.audit import verify_chain
from streams.commands import partition_of
from streams.kafka_io import Record, produce_events, read_topics
from streams.offline import decide_lines
from tests.integration.conftest import RunningEngine
from tests.samples import later_payment

pytestmark = [pytest.mark.broker]

SAMPLE = Path("streams/sample_events.jsonl")


def _sample() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if '"sample-bad"' not in line]


def _malformed(template: dict) -> list[bytes | dict]:
    """One of each kind of bad input the issue names, all keyed to a real account."""
    wrong_type = json.loads(json.dumps(template))
    wrong_type["data"]["balance_due"] = {"not": "money"}
    unknown = json.loads(json.dumps(template))
    unknown["type"] = "billing.invoice.exploded"
    three_places = json.loads(json.dumps(template))
    three_places["id"] = "three-places"
    three_places["data"]["balance_due"] = "10.555"
    return [b'{"specversion": "1.0", "id": ', wrong_type, unknown, three_places]


def _outputs(engine: RunningEngine, expected: int) -> list[Record]:
    topics = [engine.topic(name) for name in ("actions", "review", "audit", "dlq")]
    bootstrap = engine.settings.kafka_bootstrap_servers
    return asyncio.run(read_topics(bootstrap, topics, until=expected, overall_timeout_s=90))


@pytest.mark.smoke
def test_events_become_actions_and_audit_records_and_bad_input_is_dead_lettered(
    engine: RunningEngine,
) -> None:
    events = _sample()
    statement = next(e for e in events if e["type"] == "billing.statement.generated")
    late_statement = json.loads(json.dumps(statement))
    late_statement["id"] = "after-the-poison"
    late_statement["data"]["statement_id"] = "STM-late"
    # Weeks later one account pays: the others have no event that day, only the daily-scan timer.
    weeks_later = later_payment(days=40)
    stream: list[bytes | dict] = [*events, statement, *_malformed(statement), late_statement, weeks_later]
    bootstrap = engine.settings.kafka_bootstrap_servers
    asyncio.run(produce_events(bootstrap, engine.topic("events"), stream))

    # What the offline core makes of the same sequence is what the stream must write.
    lines = [e if isinstance(e, bytes) else json.dumps(e).encode() for e in stream]
    offline = [
        o.as_line(engine.settings.topic_prefix) for o in decide_lines(lines, load_policy(), learning=False)
    ]
    records = _outputs(engine, expected=len(offline))

    def actions(items: list[tuple[str, dict]]) -> dict[str, dict]:
        return {
            value["action_id"]: value for topic, value in items if topic.endswith((".actions", ".review"))
        }

    streamed = [(r.topic, r.value) for r in records]
    assert actions(streamed) == actions([(o["topic"], o["value"]) for o in offline])
    assert len(actions(streamed)) == sum(
        1 for topic, _ in streamed if topic.endswith((".actions", ".review"))
    )

    # The timer scanned accounts that had no event of their own in those weeks.
    last_sample_day = max(event["time"][:10] for event in events)
    scanned = {
        value["account_id"]
        for value in actions(streamed).values()
        if value["trigger"]["type"] == SCAN_EVENT_TYPE
        and value["trigger"]["event_id"] > f"scan-{last_sample_day}"
    }
    assert scanned and weeks_later["data"]["account_id"] not in scanned

    # The redelivered statement yields no second action; the one after the poison pill is decided.
    triggers = [value["trigger"]["event_id"] for value in actions(streamed).values()]
    assert triggers.count(statement["id"]) == 1
    assert "after-the-poison" in triggers

    dead = [value for topic, value in streamed if topic.endswith(".dlq")]
    assert sorted(letter["error"]["type"] for letter in dead) == [
        "invalid_json",
        "unknown_event_type",
        "validation_error",
        "validation_error",
    ]
    assert {letter["error"]["path"] for letter in dead if letter["error"]["type"] == "validation_error"} == {
        "data.balance_due"
    }
    assert all(letter["source_topic"] == engine.topic("events") for letter in dead)

    audit = [r for r in records if r.topic.endswith(".audit")]
    assert audit, "every decision writes an audit record"
    assert all(r.key == r.value["account_id"] for r in audit)
    assert verify_chain(r.value for r in audit) is None

    # Every state is filed under its account's partition, the timer's scans included (one request names
    # several accounts): a restarted or rebalanced worker recovers a partition's accounts from it alone.
    changelog = asyncio.run(read_topics(bootstrap, [f"{engine.settings.app_id}-accounts-changelog"]))
    assert {r.key for r in changelog} >= scanned
    assert all(r.partition == partition_of(r.key or "", engine.settings.partitions) for r in changelog)


def test_every_record_of_bursty_input_is_taken_once(engine: RunningEngine) -> None:
    """Records that arrive while a batch is being decided belong to the next batch, each exactly once.

    Bursts with pauses longer than the batch window make batches close on time while the next burst
    is already arriving and account states are being written. Every burst pairs a patient update
    (which writes state) with an unknown event type for the same account (which must be
    dead-lettered): a record paired with the wrong event shows as a missing or repeated dead letter.
    """
    patient = next(e for e in _sample() if e["type"] == "billing.patient.updated")
    bursts, accounts = 25, 24

    def burst(number: int) -> list[bytes | dict]:
        records: list[bytes | dict] = []
        for index in range(accounts):
            update = json.loads(json.dumps(patient))
            update["id"] = f"update-{number}-{index}"
            update["data"]["account_id"] = update["subject"] = f"ACC-BURST-{index}"
            unknown = json.loads(json.dumps(update))
            unknown["id"] = f"unknown-{number}-{index}"
            unknown["type"] = "billing.burst.unknown"
            records += [update, unknown]
        return records

    bootstrap, dlq = engine.settings.kafka_bootstrap_servers, [engine.topic("dlq")]

    async def produce_in_bursts() -> None:
        for number in range(bursts):
            await produce_events(bootstrap, engine.topic("events"), burst(number))
            await asyncio.sleep(0.1)

    asyncio.run(produce_in_bursts())
    expected = sorted(f"unknown-{number}-{index}" for number in range(bursts) for index in range(accounts))
    asyncio.run(read_topics(bootstrap, dlq, until=len(expected), overall_timeout_s=120))
    # Then everything there is, once nothing new has come for a while: a repeat must have time to show.
    dead = asyncio.run(read_topics(bootstrap, dlq, idle_timeout_s=3.0))
    taken = [(letter.value["partition"], letter.value["offset"]) for letter in dead]
    raw_ids = sorted(json.loads(letter.value["raw"])["id"] for letter in dead)
    assert len(taken) == len(set(taken)), "a record was taken twice"
    assert raw_ids == expected
