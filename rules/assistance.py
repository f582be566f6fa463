"""Financial assistance screening: FPL % from the poverty guideline in force, then the discount tier.

FPL % = annual income ÷ poverty line for the household × 100 (exact decimals). Default tiers: at or
below ``free_up_to_fpl_pct`` → 100 % discount; up to ``sliding.up_to_fpl_pct`` → sliding linearly from
``from_discount_pct`` down to ``to_discount_pct``; above → none. A state floor (e.g. WA: free ≤ 300 %)
overrides a smaller default discount.

>>> from datetime import date
>>> from decimal import Decimal
>>> from rules.policy import load_policy
>>> policy = load_policy()
>>> s = screen(4, Decimal("66000"), None, Decimal("2000.00"), date(2026, 3, 1), policy)
>>> s.guideline_year, str(s.poverty_line), str(s.fpl_pct), str(s.discount_pct), s.basis
(2026, '33000.00', '200.00', '100.00', 'default')
>>> s = screen(4, Decimal("82500"), None, Decimal("2000.00"), date(2026, 3, 1), policy)
>>> str(s.fpl_pct), str(s.discount_pct), str(s.estimated_discount)
('250.00', '80.00', '1600.00')
>>> str(screen(4, Decimal("82500"), "WA", Decimal("2000.00"), date(2026, 3, 1), policy).discount_pct)
'100.00'
>>> screen(None, None, "WA", Decimal("2000.00"), date(2026, 3, 1), policy).fpl_pct is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rules.policy import Policy

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Screening:
    household_size: int | None
    annual_income: Decimal | None
    guideline_year: int
    poverty_line: Decimal | None
    fpl_pct: Decimal | None
    discount_pct: Decimal | None
    estimated_discount: Decimal | None
    basis: str
    """``default`` tiers, ``state floor XX``, or ``unknown`` when income or household size is missing."""

    def features(self) -> dict[str, Any]:
        """The pre-filled facts for the invitation, as JSON-ready text."""
        return {
            key: (str(value) if isinstance(value, Decimal) else value)
            for key, value in self.__dict__.items()
            if value is not None
        }


def _pct(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def default_discount(fpl_pct: Decimal, policy: Policy) -> Decimal:
    terms = policy.use_cases.assistance
    sliding = terms.sliding
    if fpl_pct <= terms.free_up_to_fpl_pct:
        return HUNDRED
    if fpl_pct > sliding.up_to_fpl_pct:
        return ZERO
    share = (fpl_pct - terms.free_up_to_fpl_pct) / (sliding.up_to_fpl_pct - terms.free_up_to_fpl_pct)
    return sliding.from_discount_pct - share * (sliding.from_discount_pct - sliding.to_discount_pct)


def state_floor(fpl_pct: Decimal, state: str | None, policy: Policy) -> Decimal:
    for band in policy.use_cases.assistance.state_floors.get(state or "", ()):
        if fpl_pct <= band.up_to_fpl_pct:
            return band.discount_pct
    return ZERO


def screen(
    household_size: int | None,
    annual_income: Decimal | None,
    state: str | None,
    balance: Decimal,
    on: date,
    policy: Policy,
) -> Screening:
    """What is known about the patient's eligibility on ``on`` (unknown parts stay None)."""
    terms = policy.use_cases.assistance
    year = terms.guideline(on).year
    if household_size is None or annual_income is None:
        return Screening(household_size, annual_income, year, None, None, None, None, "unknown")
    line = terms.poverty_line(household_size, on)
    fpl = _pct(annual_income / line * HUNDRED)
    default, floor = default_discount(fpl, policy), state_floor(fpl, state, policy)
    discount = _pct(max(default, floor))
    basis = f"state floor {state}" if floor > default else "default"
    estimated = (balance * discount / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
    return Screening(household_size, annual_income, year, line, fpl, discount, estimated, basis)
