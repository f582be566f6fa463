"""Use cases: which events trigger which candidate actions (POLICY.md section 1).

A candidate is what the engine would like to do before any compliance gate has looked at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from rules.policy import Policy
from rules.state import AccountState
from schemas.actions import PlanOption, RuleOutcome, Settlement
from schemas.events import CanonicalEvent, StatementGeneratedEvent


@dataclass(frozen=True)
class Candidate:
    kind: str
    priority: float
    rules: tuple[RuleOutcome, ...]
    plan_options: tuple[PlanOption, ...] = ()
    settlement: Settlement | None = None
    variance: Decimal | None = None
    tags: tuple[str, ...] = field(default=())


def propose(state: AccountState, event: CanonicalEvent, policy: Policy) -> list[Candidate]:
    """Every candidate action the event triggers for this account."""
    candidates: list[Candidate] = []
    if isinstance(event, StatementGeneratedEvent):
        balance_due = event.data.balance_due
        if balance_due >= policy.statement_message.min_balance_due:
            candidates.append(
                Candidate(
                    kind="statement_message",
                    priority=float(balance_due),
                    rules=(
                        RuleOutcome(
                            id="UC-STATEMENT",
                            outcome="triggered",
                            detail=f"statement {event.data.statement_id} with a balance due",
                        ),
                    ),
                )
            )
    return candidates
