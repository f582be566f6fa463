"""CPU per event of the decision path, without a broker (``python -m streams.profile``).

The worker's throughput is bounded by the CPU one record costs between Kafka and Kafka. This measures
that cost on the patient simulator's events (the same ones ``billwise bench`` produces), in CPU time of
this process rather than wall time, so that other work on a shared machine does not inflate it:

- ``offline``: `streams.offline.decide_lines`, i.e. ``billwise decide`` without the printing;
- ``worker``: `streams.ingest.Processor` in batches of the worker's size over a store that keeps each
  account's state as JSON bytes, as the worker's table does (read through the same cache of parsed
  states), with every output serialised as the worker writes it (no idle scans: ``billwise bench``
  turns the scan clock off).

``--cprofile FILE`` also writes a cProfile of the measured run (read it with ``python -m pstats FILE``).

>>> report = profile_decisions(60, mode="worker")
>>> report["events"], report["cpu_us_per_event"] > 0
(60, True)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from models.suite import ModelSuite
from rules.policy import Policy, load_policy
from rules.state import AccountState
from streams.app import BATCH_SIZE
from streams.bench import simulated_events
from streams.ingest import InputRecord, Processor
from streams.offline import decide_lines
from streams.parsed_states import ParsedStates
from streams.settings import StreamSettings

Mode = Literal["offline", "worker"]


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


def _worker_run(records: list[tuple[bytes, bytes]], policy: Policy, learning: bool) -> Callable[[], int]:
    inputs = [
        InputRecord("billing.events", 0, offset, key, value, datetime.now(UTC))
        for offset, (key, value) in enumerate(records)
    ]

    def run() -> int:
        processor = Processor(policy, models=ModelSuite(monitored=False, learning=learning))
        store = _JsonStates()
        written = 0

        async def batches() -> None:
            nonlocal written
            for start in range(0, len(inputs), BATCH_SIZE):
                processed = await processor.process(inputs[start : start + BATCH_SIZE], store)
                for output in processed.outputs:
                    written += len(output.value.model_dump_json())
                for account_id, state in processed.states.items():
                    store[account_id] = state

        asyncio.run(batches())
        return written

    return run


def _offline_run(records: list[tuple[bytes, bytes]], policy: Policy, learning: bool) -> Callable[[], int]:
    lines = [value for _, value in records]
    return lambda: len(decide_lines(lines, policy, learning=learning))


def profile_decisions(
    events: int = 5_000,
    *,
    mode: Mode = "offline",
    seed: int = 7,
    learning: bool = True,
    policy: Policy | None = None,
    cprofile: str | None = None,
) -> dict[str, Any]:
    """CPU µs per event of ``events`` simulator events through the decision path in ``mode``."""
    records = simulated_events(events, seed)
    make = _worker_run if mode == "worker" else _offline_run
    run = make(records, policy or load_policy(), learning)
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
    return {
        "mode": mode,
        "events": len(records),
        "learning": learning,
        "cpu_us_per_event": round(cpu / len(records) * 1e6, 1),
        "wall_us_per_event": round(wall / len(records) * 1e6, 1),
        "cpu_events_per_s": round(len(records) / cpu, 1),
        "profiled": profiler is not None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--mode", choices=("offline", "worker"), default="offline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-learning", action="store_true", help="score with the models' priors only")
    parser.add_argument("--cprofile", metavar="FILE", help="write a cProfile of the measured run")
    args = parser.parse_args(argv)
    report = profile_decisions(
        args.events, mode=args.mode, seed=args.seed, learning=not args.no_learning, cprofile=args.cprofile
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
