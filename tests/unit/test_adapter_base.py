"""Shared adapter machinery: strict scalars, claim arithmetic, event ids and the `adapt` entry point."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import schemas.adapters as adapters
from schemas.adapters import PLATFORMS, AdapterError, adapt
from schemas.adapters.base import (
    Adjustment,
    Context,
    Draft,
    breakdown,
    claim_status,
    event_id,
    finish,
    language_tag,
    parse_bool,
    parse_date,
    parse_money,
    parse_timestamp,
    phone_e164,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("450.75", Decimal("450.75")),
        ("  -45.5 ", Decimal("-45.50")),
        (Decimal("121.370"), Decimal("121.37")),  # a trailing zero is not a third place
        (185, Decimal("185.00")),
        ("0", Decimal("0.00")),
    ],
)
def test_money_parses_exactly(value: object, expected: Decimal) -> None:
    amount = parse_money(value, "x")
    assert amount == expected
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value",
    [
        "1.005",
        Decimal("0.001"),
        1.5,
        True,
        "$10",
        "1,000.00",
        "1e3",
        "NaN",
        Decimal("Infinity"),
        "",
        None,
        "1" * 13,
    ],
)
def test_money_refuses_what_is_not_exact_plain_money(value: object) -> None:
    with pytest.raises(AdapterError) as caught:
        parse_money(value, "object.amount")
    assert caught.value.path == "object.amount"


def test_dates_and_timestamps() -> None:
    assert parse_date("2/27/2024", "d", ("%m/%d/%Y",)) == date(2024, 2, 27)
    with pytest.raises(AdapterError):
        parse_date("2024-02-27", "d", ("%m/%d/%Y",))  # only the formats given
    eastern = timezone(timedelta(hours=-5))
    assert parse_timestamp("2024-03-11T09:12:40", "t", eastern) == datetime(
        2024, 3, 11, 9, 12, 40, tzinfo=eastern
    )
    assert parse_timestamp("2024-03-11T09:12:40Z", "t", eastern).utcoffset() == timedelta(0)
    assert parse_timestamp("3/11/2024 9:12:40 PM", "t", UTC, ("%m/%d/%Y %I:%M:%S %p",)).hour == 21
    with pytest.raises(AdapterError):
        parse_timestamp("soon", "t", UTC)


def test_booleans_are_strict() -> None:
    assert parse_bool("True", "b") is True
    assert parse_bool("0", "b") is False
    with pytest.raises(AdapterError):
        parse_bool("maybe", "b")


def test_contact_helpers() -> None:
    assert phone_e164("(512) 555-0134") == "+15125550134"
    assert phone_e164("(555) 201-3344") is None  # not a valid US number
    assert phone_e164("") is None
    assert language_tag("spa") == "es"
    assert language_tag("en-US") == "en-US"
    assert language_tag("unknown") is None


def test_breakdown_by_pr_reason() -> None:
    parts = breakdown(
        [
            Adjustment("PR", "1", Decimal("10")),
            Adjustment("PR", "2", Decimal("20")),
            Adjustment("PR", "3", Decimal("30")),
            Adjustment("PR", "96", Decimal("40")),
            Adjustment("CO", "45", Decimal("50")),
        ]
    )
    assert parts == {
        "deductible": Decimal("10"),
        "coinsurance": Decimal("20"),
        "copay": Decimal("30"),
        "noncovered": Decimal("40"),
    }


@pytest.mark.parametrize(
    ("code", "paid", "owed", "status"),
    [
        ("1", "80", "20", "partial"),
        ("1", "100", "0", "paid"),
        ("2", "0", "0", "denied"),
        ("19", "0", "25", "partial"),
        ("4", "0", "0", "denied"),
        ("5", "0", "0", "pending"),
        (None, "10", "0", "paid"),
    ],
)
def test_claim_status(code: str | None, paid: str, owed: str, status: str) -> None:
    assert claim_status(code, Decimal(paid), Decimal(owed), "p") == status


def test_unknown_claim_status_names_the_path() -> None:
    with pytest.raises(AdapterError) as caught:
        claim_status("99", Decimal(0), Decimal(0), "CLP02")
    assert caught.value.path == "CLP02"


def test_event_ids_fit_the_contract() -> None:
    short = event_id("fhir", ("Patient", "1", "v1"))
    assert short == "fhir:Patient:1:v1"
    long_id = event_id("fhir", ("Patient", "x" * 300, "v1"))
    assert len(long_id) <= 200
    assert long_id == event_id("fhir", ("Patient", "x" * 300, "v1"))
    assert long_id != event_id("fhir", ("Patient", "x" * 300, "v2"))


def _draft(**data: Any) -> Draft:
    base = {"account_id": "drchrono:1", "patient_id": "1", "practice_id": "drchrono:2"}
    return Draft(
        type="billing.charge.posted",
        identity=("line_item", "9", "v"),
        data={**base, **data},
        path="object",
        practice="2",
        field_paths={"amount": "object.billed"},
    )


def test_finish_reports_contract_violations_at_the_native_field() -> None:
    bad = _draft(charge_id="9", service_date=date(2024, 1, 1), description="x", amount=Decimal("1" * 13))
    with pytest.raises(AdapterError) as caught:
        finish([bad], Context("drchrono", received_at=datetime(2024, 1, 1, tzinfo=UTC)))
    assert caught.value.path == "object.billed"
    assert "billing.charge.posted" in caught.value.message


def test_finish_needs_a_time() -> None:
    good = _draft(charge_id="9", service_date=date(2024, 1, 1), description="x", amount=Decimal("1.00"))
    with pytest.raises(AdapterError, match="no timestamp"):
        finish([good], Context("drchrono"))
    (event,) = finish([good], Context("drchrono", received_at=datetime(2024, 1, 1, tzinfo=UTC)))
    assert event.source == "drchrono/practice-2"
    assert event.subject == "drchrono:1"


def test_adapt_checks_its_arguments() -> None:
    assert PLATFORMS == ("drchrono", "tebra", "advancedmd", "carecloud", "fhir", "x12-835")
    with pytest.raises(AdapterError, match="unknown platform"):
        adapt("epic", b"{}")
    with pytest.raises(AdapterError, match="bytes"):
        adapt("fhir", "{}")  # type: ignore[arg-type]
    with pytest.raises(AdapterError, match="timezone-aware"):
        adapt("fhir", b"{}", received_at=datetime(2024, 1, 1))
    with pytest.raises(AdapterError, match="exceeds"):
        adapt("fhir", b" " * (adapters.MAX_PAYLOAD_BYTES + 1))


def test_adapt_wraps_unexpected_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(payload: bytes, context: Context) -> list[Draft]:
        raise KeyError("surprise")

    monkeypatch.setitem(adapters._MAPPERS, "fhir", broken)
    with pytest.raises(AdapterError, match="KeyError") as caught:
        adapt("fhir", b"{}")
    assert isinstance(caught.value.__cause__, KeyError)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_not_utf8_and_empty_payloads(platform: str) -> None:
    for payload in (b"\xff\xfe\x00", b""):
        with pytest.raises(AdapterError):
            adapt(platform, payload)
