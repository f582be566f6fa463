"""The worker's garbage-collector settings (`streams.gc_tuning`)."""

from __future__ import annotations

import doctest
import gc

import pytest

import streams.gc_tuning
from streams.gc_tuning import tune_garbage_collector, watch_garbage_collector
from streams.metrics import GC_PAUSE_SECONDS
from streams.settings import StreamSettings


def test_doctests() -> None:
    result = doctest.testmod(streams.gc_tuning)
    assert result.attempted > 0 and result.failed == 0


def test_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLWISE_GC_GEN0_THRESHOLD", "1234")
    assert StreamSettings().gc_gen0_threshold == 1234


def test_start_up_objects_are_frozen_and_older_ratios_kept() -> None:
    before = gc.get_threshold()
    survivor = [object() for _ in range(100)]
    try:
        tune_garbage_collector(4321)
        assert gc.get_threshold() == (4321, before[1], before[2])
        assert gc.get_freeze_count() >= len(survivor)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def _observed(generation: int) -> tuple[float, float]:
    """(count, sum) of ``billwise_gc_pause_seconds`` for ``generation`` so far."""
    samples = {
        s.name: s.value
        for s in GC_PAUSE_SECONDS.collect()[0].samples
        if s.labels.get("generation") == str(generation)
    }
    return samples["billwise_gc_pause_seconds_count"], samples["billwise_gc_pause_seconds_sum"]


def test_every_collection_is_timed_once_under_its_generation() -> None:
    watch_garbage_collector()
    watch_garbage_collector()  # a second call must not time each collection twice
    enabled = gc.isenabled()
    gc.disable()  # only the collections this test asks for
    try:
        full_before, middle_before = _observed(2), _observed(1)
        garbage = [[] for _ in range(10_000)]
        for inner in garbage:
            inner.append(inner)  # cycles: only the collector frees them
        del garbage
        gc.collect(2)
        gc.collect(1)
        full_after, middle_after = _observed(2), _observed(1)
    finally:
        if enabled:
            gc.enable()
    assert full_after[0] == full_before[0] + 1
    assert middle_after[0] == middle_before[0] + 1
    # Walking 10,000 cycles takes time: the pause is measured, not a placeholder.
    assert full_after[1] > full_before[1]
