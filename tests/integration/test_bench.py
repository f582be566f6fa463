"""`billwise bench --json` end to end on the session's broker: the figures the issue names, in one object,
next to the baselines measured in the same run. Speeds are not asserted (tests never assert timings);
what is checked is that every figure was measured and that the ratios are the figures' own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.broker]

REQUIRED = (
    "engine_events_per_s",
    "faust_consume_only_events_per_s",
    "aiokafka_consume_events_per_s",
    "p50_ms",
    "p99_ms",
    "two_workers_events_per_s",
    "broker",
)


def test_bench_json_reports_every_figure_next_to_its_baselines(kafka_bootstrap: str) -> None:
    command = [sys.executable, "-m", "streams", "bench", "--json", "--no-drafting"]
    options = ["--events", "5000", "--latency-rate", "100"]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run([*command, *options], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert all(key in report for key in REQUIRED), sorted(set(REQUIRED) - set(report))
    assert report["broker"] == "external" and report["events"] == 5000
    engine, faust, resend, raw = (
        report[key]
        for key in (
            "engine_events_per_s",
            "faust_consume_only_events_per_s",
            "faust_resend_events_per_s",
            "aiokafka_consume_events_per_s",
        )
    )
    assert engine > 0 and faust > 0 and resend > 0 and raw > 0
    assert report["engine_vs_faust_consume_only"] == round(engine / faust, 3)
    assert report["engine_vs_faust_resend"] == round(engine / resend, 3)
    assert report["engine_vs_aiokafka_consume"] == round(engine / raw, 3)
    assert report["two_workers_error"] is None, report["two_workers_error"]
    assert report["two_workers_vs_one"] == round(report["two_workers_events_per_s"] / engine, 3)
    # Every statement of the latency run was answered: 100 a second for its 5 s.
    assert report["latency_samples"] == 500
    assert 0 < report["p50_ms"] <= report["p99_ms"]
    # The targets are judged from the figures reported, and latency only at the rate the target names.
    assert report["meets_throughput_target"] == (engine >= report["target_engine_events_per_s"])
    assert report["meets_latency_target"] is None
    # The engine worker's garbage collections, read from its /metrics: it collected while it worked.
    pauses = report["gc_pauses"]
    assert set(pauses) == {"0", "1", "2"} and pauses["0"]["collections"] > 0
    for generation in pauses.values():
        assert generation["seconds"] >= 0 and generation["mean_ms"] >= 0
