"""Canonical events built in one line, for docstring examples, tests, the benchmark and replays.

Every builder returns a validated `CanonicalEvent`; ids default to a counter-free digest of the
content, so the same call gives the same event.

>>> e = statement("2026-03-16T15:00:00Z", balance_due="120.00")
>>> e.type, e.data.balance_due, e.account_id
('billing.statement.generated', Decimal('120.00'), 'ACC-1')
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from schemas.events import CanonicalEvent, parse_event

ACCOUNT = "ACC-1"
PATIENT = "PT-1"
PRACTICE = "practice-1"


def event(
    event_type: str, time: str, *, account: str = ACCOUNT, event_id: str | None = None, **data: Any
) -> CanonicalEvent:
    body = {"account_id": account, "patient_id": PATIENT, "practice_id": PRACTICE, **data}
    digest = hashlib.sha256(
        json.dumps([event_type, time, body], sort_keys=True, default=str).encode()
    ).hexdigest()
    return parse_event(
        {
            "specversion": "1.0",
            "id": event_id or f"evt-{digest[:12]}",
            "source": "examples",
            "type": event_type,
            "time": time,
            "data": body,
        }
    )


def patient(time: str, **data: Any) -> CanonicalEvent:
    """``billing.patient.updated``; by default an English speaker in New York with email and SMS consent."""
    defaults: dict[str, Any] = {
        "name": {"given": "Ana", "family": "Lopez"},
        "email": "ana@example.org",
        "mobile_phone": "+12125550123",
        "address": {"line": "1 Main St", "city": "New York", "state": "NY", "postal_code": "10001"},
        "consent": {"email": True, "sms": True, "portal": True},
    }
    return event("billing.patient.updated", time, **{**defaults, **data})


def account(time: str, balance: str, oldest_unpaid: str | None = None, **data: Any) -> CanonicalEvent:
    return event(
        "billing.account.updated",
        time,
        balance=balance,
        oldest_unpaid_service_date=oldest_unpaid,
        status=data.pop("status", "open"),
        **data,
    )


def statement(time: str, balance_due: str, statement_id: str = "S-1", **data: Any) -> CanonicalEvent:
    day = time[:10]
    return event(
        "billing.statement.generated",
        time,
        statement_id=statement_id,
        statement_date=data.pop("statement_date", day),
        due_date=data.pop("due_date", day),
        balance_due=balance_due,
        **data,
    )


def payment(time: str, amount: str, expected: str | None = None, payment_id: str = "PAY-1") -> CanonicalEvent:
    return event(
        "billing.payment.posted",
        time,
        payment_id=payment_id,
        amount=amount,
        posted_at=time,
        method="card",
        channel="portal",
        expected_amount=expected,
    )


def plan(time: str, missed: int, status: str = "active", plan_id: str = "PL-1") -> CanonicalEvent:
    return event(
        "billing.payment_plan.updated",
        time,
        plan_id=plan_id,
        status=status,
        monthly_amount="50.00",
        term_months=6,
        missed_payments=missed,
        balance_remaining="300.00",
    )


def dispute(time: str, status: str = "opened", dispute_id: str = "D-1") -> CanonicalEvent:
    return event("billing.dispute.updated", time, dispute_id=dispute_id, status=status, received_at=time)


def communication(
    time: str, channel: str, outcome: str, direction: str = "outbound", text: str | None = None, **data: Any
) -> CanonicalEvent:
    return event(
        "billing.communication.logged",
        time,
        communication_id=data.pop("communication_id", f"C-{time}-{channel}-{direction}"),
        channel=channel,
        direction=direction,
        at=time,
        outcome=outcome,
        text=text,
        **data,
    )


def consent(time: str, channel: str, granted: bool, address: str | None = None) -> CanonicalEvent:
    return event("billing.consent.updated", time, channel=channel, granted=granted, address=address, at=time)


def assistance(
    time: str, status: str, household_size: int | None = None, income: str | None = None
) -> CanonicalEvent:
    return event(
        "billing.assistance.updated", time, status=status, household_size=household_size, annual_income=income
    )


class Account:
    """One account driven through the decision core, keeping its state and every output.

    >>> acct = Account()
    >>> _ = acct.send(patient("2026-03-16T13:00:00Z"))
    >>> [a.kind for a in acct.send(account("2026-03-16T13:05:00Z", "450.00", "2026-01-05")).held]
    ['payment_plan_offer']
    """

    def __init__(self, policy: Any = None, *, scores: Any = None) -> None:
        from rules.policy import load_policy

        self.policy = policy or load_policy()
        self.scores = scores
        self.state: Any = None
        self.outputs: list[Any] = []

    def _take(self, decision: Any) -> Step:
        self.state = decision.state
        self.outputs.extend(decision.outputs)
        return Step(decision)

    def send(self, *events: CanonicalEvent) -> Step:
        """Decide each event in turn; the result holds the last event's outputs (all of them are kept)."""
        from rules.decide import decide

        step = None
        for one in events:
            step = self._take(decide(self.state, one, self.policy, scores=self.scores))
        assert step is not None
        return step

    def scan(self, at: str) -> Step:
        from datetime import datetime

        from rules.decide import daily_scan

        return self._take(daily_scan(self.state, self.policy, datetime.fromisoformat(at), scores=self.scores))

    def review(self, action_id: str, decision: str, role: str, at: str, message: str | None = None) -> Step:
        from datetime import datetime

        from rules.review import review_decision
        from schemas.inputs import ReviewDecision

        reviewed = ReviewDecision(
            action_id=action_id,
            account_id=self.state.account_id,
            decision=decision,
            reviewer={"user_id": f"u-{role}", "role": role},
            at=datetime.fromisoformat(at),
            message=message,
        )
        return self._take(review_decision(self.state, reviewed, self.policy, reviewed.at, scores=self.scores))

    @property
    def released(self) -> list[Any]:
        """Every action released so far (topic ``actions``)."""
        return [o.value for o in self.outputs if o.topic == "actions"]


class Step:
    """The outputs of one decision, sorted by what they are."""

    def __init__(self, decision: Any) -> None:
        self.decision = decision
        self.outputs = list(decision.outputs)

    @property
    def released(self) -> list[Any]:
        return [o.value for o in self.outputs if o.topic == "actions"]

    @property
    def held(self) -> list[Any]:
        return [o.value for o in self.outputs if o.topic == "review"]

    @property
    def actions(self) -> list[Any]:
        return self.released + self.held

    @property
    def audits(self) -> list[Any]:
        return [o.value for o in self.outputs if o.topic == "audit"]

    def suppressed(self) -> dict[str, str]:
        """Suppressed (or cancelled) kind or action id → the gate named."""
        return {
            str(a.details.get("kind") or a.action_id): str(a.details.get("gate"))
            for a in self.audits
            if a.kind == "suppressed"
        }

    def kinds(self) -> list[str]:
        return [a.kind for a in self.actions]
