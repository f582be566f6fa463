"""Small aiokafka helpers shared by the demo, the audit reader, the benchmark and the tests.

Producing keys every record by ``account_id`` (the contract's message key); reading drains topics
from the beginning without joining a consumer group, so it never disturbs the engine's offsets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_security import kafka_client_kwargs


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any]


async def produce_events(bootstrap: str, topic: str, events: Iterable[dict[str, Any] | bytes]) -> int:
    """Send canonical events keyed by ``data.account_id``; raw bytes are sent as they are, unkeyed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_client_kwargs(), linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        futures = []
        for event in events:
            if isinstance(event, bytes):
                futures.append(await producer.send(topic, value=event))
            else:
                key = str(event["data"]["account_id"]).encode()
                futures.append(await producer.send(topic, key=key, value=json.dumps(event).encode()))
            sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def read_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    until: int | None = None,
    idle_timeout_s: float = 3.0,
    overall_timeout_s: float = 120.0,
) -> list[Record]:
    """Every record on ``topics`` from the start, in partition order.

    Stops when ``until`` records have been read, or after ``idle_timeout_s`` without a new record
    once the current end offsets have been reached, or after ``overall_timeout_s``.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **kafka_client_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[Record] = []
    try:
        partitions = await _partitions(bootstrap, list(topics))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = last_seen = time.monotonic()
        while time.monotonic() - started < overall_timeout_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batch.values():
                for message in messages:
                    key = message.key.decode() if message.key else None
                    records.append(
                        Record(
                            message.topic, message.partition, message.offset, key, json.loads(message.value)
                        )
                    )
            if batch:
                last_seen = time.monotonic()
            if until is not None and len(records) >= until:
                break
            if until is None and time.monotonic() - last_seen > idle_timeout_s:
                break
    finally:
        await consumer.stop()
    return records


async def _partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """The partitions of ``topics``; a topic that does not exist yet is waited for briefly."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_client_kwargs())
    await admin.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            described = await admin.describe_topics(topics)
            found = [
                TopicPartition(topic["topic"], partition["partition"])
                for topic in described
                if topic["error_code"] == 0
                for partition in topic["partitions"]
            ]
            if {tp.topic for tp in found} == set(topics) or time.monotonic() > deadline:
                return sorted(found)
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
