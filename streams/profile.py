"""CPU per event of the decision path, without a broker (``python -m streams.profile``).

The worker's throughput is bounded by the CPU one record costs between Kafka and Kafka. This measures
that cost on the patient simulator's events (the same ones ``billwise bench`` produces), in CPU time of
this process rather than wall time, so that other work on a shared machine does not inflate it:

- ``offline``: `streams.offline.decide_lines`, i.e. ``billwise decide`` without the printing;
- ``worker``: `streams.ingest.Processor` in batches of the worker's size over a store that keeps each
  account's state as JSON bytes, as the worker's table does (read through the same cache of parsed
  states), with every output serialised as the worker writes it (no idle scans: ``billwise bench``
  turns the scan clock off).

The simulator compresses months into the stream, so in ``worker`` mode an event first catches up the
daily scans its account missed. ``--daily-scans`` does what the scan timer does in production instead:
before each scan day's events, a scan request for every account seen so far (`with_daily_scans`), and
it reports the events' own CPU apart from the scans'.

``--cprofile FILE`` also writes a cProfile of the measured run (read it with ``python -m pstats FILE``).

>>> report = profile_decisions(60, mode="worker")
>>> report["events"], report["cpu_us_per_event"] > 0
(60, True)
>>> report = profile_decisions(200, mode="worker", daily_scans=True)
>>> report["scan_requests"] > 0, report["event_cpu_us_per_event"] > 0
(True, True)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import count, groupby
from typing import Any, Literal

from models.suite import ModelSuite
from rules.decide import scan_day
from rules.policy import Policy, load_policy
from rules.schedule import start_of_day
from rules.state import AccountState
from streams.app import BATCH_SIZE
from streams.bench import simulated_events
from streams.commands import SCAN_TOPIC, scan_requests
from streams.ingest import InputRecord, Processor
from streams.offline import decide_lines
from streams.parsed_states import ParsedStates
from streams.settings import StreamSettings

Mode = Literal["offline", "worker"]
Kind = Literal["events", "scans"]
"""What a run of records is: canonical events, or the scan timer's requests."""


class _JsonStates:
    """Account id → state kept as JSON bytes and read through `ParsedStates`: the worker's table,
    without Faust."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.parsed = ParsedStates(StreamSettings().parsed_state_cache_mib * 1024 * 1024)

    def get(self, account_id: str) -> AccountState | None:
        blob = self.blobs.get(account_id)
        return self.parsed.parse(account_id.encode(), blob) if blob else None

    def __setitem__(self, account_id: str, state: AccountState) -> None:
        self.blobs[account_id] = self.parsed.remember(account_id.encode(), state)


def with_daily_scans(
    records: list[tuple[bytes, bytes]], policy: Policy
) -> list[tuple[Kind, list[tuple[bytes, bytes]]]]:
    """``records`` (events in time order) split at each scan day, each day's events preceded by the scan
    requests the timer sends at the day's start: one for every account seen so far.

    Returns (kind, records) runs; the scan requests are keyed as `streams.commands.scan_requests` keys
    them, for a single partition.

    >>> from rules.policy import load_policy
    >>> from streams.bench import simulated_events
    >>> runs = with_daily_scans(simulated_events(200, 7), load_policy())
    >>> [kind for kind, _ in runs[:3]]
    ['events', 'scans', 'events']
    """
    runs: list[tuple[Kind, list[tuple[bytes, bytes]]]] = []
    seen: dict[str, None] = {}  # account ids in the order first seen
    for day, group in groupby(records, key=lambda record: scan_day(_time_of(record[1]), policy)):
        if seen:  # every day but the first
            runs.append(("scans", scan_requests(seen, start_of_day(day, policy.scan.timezone), 1)))
        events = list(group)
        runs.append(("events", events))
        seen.update(dict.fromkeys(key.decode() for key, _ in events))
    return runs


def _time_of(value: bytes) -> datetime:
    return datetime.fromisoformat(json.loads(value)["time"])  # Python 3.11 reads the "Z"


class _WorkerRun:
    """`streams.ingest.Processor` over ``runs`` in batches of the worker's size, with the CPU each kind
    of run took in the last call (`cpu_s`)."""

    def __init__(
        self, runs: list[tuple[Kind, list[tuple[bytes, bytes]]]], policy: Policy, learning: bool
    ) -> None:
        self.policy, self.learning = policy, learning
        topics: dict[Kind, str] = {"events": "billing.events", "scans": f"billing.{SCAN_TOPIC}"}
        offset = count()
        received = datetime.now(UTC)
        self.runs = [
            (kind, [InputRecord(topics[kind], 0, next(offset), key, value, received) for key, value in run])
            for kind, run in runs
        ]
        self.cpu_s: dict[Kind, float] = {}

    def __call__(self) -> int:
        processor = Processor(self.policy, models=ModelSuite(monitored=False, learning=self.learning))
        store = _JsonStates()
        written = 0
        self.cpu_s = {"events": 0.0, "scans": 0.0}

        async def batches() -> None:
            nonlocal written
            for kind, inputs in self.runs:
                for start in range(0, len(inputs), BATCH_SIZE):
                    started = time.process_time()
                    processed = await processor.process(inputs[start : start + BATCH_SIZE], store)
                    for output in processed.outputs:
                        written += len(output.value.model_dump_json())
                    for account_id, state in processed.states.items():
                        store[account_id] = state
                    self.cpu_s[kind] += time.process_time() - started

        asyncio.run(batches())
        return written


def _offline_run(records: list[tuple[bytes, bytes]], policy: Policy, learning: bool) -> Callable[[], int]:
    lines = [value for _, value in records]
    return lambda: len(decide_lines(lines, policy, learning=learning))


def profile_decisions(
    events: int = 5_000,
    *,
    mode: Mode = "offline",
    seed: int = 7,
    learning: bool = True,
    daily_scans: bool = False,
    policy: Policy | None = None,
    cprofile: str | None = None,
) -> dict[str, Any]:
    """CPU µs per event of ``events`` simulator events through the decision path in ``mode``;
    ``daily_scans`` (worker mode only) as the module says."""
    if daily_scans and mode != "worker":
        raise ValueError("daily scans are a worker-mode measurement")
    records = simulated_events(events, seed)
    policy = policy or load_policy()
    run: Callable[[], int]
    if mode == "worker":
        runs: list[tuple[Kind, list[tuple[bytes, bytes]]]] = (
            with_daily_scans(records, policy) if daily_scans else [("events", records)]
        )
        run = worker = _WorkerRun(runs, policy, learning)
    else:
        run = _offline_run(records, policy, learning)
    run()  # warm-up outside the measurement: imports, compiled rulesets, templates, caches
    profiler = cProfile.Profile() if cprofile else None
    started_cpu, started = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    run()
    if profiler is not None:
        profiler.disable()
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    if profiler is not None and cprofile:
        profiler.dump_stats(cprofile)
    report = {
        "mode": mode,
        "events": len(records),
        "learning": learning,
        "cpu_us_per_event": round(cpu / len(records) * 1e6, 1),
        "wall_us_per_event": round(wall / len(records) * 1e6, 1),
        "cpu_events_per_s": round(len(records) / cpu, 1),
        "profiled": profiler is not None,
    }
    if daily_scans:
        report |= {
            "scan_requests": sum(len(run) for kind, run in runs if kind == "scans"),
            "event_cpu_us_per_event": round(worker.cpu_s["events"] / len(records) * 1e6, 1),
            "scan_cpu_s": round(worker.cpu_s["scans"], 2),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--mode", choices=("offline", "worker"), default="offline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-learning", action="store_true", help="score with the models' priors only")
    parser.add_argument(
        "--daily-scans",
        action="store_true",
        help="worker mode: scan every account at each day, as the timer does",
    )
    parser.add_argument("--cprofile", metavar="FILE", help="write a cProfile of the measured run")
    args = parser.parse_args(argv)
    report = profile_decisions(
        args.events,
        mode=args.mode,
        seed=args.seed,
        learning=not args.no_learning,
        daily_scans=args.daily_scans,
        cprofile=args.cprofile,
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
