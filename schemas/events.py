"""Canonical change events: the CloudEvents 1.0 envelope and the data of every event type.

Platforms (or their adapters) write these to ``billing.events``. `parse_event` turns raw bytes into a
typed event or raises `InvalidEvent` with a reason fit for the dead-letter topic.

>>> event = parse_event(b'''{"specversion": "1.0", "id": "evt-1", "source": "demo",
...   "type": "billing.dispute.updated", "time": "2026-03-15T14:02:00Z",
...   "data": {"account_id": "ACC-1", "patient_id": "PT-1", "practice_id": "P-1",
...   "dispute_id": "D-1", "status": "opened", "received_at": "2026-03-15T14:00:00Z"}}''')
>>> event.data.status, event.account_id
('opened', 'ACC-1')
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, TypeAdapter, ValidationError

from schemas.common import (
    E164,
    Channel,
    ContractModel,
    Currency,
    Id,
    Language,
    Money,
    NonNegativeMoney,
    Timestamp,
    TimeZoneName,
)


class EventData(ContractModel):
    """Every event's data names the account, the patient and the practice."""

    account_id: Id
    patient_id: Id
    practice_id: Id


class MoneyData(EventData):
    currency: Currency = "USD"


# -- billing.patient.updated ------------------------------------------------------------------------


class PersonName(ContractModel):
    given: str = ""
    family: str = ""


class Address(ContractModel):
    line: str = ""
    city: str = ""
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    postal_code: str | None = None


class Consent(ContractModel):
    """What the patient agreed to; ``None`` means nothing is recorded either way."""

    email: bool | None = None
    sms: bool | None = None
    autodialed_calls: bool | None = None
    portal: bool | None = None


class Flags(ContractModel):
    deceased: bool = False
    bankruptcy: bool = False
    attorney_represented: bool = False
    cease_communication: bool = False
    confidential_address: bool = False


class Attorney(ContractModel):
    name: str | None = None
    phone: E164 | None = None
    email: str | None = None


class PatientUpdated(EventData):
    name: PersonName = PersonName()
    birth_date: date | None = None
    language: Language = "en"
    email: str | None = None
    mobile_phone: E164 | None = None
    home_phone: E164 | None = None
    address: Address | None = None
    timezone: TimeZoneName | None = None
    preferred_channel: Channel | None = None
    consent: Consent = Consent()
    flags: Flags = Flags()
    attorney: Attorney | None = None
    regime: Literal["first_party", "third_party"] = "first_party"
    guarantor_is_patient: bool = True


# -- charges, claims, statements --------------------------------------------------------------------


class ChargePosted(MoneyData):
    charge_id: Id
    service_date: date
    description: str
    amount: Money
    provider: str | None = None


ZERO = Decimal("0")


class Breakdown(ContractModel):
    """Where the patient's responsibility on a claim comes from."""

    deductible: NonNegativeMoney = ZERO
    coinsurance: NonNegativeMoney = ZERO
    copay: NonNegativeMoney = ZERO
    noncovered: NonNegativeMoney = ZERO


class ClaimAdjustment(ContractModel):
    """One CAS triplet: group code, claim adjustment reason code (CARC) and amount."""

    group: Literal["PR", "CO", "OA", "PI", "CR"]
    reason: Annotated[str, Field(min_length=1, max_length=5)]
    amount: Money


class ClaimAdjudicated(MoneyData):
    claim_id: Id
    payer: str
    service_date: date
    billed: Money
    allowed: Money
    insurance_paid: Money
    patient_responsibility: Money
    breakdown: Breakdown = Breakdown()
    adjustments: list[ClaimAdjustment] = []
    status: Literal["paid", "partial", "denied", "pending"]


class StatementLine(ContractModel):
    service_date: date
    description: str
    charge: Money
    insurance_paid: Money = ZERO
    adjustments: Money = ZERO
    patient_owes: Money


class StatementGenerated(MoneyData):
    statement_id: Id
    statement_date: date
    due_date: date
    balance_due: Money
    insurance_pending: Money = ZERO
    lines: list[StatementLine] = []


# -- payments and plans -----------------------------------------------------------------------------


class PaymentPosted(MoneyData):
    payment_id: Id
    amount: NonNegativeMoney
    posted_at: Timestamp
    method: Literal["card", "ach", "cash", "check", "other"]
    channel: Literal["portal", "phone", "mail", "in_person", "autopay"]
    plan_id: Id | None = None
    expected_amount: NonNegativeMoney | None = None


class PaymentPlanUpdated(MoneyData):
    plan_id: Id
    status: Literal["offered", "active", "completed", "defaulted", "cancelled"]
    monthly_amount: NonNegativeMoney
    term_months: Annotated[int, Field(ge=1, le=120)]
    next_due_date: date | None = None
    missed_payments: Annotated[int, Field(ge=0)] = 0
    balance_remaining: Money


# -- account, disputes, assistance ------------------------------------------------------------------


class AccountUpdated(MoneyData):
    balance: Money
    oldest_unpaid_service_date: date | None = None
    status: Literal["open", "in_collections", "written_off", "closed"]
    self_pay: bool = False
    first_statement_date: date | None = None
    nonprofit_hospital: bool = False


class DisputeUpdated(EventData):
    dispute_id: Id
    status: Literal["opened", "resolved"]
    reason: str | None = None
    received_at: Timestamp


class AssistanceUpdated(MoneyData):
    status: Literal["invited", "applied", "approved", "denied"]
    household_size: Annotated[int, Field(ge=1, le=50)] | None = None
    annual_income: NonNegativeMoney | None = None
    discount_pct: Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)] | None = None


# -- communications and consent ---------------------------------------------------------------------


class CommunicationLogged(EventData):
    communication_id: Id
    channel: Literal["email", "sms", "phone", "letter", "portal"]
    direction: Literal["outbound", "inbound"]
    at: Timestamp
    outcome: Literal[
        "delivered",
        "failed",
        "bounced",
        "answered",
        "conversation",
        "voicemail",
        "no_answer",
        "opened",
        "clicked",
        "replied",
    ]
    text: Annotated[str, Field(max_length=5000)] | None = None
    action_id: Id | None = None


class ConsentUpdated(EventData):
    channel: Literal["email", "sms", "phone", "all"]
    granted: bool
    address: str | None = None
    at: Timestamp


# -- the envelope -----------------------------------------------------------------------------------


class Envelope(ContractModel):
    """CloudEvents 1.0 attributes, structured JSON mode."""

    specversion: Literal["1.0"]
    id: Id
    source: Id
    time: Timestamp
    subject: str | None = None
    datacontenttype: Literal["application/json"] | None = "application/json"

    @property
    def account_id(self) -> str:
        return self.data.account_id  # type: ignore[attr-defined]

    @property
    def dedup_key(self) -> str:
        """CONTRACT.md: an event is identified by ``source`` and ``id`` together."""
        return f"{self.source}\x1f{self.id}"


class PatientUpdatedEvent(Envelope):
    type: Literal["billing.patient.updated"]
    data: PatientUpdated


class ChargePostedEvent(Envelope):
    type: Literal["billing.charge.posted"]
    data: ChargePosted


class ClaimAdjudicatedEvent(Envelope):
    type: Literal["billing.claim.adjudicated"]
    data: ClaimAdjudicated


class StatementGeneratedEvent(Envelope):
    type: Literal["billing.statement.generated"]
    data: StatementGenerated


class PaymentPostedEvent(Envelope):
    type: Literal["billing.payment.posted"]
    data: PaymentPosted


class PaymentPlanUpdatedEvent(Envelope):
    type: Literal["billing.payment_plan.updated"]
    data: PaymentPlanUpdated


class AccountUpdatedEvent(Envelope):
    type: Literal["billing.account.updated"]
    data: AccountUpdated


class DisputeUpdatedEvent(Envelope):
    type: Literal["billing.dispute.updated"]
    data: DisputeUpdated


class AssistanceUpdatedEvent(Envelope):
    type: Literal["billing.assistance.updated"]
    data: AssistanceUpdated


class CommunicationLoggedEvent(Envelope):
    type: Literal["billing.communication.logged"]
    data: CommunicationLogged


class ConsentUpdatedEvent(Envelope):
    type: Literal["billing.consent.updated"]
    data: ConsentUpdated


CanonicalEvent = Annotated[
    PatientUpdatedEvent
    | ChargePostedEvent
    | ClaimAdjudicatedEvent
    | StatementGeneratedEvent
    | PaymentPostedEvent
    | PaymentPlanUpdatedEvent
    | AccountUpdatedEvent
    | DisputeUpdatedEvent
    | AssistanceUpdatedEvent
    | CommunicationLoggedEvent
    | ConsentUpdatedEvent,
    Field(discriminator="type"),
]
"""Any canonical event, discriminated by its CloudEvents ``type``."""

EVENT_TYPES: dict[str, type[Envelope]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(CanonicalEvent)[0])
}
"""Every canonical event type name and its model."""

_EVENT_ADAPTER: TypeAdapter[CanonicalEvent] = TypeAdapter(CanonicalEvent)


class InvalidEvent(ValueError):
    """An input that cannot be accepted; carries what the dead-letter record needs.

    ``kind`` is a short machine-readable reason (``invalid_json``, ``unknown_event_type``,
    ``validation_error``, ``not_an_object``), ``path`` the dotted location of the first offending field.
    """

    def __init__(self, kind: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.path = path


def _first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    # The discriminated union puts the event type first in the location; the path names fields only.
    loc = [part for part in error["loc"] if part not in EVENT_TYPES]
    path = ".".join(str(part) for part in loc)
    return path, f"{path}: {error['msg']}" if path else error["msg"]


def parse_event(raw: bytes | str | dict[str, Any]) -> CanonicalEvent:
    """Validate one canonical event, raising `InvalidEvent` with a clear reason."""
    if isinstance(raw, dict):
        document: Any = raw
    else:
        try:
            document = _json_loads(raw)
        except ValueError as exc:
            raise InvalidEvent("invalid_json", f"not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidEvent("invalid_json", "JSON nested too deeply to be an event") from None
    if not isinstance(document, dict):
        raise InvalidEvent("not_an_object", "an event must be a JSON object (CloudEvents structured mode)")
    event_type = document.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise InvalidEvent("unknown_event_type", f"unknown event type {event_type!r}; known: {known}", "type")
    try:
        return _EVENT_ADAPTER.validate_python(document)
    except ValidationError as exc:
        path, message = _first_error(exc)
        raise InvalidEvent("validation_error", message, path) from None


def _json_loads(raw: bytes | str) -> Any:
    """Decode JSON keeping every number exact: floats become `Decimal`, so money never passes float."""
    return json.loads(raw, parse_float=Decimal)
