"""The propensity model learns on the simulator, close to the hidden propensity, cheaply."""

from __future__ import annotations

import math
from typing import Any

import pytest

from models.evaluate import auc, evaluate
from models.propensity import PropensityModel, propensity_prior


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return evaluate(events=20_000, seed=7)


def _x(balance: float, age_days: float, **extra: float) -> dict[str, float]:
    return {"log_balance": math.log1p(balance), "debt_age_months": age_days / 30.4375, **extra}


def test_cold_start_is_the_documented_prior() -> None:
    model = PropensityModel()
    assert model.score(_x(200, 40)) == propensity_prior(_x(200, 40)) == 0.4
    assert propensity_prior(_x(800, 40)) == pytest.approx(0.33)
    assert propensity_prior(_x(3_000, 40)) == pytest.approx(0.27)
    assert propensity_prior(_x(200, 120)) == pytest.approx(0.4 * 0.55)
    assert propensity_prior(_x(200, 400)) == pytest.approx(0.4 * 0.25)
    assert propensity_prior(_x(200, 40, dispute_open=1.0)) == 0.02
    assert propensity_prior(_x(200, 40, plan_active=1.0)) == 0.85
    assert propensity_prior(_x(200, 40, has_paid=1.0)) > 0.4


def test_one_class_only_leaves_the_prior_in_charge() -> None:
    """Positives arrive first (at payment); until negatives arrive the model cannot rank."""
    model = PropensityModel()
    for _ in range(50):
        model.learn(_x(100, 30), True)
    assert model.score(_x(5_000, 200)) == propensity_prior(_x(5_000, 200))
    model.learn(_x(5_000, 200), False)
    assert model.score(_x(5_000, 200)) != propensity_prior(_x(5_000, 200))
    assert model.model_version == "ptp-lr-2+51"


def test_auc_handles_ties() -> None:
    assert auc([0.5, 0.5], [True, False]) == 0.5
    assert auc([0.1, 0.9], [False, True]) == 1.0
    assert auc([0.3], [True]) == 0.5  # one class only: undefined, reported as chance


def test_it_learns_close_to_the_hidden_propensity(report: dict[str, Any]) -> None:
    assert report["events"] == 20_000
    assert report["labels"] > 1_500
    assert report["auc"] >= 0.9 * report["oracle_auc"]
    assert report["auc"] > 0.65  # well above chance
    assert report["auc"] > report["prior_auc"]  # learned beyond the cold-start prior
    assert report["auc"] > report["bare_lr_auc"]  # and beyond a bare River LR on the same labels


def test_probabilities_are_roughly_calibrated(report: dict[str, Any]) -> None:
    deciles = report["calibration"]
    assert len(deciles) == 10
    assert deciles[-1]["observed"] > deciles[0]["observed"] + 0.3
    for row in deciles:
        assert abs(row["predicted"] - row["observed"]) < 0.12
    assert report["brier"] < 0.25  # better than always saying 0.5


def test_labels_come_after_decisions_within_the_window(report: dict[str, Any]) -> None:
    assert 0 < report["label_delay_days"] <= report["label_window_days"]
    assert report["backlog"] > 0  # decisions of the last 30 days are still waiting: no peeking


def test_learn_and_predict_cost_next_to_a_bare_river_lr(report: dict[str, Any]) -> None:
    timing = report["timing"]
    assert timing["bare_lr_us_per_event"] > 0
    assert timing["model_us_per_event"] < 100


def test_evaluation_is_deterministic() -> None:
    first, second = evaluate(events=3_000, seed=3), evaluate(events=3_000, seed=3)
    for key in ("auc", "oracle_auc", "labels", "log_loss", "calibration"):
        assert first[key] == second[key]
