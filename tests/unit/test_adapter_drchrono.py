"""The DrChrono adapter on webhook deliveries and polled REST pages written from DrChrono's OpenAPI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.adapters import AdapterError, adapt
from schemas.events import (
    AccountUpdatedEvent,
    ChargePostedEvent,
    ClaimAdjudicatedEvent,
    PatientUpdatedEvent,
    PaymentPostedEvent,
)

SAMPLES = Path(__file__).parents[1] / "fixtures" / "platforms" / "drchrono"
RECEIVED = datetime(2024, 4, 1, tzinfo=UTC)


def _load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(), parse_float=Decimal)


def _adapt(document: Any, **kwargs: Any) -> list[Any]:
    payload = document if isinstance(document, bytes) else json.dumps(document, default=str).encode()
    return adapt("drchrono", payload, received_at=RECEIVED, **kwargs)


def _cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_line_item_webhook_is_a_charge_without_a_balance() -> None:
    delivery = _load("webhook_line_item_modify.json")
    (event,) = _adapt((SAMPLES / "webhook_line_item_modify.json").read_bytes())
    assert isinstance(event, ChargePostedEvent)
    item = delivery["object"]
    assert event.data.amount == _cents(item["billed"])
    assert event.data.charge_id == str(item["id"])
    assert event.data.service_date == date.fromisoformat(item["service_date"])
    assert event.data.account_id == f"drchrono:{item['patient']}"
    assert event.data.practice_id == f"drchrono:doctor-{item['doctor']}"
    assert event.id == f"drchrono:line_item:{item['id']}:{item['updated_at']}"
    assert event.time == datetime.fromisoformat(item["updated_at"]).replace(tzinfo=UTC)  # naive = UTC
    assert event.source == "drchrono/practice-doctor-301995"


def test_redelivery_gives_the_same_event_id() -> None:
    payload = (SAMPLES / "webhook_line_item_modify.json").read_bytes()
    assert _adapt(payload)[0].id == _adapt(payload)[0].id


def test_caller_source_names_the_practice() -> None:
    (event,) = _adapt((SAMPLES / "webhook_line_item_modify.json").read_bytes(), source="drchrono/practice-42")
    assert event.source == "drchrono/practice-42"
    assert event.data.practice_id == "drchrono:42"


def test_patient_webhook() -> None:
    patient = _load("webhook_patient_modify.json")["object"]
    (event,) = _adapt(_load("webhook_patient_modify.json"))
    assert isinstance(event, PatientUpdatedEvent)
    data = event.data
    assert (data.name.given, data.name.family) == (patient["first_name"], patient["last_name"])
    assert data.birth_date == date(1984, 6, 12)
    assert data.language == "es"  # ISO 639-2 "spa"
    assert data.mobile_phone == "+15125550134"
    assert data.home_phone is None
    assert data.consent.sms is False  # disable_sms_messages
    assert data.consent.email is None
    assert data.address is not None and (data.address.state, data.address.postal_code) == ("TX", "78701")
    assert data.guarantor_is_patient is True
    assert data.flags.deceased is False


def test_patient_deceased_and_other_guarantor() -> None:
    delivery = _load("webhook_patient_modify.json")
    delivery["object"].update(
        patient_status="D",
        disable_sms_messages=False,
        responsible_party_name="Luis Rivera",
        responsible_party_relation="Spouse",
        preferred_language="declined",
    )
    (event,) = _adapt(delivery)
    assert event.data.flags.deceased is True
    assert event.data.consent.sms is None  # false is not a consent
    assert event.data.guarantor_is_patient is False
    assert event.data.language == "en"


def test_ledger_page_gives_charges_and_a_derived_balance_per_patient() -> None:
    page = _load("line_items_ledger.json")
    events = _adapt(page)
    charges = [e for e in events if isinstance(e, ChargePostedEvent)]
    balances = {e.data.patient_id: e for e in events if isinstance(e, AccountUpdatedEvent)}
    assert len(charges) == len(page["results"])
    for patient in ("70311452", "70488120"):
        items = [i for i in page["results"] if i["patient"] == patient]
        expected = sum((_cents(i["balance_pt"]) for i in items), Decimal(0))
        assert balances[patient].data.balance == expected
        unpaid = [date.fromisoformat(i["service_date"]) for i in items if i["balance_pt"] > 0]
        assert balances[patient].data.oldest_unpaid_service_date == min(unpaid)
        latest = max(i["updated_at"] for i in items)
        assert balances[patient].time == datetime.fromisoformat(latest).replace(tzinfo=UTC)
    assert balances["70311452"].data.balance == Decimal("55.56")


def test_a_page_with_a_next_page_gives_no_balance() -> None:
    page = _load("line_items_ledger.json")
    page["next"] = "https://app.drchrono.com/api/line_items?cursor=abc"
    events = _adapt(page)
    assert not any(isinstance(e, AccountUpdatedEvent) for e in events)
    assert len(events) == len(page["results"])


def test_transactions_become_one_claim_per_appointment_and_payer() -> None:
    payload = _load("transactions_with_line_items.json")
    events = _adapt(payload)
    assert not any(isinstance(e, AccountUpdatedEvent) for e in events)  # not flagged complete_ledger
    (claim,) = [e for e in events if isinstance(e, ClaimAdjudicatedEvent)]
    rows = payload["transactions"]
    lines = payload["line_items"]
    data = claim.data
    assert data.claim_id == "201488812-ins1"
    assert data.payer == "Aetna"
    assert data.billed == sum((_cents(line["billed"]) for line in lines), Decimal(0))
    assert data.allowed == sum((_cents(line["allowed"]) for line in lines), Decimal(0))
    assert data.insurance_paid == sum((_cents(r["ins_paid"]) for r in rows), Decimal(0))
    pr_rows = [r for r in rows if r["adjustment_group_code"] == "PR"]
    assert data.patient_responsibility == sum((_cents(r["adjustment"]) for r in pr_rows), Decimal(0))
    assert data.breakdown.coinsurance == Decimal("45.00")  # PR-2
    assert data.breakdown.deductible == Decimal("10.56")  # PR-1
    assert [(a.group, a.reason) for a in data.adjustments] == [
        ("CO", "45"),
        ("PR", "2"),
        ("CO", "45"),
        ("PR", "1"),
    ]
    assert data.status == "partial"
    assert data.service_date == date(2024, 2, 27)
    # The patient balance the line items carry is what the claim says the patient owes.
    assert data.patient_responsibility == sum((_cents(line["balance_pt"]) for line in lines), Decimal(0))


def test_complete_ledger_flag_adds_the_balance() -> None:
    payload = _load("transactions_with_line_items.json")
    payload["complete_ledger"] = True
    assert any(isinstance(e, AccountUpdatedEvent) for e in _adapt(payload))


def test_transaction_without_its_line_item_is_an_error() -> None:
    payload = _load("transactions_with_line_items.json")
    payload["line_items"] = payload["line_items"][:1]
    with pytest.raises(AdapterError) as caught:
        _adapt(payload)
    assert caught.value.path == "transactions[2].line_item"


def test_denied_and_pending_claim_status_codes() -> None:
    payload = _load("transactions_with_line_items.json")
    for code, status in (("4", "denied"), ("5", "pending"), ("22", None)):
        for row in payload["transactions"]:
            row["claim_status"] = code
        claims = [e for e in _adapt(payload) if isinstance(e, ClaimAdjudicatedEvent)]
        assert [c.data.status for c in claims] == ([status] if status else [])


def test_patient_payments_skip_refunds() -> None:
    page = _load("patient_payments_page.json")
    events = _adapt(page)
    assert all(isinstance(e, PaymentPostedEvent) for e in events)
    assert [e.data.payment_id for e in events] == ["7781002", "7781019"]  # the REF row is skipped
    card, check = events
    assert (card.data.amount, card.data.method, card.data.channel) == (Decimal("45.00"), "card", "in_person")
    assert (check.data.amount, check.data.method, check.data.channel) == (Decimal("60.00"), "check", "mail")
    assert card.data.posted_at == datetime(2024, 3, 15, 16, 40, 2, tzinfo=UTC)


def test_payment_log_creates_only() -> None:
    events = _adapt(_load("patient_payment_log_page.json"))
    assert [e.data.payment_id for e in events] == ["log-3300981", "log-3300990"]  # F (fill) gives nothing
    assert events[1].data.channel == "portal"  # ONPT, onpatient


def test_appointments_give_nothing() -> None:
    assert _adapt(_load("appointments_page.json")) == []


def test_deletion_webhook_is_an_error_naming_the_event() -> None:
    with pytest.raises(AdapterError) as caught:
        _adapt((SAMPLES / "webhook_line_item_delete.json").read_bytes())
    assert caught.value.path == "event"
    assert "LINE_ITEM_DELETE" in caught.value.message


def test_ping_gives_nothing_and_clinical_events_are_refused() -> None:
    delivery = _load("webhook_line_item_modify.json")
    delivery["event"] = "PING"
    assert _adapt(delivery) == []
    delivery["event"] = "CLINICAL_NOTE_LOCK"
    with pytest.raises(AdapterError, match="not a DrChrono billing event"):
        _adapt(delivery)


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("balance_pt", Decimal("45.005"), "results[0].balance_pt"),
        ("billed", "185,00", "results[0].billed"),
        ("service_date", "02/27/2024", "results[0].service_date"),
        ("patient", None, "results[0].patient"),
        ("updated_at", "yesterday", "results[0].updated_at"),
    ],
)
def test_bad_native_fields_name_their_path(field: str, value: Any, path: str) -> None:
    page = _load("line_items_ledger.json")
    page["results"][0][field] = value
    with pytest.raises(AdapterError) as caught:
        _adapt(page)
    assert caught.value.path == path


def test_bare_list_and_single_object_are_recognised() -> None:
    page = _load("line_items_ledger.json")
    assert len(_adapt(page["results"])) == len(page["results"]) + 2  # a bare list is a complete ledger
    (single,) = _adapt(page["results"][0])
    assert isinstance(single, ChargePostedEvent)
    with pytest.raises(AdapterError, match="cannot tell"):
        _adapt({"id": 1, "colour": "blue"})


def test_json_number_with_three_places_is_refused() -> None:
    text = (
        (SAMPLES / "webhook_line_item_modify.json")
        .read_text()
        .replace('"billed": 185.0', '"billed": 185.005')
    )
    with pytest.raises(AdapterError) as caught:
        _adapt(text.encode())
    assert caught.value.path == "object.billed"
    assert "more than two decimal places" in caught.value.message
