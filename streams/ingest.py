"""Ingest: input records in, the records to write out.

`Processor` is the part of the shell worth testing without Kafka. It routes each record by its topic
(canonical events, reviewer decisions, audit requests, sender outcomes) to the pure decision core,
scores accounts with the worker's models, catches up daily scans an account missed, drafts words with
the language model, and turns every failure into a dead-letter record. It never raises, so a poison
message cannot stop its partition.

Drafting never holds up a single event: a batch is decided once with the approved templates, the
patient-facing words it wants are drafted concurrently (bounded in flight, each within the drafting
timeout), and the batch is decided again with those drafts. Decisions are pure, so the second pass is
the first one with better words; a draft that failed keeps its template and is audited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from inference.drafting import Drafter, DraftOutcome
from inference.facts import DraftFacts
from models.suite import ModelSuite
from rules.access import record_access
from rules.channels import ChannelRanking
from rules.decide import daily_scan, decide, due_scans, quiet_scans, scan_day, scan_due
from rules.facts import apply_event
from rules.outputs import Decision, Output
from rules.policy import Policy
from rules.review import review_decision
from rules.schedule import start_of_day
from rules.state import AccountState, ContactFact
from schemas.actions import PATIENT_FACING_KINDS, Action, Scores
from schemas.audit import AuditRecord
from schemas.deadletter import DeadLetter, DeadLetterError, raw_text
from schemas.events import CanonicalEvent, CommunicationLogged, InvalidEvent, PaymentPostedEvent, parse_event
from schemas.inputs import ActionOutcome, ReviewDecision
from streams import metrics
from streams.commands import ACCESS_TOPIC, SCAN_TOPIC, AuditRequest, ScanRequest, partition_of
from streams.persons import PersonIndex

log = logging.getLogger(__name__)
_Input = TypeVar("_Input", bound=BaseModel)

INPUT_TOPICS = ("events", "review.decisions", ACCESS_TOPIC, SCAN_TOPIC, "outcomes")
"""The topics (after the prefix) the ingest agent reads; all keyed by account id."""
CLOCK_LEAD_LIMIT = timedelta(days=1)
"""An event stamped later than this after it arrived does not move the events' clock (`Processor.clock`):
one record with a wrong year must not run every account's scans years ahead."""

# Errors a decision may raise on an input nobody foresaw; anything else is a bug that should surface.
_DECISION_ERRORS = (ValidationError, ValueError, TypeError, ArithmeticError, LookupError)


@dataclass(frozen=True)
class InputRecord:
    """Where an input came from: what a dead-letter record must name."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    received_at: datetime


def dead_letter(record: InputRecord, kind: str, message: str, path: str | None = None) -> Output:
    raw, encoding = raw_text(record.value)
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    metrics.DEAD_LETTERS.labels(reason=kind).inc()
    letter = DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        received_at=record.received_at,
        error=DeadLetterError(type=kind, message=message, path=path),
        raw=raw,
        raw_encoding=encoding,
    )
    return Output("dlq", key or "", letter)


class StateReader(Protocol):
    """Account id → state: the Faust table in the worker, a dict offline."""

    def get(self, account_id: str, /) -> AccountState | None: ...


@dataclass(frozen=True)
class Processed:
    """A batch's outputs and the accounts' new states.

    The caller writes the states only once the outputs are safely delivered: a state written first
    would make a redelivered event look like a duplicate, and its outputs would never be sent.
    ``states`` also holds the unchanged state of an account that saw a redelivery, to be written again.
    """

    outputs: list[Output]
    states: dict[str, AccountState]
    sources: dict[str, InputRecord]
    """The input record each state in ``states`` is written for: it is on the account's partition, and
    the worker files the write under that partition."""


class Rejected(Exception):
    """An input record that cannot be accepted: becomes a dead-letter record."""

    def __init__(self, kind: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.path = kind, message, path


@dataclass
class _Pass:
    """One pass over a batch: the states as they evolve, the outputs and the words wanted."""

    states: dict[str, AccountState | None]
    store: StateReader
    """Where the states of accounts outside the batch are read (a person's other accounts)."""
    final: bool
    drafts: dict[str, DraftOutcome]
    outputs: list[Output] = field(default_factory=list)
    wanted: list[tuple[str, DraftFacts]] = field(default_factory=list)
    changed: dict[str, InputRecord] = field(default_factory=dict)
    """The accounts whose state changed, in the order they first did (a set's order would vary between
    runs with the hash seed, and with it the order of `billwise decide`'s idle scans), each with the
    input record that last changed it."""

    def state_of(self, account_id: str) -> AccountState | None:
        """An account's state as this pass has left it so far, read from the store the first time."""
        if account_id not in self.states:
            self.states[account_id] = self.store.get(account_id)
        return self.states[account_id]


class Processor:
    """One worker's (or one offline run's) decision path over batches of input records."""

    def __init__(
        self,
        policy: Policy,
        *,
        prefix: str = "billing",
        drafter: Drafter | None = None,
        models: ModelSuite | None = None,
        partitions: int = 1,
    ) -> None:
        """``partitions``: how many the input topics have (a scan request may only name accounts of its
        key's partition)."""
        self.policy = policy
        self.prefix = prefix
        self.partitions = partitions
        self.drafter = drafter or Drafter(None)
        self.models = models
        self._clock: datetime | None = None
        self._models_day: date | None = None
        """The scan day the models last learned at (`_advance`)."""
        self.persons = PersonIndex()
        self._handlers: dict[str, Callable[[InputRecord, str | None, _Pass], None]] = {
            f"{prefix}.events": self._event,
            f"{prefix}.review.decisions": self._review,
            f"{prefix}.{ACCESS_TOPIC}": self._access,
            f"{prefix}.{SCAN_TOPIC}": self._scan,
            f"{prefix}.outcomes": self._outcome,
        }

    @property
    def clock(self) -> datetime | None:
        """The events' clock, for a daily-scan timer that follows event time instead of the wall clock:
        the latest event time decided, on any partition (one that stops receiving events must not hold
        the others' scans back). A partition lagging behind the others can then see an account scanned
        before its own earlier events, as any late event is under the wall clock."""
        return self._clock

    async def process(self, records: Sequence[InputRecord], store: StateReader) -> Processed:
        """Decide ``records`` in order against the states in ``store``; never raises."""
        before: dict[str, AccountState | None] = {}
        for record in records:
            if record.key is not None:
                account_id = record.key.decode("utf-8", "replace")
                if account_id not in before:
                    before[account_id] = store.get(account_id)
        run = self._run(records, before, store, drafts={}, final=not self.drafter.enabled)
        if not run.final:
            outcomes = await self.drafter.draft_many([facts for _, facts in run.wanted]) if run.wanted else []
            drafts = {
                action_id: outcome for (action_id, _), outcome in zip(run.wanted, outcomes, strict=True)
            }
            run = self._run(records, before, store, drafts=drafts, final=True)
        written = {key: state for key in run.changed if (state := run.states[key]) is not None}
        return Processed(run.outputs, written, {key: run.changed[key] for key in written})

    def _run(
        self,
        records: Sequence[InputRecord],
        before: dict[str, AccountState | None],
        store: StateReader,
        *,
        drafts: dict[str, DraftOutcome],
        final: bool,
    ) -> _Pass:
        run = _Pass(states=dict(before), store=store, final=final, drafts=drafts)
        for record in records:
            handler = self._handlers.get(record.topic)
            key = record.key.decode("utf-8", "replace") if record.key is not None else None
            try:
                if handler is None:
                    raise Rejected("unknown_topic", f"the ingest agent does not read {record.topic!r}")
                handler(record, key, run)
            except Rejected as exc:
                if final:
                    run.outputs.append(dead_letter(record, exc.kind, exc.message, exc.path))
            except _DECISION_ERRORS as exc:
                # The log names the error class and position only: messages may quote patient data.
                log.exception(
                    "decision failed at %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    type(exc).__name__,
                )
                if final:
                    run.outputs.append(dead_letter(record, "decision_error", f"{type(exc).__name__}: {exc}"))
        return run

    def _apply(
        self,
        run: _Pass,
        account_id: str,
        decision: Decision,
        label: str,
        record: InputRecord,
        *,
        scans: int = 1,
    ) -> None:
        """Take a decision on ``record`` into the pass (``scans``: how many quiet daily scans a scan
        decision stands for)."""
        run.wanted.extend(decision.draft_requests)
        if decision.duplicate:
            if run.final:
                (
                    metrics.DAILY_SCANS.labels(result="already_done")
                    if label == "scan"
                    else metrics.DUPLICATES
                ).inc()
            # A redelivery follows a crash, and the local store may hold a state whose changelog record
            # never left the producer: writing the same state again puts it on the changelog.
            if decision.state is not None:
                run.states[account_id] = decision.state
                run.changed[account_id] = record
            return
        run.states[account_id] = decision.state
        run.changed[account_id] = record
        run.outputs.extend(decision.outputs)
        if run.final:
            _count(decision, label, scans)

    # -- handlers ---------------------------------------------------------------------------------

    def _event(self, record: InputRecord, key: str | None, run: _Pass) -> None:
        try:
            event = parse_event(record.value)
        except InvalidEvent as exc:
            raise Rejected(exc.kind, exc.message, exc.path) from None
        key = _keyed(key, event.account_id, "data.account_id")
        started = time.perf_counter()
        if run.final and event.time <= record.received_at + CLOCK_LEAD_LIMIT:
            self._advance(event.time)
        state = run.states.get(key)
        if state is not None and not state.has_seen(event.dedup_key):
            state = self._catch_up(key, state, event.time, run, record)
        scores, x, ranking = self._score(
            apply_event(state, event.data) if state is not None else None, event.time, run, event.dedup_key
        )
        if run.final and self.models is not None and isinstance(event, PaymentPostedEvent):
            self.models.paid(key, event.data.posted_at)
        others = self._person_contacts(event.data.practice_id, event.data.patient_id, key, run)
        decision = decide(
            state,
            event,
            self.policy,
            scores=scores,
            person_contacts=others,
            drafts=run.drafts,
            channel_ranking=ranking,
        )
        self._apply(run, key, decision, event.type, record)
        if run.final:
            self._learned(key, decision, x, scores, event)
            metrics.DECISION_SECONDS.observe(time.perf_counter() - started)

    def _advance(self, now: datetime) -> None:
        """Move the events' clock to ``now``; at the first event of a new scan day, before it or its
        account's missed scans are scored, the models learn the labels known by the day's start
        (`models.suite`: a day's scores must not depend on how the partitions' records interleave)."""
        self._clock = now if self._clock is None else max(self._clock, now)
        day = scan_day(now, self.policy)
        if self.models is not None and (self._models_day is None or day > self._models_day):
            self.models.tick(start_of_day(day, self.policy.scan.timezone))
            self._models_day = day

    def _person_contacts(
        self, practice_id: str, patient_id: str, account_id: str, run: _Pass
    ) -> tuple[ContactFact, ...]:
        """The contacts of the person's other accounts, as this batch has left them so far."""
        self.persons.add(practice_id, patient_id, account_id)
        contacts: list[ContactFact] = []
        for other in self.persons.others(practice_id, patient_id, account_id):
            state = run.state_of(other)
            if state is not None:
                contacts.extend(state.contacts)
        return tuple(contacts)

    def _catch_up(
        self, key: str, state: AccountState, now: datetime, run: _Pass, record: InputRecord
    ) -> AccountState:
        """The account's daily scans missed up to ``now``, in order (for ``record``); its state after them."""
        if not scan_due(state.last_scan_day, now, self.policy):
            return state
        others = self._person_contacts(state.practice_id, state.patient_id, key, run)
        moments = due_scans(state.last_scan_day, now, self.policy)
        while moments:
            # Quiet scans need no scores (scoring is most of what a scan costs) and no Session.
            quiet, state = quiet_scans(state, self.policy, moments)
            if quiet:
                self._apply(run, key, Decision(state=state, outputs=()), "scan", record, scans=quiet)
                moments = moments[quiet:]
                continue
            moment, moments = moments[0], moments[1:]
            scores, x, ranking = self._score(state, moment, run, moment.isoformat())
            scan = daily_scan(
                state,
                self.policy,
                moment,
                scores=scores,
                person_contacts=others,
                drafts=run.drafts,
                channel_ranking=ranking,
            )
            self._apply(run, key, scan, "scan", record)
            if run.final:
                self._sent(key, scan, x, scores, moment)
            state = scan.state
        return state

    def _scan(self, record: InputRecord, key: str | None, run: _Pass) -> None:
        request = _parsed(ScanRequest, record)
        key = _keyed(key, request.account_ids[0], "account_ids.0")
        partition = partition_of(key, self.partitions)
        unknown: list[str] = []
        for account_id in request.account_ids:
            # A state is written under the partition of the record that changed it, so a record may
            # only scan the accounts of its own partition.
            mine = partition_of(account_id, self.partitions) == partition
            state = run.state_of(account_id) if mine else None
            if state is None:
                unknown.append(account_id)
            else:
                self._catch_up(account_id, state, request.at, run, record)
        if unknown:
            # The others are scanned: a dead letter names the ones that were not.
            names = ", ".join(map(repr, unknown))
            raise Rejected("unknown_account", f"no account {names} on this key's partition", "account_ids")

    def _score(
        self, state: AccountState | None, now: datetime, run: _Pass, trigger: str
    ) -> tuple[Scores | None, dict[str, float], ChannelRanking | None]:
        """The account's scores, their features and the channel ranking for deciding ``trigger``."""
        if self.models is None or state is None:
            return None, {}, None
        scores, x = self.models.score(state, now)
        return scores, x, self.models.channel_ranking(state, trigger)

    def _learned(
        self, key: str, decision: Decision, x: dict[str, float], scores: Scores | None, event: CanonicalEvent
    ) -> None:
        if self.models is None or scores is None:
            return
        data = event.data
        if isinstance(data, CommunicationLogged):
            self.models.outcome(key, data.outcome, data.at)
        self._sent(key, decision, x, scores, event.time)

    def _sent(
        self, key: str, decision: Decision, x: dict[str, float], scores: Scores | None, at: datetime
    ) -> None:
        """A decision that released a patient-facing message (an event's or a daily scan's) keeps the
        snapshots its labels will be learned from: the scores' features and the channel it used."""
        if self.models is None or scores is None:
            return
        sent = [
            o.value
            for o in decision.outputs
            if isinstance(o.value, Action) and o.value.kind in PATIENT_FACING_KINDS
        ]
        if sent:
            context = self.models.channel_context(decision.state)
            self.models.decided(key, x, scores, at, channel=sent[0].channel, context=context)

    def _review(self, record: InputRecord, key: str | None, run: _Pass) -> None:
        decision = _parsed(ReviewDecision, record)
        key, state = _known_account(key, decision.account_id, run)
        others = self._person_contacts(state.practice_id, state.patient_id, key, run)
        reviewed = review_decision(state, decision, self.policy, decision.at, person_contacts=others)
        self._apply(run, key, reviewed, "review", record)

    def _access(self, record: InputRecord, key: str | None, run: _Pass) -> None:
        request = _parsed(AuditRequest, record)
        key = _keyed(key, request.account_id, "account_id")
        details = {"resource": request.resource, **request.details}
        decision = record_access(
            run.states.get(key),
            key,
            request.kind,
            request.at,
            user_id=request.user_id,
            role=request.role,
            details=details,
            policy=self.policy,
        )
        self._apply(run, key, decision, "access", record)

    def _outcome(self, record: InputRecord, key: str | None, run: _Pass) -> None:
        # Sender outcomes are validated and counted; contacts are planned when an action is released,
        # so the frequency windows do not wait for them.
        outcome = _parsed(ActionOutcome, record)
        _keyed(key, outcome.account_id, "account_id")
        if run.final:
            metrics.OUTCOMES.labels(status=outcome.status).inc()
            if self.models is not None:
                self.models.outcome(outcome.account_id, outcome.status, outcome.at)


def _keyed(key: str | None, account_id: str, path: str) -> str:
    """The record's key, which must be its account id: every topic is keyed by account_id."""
    if key != account_id:
        raise Rejected("key_mismatch", f"message key {key!r} is not the record's account_id", path)
    return key


def _parsed(model: type[_Input], record: InputRecord) -> _Input:
    """``record``'s value as ``model``, or `Rejected` naming the first invalid field."""
    try:
        return model.model_validate_json(record.value)
    except ValidationError as exc:
        raise _rejected(exc) from None


def _known_account(key: str | None, account_id: str, run: _Pass) -> tuple[str, AccountState]:
    """The record's account and its state: a command for an account never seen is rejected."""
    key = _keyed(key, account_id, "account_id")
    state = run.states.get(key)
    if state is None:
        raise Rejected("unknown_account", f"no account {account_id!r} on this key", "account_id")
    return key, state


def _rejected(exc: ValidationError) -> Rejected:
    error = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in error["loc"])
    kind = "invalid_json" if error["type"] == "json_invalid" else "validation_error"
    return Rejected(kind, f"{path}: {error['msg']}" if path else error["msg"], path or None)


def _count(decision: Decision, label: str, scans: int) -> None:
    if label == "scan":
        metrics.DAILY_SCANS.labels(result="run").inc(scans)
    else:
        metrics.EVENTS_IN.labels(type=label).inc()
    for output in decision.outputs:
        if isinstance(output.value, Action):
            metrics.DECISIONS.labels(
                kind=output.value.kind, channel=output.value.channel, route=output.topic
            ).inc()
        elif isinstance(output.value, AuditRecord) and output.value.kind == "suppressed":
            metrics.SUPPRESSIONS.labels(gate=str(output.value.details.get("gate"))).inc()
