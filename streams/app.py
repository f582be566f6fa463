"""The Faust application: topics, the account table, the ingest agent and the web views.

Agents stay thin: they move bytes between Kafka, the table and `streams.ingest`, which calls the
pure decision core. All topics are keyed by ``account_id``, so one worker owns an account's events,
state and outputs, and more workers scale out by partition.

Delivery: at-least-once with idempotent outputs. The agent runs with ``concurrency=1`` (faust #606:
concurrency > 1 can commit past an in-flight message); a redelivered event is recognised by its
``source`` and ``id`` in the account state and changes nothing; action ids are deterministic.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.streams import Stream, _current_event
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from inference.drafting import Drafter
from models.suite import ModelSuite
from rules.decide import scan_day, scan_due
from rules.outputs import Output
from rules.policy import Policy, load_policy
from rules.schedule import start_of_day
from rules.state import AccountState
from streams import metrics
from streams.commands import SCAN_TOPIC, scan_requests
from streams.ingest import INPUT_TOPICS, InputRecord, Processor
from streams.kafka_security import faust_security_settings
from streams.lag import install_lag_metrics
from streams.logging_config import logging_dict_config
from streams.parsed_states import ParsedStates
from streams.platform_ingress import install_platform_ingress
from streams.settings import StreamSettings
from streams.web import install_web

OUTPUT_TOPICS = ("actions", "review", "audit", "dlq")
BATCH_SIZE = 500
BATCH_WITHIN_S = 0.05
"""A batch closes at 500 records or after 50 ms: drafts of a batch are made concurrently."""
CHECKPOINT_INTERVAL_S = 60.0
SCAN_PASS_YIELD_EVERY = 200
"""The scan timer lets the event loop run (heartbeats, the agent) after this many accounts."""
DELIVERY_RETRY_FIRST_S = 0.5
DELIVERY_RETRY_MAX_S = 10.0

log = logging.getLogger(__name__)


def raw_schema() -> faust.Schema:
    """Bytes in, bytes out: JSON is validated by the contract models, not by Faust codecs.

    A new object each time: Faust updates a schema in place with a table's or topic's own defaults.
    Empty values (tombstones) still make events: an empty input is dead-lettered like any other.
    """
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", allow_empty=True
    )


def table_options(settings: StreamSettings) -> dict[str, Any]:
    """Memory bounds for the account table's RocksDB databases (one per partition); none for memory://.

    Faust's defaults are sized for a machine of its own: a 64 MiB memtable (three of them) and a 2 GiB
    block cache per partition, so a worker's resident memory climbs for as long as it writes, by up to
    hundreds of MiB with 8 partitions, before any memtable is flushed. Account states are small (a few
    KiB), so small memtables flush often and cost nothing noticeable.
    """
    if not settings.store.startswith("rocksdb"):
        return {}
    mib = 1024 * 1024
    return {
        "options": {
            "write_buffer_size": settings.rocksdb_write_buffer_mib * mib,
            "max_write_buffer_number": 2,
            "block_cache_size": settings.rocksdb_block_cache_mib * mib,
        }
    }


def faust_settings(settings: StreamSettings) -> dict[str, Any]:
    """Faust settings tuned so a worker is ready in seconds and keeps PHI off the web server.

    The producer buffers ``BILLWISE_PRODUCER_BATCH_KIB`` (256) per partition. aiokafka's default of 16
    KiB holds about ten of the worker's outputs (1.7 KB on average) or two account states on the
    table's changelog (6.2 KB), and `send` waits for a full batch to drain: over the benchmark's 20,000
    events, sending took 2.5 s of the worker's 30 s (137 µs an output) and the broker's CPU 7-9 s. At
    256 KiB: 0.2 s sending, broker 3-5 s, one worker 687 to 859 events/s (two alternating pairs; 64 KiB
    and 1 MB gave the same within noise).
    """
    return {
        "broker": settings.broker_url,
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "web_port": settings.web_port,
        "web_bind": settings.web_bind,
        # Faust's own /table and router views would serve account data without authentication.
        "web_tables_enabled": False,
        "web_router_enabled": False,
        # Join fast: Tansu's coordinator completes a join after about half the session timeout, so use
        # the smallest session Apache Kafka accepts by default (group.min.session.timeout.ms = 6 s).
        "broker_rebalance_timeout": 5.0,
        "broker_session_timeout": 6.0,
        "broker_heartbeat_interval": 1.0,
        "broker_commit_interval": 1.0,
        "table_standby_replicas": 0,
        "producer_linger": 0.005,
        "producer_max_batch_size": settings.producer_batch_kib * 1024,
        "stream_buffer_maxsize": 16384,
        **faust_security_settings(),  # TLS and SASL from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*
    }


_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer


def set_fetch_wait(milliseconds: int | None) -> None:
    """Let the broker hold this process's Faust consumers' fetches at most ``milliseconds`` (``None``:
    leave the wait as it is, Faust's own unless set before).

    Faust creates its consumer with ``fetch_max_wait_ms=1500`` and no setting to change it. Apache Kafka
    answers a fetch as soon as records arrive, so the wait costs nothing there; Tansu answers only when
    the wait is up, so every record that arrives while the worker waits sat there up to 1.5 s (the
    demo paid that two or three times a simulated day). aiokafka reads the attribute when the consumer
    starts, after Faust created it.
    """
    if milliseconds is None:
        return
    create = _original_create_worker_consumer

    def create_with_wait(thread: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = create(thread, transport)
        consumer._fetch_max_wait_ms = milliseconds
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create_with_wait  # type: ignore[method-assign,assignment]


def faust_worker(app: faust.App, **options: Any) -> faust.Worker:
    """A Faust worker for ``app`` that logs as the engine does: JSON lines on stderr at info, with the
    PHI filter (`streams.logging_config`); ``options`` go to `faust.Worker`.

    Always at info, never warning: at warning and above Faust's worker sets the root logger to DEBUG
    for its start-up spinner and leaves it there, so every debug call in Faust, mode and aiokafka then
    builds a record and hands it to the handlers. A consume-only agent spent about a tenth of its event
    loop on that (py-spy, issue 8).
    """
    return faust.Worker(app, loglevel="info", logging_config=logging_dict_config("info"), **options)


class Engine:
    """One worker's engine: the Faust app and the objects its agents use."""

    def __init__(self, settings: StreamSettings | None = None, policy: Policy | None = None) -> None:
        self.settings = settings or StreamSettings()
        set_fetch_wait(self.settings.consumer_fetch_wait_ms)
        self.policy = policy or load_policy(self.settings.policy)
        self.app = faust.App(self.settings.app_id, **faust_settings(self.settings))
        self.events_topic = self._topic("events")
        self.scans_topic = self._topic(SCAN_TOPIC)
        self._scans_requested_for: date | None = None
        self._events_clock: datetime | None = None
        self.outputs = {name: self._topic(name) for name in OUTPUT_TOPICS}
        self._output_names = {name: topic.get_topic_name() for name, topic in self.outputs.items()}
        self.accounts = self.app.Table(
            "accounts",
            default=None,
            # bytes in and out: Faust picks its store serializer from these types, not from a schema.
            key_type=bytes,
            value_type=bytes,
            partitions=self.settings.partitions,
            help="AccountState JSON by account_id",
            **table_options(self.settings),
        )
        self.parsed_states = ParsedStates(self.settings.parsed_state_cache_mib * 1024 * 1024)
        self.models = ModelSuite.restore(_read(self.checkpoint_path), learning=self.settings.model_learning)
        self.processor = Processor(
            self.policy,
            prefix=self.settings.topic_prefix,
            drafter=Drafter.from_env(),
            models=self.models,
            partitions=self.settings.partitions,
        )
        inputs = self.app.topic(
            *(self.settings.topic(name) for name in INPUT_TOPICS),
            schema=raw_schema(),
            partitions=self.settings.partitions,
        )
        self.app.agent(inputs, name="ingest", concurrency=1)(self._ingest)
        self.app.timer(CHECKPOINT_INTERVAL_S, on_leader=False)(self._checkpoint)
        if self.settings.scan_clock != "off":
            self.app.timer(self.settings.scan_interval_s, on_leader=False)(self._request_scans)
            self.app.on_rebalance_complete.connect(self._on_rebalance_complete)
        install_lag_metrics(self.app, {"accounts": self.accounts})
        self.app.page("/health")(self._health_view())
        self.app.page("/metrics")(_MetricsView)
        install_web(self)
        install_platform_ingress(self)

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(
            self.settings.topic(name), schema=raw_schema(), partitions=self.settings.partitions
        )

    @property
    def checkpoint_path(self) -> Path:
        return self.settings.data_dir / "models.ckpt"

    async def _ingest(self, channel: faust.StreamT[bytes]) -> AsyncIterator[None]:
        stream = cast(Stream[bytes], channel)  # the agent's stream: take_events is not in the StreamT type
        async for batch in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            states = TableStates(self.accounts, batch, self.parsed_states)
            received_at = datetime.now(UTC)
            records = [
                InputRecord(
                    topic=event.message.topic,
                    partition=event.message.partition,
                    offset=event.message.offset,
                    key=event.message.key,
                    value=event.message.value or b"",
                    received_at=received_at,
                )
                for event in batch
            ]
            processed = await self.processor.process(records, states)
            # Outputs first, acknowledged by the broker; only then the states. A crash in between
            # redelivers the batch: the states still say "not seen", and the same deterministic
            # outputs go out again (senders de-duplicate on action_id). The batch's input offsets are
            # acknowledged only when this body returns, so the delivery must not give up and raise.
            await self._deliver(processed.outputs)
            for account_id, state in processed.states.items():
                states.write(account_id, state, processed.sources[account_id])
            for topic, count in Counter(record.topic for record in records).items():
                metrics.INPUT_RECORDS.labels(topic=topic).inc(count)
            # The timer follows only what is in the table: a pass between the decision and the writes
            # would miss the batch's new accounts and still count the day as done.
            self._events_clock = self.processor.clock
            yield None

    async def _deliver(self, outputs: Sequence[Output]) -> None:
        """Send ``outputs`` and wait for the broker's acknowledgements, retrying while it is away."""
        # Serialised once: a retry sends the same bytes again.
        records = [
            (self._output_names[output.topic], output.key.encode(), output.value.model_dump_json().encode())
            for output in outputs
        ]
        delay = DELIVERY_RETRY_FIRST_S
        while True:
            try:
                # Straight to the producer: Faust's `Topic.send` wraps every record in futures, sensor
                # calls and callbacks that cost more CPU than the record itself (measured: issue 8).
                producer = self.app.producer
                sent = [
                    await producer.send(topic, key, value, partition=None, timestamp=None, headers=None)
                    for topic, key, value in records
                ]
                await asyncio.gather(*sent)
                return
            except (KafkaError, TimeoutError) as exc:
                log.warning("output delivery failed (%s); retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, DELIVERY_RETRY_MAX_S)

    def _scan_clock(self) -> datetime | None:
        if self.settings.scan_clock == "wall":
            return datetime.now(UTC)
        return self._events_clock

    async def _request_scans(self) -> None:
        """The daily scan of idle accounts: once the scan day changes, `ScanRequest` records naming
        every account of this worker's partitions that has not been scanned that day.

        Accounts with events are scanned before their next event anyway; this reaches the ones without
        (a statement nobody answered still needs its reminder). Requests go through the ingest agent, so
        scans and events of one account stay decided by one writer, in order.

        The first pass after a start or a rebalance cannot know whether the day changed since the last
        one: it catches up only accounts scanned before, and leaves accounts never scanned (new today, as
        far as it can tell) to the next change of day, as `billwise decide` does. It also indexes every
        account by person (`streams.persons`), so frequency windows count a person's idle accounts too.
        """
        now = self._scan_clock()
        if now is None or scan_day(now, self.policy) == self._scans_requested_for:
            return
        first_pass = self._scans_requested_for is None
        due: list[str] = []
        for index, key in enumerate(list(self.accounts.keys())):
            if index % SCAN_PASS_YIELD_EVERY == 0:
                await asyncio.sleep(0)
            blob = self.accounts.get(key)
            if not blob:
                continue
            account = _StoredAccount.model_validate_json(blob)
            if first_pass:
                self.processor.persons.add(account.practice_id, account.patient_id, key.decode())
            last_scan_day = account.last_scan_day
            if (last_scan_day is not None or not first_pass) and scan_due(last_scan_day, now, self.policy):
                due.append(key.decode())
        requests = scan_requests(due, now, self.settings.partitions)
        # Counted before they are sent, and the day set after them: whoever sees the day (the demo's
        # pacer) also sees every record it must wait for.
        metrics.SCAN_REQUESTS.inc(len(requests))
        for key, value in requests:
            await self.scans_topic.send(key=key, value=value)
        self._scans_requested_for = scan_day(now, self.policy)
        metrics.SCAN_DAY.set(start_of_day(self._scans_requested_for, self.policy.scan.timezone).timestamp())
        log.info("daily scan: requested for %d accounts", len(due))

    async def _on_rebalance_complete(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Partitions may have moved here: their accounts get a scan pass at the next tick.
        self._scans_requested_for = None

    async def _checkpoint(self) -> None:
        """Save the learned models, so a restarted worker resumes where it was."""
        blob = self.models.checkpoint()
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.checkpoint_path.with_suffix(".tmp")
        partial.write_bytes(blob)
        partial.replace(self.checkpoint_path)

    def _health_view(self) -> type[View]:
        app = self.app

        class HealthView(View):
            async def get(self, request: Request) -> Response:
                assigned = len(app.consumer.assignment()) if app.consumer else 0
                ready = not app.rebalancing and assigned > 0
                body = {"status": "ok", "ready": ready, "assigned_partitions": assigned}
                return self.json(body, status=200 if ready else 503)

        return HealthView


class TableStates:
    """The account table seen as account id → `AccountState` (JSON bytes underneath), for one batch.

    Faust files a table write under the partition of the *current event* (the RocksDB store's
    per-partition database and the changelog partition), which it reads from a context variable. In a
    batch that is only the last event, so each account's state is written with the record that last
    changed it made current: one of the account's own records, or a scan request naming it, both on the
    account's partition.

    Only the context variable is set, and only for the write. ``Stream._set_current_event`` would also
    set the stream's ``current_event`` attribute, which `take_events`'s background buffer reads to pair
    the next record with its event: a value left there made it ack and re-process an old event in
    place of the new one (about 0.3% of records lost or repeated in the demo).
    """

    def __init__(self, table: faust.types.TableT, batch: Sequence[EventT], parsed: ParsedStates) -> None:
        self.table = table
        self.parsed = parsed
        self.events = {(e.message.topic, e.message.partition, e.message.offset): e for e in batch}

    def get(self, account_id: str) -> AccountState | None:
        key = account_id.encode()
        blob = self.table.get(key)
        return self.parsed.parse(key, blob) if blob else None

    def write(self, account_id: str, state: AccountState, source: InputRecord) -> None:
        """Write an account's state under the partition of ``source``, the batch's record it is for."""
        key = account_id.encode()
        event = self.events[(source.topic, source.partition, source.offset)]
        # No public way to say which event a write is for; the token restores this task's context.
        token = _current_event.set(weakref.ref(event))
        try:
            self.table[key] = self.parsed.remember(key, state)
        finally:
            _current_event.reset(token)


class _StoredAccount(BaseModel):
    """The fields of a stored account state the scan timer reads (parsing the rest would cost)."""

    practice_id: str
    patient_id: str
    last_scan_day: date | None = None


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


class _MetricsView(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def create_app(settings: StreamSettings | None = None) -> faust.App:
    """A configured Faust app for ``settings`` (or the environment)."""
    return Engine(settings).app
