"""Features come from account state at decision time only, and never from protected attributes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal

from models.features import FEATURE_NAMES, PROTECTED, features
from models.simulator import Practice
from rules.facts import apply_event
from rules.state import AccountState, ContactFact, PaymentFact, PlanFact
from schemas.events import parse_event

NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)


def _state(**update: object) -> AccountState:
    return AccountState.new("ACC-1", "PT-1", "P-1").model_copy(update=update)


def test_names_are_stable_and_values_are_floats() -> None:
    x = features(_state(balance=Decimal("120.00")), NOW)
    assert tuple(x) == FEATURE_NAMES
    assert all(isinstance(v, float) for v in x.values())


def test_values_from_state() -> None:
    state = _state(
        balance=Decimal("300.00"),
        insurance_pending=Decimal("100.00"),
        oldest_unpaid_service_date=date(2026, 3, 3),
        first_statement_date=date(2026, 4, 1),
        payments=[PaymentFact(payment_id="P1", amount=Decimal("50.00"), at=datetime(2026, 5, 1, tzinfo=UTC))],
        contacts=[
            ContactFact(at=datetime(2026, 5, 2, tzinfo=UTC), channel="email", outcome="opened"),
            ContactFact(at=datetime(2026, 5, 20, tzinfo=UTC), channel="letter", outcome="delivered"),
        ],
        plan=PlanFact(
            plan_id="PL",
            status="active",
            monthly_amount=Decimal("50"),
            term_months=6,
            balance_remaining=Decimal(300),
        ),
    )
    x = features(state, NOW)
    assert x["balance_le_400"] == 1.0
    assert round(x["debt_age_months"], 2) == round(90 / 30.4375, 2)
    assert x["insurance_pending_share"] == 0.25
    assert (x["has_paid"], x["payments_365d"]) == (1.0, 1.0)
    assert round(x["months_since_payment"], 3) == round(31.625 / 30.4375, 3)  # 31 days 15 hours
    assert x["paid_share_365d"] == 50 / 350
    assert round(x["recent_payment"], 4) == round(math.exp(-31.625 / 30.4375 / 2), 4)
    # One payment in two billed months (statements since April 1), shrunk by (0.6, 2): 1.6 / 4.
    months = (NOW.date() - date(2026, 4, 1)).days / 30.4375
    assert round(x["pay_rate_logit"], 4) == round(math.log(1.6 / (months + 2) / (1 - 1.6 / (months + 2))), 4)
    assert x["engagement_rate_180d"] == 0.5
    assert x["plan_active"] == 1.0


def test_nothing_after_the_decision_time_is_used() -> None:
    """A payment or contact dated after ``now`` (e.g. the state was folded further) is ignored."""
    later = datetime(2026, 6, 5, tzinfo=UTC)
    state = _state(
        balance=Decimal("100.00"),
        payments=[PaymentFact(payment_id="P1", amount=Decimal("100.00"), at=later)],
        contacts=[ContactFact(at=later, channel="sms", outcome="clicked")],
    )
    x = features(state, NOW)
    assert (x["has_paid"], x["engagement_rate_180d"], x["contacts_90d"]) == (0.0, 0.0, 0.0)


def test_protected_attributes_are_not_features() -> None:
    """Two patients differing only in birth date, language and ZIP get the same features."""
    practice = Practice(seed=5, patients=40, days=90)
    states: dict[str, AccountState] = {}
    for raw in practice.events():
        event = parse_event(raw)
        data = event.data
        state = states.get(data.account_id) or AccountState.new(
            data.account_id, data.patient_id, data.practice_id
        )
        states[data.account_id] = apply_event(state, data)
    state = next(s for s in states.values() if s.patient is not None and s.balance > 0)
    assert state.patient is not None
    other_patient = state.patient.model_copy(
        update={
            "birth_date": date(1930, 1, 1),
            "language": "es" if state.patient.language == "en" else "en",
            "address": None,
        }
    )
    twin = state.model_copy(update={"patient": other_patient})
    assert features(state, NOW) == features(twin, NOW)
    assert not PROTECTED & set(FEATURE_NAMES)


def test_payment_history_features_order_patients_by_how_they_pay() -> None:
    """More payments per billed month and a more recent payment score higher; no history is the mean."""

    def paying(times: int) -> dict[str, float]:
        payments = [
            PaymentFact(payment_id=f"P{i}", amount=Decimal("40.00"), at=datetime(2026, 5 - i, 10, tzinfo=UTC))
            for i in range(times)
        ]
        return features(_state(first_statement_date=date(2025, 12, 1), payments=payments), NOW)

    never, once, often = paying(0), paying(1), paying(4)
    assert never["pay_rate_logit"] < once["pay_rate_logit"] < often["pay_rate_logit"]
    assert never["recent_payment"] < once["recent_payment"] == often["recent_payment"]
    new = features(_state(), NOW)  # no statement yet: the shrinkage's own rate, 0.6 / 3
    assert round(new["pay_rate_logit"], 6) == round(math.log(0.2 / 0.8), 6)
