"""A candidate action: what the engine would like to do before any compliance gate has looked at it.

Use cases (`rules.usecases`) and event effects (opt-out replies, hard-stop flags) propose candidates;
gates (`rules.gates`) decide whether, when, where and through whom they go out. A candidate is
serialisable because a held action keeps its candidate in the account state: approval re-runs every
gate on it.

>>> c = Candidate(kind="staff_task", purpose="attorney_contact", audience="attorney", priority=1.0)
>>> c.slot, c.contacts_patient
('staff_task:attorney_contact', False)
>>> Candidate(kind="payment_reminder", purpose="collections", priority=1.0).slot
'payment_reminder'
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.actions import PlanOption, RuleOutcome, Settlement

Audience = Literal["patient", "attorney", "estate", "staff"]
"""Who the action reaches: the patient (every gate applies), the patient's attorney or estate
representative (the routes of the attorney and deceased gates), or staff only (an internal work item)."""


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    purpose: str
    """The use case or reason: ``collections``, ``plan_default``, ``attorney_contact``, ``estate`` ..."""
    audience: Audience = "patient"
    priority: float
    rules: tuple[RuleOutcome, ...] = ()
    plan_options: tuple[PlanOption, ...] = ()
    settlement: Settlement | None = None
    variance: Decimal | None = None
    balance: Decimal | None = None
    """The balance the candidate was built on (plans and settlements depend on it)."""
    channels: tuple[str, ...] = ()
    """Channels the candidate may use, in no particular order; empty means any permitted channel."""
    disclosures: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    features: dict[str, Any] = {}
    note: str | None = None
    """For staff tasks to non-patients: the work item's instruction (internal words, not a message)."""
    detail: str = ""
    """What makes this candidate distinct from an earlier one of its slot (e.g. the statement id)."""

    @property
    def slot(self) -> str:
        """At most one open action per slot and account: the kind, and for staff tasks their purpose."""
        return f"staff_task:{self.purpose}" if self.kind == "staff_task" else self.kind

    @property
    def contacts_patient(self) -> bool:
        return self.audience == "patient"

    @property
    def fingerprint(self) -> str:
        """Same fingerprint, same offer: a re-trigger with an unchanged candidate does not stack."""
        parts = [
            self.slot,
            self.detail,
            str(self.balance),
            str(self.variance),
            *(f"{o.term_months}x{o.monthly_amount}" for o in self.plan_options),
            str(self.settlement.amount) if self.settlement else "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
