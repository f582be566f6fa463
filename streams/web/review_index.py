"""The review queue as every worker sees it: held actions not yet resolved, by priority.

Held actions are on ``{prefix}.review``; what resolves them is on ``{prefix}.audit``. Every worker
reads *all* partitions of both topics from the beginning with its own aiokafka consumer (assigned,
no consumer group, no commits), so ``GET /review`` on any worker lists the whole queue and never
disturbs the engine's consumer group. The index is in memory and rebuilt on start.

An action leaves the queue when an audit record says it was resolved (the conventions of
`rules.review` and `rules.session`):

* ``review_approved`` with its ``action_id``;
* ``review_rejected`` with ``details.reason`` ``rejected`` (or no reason), or ``not_held``; other reasons
  (``role_not_permitted``, ``edit_failed_guardrails`` ...) are *refused* decisions: the action stays held;
* a record about the action with ``details.cancelled: true`` (a gate stopped it while held: a dispute,
  an opt-out, its expiry);
* a newer action of the same slot: the superseded action's own record (``details.effect: superseded``),
  or any record whose ``details.superseded`` (or ``details.cancelled``) names it by id (a string or a
  list of strings).

The two topics are read concurrently, so a resolution can be seen before the held action it
resolves; resolutions are therefore remembered on their own (bounded, oldest forgotten first).
Expired actions (``expires_at`` passed) stay in the index but are hidden unless asked for: the engine
would not release them, and a reviewer should not spend time on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge
from pydantic import ValidationError

from schemas.actions import Action
from streams.kafka_security import kafka_client_kwargs

log = logging.getLogger(__name__)

MAX_RESOLVED = 200_000
"""Resolutions remembered for actions not (yet) seen held: ~100 bytes each, ~20 MB at the bound."""
EXPIRED_GRACE = timedelta(days=7)
"""Expired actions are dropped from memory a week after ``expires_at`` (listed on request until then)."""
PENDING_TTL_S = 120.0
"""A decision posted through this worker blocks a second one for this long (double submits), or until
the audit trail resolves the action; after that the engine's own de-duplication has the last word."""

QUEUE_DEPTH = Gauge(
    "billwise_review_queue_depth",
    "Held actions waiting for review (not expired); every worker indexes the whole queue, so take the max",
)
OLDEST_AGE = Gauge(
    "billwise_review_oldest_age_seconds",
    "Age of the oldest held action waiting for review (0 when none); max across workers",
)

Resolution = Literal["approved", "rejected", "superseded", "cancelled", "closed"]
"""``closed``: the engine said the action is no longer held (a decision found nothing to decide)."""

_RELEVANT_AUDIT = (b"review_", b'"superseded"', b'"cancelled"')
"""Cheap byte test before parsing: records that cannot resolve anything (accesses, events rejected,
model updates) are passed over unparsed."""


@dataclass(frozen=True)
class QueueFilter:
    """What ``GET /review`` asks for; every field is optional."""

    kinds: frozenset[str] = frozenset()
    min_balance: Decimal | None = None
    max_balance: Decimal | None = None
    min_age: timedelta | None = None
    max_age: timedelta | None = None
    include_expired: bool = False


@dataclass(frozen=True)
class HeldEntry:
    """One held action in the queue: its record as ``{prefix}.review`` carried it, and what the queue
    sorts and filters on.

    The action itself is parsed again when a page or a decision asks for it (`action`), not kept parsed:
    a parsed `Action` with its gates' outcomes is about 60 objects the garbage collector tracks (each
    pydantic object with its field set), and a queue of a thousand held actions made every full
    collection of the worker walk them, pausing its decisions for 75-127 ms each (issue 8,
    ``docs/performance.md``). The bytes and the fields below are not walked.
    """

    record: bytes
    action_id: str
    account_id: str
    kind: str
    priority: float
    created_at: datetime
    expires_at: datetime
    balance: Decimal | None
    seen_at: float

    @classmethod
    def of(cls, action: Action, record: bytes, seen_at: float) -> HeldEntry:
        """The entry for ``action``, parsed from ``record``."""
        return cls(
            record,
            action.action_id,
            action.account_id,
            action.kind,
            action.priority,
            action.created_at,
            action.expires_at,
            action_balance(action),
            seen_at,
        )

    @property
    def action(self) -> Action:
        """The held action, parsed from its record (a fresh object on every call)."""
        return Action.model_validate_json(self.record)

    def age(self, now: datetime) -> timedelta:
        return now - self.created_at

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True)
class Lookup:
    """What the index knows about one action id."""

    entry: HeldEntry | None
    resolution: Resolution | None
    pending_decision: bool


def action_balance(action: Action) -> Decimal | None:
    """The balance an action was decided on, if the action carries it.

    ``explanation.features.balance`` first (the decision core's record of it); then a payment plan's
    ``total``, which POLICY.md defines as the balance. ``None`` when neither is there.
    """
    raw = action.explanation.features.get("balance")
    if raw is not None:
        try:
            return Decimal(str(raw))
        except (InvalidOperation, ValueError):
            pass
    if action.plan_options:
        return action.plan_options[0].total
    return None


def _ids(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    return []


class ReviewIndex:
    """In-memory held actions by ``action_id``; pure bookkeeping (`ReviewFeed` feeds it from Kafka)."""

    def __init__(self, *, max_resolved: int = MAX_RESOLVED) -> None:
        self.held: dict[str, HeldEntry] = {}
        self.resolved: OrderedDict[str, Resolution] = OrderedDict()
        self.pending: dict[str, float] = {}
        self.max_resolved = max_resolved
        self.caught_up = False
        """True once every partition was read up to its end offset at start (the queue is complete)."""
        self.skipped = 0
        """Records that could not be parsed (counted, never logged: they may carry PHI)."""

    # -- feeding -----------------------------------------------------------------------------------
    def apply_review(self, value: bytes | None) -> None:
        """A record of ``{prefix}.review``: a held action (or, if not pending, its resolution)."""
        if not value:
            return
        try:
            action = Action.model_validate_json(value)
        except ValidationError:
            self.skipped += 1
            return
        state = action.review.state
        if state in ("approved", "rejected"):
            self._resolve(action.action_id, "approved" if state == "approved" else "rejected")
            return
        if action.action_id in self.resolved:
            return
        self.held[action.action_id] = HeldEntry.of(action, value, time.monotonic())

    def apply_audit(self, value: bytes | None) -> None:
        """A record of ``{prefix}.audit``: resolves held actions when it approves, rejects, supersedes
        or cancels them; any other record is passed over."""
        if not value or not any(marker in value for marker in _RELEVANT_AUDIT):
            return
        try:
            record = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.skipped += 1
            return
        if not isinstance(record, dict):
            self.skipped += 1
            return
        kind = record.get("kind")
        raw_id, raw_details = record.get("action_id"), record.get("details")
        action_id = raw_id if isinstance(raw_id, str) else None
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        if action_id is not None:
            if kind == "review_approved":
                self._resolve(action_id, "approved")
            elif kind == "review_rejected":
                reason = details.get("reason")
                if reason in (None, "rejected"):
                    self._resolve(action_id, "rejected")
                elif reason == "not_held":
                    self._resolve(action_id, "closed")
                else:
                    # A refused decision (role not permitted, edit failing the guardrails): the action
                    # stays held, and another decision may now be sent.
                    self.clear_pending(action_id)
            elif kind == "review_requested":
                # Held again (e.g. an approval that met a new review reason): open for a new decision.
                self.clear_pending(action_id)
            elif details.get("cancelled") is True:
                self._resolve(action_id, "cancelled")
            elif details.get("effect") == "superseded":
                # The superseded action's own record (the newer action's record names it too).
                self._resolve(action_id, "superseded")
        for superseded in _ids(details.get("superseded")):
            self._resolve(superseded, "superseded")
        for cancelled in _ids(details.get("cancelled")):
            self._resolve(cancelled, "cancelled")

    def _resolve(self, action_id: str, resolution: Resolution) -> None:
        self.held.pop(action_id, None)
        self.pending.pop(action_id, None)
        self.resolved[action_id] = resolution
        self.resolved.move_to_end(action_id)
        while len(self.resolved) > self.max_resolved:
            self.resolved.popitem(last=False)

    def mark_pending(self, action_id: str) -> None:
        """A decision on ``action_id`` was just sent through this worker."""
        self.pending[action_id] = time.monotonic()

    def clear_pending(self, action_id: str) -> None:
        """The decision on ``action_id`` did not go out (or was refused): another may be sent."""
        self.pending.pop(action_id, None)

    def prune(self, now: datetime) -> int:
        """Forget actions expired for longer than `EXPIRED_GRACE`; returns how many."""
        cutoff = now - EXPIRED_GRACE
        stale = [action_id for action_id, entry in self.held.items() if entry.expires_at < cutoff]
        for action_id in stale:
            del self.held[action_id]
        horizon = time.monotonic() - PENDING_TTL_S
        for action_id in [a for a, at in self.pending.items() if at < horizon]:
            del self.pending[action_id]
        return len(stale)

    # -- reading -----------------------------------------------------------------------------------
    def lookup(self, action_id: str) -> Lookup:
        pending_at = self.pending.get(action_id)
        pending = pending_at is not None and time.monotonic() - pending_at < PENDING_TTL_S
        return Lookup(self.held.get(action_id), self.resolved.get(action_id), pending)

    def query(self, wanted: QueueFilter, now: datetime, limit: int | None = None) -> list[HeldEntry]:
        """Held actions matching ``wanted``: highest priority first, then oldest, then by id.

        An action without a known balance does not match a balance filter: the filter's promise
        ("at least $X") cannot be checked for it.
        """
        matches = [entry for entry in self.held.values() if _matches(entry, wanted, now)]
        matches.sort(key=lambda e: (-e.priority, e.created_at, e.action_id))
        return matches[:limit] if limit is not None else matches

    def backlog(self, now: datetime) -> tuple[int, float]:
        """How many held actions wait (expired ones excluded), and the oldest one's age in seconds."""
        waiting = [entry for entry in self.held.values() if not entry.expired(now)]
        oldest = max((entry.age(now).total_seconds() for entry in waiting), default=0.0)
        return len(waiting), max(oldest, 0.0)

    def __len__(self) -> int:
        return len(self.held)


def _matches(entry: HeldEntry, wanted: QueueFilter, now: datetime) -> bool:
    if not wanted.include_expired and entry.expired(now):
        return False
    if wanted.kinds and entry.kind not in wanted.kinds:
        return False
    if wanted.min_balance is not None and (entry.balance is None or entry.balance < wanted.min_balance):
        return False
    if wanted.max_balance is not None and (entry.balance is None or entry.balance > wanted.max_balance):
        return False
    age = entry.age(now)
    if wanted.min_age is not None and age < wanted.min_age:
        return False
    return not (wanted.max_age is not None and age > wanted.max_age)


class ReviewFeed:
    """Keeps a `ReviewIndex` current from ``{prefix}.review`` and ``{prefix}.audit``.

    `run` is a long-lived coroutine (started with the Faust app as a task): it assigns itself every
    partition of both topics, reads from the beginning, and never commits or joins a group.
    A broker error is logged by class name and retried after a pause; cancellation stops the consumer.
    """

    def __init__(
        self,
        index: ReviewIndex,
        bootstrap: str,
        review_topic: str,
        audit_topic: str,
        *,
        retry_s: float = 2.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.index = index
        self.bootstrap = bootstrap
        self.review_topic = review_topic
        self.audit_topic = audit_topic
        self.retry_s = retry_s
        self._clock = clock or (lambda: datetime.now(UTC))
        # The gauges read this worker's index on every scrape, so they are never stale.
        QUEUE_DEPTH.set_function(lambda: float(self.index.backlog(self._clock())[0]))
        OLDEST_AGE.set_function(lambda: self.index.backlog(self._clock())[1])

    async def run(self) -> None:
        """Follow both topics until cancelled; reconnects from the beginning after a failure."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker hiccup must not end the queue for good
                log.warning(
                    "review index feed failed (%s); restarting from the beginning", type(exc).__name__
                )
                await asyncio.sleep(self.retry_s)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **kafka_client_kwargs(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            partitions = await self._partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            behind = {tp for tp, end in ends.items() if end > 0}
            # A restart rebuilds from scratch: start from an empty index (same object, so views keep it).
            self.index.held.clear()
            self.index.caught_up = not behind
            last_prune = time.monotonic()
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, messages in batch.items():
                    apply = (
                        self.index.apply_review if tp.topic == self.review_topic else self.index.apply_audit
                    )
                    for message in messages:
                        apply(message.value)
                    if tp in behind and messages and messages[-1].offset + 1 >= ends[tp]:
                        behind.discard(tp)
                if behind and not batch:
                    # Nothing fetched: a partition whose end offset points past compacted or aborted
                    # records is caught up when its position reaches the end.
                    for tp in list(behind):
                        if await consumer.position(tp) >= ends[tp]:
                            behind.discard(tp)
                if not behind and not self.index.caught_up:
                    self.index.caught_up = True
                    log.info("review index caught up: %d held actions", len(self.index))
                if time.monotonic() - last_prune > 60:
                    self.index.prune(self._clock())
                    last_prune = time.monotonic()
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of both topics, waiting for topics that do not exist yet.

        Asked of the admin client: an unsubscribed consumer's metadata does not cover these topics.
        """
        wanted = [self.review_topic, self.audit_topic]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **kafka_client_kwargs())
        await admin.start()
        try:
            while True:
                described = await admin.describe_topics(wanted)
                found = [
                    TopicPartition(topic["topic"], partition["partition"])
                    for topic in described
                    if topic["error_code"] == 0
                    for partition in topic["partitions"]
                ]
                if {tp.topic for tp in found} == set(wanted):
                    return sorted(found)
                await asyncio.sleep(self.retry_s)
        finally:
            await admin.close()
