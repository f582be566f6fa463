"""Inputs that are not change events: sender outcomes and reviewer decisions."""

from __future__ import annotations

from typing import Literal

from schemas.common import ContractModel, Id, Timestamp

Role = Literal["collector", "billing_manager", "compliance_officer", "admin"]


class ActionOutcome(ContractModel):
    """What a sender service did with an action (``billing.outcomes``, type ``billing.action.outcome``)."""

    action_id: Id
    account_id: Id
    status: Literal["sent", "delivered", "failed", "bounced", "opened", "clicked", "replied", "cancelled"]
    at: Timestamp
    detail: str | None = None


class Reviewer(ContractModel):
    user_id: Id
    role: Role


class ReviewDecision(ContractModel):
    """A reviewer's decision on a held action (``billing.review.decisions``)."""

    action_id: Id
    account_id: Id
    decision: Literal["approve", "reject", "edit"]
    reviewer: Reviewer
    at: Timestamp
    message: str | None = None
    note: str | None = None
