"""Per-account state: what the engine knows about one account, folded from its events.

`AccountState` is kept in the Faust table (keyed by ``account_id``) and passed to the pure decision
core. Every list and map in it is bounded, so the state of a long-lived account does not grow without
limit (see the ``MAX_*`` constants). Measured JSON sizes: 1-3 KB for a quiet account, 25-40 KB for a
busy one (100 accounts, 3,000 random events: p50 27 KB, max 38 KB, of which held actions are two
thirds); with every bound reached (16 held actions, 512 event ids, 100 contacts) about 100 KB. A
conversation adds at most ``conversations.max_turns`` turns of at most 1,000 characters (about 25 KB at
the default 20; a four-turn negotiation left a 22 KB state in all).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from rules.candidate import Candidate
from schemas.actions import Action
from schemas.audit import GENESIS_HASH
from schemas.common import Money
from schemas.events import PatientUpdated

ZERO = Decimal("0")
T = TypeVar("T")

MAX_SEEN_EVENTS = 512
"""De-duplication memory per account: redeliveries arrive close together, so the last 512 suffice."""
MAX_HISTORY = 50
MAX_PAYMENTS = 20
MAX_CLAIMS = 20
MAX_CONTACTS = 100
"""Frequency windows look back at most a month; 100 contacts cover far more than that."""
CONTACT_MEMORY_DAYS = 35
MAX_HELD = 16
"""Held actions wait for a reviewer; one per slot, and slots are few (8 kinds, a few staff purposes)."""
MAX_SLOTS = 24
MAX_REVIEWED = 64
MAX_BLOCKED_NUMBERS = 10


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


class SlotRecord(StateModel):
    """The latest action (or suppression) of one slot: at most one open action per slot and account.

    ``state``: ``released`` (with senders), ``held`` (waiting for review), ``suppressed`` (a gate
    stopped it), ``cancelled`` (stopped after release or while held), ``rejected`` (by a reviewer).
    """

    slot: str
    action_id: str
    kind: str
    channel: str | None = None
    state: Literal["released", "held", "suppressed", "cancelled", "rejected"]
    created_at: datetime
    not_before: datetime | None = None
    expires_at: datetime
    fingerprint: str
    trigger_event_id: str
    audience: str = "patient"
    balance: Money | None = None
    """The balance the action's words state: a released message is stopped when the balance moves."""
    reasons: list[str] = []
    """The review reasons the action was held or approved with (a released one is re-checked for new ones)."""
    gate: str | None = None
    suppressed_key: str | None = None
    """The last suppression audited for this slot (fingerprint and gate): the same one is not repeated."""

    def is_open(self, now: datetime) -> bool:
        return self.state in ("released", "held") and now < self.expires_at

    def offers(self, candidate: Candidate, now: datetime) -> bool:
        """Whether this open action already offers ``candidate`` unchanged (a re-trigger does not stack)."""
        return self.is_open(now) and self.fingerprint == candidate.fingerprint


class ContactFact(StateModel):
    """A contact that counts towards the frequency windows: logged, or planned by a released action.

    A planned contact (``planned``) sits at the action's ``not_before``; when the sender logs the
    communication with the same ``action_id``, the logged one replaces it.
    """

    at: datetime
    channel: str
    direction: Literal["outbound", "inbound"] = "outbound"
    outcome: str = "planned"
    action_id: str | None = None
    planned: bool = False


class HeldAction(StateModel):
    """An action waiting in ``billing.review``, with what approval needs to re-run every gate."""

    action: Action
    candidate: Candidate
    slot: str
    approver_roles: list[str]
    trigger_type: str


class DecisionSummary(StateModel):
    """One line of decision history for ``GET /accounts/{id}`` and replay diffs."""

    at: datetime
    event_id: str
    event_type: str
    action_id: str | None = None
    kind: str | None = None
    outcome: str
    gates: list[str] = []


class Turn(StateModel):
    """One turn of a conversation: the patient's words, or the engine's reply (its action and words)."""

    at: datetime
    by: Literal["patient", "engine"]
    text: str
    action_id: str | None = None


class ConversationState(StateModel):
    """The account's conversation: where its state machine stands (`rules.conversation`).

    ``step`` is the machine's state; ``closed`` conversations keep their record until the next message
    opens a new one. Negotiation: ``rounds`` offers made, the last at ``last_offer``; an agreement is
    held for review as a settlement (``agreed``). Screening: what the patient told us so far.
    """

    conversation_id: str
    channel: Literal["portal", "sms"]
    language: str = "en"
    step: str
    started_at: datetime
    last_at: datetime
    turns: list[Turn] = []
    closed_reason: str | None = None
    household_size: int | None = None
    annual_income: Money | None = None
    rounds: int = 0
    last_offer: Money | None = None
    agreed: Money | None = None
    plan_terms: list[int] = []
    """The plan terms (months) offered in this conversation, in the order the patient saw them."""

    @property
    def is_open(self) -> bool:
        return self.step != "closed"


class SettlementAgreement(StateModel):
    """A settlement the patient agreed to in a conversation, waiting for approval and then payment.

    When it is approved (its ``settlement_offer`` slot released) and payments since ``agreed_at`` reach
    ``amount``, the rest of ``balance`` is written off on the platform (a ``post_adjustment``)."""

    action_id: str
    amount: Money
    balance: Money
    agreed_at: datetime
    adjusted: bool = False


class AccountState(StateModel):
    # A state written by an older or newer engine still loads: fields it does not know are dropped
    # rather than dead-lettering every event of the account.
    model_config = ConfigDict(extra="ignore", validate_assignment=False)

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
    slots: dict[str, SlotRecord] = {}
    held: dict[str, HeldAction] = {}
    reviewed: list[str] = []
    """Action ids a reviewer has decided on: a redelivered review decision changes nothing."""
    history: list[DecisionSummary] = []
    seen_events: list[str] = []
    validation_notice_sent: bool = False
    sms_revoked_at: datetime | None = None
    """An opt-out (STOP) revokes SMS everywhere until an explicit ``consent.updated`` grants it again;
    a later ``patient.updated`` echoing an old consent does not undo it."""
    email_revoked_at: datetime | None = None
    calls_revoked_at: datetime | None = None
    blocked_numbers: list[str] = []
    """Numbers the patient asked not to be called on ("stop calling my work phone")."""
    last_scan_day: date | None = None
    conversation: ConversationState | None = None
    settlement_agreement: SettlementAgreement | None = None
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

    def settlement_pending(self, now: datetime) -> bool:
        """Whether a settlement agreed in a conversation is still waiting for review or payment."""
        agreement = self.settlement_agreement
        if agreement is None or agreement.adjusted:
            return False
        record = self.slots.get("settlement_offer")
        return record is not None and record.action_id == agreement.action_id and record.is_open(now)


def bounded(items: list[T], limit: int) -> list[T]:
    """The last ``limit`` items: state lists keep the newest entries.

    >>> bounded([1, 2, 3], 2)
    [2, 3]
    """
    return items[-limit:] if len(items) > limit else items
