"""A reference sender: the small consumer of ``billing.actions`` that a sender service is built around.

The engine decides *what* to say, *to whom*, *on which channel* and *from when*; a sender service
delivers it (an email provider, an SMS gateway, a print-and-mail vendor, a staff work queue) and reports
what happened. This module shows the rules every sender must keep, with the delivery itself and the
clock left pluggable:

1. **Never early.** ``not_before`` already honours quiet hours in the patient's time zone(s) and the
   contact caps; an action is queued until the clock reaches it, never sent before.
2. **Never stale.** An action whose ``expires_at`` has passed, on arrival or while it waited, is dropped
   and reported ``cancelled`` (detail ``expired``).
3. **Once.** Kafka delivers at least once and the engine's ``action_id`` is deterministic, so a
   redelivered action carries the same id: de-duplicate on it (this class remembers a bounded number of
   ids in memory; a production sender keeps them where its delivery records are, e.g. as the
   provider's idempotency key).
4. **Stopped when the engine says so.** While an action waits for its ``not_before``, a payment, a
   dispute or an opt-out can make it wrong; the engine then writes a ``suppressed`` audit record with
   ``details.cancelled = true`` for that ``action_id`` on ``billing.audit``. `ReferenceSender.offer_audit`
   drops the queued action (reported ``cancelled``).
5. **Report.** Every action taken on, or dropped, gets a ``billing.action.outcome`` record on
   ``billing.outcomes`` (`schemas.inputs.ActionOutcome`: ``sent``, ``delivered``, ``failed``, ``bounced``,
   ``opened``, ``clicked``, ``replied`` or ``cancelled``), keyed by ``account_id``.

``platform_update`` actions are write-backs for the practice system's connector, not messages to a
patient: this sender leaves them alone (a connector consumes them). Held actions never reach
``billing.actions`` until a reviewer approves them, so a sender never sees them held.

Plug-ins: a `Transport` delivers one action and says what happened (`LoggingTransport` prints it; the
demo's transport is the patient simulator); a `Clock` says what time it is (`WallClock` in production,
`SimulatedClock` in the demo, which runs six months of event time in minutes).

>>> from datetime import UTC, datetime
>>> clock = SimulatedClock(datetime(2026, 3, 16, 12, 0, tzinfo=UTC))
>>> sender = ReferenceSender(LoggingTransport(print_to=None), clock)
>>> action = {"action_id": "act-1", "account_id": "ACC-1", "kind": "statement_message", "channel": "sms",
...           "not_before": "2026-03-16T14:00:00Z", "expires_at": "2026-03-30T12:00:00Z"}
>>> sender.offer(action), sender.offer(action)
('queued', 'duplicate')
>>> sender.pump()               # 12:00: not before 14:00
[]
>>> clock.advance_to(datetime(2026, 3, 16, 14, 0, tzinfo=UTC))
>>> [(o.action_id, o.status, o.at.isoformat()) for o in sender.pump()]
[('act-1', 'sent', '2026-03-16T14:00:00+00:00')]

Running it against a cluster: `run` (``python -m streams.sender``) consumes ``{prefix}.actions`` and
``{prefix}.audit`` in a consumer group and writes outcomes, with the logging transport and the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TextIO

from schemas.common import utc_text
from schemas.inputs import ActionOutcome

__all__ = [
    "Clock",
    "Delivery",
    "LoggingTransport",
    "ReferenceSender",
    "SimulatedClock",
    "Transport",
    "Verdict",
    "WallClock",
    "run",
]

log = logging.getLogger(__name__)

OutcomeStatus = Literal["sent", "delivered", "failed", "bounced", "opened", "clicked", "replied", "cancelled"]
Verdict = Literal["queued", "duplicate", "expired", "cancelled", "skipped", "invalid"]
"""What `ReferenceSender.offer` did with an action."""

NOT_FOR_SENDERS = frozenset({"platform_update"})
"""Action kinds a patient-facing sender leaves to the practice system's connector."""

DEFAULT_REMEMBERED_IDS = 200_000
"""Action ids remembered for de-duplication (~100 bytes each)."""


class Clock(Protocol):
    """What time it is for the sender (always timezone-aware)."""

    def now(self) -> datetime: ...


class WallClock:
    """The real time, in UTC: what a production sender uses."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that only moves when told to, and only forward (the demo's simulated time)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        """Move the clock to ``moment``; a moment in the past leaves it where it is."""
        if moment.tzinfo is None:
            raise ValueError("the simulated clock needs an aware datetime")
        self._now = max(self._now, moment)


@dataclass(frozen=True)
class Delivery:
    """What a transport did with one action: an outcome status, when, and a short detail (no PHI)."""

    status: OutcomeStatus
    at: datetime
    detail: str | None = None


class Transport(Protocol):
    """Delivers one action at ``at`` (the sender's clock, at or after ``not_before``)."""

    def deliver(self, action: Mapping[str, Any], at: datetime) -> Delivery: ...


class LoggingTransport:
    """Delivers nothing: writes one line per action (kind, channel, account, the first words) and
    reports ``sent``. A starting point for a real transport, and a way to watch a stream of actions."""

    def __init__(self, print_to: TextIO | None = sys.stdout, *, words: int = 12) -> None:
        self.print_to = print_to
        self.words = words
        self.delivered = 0

    def deliver(self, action: Mapping[str, Any], at: datetime) -> Delivery:
        message = action.get("message") or {}
        body = " ".join(str(message.get("body") or "").split()[: self.words])
        line = (
            f"{utc_text(at)} {action.get('kind')} via {action.get('channel')} to {action.get('account_id')}"
            f" [{message.get('language', '-')}, {message.get('source', '-')}]: {body}"
        )
        log.info("deliver %s", line)
        if self.print_to is not None:
            print(line, file=self.print_to)
        self.delivered += 1
        return Delivery("sent", at, "logged by the reference sender's logging transport")


@dataclass(order=True)
class _Queued:
    not_before: datetime
    seq: int
    action_id: str = field(compare=False)
    expires_at: datetime = field(compare=False)
    action: Mapping[str, Any] = field(compare=False)


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {value!r}")
    return moment


class ReferenceSender:
    """The sender's rules over a transport and a clock (see the module docstring).

    Feed it actions (`offer`) and the engine's cancellations (`offer_audit` or `cancel`), call `pump`
    whenever the clock may have moved; every call returns the outcome records to report.
    """

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        *,
        remember: int = DEFAULT_REMEMBERED_IDS,
        skip_kinds: Iterable[str] = NOT_FOR_SENDERS,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.remember = remember
        self.skip_kinds = frozenset(skip_kinds)
        self.stats: Counter[str] = Counter()
        """``received``, ``queued``, ``duplicate``, ``expired``, ``skipped``, ``invalid``, ``cancelled``,
        ``delivered`` (handed to the transport) and one count per reported status (``status:sent``...)."""
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._queue: list[_Queued] = []
        self._queued_ids: dict[str, _Queued] = {}
        self._cancelled: dict[str, str] = {}
        self._ready: list[ActionOutcome] = []
        self._seq = 0

    # -- input ------------------------------------------------------------------------------------

    def offer(self, action: Mapping[str, Any]) -> Verdict:
        """Take one action from ``billing.actions``: queue it, or say why not."""
        self.stats["received"] += 1
        try:
            action_id = str(action["action_id"])
            account_id = str(action["account_id"])
            not_before = _moment(action["not_before"])
            expires_at = _moment(action["expires_at"])
        except (KeyError, TypeError, ValueError) as exc:
            # Without the fields the rules need there is nothing safe to do; nothing to report either.
            log.warning("action without a usable action_id/not_before/expires_at: %s", type(exc).__name__)
            self.stats["invalid"] += 1
            return "invalid"
        if action_id in self._seen:
            self.stats["duplicate"] += 1
            return "duplicate"
        self._remember(action_id)
        if action.get("kind") in self.skip_kinds:
            self.stats["skipped"] += 1
            return "skipped"
        now = self.clock.now()
        if action_id in self._cancelled:
            self._report(action_id, account_id, "cancelled", now, self._cancelled.pop(action_id))
            self.stats["cancelled"] += 1
            return "cancelled"
        if expires_at <= now:
            self._report(action_id, account_id, "cancelled", now, "expired")
            self.stats["expired"] += 1
            return "expired"
        self._seq += 1
        entry = _Queued(not_before, self._seq, action_id, expires_at, action)
        heapq.heappush(self._queue, entry)
        self._queued_ids[action_id] = entry
        self.stats["queued"] += 1
        return "queued"

    def cancel(self, action_id: str, reason: str = "cancelled by the engine") -> bool:
        """Drop a queued action the engine has stopped; True if it was still waiting here."""
        entry = self._queued_ids.pop(action_id, None)
        if entry is None:
            if action_id not in self._seen:  # the cancellation overtook the action: remember it
                self._cancelled[action_id] = reason
                while len(self._cancelled) > self.remember:
                    del self._cancelled[next(iter(self._cancelled))]
            return False
        self._report(action_id, str(entry.action["account_id"]), "cancelled", self.clock.now(), reason)
        self.stats["cancelled"] += 1
        return True

    def offer_audit(self, record: Mapping[str, Any]) -> bool:
        """Read one ``billing.audit`` record: a cancellation of a released action drops it if queued."""
        details = record.get("details") or {}
        if record.get("kind") != "suppressed" or not details.get("cancelled") or not record.get("action_id"):
            return False
        if details.get("was") not in (None, "released"):
            return False  # a held action's cancellation: it never reached billing.actions
        return self.cancel(str(record["action_id"]), f"cancelled by the engine ({details.get('gate')})")

    # -- output -----------------------------------------------------------------------------------

    def pump(self) -> list[ActionOutcome]:
        """Deliver every queued action whose ``not_before`` has come; returns the outcomes to report."""
        now = self.clock.now()
        queue = self._queue
        while queue and queue[0].not_before <= now:
            entry = heapq.heappop(queue)
            if self._queued_ids.pop(entry.action_id, None) is None:
                continue  # cancelled while it waited
            account_id = str(entry.action["account_id"])
            if entry.expires_at <= now:
                self._report(entry.action_id, account_id, "cancelled", now, "expired")
                self.stats["expired"] += 1
                continue
            delivery = self.transport.deliver(entry.action, now)
            self.stats["delivered"] += 1
            self._report(entry.action_id, account_id, delivery.status, delivery.at, delivery.detail)
        ready, self._ready = self._ready, []
        return ready

    def is_pending(self, action_id: str) -> bool:
        """Whether ``action_id`` is queued here, waiting for its ``not_before``."""
        return action_id in self._queued_ids

    @property
    def pending(self) -> int:
        """Actions waiting for their ``not_before``."""
        return len(self._queued_ids)

    def next_due(self) -> datetime | None:
        """The earliest ``not_before`` still waiting (to sleep until then)."""
        while self._queue and self._queue[0].action_id not in self._queued_ids:
            heapq.heappop(self._queue)
        return self._queue[0].not_before if self._queue else None

    def _report(self, action_id: str, account_id: str, status: str, at: datetime, detail: str | None) -> None:
        outcome = ActionOutcome.model_validate(
            {"action_id": action_id, "account_id": account_id, "status": status, "at": at, "detail": detail}
        )
        self.stats[f"status:{status}"] += 1
        self._ready.append(outcome)

    def _remember(self, action_id: str) -> None:
        self._seen[action_id] = None
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)


def outcome_record(outcome: ActionOutcome) -> tuple[bytes, bytes]:
    """(key, value) of an outcome on ``billing.outcomes``: keyed by ``account_id`` like every topic."""
    return outcome.account_id.encode(), outcome.model_dump_json(exclude_none=True).encode()


CANCEL_LOOKBACK_S = 3 * 86_400.0
"""How far back (by record timestamp) `run` re-reads the audit topic when it is assigned partitions."""


async def run(
    bootstrap: str,
    prefix: str = "billing",
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    group_id: str = "billwise-reference-sender",
    cancel_lookback_s: float = CANCEL_LOOKBACK_S,
    stop: Callable[[], bool] = lambda: False,
) -> Counter[str]:
    """Consume ``{prefix}.actions`` (and cancellations on ``{prefix}.audit``) and send, until ``stop()``.

    The queue, the sent ids and the cancellations live in memory, so what is committed is held back for
    a restart: an action still waiting for its ``not_before`` holds back the committed offset of its
    partition, so a restart reads it again rather than losing it. The audit topic is not committed:
    whenever partitions are assigned, the last ``cancel_lookback_s`` of it is read again, and nothing is
    sent until that is done, so an action stopped while the sender was down stays stopped. Actions sent
    after a waiting one are read again too after a restart: only a persisted de-duplication store (or
    the provider's idempotency key set to the ``action_id``) keeps them from going out twice, and an
    outcome may be reported twice. A production sender stores its queue and ids durably and commits as
    soon as they are stored. Run one instance per consumer group: the in-memory queue is not handed
    over when partitions move to another member. Returns the sender's counters.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    sender = ReferenceSender(transport or LoggingTransport(), clock or WallClock())
    actions_topic, audit_topic = f"{prefix}.actions", f"{prefix}.audit"
    consumer = AIOKafkaConsumer(
        actions_topic,
        audit_topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    waiting: dict[str, tuple[TopicPartition, int]] = {}  # queued action id -> where it was read
    read_up_to: dict[TopicPartition, int] = {}
    committed: dict[TopicPartition, int] = {}
    assigned: set[TopicPartition] = set()
    catch_up: dict[TopicPartition, int] = {}
    await consumer.start()
    await producer.start()
    try:
        while not stop():
            batch = await consumer.getmany(timeout_ms=500, max_records=1_000)
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        value = _json(message.value)
                    except ValueError:
                        sender.stats["invalid"] += 1
                        continue
                    if message.topic == audit_topic:
                        sender.offer_audit(value)
                        continue
                    read_up_to[tp] = message.offset + 1
                    if sender.offer(value) == "queued":
                        waiting[str(value["action_id"])] = (tp, message.offset)
            if consumer.assignment() != assigned:
                # A start or a rebalance: read the engine's recent cancellations again before sending.
                assigned = set(consumer.assignment())
                audit_parts = [tp for tp in assigned if tp.topic == audit_topic]
                catch_up = await _rewind(consumer, audit_parts, cancel_lookback_s) if audit_parts else {}
            if catch_up:
                if any([await consumer.position(tp) < end for tp, end in catch_up.items()]):
                    continue
                catch_up = {}
            for outcome in sender.pump():
                key, value_bytes = outcome_record(outcome)
                await producer.send_and_wait(f"{prefix}.outcomes", key=key, value=value_bytes)
            for action_id in [a for a in waiting if not sender.is_pending(a)]:
                del waiting[action_id]
            commit = {tp: offset for tp, offset in read_up_to.items() if tp in assigned}
            for tp, offset in waiting.values():
                if tp in commit:
                    commit[tp] = min(commit[tp], offset)
            if commit != committed:
                await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in commit.items()})
                committed = commit
    finally:
        await producer.stop()
        await consumer.stop()
    return sender.stats


async def _rewind(consumer: Any, parts: list[Any], lookback_s: float) -> dict[Any, int]:
    """Seek ``parts`` back to ``lookback_s`` ago (by record timestamp); returns their end offsets."""
    import time

    since = int((time.time() - lookback_s) * 1000)
    found = await consumer.offsets_for_times(dict.fromkeys(parts, since))
    ends: dict[Any, int] = await consumer.end_offsets(parts)
    for tp in parts:
        hit = found.get(tp)
        consumer.seek(tp, hit.offset if hit is not None else ends[tp])
    return ends


def _json(raw: bytes | None) -> dict[str, Any]:
    import json

    value = json.loads(raw or b"null")
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def main() -> None:  # pragma: no cover - a thin command line around `run`
    """``python -m streams.sender``: the reference sender with the logging transport and the wall clock."""
    import os

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    prefix = os.environ.get("BILLWISE_TOPIC_PREFIX", "billing")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(bootstrap, prefix))


if __name__ == "__main__":  # pragma: no cover
    main()
