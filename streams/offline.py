"""The decision core over a file of canonical events, without Kafka (``billwise decide``).

Each line goes through the same `streams.ingest.ingest` as a record on ``billing.events`` would, with
the line number as its offset, so offline runs show exactly what the stream would write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from rules.decide import Output
from rules.policy import Policy
from streams.ingest import InputRecord, ingest

OFFLINE_TOPIC = "billing.events"


def _account_key(line: bytes) -> bytes | None:
    """The key a producer would have used: the event's ``data.account_id`` (Kafka keys every topic by it)."""
    try:
        account_id = json.loads(line)["data"]["account_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return account_id.encode() if isinstance(account_id, str) else None


def decide_lines(lines: Iterable[bytes], policy: Policy, topic: str = OFFLINE_TOPIC) -> Iterator[Output]:
    """Every output of the decision core for ``lines`` (JSON lines), in order."""
    states: dict[str, bytes] = {}
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        key = _account_key(line)
        record = InputRecord(
            topic=topic,
            partition=0,
            offset=offset,
            key=key,
            value=line.rstrip(b"\r\n"),
            received_at=datetime.now(UTC),
        )
        result = ingest(record, states.get(key.decode()) if key else None, policy)
        if result.state is not None:
            states[result.state.account_id] = result.state.model_dump_json().encode()
        yield from result.outputs
