"""Contract models: strict money, aware timestamps, enums, clear errors, JSON Schema drift."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.actions import Action, action_id_for
from schemas.common import money_text
from schemas.events import EVENT_TYPES, InvalidEvent, parse_event
from schemas.export import drift, export, render_schemas

FIXTURES = Path(__file__).parent.parent / "fixtures" / "canonical"


def _lines() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "one_of_each.jsonl").read_text().splitlines()]


def test_every_event_type_has_a_valid_example() -> None:
    examples = _lines()
    assert {example["type"] for example in examples} == set(EVENT_TYPES)
    for example in examples:
        event = parse_event(json.dumps(example))
        assert event.type == example["type"]
        assert event.account_id == example["data"]["account_id"]


def test_json_numbers_become_exact_decimals() -> None:
    payment = next(e for e in _lines() if e["type"] == "billing.payment.posted")
    raw = json.dumps(payment).replace('"amount": 20.5', '"amount": 0.1')
    event = parse_event(raw)
    assert event.data.amount == Decimal("0.1")  # type: ignore[union-attr]
    assert json.loads(event.model_dump_json())["data"]["amount"] == "0.10"


@pytest.mark.parametrize("amount", ["12.345", "0.001", "1e-3"])
def test_more_than_two_places_is_rejected_with_the_field_path(amount: str) -> None:
    payment = next(e for e in _lines() if e["type"] == "billing.payment.posted")
    raw = json.dumps(payment).replace('"amount": 20.5', f'"amount": {amount}')
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.kind == "validation_error"
    assert caught.value.path == "data.amount"
    assert "decimal places" in caught.value.message


def test_naive_timestamps_are_rejected() -> None:
    example = _lines()[0]
    example["time"] = "2026-02-01T12:00:00"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(example)
    assert caught.value.path == "time"


def test_enums_are_enforced() -> None:
    payment = next(e for e in _lines() if e["type"] == "billing.payment.posted")
    payment["data"]["method"] = "bitcoin"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payment)
    assert caught.value.path == "data.method"


def test_unknown_event_type_names_the_known_ones() -> None:
    example = _lines()[0]
    example["type"] = "billing.patient.deleted"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(example)
    assert caught.value.kind == "unknown_event_type"
    assert "billing.patient.updated" in caught.value.message


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"{not json", "invalid_json"), (b"[1, 2]", "not_an_object"), (b"\xff\xfe", "invalid_json")],
)
def test_unparseable_inputs_are_classified(raw: bytes, kind: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.kind == kind


def test_e164_and_time_zone_are_checked() -> None:
    patient = _lines()[0]
    patient["data"]["mobile_phone"] = "305-555-0111"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(patient)
    assert caught.value.path == "data.mobile_phone"
    patient = _lines()[0]
    patient["data"]["timezone"] = "Mars/Olympus_Mons"
    with pytest.raises(InvalidEvent, match="unknown IANA time zone"):
        parse_event(patient)


def test_action_ids_are_deterministic_and_distinct() -> None:
    first = action_id_for("ACC-1", "evt-1", "payment_reminder")
    assert first == action_id_for("ACC-1", "evt-1", "payment_reminder")
    assert first != action_id_for("ACC-1", "evt-1", "statement_message")
    assert first != action_id_for("ACC-2", "evt-1", "payment_reminder")


def test_money_text_has_two_places() -> None:
    assert money_text(Decimal("5")) == "5.00"
    assert money_text(Decimal("1234.5")) == "1234.50"


def test_action_rejects_unknown_fields() -> None:
    schema = Action.model_json_schema()
    assert schema.get("additionalProperties") is False


def test_checked_in_json_schemas_match_the_models(tmp_path: Path) -> None:
    assert drift() == []
    export(tmp_path)
    assert drift(tmp_path) == []
    (tmp_path / "action.json").write_text("{}")
    (tmp_path / "stray.json").write_text("{}")
    assert drift(tmp_path) == ["action.json", "stray.json"]
    assert set(render_schemas()) == {path.name for path in Path("schemas/json").glob("*.json")}


def test_a_non_string_type_is_an_unknown_event_type() -> None:
    example = _lines()[0]
    example["type"] = ["billing.patient.updated"]
    with pytest.raises(InvalidEvent) as caught:
        parse_event(example)
    assert caught.value.kind == "unknown_event_type"


def test_json_nested_past_the_recursion_limit_is_invalid_json() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.kind == "invalid_json"
