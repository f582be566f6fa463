"""The decision core: a pure function of (account state, event, policy) to (new state, outputs).

The Faust worker and ``billwise decide`` call the same `decide`, so an offline run over the same events
gives the same actions as the stream. Decision time is the event's ``time``, never the wall clock.

>>> from schemas.events import parse_event
>>> from rules.policy import load_policy
>>> event = parse_event({"specversion": "1.0", "id": "evt-1", "source": "demo", "type": "billing.statement.generated",
...     "time": "2026-03-16T15:00:00Z", "data": {"account_id": "ACC-1", "patient_id": "PT-1", "practice_id": "P-1",
...     "statement_id": "S-1", "statement_date": "2026-03-16", "due_date": "2026-04-15", "balance_due": "120.00"}})
>>> decision = decide(None, event, load_policy())
>>> [(o.topic, o.value.kind) for o in decision.outputs]  # no patient record yet: no permitted channel
[('audit', 'suppressed')]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from inference.facts import DraftFacts
from inference.templates import render_template
from rules.candidates import Candidate, propose
from rules.facts import apply_event
from rules.gates import GateVerdict, evaluate_gates
from rules.policy import Policy
from rules.state import MAX_HISTORY, MAX_SEEN_EVENTS, AccountState, DecisionSummary, OpenAction, bounded
from schemas.actions import PATIENT_FACING_KINDS, Action, Explanation, Review, Scores, Trigger, action_id_for
from schemas.audit import Actor, AuditDraft, AuditKind, AuditRecord, seal
from schemas.common import OutputModel
from schemas.events import CanonicalEvent

ENGINE = Actor(type="engine", id="billwise")

Topic = Literal["actions", "review", "audit", "dlq"]


@dataclass(frozen=True)
class Output:
    """One record to write: the logical topic (prefixed by the shell), the key and the value."""

    topic: Topic
    key: str
    value: OutputModel

    def as_line(self, prefix: str = "billing") -> dict[str, Any]:
        """The ``billwise decide`` line: ``{"topic": "billing.actions", "key": ..., "value": {...}}``."""
        return {"topic": f"{prefix}.{self.topic}", "key": self.key, "value": self.value.model_dump(mode="json")}


@dataclass(frozen=True)
class Decision:
    state: AccountState
    outputs: tuple[Output, ...]
    duplicate: bool = False


class AuditTrail:
    """Appends sealed audit records to one account's chain, carrying its head along."""

    def __init__(self, state: AccountState, policy: Policy) -> None:
        self.account_id = state.account_id
        self.head = state.audit_head
        self.seq = state.audit_seq
        self.policy_version = policy.version
        self.records: list[AuditRecord] = []

    def append(
        self,
        kind: AuditKind,
        at: datetime,
        *,
        action_id: str | None = None,
        event_id: str | None = None,
        details: dict[str, Any] | None = None,
        actor: Actor = ENGINE,
    ) -> AuditRecord:
        self.seq += 1
        digest = hashlib.sha256(f"{self.account_id}\x1f{self.seq}".encode()).hexdigest()[:24]
        record = seal(
            AuditDraft(
                audit_id=f"aud-{digest}",
                at=at,
                account_id=self.account_id,
                actor=actor,
                kind=kind,
                action_id=action_id,
                event_id=event_id,
                policy_version=self.policy_version,
                details=details or {},
            ),
            self.head,
        )
        self.head = record.hash
        self.records.append(record)
        return record

    def state_update(self) -> dict[str, Any]:
        return {"audit_head": self.head, "audit_seq": self.seq}


def decide(state: AccountState | None, event: CanonicalEvent, policy: Policy) -> Decision:
    """Fold ``event`` into ``state`` and decide what to do about it.

    A redelivered event (same ``source`` and ``id``) changes nothing and emits nothing.
    """
    if state is not None and state.has_seen(event.dedup_key):
        return Decision(state=state, outputs=(), duplicate=True)
    data = event.data
    if state is None:
        state = AccountState.new(data.account_id, data.patient_id, data.practice_id)
    now = event.time
    state = apply_event(state, data)
    state = state.model_copy(
        update={
            "seen_events": bounded([*state.seen_events, event.dedup_key], MAX_SEEN_EVENTS),
            "last_event_at": now,
        }
    )

    trail = AuditTrail(state, policy)
    outputs: list[Output] = []
    open_actions = dict(state.open_actions)
    history = list(state.history)
    for candidate in propose(state, event, policy):
        verdict = evaluate_gates(candidate, state, policy, now)
        gates_fired = [rule.id for rule in verdict.rules if rule.outcome != "pass"]
        action_id = action_id_for(state.account_id, event.id, candidate.kind)
        if verdict.suppressed_by is not None:
            trail.append(
                "suppressed",
                now,
                action_id=action_id,
                event_id=event.id,
                details={"kind": candidate.kind, "gate": verdict.suppressed_by, "gates": gates_fired},
            )
            history.append(_summary(now, event, None, candidate.kind, "suppressed", gates_fired))
            continue
        action = _action(action_id, candidate, verdict, state, event, policy)
        superseded = open_actions.get(candidate.kind)
        held = action.review.required
        trail.append(
            "review_requested" if held else "decision",
            now,
            action_id=action_id,
            event_id=event.id,
            details={
                "kind": candidate.kind,
                "channel": action.channel,
                "gates": gates_fired,
                "review_reasons": list(verdict.review_reasons),
                "superseded": superseded.action_id if superseded else None,
                "message_source": action.message.source if action.message else None,
            },
        )
        outputs.append(Output("review" if held else "actions", state.account_id, action))
        if candidate.kind in PATIENT_FACING_KINDS:
            open_actions[candidate.kind] = OpenAction(
                action_id=action_id,
                kind=candidate.kind,
                channel=action.channel,
                state="held" if held else "released",
                created_at=now,
                expires_at=action.expires_at,
                trigger_event_id=event.id,
            )
        history.append(_summary(now, event, action_id, candidate.kind, "held" if held else "released", gates_fired))

    outputs.extend(Output("audit", state.account_id, record) for record in trail.records)
    state = state.model_copy(
        update={
            "open_actions": open_actions,
            "history": bounded(history, MAX_HISTORY),
            **trail.state_update(),
        }
    )
    return Decision(state=state, outputs=tuple(outputs))


def _summary(
    now: datetime, event: CanonicalEvent, action_id: str | None, kind: str, outcome: str, gates: list[str]
) -> DecisionSummary:
    return DecisionSummary(
        at=now, event_id=event.id, event_type=event.type, action_id=action_id, kind=kind, outcome=outcome, gates=gates
    )


def _action(
    action_id: str,
    candidate: Candidate,
    verdict: GateVerdict,
    state: AccountState,
    event: CanonicalEvent,
    policy: Policy,
) -> Action:
    now = event.time
    message = render_template(draft_facts(candidate, verdict, state))
    return Action(
        action_id=action_id,
        account_id=state.account_id,
        patient_id=state.patient_id,
        practice_id=state.practice_id,
        kind=candidate.kind,  # type: ignore[arg-type]
        channel=verdict.channel,  # type: ignore[arg-type]
        created_at=now,
        not_before=verdict.not_before,
        expires_at=now + timedelta(days=policy.actions.expires_after_days),
        priority=candidate.priority,
        message=message,
        plan_options=list(candidate.plan_options),
        settlement=candidate.settlement,
        scores=Scores(),
        review=Review(
            required=bool(verdict.review_reasons),
            reasons=list(verdict.review_reasons),
            state="pending" if verdict.review_reasons else "not_required",
        ),
        explanation=Explanation(policy_version=policy.version, rules=[*candidate.rules, *verdict.rules]),
        trigger=Trigger(event_id=event.id, type=event.type),
        tags=list(candidate.tags),
    )


def draft_facts(candidate: Candidate, verdict: GateVerdict, state: AccountState) -> DraftFacts:
    """What the draft of ``candidate`` may say: only facts the account state holds."""
    patient = state.patient
    last_payment = state.last_payment
    statement = state.last_statement
    return DraftFacts(
        kind=candidate.kind,
        channel=verdict.channel,
        language=patient.language if patient else "en",
        patient_name=patient.name.given or None if patient else None,
        account_id=state.account_id,
        balance=state.balance,
        insurance_pending=state.insurance_pending or None,
        last_payment_amount=last_payment.amount if last_payment else None,
        last_payment_date=last_payment.at.date() if last_payment else None,
        due_date=statement.due_date if statement else None,
        plan_options=candidate.plan_options,
        settlement=candidate.settlement,
        variance=candidate.variance,
        disclosures=verdict.disclosures,
    )
