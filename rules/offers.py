"""Money offers: interest-free plan options and settlement amounts (POLICY.md section 1).

Plan options: one per term, ``monthly_amount`` = balance ÷ term rounded up to the cent, kept only at or
above the policy's minimum, at most ``max_options``; the longer term comes first for a low propensity.
Settlement: the offer is never below the floor (a share of the balance), rounded up to the cent.

>>> from datetime import datetime, UTC
>>> from decimal import Decimal
>>> from rules.policy import load_policy
>>> policy = load_policy()
>>> now = datetime(2026, 3, 16, 15, tzinfo=UTC)
>>> [(o.term_months, str(o.monthly_amount)) for o in plan_options(Decimal("450.00"), now, 0.7, policy)]
[(3, '150.00'), (6, '75.00'), (12, '37.50')]
>>> [o.term_months for o in plan_options(Decimal("100.00"), now, 0.1, policy)]
[3]
>>> [o.term_months for o in plan_options(Decimal("1000.00"), now, 0.1, policy)]
[12, 6, 3]
>>> s = settlement_offer(Decimal("1234.57"), now, policy)
>>> str(s.amount), str(s.floor), s.valid_until.isoformat()
('864.20', '864.20', '2026-04-15')
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from rules.policy import Policy
from schemas.actions import PlanOption, Settlement

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def _up_to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_CEILING)


def plan_options(
    balance: Decimal, now: datetime, propensity: float, policy: Policy
) -> tuple[PlanOption, ...]:
    """The interest-free plan options for ``balance`` (empty when no term keeps the minimum monthly)."""
    plan = policy.use_cases.payment_plan
    first_due = now.date() + timedelta(days=plan.first_due_after_days)
    options = [
        PlanOption(monthly_amount=monthly, term_months=term, first_due_date=first_due, total=balance)
        for term in sorted(set(plan.terms_months))
        if (monthly := _up_to_cent(balance / term)) >= plan.min_monthly
    ]
    if propensity < plan.long_term_first_below_propensity:
        options.reverse()
    return tuple(options[: plan.max_options])


def needs_tila_disclosure(options: tuple[PlanOption, ...], policy: Policy) -> bool:
    """A plan in more installments than the policy's limit carries the 0 % APR disclosure (Reg Z)."""
    limit = policy.use_cases.payment_plan.tila_disclosure_over_installments
    return any(option.term_months > limit for option in options)


def settlement_offer(balance: Decimal, now: datetime, policy: Policy) -> Settlement:
    """A settlement at the policy's offer share, never below its floor, valid for ``valid_days``."""
    terms = policy.use_cases.settlement
    floor = _up_to_cent(balance * terms.floor_pct / HUNDRED)
    amount = max(floor, _up_to_cent(balance * terms.offer_pct / HUNDRED))
    return Settlement(amount=amount, floor=floor, valid_until=now.date() + timedelta(days=terms.valid_days))
