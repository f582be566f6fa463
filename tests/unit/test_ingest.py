"""Ingest: validation, de-duplication and dead-lettering around the decision core; it never raises."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rules.policy import load_policy
from schemas.deadletter import DeadLetter
from streams import ingest as ingest_module
from streams.ingest import InputRecord, ingest

SAMPLE = Path("streams/sample_events.jsonl")


def _record(value: bytes, key: bytes | None, offset: int = 7) -> InputRecord:
    return InputRecord("billing.events", 2, offset, key, value, datetime(2026, 3, 1, tzinfo=UTC))


def _first_statement() -> bytes:
    line = next(line for line in SAMPLE.read_bytes().splitlines() if b"statement.generated" in line)
    return line


def _dead_letter(value: bytes, key: bytes | None) -> DeadLetter:
    result = ingest(_record(value, key), None, load_policy())
    assert result.state is None
    [output] = result.outputs
    assert output.topic == "dlq"
    assert isinstance(output.value, DeadLetter)
    return output.value


def test_bad_json_is_dead_lettered_with_its_bytes_and_position() -> None:
    letter = _dead_letter(b'{"specversion": ', b"ACC-1")
    assert (letter.error.type, letter.source_topic, letter.partition, letter.offset) == (
        "invalid_json",
        "billing.events",
        2,
        7,
    )
    assert letter.raw == '{"specversion": ' and letter.raw_encoding == "utf-8"


def test_non_utf8_bytes_are_kept_as_base64() -> None:
    raw = b"\x00\xff\xfe garbage"
    letter = _dead_letter(raw, None)
    assert letter.raw_encoding == "base64"
    assert base64.b64decode(letter.raw) == raw


def test_key_must_be_the_account_id() -> None:
    letter = _dead_letter(_first_statement(), b"ACC-OTHER")
    assert letter.error.type == "key_mismatch"
    assert letter.key == "ACC-OTHER"


def test_redelivered_event_changes_nothing() -> None:
    policy = load_policy()
    line = _first_statement()
    key = json.loads(line)["data"]["account_id"].encode()
    first = ingest(_record(line, key), None, policy)
    assert first.state is not None and first.outputs
    blob = first.state.model_dump_json().encode()
    again = ingest(_record(line, key, offset=8), blob, policy)
    assert again.state is None
    assert again.outputs == ()


def test_a_failing_decision_is_dead_lettered_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ArithmeticError("boom")

    monkeypatch.setattr(ingest_module, "decide", broken)
    line = _first_statement()
    letter = _dead_letter(line, json.loads(line)["data"]["account_id"].encode())
    assert letter.error.type == "decision_error"
    assert "ArithmeticError" in letter.error.message
