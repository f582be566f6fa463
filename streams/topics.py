"""The contract's topics, created up front with the configured partition count.

Faust creates its own internal topics (the table changelog), but a topic that a producer writes to
first would otherwise be auto-created with the broker's default of one partition, and the table's
changelog must have as many partitions as the topic it is built from. So the worker (and the demo,
the benchmark and the tests, before producing) create every contract topic explicitly.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.commands import ACCESS_TOPIC, SCAN_TOPIC
from streams.kafka_security import kafka_client_kwargs
from streams.platform_ingress import PLATFORM_TOPICS
from streams.settings import StreamSettings

CONTRACT_TOPICS = ("events", "outcomes", "review.decisions", "actions", "review", "audit", "dlq")
INTERNAL_TOPICS = (ACCESS_TOPIC, SCAN_TOPIC)
ENGINE_TOPICS = (*CONTRACT_TOPICS, *PLATFORM_TOPICS, *INTERNAL_TOPICS)
"""Every topic a worker reads or writes, after the prefix."""


async def ensure_topics(settings: StreamSettings, names: tuple[str, ...] = ENGINE_TOPICS) -> list[str]:
    """Create the missing contract topics; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **kafka_client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [settings.topic(name) for name in names if settings.topic(name) not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(name, num_partitions=settings.partitions, replication_factor=1) for name in missing]
            )
        return missing
    finally:
        await admin.close()
