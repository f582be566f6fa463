"""Progressive validation of the propensity model on the simulator, with delayed labels.

The simulator's events are parsed (`schemas.events.parse_event`) and folded into account state
(`rules.facts.apply_event`) exactly as the worker does. At every statement with a balance the model
scores the account and a decision snapshot is kept (`models.labels`); a payment within 30 days labels
it positive, the daily sweep labels it negative once the window closes, and only then does the model
learn it. Each score is therefore made before its label is known, by a model that has learned only
from labels that had arrived by then.

The same labels score the simulator's hidden propensity (``oracle_auc``: the best any model could do)
and a bare River ``LogisticRegression`` fed the same snapshots in the same run, which is also the
timing reference.

The practice is sized to the request: ``events`` events spread over two years (``days=720``), about
630 patients for 20,000 events. The horizon matters because the first 30 days have no labels and the
first few hundred labels teach little. Measured with 20,000 events over two years on seeds 1-11, 13,
17 and 21, ``auc / oracle_auc`` is 0.902-0.941, mean 0.916 (seed 7: 0.923, 11: 0.902, 13: 0.920, 21:
0.941). Before positives were held and the step decayed it was 0.890-0.929, mean 0.906 (seed 7: 0.907,
11: 0.890). The first third of the labels is where the gap is (about 0.86 of the oracle, the prior's
level; the rest reaches 0.92-0.95): a batch logistic regression fitted on the first half of a run's
labels reaches 0.89-0.96 (mean 0.92) on the second half, with or without pairwise interactions of the
features, so what is missing is information rather than model capacity: no model here can see the
hidden propensity itself, which only payment and engagement history reveal.

>>> report = evaluate(events=3_000, seed=3)
>>> report["labels"] > 50 and 0.0 < report["auc"] <= 1.0 and 0.5 < report["oracle_auc"] <= 1.0
True
>>> report["timing"]["model_us_per_event"] > 0 and report["timing"]["bare_lr_us_per_event"] > 0
True
"""

from __future__ import annotations

import copy
import math
import time
from datetime import datetime, timedelta
from typing import Any

from river import linear_model

from models.features import features
from models.labels import LABEL_WINDOW, Label, backlog, expire, held, on_decision, on_payment
from models.monitoring import calibration
from models.propensity import PropensityModel
from models.simulator import Practice
from rules.facts import apply_event
from rules.state import AccountState
from schemas.events import parse_event

__all__ = ["auc", "calibration", "evaluate"]

EVENTS_PER_PATIENT_YEAR = 16
"""About how many events one simulated patient yields in a year: sizes the practice to the request."""
SWEEP_EVERY = timedelta(days=1)


def auc(scores: list[float], labels: list[bool]) -> float:
    """Exact ROC AUC (Mann-Whitney U with tied scores counted half); 0.5 when a class is missing.

    >>> auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if not n_pos or not n_neg:
        return 0.5
    pairs = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + j) / 2 + 1
        rank_sum += mid_rank * sum(1 for k in range(i, j + 1) if pairs[k][1])
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _log_loss(scores: list[float], labels: list[bool]) -> float:
    eps = 1e-12
    total = sum(
        -math.log(max(p, eps)) if y else -math.log(max(1.0 - p, eps))
        for p, y in zip(scores, labels, strict=True)
    )
    return total / len(labels) if labels else 0.0


def _per_event(ns: list[int], predictions: int, learns: int) -> float:
    """Learn+predict microseconds per event: one prediction plus one learning step."""
    return round((ns[0] / max(predictions, 1) + ns[1] / max(learns, 1)) / 1_000, 2)


def _best_of(
    model: Any, predict: str, learn: str, sample: list[tuple[dict[str, float], bool]], repeats: int
) -> float:
    """Microseconds of CPU per predict+learn on a copy of the trained model, best of ``repeats``.

    CPU time of this process (not wall time), and the minimum over repeats (timeit's rule), so other
    processes competing for the machine do not inflate the figure.
    """
    best = math.inf
    for _ in range(repeats):
        trial = copy.deepcopy(model)
        score, fit = getattr(trial, predict), getattr(trial, learn)
        started = time.process_time_ns()
        for x, y in sample:
            score(x)
            fit(x, y)
        best = min(best, (time.process_time_ns() - started) / len(sample) / 1_000)
    return round(best, 2) if sample else 0.0


def evaluate(
    events: int = 20_000,
    seed: int = 7,
    *,
    model: PropensityModel | None = None,
    days: int = 720,
    patients: int | None = None,
) -> dict[str, Any]:
    """Run ``events`` simulator events through fold, features, scoring and delayed learning; report.

    Keys: ``auc``, ``oracle_auc``, ``bare_lr_auc``, ``prior_auc``, ``auc_first_half`` and
    ``auc_second_half`` (it learns), ``log_loss``, ``brier``, ``base_rate``, ``calibration`` (deciles),
    ``decisions``, ``labels``, ``backlog``, ``label_delay_days``, ``model_version`` and ``timing``:
    learn+predict µs per event for the model and for a bare River LR, both as the best of seven passes
    (CPU time) over the last 1,000 labelled snapshots (``*_us_per_event``) and as the wall-clock mean
    over the run itself (``*_inline``, which includes whatever else competed for the CPU), feature
    extraction µs, and simulator + parse + fold events/s.
    """
    model = model or PropensityModel()
    bare = linear_model.LogisticRegression()
    n_patients = patients or max(20, events * 365 // (EVENTS_PER_PATIENT_YEAR * days))
    practice = Practice(seed=seed, patients=n_patients, days=days)
    states: dict[str, AccountState] = {}
    store: dict[str, list[dict[str, Any]]] = {}
    scores: list[float] = []
    oracle: list[float] = []
    bare_scores: list[float] = []
    priors: list[float] = []
    ys: list[bool] = []
    snapshots: list[dict[str, float]] = []
    delays: list[float] = []
    # Nanoseconds spent: [predict, learn] for the model and for the bare LR, and in `features`.
    model_ns = [0, 0]
    bare_ns = [0, 0]
    feature_ns = 0
    decisions = 0
    clock = time.perf_counter_ns

    def record(label: Label) -> None:
        meta = label.meta
        scores.append(label.p if label.p is not None else 0.5)
        oracle.append(meta["oracle"])
        bare_scores.append(meta["bare"])
        priors.append(meta["prior"])
        ys.append(label.y)
        snapshots.append(label.x)
        delays.append(label.delay_seconds)

    def learn(labels: list[Label]) -> None:
        for label in labels:
            record(label)
            t0 = clock()
            model.learn(label.x, label.y)
            t1 = clock()
            bare.learn_one(label.x, label.y)
            t2 = clock()
            model_ns[1] += t1 - t0
            bare_ns[1] += t2 - t1

    started = time.perf_counter()
    next_sweep: datetime | None = None
    now: datetime | None = None
    count = 0
    for raw in practice.events():
        count += 1
        if count > events:
            break
        event = parse_event(raw)
        data = event.data
        account_id = data.account_id
        state = states.get(account_id) or AccountState.new(account_id, data.patient_id, data.practice_id)
        state = states[account_id] = apply_event(state, data)
        now = event.time
        if next_sweep is None or now >= next_sweep:
            learn(expire(store, now))
            next_sweep = now + SWEEP_EVERY
        if event.type == "billing.payment.posted":
            # Label by when the patient paid, not when the platform reported it (a sync can be late).
            learn(on_payment(store, account_id, event.data.posted_at, hold=True))
        elif event.type == "billing.statement.generated" and state.balance > 0:
            t0 = clock()
            x = features(state, now)
            t1 = clock()
            p = model.score(x)
            t2 = clock()
            pb = bare.predict_proba_one(x).get(True, 0.5)
            t3 = clock()
            feature_ns += t1 - t0
            model_ns[0] += t2 - t1
            bare_ns[0] += t3 - t2
            decisions += 1
            on_decision(
                store,
                account_id,
                x,
                now,
                p=p,
                model_version=model.model_version,
                meta={"oracle": practice.oracle_propensity(account_id), "bare": pb, "prior": model.prior(x)},
            )
    if now is not None:
        # Windows that closed by the end of the run; of the open ones, those already paid are known
        # outcomes too (scored, not learned), the others stay unlabelled.
        learn(expire(store, now))
        for label in held(store):
            record(label)
    elapsed = time.perf_counter() - started

    # The same labelled snapshots again, for both models, away from the simulator's and the fold's work.
    sample = list(zip(snapshots[-1_000:], ys[-1_000:], strict=True))
    model_best = _best_of(model, "score", "learn", sample, repeats=7)
    bare_best = _best_of(bare, "predict_proba_one", "learn_one", sample, repeats=7)

    half = len(ys) // 2
    brier = sum((p - y) ** 2 for p, y in zip(scores, ys, strict=True)) / len(ys) if ys else 0.0
    return {
        "events": min(count, events),
        "seed": seed,
        "patients": n_patients,
        "decisions": decisions,
        "labels": len(ys),
        "backlog": backlog(store),
        "base_rate": round(sum(ys) / len(ys), 4) if ys else 0.0,
        "auc": round(auc(scores, ys), 4),
        "oracle_auc": round(auc(oracle, ys), 4),
        "bare_lr_auc": round(auc(bare_scores, ys), 4),
        "prior_auc": round(auc(priors, ys), 4),
        "auc_first_half": round(auc(scores[:half], ys[:half]), 4),
        "auc_second_half": round(auc(scores[half:], ys[half:]), 4),
        "log_loss": round(_log_loss(scores, ys), 4),
        "brier": round(brier, 4),
        "calibration": calibration(scores, ys),
        "label_window_days": LABEL_WINDOW.days,
        "label_delay_days": round(sum(delays) / len(delays) / 86_400, 2) if delays else 0.0,
        "model_version": model.model_version,
        "timing": {
            "model_us_per_event": model_best,
            "bare_lr_us_per_event": bare_best,
            "model_us_per_event_inline": _per_event(model_ns, decisions, len(ys)),
            "bare_lr_us_per_event_inline": _per_event(bare_ns, decisions, len(ys)),
            "features_us_per_event": round(feature_ns / 1_000 / max(decisions, 1), 2),
            "events_per_s": round(min(count, events) / elapsed) if elapsed else 0,
            "seconds": round(elapsed, 2),
        },
    }
