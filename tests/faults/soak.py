"""A bounded soak: a worker fed at a steady rate for a fixed time, with memory and lag recorded.

``python -m tests.faults.soak --seconds 600 --rate 100`` runs the 10-minute soak against
``KAFKA_BOOTSTRAP_SERVERS`` (or an Apache Kafka broker it starts itself) and prints one JSON object:
events, rate, the worker's RSS at start (after a warm-up) and end, the largest consumer lag seen, the
time to drain after the last event, and the largest per-account state. ``tests/faults/test_soak.py``
runs a short version in CI. Traffic goes to the local broker only; the loop stops by itself.

What "no unbounded growth" means here: every bounded list of `rules.state.AccountState` stays within
its ``MAX_*`` constant on every account (de-duplication keys, history, contacts, payments, claims, held
actions, slots, reviewed ids, blocked numbers), and the worker's RSS grows by less than
`RSS_GROWTH_LIMIT` over the run once warm.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.simulator import Practice
from rules import state as state_module
from streams.progress import progress
from tests.faults.harness import CrashableWorker, final_states, keyed, produce, rss_kib

RSS_GROWTH_LIMIT = 1.5
"""End RSS may be at most this multiple of the warm RSS (plus `RSS_SLACK_KIB` for allocator noise)."""
RSS_SLACK_KIB = 64 * 1024
WARM_UP_SHARE = 0.15
"""RSS "at start" is taken after this share of the run: imports, RocksDB caches and the first models."""
BOUNDS: dict[str, int] = {
    "seen_events": state_module.MAX_SEEN_EVENTS,
    "history": state_module.MAX_HISTORY,
    "payments": state_module.MAX_PAYMENTS,
    "claims": state_module.MAX_CLAIMS,
    "contacts": state_module.MAX_CONTACTS,
    "held": state_module.MAX_HELD,
    "slots": state_module.MAX_SLOTS,
    "reviewed": state_module.MAX_REVIEWED,
    "blocked_numbers": state_module.MAX_BLOCKED_NUMBERS,
}


@dataclass
class SoakResult:
    seconds: float
    target_rate: float
    events: int
    achieved_rate: float
    rss_start_mib: float
    rss_end_mib: float
    rss_max_mib: float
    max_lag: int
    drain_s: float
    accounts: int
    largest_state_bytes: int
    longest_lists: dict[str, int] = field(default_factory=dict)
    bound_violations: list[str] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)

    @property
    def rss_within_bound(self) -> bool:
        return self.rss_end_mib * 1024 <= self.rss_start_mib * 1024 * RSS_GROWTH_LIMIT + RSS_SLACK_KIB


def run_soak(worker: CrashableWorker, seconds: float, rate: float, seed: int = 17) -> SoakResult:
    """Feed ``worker`` (not yet started) ``rate`` events a second for ``seconds``, sampling as it goes."""
    wanted = int(seconds * rate)
    # ~20 events a patient a year: enough patients that the stream does not run dry.
    practice = Practice(seed=seed, patients=max(100, wanted // 18), days=365)
    records = [keyed(event) for _, event in zip(range(wanted), practice.events(), strict=False)]
    worker.create_topics()
    process = worker.start()
    pid = process.process.pid
    samples: list[dict[str, float]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            try:
                lag = progress(worker.bootstrap, worker.settings.app_id, worker.topic("events")).lag
            except Exception:
                lag = -1
            samples.append({"t": round(time.monotonic() - started, 1), "rss_kib": rss_kib(pid), "lag": lag})
            stop.wait(2.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    produce(worker.bootstrap, worker.topic("events"), records, rate=rate)
    produced_s = time.monotonic() - started
    drain_started = time.monotonic()
    while True:
        now = progress(worker.bootstrap, worker.settings.app_id, worker.topic("events"))
        if now.done or time.monotonic() - drain_started > 300:
            break
        time.sleep(0.5)
    drain_s = time.monotonic() - drain_started
    stop.set()
    sampler.join()
    rss_end = rss_kib(pid)
    warm = [s for s in samples if s["t"] >= produced_s * WARM_UP_SHARE] or samples

    states = final_states(worker)
    longest = {name: 0 for name in BOUNDS}
    violations = []
    largest = 0
    for account, blob in states.items():
        largest = max(largest, len(json.dumps(blob)))
        for name, limit in BOUNDS.items():
            length = len(blob.get(name) or ())
            longest[name] = max(longest[name], length)
            if length > limit:
                violations.append(f"{account}.{name}: {length} > {limit}")
    return SoakResult(
        seconds=round(produced_s, 1),
        target_rate=rate,
        events=len(records),
        achieved_rate=round(len(records) / produced_s, 1),
        rss_start_mib=round(warm[0]["rss_kib"] / 1024, 1),
        rss_end_mib=round(rss_end / 1024, 1),
        rss_max_mib=round(max(s["rss_kib"] for s in samples) / 1024, 1),
        max_lag=max((int(s["lag"]) for s in samples), default=0),
        drain_s=round(drain_s, 1),
        accounts=len(states),
        largest_state_bytes=largest,
        longest_lists=longest,
        bound_violations=violations,
        samples=samples,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=100.0, help="events a second")
    parser.add_argument("--samples", action="store_true", help="print every RSS/lag sample too")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="billwise-soak-")))
        if not bootstrap:
            from streams.brokers import BrokerEngine, free_port, start_broker

            broker = stack.enter_context(
                start_broker(BrokerEngine.APACHE, free_port(), data_dir=workdir / "broker")
            )
            bootstrap = broker.bootstrap_servers
        worker = CrashableWorker(bootstrap, workdir)
        stack.callback(worker.stop)
        result = run_soak(worker, args.seconds, args.rate)
    report: dict[str, Any] = asdict(result)
    if not args.samples:
        report.pop("samples")
    report["rss_within_bound"] = result.rss_within_bound
    print(json.dumps(report, indent=2))
    return 0 if result.rss_within_bound and not result.bound_violations else 1


if __name__ == "__main__":
    sys.exit(main())
