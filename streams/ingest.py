"""Ingest: one raw input record in, the records to write out.

This is the part of the shell that is worth testing without Kafka: it parses and validates the
bytes, de-duplicates through the account state, calls the pure decision core and turns every
failure into a dead-letter record. It never raises, so a poison message cannot stop its partition.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from rules.decide import Decision, Output, decide
from rules.policy import Policy
from rules.state import AccountState
from schemas.actions import Action
from schemas.audit import AuditRecord
from schemas.deadletter import DeadLetter, DeadLetterError, raw_text
from schemas.events import InvalidEvent, parse_event
from streams import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputRecord:
    """Where an input came from: what a dead-letter record must name."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    received_at: datetime


@dataclass(frozen=True)
class IngestResult:
    state: AccountState | None
    """The account's new state, or ``None`` when the state is unchanged."""
    outputs: tuple[Output, ...]


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


def load_state(blob: bytes | None) -> AccountState | None:
    return AccountState.model_validate_json(blob) if blob else None


def ingest(record: InputRecord, state_blob: bytes | None, policy: Policy) -> IngestResult:
    """Validate, de-duplicate and decide one input record. Never raises."""
    try:
        event = parse_event(record.value)
    except InvalidEvent as exc:
        return IngestResult(None, (dead_letter(record, exc.kind, exc.message, exc.path),))
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    if key != event.account_id:
        message = f"message key {key!r} is not the event's account_id (every topic is keyed by account_id)"
        return IngestResult(None, (dead_letter(record, "key_mismatch", message, "data.account_id"),))
    started = time.perf_counter()
    try:
        decision = decide(load_state(state_blob), event, policy)
    except (ValidationError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
        # A bug or an unforeseen input must not stop the partition: dead-letter it and say why.
        # The log names the error class and event id only; messages may quote patient data.
        log.exception("decision failed for event %s: %s", event.id, type(exc).__name__)
        return IngestResult(None, (dead_letter(record, "decision_error", f"{type(exc).__name__}: {exc}"),))
    metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
    _count(decision, event.type)
    return IngestResult(None if decision.duplicate else decision.state, decision.outputs)


def _count(decision: Decision, event_type: str) -> None:
    if decision.duplicate:
        metrics.DUPLICATES.inc()
        return
    metrics.EVENTS_IN.labels(type=event_type).inc()
    for output in decision.outputs:
        if isinstance(output.value, Action):
            metrics.DECISIONS.labels(
                kind=output.value.kind, channel=output.value.channel, route=output.topic
            ).inc()
        elif isinstance(output.value, AuditRecord) and output.value.kind == "suppressed":
            metrics.SUPPRESSIONS.labels(gate=str(output.value.details.get("gate"))).inc()
