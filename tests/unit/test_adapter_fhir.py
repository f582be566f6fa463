"""The FHIR R4 adapter against the official R4 examples and against resources written in the shapes
the platform reference proposes. Expected amounts are read from the fixture files themselves."""

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
    CommunicationLoggedEvent,
    ConsentUpdatedEvent,
    PatientUpdatedEvent,
    PaymentPostedEvent,
    StatementGeneratedEvent,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
REAL = FIXTURES / "fhir-r4"
WRITTEN = FIXTURES / "platforms" / "fhir"
RECEIVED = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(), parse_float=Decimal)


def _adapt(document: dict[str, Any] | Path) -> list[Any]:
    payload = (
        document.read_bytes() if isinstance(document, Path) else json.dumps(document, default=str).encode()
    )
    return adapt("fhir", payload, received_at=RECEIVED)


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# -- official R4 examples ---------------------------------------------------------------------------


def test_every_real_example_maps_or_gives_nothing_without_error() -> None:
    for path in sorted(REAL.glob("*.json")):
        events = _adapt(path)
        assert isinstance(events, list), path.name


def test_real_charge_item_amount_and_date() -> None:
    source = _load(REAL / "ChargeItem-example.json")
    (event,) = _adapt(REAL / "ChargeItem-example.json")
    assert isinstance(event, ChargePostedEvent)
    assert event.data.amount == _money(source["priceOverride"]["value"])
    assert event.data.currency == source["priceOverride"]["currency"]
    assert event.data.service_date == date.fromisoformat(source["occurrencePeriod"]["start"][:10])
    assert event.data.charge_id == source["id"]
    assert event.data.patient_id == source["subject"]["reference"].split("/")[1]
    assert event.data.account_id == "fhir:example"
    assert event.data.description == source["code"]["coding"][0]["display"]
    assert event.data.provider == source["performer"][0]["actor"]["reference"]
    assert event.time == datetime.fromisoformat(source["enteredDate"])


def test_real_invoice_is_a_statement_for_its_gross_total() -> None:
    source = _load(REAL / "Invoice-example.json")
    (event,) = _adapt(REAL / "Invoice-example.json")
    assert isinstance(event, StatementGeneratedEvent)
    assert event.data.balance_due == _money(source["totalGross"]["value"])
    assert event.data.currency == source["totalGross"]["currency"]
    statement_date = date.fromisoformat(source["date"][:10])
    assert event.data.statement_date == statement_date
    assert (event.data.due_date - statement_date).days == 30  # no paymentTerms: the default
    assert event.data.lines == []
    assert event.data.patient_id == "example"


def test_real_eob_amounts_from_totals_and_items() -> None:
    source = _load(REAL / "ExplanationOfBenefit-EB3500.json")
    totals = {t["category"]["coding"][0]["code"]: _money(t["amount"]["value"]) for t in source["total"]}
    eligible = sum(
        (
            _money(a["amount"]["value"])
            for item in source["item"]
            for a in item["adjudication"]
            if a["category"]["coding"][0]["code"] == "eligible"
        ),
        Decimal(0),
    )
    (event,) = _adapt(REAL / "ExplanationOfBenefit-EB3500.json")
    assert isinstance(event, ClaimAdjudicatedEvent)
    data = event.data
    assert data.billed == totals["submitted"]
    assert data.insurance_paid == totals["benefit"]
    assert data.allowed == eligible
    # No patient-liability category in the example: responsibility is what was allowed and not paid.
    assert data.patient_responsibility == eligible - totals["benefit"]
    assert data.status == "partial"
    assert data.claim_id == source["claim"]["reference"].split("/")[1]
    assert data.patient_id == "pat1"
    assert data.practice_id == "fhir:Organization/2"  # payee organisation; the provider is a practitioner
    assert data.service_date == date.fromisoformat(source["item"][0]["servicedDate"])


def test_real_patient() -> None:
    source = _load(REAL / "Patient-example.json")
    (event,) = _adapt(REAL / "Patient-example.json")
    assert isinstance(event, PatientUpdatedEvent)
    official = source["name"][0]
    assert event.data.name.family == official["family"]
    assert event.data.name.given == " ".join(official["given"])
    assert event.data.birth_date == date.fromisoformat(source["birthDate"])
    assert event.data.address is not None and event.data.address.city == source["address"][0]["city"]
    assert event.data.address.state is None  # "Vic" is not a US state
    assert event.data.mobile_phone is None  # an Australian number is not valid with the US default region
    assert event.data.practice_id == "fhir:Organization/1"
    assert event.time == RECEIVED  # no meta.lastUpdated


@pytest.mark.parametrize(
    "name",
    [
        "Account-example.json",  # R4 Account has no balance
        "Account-ewg.json",
        "Coverage-9876B1.json",  # coverage carries no balance
        "Coverage-SP1234.json",
        "PaymentNotice-77654.json",  # announces a reconciliation; no patient
        "PaymentReconciliation-ER2500.json",  # an insurer's remittance
        "Communication-example.json",  # a page to a practitioner, not a message with the patient
        "Consent-consent-example-basic.json",  # a privacy consent, not permission to contact
        "AuditEvent-example.json",
        "CommunicationRequest-example.json",
    ],
)
def test_real_examples_without_patient_billing_facts_give_nothing(name: str) -> None:
    assert _adapt(REAL / name) == []


def test_real_reconciliation_paid_by_the_patient_is_a_payment() -> None:
    source = _load(REAL / "PaymentReconciliation-ER2500.json")
    source["paymentIssuer"] = {"reference": "Patient/example"}
    (event,) = _adapt(source)
    assert isinstance(event, PaymentPostedEvent)
    assert event.data.amount == _money(source["paymentAmount"]["value"])
    assert event.data.payment_id == source["paymentIdentifier"]["value"]
    assert event.data.posted_at.date() == date.fromisoformat(source["paymentDate"])
    assert event.data.practice_id == "fhir:Organization/1"  # requestor


def test_real_reconciliation_without_issuer_cannot_be_attributed() -> None:
    source = _load(REAL / "PaymentReconciliation-ER2500.json")
    del source["paymentIssuer"]
    with pytest.raises(AdapterError) as caught:
        _adapt(source)
    assert caught.value.path == "paymentIssuer"


def test_real_communication_sent_to_the_patient_is_logged() -> None:
    source = _load(REAL / "Communication-example.json")
    source["recipient"] = [{"reference": "Patient/example"}]
    (event,) = _adapt(source)
    assert isinstance(event, CommunicationLoggedEvent)
    assert event.data.channel == "letter"  # medium WRITTEN
    assert event.data.direction == "outbound"
    assert event.data.outcome == "delivered"
    assert event.data.at == datetime.fromisoformat(source["sent"])
    assert event.data.text is None  # outbound text is not copied


def test_real_account_with_a_backported_balance() -> None:
    source = _load(REAL / "Account-example.json")
    source["extension"] = [
        {
            "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Account.balance",
            "extension": [{"url": "amount", "valueMoney": {"value": Decimal("120.50"), "currency": "USD"}}],
        }
    ]
    (event,) = _adapt(source)
    assert isinstance(event, AccountUpdatedEvent)
    assert event.data.balance == Decimal("120.50")
    assert event.data.patient_id == "example"
    assert event.data.practice_id == "fhir:Organization/hl7"


# -- written samples --------------------------------------------------------------------------------


def test_statement_due_date_from_payment_terms() -> None:
    source = _load(WRITTEN / "invoice_statement.json")
    (event,) = _adapt(WRITTEN / "invoice_statement.json")
    assert event.data.balance_due == _money(source["totalGross"]["value"])
    assert (event.data.due_date - event.data.statement_date).days == 21
    assert event.id == "fhir:Invoice:stmt-2024-03-12-88231:1"  # versionId
    assert event.time == datetime(2024, 3, 12, 14, 0, tzinfo=UTC)  # meta.lastUpdated


def test_balanced_invoice_owes_nothing() -> None:
    source = _load(WRITTEN / "invoice_statement.json")
    source["status"] = "balanced"
    (event,) = _adapt(source)
    assert event.data.balance_due == 0


def test_carin_eob_member_liability_and_carc_reasons() -> None:
    source = _load(WRITTEN / "eob_carin.json")
    totals = {t["category"]["coding"][0]["code"]: _money(t["amount"]["value"]) for t in source["total"]}
    (event,) = _adapt(WRITTEN / "eob_carin.json")
    data = event.data
    assert data.patient_responsibility == totals["memberliability"]
    assert data.breakdown.coinsurance == totals["memberliability"]
    assert data.billed == totals["submitted"]
    assert data.insurance_paid == totals["benefit"]
    assert data.allowed == Decimal("121.37")
    assert [(a.group, a.reason, a.amount) for a in data.adjustments] == [("PR", "2", Decimal("45.00"))]
    assert data.payer == "Aetna"
    assert data.claim_id == "clm-450912"


def test_eob_outcomes() -> None:
    source = _load(WRITTEN / "eob_carin.json")
    for outcome, status in (("error", "denied"), ("queued", "pending"), ("complete", "partial")):
        source["outcome"] = outcome
        (event,) = _adapt(source)
        assert event.data.status == status


def test_patient_payment_and_sms_messages() -> None:
    (payment,) = _adapt(WRITTEN / "payment_patient.json")
    assert isinstance(payment, PaymentPostedEvent)
    assert payment.data.amount == Decimal("45.00")
    assert payment.data.account_id == "fhir:88231"
    (sent,) = _adapt(WRITTEN / "communication_sms.json")
    assert (sent.data.channel, sent.data.direction, sent.data.text) == ("sms", "outbound", None)
    (stop,) = _adapt(WRITTEN / "communication_inbound_stop.json")
    assert (stop.data.channel, stop.data.direction, stop.data.text) == ("sms", "inbound", "STOP")
    assert stop.data.at == datetime.fromisoformat("2024-03-14T11:09:40-05:00")


def test_sms_opt_out_consent() -> None:
    (event,) = _adapt(WRITTEN / "consent_sms_optout.json")
    assert isinstance(event, ConsentUpdatedEvent)
    assert (event.data.channel, event.data.granted) == ("sms", False)


def test_account_balance_counts_patient_aggregates_only() -> None:
    source = _load(WRITTEN / "account_with_balance.json")
    patient_amounts = [
        _money(part["valueMoney"]["value"])
        for extension in source["extension"]
        if any(
            p["url"] == "aggregate" and p["valueCodeableConcept"]["coding"][0]["code"] == "patient"
            for p in extension["extension"]
        )
        for part in extension["extension"]
        if part["url"] == "amount"
    ]
    (event,) = _adapt(WRITTEN / "account_with_balance.json")
    assert event.data.balance == sum(patient_amounts, Decimal(0)) == Decimal("55.56")


def test_bundle_maps_each_entry_and_resolves_urn_references() -> None:
    events = _adapt(WRITTEN / "bundle_transaction.json")
    assert [type(e) for e in events] == [PatientUpdatedEvent, ChargePostedEvent]  # Coverage: nothing
    patient, charge = events
    assert patient.data.language == "es"
    assert patient.data.mobile_phone == "+15125550134"
    assert charge.data.patient_id == "88231"  # subject is urn:uuid:… of the Patient entry
    assert charge.data.service_date == date(2024, 2, 27)  # in the occurrence's own offset


def test_bundle_errors_name_the_entry() -> None:
    source = _load(WRITTEN / "bundle_transaction.json")
    source["entry"][1]["resource"]["priceOverride"]["value"] = Decimal("185.001")
    with pytest.raises(AdapterError) as caught:
        _adapt(source)
    assert caught.value.path == "entry[1].resource.priceOverride.value"
    assert "two decimal places" in caught.value.message


def test_bundle_deletion_is_an_error() -> None:
    source = _load(WRITTEN / "bundle_transaction.json")
    source["entry"][1] = {"request": {"method": "DELETE", "url": "ChargeItem/ci-1188420"}}
    with pytest.raises(AdapterError) as caught:
        _adapt(source)
    assert caught.value.path == "entry[1].request"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda r: r.update(status="entered-in-error"), "status"),
        (lambda r: r.pop("priceOverride"), "priceOverride"),
        (lambda r: r.update(subject={"reference": "Group/g1"}), "subject"),
        (lambda r: r.update(priceOverride={"value": "forty", "currency": "EUR"}), "priceOverride.value"),
    ],
)
def test_charge_item_errors(change: Any, path: str) -> None:
    source = _load(REAL / "ChargeItem-example.json")
    change(source)
    with pytest.raises(AdapterError) as caught:
        _adapt(source)
    assert caught.value.path == path


def test_not_fhir() -> None:
    with pytest.raises(AdapterError):
        _adapt({"resourceType": "NoSuchThing", "id": "x"})
    with pytest.raises(AdapterError):
        adapt("fhir", b"[1, 2]")


def test_nested_resources_with_bad_types_name_their_path() -> None:
    source = _load(WRITTEN / "bundle_transaction.json")
    source["entry"][1]["resource"]["resourceType"] = ""
    with pytest.raises(AdapterError) as caught:
        _adapt(source)
    assert caught.value.path == "entry[1].resource.resourceType"
    patient = _load(REAL / "Patient-example.json")
    patient["contained"] = [{"resourceType": None, "id": "x"}]
    with pytest.raises(AdapterError) as caught:
        _adapt(patient)
    assert caught.value.path == "contained[0].resourceType"
