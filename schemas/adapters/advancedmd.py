"""AdvancedMD Connect API responses (JSON form) to canonical events.

**What is unknown.** AdvancedMD's billing API (the "Connect" XML-RPC ``ppmdmsg`` actions and the PM
REST API) is gated by a developer agreement and has no public specification; its public FHIR R4 API
is read-only and clinical (only ``Coverage`` touches billing). The action names and attribute names
below come from integrator code that calls the real system (``getdemographic``, ``gettxhistory``);
the *response layout* is not published and is an assumption of this module: a ``PPMDResults``
object holding ``Results``, XML attributes as ``"@name"`` keys (the JSON form the API uses for
requests), lists of repeated elements, and amounts and dates as text. Check it against a sandbox
before relying on it; a payload of another shape is an `AdapterError`, never a silent guess. Nothing
is known of webhooks (there are none; polling uses ``getupdated*`` with ``@datechanged``), of ERA
(reported not to be available through the API) or of payment plans beyond a ``paymentplan`` flag.

Accepted payload::

    {"PPMDResults": {"Results": {"@success": "1",
        "patientlist": {"patient": [{"@id": "...", "@name": "LAST,FIRST", "@dob": "MM/DD/YYYY", ...}]},
        "chargelist": {"charge": [{"@id": "...", "@patientid": "...", "@dos": "...", "@fee": "185.00",
                                   "@patbal": "45.00", "@void": "0",
                                   "paymentlist": {"payment": [{"@id": "...", "@amount": "45.00", ...}]}}]}}}}

- ``patientlist.patient`` (``getdemographic``/``getupdatedpatients``): ``id``, ``name``
  (``LAST,FIRST MIDDLE``) or ``firstname``/``lastname``, ``dob``, ``email``, ``homephone``,
  ``cellphone`` (on the patient or a nested ``contactinfo``), ``address1``, ``address2``, ``city``,
  ``state``, ``zip`` (on the patient or a nested ``address``) → ``billing.patient.updated``.
- ``chargelist.charge`` (``gettxhistory``): ``id``, ``patientid``, ``dos``, ``proccode``,
  ``provcode``, ``fee``, ``patbal``, ``void`` → ``billing.charge.posted`` per charge that is not void,
  and ``billing.account.updated`` per patient with ``balance`` = sum of ``patbal`` and the earliest
  ``dos`` with ``patbal`` > 0 (``gettxhistory`` is the patient's whole financial history; a
  connector merges its pages into one payload).
- ``charge.paymentlist.payment``: ``id``, ``amount``, ``paycode``, ``paysource``, ``carrier``,
  ``paymethod``, ``postingdate``, ``depositdate`` → ``billing.payment.posted`` per patient payment,
  the amounts of one payment id applied to several charges summed. A payment that names a
  ``carrier``, has ``paysource`` 2 or ``paycode`` ``PI`` is an insurance payment and gives nothing
  (the REST API's ``PP``/``PI`` codes; inferred). Non-positive amounts (reversals) give nothing.

``writeofflist`` rows are insurance or contractual write-offs and give nothing (the balance carries
them). Records carry no modification time: events take ``received_at`` (payments their posting date)
and their ids a digest of the record. Practice: AdvancedMD office keys are not in the records; the
practice id is the one in the caller's source ``advancedmd/practice-<office key>``, else
``unknown``. Dates are ``MM/DD/YYYY`` or ISO.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from schemas.adapters.base import (
    ZERO,
    AdapterError,
    Context,
    Draft,
    Ids,
    Record,
    address_data,
    charge_description,
    digest,
    draft,
    group_by,
    ids,
    ledger_balance,
    load_json,
    method_from_text,
    patient_data,
    payment_data,
    practice_from_source,
    start_of_day,
)

PLATFORM = "advancedmd"
DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%Y %I:%M:%S %p")


def map_payload(payload: bytes, context: Context) -> list[Draft]:
    """An AdvancedMD response (JSON form) to drafts; see the module docstring."""
    results = _results(load_json(payload))
    practice = practice_from_source(PLATFORM, context.source) or "unknown"
    drafts: list[Draft] = []
    for record in _rows(results, "patientlist", "patient"):
        drafts.append(_patient(record, practice))
    charges = [record for record in _rows(results, "chargelist", "charge") if not _is_void(record)]
    for record in charges:
        drafts.append(_charge(record, practice))
    drafts.extend(_balances(charges, practice))
    drafts.extend(_payments(charges, practice))
    if not drafts and not _has_lists(results):
        raise AdapterError("no patientlist or chargelist in the results", "PPMDResults.Results")
    return drafts


# -- shapes -----------------------------------------------------------------------------------------


def _attrs(value: Mapping[str, Any]) -> dict[str, Any]:
    """An element in JSON form with attribute keys unprefixed (``"@id"`` → ``"id"``)."""
    return {key[1:] if key.startswith("@") else key: item for key, item in value.items()}


def _results(document: Any) -> Record:
    if not isinstance(document, dict) or not isinstance(document.get("PPMDResults"), dict):
        raise AdapterError("an AdvancedMD payload is an object with PPMDResults", "PPMDResults")
    envelope = Record(_attrs(document["PPMDResults"]), "PPMDResults")
    error = envelope.child("Error")
    if error is not None:
        raise AdapterError(f"AdvancedMD reported an error: {_error_text(error.data).strip()}", error.path)
    results = envelope.child("Results")
    if results is None:
        raise AdapterError("PPMDResults has no Results", envelope.at("Results"))
    record = Record(_attrs(results.data), results.path)
    if record.opt_text("success") == "0":
        raise AdapterError("AdvancedMD reported success=0", record.at("success"))
    return record


def _error_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return " ".join(_error_text(item) for item in value.values())
    if isinstance(value, list):
        return " ".join(_error_text(item) for item in value)
    return str(value)


def _has_lists(results: Record) -> bool:
    return results.has("patientlist") or results.has("chargelist")


def _rows(results: Record, list_name: str, item_name: str) -> list[Record]:
    container = results.child(list_name)
    if container is None:
        return []
    return [Record(_attrs(row.data), row.path) for row in container.children(item_name)]


def _nested(record: Record, name: str) -> Record:
    """A nested element's attributes merged under the record's own (either may hold contact fields)."""
    child = record.child(name)
    merged = {**(_attrs(child.data) if child else {}), **record.data}
    return Record(merged, record.path)


def _is_void(record: Record) -> bool:
    return (record.opt_text("void") or "0") not in ("0", "")


# -- rows -------------------------------------------------------------------------------------------


def _patient(record: Record, practice: str) -> Draft:
    who = ids(PLATFORM, record.text("id"), practice)
    contact = _nested(_nested(record, "contactinfo"), "address")
    given, family = record.opt_text("firstname") or "", record.opt_text("lastname") or ""
    if record.has("name") and not (given or family):
        family, _, given = record.text("name").partition(",")
    data = patient_data(
        given=given.strip().title(),
        family=family.strip().title(),
        birth_date=record.opt_date("dob", DATE_FORMATS),
        email=contact.opt_text("email"),
        mobile_phone=contact.opt_text("cellphone"),
        home_phone=contact.opt_text("homephone"),
        address=address_data(
            [contact.opt_text("address1"), contact.opt_text("address2")],
            contact.opt_text("city"),
            contact.opt_text("state"),
            contact.opt_text("zip"),
        ),
    )
    return draft(
        "billing.patient.updated",
        who,
        ("patient", who.patient_id, digest(record.data)),
        data,
        record.path,
        None,
        {"birth_date": record.at("dob")},
    )


def _charge_who(record: Record, practice: str) -> Ids:
    return ids(PLATFORM, record.text("patientid"), practice)


def _charge(record: Record, practice: str) -> Draft:
    charge_id = record.text("id")
    code = record.opt_text("proccode")
    data = {
        "charge_id": charge_id,
        "service_date": record.date("dos", DATE_FORMATS),
        "description": charge_description(None, code),
        "amount": record.money("fee"),
        "provider": record.opt_text("provcode"),
    }
    return draft(
        "billing.charge.posted",
        _charge_who(record, practice),
        ("charge", charge_id, digest({k: v for k, v in record.data.items() if not isinstance(v, dict)})),
        data,
        record.path,
        None,
        {"amount": record.at("fee"), "service_date": record.at("dos")},
    )


def _balances(charges: list[Record], practice: str) -> list[Draft]:
    """One ``billing.account.updated`` per patient: the sum of ``patbal`` over their charges."""
    return [
        draft(
            "billing.account.updated",
            _charge_who(rows[0], practice),
            ("balance", patient, digest([row.data for row in rows])),
            ledger_balance(rows, "patbal", "dos", DATE_FORMATS),
            rows[0].path,
            None,
            {"balance": rows[0].at("patbal")},
        )
        for patient, rows in group_by(charges, "patientid").items()
    ]


def _is_insurance(payment: Record) -> bool:
    return (
        payment.has("carrier")
        or payment.opt_text("paysource") == "2"
        or (payment.opt_text("paycode") or "").upper() == "PI"
    )


def _payments(charges: list[Record], practice: str) -> list[Draft]:
    """Patient payments of the charges' payment lists, one per payment id."""
    applied: dict[str, list[tuple[Record, Record]]] = defaultdict(list)
    for charge in charges:
        payments = charge.child("paymentlist")
        if payments is None:
            continue
        for row in payments.children("payment"):
            payment = Record(_attrs(row.data), row.path)
            if not _is_insurance(payment):
                applied[payment.text("id")].append((charge, payment))
    drafts: list[Draft] = []
    for payment_id, parts in applied.items():
        amount: Decimal = sum((payment.money("amount") for _, payment in parts), ZERO)
        if amount <= 0:
            continue
        charge, payment = parts[0]
        day = payment.opt_date("postingdate", DATE_FORMATS) or payment.opt_date("depositdate", DATE_FORMATS)
        if day is None:
            raise AdapterError("a payment needs a postingdate or depositdate", payment.at("postingdate"))
        data = payment_data(
            payment_id, amount, start_of_day(day), method_from_text(payment.opt_text("paymethod"))
        )
        drafts.append(
            draft(
                "billing.payment.posted",
                _charge_who(charge, practice),
                ("payment", payment_id, digest([p.data for _, p in parts])),
                data,
                payment.path,
                start_of_day(day),
                {"amount": payment.at("amount")},
            )
        )
    return drafts
