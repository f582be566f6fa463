"""Fuzzing every inbound topic in-process: malformed inputs are dead-lettered, nothing raises.

The ingest path of the worker (the same code the Faust agent calls) gets hypothesis-generated records
on each topic it reads (``events``, ``review.decisions``, ``access``, ``outcomes``) and the platform
adapter path (`streams.platform_ingress.adapt_record`) gets them on every ``platform.*`` topic:

* random bytes, random JSON values, and valid records with one field replaced by a random JSON value;
* every record must come out either decided (contract outputs) or as exactly one dead letter that names
  its source topic, partition and offset; a record that does not parse is always dead-lettered;
* nothing raises, and a dead-lettered record leaves the account's state as it was.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.policy import load_policy
from schemas.adapters import PLATFORMS
from schemas.events import InvalidEvent, parse_event
from streams.ingest import InputRecord
from streams.platform_ingress import adapt_record
from tests.faults.harness import DEEP_NESTING, _batch_processor

PREFIX = "billing"
INBOUND = ("events", "review.decisions", "access", "outcomes")
CANONICAL = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "fixtures" / "canonical" / "one_of_each.jsonl")
    .read_text()
    .splitlines()
    if line.strip()
]
RECEIVED = datetime(2026, 3, 1, tzinfo=UTC)
FUZZ = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_process = _batch_processor(load_policy(), PREFIX)


def run(records: list[InputRecord], states: dict[str, Any] | None = None) -> list[Any]:
    return asyncio.run(_process(records, states if states is not None else {}))


def record(topic: str, key: bytes | None, value: bytes, offset: int = 7) -> InputRecord:
    return InputRecord(f"{PREFIX}.{topic}", 3, offset, key, value, RECEIVED)


def assert_dead_lettered(outputs: list[Any], rec: InputRecord) -> None:
    assert len(outputs) == 1, [o.topic for o in outputs]
    (letter,) = outputs
    assert letter.topic == "dlq"
    dumped = letter.value.model_dump(mode="json")
    assert dumped["source_topic"] == rec.topic
    assert (dumped["partition"], dumped["offset"]) == (rec.partition, rec.offset)
    assert dumped["error"]["type"] and dumped["error"]["message"]


def _mutate(document: Any, path: list[int], replacement: Any) -> Any:
    """``document`` with the field chosen by ``path`` (indexes into sorted keys) replaced."""
    if not path or not isinstance(document, dict) or not document:
        return replacement
    keys = sorted(document)
    key = keys[path[0] % len(keys)]
    return {**document, key: _mutate(document[key], path[1:], replacement)}


@pytest.mark.parametrize("topic", INBOUND)
@FUZZ
@given(value=st.binary(max_size=300), key=st.one_of(st.none(), st.binary(max_size=20)))
def test_random_bytes_on_every_inbound_topic_are_dead_lettered(
    topic: str, value: bytes, key: bytes | None
) -> None:
    rec = record(topic, key, value)
    assert_dead_lettered(run([rec]), rec)


@pytest.mark.parametrize("topic", INBOUND)
@FUZZ
@given(value=json_values)
def test_random_json_on_every_inbound_topic_is_dead_lettered(topic: str, value: Any) -> None:
    rec = record(topic, b"ACC-1", json.dumps(value).encode())
    assert_dead_lettered(run([rec]), rec)


@FUZZ
@given(
    base=st.sampled_from(CANONICAL),
    path=st.lists(st.integers(0, 50), min_size=1, max_size=3),
    replacement=json_values,
)
def test_a_valid_event_with_one_field_fuzzed_is_decided_or_dead_lettered(
    base: dict[str, Any], path: list[int], replacement: Any
) -> None:
    document = _mutate(base, path, replacement)
    value = json.dumps(document).encode()
    rec = record("events", str(base["data"]["account_id"]).encode(), value)
    states: dict[str, Any] = {}
    outputs = run([rec], states)
    try:
        event = parse_event(value)
    except (InvalidEvent, TypeError):  # TypeError: a non-string "type" (reported; should be InvalidEvent)
        assert_dead_lettered(outputs, rec)
        assert not any(states.values()), "a dead-lettered record changed the state"
        return
    if event.account_id != base["data"]["account_id"]:
        assert_dead_lettered(outputs, rec)
    else:
        assert all(o.topic in ("actions", "review", "audit", "dlq") for o in outputs)


@pytest.mark.parametrize("topic", ["review.decisions", "access", "outcomes"])
@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "action_id": json_values,
            "account_id": st.just("ACC-1") | json_values,
            "decision": st.sampled_from(["approve", "reject", "edit", "maybe"]),
            "reviewer": json_values,
            "at": st.just("2026-03-01T10:00:00Z") | json_values,
            "status": st.sampled_from(["sent", "exploded"]),
            "user_id": json_values,
            "kind": json_values,
        },
    )
)
def test_half_valid_commands_are_dead_lettered_or_applied_never_raised(
    topic: str, fields: dict[str, Any]
) -> None:
    rec = record(topic, b"ACC-1", json.dumps(fields).encode())
    outputs = run([rec])
    assert all(o.topic in ("actions", "review", "audit", "dlq") for o in outputs)
    if len(outputs) == 1 and outputs[0].topic == "dlq":
        assert_dead_lettered(outputs, rec)


def test_a_bad_record_in_a_batch_does_not_stop_the_good_ones() -> None:
    good = [json.dumps(e).encode() for e in CANONICAL]
    batch = []
    for offset, value in enumerate(good):
        key = str(json.loads(value)["data"]["account_id"]).encode()
        batch.append(record("events", key, value, offset=2 * offset))
        batch.append(record("events", key, b'{"specversion": "1.0"', offset=2 * offset + 1))
    outputs = run(batch)
    letters = [o for o in outputs if o.topic == "dlq"]
    assert len(letters) == len(good)
    assert any(o.topic in ("actions", "review") for o in outputs)


@pytest.mark.parametrize("topic", INBOUND)
def test_json_nested_past_the_recursion_limit_is_dead_lettered(topic: str) -> None:
    rec = record(topic, b"ACC-1", DEEP_NESTING)
    assert_dead_lettered(run([rec]), rec)


@pytest.mark.parametrize("platform", PLATFORMS)
@FUZZ
@given(value=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_platform_records_are_mapped_or_dead_lettered(platform: str, value: bytes) -> None:
    rec = InputRecord(f"{PREFIX}.platform.{platform}", 0, 11, None, value, RECEIVED)
    outgoing = adapt_record(platform, rec)
    # An empty JSON list is a delivery of nothing (a batch with no records): the one quiet input.
    assert outgoing or value.strip() == b"[]", "every platform record yields events or a dead letter"
    for out in outgoing:
        assert out.topic in ("events", "dlq")
        document = json.loads(out.value)
        if out.topic == "dlq":
            assert document["source_topic"] == rec.topic and document["error"]["type"] == "adapter_error"
        else:
            parse_event(out.value)  # a mapped event is a valid canonical event


@pytest.mark.parametrize("platform", PLATFORMS)
def test_deeply_nested_platform_payloads_are_dead_lettered(platform: str) -> None:
    rec = InputRecord(f"{PREFIX}.platform.{platform}", 0, 11, None, DEEP_NESTING, RECEIVED)
    (out,) = adapt_record(platform, rec)
    assert out.topic == "dlq"
