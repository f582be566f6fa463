"""Bad-debt risk and channel choice."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from models.channel import CHANNELS, REWARD_OUTCOMES, REWARD_WINDOW, ChannelChooser
from models.labels import expire, on_decision, on_payment
from models.risk import RISK_WINDOW, RiskModel, risk_prior
from models.simulator import Practice


def _x(balance: float, age_days: float, **extra: float) -> dict[str, float]:
    return {"log_balance": math.log1p(balance), "debt_age_months": age_days / 30.4375, **extra}


def test_risk_prior_follows_collectability_by_age() -> None:
    ages = [30, 75, 120, 240]
    risks = [risk_prior(_x(300, age)) for age in ages]
    assert risks == sorted(risks)
    assert risks == [0.25, 0.4, 0.55, 0.8]
    assert risk_prior(_x(3_000, 75)) == pytest.approx(0.45)
    assert risk_prior(_x(300, 75, months_since_payment=1.0)) == 0.2
    assert risk_prior(_x(300, 75, plan_active=1.0)) == 0.15


def test_risk_learns_from_the_payment_label_turned_round() -> None:
    model = RiskModel()
    for _ in range(150):
        model.learn(_x(100, 20), paid=True)
        model.learn(_x(4_000, 200), paid=False)
    assert model.score(_x(4_000, 200)) > 0.7 > 0.3 > model.score(_x(100, 20))
    with pytest.raises(TypeError):
        model.learn(_x(100, 20))


def test_risk_uses_a_90_day_window() -> None:
    store: dict[str, list[dict[str, object]]] = {}
    t0 = datetime(2026, 2, 2, tzinfo=UTC)
    on_decision(store, "A", _x(500, 70), t0)
    assert expire(store, t0 + timedelta(days=60), window=RISK_WINDOW) == []
    labels = expire(store, t0 + RISK_WINDOW, window=RISK_WINDOW)
    model = RiskModel()
    for label in labels:
        model.learn(label.x, paid=label.y)
    assert model.labels == 1 and model.positives == 1  # no payment in 90 days: a bad-debt positive


def test_a_cold_segment_leaves_the_policy_order_then_only_permitted_channels_are_chosen() -> None:
    chooser = ChannelChooser(seed=3, min_evidence=10)
    context = {"preferred_channel": "email", "balance": 80.0}
    assert chooser.rank(context, "A|e1") is None
    for n in range(10):
        chooser.reward("portal", context, n % 2 == 0)
    assert chooser.rank({"preferred_channel": "sms", "balance": 80.0}, "A|e1") is None  # another segment
    for n in range(50):
        ranking = chooser.rank(context, f"A|e{n}")
        assert ranking is not None and sorted(ranking.order) == sorted(CHANNELS)
        assert ranking.first(["letter", "portal"]) in ("letter", "portal")


def _choose(chooser: ChannelChooser, permitted: list[str], context: dict[str, object], key: str) -> str:
    ranking = chooser.rank(context, key)
    return ranking.first(permitted) if ranking is not None else permitted[0]


def test_the_bandit_finds_the_channel_patients_answer_in_the_simulator() -> None:
    """Rewarded by the simulator's own replies, the chooser comes to favour what patients answer."""
    practice = Practice(seed=12, patients=1_200, days=1)
    for _ in practice.events():
        pass
    chooser = ChannelChooser(seed=1, min_evidence=0)  # explore from the first message
    store: dict[str, list[dict[str, object]]] = {}
    now = practice.start + timedelta(hours=17)
    chosen: list[str] = []
    accounts = [
        a for a in practice.account_ids() if practice._by_account[a].mobile and practice._by_account[a].email
    ]
    rng = random.Random(4)
    for step in range(3):
        for n, account in enumerate(rng.sample(accounts, len(accounts))):
            patient = practice._by_account[account]
            if patient.preferred != "sms":
                continue
            context = {"preferred_channel": "sms", "balance": 100.0}
            channel = _choose(chooser, ["sms", "email", "letter"], context, f"{account}|{step}")
            chosen.append(channel)
            at = now + timedelta(days=20 * step)
            on_decision(store, account, {}, at, meta=chooser.meta(channel, context))
            action = {"action_id": f"ch-{step}-{n}", "account_id": account, "kind": "payment_reminder"}
            replies = practice.respond({**action, "channel": channel}, at)
            engaged = any(r["data"].get("outcome") in REWARD_OUTCOMES for r in replies)
            if engaged or any(r["type"] == "billing.payment.posted" for r in replies):
                for label in on_payment(store, account, at + timedelta(days=1), window=REWARD_WINDOW):
                    chooser.learn(label)
        for label in expire(store, now + timedelta(days=20 * step + 15), window=REWARD_WINDOW):
            chooser.learn(label)
    early, late = chosen[: len(chosen) // 6], chosen[len(chosen) // 2 :]
    assert len(set(early)) == 3  # it explored every channel
    assert late.count("sms") / len(late) > 0.6  # patients who asked for texts mostly answer texts
    assert chooser.ranking({"preferred_channel": "sms", "balance": 100.0})[0] == "sms"


def _trained(seed: int = 5) -> ChannelChooser:
    chooser = ChannelChooser(seed=seed, min_evidence=0)
    context = {"preferred_channel": None, "balance": 900.0}
    for n in range(40):
        chooser.reward("sms", context, n % 3 != 0)  # 2 in 3
        chooser.reward("email", context, n % 2 == 0)  # 1 in 2
    return chooser


def test_a_decision_draws_the_same_ranking_every_time_and_different_decisions_explore() -> None:
    context = {"preferred_channel": None, "balance": 900.0}
    a, b = _trained(), _trained()
    keys = [f"ACC-{n}|evt-{n}" for n in range(400)]
    firsts = [a.rank(context, key).first(["sms", "email"]) for key in keys]  # type: ignore[union-attr]
    a.probabilities(["sms", "email"], context)  # estimating draws from its own stream
    assert firsts == [b.rank(context, key).first(["sms", "email"]) for key in keys]  # type: ignore[union-attr]
    assert a.rank(context, keys[0]) == a.rank(context, keys[0])
    # Thompson sampling: the better channel mostly, the other one sometimes, as often as estimated.
    share = firsts.count("sms") / len(firsts)
    assert 0.5 < share < 1.0
    assert a.probabilities(["sms", "email"], context)["sms"] == pytest.approx(share, abs=0.08)


def test_the_chooser_pickles_for_checkpoints() -> None:
    chooser = _trained(seed=2)
    copy = pickle.loads(pickle.dumps(chooser))
    context = {"preferred_channel": None, "balance": 900.0}
    assert [copy.rank(context, f"A|{n}") for n in range(10)] == [
        chooser.rank(context, f"A|{n}") for n in range(10)
    ]
