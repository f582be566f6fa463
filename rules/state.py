"""Per-account state: what the engine knows about one account, folded from its events.

`AccountState` is kept in the Faust table (keyed by ``account_id``) and passed to the pure decision
core. Every list in it is bounded, so the state of a long-lived account does not grow without limit.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.audit import GENESIS_HASH
from schemas.common import Money
from schemas.events import PatientUpdated

ZERO = Decimal("0")

MAX_SEEN_EVENTS = 512
"""De-duplication memory per account: redeliveries arrive close together, so the last 512 suffice."""
MAX_HISTORY = 50
MAX_PAYMENTS = 20
MAX_CLAIMS = 20
MAX_CONTACTS = 100


class StateModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class PaymentFact(StateModel):
    payment_id: str
    amount: Money
    at: datetime
    expected_amount: Money | None = None


class ClaimFact(StateModel):
    claim_id: str
    payer: str
    service_date: date
    billed: Money
    allowed: Money
    insurance_paid: Money
    patient_responsibility: Money
    deductible: Money = ZERO
    coinsurance: Money = ZERO
    copay: Money = ZERO
    noncovered: Money = ZERO
    status: str


class StatementFact(StateModel):
    statement_id: str
    statement_date: date
    due_date: date
    balance_due: Money
    insurance_pending: Money = ZERO


class PlanFact(StateModel):
    plan_id: str
    status: Literal["offered", "active", "completed", "defaulted", "cancelled"]
    monthly_amount: Money
    term_months: int
    next_due_date: date | None = None
    missed_payments: int = 0
    balance_remaining: Money


class OpenAction(StateModel):
    """A patient-facing action not yet finished: at most one per kind (a newer one supersedes it)."""

    action_id: str
    kind: str
    channel: str
    state: Literal["released", "held"]
    created_at: datetime
    expires_at: datetime
    trigger_event_id: str


class ContactFact(StateModel):
    """An outbound contact (or a conversation) that counts towards the frequency windows."""

    at: datetime
    channel: str
    outcome: str = "sent"


class DecisionSummary(StateModel):
    """One line of decision history for ``GET /accounts/{id}`` and replay diffs."""

    at: datetime
    event_id: str
    event_type: str
    action_id: str | None = None
    kind: str | None = None
    outcome: str
    gates: list[str] = []


class AccountState(StateModel):
    account_id: str
    patient_id: str
    practice_id: str
    patient: PatientUpdated | None = None
    balance: Money = ZERO
    insurance_pending: Money = ZERO
    account_status: Literal["open", "in_collections", "written_off", "closed"] = "open"
    self_pay: bool = False
    oldest_unpaid_service_date: date | None = None
    first_statement_date: date | None = None
    nonprofit_hospital: bool = False
    last_statement: StatementFact | None = None
    plan: PlanFact | None = None
    open_disputes: list[str] = []
    ever_disputed: bool = False
    assistance_status: Literal["invited", "applied", "approved", "denied"] | None = None
    household_size: int | None = None
    annual_income: Money | None = None
    payments: list[PaymentFact] = []
    claims: list[ClaimFact] = []
    contacts: list[ContactFact] = []
    open_actions: dict[str, OpenAction] = {}
    history: list[DecisionSummary] = []
    seen_events: list[str] = []
    validation_notice_sent: bool = False
    audit_head: str = GENESIS_HASH
    audit_seq: int = 0
    last_event_at: datetime | None = None

    @classmethod
    def new(cls, account_id: str, patient_id: str, practice_id: str) -> AccountState:
        return cls(account_id=account_id, patient_id=patient_id, practice_id=practice_id)

    @property
    def last_payment(self) -> PaymentFact | None:
        return self.payments[-1] if self.payments else None

    def has_seen(self, dedup_key: str) -> bool:
        return dedup_key in self.seen_events


def bounded(items: list, limit: int) -> list:  # type: ignore[type-arg]
    """The last ``limit`` items: state lists keep the newest entries."""
    return items[-limit:] if len(items) > limit else items
