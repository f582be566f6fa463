"""Consumer lag per partition and table sizes as Prometheus gauges, refreshed by a Faust timer.

- ``billwise_consumer_lag_messages{topic,partition}``: messages in an input topic's partition that this
  worker's consumer group has not committed yet: the partition's end offset (highwater) minus the
  group's committed offset (Kafka's "next offset to read"), the same figure as
  ``kafka-consumer-groups --describe`` shows. One series per partition **this worker owns**; series of
  partitions that moved to another worker in a rebalance are removed, so ``sum()`` over all workers
  counts every partition once.
- ``billwise_table_keys{table}``: keys in the locally owned (active) partitions of a Faust table.
  Exact: RocksDB's ``estimate-num-keys`` counts every overwrite until compaction, and each event
  overwrites its account, so the keys are counted by iterating them in slices that yield to the event
  loop between slices (about 3 µs a key), on a slower cadence than the lag.

Where the figures come from (faust-streaming 0.15.3): the end offsets from ``app.consumer.highwaters()``
(one ListOffsets request, public API), falling back to the offsets the fetcher last saw
(``app.consumer.highwater(tp)``); the committed offsets from ``app.monitor.tp_committed_offsets``
(public; what this worker committed since its last rebalance), falling back to the consumer's own
bookkeeping ``_committed_offset`` (private; it also holds the offsets read from the group when the
partitions were assigned). A partition the group never committed counts from its earliest retained
offset (the app reads from ``earliest``). Faust's bookkeeping advances even when a commit fails
(faust #316), so a failing commit can hide lag here; a broker-side lag exporter does not have that blind
spot (see ``deploy/README.md``).

`install_lag_metrics` is idempotent per app; call it once the agents are defined or before, since the
topics are resolved on each tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import faust
from faust.types import TP
from prometheus_client import Gauge

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "billwise_consumer_lag_messages",
    "Messages not yet committed by this worker's consumer group, per owned input topic partition.",
    ["topic", "partition"],
)
TABLE_KEYS = Gauge(
    "billwise_table_keys",
    "Keys in the partitions of a table this worker owns (active, not standby).",
    ["table"],
)

LAG_INTERVAL_S = 5.0
TABLE_INTERVAL_S = 30.0
OFFSETS_TIMEOUT_S = 10.0
# Operators (and the tests) can change the cadence without code: seconds, as floats.
LAG_INTERVAL_ENV = "BILLWISE_LAG_INTERVAL_S"
TABLE_INTERVAL_ENV = "BILLWISE_TABLE_KEYS_INTERVAL_S"
_COUNT_SLICE = 5_000
_INSTALLED_ATTR = "_billwise_lag_metrics_installed"


def lag_by_partition(
    partitions: Iterable[TP],
    end_offsets: Mapping[TP, int | None],
    committed: Mapping[TP, int | None],
    earliest: Mapping[TP, int | None],
) -> dict[TP, int]:
    """Lag of each partition whose end offset is known: end − committed (else end − earliest), never < 0.

    >>> tp = TP("billing.events", 0)
    >>> lag_by_partition([tp], {tp: 120}, {tp: 100}, {tp: 0})
    {TP(topic='billing.events', partition=0): 20}
    >>> lag_by_partition([tp], {tp: 120}, {}, {tp: 30})  # never committed: all retained messages
    {TP(topic='billing.events', partition=0): 90}
    >>> lag_by_partition([tp], {}, {tp: 100}, {})  # end offset unknown: no figure rather than a guess
    {}
    """
    lags: dict[TP, int] = {}
    for tp in partitions:
        end = end_offsets.get(tp)
        if end is None:
            continue
        done = committed.get(tp)
        if done is None:
            done = earliest.get(tp) or 0
        lags[tp] = max(0, end - done)
    return lags


def input_topics(app: faust.App) -> set[str]:
    """Names of the topics the app's agents consume (its changelog topics are not inputs)."""
    names: set[str] = set()
    for agent in app.agents.values():
        names.update(getattr(agent.channel, "topics", None) or ())
    return names


async def count_keys(table: Any, slice_size: int = _COUNT_SLICE) -> int:
    """Keys of a Faust table's owned partitions (any sized mapping works too).

    RocksDB stores are iterated in slices, yielding to the loop between slices (a RocksDB iterator
    reads a consistent snapshot, so writes in between do no harm); other stores know their length.
    """
    from faust.stores.rocksdb import Store as RocksDBStore

    if not isinstance(getattr(table, "data", None), RocksDBStore):
        return len(table)
    keys = iter(table)
    total = 0
    while True:
        got = sum(1 for _ in itertools.islice(keys, slice_size))
        total += got
        if got < slice_size:
            return total
        await asyncio.sleep(0)


class LagMetrics:
    """The state behind the gauges of one app: which series it published, so it can retire them."""

    def __init__(
        self,
        app: faust.App,
        tables: Mapping[str, Any],
        *,
        topics: Iterable[str] | None = None,
        timeout_s: float = OFFSETS_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.tables = dict(tables)
        self._topics = set(topics) if topics is not None else None
        self.timeout_s = timeout_s
        self._published: set[tuple[str, str]] = set()

    def topics(self) -> set[str]:
        return self._topics if self._topics is not None else input_topics(self.app)

    async def update_lag(self) -> dict[TP, int]:
        """Refresh ``billwise_consumer_lag_messages``; returns what it published."""
        if self.app.rebalancing:
            return {}  # the assignment is in flux; the next tick sees the new one
        consumer = self.app.consumer
        topics = self.topics()
        try:
            owned = sorted(tp for tp in consumer.assignment() if tp.topic in topics)
        except Exception:  # consumer thread not started yet
            owned = []
        lags = await self._lags(consumer, owned) if owned else {}
        self._publish(lags)
        return lags

    async def _lags(self, consumer: Any, owned: list[TP]) -> dict[TP, int]:
        # Both broker questions go through the consumer's thread together (about a second: the thread
        # answers between fetches). The committed offsets are read after the end offsets arrive, so the
        # figure can only err low by what was committed meanwhile, never report lag that is not there.
        never = [tp for tp in owned if self._committed(consumer, tp) is None]
        end_answer, earliest_answer = await asyncio.gather(
            self._ask("end offsets", consumer.highwaters(*owned)),
            self._ask("earliest offsets", consumer.earliest_offsets(*never)) if never else _nothing(),
        )
        end: dict[TP, int | None]
        if end_answer is not None:
            end = dict(end_answer)
        else:  # broker unreachable or slow: what the fetcher last saw
            end = {tp: _cached_highwater(consumer, tp) for tp in owned}
        committed = {tp: self._committed(consumer, tp) for tp in owned}
        earliest: dict[TP, int | None] = dict(earliest_answer or {})
        if never and earliest_answer is None:
            # Never committed and the earliest offset unknown: no figure rather than a guess.
            end = {tp: offset for tp, offset in end.items() if committed[tp] is not None}
        return lag_by_partition(owned, end, committed, earliest)

    def _committed(self, consumer: Any, tp: TP) -> int | None:
        offset = self.app.monitor.tp_committed_offsets.get(tp)
        if offset is None:
            offset = getattr(consumer, "_committed_offset", {}).get(tp)
        return offset

    async def _ask(self, what: str, question: Awaitable[Mapping[TP, int]]) -> Mapping[TP, int] | None:
        try:
            return await asyncio.wait_for(question, self.timeout_s)
        except Exception as exc:
            log.debug("%s unavailable: %s", what, type(exc).__name__)
            return None

    def _publish(self, lags: Mapping[TP, int]) -> None:
        current: set[tuple[str, str]] = set()
        for tp, lag in lags.items():
            labels = (tp.topic, str(tp.partition))
            CONSUMER_LAG.labels(*labels).set(lag)
            current.add(labels)
        for labels in self._published - current:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(*labels)
        self._published = current

    async def update_tables(self) -> dict[str, int]:
        """Refresh ``billwise_table_keys``; returns what it published."""
        sizes: dict[str, int] = {}
        if self.app.rebalancing:
            return sizes
        for name, table in self.tables.items():
            try:
                sizes[name] = await count_keys(table)
            except Exception as exc:  # a partition revoked mid-count: try again next time
                log.debug("could not count table %s (%s)", name, type(exc).__name__)
                continue
            TABLE_KEYS.labels(name).set(sizes[name])
        return sizes


async def _nothing() -> None:
    return None


def _cached_highwater(consumer: Any, tp: TP) -> int | None:
    try:
        offset = consumer.highwater(tp)
    except Exception:
        return None
    return offset if isinstance(offset, int) else None


def _interval(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def install_lag_metrics(
    app: faust.App,
    tables: dict[str, Any],
    *,
    topics: Iterable[str] | None = None,
    interval_s: float | None = None,
    table_interval_s: float | None = None,
) -> None:
    """Register Faust timers (on every worker) that keep the lag and table-size gauges current.

    ``tables`` maps the ``table`` label to a Faust table; ``topics`` defaults to every topic the app's
    agents consume. The lag is refreshed every ``interval_s`` (default ``$BILLWISE_LAG_INTERVAL_S`` or
    5 s), the table sizes every ``table_interval_s`` (default ``$BILLWISE_TABLE_KEYS_INTERVAL_S`` or
    30 s: counting is exact, so it reads every key). A second call for the same app does nothing.
    """
    if getattr(app, _INSTALLED_ATTR, False):
        return
    interval_s = interval_s if interval_s is not None else _interval(LAG_INTERVAL_ENV, LAG_INTERVAL_S)
    if table_interval_s is None:
        table_interval_s = _interval(TABLE_INTERVAL_ENV, TABLE_INTERVAL_S)
    setattr(app, _INSTALLED_ATTR, True)
    metrics = LagMetrics(app, tables, topics=topics)

    async def billwise_lag_metrics() -> None:
        try:
            await metrics.update_lag()
        except Exception as exc:  # a metrics tick must never take the worker down
            log.warning("consumer lag update failed: %s", type(exc).__name__)

    async def billwise_table_metrics() -> None:
        try:
            await metrics.update_tables()
        except Exception as exc:
            log.warning("table size update failed: %s", type(exc).__name__)

    app.timer(interval_s, on_leader=False, traced=False, name="billwise_lag_metrics")(billwise_lag_metrics)
    app.timer(table_interval_s, on_leader=False, traced=False, name="billwise_table_metrics")(
        billwise_table_metrics
    )
