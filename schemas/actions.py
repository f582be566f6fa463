"""Actions: what the engine asks sender services (``billing.actions``) or staff (``billing.review``) to do.

An action is an output record: the engine writes it, and nothing outside the contract may slip in.
Its ``action_id`` is deterministic from the account, the trigger event and the kind, so a redelivered
event yields the same id and a sender can de-duplicate on it (`action_id_for`).

>>> action_id_for("ACC-1", "evt-7f3a", "payment_plan_offer")
'act-bba7b586f139ffccf062d4d2'
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, Literal, get_args

from pydantic import Field

from schemas.common import Channel, Id, Money, OutputModel, Timestamp

ActionKind = Literal[
    "statement_message",
    "payment_plan_offer",
    "payment_reminder",
    "assistance_invite",
    "settlement_offer",
    "short_pay_inquiry",
    "staff_task",
    "conversation_reply",
    "platform_update",
]

PATIENT_FACING_KINDS: frozenset[str] = frozenset(get_args(ActionKind)) - {"staff_task", "platform_update"}
"""Kinds whose words reach the patient; staff tasks and platform updates do not."""


def action_id_for(account_id: str, trigger_event_id: str, kind: str) -> str:
    """The deterministic action id of CONTRACT.md: same inputs, same id."""
    digest = hashlib.sha256(f"{account_id}\x1f{trigger_event_id}\x1f{kind}".encode()).hexdigest()
    return f"act-{digest[:24]}"


class Message(OutputModel):
    """The words of an action, drafted by the model or taken from an approved template."""

    subject: str | None = None
    body: str
    language: str = "en"
    source: Literal["llm", "template", "staff"]
    template_id: str | None = None
    model: str | None = None
    disclosures: list[str] = []


class PlanOption(OutputModel):
    monthly_amount: Money
    term_months: int = Field(ge=1)
    first_due_date: date
    total: Money


class Settlement(OutputModel):
    amount: Money
    floor: Money
    valid_until: date


class Scores(OutputModel):
    propensity_to_pay: float | None = Field(default=None, ge=0, le=1)
    model_version: str | None = None
    bad_debt_risk: float | None = Field(default=None, ge=0, le=1)


class Review(OutputModel):
    required: bool
    reasons: list[str] = []
    state: Literal["not_required", "pending", "approved", "rejected"] = "not_required"


class RuleOutcome(OutputModel):
    """One evaluated rule or gate and what it decided."""

    id: str
    outcome: str
    detail: str = ""


class Explanation(OutputModel):
    policy_version: str
    rules: list[RuleOutcome] = []
    features: dict[str, Any] = {}


class Trigger(OutputModel):
    event_id: str
    type: str


class PlatformUpdate(OutputModel):
    operation: Literal["add_note", "create_payment_plan", "update_payment_plan", "post_adjustment"]
    payload: dict[str, Any] = {}


class Action(OutputModel):
    action_id: Id
    account_id: Id
    patient_id: Id
    practice_id: Id
    kind: ActionKind
    channel: Channel
    created_at: Timestamp
    not_before: Timestamp
    expires_at: Timestamp
    priority: float = Field(ge=0)
    message: Message | None = None
    plan_options: list[PlanOption] = []
    settlement: Settlement | None = None
    scores: Scores = Scores()
    review: Review = Review(required=False)
    explanation: Explanation
    trigger: Trigger
    tags: list[str] = []
    """Additive field: labels such as ``bad_debt_risk`` on staff tasks."""
    platform_update: PlatformUpdate | None = None
