"""The gate benchmark runs and reports what `billwise bench` prints."""

from __future__ import annotations

from rules.bench import gate_benchmark


def test_gate_benchmark_reports_percentiles_next_to_a_bare_post() -> None:
    report = gate_benchmark(200)
    for key in ("gate_p50_us", "gate_p99_us", "gate_cpu_p99_us", "rules_only_p50_us", "bare_post_p50_us"):
        assert report[key] > 0, key
    assert report["gate_p50_us"] <= report["gate_p99_us"]
    assert report["target_p99_us"] == 1000.0 and isinstance(report["meets_target"], bool)
