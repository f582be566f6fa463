"""What every platform adapter shares: the error type, strict scalar parsing, native-record access,
identifier rules, claim arithmetic and the step that turns drafts into contract-valid events.

An adapter module reads its native payload into `Draft` objects (type, data, native identity, time)
and `finish` turns them into CloudEvents validated by `schemas.events.parse_event`, so every output is
contract-valid and every failure is an `AdapterError` that names the offending native field.

Identifier rules (the same on every platform, so that events of one patient meet on one Kafka key):

- ``patient_id`` is the platform's own patient id, unchanged (a connector writing back needs it);
- ``account_id`` is ``"<platform>:<patient id>"``: one billing account per patient per platform
  (none of the platforms exposes a guarantor account id that every record carries);
- ``practice_id`` is ``"<platform>:<practice id>"`` and the default CloudEvents ``source`` is
  ``"<platform>/practice-<practice id>"``; the caller's ``source`` wins when given;
- event ids are ``"<platform>:<record kind>:<native id>:<version>"`` where the version is the native
  updated/posted timestamp text, or a digest of the record when it has none, so a redelivered record
  yields the same id and is de-duplicated.

Money is parsed from text (or JSON numbers already read as `Decimal`), never through `float`; an amount
with more than two decimal places is an error naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from schemas.common import utc_text
from schemas.events import CanonicalEvent, InvalidEvent, parse_event

UTC = UTC
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("999999999999.99")
"""The contract's money has at most 14 digits, two of them after the point."""

ISO_DATE = ("%Y-%m-%d",)
CalendarDate = date
"""`datetime.date` under a name that `Record.date` does not shadow."""


class AdapterError(ValueError):
    """A native payload that cannot be mapped onto canonical events.

    ``path`` is the dotted path of the offending native field (``object.balance_pt``,
    ``entry[2].resource.total[0].amount.value``, ``CLP[1].CLP04``), or ``None`` when the payload as a
    whole is at fault (not JSON, not XML, unknown platform).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


def join_path(base: str, key: str | int) -> str:
    """``join_path("object", "patient") == "object.patient"``; integers become ``[i]``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


# -- scalars ----------------------------------------------------------------------------------------

_AMOUNT_TEXT = re.compile(r"^[+-]?\d+(\.\d+)?$")


def parse_decimal(value: object, path: str) -> Decimal:
    """An exact decimal from a JSON number (already `Decimal` or `int`) or from plain numeric text."""
    if isinstance(value, bool):
        raise AdapterError(f"expected a number, got {value!r}", path)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AdapterError(f"{value} is not a finite number", path)
        return value
    if isinstance(value, float):
        raise AdapterError("binary floating-point amounts are not accepted; send text or JSON numbers", path)
    if isinstance(value, str):
        text = value.strip()
        if not _AMOUNT_TEXT.match(text):
            raise AdapterError(f"{value!r} is not a plain decimal number", path)
        return Decimal(text)
    raise AdapterError(f"expected a number, got {type(value).__name__}", path)


def parse_money(value: object, path: str) -> Decimal:
    """An amount of money: exact, at most two decimal places, within the contract's range."""
    amount = parse_decimal(value, path)
    if abs(amount) > MAX_AMOUNT:
        raise AdapterError(f"{amount} is out of range for an amount of money", path)
    try:
        cents = amount.quantize(CENT)
    except InvalidOperation:  # pragma: no cover - excluded by the range check above
        raise AdapterError(f"{amount} is not an amount of money", path) from None
    if cents != amount:
        raise AdapterError(f"{amount} has more than two decimal places", path)
    return cents


def parse_date(value: object, path: str, formats: Sequence[str] = ISO_DATE) -> date:
    """A calendar date in one of ``formats`` (strptime patterns), and nothing else."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        raise AdapterError(f"expected a date, got {value!r}", path)
    text = value.strip()
    for pattern in formats:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise AdapterError(f"{value!r} is not a date ({' or '.join(formats)})", path)


def parse_timestamp(value: object, path: str, naive_zone: tzinfo, formats: Sequence[str] = ()) -> datetime:
    """A point in time; ISO 8601 text or one of ``formats``. A naive value is read in ``naive_zone``.

    A bare date is the start of that day in ``naive_zone``.
    """
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        for pattern in formats:
            try:
                moment = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
        if moment is None:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise AdapterError(f"{value!r} is not a timestamp", path) from None
    else:
        raise AdapterError(f"expected a timestamp, got {value!r}", path)
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment


def start_of_day(day: date) -> datetime:
    """Midnight UTC of a date: the time given to records that carry only a date."""
    return datetime.combine(day, time.min, tzinfo=UTC)


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def parse_bool(value: object, path: str) -> bool:
    """A boolean from JSON ``true``/``false`` or the text forms ``true/false``, ``1/0``, ``T/F``, ``Y/N``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise AdapterError(f"expected a boolean, got {value!r}", path)


def scalar_text(value: object, path: str) -> str:
    """Identifier or text: strings as they are (stripped), integers as digits; nothing else."""
    if isinstance(value, bool):
        raise AdapterError(f"expected text, got {value!r}", path)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    raise AdapterError(f"expected text, got {type(value).__name__}", path)


# -- native records ---------------------------------------------------------------------------------


class Record:
    """One native object (a JSON object, or an XML element flattened to one) and the path it sits at.

    Getters raise `AdapterError` naming ``<path>.<field>``. A field that is absent, ``null`` or blank
    text counts as missing: required getters reject it, ``opt_*`` getters return ``None``.
    """

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return join_path(self.path, key)

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def has(self, key: str) -> bool:
        value = self.data.get(key)
        return value is not None and not (isinstance(value, str) and not value.strip())

    def _need(self, key: str) -> Any:
        if not self.has(key):
            raise AdapterError("required field is missing or empty", self.at(key))
        return self.data[key]

    def text(self, key: str) -> str:
        return scalar_text(self._need(key), self.at(key))

    def opt_text(self, key: str) -> str | None:
        return scalar_text(self.data[key], self.at(key)) if self.has(key) else None

    def money(self, key: str) -> Decimal:
        return parse_money(self._need(key), self.at(key))

    def opt_money(self, key: str) -> Decimal | None:
        return parse_money(self.data[key], self.at(key)) if self.has(key) else None

    def money_or_zero(self, key: str) -> Decimal:
        amount = self.opt_money(key)
        return ZERO if amount is None else amount

    def decimal(self, key: str) -> Decimal:
        return parse_decimal(self._need(key), self.at(key))

    def date(self, key: str, formats: Sequence[str] = ISO_DATE) -> CalendarDate:
        return parse_date(self._need(key), self.at(key), formats)

    def opt_date(self, key: str, formats: Sequence[str] = ISO_DATE) -> CalendarDate | None:
        return parse_date(self.data[key], self.at(key), formats) if self.has(key) else None

    def timestamp(self, key: str, zone: tzinfo, formats: Sequence[str] = ()) -> datetime:
        return parse_timestamp(self._need(key), self.at(key), zone, formats)

    def opt_timestamp(self, key: str, zone: tzinfo, formats: Sequence[str] = ()) -> datetime | None:
        return parse_timestamp(self.data[key], self.at(key), zone, formats) if self.has(key) else None

    def opt_bool(self, key: str) -> bool | None:
        return parse_bool(self.data[key], self.at(key)) if self.has(key) else None

    def child(self, key: str) -> Record | None:
        """A nested object, or ``None`` when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise AdapterError(f"expected an object, got {type(value).__name__}", self.at(key))
        return Record(value, self.at(key))

    def children(self, key: str) -> list[Record]:
        """A nested list of objects (a single object counts as a list of one); absent is empty."""
        value = self.data.get(key)
        if value is None or value == "":
            return []
        return records(value, self.at(key))


def records(value: object, path: str) -> list[Record]:
    """The objects of a JSON list (or a single object) as records, rejecting anything else."""
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list):
        raise AdapterError(f"expected a list of objects, got {type(value).__name__}", path)
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise AdapterError(f"expected an object, got {type(item).__name__}", join_path(path, index))
        result.append(Record(item, path if isinstance(value, Mapping) else join_path(path, index)))
    return result


def load_json(payload: bytes) -> Any:
    """Strict UTF-8 JSON with every number exact (`Decimal` for non-integers)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AdapterError(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise AdapterError("payload is nested too deeply") from None
    except ValueError as exc:
        raise AdapterError(f"payload is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def digest(value: object) -> str:
    """A short stable digest of JSON-like data (the version of a record that has no timestamp)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# -- identities and contact details -----------------------------------------------------------------


def qualified(platform: str, native_id: str) -> str:
    """``account_id``/``practice_id`` form: the platform name, a colon, the native id."""
    return f"{platform}:{native_id}"


def practice_from_source(platform: str, source: str | None) -> str | None:
    """The native practice id inside a caller-given source ``"<platform>/practice-<id>"``, if any."""
    prefix = f"{platform}/practice-"
    if source and source.startswith(prefix) and len(source) > len(prefix):
        return source[len(prefix) :]
    return None


def phone_e164(value: str | None, region: str = "US") -> str | None:
    """A phone number in E.164, or ``None`` when it is empty or not a valid number.

    Invalid numbers are dropped rather than rejected: a bad phone must not hold back the rest of a
    patient's record, and the engine never contacts a number it does not have.
    """
    if not value or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def us_state(value: str | None) -> str | None:
    """A two-letter state code in upper case, or ``None`` for anything else (e.g. ``"Vic"``)."""
    if value and re.fullmatch(r"[A-Za-z]{2}", value.strip()):
        return value.strip().upper()
    return None


_ISO_639_2_TO_1 = {
    "eng": "en",
    "spa": "es",
    "zho": "zh",
    "chi": "zh",
    "fra": "fr",
    "fre": "fr",
    "ita": "it",
    "jpn": "ja",
    "por": "pt",
    "rus": "ru",
    "vie": "vi",
    "kor": "ko",
    "deu": "de",
    "ger": "de",
    "ara": "ar",
    "tgl": "tl",
    "hin": "hi",
    "pol": "pl",
    "hat": "ht",
}


def language_tag(code: str | None) -> str | None:
    """A BCP 47 tag from an ISO 639-1/639-2 code or a BCP 47 tag; ``None`` when not a language."""
    if not code:
        return None
    text = code.strip().replace("_", "-")
    lowered = text.lower()
    if lowered in _ISO_639_2_TO_1:
        return _ISO_639_2_TO_1[lowered]
    if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", text) and lowered not in {
        "und",
        "mul",
        "zxx",
        "unknown",
        "other",
        "blank",
    }:
        return text
    return None


def email_address(value: str | None) -> str | None:
    """An email address that at least has the form ``local@domain``; ``None`` otherwise."""
    if value and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value.strip()):
        return value.strip()
    return None


# -- claim arithmetic -------------------------------------------------------------------------------

PATIENT_GROUP = "PR"
ADJUSTMENT_GROUPS = frozenset({"PR", "CO", "OA", "PI", "CR"})
_BREAKDOWN_BY_CARC = {"1": "deductible", "2": "coinsurance", "3": "copay"}


@dataclass(frozen=True)
class Adjustment:
    """One claim adjustment: X12 group code, CARC reason code and amount."""

    group: str
    reason: str
    amount: Decimal

    def as_data(self) -> dict[str, Any]:
        return {"group": self.group, "reason": self.reason, "amount": self.amount}


def breakdown(adjustments: Iterable[Adjustment]) -> dict[str, Decimal]:
    """Patient responsibility by kind: PR-1 deductible, PR-2 coinsurance, PR-3 copay, other PR noncovered."""
    parts = {"deductible": ZERO, "coinsurance": ZERO, "copay": ZERO, "noncovered": ZERO}
    for adjustment in adjustments:
        if adjustment.group == PATIENT_GROUP:
            kind = _BREAKDOWN_BY_CARC.get(adjustment.reason, "noncovered")
            parts[kind] += adjustment.amount
    return parts


def patient_share(adjustments: Iterable[Adjustment]) -> Decimal:
    """The sum of the PR (patient responsibility) adjustments."""
    return sum((a.amount for a in adjustments if a.group == PATIENT_GROUP), ZERO)


_PENDING_CLAIM_STATUS = frozenset({"5", "10", "13", "15", "16", "17", "25", "27"})
_PROCESSED_CLAIM_STATUS = frozenset({"1", "2", "3", "19", "20", "21", "23"})
REVERSAL_CLAIM_STATUS = "22"


def adjudicated_status(insurance_paid: Decimal, patient_responsibility: Decimal) -> str:
    """Status of a processed claim from its money: paid in full, partly (patient owes some), or denied."""
    if insurance_paid > 0:
        return "partial" if patient_responsibility > 0 else "paid"
    return "partial" if patient_responsibility > 0 else "denied"


def claim_status(
    code: str | None, insurance_paid: Decimal, patient_responsibility: Decimal, path: str
) -> str:
    """The contract status from an X12 claim status code (835 CLP02, DrChrono ``claim_status``).

    4 is denied; 5, 10, 13, 15, 16, 17, 25 and 27 are pending (pended, received, suspended,
    predetermination, reviewed); the processed codes (1, 2, 3, 19, 20, 21, 23) and a missing code are
    decided by the money (`adjudicated_status`). 22 (reversal) is not a status: callers skip it.
    """
    if code is None or code == "" or code in _PROCESSED_CLAIM_STATUS:
        return adjudicated_status(insurance_paid, patient_responsibility)
    if code == "4":
        return "denied"
    if code in _PENDING_CLAIM_STATUS:
        return "pending"
    raise AdapterError(f"unknown claim status code {code!r}", path)


def claim_data(
    *,
    claim_id: str,
    payer: str,
    service_date: date,
    billed: Decimal,
    insurance_paid: Decimal,
    adjustments: Sequence[Adjustment],
    status: str,
    patient_responsibility: Decimal | None = None,
    allowed: Decimal | None = None,
    parts: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """The data of ``billing.claim.adjudicated`` (without the three ids).

    Patient responsibility defaults to the PR adjustments, the breakdown to the PR reasons, and the
    allowed amount to ``insurance_paid + patient_responsibility`` (the 835 balancing identity: charge
    minus CO/OA/PI adjustments equals payer paid plus patient responsibility).
    """
    responsibility = patient_share(adjustments) if patient_responsibility is None else patient_responsibility
    return {
        "claim_id": claim_id,
        "payer": payer,
        "service_date": service_date,
        "billed": billed,
        "allowed": insurance_paid + responsibility if allowed is None else allowed,
        "insurance_paid": insurance_paid,
        "patient_responsibility": responsibility,
        "breakdown": dict(breakdown(adjustments) if parts is None else parts),
        "adjustments": [a.as_data() for a in adjustments],
        "status": status,
    }


# -- drafts and events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the caller knows about a payload besides its bytes."""

    platform: str
    source: str | None = None
    received_at: datetime | None = None


@dataclass
class Draft:
    """A canonical event before validation.

    ``identity`` are the native parts of the event id (record kind, native id, version); ``path`` is
    where the native record sits; ``field_paths`` maps a data field to the native field it came from,
    so that a contract violation is reported against the native payload.
    """

    type: str
    identity: tuple[str, ...]
    data: dict[str, Any]
    path: str
    time: datetime | None = None
    practice: str | None = None
    field_paths: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ids:
    """The three ids every event carries, and the native practice id for the default source."""

    account_id: str
    patient_id: str
    practice_id: str
    native_practice: str

    def as_data(self) -> dict[str, str]:
        return {"account_id": self.account_id, "patient_id": self.patient_id, "practice_id": self.practice_id}


def ids(platform: str, patient: str, practice: str) -> Ids:
    """The identifier rule of the module docstring, from native patient and practice ids."""
    return Ids(qualified(platform, patient), patient, qualified(platform, practice), practice)


def draft(
    event_type: str,
    who: Ids,
    identity: tuple[str, ...],
    data: Mapping[str, Any],
    path: str,
    moment: datetime | None,
    field_paths: Mapping[str, str] | None = None,
) -> Draft:
    """A draft whose data carries the three ids of ``who``."""
    return Draft(
        type=event_type,
        identity=identity,
        data={**who.as_data(), **data},
        path=path,
        time=moment,
        practice=who.native_practice,
        field_paths=dict(field_paths or {}),
    )


MAX_ID = 200


def event_id(platform: str, identity: Sequence[str]) -> str:
    """``platform:kind:id:version``; shortened with a digest when longer than the contract allows."""
    text = ":".join([platform, *identity])
    if len(text) <= MAX_ID:
        return text
    return f"{text[: MAX_ID - 18]}~{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def finish(drafts: Iterable[Draft], context: Context) -> list[CanonicalEvent]:
    """Validate every draft as a canonical event; the first failure raises with its native path."""
    events: list[CanonicalEvent] = []
    for draft in drafts:
        moment = draft.time or context.received_at
        if moment is None:
            raise AdapterError("the record has no timestamp and no received_at was given", draft.path)
        practice = draft.practice or "unknown"
        document = {
            "specversion": "1.0",
            "id": event_id(context.platform, draft.identity),
            "source": context.source or f"{context.platform}/practice-{practice}",
            "type": draft.type,
            "time": utc_text(moment),
            "subject": draft.data.get("account_id"),
            "datacontenttype": "application/json",
            "data": draft.data,
        }
        try:
            events.append(parse_event(document))
        except InvalidEvent as exc:
            raise AdapterError(
                f"maps to an invalid {draft.type}: {exc.message}", _native_path(draft, exc.path)
            ) from None
    return events


def _native_path(draft: Draft, canonical: str | None) -> str:
    if canonical and canonical.startswith("data."):
        top = canonical.split(".")[1]
        return draft.field_paths.get(top, draft.path)
    return draft.path


Mapper = Callable[[bytes, Context], list[Draft]]
"""What each platform module provides: native payload bytes to drafts."""


def first(values: Iterable[Any]) -> Any:
    """The first value that is not ``None``, else ``None``."""
    return next((value for value in values if value is not None), None)


def indexed(items: Sequence[Any], path: str) -> Iterator[tuple[str, Any]]:
    """Items of a list with their paths."""
    for index, item in enumerate(items):
        yield join_path(path, index), item


_METHOD_WORDS = (
    ("cash", "cash"),
    ("check", "check"),
    ("chk", "check"),
    ("cheque", "check"),
    ("ach", "ach"),
    ("eft", "ach"),
    ("bank", "ach"),
    ("card", "card"),
    ("visa", "card"),
    ("master", "card"),
    ("amex", "card"),
    ("discover", "card"),
    ("credit", "card"),
    ("debit", "card"),
)


def method_from_text(text: str | None) -> str:
    """The contract payment method from free text such as ``"VISA"`` or ``"Personal Check"``."""
    lowered = (text or "").lower()
    for word, method in _METHOD_WORDS:
        if re.search(rf"\b{word}", lowered):
            return method
    return "other"


# -- canonical data shared by several platforms ------------------------------------------------------

DEFAULT_PAYMENT_CHANNEL = "in_person"
"""The channel of a payment whose platform does not record one: most payments keyed into a practice
management system without an online-payment marker were taken at the desk (an inference)."""


def address_data(
    lines: Iterable[str | None], city: str | None, state: str | None, postal_code: str | None
) -> dict[str, Any] | None:
    """A contract address (lines joined with ``", "``, US state or ``None``), or ``None`` when empty."""
    joined = ", ".join(line.strip() for line in lines if line and line.strip())
    if not (joined or city or postal_code):
        return None
    return {"line": joined, "city": city or "", "state": us_state(state), "postal_code": postal_code or None}


def patient_data(
    *,
    given: str | None,
    family: str | None,
    birth_date: date | None,
    email: str | None = None,
    mobile_phone: str | None = None,
    home_phone: str | None = None,
    address: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The data of ``billing.patient.updated``: contact details normalised, invalid ones dropped."""
    return {
        "name": {"given": (given or "").strip(), "family": (family or "").strip()},
        "birth_date": birth_date,
        "email": email_address(email),
        "mobile_phone": phone_e164(mobile_phone),
        "home_phone": phone_e164(home_phone),
        "address": address,
        **extra,
    }


def payment_data(
    payment_id: str, amount: Decimal, posted_at: datetime, method: str, channel: str = DEFAULT_PAYMENT_CHANNEL
) -> dict[str, Any]:
    """The data of ``billing.payment.posted``."""
    return {
        "payment_id": payment_id,
        "amount": amount,
        "posted_at": posted_at,
        "method": method,
        "channel": channel,
    }


def charge_description(text: str | None, code: str | None) -> str:
    """A charge's description, else its procedure code."""
    return text or (f"Procedure {code}" if code else "Charge")


def group_by(rows: Iterable[Record], key: str) -> dict[str, list[Record]]:
    """Records grouped by the text of one field, in first-seen order."""
    groups: dict[str, list[Record]] = {}
    for row in rows:
        groups.setdefault(row.text(key), []).append(row)
    return groups


def ledger_balance(
    rows: Sequence[Record], balance_key: str, date_key: str, formats: Sequence[str] = ISO_DATE
) -> dict[str, Any]:
    """``billing.account.updated`` data from all of one patient's ledger rows: the sum of the
    patient-balance field and the earliest service date that still has a patient balance."""
    balance = sum((row.money(balance_key) for row in rows), ZERO)
    unpaid = [row.date(date_key, formats) for row in rows if row.money(balance_key) > 0]
    return {"balance": balance, "oldest_unpaid_service_date": min(unpaid, default=None), "status": "open"}
