"""What the fault and soak tests share: a worker that can be killed and restarted on the same data,
progress and lag read from the consumer group, every output record read back, and the offline
expectation (`streams.offline`) to compare the streamed outputs with.

Nothing here is a test; ``tests/faults/conftest.py`` hands these objects out as fixtures and
``tests/faults/soak.py`` uses them from the command line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.brokers import free_port
from streams.progress import Progress, progress
from streams.settings import StreamSettings
from streams.topics import ensure_topics
from streams.worker_process import WorkerProcess, start_worker

OUTPUT_TOPICS = ("actions", "review", "audit", "dlq")


# -- a worker that can crash ----------------------------------------------------------------------


@dataclass
class CrashableWorker:
    """One logical worker (app id, topic prefix, data dir) run as successive processes.

    Every incarnation logs to its own file (``worker-0.log``, ``worker-1.log``, ...), so the log of a
    killed process survives its restart.
    """

    bootstrap: str
    workdir: Path
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    web_port: int = field(default_factory=free_port)
    process: WorkerProcess | None = None
    incarnations: int = 0
    ready_seconds: list[float] = field(default_factory=list)

    @property
    def settings(self) -> StreamSettings:
        return StreamSettings(
            kafka_bootstrap_servers=self.bootstrap,
            topic_prefix=f"ft{self.run_id}",
            app_id=f"billwise-ft{self.run_id}",
            partitions=self.partitions,
        )

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    @property
    def env(self) -> dict[str, str]:
        settings = self.settings
        return {
            "BILLWISE_TOPIC_PREFIX": settings.topic_prefix,
            "BILLWISE_APP_ID": settings.app_id,
            "BILLWISE_PARTITIONS": str(self.partitions),
            "BILLWISE_DATA_DIR": str(self.workdir / "worker-data"),
            # The models learn at each new day of the events' clock (`models.suite`). Records of many
            # days are produced at once, so one partition can move the clock to a later day before
            # another has decided its earlier ones, which the offline expectation cannot reproduce;
            # with learning off, stream and offline must decide identically.
            "BILLWISE_MODEL_LEARNING": "false",
            # The offline expectation scans an account before its own events only (`idle_scans` off):
            # a timer's scans would depend on when the kills fell.
            "BILLWISE_SCAN_CLOCK": "off",
            **self.extra_env,
        }

    def create_topics(self) -> None:
        asyncio.run(ensure_topics(self.settings))

    def start(self, ready_timeout_s: float = 120.0) -> WorkerProcess:
        log_path = self.workdir / f"worker-{self.incarnations}.log"
        self.incarnations += 1
        started = time.monotonic()
        self.process = start_worker(
            self.bootstrap, self.web_port, log_path=log_path, env=self.env, ready_timeout_s=ready_timeout_s
        )
        self.ready_seconds.append(time.monotonic() - started)
        return self.process

    def kill(self) -> None:
        """SIGKILL the running process: no shutdown, no final commit, no flush."""
        if self.process is not None:
            self.process.kill()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def pid(self) -> int | None:
        return self.process.process.pid if self.process else None

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.workdir.glob("worker-*.log"))
        )

    def stack_dump(self, settle_s: float = 3.0) -> str:
        """What the running process's threads and asyncio tasks are doing, for the message of a test
        that waited for it in vain: mode's worker writes every stack to its log on SIGUSR1. Condensed
        to the frames (the dump's local variables run to a thousand lines)."""
        if self.process is None or self.process.process.poll() is not None:
            return "(no running worker)"
        log_path = self.process.log_path
        start = log_path.stat().st_size
        self.process.process.send_signal(signal.SIGUSR1)
        time.sleep(settle_s)
        with log_path.open("rb") as log:
            log.seek(start)
            dump = log.read().decode(errors="replace")
        return "\n".join(frame_lines(dump)) or "(the worker wrote no stacks)"


def frame_lines(dump: str) -> Iterator[str]:
    """The thread and task headers and the frames of a mode stack dump, without its local variables.

    >>> dump = "THREAD MainThread\\n  File \\"a.py\\", line 3, in f\\n    g()\\nLOCAL VARIABLES\\n{'x': 1}\\n"
    >>> list(frame_lines(dump))
    ['THREAD MainThread', '  File "a.py", line 3, in f', '    g()']
    """
    after_frame = False
    for line in dump.splitlines():
        if line.startswith(("THREAD ", "  TASK ", "Stack for ", "  File ")):
            yield line
            after_frame = line.startswith("  File ")
        elif after_frame and line.startswith("    "):
            yield line  # the frame's source line; the task's local variables follow it
            after_frame = False
        else:
            after_frame = False


# -- progress and lag -----------------------------------------------------------------------------


def wait_for_progress(
    worker: CrashableWorker, *, at_least: int, timeout_s: float, poll_s: float = 0.5
) -> Progress:
    """Poll until the worker's group has committed ``at_least`` events; raises on timeout or death."""
    deadline = time.monotonic() + timeout_s
    last = Progress(0, 0)
    while time.monotonic() < deadline:
        if worker.process is not None and worker.process.process.poll() is not None:
            raise AssertionError(f"worker exited unexpectedly:\n{worker.process.log_tail()}")
        try:
            last = progress(worker.bootstrap, worker.settings.app_id, worker.topic("events"))
        except Exception:  # the broker may be restarting: keep polling
            time.sleep(poll_s)
            continue
        if last.committed >= at_least:
            return last
        time.sleep(poll_s)
    tail = worker.process.log_tail() if worker.process else ""
    stacks = worker.stack_dump()
    raise AssertionError(
        f"no progress to {at_least} within {timeout_s:.0f} s (at {last}):\n{tail}\n\nstacks:\n{stacks}"
    )


def wait_drained(worker: CrashableWorker, *, timeout_s: float) -> Progress:
    """Poll until every produced event is committed by the group."""
    end = progress(worker.bootstrap, worker.settings.app_id, worker.topic("events")).end
    return wait_for_progress(worker, at_least=end, timeout_s=timeout_s)


# -- reading outputs back -------------------------------------------------------------------------


@dataclass(frozen=True)
class OutRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    raw: bytes

    @property
    def value(self) -> Any:
        return json.loads(self.raw)


async def _read_all(bootstrap: str, topics: list[str], idle_s: float, overall_s: float) -> list[OutRecord]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[OutRecord] = []
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        started = last = time.monotonic()
        while time.monotonic() - started < overall_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for messages in batch.values():
                for m in messages:
                    key = m.key.decode("utf-8", "replace") if m.key is not None else None
                    out.append(OutRecord(m.topic, m.partition, m.offset, m.timestamp, key, m.value or b""))
            if batch:
                last = time.monotonic()
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions) and time.monotonic() - last > idle_s:
                break
    finally:
        await consumer.stop()
    return out


def read_all(
    bootstrap: str, topics: Iterable[str], *, idle_s: float = 1.0, overall_s: float = 120.0
) -> list[OutRecord]:
    """Every record of ``topics`` from the beginning (partition order kept), with its timestamp."""
    return asyncio.run(_read_all(bootstrap, list(topics), idle_s, overall_s))


# -- what the stream must have written --------------------------------------------------------------


@dataclass
class Expectation:
    """The offline decision core's outputs for the same input lines."""

    actions: dict[str, dict[str, Any]]
    """action_id → the action (from ``actions`` and ``review``)."""
    audit_ids: set[str]
    dead_letters: int
    states: dict[str, dict[str, Any]]
    """account_id → the final AccountState (JSON)."""


def offline_expectation(records: list[tuple[bytes | None, bytes]], prefix: str = "billing") -> Expectation:
    """Run ``(key, value)`` records through `streams.ingest.Processor` as `streams.offline.decide_lines`
    does (batches of 500, a fresh worker's models, templates only), keeping the final states."""
    from datetime import UTC, datetime

    from rules.policy import load_policy
    from rules.state import AccountState
    from streams import ingest

    states: dict[str, AccountState | None] = {}
    process = _batch_processor(load_policy(), prefix)
    actions: dict[str, dict[str, Any]] = {}
    audit_ids: set[str] = set()
    dead = 0
    topic = f"{prefix}.events"

    async def run() -> None:
        nonlocal dead
        for start in range(0, len(records), 500):
            batch = [
                ingest.InputRecord(topic, 0, start + i, key, value, datetime.now(UTC))
                for i, (key, value) in enumerate(records[start : start + 500])
            ]
            for output in await process(batch, states):
                value = output.value.model_dump(mode="json")
                if output.topic in ("actions", "review"):
                    actions[value["action_id"]] = value
                elif output.topic == "audit":
                    audit_ids.add(value["audit_id"])
                elif output.topic == "dlq":
                    dead += 1

    asyncio.run(run())
    final = {k: json.loads(v.model_dump_json()) for k, v in states.items() if v is not None}
    return Expectation(actions, audit_ids, dead, final)


def _batch_processor(policy: Any, prefix: str) -> Any:
    """``async (records, states) -> outputs``: `streams.ingest.Processor` with a fresh worker's models,
    learning off (as the workers under test run), updating ``states`` as the worker's table would be."""
    from models.suite import ModelSuite
    from streams.ingest import Processor

    processor = Processor(policy, prefix=prefix, models=ModelSuite(monitored=False, learning=False))

    async def process(records: list[Any], states: dict[str, Any]) -> list[Any]:
        processed = await processor.process(records, states)
        states.update(processed.states)
        return processed.outputs

    return process


def offline_in_background(records: list[tuple[bytes | None, bytes]]) -> Future[Expectation]:
    """`offline_expectation` in a separate process (spawned: this one has Kafka client threads)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    future = pool.submit(offline_expectation, records)
    future.add_done_callback(lambda _: pool.shutdown(wait=False))
    return future


# -- comparing ------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Streamed outputs against the offline expectation."""

    action_records: int
    distinct_actions: int
    identical_duplicates: int
    """Extra copies of an action with the same content (allowed under at-least-once)."""
    conflicting: list[str]
    """Action ids emitted with more than one content (must be empty)."""
    missing: list[str]
    """Expected action ids never emitted (must be empty)."""
    unexpected: list[str]
    """Emitted action ids the offline core does not produce (must be empty)."""
    different: list[str]
    """Action ids emitted with content other than the offline core's (must be empty)."""
    audit_records: int
    audit_duplicates: int
    audit_missing: int
    chain_break: Any
    dead_letters: int

    def figures(self) -> dict[str, Any]:
        return {
            "action_records": self.action_records,
            "distinct_actions": self.distinct_actions,
            "identical_duplicates": self.identical_duplicates,
            "conflicting_duplicates": len(self.conflicting),
            "lost_actions": len(self.missing),
            "unexpected_actions": len(self.unexpected),
            "actions_differing_from_offline": len(self.different),
            "audit_records": self.audit_records,
            "audit_duplicates": self.audit_duplicates,
            "audit_missing": self.audit_missing,
            "dead_letters": self.dead_letters,
        }


def _canonical(raw: bytes) -> str:
    return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))


def compare(records: list[OutRecord], expected: Expectation, *, content: bool = True) -> Comparison:
    """Compare what the topics hold with ``expected`` (``content=False``: action ids only)."""
    from schemas.audit import verify_chain

    copies: dict[str, Counter[str]] = defaultdict(Counter)
    values: dict[str, dict[str, Any]] = {}
    audit: list[dict[str, Any]] = []
    dead = 0
    for record in records:
        kind = record.topic.rsplit(".", 1)[-1]
        if kind in ("actions", "review"):
            value = json.loads(record.raw)
            copies[value["action_id"]][_canonical(record.raw)] += 1
            values[value["action_id"]] = value
        elif kind == "audit":
            audit.append(json.loads(record.raw))
        elif kind == "dlq":
            dead += 1
    streamed = set(copies)
    audit_counts = Counter(a["audit_id"] for a in audit)
    different = (
        sorted(i for i in streamed & set(expected.actions) if values[i] != expected.actions[i])
        if content
        else []
    )
    return Comparison(
        action_records=sum(sum(c.values()) for c in copies.values()),
        distinct_actions=len(streamed),
        identical_duplicates=sum(sum(c.values()) - 1 for c in copies.values() if len(c) == 1),
        conflicting=sorted(i for i, c in copies.items() if len(c) > 1),
        missing=sorted(set(expected.actions) - streamed),
        unexpected=sorted(streamed - set(expected.actions)),
        different=different,
        audit_records=len(audit),
        audit_duplicates=sum(n - 1 for n in audit_counts.values()),
        audit_missing=len(expected.audit_ids - set(audit_counts)),
        chain_break=verify_chain(audit),
        dead_letters=dead,
    )


def final_states(worker: CrashableWorker) -> dict[str, dict[str, Any]]:
    """The last value of every account on the table's changelog topic (what the table holds)."""
    changelog = f"{worker.settings.app_id}-accounts-changelog"
    latest: dict[str, dict[str, Any]] = {}
    for record in read_all(worker.bootstrap, [changelog], idle_s=0.5):
        if record.key is not None and record.raw:
            latest[record.key] = json.loads(record.raw)
    return latest


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fault_seed() -> int:
    """The seed of random kill points: ``BILLWISE_FAULT_SEED`` or a fresh one (printed by the tests)."""
    raw = os.environ.get("BILLWISE_FAULT_SEED", "").strip()
    return int(raw) if raw else int.from_bytes(os.urandom(4), "big")


# -- producing ------------------------------------------------------------------------------------


def keyed(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """A canonical event as the contract's (key, value): keyed by ``data.account_id``."""
    return str(event["data"]["account_id"]).encode(), json.dumps(event).encode()


async def _produce(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], rate: float
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", max_request_size=2**21)
    await producer.start()
    try:
        pending = []
        started = time.monotonic()
        for index, (key, value) in enumerate(records):
            pending.append(await producer.send(topic, key=key, value=value))
            if rate > 0:
                ahead = started + (index + 1) / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], *, rate: float = 0
) -> None:
    """Send ``(key, value)`` records in order; ``rate`` > 0 paces them (records a second)."""
    asyncio.run(_produce(bootstrap, topic, records, rate))


DEEP_NESTING = b"[" * 100_000 + b"]" * 100_000
"""JSON nested past the interpreter's recursion limit: `json.loads` raises RecursionError."""


def poison_records(account_id: str) -> list[tuple[bytes | None, bytes]]:
    """Bad records on an account's own key (so on its partition), one of each kind."""
    key = account_id.encode()
    other = json.dumps(
        {
            "specversion": "1.0",
            "id": f"poison-{account_id}",
            "source": "fault-test",
            "type": "billing.payment.posted",
            "time": "2026-02-01T10:00:00Z",
            "data": {"account_id": "SOMEONE-ELSE", "patient_id": "PT-X", "practice_id": "P-X"},
        }
    ).encode()
    return [
        (key, b'{"specversion": "1.0", "id": '),  # truncated JSON
        (key, b"\xff\xfe\x00garbage"),  # not UTF-8
        (key, b""),  # empty value
        (key, json.dumps({"specversion": "1.0", "type": "billing.nope", "id": "x"}).encode()),
        (key, other),  # valid-looking event for another account (key mismatch)
        (None, b'{"no": "key"}'),  # unkeyed
    ]
