"""Model monitoring: rolling quality, calibration, drift and label backlog as Prometheus metrics, and a
fairness report of score distributions by age band.

Quality can only be measured when labels arrive, 30 days after the decision for a negative, so the
monitor also watches what is known at once: the score distribution (by age band, which is also the
fairness view) and the backlog of decisions waiting for a label. Drift is detected with ADWIN on each
label's log loss: a lasting rise in loss cuts ADWIN's window and counts a detection.

Metric names (all labelled by ``model``; Prometheus base units, ratios in [0, 1]):

=====================================================  ======================================================
``billwise_model_roc_auc_ratio``                       rolling ROC AUC over the last ``window`` labels
``billwise_model_log_loss``                            rolling mean log loss (nats)
``billwise_model_brier_score``                         rolling mean squared error of the probability
``billwise_model_positive_ratio``                      rolling share of positive labels
``billwise_model_calibration_predicted_ratio``         mean score per score decile (``decile`` = 1..10)
``billwise_model_calibration_observed_ratio``          observed positive rate per score decile
``billwise_model_drift_detections_total``              ADWIN detections on the label log loss
``billwise_model_labels_total``                        labels learned (``label`` = positive / negative)
``billwise_model_label_backlog``                       decisions waiting for their label
``billwise_model_label_delay_seconds``                 histogram: decision to label
``billwise_model_score_ratio``                         histogram of scores given (``age_band``)
=====================================================  ======================================================

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> monitor = ModelMonitor("propensity", registry=registry)
>>> for i in range(200):
...     drifted = monitor.observe_label(0.8 if i % 2 else 0.3, bool(i % 2), delay_seconds=86_400.0)
>>> monitor.snapshot()["roc_auc"]
1.0
>>> registry.get_sample_value("billwise_model_labels_total", {"model": "propensity", "label": "positive"})
100.0
>>> from datetime import date
>>> age_band(date(1990, 5, 1), date(2026, 3, 1))
'35-49'
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from river import drift, metrics

from models.labels import Label

__all__ = ["AGE_BANDS", "ModelMonitor", "age_band", "fairness_report"]

AGE_BANDS = ("0-17", "18-34", "35-49", "50-64", "65+", "unknown")
_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_DELAY_BUCKETS = tuple(days * 86_400.0 for days in (1, 3, 7, 14, 21, 30, 45, 60, 90))
AUTOMATED_LANE = 0.6
"""POLICY.md: a digital reminder without review needs propensity >= 0.6 (and balance <= $500)."""
BAD_DEBT_FLAG = 0.2
"""POLICY.md: propensity < 0.2 at 60-90 days outstanding flags bad-debt risk."""


def age_band(birth_date: date | None, today: date | datetime) -> str:
    """The age band of a patient on ``today``; ``"unknown"`` without a birth date."""
    if birth_date is None:
        return "unknown"
    day = today.date() if isinstance(today, datetime) else today
    years = day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
    if years < 18:
        return "0-17"
    if years < 35:
        return "18-34"
    if years < 50:
        return "35-49"
    if years < 65:
        return "50-64"
    return "65+"


def calibration(scores: list[float], labels: list[bool], bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed rate in equal-count bins of the score (deciles by default).

    >>> low, high = calibration([0.1, 0.2, 0.8, 0.9], [False, False, True, True], bins=2)
    >>> low
    {'decile': 1, 'n': 2, 'predicted': 0.15, 'observed': 0.0}
    """
    pairs = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    out = []
    for b in range(bins):
        chunk = pairs[b * len(pairs) // bins : (b + 1) * len(pairs) // bins]
        if chunk:
            out.append(
                {
                    "decile": b + 1,
                    "n": len(chunk),
                    "predicted": round(sum(p for p, _ in chunk) / len(chunk), 4),
                    "observed": round(sum(1 for _, y in chunk if y) / len(chunk), 4),
                }
            )
    return out


@dataclass(frozen=True)
class _Metrics:
    roc_auc: Gauge
    log_loss: Gauge
    brier: Gauge
    positive: Gauge
    cal_predicted: Gauge
    cal_observed: Gauge
    drift: Counter
    labels: Counter
    backlog: Gauge
    delay: Histogram
    score: Histogram


_BY_REGISTRY: dict[int, _Metrics] = {}


def _metrics(registry: CollectorRegistry) -> _Metrics:
    """One set of metric objects per registry: several monitors (propensity, risk) share them by label."""
    found = _BY_REGISTRY.get(id(registry))
    if found is None:
        kw: dict[str, Any] = {"registry": registry}
        found = _BY_REGISTRY[id(registry)] = _Metrics(
            roc_auc=Gauge(
                "billwise_model_roc_auc_ratio", "Rolling ROC AUC over recent labels", ["model"], **kw
            ),
            log_loss=Gauge(
                "billwise_model_log_loss", "Rolling mean log loss over recent labels", ["model"], **kw
            ),
            brier=Gauge(
                "billwise_model_brier_score", "Rolling mean squared error of the score", ["model"], **kw
            ),
            positive=Gauge(
                "billwise_model_positive_ratio", "Rolling share of positive labels", ["model"], **kw
            ),
            cal_predicted=Gauge(
                "billwise_model_calibration_predicted_ratio",
                "Mean score by score decile",
                ["model", "decile"],
                **kw,
            ),
            cal_observed=Gauge(
                "billwise_model_calibration_observed_ratio",
                "Observed positive rate by score decile",
                ["model", "decile"],
                **kw,
            ),
            drift=Counter(
                "billwise_model_drift_detections", "ADWIN drift detections on label log loss", ["model"], **kw
            ),
            labels=Counter("billwise_model_labels", "Delayed labels learned", ["model", "label"], **kw),
            backlog=Gauge(
                "billwise_model_label_backlog", "Decisions waiting for their label", ["model"], **kw
            ),
            delay=Histogram(
                "billwise_model_label_delay_seconds",
                "Time from decision to label",
                ["model"],
                buckets=_DELAY_BUCKETS,
                **kw,
            ),
            score=Histogram(
                "billwise_model_score_ratio",
                "Scores given, by patient age band (fairness view)",
                ["model", "age_band"],
                buckets=_SCORE_BUCKETS,
                **kw,
            ),
        )
    return found


class ModelMonitor:
    """Rolling metrics of one model, exported to a Prometheus registry (the default one unless given).

    Call `observe_score` for every score given and `observe_label` (or `observe`) for every label
    learned; `set_backlog` from the label sweep. ``window`` bounds every rolling statistic.
    """

    def __init__(
        self,
        model: str = "propensity",
        *,
        registry: CollectorRegistry = REGISTRY,
        window: int = 1_000,
        calibration_every: int = 100,
        fairness_window: int = 5_000,
    ) -> None:
        self.model = model
        self.window = window
        self.calibration_every = calibration_every
        self._m = _metrics(registry)
        self._auc = metrics.RollingROCAUC(window_size=window)
        self._recent: deque[tuple[float, bool]] = deque(maxlen=window)
        self._loss_sum = 0.0
        self._brier_sum = 0.0
        self._positives = 0
        self._adwin = drift.ADWIN()
        self.drift_detections = 0
        self.labels = 0
        self._scores: dict[str, deque[float]] = {band: deque(maxlen=fairness_window) for band in AGE_BANDS}

    # -- scores -----------------------------------------------------------------------------------

    def observe_score(self, p: float, *, band: str = "unknown") -> None:
        """A score given (``band`` from `age_band`): the score histogram and the fairness window."""
        self._m.score.labels(self.model, band).observe(p)
        self._scores.setdefault(band, deque(maxlen=self._scores["unknown"].maxlen)).append(p)

    def fairness_report(self, **kwargs: Any) -> dict[str, Any]:
        """`fairness_report` over the recent scores this monitor saw."""
        return fairness_report(self._scores, **kwargs)

    # -- labels -----------------------------------------------------------------------------------

    def observe(self, label: Label) -> bool:
        """A delayed label whose snapshot carries the score given (``p``); True when drift is detected."""
        if label.p is None:
            return False
        return self.observe_label(label.p, label.y, delay_seconds=label.delay_seconds)

    def observe_label(self, p: float, y: bool, *, delay_seconds: float | None = None) -> bool:
        """The score given at decision time and the label that arrived; True when drift is detected."""
        y = bool(y)
        p = min(max(float(p), 1e-6), 1.0 - 1e-6)
        loss = -math.log(p if y else 1.0 - p)
        if len(self._recent) == self._recent.maxlen:  # the oldest leaves the rolling sums
            old_p, old_y = self._recent[0]
            self._loss_sum -= -math.log(old_p if old_y else 1.0 - old_p)
            self._brier_sum -= (old_p - old_y) ** 2
            self._positives -= old_y
        self._recent.append((p, y))
        self._loss_sum += loss
        self._brier_sum += (p - y) ** 2
        self._positives += y
        self._auc.update(y, p)
        self.labels += 1

        n = len(self._recent)
        m = self._m
        m.roc_auc.labels(self.model).set(self._auc.get())
        m.log_loss.labels(self.model).set(self._loss_sum / n)
        m.brier.labels(self.model).set(self._brier_sum / n)
        m.positive.labels(self.model).set(self._positives / n)
        m.labels.labels(self.model, "positive" if y else "negative").inc()
        if delay_seconds is not None:
            m.delay.labels(self.model).observe(delay_seconds)
        if self.labels % self.calibration_every == 0:  # deciles sort the window: not on every label
            for row in self.calibration():
                m.cal_predicted.labels(self.model, str(row["decile"])).set(row["predicted"])
                m.cal_observed.labels(self.model, str(row["decile"])).set(row["observed"])

        self._adwin.update(loss)
        if self._adwin.drift_detected:
            self.drift_detections += 1
            m.drift.labels(self.model).inc()
            return True
        return False

    def set_backlog(self, pending: int) -> None:
        """Decisions waiting for a label (`models.labels.backlog` of the snapshot store)."""
        self._m.backlog.labels(self.model).set(pending)

    def calibration(self, bins: int = 10) -> list[dict[str, float]]:
        """Mean score and observed rate per equal-count score bin of the rolling window."""
        return calibration([p for p, _ in self._recent], [y for _, y in self._recent], bins)

    def snapshot(self) -> dict[str, Any]:
        """The current rolling figures, as JSON-friendly values."""
        n = len(self._recent) or 1
        return {
            "model": self.model,
            "labels": self.labels,
            "roc_auc": round(self._auc.get(), 4),
            "log_loss": round(self._loss_sum / n, 4),
            "brier": round(self._brier_sum / n, 4),
            "positive_rate": round(self._positives / n, 4),
            "drift_detections": self.drift_detections,
            "calibration": self.calibration(),
        }


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def fairness_report(
    scores: Mapping[str, Iterable[float]],
    *,
    automated: float = AUTOMATED_LANE,
    low: float = BAD_DEBT_FLAG,
    min_count: int = 30,
) -> dict[str, Any]:
    """Score distributions by group (age band), and how unevenly the score-driven lanes fall on them.

    Per group: count, mean, 10th/50th/90th percentile, the share at or above ``automated`` (the
    automated digital lane) and below ``low`` (the bad-debt flag). Across groups with at least
    ``min_count`` scores: the largest gap in mean score and the ratio of the lowest to the highest
    automated-lane share (below 0.8 fails the four-fifths rule of thumb and deserves a look).

    >>> report = fairness_report({"18-34": [0.7] * 40 + [0.3] * 10, "65+": [0.7] * 20 + [0.3] * 30})
    >>> report["groups"]["18-34"]["automated_share"], report["groups"]["65+"]["automated_share"]
    (0.8, 0.4)
    >>> report["automated_share_ratio"], report["four_fifths_ok"]
    (0.5, False)
    """
    groups: dict[str, dict[str, float]] = {}
    for band, values in scores.items():
        ordered = sorted(values)
        if not ordered:
            continue
        n = len(ordered)
        groups[band] = {
            "n": n,
            "mean": round(sum(ordered) / n, 4),
            "p10": round(_quantile(ordered, 0.1), 4),
            "median": round(_quantile(ordered, 0.5), 4),
            "p90": round(_quantile(ordered, 0.9), 4),
            "automated_share": round(sum(1 for v in ordered if v >= automated) / n, 4),
            "low_share": round(sum(1 for v in ordered if v < low) / n, 4),
        }
    compared = {band: g for band, g in groups.items() if g["n"] >= min_count and band != "unknown"}
    shares = [g["automated_share"] for g in compared.values()]
    means = [g["mean"] for g in compared.values()]
    ratio = round(min(shares) / max(shares), 4) if shares and max(shares) > 0 else None
    return {
        "groups": groups,
        "compared": sorted(compared),
        "mean_gap": round(max(means) - min(means), 4) if means else None,
        "automated_share_ratio": ratio,
        "four_fifths_ok": None if ratio is None else ratio >= 0.8,
    }
