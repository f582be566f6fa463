"""Gate evaluation cost per candidate, next to a bare durable-rules post measured in the same run.

`gate_benchmark(n)` times `rules.gates.evaluate_gates` (channel choice, schedule, one fact asserted into
the compiled gates ruleset, outcome mapping) over ``n`` candidates drawn from a small set of realistic
accounts (a clean patient, a patient with a week of calls in Massachusetts, a third-party account, a
cease flag, no consent), and reports p50/p99 in microseconds, wall clock and thread CPU time (a shared
machine inflates the wall-clock tail; the CPU-time tail is what the code costs). The gates' answers are
remembered by situation (`rules.engine.RulesEngine`), so after the warm-up that figure holds no rules
evaluation; in the same run it times a durable-rules evaluation alone on the same facts (what a new
situation costs), the Python evaluator, and a bare durable-rules ``post`` of one event to a one-rule
ruleset (the floor the engine itself sets). Target: p99 under 1 ms.

>>> report = gate_benchmark(50)
>>> report["gate_p50_us"] > 0 and report["bare_post_p50_us"] > 0
True
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.candidate import Candidate
from rules.compiler import GATE_FACT_DEFAULTS
from rules.context import Context
from rules.decide import decide
from rules.engine import DEFAULT_BACKEND, DurableEvaluator, PythonEvaluator, durable_engine, engines_for
from rules.examples import communication, patient
from rules.gates import evaluate_gates, gate_facts
from rules.policy import Policy, load_policy
from rules.state import AccountState

TARGET_P99_US = 1000.0

_NOW = datetime(2026, 3, 16, 18, tzinfo=UTC)


def _accounts(policy: Policy) -> list[AccountState]:
    """A few patients whose candidates exercise different gates."""
    ma_calls = [
        communication((_NOW - timedelta(days=d)).isoformat().replace("+00:00", "Z"), "phone", "no_answer")
        for d in range(1, 7)
    ]
    cases = [
        [patient("2026-03-01T12:00:00Z")],
        [patient("2026-03-01T12:00:00Z", address={"line": "1 Elm", "state": "MA"}), *ma_calls],
        [patient("2026-03-01T12:00:00Z", regime="third_party", language="es")],
        [patient("2026-03-01T12:00:00Z", flags={"cease_communication": True})],
        [patient("2026-03-01T12:00:00Z", consent={"email": False}, email=None, address=None)],
    ]
    states = []
    for events in cases:
        state: AccountState | None = None
        for event in events:
            state = decide(state, event, policy).state
        assert state is not None
        states.append(state.model_copy(update={"balance": state.balance + 450}))
    return states


_CANDIDATES = (
    Candidate(kind="payment_reminder", purpose="collections", priority=1.0),
    Candidate(kind="statement_message", purpose="statement", priority=1.0),
    Candidate(kind="staff_task", purpose="collections_call", priority=1.0),
    Candidate(kind="settlement_offer", purpose="settlement", priority=1.0),
)


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1e6, p99 * 1e6, statistics.fmean(ordered) * 1e6


def _summary(name: str, samples: tuple[list[float], list[float]]) -> dict[str, float]:
    """Wall-clock p50/p99/mean, and the same percentiles in thread CPU time."""
    wall, cpu = samples
    p50, p99, mean = _percentiles(wall)
    cpu50, cpu99, _ = _percentiles(cpu)
    return {
        f"{name}_p50_us": round(p50, 1),
        f"{name}_p99_us": round(p99, 1),
        f"{name}_mean_us": round(mean, 1),
        f"{name}_cpu_p50_us": round(cpu50, 1),
        f"{name}_cpu_p99_us": round(cpu99, 1),
    }


def _time(n: int, step: Callable[[int], Any]) -> tuple[list[float], list[float]]:
    """Wall-clock and thread CPU seconds of ``n`` steps. CPU time leaves out the time other processes
    held the core, which on a shared machine dominates a wall-clock tail."""
    wall, cpu = [], []
    gc_was = gc.isenabled()
    gc.disable()  # measure the work, not a collection that happens to land in one sample
    try:
        for i in range(n):
            started, started_cpu = time.perf_counter(), time.thread_time()
            step(i)
            cpu.append(time.thread_time() - started_cpu)
            wall.append(time.perf_counter() - started)
    finally:
        if gc_was:
            gc.enable()
    return wall, cpu


def _bare_post(n: int) -> tuple[list[float], list[float]]:
    """One event to a one-rule ruleset whose rule fires: what any durable-rules call costs at least."""
    from rules.engine import _Host

    host = _Host()
    host.set_rulesets({"bare": {"r": {"all": [{"m": {"type": "ping"}}], "run": "r"}}})

    def post(i: int) -> None:
        host.fired.clear()
        host.post("bare", {"sid": "0", "type": "ping"})

    post(0)
    return _time(n, post)


def gate_benchmark(n: int = 2000, policy: Policy | None = None) -> dict[str, Any]:
    """p50/p99 (µs) of gate evaluation per candidate, of the engine alone, of the Python evaluator and of
    a bare durable-rules post."""
    policy = policy or load_policy()
    contexts = [Context.build(state, policy, _NOW) for state in _accounts(policy)]
    pairs = [(ctx, candidate) for ctx in contexts for candidate in _CANDIDATES]
    for ctx, candidate in pairs:  # warm caches (zones, compiled rules, templates) outside the timing
        evaluate_gates(candidate, ctx)

    full = _time(n, lambda i: evaluate_gates(pairs[i % len(pairs)][1], pairs[i % len(pairs)][0]))
    facts = [{**GATE_FACT_DEFAULTS, **gate_facts(c, ctx, "email", "preferred", {})} for ctx, c in pairs]
    engine = engines_for(policy, DEFAULT_BACKEND).gates
    # The evaluators themselves: `RulesEngine.fired` remembers answers by situation, so after the
    # warm-up the gate figure above costs a lookup, and these say what a new situation costs.
    evaluator = DurableEvaluator(engine.compiled) if DEFAULT_BACKEND == "durable" else None
    python = PythonEvaluator(engine.compiled)
    rules_only = _time(n, lambda i: (evaluator or python).fired(facts[i % len(facts)]))
    python_only = _time(n, lambda i: python.fired(facts[i % len(facts)]))
    report: dict[str, Any] = {"candidates": n, "engine": DEFAULT_BACKEND, "rules": len(engine.compiled.rules)}
    for name, samples in (("gate", full), ("rules_only", rules_only), ("python_rules", python_only)):
        report |= _summary(name, samples)
    if durable_engine is not None:
        report |= _summary("bare_post", _bare_post(n))
    report["target_p99_us"] = TARGET_P99_US
    report["meets_target"] = report["gate_p99_us"] < TARGET_P99_US
    report["meets_target_cpu"] = report["gate_cpu_p99_us"] < TARGET_P99_US
    report["load_average_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return report
