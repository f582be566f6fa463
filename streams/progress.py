"""A consumer group's committed position on a topic against the topic's end offsets.

What "the worker has finished with these records" means from outside the worker: its group has
committed past them (the ingest agent's offsets are committed only after a batch's outputs and states
are written). The fault tests wait on it, and so does ``billwise bench`` before its latency run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class Progress:
    committed: int
    """Sum over the topic's partitions of the group's committed offsets."""
    end: int
    """Sum of the partitions' end offsets (records produced so far)."""

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)

    @property
    def done(self) -> bool:
        return self.end > 0 and self.committed >= self.end


async def _progress(bootstrap: str, group: str, topic: str) -> Progress:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions)
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
        committed = sum(max(0, meta.offset) for tp, meta in offsets.items() if tp.topic == topic)
        return Progress(committed=committed, end=sum(ends.values()))
    finally:
        await consumer.stop()
        await admin.close()


def progress(bootstrap: str, group: str, topic: str) -> Progress:
    """The consumer group's committed position on ``topic`` against its end offsets."""
    return asyncio.run(_progress(bootstrap, group, topic))
