"""The Tebra (Kareo SOAP 2.1) adapter on stored results written from the WSDL's members."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from schemas.adapters import AdapterError, adapt
from schemas.events import (
    AccountUpdatedEvent,
    ChargePostedEvent,
    ClaimAdjudicatedEvent,
    PatientUpdatedEvent,
    PaymentPostedEvent,
)

SAMPLES = Path(__file__).parents[1] / "fixtures" / "platforms" / "tebra"
RECEIVED = datetime(2024, 4, 1, tzinfo=UTC)
NS = "{http://www.kareo.com/api/schemas/}"


def _text(name: str) -> str:
    return (SAMPLES / name).read_text()


def _adapt(text: str) -> list[Any]:
    return adapt("tebra", text.encode(), received_at=RECEIVED)


def _member(text: str, row: str, name: str, index: int = 0) -> str:
    root = ElementTree.fromstring(text.encode())
    rows = list(root.iter(f"{NS}{row}"))
    value = rows[index].find(f"{NS}{name}")
    assert value is not None and value.text is not None
    return value.text


def test_charges_give_a_charge_and_a_primary_claim() -> None:
    text = _text("get_charges_response.xml")
    events = _adapt(text)
    charges = [e for e in events if isinstance(e, ChargePostedEvent)]
    claims = [e for e in events if isinstance(e, ClaimAdjudicatedEvent)]
    # The voided charge and the empty placeholder row give nothing; the second charge is not adjudicated.
    assert [c.data.charge_id for c in charges] == ["1188420", "1188421"]
    assert charges[0].data.amount == Decimal(_member(text, "ChargeData", "TotalCharges"))
    assert charges[0].data.service_date == date(2024, 2, 27)
    assert charges[0].data.provider == "Maria Chen MD"
    (claim,) = claims
    data = claim.data

    def amount(name: str) -> Decimal:
        return Decimal(_member(text, "ChargeData", f"PrimaryInsurance{name}"))

    assert data.claim_id == "450912/1188420/primary"
    assert data.allowed == amount("InsuranceAllowed")
    assert data.insurance_paid == amount("InsurancePayment")
    assert data.breakdown.coinsurance == amount("InsuranceCoinsurance")
    assert data.patient_responsibility == (
        amount("InsuranceDeductible") + amount("InsuranceCoinsurance") + amount("InsuranceCopay")
    )
    assert ("CO", "45", amount("InsuranceContractAdjustment")) in [
        (a.group, a.reason, a.amount) for a in data.adjustments
    ]
    # The same balance the charge row reports for the patient.
    assert data.patient_responsibility == Decimal(_member(text, "ChargeData", "PatientBalance"))
    assert data.status == "partial"
    assert claim.time == datetime(2024, 3, 11, 9, 12, 40, tzinfo=UTC)  # LastModifiedDate, naive = UTC
    assert data.account_id == "tebra:88231"
    assert data.practice_id == "tebra:1"
    assert claim.source == "tebra/practice-1"


def test_patients_and_their_balances() -> None:
    text = _text("get_patients_response.xml")
    events = _adapt(text)
    patients = [e for e in events if isinstance(e, PatientUpdatedEvent)]
    balances = [e for e in events if isinstance(e, AccountUpdatedEvent)]
    assert [p.data.patient_id for p in patients] == ["88231", "90412"]
    ana, marcus = patients
    assert ana.data.birth_date == date(1984, 6, 12)  # "6/12/1984 12:00:00 AM"
    assert marcus.data.birth_date == date(1971, 2, 3)  # ISO dateTime
    assert ana.data.mobile_phone == "+15125550134"
    assert marcus.data.home_phone == "+15125550187"
    assert ana.data.address is not None and ana.data.address.line == "12 Elm St, Apt 4"
    assert (ana.data.guarantor_is_patient, marcus.data.guarantor_is_patient) == (True, False)
    assert [b.data.balance for b in balances] == [
        Decimal(_member(text, "PatientData", "PatientBalance", i)) for i in range(2)
    ]
    assert [b.data.self_pay for b in balances] == [False, True]


def test_transactions_give_patient_payments_only() -> None:
    (event,) = _adapt(_text("get_transactions_response.xml"))
    assert isinstance(event, PaymentPostedEvent)
    assert event.data.amount == Decimal("45.00")  # sign of the ledger credit dropped
    assert event.data.payment_id == "transaction-7004502"
    assert event.data.posted_at == datetime(2024, 3, 15, tzinfo=UTC)
    assert event.data.practice_id == "tebra:unknown"  # TransactionData names no practice id


def test_transaction_practice_from_the_caller_source() -> None:
    (event,) = adapt("tebra", _text("get_transactions_response.xml").encode(), source="tebra/practice-7")
    assert event.data.practice_id == "tebra:7"


def test_payments_need_a_patient() -> None:
    text = _text("get_payments_response.xml")
    (event,) = _adapt(text)
    assert (event.data.payment_id, event.data.method, event.data.amount) == (
        "payment-55131",
        "card",
        Decimal("45.00"),
    )
    without = re.sub(r"<PatientID>88231</PatientID>", "", text)
    with pytest.raises(AdapterError) as caught:
        _adapt(without)
    assert caught.value.path == "GetPaymentsResult.Payments.PaymentData[1].PatientID"


def test_error_response() -> None:
    with pytest.raises(AdapterError) as caught:
        _adapt(_text("error_response.xml"))
    assert caught.value.path == "GetChargesResult.ErrorResponse.IsError"
    assert "60 days" in caught.value.message


def test_failed_security_and_soap_fault() -> None:
    text = _text("get_patients_response.xml").replace(
        "<SecurityResultSuccess>true</SecurityResultSuccess>",
        "<SecurityResultSuccess>false</SecurityResultSuccess>",
    )
    with pytest.raises(AdapterError, match="Tebra reported an error"):
        _adapt(text)
    fault = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        "<faultcode>s:Client</faultcode><faultstring>Object reference not set</faultstring>"
        "</s:Fault></s:Body></s:Envelope>"
    )
    with pytest.raises(AdapterError, match="Object reference not set"):
        _adapt(fault)


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("<TotalCharges>185.00</TotalCharges>", "<TotalCharges>$185.00</TotalCharges>", "TotalCharges"),
        ("<TotalCharges>185.00</TotalCharges>", "<TotalCharges>185.001</TotalCharges>", "TotalCharges"),
        (
            "<ServiceStartDate>2/27/2024</ServiceStartDate>",
            "<ServiceStartDate>27.02.2024</ServiceStartDate>",
            "ServiceStartDate",
        ),
        (
            "<PrimaryInsuranceInsuranceContractAdjustmentReason>45<",
            "<PrimaryInsuranceInsuranceContractAdjustmentReason>contract write-off<",
            "PrimaryInsuranceInsuranceContractAdjustmentReason",
        ),
    ],
)
def test_strict_string_values(old: str, new: str, path: str) -> None:
    text = _text("get_charges_response.xml")
    assert old in text
    with pytest.raises(AdapterError) as caught:
        _adapt(text.replace(old, new, 1))
    assert caught.value.path == f"GetChargesResult.Charges.ChargeData[0].{path}"


def test_boolean_text_is_strict() -> None:
    text = _text("get_patients_response.xml").replace(
        "<GuarantorDifferentThanPatient>false<", "<GuarantorDifferentThanPatient>maybe<"
    )
    with pytest.raises(AdapterError) as caught:
        _adapt(text)
    assert caught.value.path == "GetPatientsResult.Patients.PatientData[0].GuarantorDifferentThanPatient"


def test_entities_and_garbage_are_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><GetChargesResult>&a;</GetChargesResult>'
    with pytest.raises(AdapterError, match=r"DTD|entit"):
        _adapt(bomb)
    with pytest.raises(AdapterError, match="well-formed"):
        _adapt("<GetChargesResult>")
    with pytest.raises(AdapterError, match="no Tebra result"):
        _adapt("<Other/>")
    with pytest.raises(AdapterError, match="unknown encoding"):
        _adapt('<?xml version="1.0" encoding="tf-8"?><GetChargesResult/>')
