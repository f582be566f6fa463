"""``billwise demo``: a simulated practice through a real broker and worker, against a baseline policy.

What runs:

1. **The baseline**, offline and in process: the same simulated practice (same seed, same patients)
   under a fixed cadence (the practice's statements every 30 days, letter reminders at 60 and 90 days
   after the first statement, no plans or assistance offered; `models.simulator.FixedCadence`).
2. **The engine**: the embedded Tansu broker (memory only; or the cluster ``KAFKA_BOOTSTRAP_SERVERS``
   names, on topics of their own), a worker in a child process, and the practice's events streamed to
   ``{prefix}.events`` one simulated day at a time. After each day the demo waits until the worker has
   taken every event (its ``/metrics`` counters), reads what it wrote, and the reference sender
   (`streams.sender`) delivers the released actions whose ``not_before`` has come to the simulated
   patients (`SimulatorTransport`), reporting an outcome record on ``{prefix}.outcomes`` for each. The
   patients' replies (payments, plans, opt-outs...) join the practice's own events in time order and are
   streamed with the next days. Held actions (``{prefix}.review``) wait for a reviewer and are not sent.
3. **The report**: the engine's actions, holds, suppressions, drafts and dead letters, and the outcome
   KPIs of both policies (`streams.kpis`), in the terminal and as a self-contained HTML file.

Time is compressed: the engine decides in event time, and the sender's clock is the simulated one, so
six months of a practice take minutes. Every patient, balance and reply is simulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.live import Live
from rich.table import Table

from models.simulator import DEFAULT_START, FixedCadence, Practice
from rules.policy import load_policy
from rules.schedule import local_day, start_of_day
from schemas.audit import verify_chain
from schemas.common import utc_text
from streams.brokers import TANSU_FETCH_WAIT_MS, BrokerEngine, free_port, start_broker
from streams.commands import SCAN_TOPIC
from streams.demo_defaults import DEFAULT_DAYS, DEFAULT_PATIENTS, DEFAULT_REPORT, DEFAULT_SEED
from streams.kafka_io import Record, produce_events, read_topics
from streams.kpis import EngineTally, OutcomeKpis, WorldTally, outcome_kpis
from streams.sender import Delivery, ReferenceSender, SimulatedClock, outcome_record
from streams.settings import StreamSettings
from streams.topics import ensure_topics
from streams.worker_process import WorkerProcess, start_worker

SAMPLE_EVENTS = Path(__file__).parent / "sample_events.jsonl"
PARTITIONS = 4
OUTPUT_ROUTES = ("actions", "review", "audit", "dlq")
PROCESSED_METRICS = ("billwise_input_records_total",)
"""The input records the worker is done with, outputs acknowledged and states written: the demo's events
and sender outcomes, the scan requests of the worker's own timer, duplicates and dead letters too."""
REQUESTED_METRICS = ("billwise_daily_scan_requests_total",)
"""The scan request records the worker's timer sent itself: records to wait for besides the demo's."""
SCAN_DAY_METRIC = "billwise_daily_scan_day_timestamp_seconds"
"""The start of the latest scan day the worker's timer requested scans for."""
ACTIVITY_METRICS = (*PROCESSED_METRICS, "billwise_events_total", "billwise_daily_scans_total")
"""Counters that move while the worker works, on the demo's records or on the daily scans its timer asks
for by itself: a standstill is a time when none of them moves."""
STEP = timedelta(days=1)
STALL_S = 3.0
"""Counters unchanged this long, short of the records sent: the worker is taken to be done with them."""
SETTLED_S = 0.5
"""Counters unchanged this long, short of the records sent: the pacer asks the broker whether the worker
has committed every record, and if so takes the rest as never to be counted. A shorter standstill alone
proves nothing: with 2,000 patients the worker stood still for 0.5 s now and then with records still to
take (two or three times a run), and the demo reported up to 134 of them as never counted."""

__all__ = [
    "DemoConfig",
    "EngineRun",
    "PolicyRun",
    "SimulatorTransport",
    "run_baseline",
    "run_demo",
    "run_sample",
]


@dataclass(frozen=True)
class DemoConfig:
    patients: int = DEFAULT_PATIENTS
    days: int = DEFAULT_DAYS
    seed: int = DEFAULT_SEED
    report: Path | None = DEFAULT_REPORT
    process_timeout_s: float = 120.0
    """Longest wait for the worker to take one day's events before the demo gives up."""
    scan_zone: str = field(default_factory=lambda: load_policy(StreamSettings().policy).scan.timezone)
    """Where the worker's scan days start (its policy's ``scan.timezone``): the demo waits for the worker
    at each one (`_by_scan_day`)."""


# -- the simulated patients as the sender's transport ------------------------------------------------

_DELIVERY_STATUS = {
    "delivered": "delivered",
    "failed": "failed",
    "bounced": "bounced",
    "opened": "opened",
    "clicked": "clicked",
    "replied": "replied",
    "answered": "delivered",
    "conversation": "delivered",
    "voicemail": "delivered",
    "no_answer": "failed",
}


class SimulatorTransport:
    """The demo's transport: the action reaches a simulated patient (`Practice.respond`).

    The patient's replies are queued in the practice (``enqueue=True``), so they come out of
    `Practice.events` at their own times, in order with everything else the demo streams. The outcome
    reported is what became of the delivery (the outbound communication the simulator logs for it).
    """

    def __init__(self, practice: Practice) -> None:
        self.practice = practice
        self.replies: Counter[str] = Counter()

    def deliver(self, action: Mapping[str, Any], at: datetime) -> Delivery:
        events = self.practice.respond(action, at, enqueue=True)
        for event in events:
            self.replies[event["type"]] += 1
        outbound = next(
            (
                e["data"]
                for e in events
                if e["type"] == "billing.communication.logged" and e["data"].get("direction") == "outbound"
            ),
            None,
        )
        if outbound is None:
            return Delivery("sent", at, "simulated: no delivery record")
        status = _DELIVERY_STATUS.get(str(outbound.get("outcome")), "sent")
        moment = datetime.fromisoformat(str(outbound["at"]).replace("Z", "+00:00"))
        return Delivery(status, moment, f"simulated {outbound.get('channel')}: {outbound.get('outcome')}")  # type: ignore[arg-type]


# -- stepping a practice through simulated days ----------------------------------------------------


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _by_scan_day(events: Sequence[dict[str, Any]], zone: str) -> list[tuple[date, list[dict[str, Any]]]]:
    """``events`` (in time order) in runs of one scan day each (midnight in ``zone`` starts a day).

    A demo day runs from midnight UTC, so it holds the evening of one scan day of the engine's and the
    start of the next. The worker's models learn at the first event of a scan day (`models.suite`), so
    the demo waits for one run before it sends the next: otherwise a partition's events of the new day
    could move the models while another's of the old day wait.

    >>> events = [{"time": "2026-03-17T01:00:00Z"}, {"time": "2026-03-17T13:00:00Z"}]
    >>> [(day.isoformat(), len(run)) for day, run in _by_scan_day(events, "America/New_York")]
    [('2026-03-16', 1), ('2026-03-17', 1)]
    """
    return [
        (day, list(run))
        for day, run in groupby(events, key=lambda event: local_day(_parse(event["time"]), zone))
    ]


class _DaySteps:
    """A practice's events cut into simulated days, with a clock that never runs behind the stream.

    `next_day` returns the events dated before the next day boundary; `now` is then the later of the
    boundary and the time of the first event not yet returned, so that anything dated at or after
    ``now`` (a reply to an action sent at ``now``) keeps the stream in time order.
    """

    def __init__(self, practice: Practice) -> None:
        self.practice = practice
        self.start = practice.start
        self._stream = practice.events()
        self._peeked: dict[str, Any] | None = next(self._stream, None)
        self.day = 0
        self.now = self.start

    def next_day(self) -> list[dict[str, Any]]:
        self.day += 1
        boundary = self.start + STEP * self.day
        cut = utc_text(boundary)  # the simulator's times are all "YYYY-MM-DDTHH:MM:SSZ"
        batch: list[dict[str, Any]] = []
        peeked, stream = self._peeked, self._stream
        while peeked is not None and peeked["time"] < cut:
            batch.append(peeked)
            peeked = next(stream, None)
        self._peeked = peeked
        self.now = max(boundary, _parse(peeked["time"])) if peeked is not None else boundary
        return batch


@dataclass
class PolicyRun:
    """One policy's world at the end of the run."""

    kpis: OutcomeKpis
    tally: WorldTally
    summary: dict[str, Any]
    collected_by_day: list[int] = field(default_factory=list)
    """Cumulative cents collected at the end of each simulated day."""
    actions_sent: Counter[str] = field(default_factory=Counter)


def run_baseline(seed: int, patients: int, days: int) -> PolicyRun:
    """The fixed-cadence baseline over the same practice, offline (no broker), stepped like the demo."""
    practice = Practice(seed=seed, patients=patients, days=days)
    baseline = FixedCadence()
    tally = WorldTally()
    steps = _DaySteps(practice)
    collected: list[int] = []
    sent: Counter[str] = Counter()
    for _ in range(days):
        for event in steps.next_day():
            tally.observe(event)
            baseline.observe(event)
        for action in baseline.due(steps.now):
            practice.respond(action, steps.now, enqueue=True)
            sent[action["kind"]] += 1
        collected.append(int(practice.totals["collected_cents"]))
    summary = practice.summary()
    return PolicyRun(outcome_kpis(summary, tally, days), tally, summary, collected, sent)


# -- the engine's run ------------------------------------------------------------------------------


@dataclass
class EngineRun:
    world: PolicyRun
    engine: EngineTally
    sender: ReferenceSender
    transport: SimulatorTransport
    events_streamed: int
    outcomes_written: int
    audit_chain: str
    worker_metrics: dict[str, dict[str, float]]
    policy_versions: Counter[str]
    records_read: dict[str, int]
    uncounted: int = 0
    """Input records the worker's counters never showed as taken (settled by its committed offsets)."""


class _OutputReader:
    """Reads the engine's output topics from the start, a bit more on every call (no consumer group)."""

    def __init__(self, bootstrap: str, settings: StreamSettings) -> None:
        self.bootstrap = bootstrap
        self.routes = {settings.topic(route): route for route in OUTPUT_ROUTES}
        # A short fetch wait: Tansu answers an empty fetch only when its wait runs out, even if records
        # arrive meanwhile, and the demo reads right after the worker has written.
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
        )
        self.partitions: list[TopicPartition] = []

    async def start(self, timeout_s: float = 30.0) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:  # a topic created a moment ago may not be described by every broker yet
                described = await admin.describe_topics(list(self.routes))
                self.partitions = sorted(
                    TopicPartition(topic["topic"], partition["partition"])
                    for topic in described
                    if topic["error_code"] == 0
                    for partition in topic["partitions"]
                )
                if {tp.topic for tp in self.partitions} == set(self.routes):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"output topics missing: {sorted(self.routes)}")
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def read(self, idle_s: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
        """Everything up to the current end offsets, then (``idle_s``) until nothing new for that long."""
        out: list[tuple[str, dict[str, Any]]] = []
        ends = await self.consumer.end_offsets(self.partitions)
        last_new = time.monotonic()
        while True:
            batch = await self.consumer.getmany(timeout_ms=50, max_records=10_000)
            for tp, messages in batch.items():
                route = self.routes[tp.topic]
                out.extend((route, json.loads(message.value)) for message in messages)
            if batch:
                last_new = time.monotonic()
            behind = False
            for tp, end in ends.items():
                if await self.consumer.position(tp) < end:
                    behind = True
                    break
            if behind:
                continue
            if time.monotonic() - last_new >= idle_s:
                return out


async def _scrape(client: httpx.AsyncClient, url: str) -> dict[str, dict[str, float]]:
    """``billwise_*`` samples of the worker's ``/metrics``: {name: {labels text: value}}."""
    text = (await client.get(url, timeout=5.0)).text
    samples: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith("billwise_"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        with contextlib.suppress(ValueError):
            samples.setdefault(name, {})["{" + labels if labels else ""] = float(value)
    return samples


def _processed(samples: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = PROCESSED_METRICS) -> int:
    """The sum of the worker's counters in ``metrics``: by default, the input records it has finished with."""
    total = 0.0
    for name in metrics:
        total += sum(samples.get(name, {}).values())
    return int(total)


@dataclass
class _Live:
    """The numbers the live view shows."""

    day: int = 0
    days: int = 0
    date: str = ""
    streamed: int = 0
    released: int = 0
    held: int = 0
    dead: int = 0
    delivered: int = 0
    pending: int = 0
    expired: int = 0
    cancelled: int = 0
    collected_cents: int = 0
    baseline_collected_cents: int = 0
    started: float = field(default_factory=time.monotonic)

    def render(self) -> Table:
        table = Table(title="billwise demo (simulated practice)", show_header=False, min_width=64)
        table.add_column("what", style="bold")
        table.add_column("value", justify="right")
        bar_width = 30
        filled = int(bar_width * self.day / max(self.days, 1))
        table.add_row("simulated date", f"{self.date}  day {self.day}/{self.days}")
        table.add_row("progress", "█" * filled + "░" * (bar_width - filled))
        table.add_row("events streamed", f"{self.streamed:,}")
        table.add_row("actions released / held for review", f"{self.released:,} / {self.held:,}")
        table.add_row("dead letters", f"{self.dead:,}")
        table.add_row(
            "sent by the reference sender / waiting",
            f"{self.delivered:,} / {self.pending:,}",
        )
        table.add_row("dropped: expired / cancelled by the engine", f"{self.expired:,} / {self.cancelled:,}")
        table.add_row(
            "collected: engine / baseline (same day)",
            f"${self.collected_cents / 100:,.0f} / ${self.baseline_collected_cents / 100:,.0f}",
        )
        table.add_row("elapsed", f"{time.monotonic() - self.started:.0f} s")
        return table


async def _stream_practice(
    config: DemoConfig,
    bootstrap: str,
    settings: StreamSettings,
    metrics_url: str,
    baseline: PolicyRun,
    live: _Live,
    refresh: Callable[[], None],
) -> EngineRun:
    """Stream the simulated practice through the running worker, day by day, with the reference sender
    playing the patients' side, and tally the engine's world and outputs; ``refresh`` redraws the live
    view, which shows the ``baseline`` run's collections beside the engine's."""
    practice = Practice(seed=config.seed, patients=config.patients, days=config.days)
    steps, zone = _DaySteps(practice), config.scan_zone
    clock = SimulatedClock(practice.start)
    transport = SimulatorTransport(practice)
    sender = ReferenceSender(transport, clock)
    world, engine = WorldTally(), EngineTally()
    audit: list[dict[str, Any]] = []
    versions: Counter[str] = Counter()
    read_counts: Counter[str] = Counter()
    collected: list[int] = []
    events_topic, outcomes_topic = settings.topic("events"), settings.topic("outcomes")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all")
    reader = _OutputReader(bootstrap, settings)
    streamed = outcomes = 0
    phases: dict[str, float] = dict.fromkeys(("produce", "engine", "read", "outcomes"), 0.0)

    def take(records: list[tuple[str, dict[str, Any]]]) -> None:
        for route, value in records:
            read_counts[route] += 1
            engine.observe(route, value)
            if route == "actions":
                sender.offer(value)
            elif route == "audit":
                audit.append(value)
                sender.offer_audit(value)
            if route in ("actions", "review"):
                versions[str((value.get("explanation") or {}).get("policy_version"))] += 1

    def show() -> None:
        """The live view's counts as they stand now."""
        live.streamed = streamed
        live.released, live.held = engine.released_total, engine.held_total
        live.dead = sum(engine.dead_letters.values())
        live.delivered, live.pending = sender.stats["delivered"], sender.pending
        live.expired, live.cancelled = sender.stats["expired"], sender.stats["cancelled"]
        refresh()

    scans_topic = settings.topic(SCAN_TOPIC)
    committed = _Committed(bootstrap, settings.app_id, [events_topic, outcomes_topic, scans_topic], reader)
    try:
        await producer.start()
        await reader.start()
        await committed.start()
        async with httpx.AsyncClient() as client:
            pacer = _Pacer(client, metrics_url, config.process_timeout_s, committed)
            for _ in range(config.days):
                batch = steps.next_day()
                for day, run in _by_scan_day(batch, zone):
                    futures = []
                    for event in run:
                        world.observe(event)
                        futures.append(
                            await producer.send(
                                events_topic,
                                key=event["data"]["account_id"].encode(),
                                value=json.dumps(event).encode(),
                            )
                        )
                    mark = time.monotonic()
                    await asyncio.gather(*futures)
                    streamed += len(run)
                    phases["produce"] += time.monotonic() - mark
                    mark = time.monotonic()
                    # Once the events reach a scan day, the worker's timer asks for its scans: they are
                    # that day's work too, and must be done before the next day's events move the models.
                    await pacer.wait(streamed + outcomes, start_of_day(day, zone))
                    phases["engine"] += time.monotonic() - mark
                mark = time.monotonic()
                take(await reader.read())
                phases["read"] += time.monotonic() - mark
                clock.advance_to(steps.now)
                sent = sender.pump()
                futures = []
                for outcome in sent:
                    key, value = outcome_record(outcome)
                    futures.append(await producer.send(outcomes_topic, key=key, value=value))
                await asyncio.gather(*futures)
                outcomes += len(sent)
                if sent:  # decided before the next day's events, which they precede
                    mark = time.monotonic()
                    await pacer.wait(streamed + outcomes)
                    phases["outcomes"] += time.monotonic() - mark
                collected.append(int(practice.totals["collected_cents"]))
                live.day, live.date = steps.day, (steps.now - timedelta(seconds=1)).date().isoformat()
                live.collected_cents = collected[-1]
                live.baseline_collected_cents = baseline.collected_by_day[steps.day - 1]
                show()
            await pacer.wait(streamed + outcomes)
            take(await reader.read(idle_s=1.5))
            show()  # the last frame counts the outputs read after the last day too
            metrics = await _scrape(client, metrics_url)
    finally:
        await committed.stop()
        await reader.stop()
        await producer.stop()
    problem = verify_chain(audit)
    chain = "intact" if problem is None else f"broken at {problem.audit_id} ({problem.reason})"
    summary = practice.summary()
    if os.environ.get("BILLWISE_DEMO_TIMING"):
        stalls = [round(x, 1) for x in pacer.stalls]
        print({**{k: round(v, 2) for k, v in phases.items()}, "scrapes": pacer.scrapes, "stalls": stalls})
    world_run = PolicyRun(
        outcome_kpis(summary, world, config.days),
        world,
        summary,
        collected,
        Counter({kind: n for (kind, _), n in engine.released.items()}),
    )
    return EngineRun(
        world=world_run,
        engine=engine,
        sender=sender,
        transport=transport,
        events_streamed=streamed,
        outcomes_written=outcomes,
        audit_chain=chain,
        worker_metrics=metrics,
        policy_versions=versions,
        records_read=dict(read_counts),
        uncounted=pacer.uncounted,
    )


class _Pacer:
    """Waits until the worker has taken a number of input records, scraping ``/metrics`` sparingly.

    The worker serves ``/metrics`` on the loop that decides, so polling it hard slows the engine down:
    the pacer learns the worker's time per record and sleeps most of the expected time before it asks.
    The worker counts an input record once its outputs are acknowledged by the broker, so what the
    demo reads next includes them. If the counter stops short of the records sent (a worker that lost
    count), the worker's committed offsets settle it (Faust flushes its producer before it commits, so
    once every input record is committed, its outputs are on the broker), or else ``STALL_S`` without
    any progress does. Records settled that way are reported (``uncounted``).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        timeout_s: float,
        committed: Callable[[], Awaitable[bool]],
    ) -> None:
        self.client, self.url, self.timeout_s = client, url, timeout_s
        self.committed = committed
        self.per_record_s = 0.002
        self.done = 0
        self.uncounted = 0
        self.scrapes = 0
        self.stalls: list[float] = []

    async def wait(self, sent: int, scan_day: datetime | None = None) -> None:
        """Until the worker is done with the ``sent`` records the demo wrote so far and with the scan
        requests its timer sent itself; with ``scan_day`` (a scan day's start), also until its timer has
        asked for that day's scans."""
        started = time.monotonic()
        todo = max(0, sent - self.done)
        await asyncio.sleep(min(0.8 * todo * self.per_record_s, 5.0))
        last_activity, last_change, last_check = -1, time.monotonic(), 0.0
        while True:
            self.scrapes += 1
            samples = await _scrape(self.client, self.url)
            done = _processed(samples) + self.uncounted
            target = sent + _processed(samples, REQUESTED_METRICS)
            day_requested = samples.get(SCAN_DAY_METRIC, {}).get("", 0.0)
            requested = scan_day is None or day_requested >= scan_day.timestamp()
            now = time.monotonic()
            if done >= target and requested:
                break
            activity = _processed(samples, ACTIVITY_METRICS)
            if activity != last_activity:
                last_activity, last_change = activity, now
            elif now - last_change > STALL_S:
                # Idle this long short of the target: the worker will not count the rest.
                self.uncounted += max(0, target - done)
                self.stalls.append(now - last_change)
                break
            elif requested and now - last_change > SETTLED_S and now - last_check > 0.5:
                last_check = now
                if await self.committed():
                    self.uncounted += max(0, target - done)
                    self.stalls.append(-(now - last_change))
                    break
            if now - started > self.timeout_s:
                raise TimeoutError(f"the worker took {done} of {target} records in {self.timeout_s:.0f} s")
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        if todo >= 20:
            self.per_record_s = 0.7 * self.per_record_s + 0.3 * elapsed / todo
        self.done = max(self.done, sent)


class _Committed:
    """Whether the worker's consumer group has committed every record on the topics the demo writes."""

    def __init__(self, bootstrap: str, group_id: str, topics: list[str], reader: _OutputReader) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.group_id, self.topics, self.reader = group_id, topics, reader
        self.partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self.admin.start()
        described = await self.admin.describe_topics(self.topics)
        self.partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]

    async def stop(self) -> None:
        await self.admin.close()

    async def __call__(self) -> bool:
        offsets = await self.admin.list_consumer_group_offsets(self.group_id, partitions=self.partitions)
        ends = await self.reader.consumer.end_offsets(self.partitions)
        for tp, end in ends.items():
            committed = offsets.get(tp)
            if end and (committed is None or committed.offset < end):
                return False
        return True


# -- the broker and the worker ---------------------------------------------------------------------


BROKER_NAMES = {
    BrokerEngine.TANSU: "embedded Tansu (memory-only)",
    BrokerEngine.APACHE: "local Apache Kafka 4 (KRaft)",
}


@contextlib.contextmanager
def _bootstrap(
    console: Console, data_dir: Path, engine: BrokerEngine = BrokerEngine.TANSU
) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, broker name): the configured cluster if the environment names one, else a
    local broker (Tansu, or Apache Kafka)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external, "external (KAFKA_BOOTSTRAP_SERVERS)"
        return
    name = BROKER_NAMES.get(engine, str(engine))
    with console.status(f"starting the {name} broker"):
        broker = start_broker(engine, free_port(), data_dir=data_dir / "broker")
    try:
        yield broker.bootstrap_servers, name
    finally:
        broker.stop()


def _demo_settings(bootstrap: str, external: bool) -> tuple[StreamSettings, dict[str, str]]:
    """Settings for this run; on an external cluster, topics and app id of its own."""
    base = StreamSettings()
    prefix, app_id = base.topic_prefix, base.app_id
    if external:
        run = uuid.uuid4().hex[:8]
        prefix, app_id = f"{base.topic_prefix}-demo-{run}", f"{base.app_id}-demo-{run}"
    settings = StreamSettings(
        kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, app_id=app_id, partitions=PARTITIONS
    )
    env = {
        "BILLWISE_TOPIC_PREFIX": prefix,
        "BILLWISE_APP_ID": app_id,
        "BILLWISE_PARTITIONS": str(PARTITIONS),
        "BILLWISE_STORE": "memory://",
        # The simulated practice lives in its own past: the daily scans follow its days, several a second.
        "BILLWISE_SCAN_CLOCK": "events",
        "BILLWISE_SCAN_INTERVAL_S": "0.05",
        # Tansu holds a fetch for its whole wait even when records arrive: a day's events, the timer's
        # scan requests and the sender's outcomes would each wait up to Faust's 1.5 s.
        "BILLWISE_CONSUMER_FETCH_WAIT_MS": str(TANSU_FETCH_WAIT_MS),
    }
    return settings, env


def run_demo(
    patients: int = DEFAULT_PATIENTS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    report: Path | None = DEFAULT_REPORT,
    *,
    broker: BrokerEngine = BrokerEngine.TANSU,
    events: Path | None = None,
    console: Console | None = None,
) -> int:
    """Run the demo; returns the exit code (0 when the run completed, actions were decided and the audit
    chain holds). ``broker``: the local broker to start when ``KAFKA_BOOTSTRAP_SERVERS`` is unset (Apache
    Kafka answers a consumer as soon as records arrive, Tansu after a fetch wait of up to ~0.75 s, which
    the demo pays once per simulated day). ``events``: stream that file of canonical events instead (no
    simulation, no KPIs)."""
    console = console or Console()
    if events is not None:
        return run_sample(events, console)
    if patients < 1 or days < 1:
        raise ValueError("patients and days must be at least 1")
    config = DemoConfig(patients=patients, days=days, seed=seed, report=report)
    from streams.report import build_report, print_report, write_html

    started = time.monotonic()
    console.print(
        f"[bold]Billwise demo[/]: a [bold]simulated[/] practice of {patients:,} patients over {days} days "
        f"(seed {seed}); no real patient data."
    )
    with console.status("running the fixed-cadence baseline on the same practice (offline)"):
        baseline_started = time.monotonic()
        baseline = run_baseline(seed, patients, days)
        baseline_s = time.monotonic() - baseline_started
    console.print(
        f"baseline done in {baseline_s:.1f} s: {baseline.tally.events:,} events, "
        f"{sum(baseline.actions_sent.values()):,} reminder letters"
    )
    with tempfile.TemporaryDirectory(prefix="billwise-demo-") as scratch:
        data_dir = Path(scratch)
        with _bootstrap(console, data_dir, broker) as (bootstrap, broker_name):
            settings, env = _demo_settings(bootstrap, external="external" in broker_name)
            asyncio.run(ensure_topics(settings))
            web_port = free_port()
            with console.status("starting the worker"):
                worker_started = time.monotonic()
                worker = start_worker(
                    bootstrap,
                    web_port,
                    log_path=data_dir / "worker.log",
                    env={**env, "BILLWISE_DATA_DIR": str(data_dir / "worker")},
                )
                ready_s = time.monotonic() - worker_started
            metrics_url = f"http://127.0.0.1:{web_port}/metrics"
            console.print(
                f"broker: {broker_name} at {bootstrap}; topics {settings.topic('*')}\n"
                f"worker ready in {ready_s:.1f} s; metrics at [link={metrics_url}]{metrics_url}[/link] "
                "(while the demo runs)"
            )
            live = _Live(days=days, date=DEFAULT_START.date().isoformat())
            with worker, Live(live.render(), console=console, refresh_per_second=4) as view:
                run = _run_engine(config, bootstrap, settings, metrics_url, baseline, live, view, worker)
            console.line()
    wall_s = time.monotonic() - started
    data = build_report(
        config=config,
        baseline=baseline,
        engine_run=run,
        broker=broker_name,
        prefix=settings.topic_prefix,
        metrics_url=metrics_url,
        wall_s=wall_s,
        worker_ready_s=ready_s,
    )
    print_report(console, data)
    if report is not None:
        path = write_html(report, data)
        console.print(f"HTML report: [bold]{path}[/]")
    ok = run.audit_chain == "intact" and run.engine.released_total + run.engine.held_total > 0
    return 0 if ok else 1


def _run_engine(
    config: DemoConfig,
    bootstrap: str,
    settings: StreamSettings,
    metrics_url: str,
    baseline: PolicyRun,
    live: _Live,
    view: Live,
    worker: WorkerProcess,
) -> EngineRun:
    def refresh() -> None:
        view.update(live.render())

    try:
        return asyncio.run(
            _stream_practice(config, bootstrap, settings, metrics_url, baseline, live, refresh)
        )
    except (TimeoutError, httpx.HTTPError) as exc:
        raise RuntimeError(f"{exc}\nworker log:\n{worker.log_tail()}") from exc


# -- the sample file (``--events``) ------------------------------------------------------------------


def run_sample(events_path: Path, console: Console) -> int:
    """Stream a file of canonical events (JSON lines) and print what the engine wrote."""
    lines = events_path.read_bytes().splitlines()
    events: list[dict[str, Any] | bytes] = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append(line)
    with tempfile.TemporaryDirectory(prefix="billwise-demo-") as scratch:
        data_dir = Path(scratch)
        with _bootstrap(console, data_dir) as (bootstrap, broker_name):
            settings, env = _demo_settings(bootstrap, external="external" in broker_name)
            asyncio.run(ensure_topics(settings))
            web_port = free_port()
            with console.status("starting the worker"):
                worker = start_worker(
                    bootstrap,
                    web_port,
                    log_path=data_dir / "worker.log",
                    env={**env, "BILLWISE_DATA_DIR": str(data_dir / "worker")},
                )
            console.print(f"worker ready; metrics at http://127.0.0.1:{web_port}/metrics")
            with worker:
                asyncio.run(produce_events(bootstrap, settings.topic("events"), events))
                console.print(f"streamed {len(events)} events to {settings.topic('events')}")
                with console.status("reading the engine's outputs"):
                    topics = [settings.topic(name) for name in OUTPUT_ROUTES]
                    records = asyncio.run(read_topics(bootstrap, topics, idle_timeout_s=4.0))
    return _sample_report(console, settings, records)


def _sample_report(console: Console, settings: StreamSettings, records: list[Record]) -> int:
    by_topic: dict[str, list[Record]] = {}
    for record in records:
        by_topic.setdefault(record.topic, []).append(record)
    table = Table(title="Actions (actions and review topics)")
    for column in ("topic", "account", "kind", "channel", "not before (UTC)", "review reasons", "message"):
        table.add_column(column, overflow="fold")
    for name in ("actions", "review"):
        for record in by_topic.get(settings.topic(name), []):
            action = record.value
            message = " ".join((action.get("message") or {}).get("body", "").split())
            table.add_row(
                name,
                record.key or "",
                action["kind"],
                action["channel"],
                action["not_before"],
                ", ".join(action["review"]["reasons"]),
                message[:90] + ("…" if len(message) > 90 else ""),
            )
    console.print(table)
    audit = [record.value for record in by_topic.get(settings.topic("audit"), [])]
    for record in by_topic.get(settings.topic("dlq"), []):
        error = record.value["error"]
        console.print(f"[yellow]dead letter[/]: {error['type']} at {error.get('path')}: {error['message']}")
    problem = verify_chain(audit)
    chain = "intact" if problem is None else f"BROKEN at {problem.audit_id} ({problem.reason})"
    console.print(f"audit records: {len(audit)}, hash chain {chain}")
    actions = sum(len(by_topic.get(settings.topic(name), [])) for name in ("actions", "review"))
    return 0 if problem is None and actions > 0 else 1
