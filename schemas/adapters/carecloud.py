"""CareCloud REST API v2 patients to canonical events.

**What is unknown.** CareCloud publishes no billing API documentation: ledgers, transaction
history, balances, statements, payments and payment plans have no public endpoint or field list, and
no webhooks are documented. What is visible (integrator code and a mock of the v2 API) are the
patient endpoints (``GET /v2/patients/{id}``, ``POST /v2/patients/search``, ``POST /v2/patients``)
and scheduling. This adapter therefore maps patients only; any other object is an `AdapterError`
saying so, rather than a guess at field names. When CareCloud billing data becomes available, a
mapping belongs here.

Accepted payloads (JSON):

- a patient in the create/detail shape ``{"patient": {...}, "addresses": [...], "phones": [...]}``;
- a search result ``{"patients": [{...}, ...]}``;
- a bare patient object ``{"id": "<uuid>", "first_name": ..., ...}``.

Fields read: ``id`` (UUID), ``first_name``, ``last_name``, ``date_of_birth`` (``YYYY-MM-DD`` or
``MM/DD/YYYY``), ``email`` (if present), ``addresses[]`` (``line1``..``line3``, ``city``, ``state``,
``zip_code``, ``is_primary``), ``phones[]`` (``phone_number``, ``phone_type_code``: ``M`` mobile,
``H`` home, inferred; ``is_primary``), ``updated_at`` (if present). Addresses and phones may sit
beside ``patient`` or inside it. The primary entry wins, else the first.

Becomes ``billing.patient.updated``. Records seen so far carry no modification time: events then take
``received_at`` and their ids a digest of the record. Practice: CareCloud's business entity is not in
the patient record; the practice id is the one in the caller's source ``carecloud/practice-<id>``,
else ``unknown``. Timestamps, if present, are ISO 8601; naive ones are read as UTC.
"""

from __future__ import annotations

from schemas.adapters.base import (
    UTC,
    AdapterError,
    Context,
    Draft,
    Record,
    address_data,
    digest,
    draft,
    ids,
    load_json,
    patient_data,
    practice_from_source,
    records,
)

PLATFORM = "carecloud"
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")


def map_payload(payload: bytes, context: Context) -> list[Draft]:
    """A CareCloud patient payload to drafts; see the module docstring."""
    document = load_json(payload)
    practice = practice_from_source(PLATFORM, context.source) or "unknown"
    if not isinstance(document, dict):
        raise AdapterError("a CareCloud payload is a JSON object")
    if "patients" in document:
        return [_patient(record, record, practice) for record in records(document["patients"], "patients")]
    if isinstance(document.get("patient"), dict):
        outer = Record(document, "")
        return [_patient(Record(document["patient"], "patient"), outer, practice)]
    if "id" in document and ("first_name" in document or "last_name" in document):
        record = Record(document, "")
        return [_patient(record, record, practice)]
    raise AdapterError(
        "not a CareCloud patient; CareCloud's billing objects (ledger, balances, payments) are not "
        "publicly documented, so only patients are mapped"
    )


def _primary(record: Record, outer: Record, key: str) -> Record | None:
    """The primary (else first) entry of a list that may sit in the patient or beside it."""
    entries = record.children(key) or outer.children(key)
    return next((entry for entry in entries if entry.opt_bool("is_primary")), entries[0] if entries else None)


def _phone(record: Record, outer: Record, code: str) -> str | None:
    for phone in record.children("phones") or outer.children("phones"):
        if (phone.opt_text("phone_type_code") or "").upper() == code:
            return phone.opt_text("phone_number")
    return None


def _patient(record: Record, outer: Record, practice: str) -> Draft:
    who = ids(PLATFORM, record.text("id"), practice)
    moment = record.opt_timestamp("updated_at", UTC)
    version = record.text("updated_at") if moment else digest(outer.data)
    entry = _primary(record, outer, "addresses")
    address = None
    if entry is not None:
        address = address_data(
            [entry.opt_text(key) for key in ("line1", "line2", "line3")],
            entry.opt_text("city"),
            entry.opt_text("state"),
            entry.opt_text("zip_code"),
        )
    data = patient_data(
        given=record.opt_text("first_name"),
        family=record.opt_text("last_name"),
        birth_date=record.opt_date("date_of_birth", DATE_FORMATS),
        email=record.opt_text("email"),
        mobile_phone=_phone(record, outer, "M"),
        home_phone=_phone(record, outer, "H"),
        address=address,
    )
    return draft(
        "billing.patient.updated",
        who,
        ("patient", who.patient_id, version),
        data,
        record.path,
        moment,
        {"birth_date": record.at("date_of_birth")},
    )
