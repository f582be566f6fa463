"""Bad-debt risk: the probability that an account pays nothing in the next 90 days.

POLICY.md flags an account for a ``bad_debt_risk`` staff task when it is 60-90 days outstanding and its
propensity is below 0.2. This score says the same thing over a longer horizon and goes into
``scores.bad_debt_risk``: the engine can rank the flagged accounts by it, and the work queue can show
it. It is the propensity machinery (`models.propensity.OnlineScorer`) with a 90-day label window and
the label turned round: the worker keeps a second snapshot store for it and calls
``on_payment(..., window=RISK_WINDOW)`` and ``expire(..., window=RISK_WINDOW)``, then `RiskModel.learn`
with the label as it comes (``paid``); the model learns ``not paid``.

**Cold-start prior.** From collectability by age (peer anchors: ~90% collected within 90 days, ~50%
after 90 days, ~20% at 180 days, agencies recover 13.8% once placed): the chance of no payment in 90
days is 0.25 for debt under 60 days, 0.40 at 60-90 days, 0.55 at 90-180 days and 0.80 beyond; balances
over $1,000 add 0.05 (McKinsey: fewer are willing and able to pay), a payment in the last three months
halves the remaining risk, an active plan without missed instalments gives 0.15.

>>> model = RiskModel()
>>> model.score({"log_balance": 6.0, "debt_age_months": 2.5})  # 76 days old: the prior
0.4
>>> for _ in range(200):
...     model.learn({"log_balance": 4.0, "debt_age_months": 1.0}, paid=True)
...     model.learn({"log_balance": 8.0, "debt_age_months": 7.0}, paid=False)
>>> model.score({"log_balance": 8.0, "debt_age_months": 7.0}) > model.score({"log_balance": 4.0})
True
"""

from __future__ import annotations

import math
from datetime import timedelta

from models.propensity import OnlineScorer

__all__ = ["RISK_WINDOW", "RiskModel", "risk_prior"]

RISK_WINDOW = timedelta(days=90)
"""No payment within 90 days of the decision counts as bad-debt risk realised."""


def risk_prior(x: dict[str, float]) -> float:
    """The documented cold-start prior (module docstring) of a feature dict from `models.features`."""
    if x.get("plan_active") and not x.get("plan_missed_payments"):
        return 0.15
    age = x.get("debt_age_months", 0.0) * 30.4375
    risk = 0.25 if age < 60 else 0.40 if age < 90 else 0.55 if age < 180 else 0.80
    if math.expm1(x.get("log_balance", 0.0)) > 1_000:
        risk += 0.05
    if x.get("months_since_payment", 12.0) < 3:
        risk /= 2
    return round(risk, 4)


class RiskModel(OnlineScorer):
    """Probability of no payment within `RISK_WINDOW`: ``scores.bad_debt_risk``."""

    arch = "risk-lr-2"

    def prior(self, x: dict[str, float]) -> float:
        return risk_prior(x)

    def learn(self, x: dict[str, float], y: bool | None = None, *, paid: bool | None = None) -> None:
        """Learn a labelled snapshot; pass the delayed label as ``paid`` (the model learns ``not paid``).

        ``y`` (bad debt realised) is accepted too, for symmetry with `OnlineScorer.learn`.
        """
        if (y is None) == (paid is None):
            raise TypeError("pass exactly one of y (bad debt) or paid")
        super().learn(x, (not paid) if paid is not None else bool(y))
