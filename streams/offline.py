"""The decision core over a file of canonical events, without Kafka (``billwise decide``).

Each line goes through the same `streams.ingest.Processor` as a record on ``billing.events`` would,
in batches as the worker takes them, with the line number as its offset: offline runs show exactly
what the stream would write, drafts included (`VLLM_BASE_URL` set: the model with its fallback;
unset: the approved templates).

The worker's daily-scan timer has an offline counterpart: when an event moves the events' clock past a
scan-day boundary, `ScanRequest` records at that event's time name every account seen so far, once the
event is decided (as the timer follows the events the worker has decided), so accounts without events
of their own are scanned as the worker's timer scans them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from inference.drafting import Drafter
from models.suite import ModelSuite
from rules.decide import scan_day
from rules.outputs import Output
from rules.policy import Policy
from rules.state import AccountState
from streams.commands import SCAN_TOPIC, scan_requests
from streams.ingest import InputRecord, Processor

BATCH_SIZE = 500


@dataclass(frozen=True)
class _Line:
    record: InputRecord
    time: datetime | None
    """The event's ``time``, when the line is an event with a readable one (otherwise it moves no clock)."""


def _peek(line: bytes) -> tuple[bytes | None, datetime | None]:
    """The key a producer would have used (the event's ``data.account_id``: Kafka keys every topic by
    it) and the event's time, when there are such; the Processor judges the rest."""
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None, None
    data = event.get("data") if isinstance(event, dict) else None
    account_id = data.get("account_id") if isinstance(data, dict) else None
    key = account_id.encode() if isinstance(account_id, str) else None
    try:
        time = datetime.fromisoformat(event["time"])
    except (KeyError, TypeError, ValueError):
        return key, None
    return key, time if time.tzinfo is not None else None


def _lines(lines: Iterable[bytes], topic: str) -> Iterator[_Line]:
    for offset, line in enumerate(lines):
        if line.strip():
            value = line.rstrip(b"\r\n")
            key, time = _peek(value)
            yield _Line(InputRecord(topic, 0, offset, key, value, datetime.now(UTC)), time)


async def decide_stream(
    lines: Iterable[bytes],
    policy: Policy,
    *,
    prefix: str = "billing",
    drafter: Drafter | None = None,
    models: ModelSuite | None = None,
    idle_scans: bool = True,
) -> AsyncIterator[Output]:
    """Every output for ``lines`` (JSON lines of canonical events), in order.

    ``idle_scans``: scan every known account when the clock passes a scan day, as the worker's timer
    does (off: an account is scanned only before its own next event).
    """
    processor = Processor(policy, prefix=prefix, drafter=drafter, models=models)
    states: dict[str, AccountState | None] = {}
    batch: list[InputRecord] = []
    clock: date | None = None

    async def decided(records: list[InputRecord]) -> list[Output]:
        processed = await processor.process(records, states)
        states.update(processed.states)
        return processed.outputs

    for line in _lines(lines, f"{prefix}.events"):
        batch.append(line.record)
        crossed = None
        if line.time is not None:
            day = scan_day(line.time, policy)
            if idle_scans and clock is not None and day > clock:
                crossed = line.time
            clock = day if clock is None else max(clock, day)
        if crossed is not None or len(batch) >= BATCH_SIZE:
            for output in await decided(batch):
                yield output
            batch = []
        if crossed is not None:
            for output in await decided(_scan_requests(states, crossed, f"{prefix}.{SCAN_TOPIC}")):
                yield output
    for output in await decided(batch):
        yield output


def _scan_requests(states: dict[str, AccountState | None], at: datetime, topic: str) -> list[InputRecord]:
    """Scan requests at ``at`` for every account with a state, as the worker's timer sends them (one
    partition here)."""
    accounts = [account_id for account_id, state in states.items() if state is not None]
    return [
        InputRecord(topic, 0, offset, key, value, at)
        for offset, (key, value) in enumerate(scan_requests(accounts, at, partitions=1))
    ]


def decide_lines(
    lines: Iterable[bytes],
    policy: Policy,
    *,
    prefix: str = "billing",
    drafter: Drafter | None = None,
    learning: bool = True,
    idle_scans: bool = True,
) -> list[Output]:
    """`decide_stream` with a freshly started worker's models (their priors; learning as it goes unless
    ``learning`` is off)."""

    async def collect() -> list[Output]:
        models = ModelSuite(monitored=False, learning=learning)
        stream = decide_stream(
            lines, policy, prefix=prefix, drafter=drafter, models=models, idle_scans=idle_scans
        )
        outputs = [output async for output in stream]
        if drafter is not None:
            await drafter.aclose()
        return outputs

    return asyncio.run(collect())
