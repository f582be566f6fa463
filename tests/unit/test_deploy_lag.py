"""`streams.lag` without a broker: the lag arithmetic, the offset sources and their fallbacks, retiring
series of partitions that moved away, table counts, and the timers it registers.

The same gauges on a real worker through a real broker: tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import doctest
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP
from prometheus_client import REGISTRY

import streams.lag as lag
from streams.lag import LagMetrics, count_keys, install_lag_metrics, lag_by_partition

TOPIC = "unit.events"
CHANGELOG = "billwise-unit-accounts-changelog"


def _lag(partition: int, topic: str = TOPIC) -> float | None:
    return REGISTRY.get_sample_value(
        "billwise_consumer_lag_messages", {"topic": topic, "partition": str(partition)}
    )


@dataclass
class FakeConsumer:
    owned: set[TP]
    end: dict[TP, int]
    earliest: dict[TP, int] = field(default_factory=dict)
    cached_end: dict[TP, int] = field(default_factory=dict)
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    broker_down: bool = False

    def assignment(self) -> set[TP]:
        return set(self.owned)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        if self.broker_down:
            raise ConnectionError("broker unreachable")
        return {tp: self.end[tp] for tp in tps}

    def highwater(self, tp: TP) -> int | None:
        return self.cached_end.get(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        if self.broker_down:
            raise ConnectionError("broker unreachable")
        return {tp: self.earliest.get(tp, 0) for tp in tps}


def _app(consumer: FakeConsumer, committed: dict[TP, int] | None = None) -> Any:
    agent = SimpleNamespace(channel=SimpleNamespace(topics=(TOPIC,)))
    return SimpleNamespace(
        rebalancing=False,
        consumer=consumer,
        monitor=SimpleNamespace(tp_committed_offsets=dict(committed or {})),
        agents={"ingest": agent},
    )


@pytest.fixture(autouse=True)
def _clean_gauges() -> None:
    lag.CONSUMER_LAG.clear()
    lag.TABLE_KEYS.clear()


def test_the_module_examples() -> None:
    result = doctest.testmod(lag, verbose=False)
    assert result.attempted >= 3 and result.failed == 0


def test_lag_is_end_minus_committed_never_negative() -> None:
    a, b = TP(TOPIC, 0), TP(TOPIC, 1)
    # A commit can be ahead of a highwater the consumer read a moment earlier.
    assert lag_by_partition([a, b], {a: 10, b: 5}, {a: 4, b: 7}, {}) == {a: 6, b: 0}


async def test_lag_per_owned_input_partition_from_the_monitors_commits() -> None:
    p0, p1, changelog = TP(TOPIC, 0), TP(TOPIC, 1), TP(CHANGELOG, 0)
    consumer = FakeConsumer({p0, p1, changelog}, end={p0: 120, p1: 40, changelog: 999})
    metrics = LagMetrics(_app(consumer, committed={p0: 100, p1: 40}), {})

    assert await metrics.update_lag() == {p0: 20, p1: 0}
    assert _lag(0) == 20 and _lag(1) == 0
    assert _lag(0, CHANGELOG) is None, "changelog topics are not inputs"


async def test_commits_read_at_assignment_count_and_never_committed_counts_from_earliest() -> None:
    p0, p1 = TP(TOPIC, 0), TP(TOPIC, 1)
    consumer = FakeConsumer(
        {p0, p1}, end={p0: 500, p1: 300}, earliest={p1: 100}, _committed_offset={p0: 450, p1: None}
    )
    metrics = LagMetrics(_app(consumer), {})
    assert await metrics.update_lag() == {p0: 50, p1: 200}


async def test_an_unreachable_broker_falls_back_to_the_fetchers_highwaters() -> None:
    p0, p1 = TP(TOPIC, 0), TP(TOPIC, 1)
    consumer = FakeConsumer({p0, p1}, end={}, cached_end={p0: 80}, broker_down=True)
    metrics = LagMetrics(_app(consumer, committed={p0: 50, p1: 10}), {})
    # p1's end offset is unknown: no figure rather than a guess.
    assert await metrics.update_lag() == {p0: 30}
    assert _lag(0) == 30 and _lag(1) is None


async def test_series_of_partitions_that_moved_to_another_worker_are_retired() -> None:
    p0, p1 = TP(TOPIC, 0), TP(TOPIC, 1)
    consumer = FakeConsumer({p0, p1}, end={p0: 10, p1: 10})
    metrics = LagMetrics(_app(consumer, committed={p0: 5, p1: 5}), {})
    await metrics.update_lag()
    assert _lag(0) == 5 and _lag(1) == 5

    consumer.owned = {p1}  # a rebalance gave partition 0 to another worker
    await metrics.update_lag()
    assert _lag(0) is None and _lag(1) == 5


async def test_nothing_changes_while_the_app_is_rebalancing() -> None:
    p0 = TP(TOPIC, 0)
    app = _app(FakeConsumer({p0}, end={p0: 9}), committed={p0: 1})
    metrics = LagMetrics(app, {"accounts": {b"a": b"1"}})
    app.rebalancing = True
    assert await metrics.update_lag() == {} and await metrics.update_tables() == {}
    assert _lag(0) is None


async def test_table_keys_by_table_name() -> None:
    metrics = LagMetrics(_app(FakeConsumer(set(), end={})), {"accounts": {b"a": 1, b"b": 2}, "empty": {}})
    assert await metrics.update_tables() == {"accounts": 2, "empty": 0}
    assert REGISTRY.get_sample_value("billwise_table_keys", {"table": "accounts"}) == 2
    assert await count_keys({b"x": 1}) == 1


def test_install_registers_two_timers_once_per_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lag.LAG_INTERVAL_ENV, "0.5")
    app = faust.App("billwise-unit-lag", broker="kafka://127.0.0.1:1", store="memory://")
    before = len(app._app_tasks)
    install_lag_metrics(app, {})
    install_lag_metrics(app, {})
    assert len(app._app_tasks) == before + 2


def test_a_bad_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lag.TABLE_INTERVAL_ENV, "0")
    app = faust.App("billwise-unit-lag-bad", broker="kafka://127.0.0.1:1", store="memory://")
    with pytest.raises(ValueError, match=lag.TABLE_INTERVAL_ENV):
        install_lag_metrics(app, {})
