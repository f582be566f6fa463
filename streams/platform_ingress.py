"""Platform ingress on the worker: adapter agents and the webhook route.

For each platform of `schemas.adapters.PLATFORMS` an agent consumes ``{prefix}.platform.<platform>``
(bytes, written by the webhook route or by a connector/poller) and maps each record with
`schemas.adapters.adapt`: every canonical event goes to ``{prefix}.events`` keyed by its
``data.account_id`` (where the ingest agent decides on it); a record that cannot be mapped goes to
``{prefix}.dlq`` as a contract dead letter naming the offending native field (``error.path``). The
agents never raise on a record, run with ``concurrency=1`` (faust #606) and are made by one factory.

Delivery is at-least-once: Faust flushes the producer before it commits the platform topic's offset,
and a redelivered record yields the same event ids, which the ingest agent applies once.
``received_at`` (the time of events whose native record has none) is the record's Kafka timestamp, so a
replay maps a record to the same events.

`install_platform_ingress` (called from ``Engine.__init__``) adds the agents and mounts
``/webhooks/{platform}`` (`streams.webhooks`) on the worker's web server. `PLATFORM_TOPICS` lists the
topic names after the prefix; the worker must create them (`streams.topics.ensure_topics`) before it
starts, like the contract topics, or the agents are not assigned their partitions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from faust.web import View
from prometheus_client import Counter

from schemas.adapters import PLATFORMS, AdapterError, adapt
from streams.commands import ACCESS_TOPIC
from streams.ingest import InputRecord, dead_letter
from streams.webhooks import ROUTE, WebhookConfig, WebhookIngress

if TYPE_CHECKING:
    from streams.app import Engine

__all__ = ["PLATFORM_TOPICS", "Outgoing", "adapt_record", "install_platform_ingress", "platform_topic"]

log = logging.getLogger(__name__)

ADAPTER_ERROR = "adapter_error"
"""``error.type`` of the dead letters the adapter agents write."""

PLATFORM_EVENTS = Counter(
    "billwise_platform_events_total", "Canonical events mapped from platform payloads", ["platform"]
)


def platform_topic(platform: str) -> str:
    """The topic name after the prefix: ``drchrono`` → ``platform.drchrono``."""
    return f"platform.{platform}"


PLATFORM_TOPICS: tuple[str, ...] = tuple(platform_topic(p) for p in PLATFORMS)
"""``platform.drchrono``, ``platform.tebra``, ... ``platform.x12-835`` (prefix them with the settings)."""


@dataclass(frozen=True)
class Outgoing:
    """One record an adapter agent writes: ``events`` or ``dlq``, the key and the JSON bytes."""

    topic: str
    key: str | None
    value: bytes


def adapt_record(platform: str, record: InputRecord) -> list[Outgoing]:
    """The records to write for one platform record. Never raises."""
    try:
        events = adapt(platform, record.value, received_at=record.received_at)
    except AdapterError as exc:
        return [_dead(record, exc.message, exc.path)]
    except Exception as exc:  # adapt promises AdapterError only; a poison record must not stop the agent
        log.error("adapter %s failed on offset %s: %s", platform, record.offset, type(exc).__name__)
        return [_dead(record, f"the {platform} adapter failed ({type(exc).__name__})", None)]
    PLATFORM_EVENTS.labels(platform=platform).inc(len(events))
    return [
        Outgoing("events", event.account_id, event.model_dump_json(exclude_none=True).encode())
        for event in events
    ]


def _dead(record: InputRecord, message: str, path: str | None) -> Outgoing:
    output = dead_letter(record, ADAPTER_ERROR, message, path)
    return Outgoing("dlq", output.key or None, output.value.model_dump_json().encode())


def _received_at(timestamp: float | None) -> datetime:
    """The record's Kafka timestamp (seconds), else now."""
    if timestamp:
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)


def _raw_topic(engine: Engine, name: str) -> faust.TopicT:
    schema: faust.Schema = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    return engine.app.topic(engine.settings.topic(name), schema=schema, partitions=engine.settings.partitions)


def _adapter_agent(engine: Engine, platform: str) -> Callable[[faust.StreamT[bytes]], AsyncIterator[None]]:
    targets = {"events": engine.events_topic, "dlq": engine.outputs["dlq"]}

    async def agent(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            record = InputRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value if isinstance(message.value, bytes) else b"",
                received_at=_received_at(message.timestamp),
            )
            for out in adapt_record(platform, record):
                await targets[out.topic].send(key=out.key.encode() if out.key else None, value=out.value)
            yield None

    agent.__name__ = agent.__qualname__ = f"adapt_{platform.replace('-', '_')}"
    return agent


def install_platform_ingress(engine: Engine) -> WebhookIngress:
    """Add the adapter agents and mount ``/webhooks/{platform}`` on ``engine``'s app."""
    app = engine.app
    topics = {platform: _raw_topic(engine, platform_topic(platform)) for platform in PLATFORMS}
    for platform, topic in topics.items():
        name = f"adapt_{platform.replace('-', '_')}"
        app.agent(topic, name=name, concurrency=1)(_adapter_agent(engine, platform))
    access = _raw_topic(engine, ACCESS_TOPIC)
    by_name = {topic.get_topic_name(): topic for topic in (*topics.values(), access)}

    async def publish(topic_name: str, key: bytes | None, value: bytes) -> None:
        # ``send`` queues the record; the future it returns resolves on the broker's acknowledgement.
        pending = await by_name[topic_name].send(key=key, value=value)
        await pending

    ingress = WebhookIngress(
        config=WebhookConfig.from_env(PLATFORMS),
        platform_topics={p: t.get_topic_name() for p, t in topics.items()},
        access_topic=access.get_topic_name(),
        publish=publish,
    )

    class WebhookView(View):
        async def get(self, request: Any, **match_info: Any) -> Any:
            return await ingress.handle(request)

        async def post(self, request: Any, **match_info: Any) -> Any:
            return await ingress.handle(request)

    app.page(ROUTE, name="webhooks")(WebhookView)

    async def declare_topics() -> None:
        # Only a fallback: create the platform topics up front (`PLATFORM_TOPICS` in ``ensure_topics``).
        # A consumer that subscribed before a topic existed is not assigned it until its next metadata
        # refresh, and a broker that auto-creates topics uses its default partition count.
        for topic in by_name.values():
            try:
                await topic.maybe_declare()
            except Exception as exc:
                log.warning("could not declare %s: %s", topic.get_topic_name(), type(exc).__name__)

    app.task(declare_topics)
    return ingress
