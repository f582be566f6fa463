"""The decision core over a file of canonical events, without Kafka (``billwise decide``).

Each line goes through the same `streams.ingest.Processor` as a record on ``billing.events`` would,
in batches as the worker takes them, with the line number as its offset: offline runs show exactly
what the stream would write, drafts included (`VLLM_BASE_URL` set: the model with its fallback;
unset: the approved templates).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice

from inference.drafting import Drafter
from models.suite import ModelSuite
from rules.outputs import Output
from rules.policy import Policy
from rules.state import AccountState
from streams.ingest import InputRecord, Processor

BATCH_SIZE = 500


def _account_key(line: bytes) -> bytes | None:
    """The key a producer would have used: the event's ``data.account_id`` (Kafka keys every topic by it)."""
    try:
        account_id = json.loads(line)["data"]["account_id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return account_id.encode() if isinstance(account_id, str) else None


def _records(lines: Iterable[bytes], topic: str) -> Iterator[InputRecord]:
    for offset, line in enumerate(lines):
        if line.strip():
            value = line.rstrip(b"\r\n")
            yield InputRecord(topic, 0, offset, _account_key(value), value, datetime.now(UTC))


async def decide_stream(
    lines: Iterable[bytes],
    policy: Policy,
    *,
    prefix: str = "billing",
    drafter: Drafter | None = None,
    models: ModelSuite | None = None,
) -> AsyncIterator[Output]:
    """Every output for ``lines`` (JSON lines of canonical events), in order."""
    processor = Processor(policy, prefix=prefix, drafter=drafter, models=models)
    states: dict[str, AccountState | None] = {}
    records = _records(lines, f"{prefix}.events")
    while batch := list(islice(records, BATCH_SIZE)):
        processed = await processor.process(batch, states)
        states.update(processed.states)
        for output in processed.outputs:
            yield output


def decide_lines(
    lines: Iterable[bytes],
    policy: Policy,
    *,
    prefix: str = "billing",
    drafter: Drafter | None = None,
    learning: bool = True,
) -> list[Output]:
    """`decide_stream` with a freshly started worker's models (their priors; learning as it goes unless
    ``learning`` is off)."""

    async def collect() -> list[Output]:
        models = ModelSuite(monitored=False, learning=learning)
        stream = decide_stream(lines, policy, prefix=prefix, drafter=drafter, models=models)
        outputs = [output async for output in stream]
        if drafter is not None:
            await drafter.aclose()
        return outputs

    return asyncio.run(collect())
