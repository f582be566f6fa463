"""DrChrono (REST API v4 "Hunt Valley" and webhooks) to canonical events.

Accepted payloads (JSON):

- a webhook delivery ``{"receiver": {...}, "object": {...}}``. DrChrono puts the event name in the
  ``X-drchrono-event`` header, not the body; the ingress may copy it into the body as ``"event"``
  (and the delivery id as ``"delivery"``). Without ``"event"`` the object's kind is told from its fields.
- a polled list: a page ``{"results": [...], "next": url|null}`` (optionally ``"resource":
  "line_items"`` etc.), a bare JSON list, or one object keyed by endpoint name holding several lists
  ``{"patients": [...], "line_items": [...], "transactions": [...], "patient_payments": [...],
  "patient_payment_log": [...], "appointments": [...]}`` (optionally ``"complete_ledger": true``);
- a single REST object.

What is read and what it becomes (field names as in DrChrono's OpenAPI):

- patient (``/api/patients``, ``PATIENT_CREATE``/``PATIENT_MODIFY``): ``id``, ``first_name``,
  ``last_name``, ``date_of_birth``, ``email``, ``cell_phone``, ``home_phone``, ``address``, ``city``,
  ``state``, ``zip_code``, ``preferred_language`` (ISO 639-2), ``disable_sms_messages``,
  ``patient_status`` (``D`` deceased), ``date_of_death``, ``responsible_party_name``/``_relation``,
  ``doctor``, ``updated_at`` → ``billing.patient.updated``. ``disable_sms_messages: true`` becomes
  ``consent.sms = false``; ``false`` records nothing (a suppression flag is not a consent). A
  responsible party other than ``Self`` makes ``guarantor_is_patient`` false.
- appointment (``/api/appointments``) → nothing: appointments carry no amounts; their line items do.
- line item (``/api/line_items``, ``LINE_ITEM_CREATE``/``LINE_ITEM_MODIFY``): ``id``, ``patient``,
  ``doctor``, ``code``, ``description``, ``service_date``, ``billed`` (else ``price`` x
  ``quantity``), ``balance_pt``, ``allowed``, ``updated_at`` → ``billing.charge.posted`` per line
  item; and, for a list that holds a patient's complete ledger, ``billing.account.updated`` per
  patient with ``balance`` = sum of ``balance_pt`` and ``oldest_unpaid_service_date`` = earliest
  ``service_date`` with ``balance_pt`` > 0. DrChrono has no patient-level balance field, so the
  balance is derived, so it needs every line item of the patient: a page or list of line items
  counts as complete unless it names a ``next`` page (a poller fetches
  ``/api/line_items?patient=<id>`` and merges the pages); an object keyed by endpoint names counts
  only with ``"complete_ledger": true`` (it usually joins a few line items to their transactions).
  A single webhook line item gives no balance.
- insurance transaction (``/api/transactions``): ``id``, ``line_item``, ``appointment``,
  ``patient``, ``ins_name`` (1 primary, 2 secondary), ``insurance.name``, ``ins_paid``,
  ``adjustment``, ``adjustment_group_code``, ``adjustment_reason``, ``claim_status``,
  ``trace_number``, ``updated_at`` → ``billing.claim.adjudicated`` per (appointment, payer order,
  trace number): DrChrono bills one claim per appointment. Each row carries one CAS-like group/reason
  pair; PR rows are the patient responsibility (PR-1 deductible, PR-2 coinsurance, PR-3 copay, other
  PR noncovered). ``billed``, ``allowed`` and ``service_date`` come from the line items the rows post
  to, which must be in the same payload. A blank group code with an amount is ``OA``; a blank reason
  is DrChrono's own ``0``. ``claim_status`` is the X12 CLP02 code (22, a reversal, is skipped).
- patient payment (``/api/patient_payments``): ``id``, ``patient``, ``amount``, ``payment_method``,
  ``payment_transaction_type``, ``received_date``, ``created_at``, ``updated_at`` →
  ``billing.payment.posted``. Refunds (``REF``) and negative corrections are skipped: contract v1
  has no reversal event; the next balance carries them.
- payment log (``/api/patient_payment_log``): ``id``, ``patient``, ``amount``, ``payment_method``,
  ``action``, ``updated_at``. ``C`` (create) → ``billing.payment.posted`` with ``payment_id``
  ``log-<id>`` (the log does not name the payment, so poll either the payments or the log, not
  both); ``F``/``A`` (fill, autofill: allocation of an existing payment) give nothing; ``U``/``D``
  give nothing for the same reason as refunds.

Webhook deletions (``LINE_ITEM_DELETE``, ``LINE_ITEM_TRANSACTION_DELETE``, ``CASH_PAYMENT_DELETE``,
``APPOINTMENT_DELETE``) raise `AdapterError`: contract v1 cannot express them, and a single-record
delivery on the dead-letter topic is how an operator learns of one. ``PING`` gives nothing. Other
event names (clinical, tasks, labs) are not billing events and raise `AdapterError`.

Payment method: ``CASH`` cash, ``CHCK`` check, card brands/``CRDT``/``DBIT``/Square card, others
(``PTPA``, ``ONPT``, ``DRCP``, ``OTHR``) other. Channel (inferred; DrChrono does not record it):
``ONPT`` (onpatient portal), ``PTPA`` and ``DRCP`` (online patient-payment products) portal, ``CHCK``
mail, everything else in person.

Practice: DrChrono objects name a doctor, not a practice. The practice id is the one in the caller's
source ``drchrono/practice-<id>`` when given, else ``doctor-<doctor id>``.

Time zone: DrChrono timestamps (``updated_at``, ``created_at``) are naive and its documentation does
not name their zone. They are read as UTC (`NAIVE_ZONE`): a fixed rule keeps replays deterministic,
and the error is bounded by the practice's UTC offset. Dates (service, posted) are kept as dates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from schemas.adapters.base import (
    DEFAULT_PAYMENT_CHANNEL,
    UTC,
    ZERO,
    AdapterError,
    Adjustment,
    Context,
    Draft,
    Ids,
    Record,
    address_data,
    charge_description,
    claim_data,
    claim_status,
    digest,
    draft,
    group_by,
    ids,
    language_tag,
    ledger_balance,
    load_json,
    parse_money,
    patient_data,
    payment_data,
    practice_from_source,
    records,
    start_of_day,
)

PLATFORM = "drchrono"
NAIVE_ZONE = UTC
"""Zone assumed for DrChrono's naive timestamps (see the module docstring)."""

RESOURCES = (
    "patients",
    "appointments",
    "line_items",
    "transactions",
    "patient_payments",
    "patient_payment_log",
)
_EVENT_RESOURCE = {
    "PATIENT_CREATE": "patients",
    "PATIENT_MODIFY": "patients",
    "APPOINTMENT_CREATE": "appointments",
    "APPOINTMENT_MODIFY": "appointments",
    "LINE_ITEM_CREATE": "line_items",
    "LINE_ITEM_MODIFY": "line_items",
}
DELETION_EVENTS = frozenset(
    {"LINE_ITEM_DELETE", "LINE_ITEM_TRANSACTION_DELETE", "CASH_PAYMENT_DELETE", "APPOINTMENT_DELETE"}
)

_METHOD = {
    "CASH": "cash",
    "CHCK": "check",
    "CRDT": "card",
    "DBIT": "card",
    "AMEX": "card",
    "VISA": "card",
    "MSTR": "card",
    "DISC": "card",
    "SQR1": "card",
    "SQRE": "card",
}
_CHANNEL = {"ONPT": "portal", "PTPA": "portal", "DRCP": "portal", "CHCK": "mail"}
_LANGUAGE_BLANKS = frozenset({"", "blank", "other", "unknown", "declined"})


@dataclass
class _Batch:
    """The records of a payload by resource kind, and whether lists are complete ledgers."""

    kinds: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    complete: bool = True


def map_payload(payload: bytes, context: Context) -> list[Draft]:
    """DrChrono JSON (webhook delivery, REST page or object) to drafts; see the module docstring."""
    batch = _batch(load_json(payload))
    practice = practice_from_source(PLATFORM, context.source)
    drafts: list[Draft] = []
    for record in batch.kinds["patients"]:
        drafts.append(_patient(record, practice))
    line_items = batch.kinds["line_items"]
    for record in line_items:
        drafts.append(_charge(record, practice))
    if batch.complete and line_items:
        drafts.extend(_balances(line_items, practice))
    drafts.extend(_claims(batch.kinds["transactions"], line_items, practice))
    for record in batch.kinds["patient_payments"]:
        drafts.extend(_payment(record, practice))
    for record in batch.kinds["patient_payment_log"]:
        drafts.extend(_payment_log(record, practice))
    return drafts


# -- payload shapes ---------------------------------------------------------------------------------


def _batch(document: Any) -> _Batch:
    batch = _Batch()
    if isinstance(document, list):
        for record in records(document, ""):
            batch.kinds[_kind_of(record)].append(record)
        return batch
    if not isinstance(document, dict):
        raise AdapterError("a DrChrono payload is a JSON object or list")
    if "object" in document:
        return _delivery(document)
    if "results" in document or "data" in document:
        key = "results" if "results" in document else "data"
        resource = document.get("resource")
        if resource is not None and resource not in RESOURCES:
            raise AdapterError(f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}", "resource")
        for record in records(document[key], key):
            batch.kinds[resource or _kind_of(record)].append(record)
        batch.complete = not document.get("next")
        return batch
    lists = [key for key in RESOURCES if key in document]
    if lists:
        for key in lists:
            batch.kinds[key].extend(records(document[key], key))
        complete = document.get("complete_ledger", False)
        if not isinstance(complete, bool):
            raise AdapterError("complete_ledger is true or false", "complete_ledger")
        batch.complete = complete
        return batch
    record = Record(document, "")
    batch.kinds[_kind_of(record)].append(record)
    batch.complete = False
    return batch


def _delivery(document: Mapping[str, Any]) -> _Batch:
    batch = _Batch(complete=False)
    event = document.get("event")
    if event is not None and not isinstance(event, str):
        raise AdapterError("the event name is text", "event")
    if event == "PING":
        return batch
    if event in DELETION_EVENTS:
        raise AdapterError(
            f"{event} has no canonical event in contract v1 (deletions are not representable); "
            "re-poll the patient's line items and payments",
            "event",
        )
    if event is not None and event not in _EVENT_RESOURCE:
        raise AdapterError(f"{event} is not a DrChrono billing event this adapter maps", "event")
    if not isinstance(document["object"], dict):
        raise AdapterError("the delivered object is a JSON object", "object")
    record = Record(document["object"], "object")
    batch.kinds[_EVENT_RESOURCE[event] if event else _kind_of(record)].append(record)
    return batch


def _kind_of(record: Record) -> str:
    """Which DrChrono endpoint an object comes from, told by fields only that endpoint has."""
    keys = record.data.keys()
    if "adjustment_group_code" in keys or "ins_paid" in keys:
        return "transactions"
    if "balance_pt" in keys or "procedure_type" in keys:
        return "line_items"
    if "payment_transaction_type" in keys or "received_date" in keys:
        return "patient_payments"
    if "action" in keys and "amount" in keys:
        return "patient_payment_log"
    if "scheduled_time" in keys and ("exam_room" in keys or "duration" in keys):
        return "appointments"
    if "first_name" in keys or "date_of_birth" in keys or "chart_id" in keys:
        return "patients"
    raise AdapterError("cannot tell which DrChrono object this is", record.path or None)


# -- records ----------------------------------------------------------------------------------------


def _who(record: Record, patient_key: str, practice: str | None) -> Ids:
    doctor = record.opt_text("doctor")
    native_practice = practice or (f"doctor-{doctor}" if doctor else "unknown")
    return ids(PLATFORM, record.text(patient_key), native_practice)


def _updated(record: Record) -> tuple[datetime | None, str]:
    """The record's ``updated_at`` as time, and its text as the event-id version (else a digest)."""
    moment = record.opt_timestamp("updated_at", NAIVE_ZONE)
    return moment, record.text("updated_at") if moment else digest(record.data)


def _patient(record: Record, practice: str | None) -> Draft:
    who = _who(record, "id", practice)
    moment, version = _updated(record)
    language = record.opt_text("preferred_language")
    relation = (record.opt_text("responsible_party_relation") or "").lower()
    deceased = record.opt_text("patient_status") == "D" or record.has("date_of_death")
    data = patient_data(
        given=record.opt_text("first_name"),
        family=record.opt_text("last_name"),
        birth_date=record.opt_date("date_of_birth"),
        email=record.opt_text("email"),
        mobile_phone=record.opt_text("cell_phone"),
        home_phone=record.opt_text("home_phone"),
        address=address_data(
            [record.opt_text("address")],
            record.opt_text("city"),
            record.opt_text("state"),
            record.opt_text("zip_code"),
        ),
        language=(language_tag(language) if language and language.lower() not in _LANGUAGE_BLANKS else None)
        or "en",
        consent={"sms": False} if record.opt_bool("disable_sms_messages") else {},
        flags={"deceased": deceased},
        guarantor_is_patient=not (record.has("responsible_party_name") and relation not in ("", "self")),
    )
    return draft(
        "billing.patient.updated",
        who,
        ("patient", who.patient_id, version),
        data,
        record.path,
        moment,
        {"birth_date": record.at("date_of_birth"), "name": record.at("first_name")},
    )


def _charge_amount(record: Record) -> Decimal:
    if record.has("billed"):
        return record.money("billed")
    total = record.decimal("price") * (record.decimal("quantity") if record.has("quantity") else Decimal(1))
    return parse_money(total, record.at("price"))


def _charge(record: Record, practice: str | None) -> Draft:
    who = _who(record, "patient", practice)
    moment, version = _updated(record)
    charge_id = record.text("id")
    code = record.opt_text("code")
    data = {
        "charge_id": charge_id,
        "service_date": record.date("service_date"),
        "description": charge_description(record.opt_text("description"), code),
        "amount": _charge_amount(record),
        "provider": f"doctor-{record.text('doctor')}" if record.has("doctor") else None,
    }
    return draft(
        "billing.charge.posted",
        who,
        ("line_item", charge_id, version),
        data,
        record.path,
        moment,
        {"amount": record.at("billed"), "service_date": record.at("service_date")},
    )


def _balances(line_items: list[Record], practice: str | None) -> list[Draft]:
    """One ``billing.account.updated`` per patient: the sum of ``balance_pt`` over their line items."""
    drafts = []
    for patient, items in group_by(line_items, "patient").items():
        data = ledger_balance(items, "balance_pt", "service_date")
        stamps = [(moment, item.text("updated_at")) for item in items if (moment := _updated(item)[0])]
        latest = max(stamps) if stamps else None
        version = latest[1] if latest else digest([item.data for item in items])
        drafts.append(
            draft(
                "billing.account.updated",
                _who(items[0], "patient", practice),
                ("balance", patient, version, str(data["balance"])),
                data,
                items[0].path,
                latest[0] if latest else None,
                {"balance": items[0].at("balance_pt")},
            )
        )
    return drafts


def _claims(transactions: list[Record], line_items: list[Record], practice: str | None) -> list[Draft]:
    """Insurance postings grouped into one adjudicated claim per appointment, payer order and check."""
    lines = {record.text("id"): record for record in line_items}
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in transactions:
        key = (
            record.text("appointment"),
            record.opt_text("ins_name") or "1",
            record.opt_text("trace_number") or "",
        )
        groups[key].append(record)
    drafts = []
    for (appointment, order, trace), rows in groups.items():
        posted: dict[str, Record] = {}
        for row in rows:
            line_id = row.text("line_item")
            if line_id not in lines:
                raise AdapterError(
                    f"line item {line_id} is not in the payload; a claim needs the billed amount and "
                    "service date of the line items its transactions post to",
                    row.at("line_item"),
                )
            posted[line_id] = lines[line_id]
        adjustments = [adj for row in rows if (adj := _adjustment(row)) is not None]
        paid = sum((row.money_or_zero("ins_paid") for row in rows), ZERO)
        responsibility = sum((a.amount for a in adjustments if a.group == "PR"), ZERO)
        allowed_values = [line.opt_money("allowed") for line in posted.values()]
        allowed = (
            sum((value for value in allowed_values if value is not None), ZERO)
            if all(value is not None for value in allowed_values)
            else None
        )
        codes = [row.opt_text("claim_status") for row in rows]
        code = next((c for c in codes if c), None)
        if code == "22":
            continue  # a reversal: contract v1 has no reversal event; the corrected posting follows
        insurer = rows[0].child("insurance")
        payer = (insurer.opt_text("name") if insurer else None) or f"insurance {order}"
        data = claim_data(
            claim_id=f"{appointment}-ins{order}",
            payer=payer,
            service_date=min(line.date("service_date") for line in posted.values()),
            billed=sum((_charge_amount(line) for line in posted.values()), ZERO),
            insurance_paid=paid,
            adjustments=adjustments,
            allowed=allowed,
            status=claim_status(code, paid, responsibility, rows[0].at("claim_status")),
        )
        stamps = sorted((row.text("id"), row.opt_text("updated_at") or "") for row in rows)
        moments = [m for row in rows if (m := row.opt_timestamp("updated_at", NAIVE_ZONE)) is not None]
        who = _who(rows[0], "patient", practice)
        drafts.append(
            draft(
                "billing.claim.adjudicated",
                who,
                ("claim", appointment, order, trace, digest(stamps)),
                data,
                rows[0].path,
                max(moments, default=None),
                {"adjustments": rows[0].at("adjustment"), "insurance_paid": rows[0].at("ins_paid")},
            )
        )
    return drafts


def _adjustment(row: Record) -> Adjustment | None:
    amount = row.money_or_zero("adjustment")
    if amount == 0:
        return None
    group = row.opt_text("adjustment_group_code") or "OA"
    if group not in ("PR", "CO", "OA", "PI"):
        raise AdapterError(f"unknown adjustment group code {group!r}", row.at("adjustment_group_code"))
    return Adjustment(group, row.opt_text("adjustment_reason") or "0", amount)


def _posted_at(record: Record, *date_keys: str) -> datetime:
    created = record.opt_timestamp("created_at", NAIVE_ZONE) or record.opt_timestamp("updated_at", NAIVE_ZONE)
    if created:
        return created
    for key in date_keys:
        day: date | None = record.opt_date(key)
        if day:
            return start_of_day(day)
    raise AdapterError("a payment needs created_at, updated_at or a date", record.at(date_keys[0]))


def _payment_draft(record: Record, practice: str | None, kind: str, payment_id: str) -> Draft:
    method_code = (record.opt_text("payment_method") or "").upper()
    moment, version = _updated(record)
    data = payment_data(
        payment_id,
        record.money("amount"),
        _posted_at(record, "received_date", "posted_date"),
        _METHOD.get(method_code, "other"),
        _CHANNEL.get(method_code, DEFAULT_PAYMENT_CHANNEL),
    )
    return draft(
        "billing.payment.posted",
        _who(record, "patient", practice),
        (kind, record.text("id"), version),
        data,
        record.path,
        moment,
        {"amount": record.at("amount")},
    )


def _payment(record: Record, practice: str | None) -> list[Draft]:
    if record.opt_text("payment_transaction_type") == "REF" or record.money("amount") <= 0:
        return []  # refunds and negative corrections: no reversal event in contract v1
    return [_payment_draft(record, practice, "patient_payment", record.text("id"))]


def _payment_log(record: Record, practice: str | None) -> list[Draft]:
    action = record.text("action")
    if action not in ("C", "U", "D", "F", "A"):
        raise AdapterError(f"unknown payment log action {action!r}", record.at("action"))
    if action != "C" or record.money("amount") <= 0:
        return []  # F/A allocate an existing payment; U/D and negative amounts are not representable
    return [_payment_draft(record, practice, "payment_log", f"log-{record.text('id')}")]
