"""How the demo waits for the worker: its input counters, the committed offsets, a standstill."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import streams.demo as demo
from streams.demo import _Pacer, _processed


def samples(done: int, *, requested: int = 0, scans: int = 0, day: datetime | None = None) -> dict:
    """What the worker's /metrics says: ``done`` input records (outputs acknowledged), the scan requests
    its timer sent, the account scans it ran, the latest scan day its timer asked for."""
    return {
        "billwise_input_records_total": {
            '{topic="billing.events"}': float(done - done // 4),
            '{topic="billing.outcomes"}': float(done // 4),
        },
        "billwise_daily_scan_requests_total": {"": float(requested)},
        "billwise_daily_scans_total": {'{result="run"}': float(scans)},
        "billwise_daily_scan_day_timestamp_seconds": {"": day.timestamp() if day else 0.0},
    }


def test_processed_counts_input_records_of_every_topic_only() -> None:
    # Scans are per account, not per record; the requests are what the timer sent, not what is done.
    assert _processed(samples(16, requested=3, scans=7)) == 16
    assert _processed({}) == 0


@pytest.fixture
def scrapes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The /metrics samples the pacer will see, one per scrape (the last one repeats)."""
    queue: list[dict[str, Any]] = []

    async def fake_scrape(client: Any, url: str) -> dict[str, Any]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(demo, "_scrape", fake_scrape)
    monkeypatch.setattr(demo, "SETTLED_S", 0.05)
    monkeypatch.setattr(demo, "STALL_S", 0.2)
    yield queue


def pacer(committed: bool = False) -> _Pacer:
    async def is_committed() -> bool:
        return committed

    return _Pacer(None, "http://worker/metrics", timeout_s=5.0, committed=is_committed)  # type: ignore[arg-type]


async def test_waits_until_the_counters_reach_the_target(scrapes: list[dict[str, Any]]) -> None:
    scrapes.extend([samples(3), samples(7), samples(10)])
    waiter = pacer()
    await waiter.wait(10)
    assert waiter.done == 10 and waiter.uncounted == 0 and waiter.scrapes == 3


async def test_records_the_worker_never_counts_are_settled_by_a_standstill(
    scrapes: list[dict[str, Any]],
) -> None:
    scrapes.extend([samples(2), samples(8)])  # progress, then nothing more: 2 records never counted
    waiter = pacer()
    await waiter.wait(10)
    assert waiter.uncounted == 2 and waiter.done == 10
    scrapes[:] = [samples(13)]  # the next step: 13 counted + 2 uncounted = 15
    await waiter.wait(15)
    assert waiter.uncounted == 2


async def test_daily_scans_in_progress_are_not_a_standstill(scrapes: list[dict[str, Any]]) -> None:
    # The worker decides the timer's scan requests before the day's events: only its scan counter
    # moves for longer than the settling time, then it counts the events.
    # (16 scrapes 20 ms apart outlast the fixture's STALL_S of 0.2 s too.)
    scrapes.extend([samples(2, scans=100 * step) for step in range(16)] + [samples(10, scans=1500)])
    waiter = pacer()
    await waiter.wait(10)
    assert waiter.uncounted == 0 and waiter.stalls == [] and waiter.scrapes == 17


@pytest.mark.parametrize(
    ("committed", "counts", "uncounted"), [(False, [2] * 8 + [10], 0), (True, [2, 8], 2)]
)
async def test_a_short_standstill_settles_only_once_every_record_is_committed(
    scrapes: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    committed: bool,
    counts: list[int],
    uncounted: int,
) -> None:
    # Counters stand still for longer than the settling time. With records not committed yet the worker
    # is busy elsewhere and counts them later; with every record committed the rest will not be counted.
    monkeypatch.setattr(demo, "STALL_S", 5.0)
    scrapes.extend(samples(count) for count in counts)
    waiter = pacer(committed=committed)
    await waiter.wait(10)
    assert waiter.uncounted == uncounted
    assert [stall < 0 for stall in waiter.stalls] == ([True] if committed else [])


async def test_without_any_progress_it_waits_longer_before_giving_up(scrapes: list[dict[str, Any]]) -> None:
    scrapes.append(samples(0))
    waiter = pacer()
    await waiter.wait(4)
    assert waiter.uncounted == 4 and waiter.stalls and waiter.stalls[0] >= 0.2


async def test_gives_up_after_the_timeout(
    scrapes: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "STALL_S", 60.0)
    scrapes.append(samples(0))
    waiter = _Pacer(None, "u", timeout_s=0.3, committed=pacer().committed)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match="0 of 4"):
        await waiter.wait(4)


async def test_the_scan_requests_the_timer_sent_are_waited_for_too(scrapes: list[dict[str, Any]]) -> None:
    # The demo's 10 records are done, but the worker's timer sent 3 scan requests of its own meanwhile.
    scrapes.extend([samples(10, requested=3), samples(12, requested=3), samples(13, requested=3)])
    waiter = pacer()
    await waiter.wait(10)
    assert waiter.scrapes == 3 and waiter.uncounted == 0 and waiter.done == 10


async def test_a_day_is_done_once_the_timer_asked_for_its_scans_and_they_are_done(
    scrapes: list[dict[str, Any]],
) -> None:
    day = datetime(2026, 3, 16, 4, tzinfo=UTC)
    scrapes.extend(
        [
            samples(10, day=day - timedelta(days=1)),  # the events are done; the timer has not run yet
            samples(10, requested=2, day=day),  # it has: two requests to decide
            samples(12, requested=2, day=day),
        ]
    )
    waiter = pacer()
    await waiter.wait(10, scan_day=day)
    assert waiter.scrapes == 3 and waiter.uncounted == 0 and waiter.stalls == []
