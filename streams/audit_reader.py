"""``billwise audit verify``: read the audit topic and re-check every account's hash chain."""

from __future__ import annotations

from schemas.audit import ChainBreak, verify_chain
from streams.kafka_io import read_topics
from streams.settings import StreamSettings


async def verify_topic(
    settings: StreamSettings | None = None, idle_timeout_s: float = 5.0
) -> tuple[ChainBreak | None, int]:
    """The first break in the audit topic's chains (or ``None``) and the number of records read."""
    settings = settings or StreamSettings()
    records = await read_topics(
        settings.kafka_bootstrap_servers, [settings.topic("audit")], idle_timeout_s=idle_timeout_s
    )
    return verify_chain(record.value for record in records), len(records)
