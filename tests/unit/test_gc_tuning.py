"""The worker's garbage-collector settings (`streams.gc_tuning`)."""

from __future__ import annotations

import doctest
import gc

import pytest

import streams.gc_tuning
from streams.gc_tuning import tune_garbage_collector
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
