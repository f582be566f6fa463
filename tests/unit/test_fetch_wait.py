"""The worker's fetch wait (`streams.app.set_fetch_wait`): Faust hard-codes 1,500 ms, the demo needs 50."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

import streams.app as app_module
from streams.app import set_fetch_wait


def test_the_consumer_faust_creates_gets_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[Any] = []

    def faust_creates(thread: Any, transport: Any) -> Any:
        consumer = type("Consumer", (), {"_fetch_max_wait_ms": 1500})()
        created.append(consumer)
        return consumer

    monkeypatch.setattr(app_module, "_original_create_worker_consumer", faust_creates)
    monkeypatch.setattr(AIOKafkaConsumerThread, "_create_worker_consumer", faust_creates)
    set_fetch_wait(50)
    consumer = AIOKafkaConsumerThread._create_worker_consumer(None, None)  # type: ignore[arg-type]
    assert consumer is created[0] and consumer._fetch_max_wait_ms == 50
    set_fetch_wait(20)  # again: wraps Faust's own creation, not the previous wrapper
    assert AIOKafkaConsumerThread._create_worker_consumer(None, None)._fetch_max_wait_ms == 20  # type: ignore[arg-type]


def test_aiokafka_starts_its_fetcher_with_the_attribute_the_wait_sets() -> None:
    """The attribute is aiokafka's own: this fails if a new aiokafka stops reading it."""

    async def created() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=123)

    consumer = asyncio.run(created())
    assert consumer._fetch_max_wait_ms == 123
    source = AIOKafkaConsumer.start.__code__.co_names
    assert "_fetch_max_wait_ms" in source
