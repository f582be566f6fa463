"""The garbage collector's settings for a long-running worker (`tune_garbage_collector`).

A decision allocates thousands of short-lived objects (pydantic models, dicts, template contexts), and
Python starts a young collection every 700 container allocations; every tenth of those also walks the
middle generation and, now and then, the whole heap, including the modules, compiled rulesets and
templates loaded at start-up, which never die. The worker freezes those out of every collection.

Measured inside a worker over the benchmark's 20,000 events (gc callbacks summing each collection):
collections took 7.9 % of its CPU with Python's defaults and 5.6-6.2 % with the start-up frozen. A young
threshold of 5,000 (``BILLWISE_GC_GEN0_THRESHOLD``) brings it to 2.9-3.7 %, but the middle generation's
longest collection grew from 24 to 80 ms, and in three full demos out of three the worker then stood
still for 0.5 s short of the records sent (the demo's pacer stopped waiting and reported 12-126 records
uncounted), against none in two demos with 700. That pacer has since learnt to wait for the worker's
committed offsets (it also stopped short at 700 with 2,000 patients), so those stalls say less than the
80 ms collection does. 700 stays the default, and 5,000 is for operators who prefer throughput to tail
latency.

`watch_garbage_collector` times every collection into ``billwise_gc_pause_seconds``: below saturation
the worker's p99 latency is set by its full collections (docs/performance.md, eleventh session), so an
operator who sees the p99 rise can tell a collector pause from a slow decision.

>>> import gc
>>> before = gc.get_threshold()
>>> tune_garbage_collector(5_000)
>>> gc.get_threshold()[0], gc.get_freeze_count() > 0
(5000, True)
>>> gc.unfreeze(); gc.set_threshold(*before)
"""

from __future__ import annotations

import gc
import time
from typing import Any

from streams.metrics import GC_PAUSE_SECONDS

_GENERATIONS = tuple(GC_PAUSE_SECONDS.labels(generation=str(g)) for g in range(3))
_started: list[float] = [0.0]  # the running collection's start (collections do not nest)


def tune_garbage_collector(gen0_threshold: int) -> None:
    """Collect once, move everything alive (the start-up's objects) to the permanent generation that
    collections skip, and collect the youngest generation every ``gen0_threshold`` allocations. The
    older generations keep Python's ratios; memory stays bounded, as cycles are still collected."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


def watch_garbage_collector() -> None:
    """Observe each collection's pause in ``billwise_gc_pause_seconds{generation}`` (once per process).

    The callback costs about 1 µs a collection, against 140 µs for the mean young collection (about 80
    of them per 1,000 of the benchmark's events) and 66 ms for the mean full one (twelfth session).
    """
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _GENERATIONS[info["generation"]].observe(time.perf_counter() - _started[0])
