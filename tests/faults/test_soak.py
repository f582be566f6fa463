"""The short soak CI runs (`tests.faults.soak`): a steady rate for `SOAK_SECONDS`, memory and lag recorded.

The 10-minute soak is ``python -m tests.faults.soak --seconds 600 --rate 100`` (docs/reliability.md has
its figures). ``BILLWISE_SOAK_SECONDS`` lengthens this one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from tests.faults.harness import CrashableWorker
from tests.faults.soak import RSS_GROWTH_LIMIT, run_soak

SOAK_SECONDS = float(os.environ.get("BILLWISE_SOAK_SECONDS", "45"))
RATE = 100.0


def test_a_steady_stream_keeps_memory_lag_and_state_bounded(kafka_bootstrap: str, tmp_path: Path) -> None:
    worker = CrashableWorker(kafka_bootstrap, tmp_path)
    try:
        result = run_soak(worker, SOAK_SECONDS, RATE)
    finally:
        worker.stop()
    report = asdict(result)
    report.pop("samples")
    print("\nsoak figures:", json.dumps(report))
    assert result.events == int(SOAK_SECONDS * RATE)
    assert result.achieved_rate >= RATE * 0.9
    assert not result.bound_violations, result.bound_violations[:5]
    assert result.rss_within_bound, (
        f"RSS grew past {RSS_GROWTH_LIMIT}x: {result.rss_start_mib} → {result.rss_end_mib} MiB"
    )
    # The worker keeps up with the rate: the lag never exceeds ~20 s of input, and it drains promptly.
    assert result.max_lag <= RATE * 20
    assert result.drain_s < 60
