"""How `billwise bench` turns a worker's progress into events per second."""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams import bench


class _Clock:
    """Stands in for the `time` module: polls are ``poll_s`` apart, exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(bench, "time", fake)
    return fake


def _counts(*values: int) -> Iterator[int]:
    return iter(values)


def test_the_rate_counts_only_the_records_done_while_it_was_timed() -> None:
    # 600 records were done before the first poll that saw progress; 400 more in the 1.0 s after it.
    counts = _counts(0, 600, 800, 1000)
    assert bench.rate(lambda: next(counts), 1000, poll_s=0.5) == pytest.approx(400.0)


def test_a_run_over_before_the_first_poll_is_refused_not_timed() -> None:
    counts = _counts(1000)
    with pytest.raises(RuntimeError, match="too few to time"):
        bench.rate(lambda: next(counts), 1000)


def test_a_worker_that_stops_short_times_out() -> None:
    with pytest.raises(TimeoutError, match="fewer than 1000"):
        bench.rate(lambda: 10, 1000, timeout_s=5)


def test_doctests() -> None:
    result = doctest.testmod(bench)
    assert result.attempted > 0 and result.failed == 0


def test_gc_pauses_read_what_the_worker_exposes() -> None:
    registry = CollectorRegistry()
    pauses = Histogram("billwise_gc_pause_seconds", "pauses", ["generation"], registry=registry)
    for seconds in (0.001, 0.003):
        pauses.labels(generation="0").observe(seconds)
    pauses.labels(generation="2").observe(0.08)
    text = generate_latest(registry).decode()
    assert bench.gc_pauses(text) == {
        "0": {"collections": 2, "seconds": 0.004, "mean_ms": 2.0},
        "2": {"collections": 1, "seconds": 0.08, "mean_ms": 80.0},
    }
