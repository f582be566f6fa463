"""The AdvancedMD adapter on Connect API responses in JSON form (layout assumed; see the module)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.adapters import AdapterError, adapt
from schemas.events import AccountUpdatedEvent, ChargePostedEvent, PatientUpdatedEvent, PaymentPostedEvent

SAMPLES = Path(__file__).parents[1] / "fixtures" / "platforms" / "advancedmd"
RECEIVED = datetime(2024, 4, 1, tzinfo=UTC)


def _load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def _adapt(document: Any, **kwargs: Any) -> list[Any]:
    return adapt("advancedmd", json.dumps(document).encode(), received_at=RECEIVED, **kwargs)


def _charges(document: Any) -> list[dict[str, Any]]:
    return document["PPMDResults"]["Results"]["chargelist"]["charge"]


def test_tx_history_charges_balance_and_patient_payments() -> None:
    document = _load("gettxhistory.json")
    events = _adapt(document)
    live = [c for c in _charges(document) if c["@void"] == "0"]
    charges = [e for e in events if isinstance(e, ChargePostedEvent)]
    assert [c.data.charge_id for c in charges] == [c["@id"] for c in live]  # the void charge is left out
    assert [c.data.amount for c in charges] == [Decimal(c["@fee"]) for c in live]
    (balance,) = [e for e in events if isinstance(e, AccountUpdatedEvent)]
    assert balance.data.balance == sum((Decimal(c["@patbal"]) for c in live), Decimal(0))
    assert balance.data.oldest_unpaid_service_date == date(2024, 2, 27)
    assert balance.time == RECEIVED  # the records carry no modification time
    payments = [e for e in events if isinstance(e, PaymentPostedEvent)]
    # Insurance payments (a carrier, paysource 2, paycode PI) give nothing.
    assert [(p.data.payment_id, p.data.amount, p.data.method) for p in payments] == [
        ("PMT3310", Decimal("20.00"), "card"),
        ("PMT2950", Decimal("25.00"), "cash"),
    ]
    assert payments[0].time == datetime(2024, 3, 15, tzinfo=UTC)
    assert {e.data.account_id for e in events} == {"advancedmd:4471023"}


def test_a_payment_split_over_two_charges_is_one_payment() -> None:
    document = _load("gettxhistory.json")
    charges = _charges(document)
    charges[3]["paymentlist"]["payment"][0]["@id"] = "PMT3310"
    payments = [e for e in _adapt(document) if isinstance(e, PaymentPostedEvent)]
    assert [(p.data.payment_id, p.data.amount) for p in payments] == [("PMT3310", Decimal("45.00"))]


def test_same_payload_same_ids_and_practice_from_source() -> None:
    document = _load("gettxhistory.json")
    first = [e.id for e in _adapt(document)]
    again = _adapt(document, source="advancedmd/practice-991234")
    assert first == [e.id for e in again]
    assert {e.data.practice_id for e in again} == {"advancedmd:991234"}


def test_demographics() -> None:
    (event,) = _adapt(_load("getdemographic.json"))
    assert isinstance(event, PatientUpdatedEvent)
    assert (event.data.name.given, event.data.name.family) == ("Ana M", "Rivera")
    assert event.data.birth_date == date(1984, 6, 12)
    assert event.data.mobile_phone == "+15125550134"
    assert event.data.email == "ana.rivera@example.com"
    assert event.data.address is not None and event.data.address.state == "TX"


def test_errors() -> None:
    with pytest.raises(AdapterError, match="reported an error: Invalid token"):
        _adapt({"PPMDResults": {"Error": {"Fault": {"detail": {"description": "Invalid token"}}}}})
    with pytest.raises(AdapterError) as caught:
        _adapt({"PPMDResults": {"Results": {"@success": "0"}}})
    assert caught.value.path == "PPMDResults.Results.success"
    with pytest.raises(AdapterError, match="no patientlist or chargelist"):
        _adapt({"PPMDResults": {"Results": {"@success": "1", "visitlist": {}}}})
    document = _load("gettxhistory.json")
    _charges(document)[1]["@patbal"] = "10.565"
    with pytest.raises(AdapterError) as caught:
        _adapt(document)
    assert caught.value.path == "PPMDResults.Results.chargelist.charge[1].patbal"
