"""Model monitoring metrics and the fairness report."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from models.labels import Label
from models.monitoring import AGE_BANDS, ModelMonitor, age_band, fairness_report


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_metric_names_follow_prometheus_conventions() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("propensity", registry=registry, calibration_every=10)
    for i in range(20):
        monitor.observe_label(0.7 if i % 2 else 0.2, bool(i % 2), delay_seconds=3 * 86_400.0)
        monitor.observe_score(0.5, band="35-49")
    monitor.set_backlog(12)
    text = generate_latest(registry).decode()
    for name in (
        "billwise_model_roc_auc_ratio",
        "billwise_model_log_loss",
        "billwise_model_brier_score",
        "billwise_model_positive_ratio",
        "billwise_model_calibration_predicted_ratio",
        "billwise_model_calibration_observed_ratio",
        "billwise_model_drift_detections_total",
        "billwise_model_labels_total",
        "billwise_model_label_backlog",
        "billwise_model_label_delay_seconds_bucket",
        "billwise_model_score_ratio_bucket",
    ):
        assert name in text, name
    assert _value(registry, "billwise_model_label_backlog", model="propensity") == 12
    assert _value(registry, "billwise_model_roc_auc_ratio", model="propensity") == 1.0
    assert (
        _value(registry, "billwise_model_calibration_observed_ratio", model="propensity", decile="10") == 1.0
    )
    assert _value(registry, "billwise_model_label_delay_seconds_count", model="propensity") == 20


def test_two_models_share_one_registry() -> None:
    registry = CollectorRegistry()
    propensity = ModelMonitor("propensity", registry=registry)
    risk = ModelMonitor("risk", registry=registry)
    propensity.observe_label(0.9, True)
    risk.observe_label(0.9, False)
    assert _value(registry, "billwise_model_labels_total", model="propensity", label="positive") == 1
    assert _value(registry, "billwise_model_labels_total", model="risk", label="negative") == 1


def test_rolling_figures_and_a_label_object() -> None:
    monitor = ModelMonitor("propensity", registry=CollectorRegistry(), window=100)
    decided = datetime(2026, 1, 5, tzinfo=UTC)
    label = Label("A", {}, True, decided, decided + timedelta(days=4), p=0.8)
    assert monitor.observe(label) is False
    assert monitor.observe(Label("A", {}, True, decided, decided)) is False  # no score: nothing to judge
    snap = monitor.snapshot()
    assert snap["labels"] == 1
    assert 0.2 < snap["log_loss"] < 0.25  # -ln(0.8)


def test_adwin_flags_a_lasting_drop_in_quality() -> None:
    monitor = ModelMonitor("propensity", registry=CollectorRegistry())
    rng = random.Random(1)
    for _ in range(1_500):  # a good model: confident and right
        y = rng.random() < 0.5
        assert not monitor.observe_label(0.85 if y else 0.15, y)
    drifted = False
    for _ in range(1_500):  # the world changed: the same scores are now wrong as often as right
        y = rng.random() < 0.5
        drifted |= monitor.observe_label(0.85 if rng.random() < 0.5 else 0.15, y)
    assert drifted
    assert monitor.snapshot()["drift_detections"] >= 1


def test_age_bands() -> None:
    today = date(2026, 3, 1)
    assert age_band(date(2010, 3, 2), today) == "0-17"
    assert age_band(date(2008, 3, 1), today) == "18-34"
    assert age_band(date(1961, 3, 2), today) == "50-64"
    assert age_band(date(1961, 3, 1), today) == "65+"
    assert age_band(None, today) == "unknown"
    assert set(AGE_BANDS) >= {"0-17", "18-34", "35-49", "50-64", "65+", "unknown"}


def test_fairness_report_by_age_band() -> None:
    monitor = ModelMonitor("propensity", registry=CollectorRegistry())
    rng = random.Random(2)
    for _ in range(300):
        monitor.observe_score(min(1.0, max(0.0, rng.gauss(0.55, 0.15))), band="35-49")
        monitor.observe_score(min(1.0, max(0.0, rng.gauss(0.55, 0.15))), band="65+")
    monitor.observe_score(0.9, band="0-17")  # too few to compare
    report = monitor.fairness_report()
    assert report["compared"] == ["35-49", "65+"]
    assert report["groups"]["0-17"]["n"] == 1
    assert report["mean_gap"] < 0.05
    assert report["four_fifths_ok"] is True
    skewed = fairness_report({"18-34": [0.8] * 50, "65+": [0.3] * 50})
    assert skewed["four_fifths_ok"] is False
    assert skewed["groups"]["65+"]["low_share"] == 0.0 and skewed["mean_gap"] == 0.5
