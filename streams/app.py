"""The Faust application: topics, the account table, the ingest agent and the web views.

Agents stay thin: they move bytes between Kafka, the table and `streams.ingest`, which calls the
pure decision core. All topics are keyed by ``account_id``, so one worker owns an account's events,
state and outputs, and more workers scale out by partition.

Delivery: at-least-once with idempotent outputs. The agent runs with ``concurrency=1`` (faust #606:
concurrency > 1 can commit past an in-flight message); a redelivered event is recognised by its
``source`` and ``id`` in the account state and changes nothing; action ids are deterministic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rules.policy import Policy, load_policy
from streams.ingest import InputRecord, ingest
from streams.lag import install_lag_metrics
from streams.platform_ingress import install_platform_ingress
from streams.settings import StreamSettings
from streams.web import install_web

OUTPUT_TOPICS = ("actions", "review", "audit", "dlq")


def raw_schema() -> faust.Schema:
    """Bytes in, bytes out: JSON is validated by the contract models, not by Faust codecs.

    A new object each time: Faust updates a schema in place with a table's or topic's own defaults.
    """
    return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def faust_settings(settings: StreamSettings) -> dict[str, Any]:
    """Faust settings tuned so a worker is ready in seconds and keeps PHI off the web server."""
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
        "stream_buffer_maxsize": 16384,
    }


class Engine:
    """One worker's engine: the Faust app and the objects its agents use."""

    def __init__(self, settings: StreamSettings | None = None, policy: Policy | None = None) -> None:
        self.settings = settings or StreamSettings()
        self.policy = policy or load_policy(self.settings.policy)
        self.app = faust.App(self.settings.app_id, **faust_settings(self.settings))
        self.events_topic = self._topic("events")
        self.outputs = {name: self._topic(name) for name in OUTPUT_TOPICS}
        self.accounts = self.app.Table(
            "accounts",
            default=None,
            # bytes in and out: Faust picks its store serializer from these types, not from a schema.
            key_type=bytes,
            value_type=bytes,
            partitions=self.settings.partitions,
            help="AccountState JSON by account_id",
        )
        self.app.agent(self.events_topic, name="ingest", concurrency=1)(self._ingest)
        install_lag_metrics(self.app, {"accounts": self.accounts})
        self.app.page("/health")(self._health_view())
        self.app.page("/metrics")(_MetricsView)
        install_web(self)
        install_platform_ingress(self)

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(
            self.settings.topic(name), schema=raw_schema(), partitions=self.settings.partitions
        )

    async def _ingest(self, stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            message = event.message
            record = InputRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                received_at=datetime.now(UTC),
            )
            blob = self.accounts.get(message.key) if message.key else None
            result = ingest(record, blob, self.policy)
            if result.state is not None:
                # Keyed by the message key's bytes, so the table partition matches the topic partition.
                self.accounts[result.state.account_id.encode()] = result.state.model_dump_json().encode()
            for output in result.outputs:
                await self.outputs[output.topic].send(
                    key=output.key.encode(), value=output.value.model_dump_json().encode()
                )
            yield None

    def _health_view(self) -> type[View]:
        app = self.app

        class HealthView(View):
            async def get(self, request: Request) -> Response:
                assigned = len(app.consumer.assignment()) if app.consumer else 0
                ready = not app.rebalancing and assigned > 0
                body = {"status": "ok", "ready": ready, "assigned_partitions": assigned}
                return self.json(body, status=200 if ready else 503)

        return HealthView


class _MetricsView(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def create_app(settings: StreamSettings | None = None) -> faust.App:
    """A configured Faust app for ``settings`` (or the environment)."""
    return Engine(settings).app
