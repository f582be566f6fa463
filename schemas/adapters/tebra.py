"""Tebra (formerly Kareo) SOAP API 2.1 results to canonical events.

Input: the XML of a stored response: a whole SOAP envelope or just the ``Get…Result`` element, with
or without the ``http://www.kareo.com/api/schemas/`` namespace. It is parsed with ``defusedxml``
(no DTDs, no entities). Every WSDL data member is ``xs:string``; values are parsed strictly: amounts
as plain decimal text (``"185.00"``, ``"-45.00"``; no currency signs or thousands separators, at most
two places), dates as ``M/D/YYYY`` or ISO ``YYYY-MM-DD[THH:MM:SS]``, timestamps as
``M/D/YYYY h:mm:ss AM`` or ISO, booleans as ``true``/``false``. An ``ErrorResponse`` with
``IsError = true`` or a failed ``SecurityResponse`` is an `AdapterError`. Rows with an empty ``ID``
are Tebra's empty placeholders and are skipped.

- ``GetPatientsResult`` → ``PatientData``: ``ID``, ``PracticeId``, ``FirstName``, ``LastName``,
  ``DOB``, ``EmailAddress``, ``MobilePhone``, ``HomePhone``, ``AddressLine1``/``2``, ``City``,
  ``State``, ``ZipCode``, ``GuarantorDifferentThanPatient``, ``LastModifiedDate`` →
  ``billing.patient.updated``; with ``PatientBalance`` and ``DefaultCasePayerScenario`` also
  ``billing.account.updated`` (``balance`` = ``PatientBalance``, ``self_pay`` when the default case's
  payer scenario is *Self Pay*). ``GetAllPatients`` rows carry no balance and give no account event.
  ``CollectionCategoryName`` is practice-defined text, so ``status`` stays ``open``.
- ``GetChargesResult`` → ``ChargeData``: ``ID``, ``EncounterID``, ``PatientID``, ``PracticeID``,
  ``ServiceStartDate``, ``ProcedureCode``, ``ProcedureName``, ``TotalCharges``,
  ``RenderingProviderName``, ``Status``, ``LastModifiedDate`` → ``billing.charge.posted``; and per
  payer ``Primary``/``Secondary``/``Tertiary`` with an ``…InsuranceAdjudicationDate``: ``…CompanyName``,
  ``…InsuranceAllowed``, ``…InsurancePayment``, ``…InsuranceDeductible``/``Coinsurance``/``Copay``,
  ``…InsuranceContractAdjustment`` (+``Reason``), ``…InsuranceSecondaryAdjustment`` (+``Reason``)
  (all ``<Order>Insurance…`` members) → ``billing.claim.adjudicated``: deductible, coinsurance and
  copay become PR-1/PR-2/PR-3 adjustments and the patient responsibility, the contract adjustment a
  CO adjustment, the secondary adjustment an OA one (reason text like ``45`` or ``CO-45``; blank is
  ``0``). ``claim_id`` is ``<EncounterID>/<ID>/<payer order>``. Voided charges (``Status``
  *Voided*) are skipped: contract v1 has no reversal event; the patient balance carries them.
- ``GetTransactionsResult`` → ``TransactionData``: ``ID``, ``Type``, ``Amount``, ``PayerType``,
  ``PatientID``, ``PostingDate``, ``LastModifiedDate`` → ``billing.payment.posted`` for rows with
  ``PayerType`` *Patient* and ``Type`` *Payment* (the amount's sign is dropped: ledgers may sign
  credits negative); other rows (charges, adjustments, insurance) give nothing, their facts come
  through ``GetCharges``. The WSDL does not enumerate ``Type``/``PayerType``: the two values matched
  are assumptions to check against a sandbox.
- ``GetPaymentsResult`` → ``PaymentData``: ``ID``, ``PracticeId``, ``PayerType``, ``Amount``,
  ``PaymentMethod``, ``PostDate``, ``LastModifiedDate`` → ``billing.payment.posted`` for ``PayerType``
  *Patient*. The 2.1 WSDL's ``PaymentData`` has **no patient reference**, so such a row needs a
  ``PatientID`` member added by the connector (from the charge it was applied to); without one it is
  an `AdapterError` (map ``GetTransactions`` instead). Insurance and other payer rows give nothing.

Practice: the row's ``PracticeID``/``PracticeId``, else the caller's source ``tebra/practice-<id>``,
else ``unknown``.

Payment method (``PaymentMethodCode``): Cash, Check, CreditCard (card), ElectronicFundsTransfer (ach),
anything else other. Channel is not in the API; payments are taken as in person.

Time zone: Tebra's timestamps are naive and the WSDL says nothing of their zone; they are read as
UTC (`NAIVE_ZONE`) so replays are deterministic, with an error bounded by the practice's UTC offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from schemas.adapters.base import (
    UTC,
    ZERO,
    AdapterError,
    Adjustment,
    Context,
    Draft,
    Ids,
    Record,
    address_data,
    adjudicated_status,
    charge_description,
    claim_data,
    digest,
    draft,
    ids,
    join_path,
    patient_data,
    payment_data,
    practice_from_source,
    start_of_day,
)

PLATFORM = "tebra"
NAIVE_ZONE = UTC
"""Zone assumed for Tebra's naive timestamps (see the module docstring)."""

DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")
TIMESTAMP_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
PAYER_ORDERS = ("Primary", "Secondary", "Tertiary")

_METHOD = {"cash": "cash", "check": "check", "creditcard": "card", "electronicfundstransfer": "ach"}
_REASON = re.compile(r"^(?:(PR|CO|OA|PI|CR)[-\s]?)?([A-Za-z0-9]{1,5})$")


def map_payload(payload: bytes, context: Context) -> list[Draft]:
    """A stored Tebra SOAP result to drafts; see the module docstring."""
    result = _result_element(_parse(payload))
    name = _local(result.tag)
    list_name, item_name, mapper = _RESULTS[name]
    _check_response(result, name)
    practice = practice_from_source(PLATFORM, context.source) or "unknown"
    drafts: list[Draft] = []
    container = _child(result, list_name)
    if container is None:
        return drafts
    items = [element for element in container if _local(element.tag) == item_name]
    for index, element in enumerate(items):
        record = Record(_flatten(element), join_path(f"{name}.{list_name}.{item_name}", index))
        if not record.has("ID"):
            continue  # an empty placeholder row
        drafts.extend(mapper(record, practice))
    return drafts


# -- XML --------------------------------------------------------------------------------------------


def _parse(payload: bytes) -> Element:
    try:
        return fromstring(payload)
    except DefusedXmlException as exc:
        raise AdapterError(f"XML with DTDs or entities is refused: {exc}") from None
    except ParseError as exc:
        raise AdapterError(f"payload is not well-formed XML: {exc}") from None
    except LookupError as exc:  # an XML declaration naming an encoding Python does not know
        raise AdapterError(f"payload declares an unknown encoding: {exc}") from None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: Element, name: str) -> Element | None:
    return next((child for child in element if _local(child.tag) == name), None)


def _result_element(root: Element) -> Element:
    for element in root.iter():
        name = _local(element.tag)
        if name == "Fault":
            fault = next((e.text for e in element.iter() if _local(e.tag) in ("faultstring", "Text")), None)
            raise AdapterError(f"SOAP fault: {(fault or '').strip() or 'no fault text'}", "Fault")
        if name in _RESULTS:
            return element
    raise AdapterError(f"no Tebra result element ({', '.join(_RESULTS)}) in the payload")


def _flatten(element: Element) -> dict[str, Any]:
    """An XML element's children as a dict: text for leaves, nested dicts (lists when repeated)."""
    data: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        value: Any = _flatten(child) if len(child) else (child.text or "").strip()
        if name in data:
            existing = data[name]
            data[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            data[name] = value
    return data


def _check_response(result: Element, name: str) -> None:
    for part, flag, failed_when in (
        ("ErrorResponse", "IsError", True),
        ("SecurityResponse", "SecurityResultSuccess", False),
    ):
        element = _child(result, part)
        if element is None:
            continue
        record = Record(_flatten(element), f"{name}.{part}")
        if record.opt_bool(flag) is failed_when:
            message = record.opt_text("ErrorMessage") or record.opt_text("SecurityResult") or "request failed"
            raise AdapterError(f"Tebra reported an error: {message}", record.at(flag))


# -- rows -------------------------------------------------------------------------------------------


def _who(record: Record, fallback: str, patient_key: str = "PatientID") -> Ids:
    practice = record.opt_text("PracticeID") or record.opt_text("PracticeId") or fallback
    return ids(PLATFORM, record.text(patient_key), practice)


def _modified(record: Record) -> tuple[datetime | None, str]:
    moment = record.opt_timestamp("LastModifiedDate", NAIVE_ZONE, TIMESTAMP_FORMATS)
    return moment, moment.isoformat() if moment else digest(record.data)


def _patient(record: Record, practice: str) -> list[Draft]:
    who = _who(record, practice, "ID")
    moment, version = _modified(record)
    data = patient_data(
        given=record.opt_text("FirstName"),
        family=record.opt_text("LastName"),
        birth_date=record.opt_date("DOB", DATE_FORMATS),
        email=record.opt_text("EmailAddress"),
        mobile_phone=record.opt_text("MobilePhone"),
        home_phone=record.opt_text("HomePhone"),
        address=address_data(
            [record.opt_text("AddressLine1"), record.opt_text("AddressLine2")],
            record.opt_text("City"),
            record.opt_text("State"),
            record.opt_text("ZipCode"),
        ),
        guarantor_is_patient=not record.opt_bool("GuarantorDifferentThanPatient"),
    )
    drafts = [
        draft(
            "billing.patient.updated",
            who,
            ("patient", who.patient_id, version),
            data,
            record.path,
            moment,
            {"birth_date": record.at("DOB")},
        )
    ]
    if record.has("PatientBalance"):
        balance = record.money("PatientBalance")
        scenario = (record.opt_text("DefaultCasePayerScenario") or "").lower()
        account = {"balance": balance, "status": "open", "self_pay": "self pay" in scenario}
        drafts.append(
            draft(
                "billing.account.updated",
                who,
                ("balance", who.patient_id, version, str(balance)),
                account,
                record.path,
                moment,
                {"balance": record.at("PatientBalance")},
            )
        )
    return drafts


def _charge(record: Record, practice: str) -> list[Draft]:
    if (record.opt_text("Status") or "").lower() == "voided":
        return []
    who = _who(record, practice)
    moment, version = _modified(record)
    charge_id = record.text("ID")
    code = record.opt_text("ProcedureCode")
    service_date = record.date("ServiceStartDate", DATE_FORMATS)
    billed = record.money("TotalCharges")
    data = {
        "charge_id": charge_id,
        "service_date": service_date,
        "description": charge_description(record.opt_text("ProcedureName"), code),
        "amount": billed,
        "provider": record.opt_text("RenderingProviderName"),
    }
    drafts = [
        draft(
            "billing.charge.posted",
            who,
            ("charge", charge_id, version),
            data,
            record.path,
            moment,
            {"amount": record.at("TotalCharges"), "service_date": record.at("ServiceStartDate")},
        )
    ]
    for order in PAYER_ORDERS:
        prefix = f"{order}Insurance"
        if not record.has(f"{prefix}AdjudicationDate"):
            continue
        adjustments = _payer_adjustments(record, prefix)
        paid = record.money_or_zero(f"{prefix}InsurancePayment")
        responsibility = sum((a.amount for a in adjustments if a.group == "PR"), ZERO)
        encounter = record.opt_text("EncounterID")
        claim = claim_data(
            claim_id="/".join(part for part in (encounter, charge_id, order.lower()) if part),
            payer=record.opt_text(f"{prefix}CompanyName") or f"{order.lower()} insurance",
            service_date=service_date,
            billed=billed,
            insurance_paid=paid,
            adjustments=adjustments,
            allowed=record.opt_money(f"{prefix}InsuranceAllowed"),
            status=adjudicated_status(paid, responsibility),
        )
        adjudicated = record.date(f"{prefix}AdjudicationDate", DATE_FORMATS)
        drafts.append(
            draft(
                "billing.claim.adjudicated",
                who,
                ("claim", charge_id, order.lower(), version),
                claim,
                record.path,
                moment or start_of_day(adjudicated),
                {"allowed": record.at(f"{prefix}InsuranceAllowed")},
            )
        )
    return drafts


def _payer_adjustments(record: Record, prefix: str) -> list[Adjustment]:
    adjustments = []
    for reason, member in (("1", "Deductible"), ("2", "Coinsurance"), ("3", "Copay")):
        amount = record.money_or_zero(f"{prefix}Insurance{member}")
        if amount:
            adjustments.append(Adjustment("PR", reason, amount))
    for member, default_group in (("ContractAdjustment", "CO"), ("SecondaryAdjustment", "OA")):
        amount = record.money_or_zero(f"{prefix}Insurance{member}")
        if not amount:
            continue
        key = f"{prefix}Insurance{member}Reason"
        match = _REASON.match(record.opt_text(key) or "0")
        if match is None:
            raise AdapterError("expected a claim adjustment reason code such as 45 or CO-45", record.at(key))
        adjustments.append(Adjustment(match.group(1) or default_group, match.group(2), amount))
    return adjustments


def _payment_draft(
    record: Record, who: Ids, kind: str, amount: Decimal, posted_key: str, method: str
) -> Draft:
    moment, version = _modified(record)
    posted = record.opt_timestamp(posted_key, NAIVE_ZONE, TIMESTAMP_FORMATS) or moment
    if posted is None:
        raise AdapterError("a payment needs a posting date", record.at(posted_key))
    data = payment_data(f"{kind}-{record.text('ID')}", amount, posted, method)
    return draft(
        "billing.payment.posted",
        who,
        (kind, record.text("ID"), version),
        data,
        record.path,
        moment or posted,
        {"amount": record.at("Amount")},
    )


def _payment(record: Record, practice: str) -> list[Draft]:
    if (record.opt_text("PayerType") or "").lower() != "patient":
        return []
    if not record.has("PatientID"):
        raise AdapterError(
            "a patient payment from GetPayments names no patient (PaymentData has no PatientID in the "
            "2.1 WSDL); add PatientID in the connector or map GetTransactions instead",
            record.at("PatientID"),
        )
    method = _METHOD.get((record.opt_text("PaymentMethod") or "").replace(" ", "").lower(), "other")
    return [
        _payment_draft(record, _who(record, practice), "payment", record.money("Amount"), "PostDate", method)
    ]


def _transaction(record: Record, practice: str) -> list[Draft]:
    payer = (record.opt_text("PayerType") or "").lower()
    kind = (record.opt_text("Type") or "").lower()
    if payer != "patient" or kind != "payment":
        return []
    amount = abs(record.money("Amount"))
    return [_payment_draft(record, _who(record, practice), "transaction", amount, "PostingDate", "other")]


_RESULTS: dict[str, tuple[str, str, Callable[[Record, str], list[Draft]]]] = {
    "GetPatientsResult": ("Patients", "PatientData", _patient),
    "GetChargesResult": ("Charges", "ChargeData", _charge),
    "GetPaymentsResult": ("Payments", "PaymentData", _payment),
    "GetTransactionsResult": ("Transactions", "TransactionData", _transaction),
}
