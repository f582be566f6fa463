"""The eight use cases of POLICY.md section 1: trigger → candidate actions.

The trigger thresholds live in the compiled ``usecases`` ruleset (`rules.compiler`): `usecase_facts`
writes the account's numbers into one fact, the engine fires every use case whose thresholds hold, and
`propose` turns each fired rule into a `Candidate` with its plan options, settlement, screening or
variance. Triggers: an event family (``statement``, ``account``, ``payment``, ``plan``, ``assistance``,
``patient``) or the daily ``scan``.

>>> from datetime import datetime, date, UTC
>>> from decimal import Decimal
>>> from rules.context import Context
>>> from rules.policy import load_policy
>>> from rules.state import AccountState
>>> state = AccountState.new("A", "P", "X").model_copy(update={
...     "balance": Decimal("450.00"), "oldest_unpaid_service_date": date(2026, 1, 5)})
>>> ctx = Context.build(state, load_policy(), datetime(2026, 3, 16, 15, tzinfo=UTC))
>>> [(c.kind, c.purpose) for c in propose(Cause("account", "evt-1", "billing.account.updated"), ctx)]
[('payment_plan_offer', 'payment_plan')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rules.assistance import screen
from rules.candidate import Candidate
from rules.compiler import RuleSpec, cents
from rules.context import Context
from rules.offers import needs_tila_disclosure, plan_options, settlement_offer
from rules.state import AccountState
from schemas.actions import RuleOutcome
from schemas.events import EventData, PaymentPosted, StatementGenerated

EVENT_TRIGGERS: dict[str, str] = {
    "billing.statement.generated": "statement",
    "billing.account.updated": "account",
    "billing.payment.posted": "payment",
    "billing.payment_plan.updated": "plan",
    "billing.assistance.updated": "assistance",
    "billing.patient.updated": "patient",
}
SCAN_EVENT_TYPE = "billing.scan.daily"


@dataclass(frozen=True)
class Cause:
    """What started a decision: an event family, the daily scan or a review (with the event's data)."""

    name: str
    event_id: str
    event_type: str
    data: EventData | None = None


def cause_of(event_type: str, event_id: str, data: EventData | None) -> Cause:
    return Cause(EVENT_TRIGGERS.get(event_type, "other"), event_id, event_type, data)


def _days_since(day: date | None, today: date) -> int:
    return (today - day).days if day is not None else -1


def usecase_facts(trigger: Cause, ctx: Context) -> dict[str, Any]:
    """The one fact the use-case ruleset sees: every field, always (unknown ages are -1)."""
    return trigger_facts(trigger, ctx.state, ctx.today, ctx.scoring.propensity)


def trigger_facts(trigger: Cause, state: AccountState, today: date, propensity: float) -> dict[str, Any]:
    """`usecase_facts` from its parts, for a caller without a `Context` (`rules.decide.quiet_scan`)."""
    data = trigger.data
    short_pay = Decimal(0)
    if isinstance(data, PaymentPosted) and data.expected_amount is not None:
        short_pay = data.expected_amount - data.amount
    return {
        "trigger": trigger.name,
        "active_account": state.account_status in ("open", "in_collections"),
        "balance_c": cents(state.balance),
        "statement_due_c": cents(data.balance_due) if isinstance(data, StatementGenerated) else 0,
        "age_days": _days_since(state.oldest_unpaid_service_date, today),
        "days_since_statement": _days_since(
            state.last_statement.statement_date if state.last_statement else None, today
        ),
        "plan_active": bool(state.plan and state.plan.status == "active"),
        "plan_missed": state.plan.missed_payments if state.plan else 0,
        "short_pay_c": cents(short_pay),
        "assistance_status": state.assistance_status or "none",
        "propensity": float(propensity),
        "dispute_open": bool(state.open_disputes),
    }


def priority(ctx: Context) -> float:
    """balance x (1 - propensity) x age in days, scaled by the policy (higher = sooner)."""
    state = ctx.state
    age = max(_days_since(state.oldest_unpaid_service_date, ctx.today), 1)
    raw = (
        state.balance
        * Decimal(str(1 - ctx.scoring.propensity))
        * age
        / ctx.policy.use_cases.collections.priority_per
    )
    return float(max(raw, Decimal(0)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _base(spec: RuleSpec, ctx: Context) -> dict[str, Any]:
    return {
        "priority": priority(ctx),
        "rules": (RuleOutcome(id=spec.gate, outcome=spec.outcome, detail=spec.detail),),
        "balance": ctx.state.balance,
    }


def _statement(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    data = trigger.data
    statement_id = data.statement_id if isinstance(data, StatementGenerated) else ""
    last = ctx.state.last_payment
    recent = ctx.policy.use_cases.statement_message.recent_payment_days
    acknowledge = last is not None and (ctx.now - last.at).days <= recent
    return Candidate(
        kind="statement_message",
        purpose="statement",
        detail=statement_id,
        features={"acknowledge_payment": acknowledge},
        **_base(spec, ctx),
    )


def _plan_offer(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    options = plan_options(ctx.state.balance, ctx.now, ctx.scoring.propensity, ctx.policy)
    if not options:
        return None
    tila = ("tila_zero_apr",) if needs_tila_disclosure(options, ctx.policy) else ()
    return Candidate(
        kind="payment_plan_offer",
        purpose="payment_plan",
        plan_options=options,
        disclosures=tila,
        **_base(spec, ctx),
    )


def _collections(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    if spec.outcome == "reminder":
        channels = ctx.policy.use_cases.collections.reminder_channels
        return Candidate(
            kind="payment_reminder", purpose="collections", channels=channels, **_base(spec, ctx)
        )
    return Candidate(
        kind="staff_task", purpose="collections_call", tags=("collections_call",), **_base(spec, ctx)
    )


def _assistance(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    state = ctx.state
    address = state.patient.address if state.patient else None
    screening = screen(
        state.household_size,
        state.annual_income,
        address.state if address else None,
        state.balance,
        ctx.today,
        ctx.policy,
    )
    return Candidate(
        kind="assistance_invite",
        purpose="assistance",
        disclosures=("financial_assistance",),
        features={"screening": screening.features()},
        **_base(spec, ctx),
    )


def _settlement(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    if ctx.state.settlement_pending(ctx.now):
        return None  # a settlement agreed in a conversation stands: a standard offer would supersede it
    offer = settlement_offer(ctx.state.balance, ctx.now, ctx.policy)
    return Candidate(kind="settlement_offer", purpose="settlement", settlement=offer, **_base(spec, ctx))


def _short_pay(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    data = trigger.data
    if not isinstance(data, PaymentPosted) or data.expected_amount is None:
        return None
    return Candidate(
        kind="short_pay_inquiry",
        purpose="short_pay",
        variance=data.expected_amount - data.amount,
        detail=data.payment_id,
        **_base(spec, ctx),
    )


def _bad_debt(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    return Candidate(
        kind="staff_task",
        purpose="bad_debt_risk",
        audience="staff",
        tags=("bad_debt_risk",),
        note="Bad-debt risk: review the account (low propensity to pay, 60-90 days outstanding).",
        **_base(spec, ctx),
    )


def _plan_default(spec: RuleSpec, trigger: Cause, ctx: Context) -> Candidate | None:
    plan = ctx.state.plan
    detail = f"{plan.plan_id}:{plan.missed_payments}" if plan else ""
    if spec.outcome == "reminder":
        return Candidate(
            kind="payment_reminder",
            purpose="plan_default",
            tags=("plan_default",),
            detail=detail,
            **_base(spec, ctx),
        )
    return Candidate(
        kind="staff_task",
        purpose="plan_default_call",
        tags=("plan_default",),
        detail=detail,
        **_base(spec, ctx),
    )


_BUILDERS: dict[str, Callable[[RuleSpec, Cause, Context], Candidate | None]] = {
    "UC-STATEMENT": _statement,
    "UC-PLAN-OFFER": _plan_offer,
    "UC-COLLECTIONS": _collections,
    "UC-ASSISTANCE": _assistance,
    "UC-SETTLEMENT": _settlement,
    "UC-SHORT-PAY": _short_pay,
    "UC-BAD-DEBT": _bad_debt,
    "UC-PLAN-DEFAULT": _plan_default,
}


def propose(trigger: Cause, ctx: Context) -> list[Candidate]:
    """Every candidate the trigger raises, in the ruleset's order (statement first)."""
    engine = ctx.engines.usecases
    fired = engine.fired(usecase_facts(trigger, ctx))
    candidates = []
    for spec in engine.compiled.rules:
        if spec.name in fired:
            candidate = _BUILDERS[spec.gate](spec, trigger, ctx)
            if candidate is not None:
                candidates.append(candidate)
    return candidates
