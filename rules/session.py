"""One decision in progress: candidates through the gates, into actions, suppressions and audit records.

`decide`, `daily_scan` and `review_decision` all run a `Session`: it holds the state as it changes, the
account's audit trail and the outputs, and applies the engine-wide rules once:

* at most one open action per slot (kind, or staff task purpose): an unchanged candidate does not stack,
  a changed one supersedes the open action (named in the audit record);
* every suppression is an audit record naming its gate (the same suppression is not repeated);
* a suppression by the attorney, deceased or bankruptcy gate routes to a staff task; no permitted
  channel becomes a staff task;
* a released action's contact is planned at its ``not_before``, so later candidates count it;
* open actions are re-checked when hard-stop facts change, and cancelled (audited) when a gate now
  stops them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from inference.facts import DraftFacts
from rules.build import build_action
from rules.candidate import Candidate
from rules.context import Context, DecisionInputs
from rules.facts import recent_contacts
from rules.gates import GateVerdict, evaluate_gates
from rules.outputs import ENGINE, AuditTrail, Decision, Output
from rules.policy import Policy
from rules.routes import ROUTED_GATES, no_channel_task, route_for
from rules.schedule import in_quiet_window
from rules.state import (
    MAX_HELD,
    MAX_HISTORY,
    MAX_REVIEWED,
    MAX_SLOTS,
    AccountState,
    ContactFact,
    DecisionSummary,
    HeldAction,
    SlotRecord,
    bounded,
)
from rules.usecases import Cause
from schemas.actions import Action, Trigger, action_id_for
from schemas.audit import Actor, AuditKind
from schemas.common import OutputModel

PLANNED_CHANNELS = ("phone", "sms", "email")
"""Channels whose contacts count towards a frequency window."""


class Session:
    def __init__(
        self,
        state: AccountState,
        policy: Policy,
        now: datetime,
        cause: Cause,
        **given: Unpack[DecisionInputs],
    ) -> None:
        self.ctx = Context.build(state, policy, now, **given)
        self.draft_requests: list[tuple[str, DraftFacts]] = []
        self.trail = AuditTrail(state, policy)
        self.cause = cause
        self.outputs: list[Output] = []
        self.history: list[DecisionSummary] = list(state.history)

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> AccountState:
        return self.ctx.state

    @property
    def now(self) -> datetime:
        return self.ctx.now

    def update(self, **changes: Any) -> None:
        self.ctx = self.ctx.with_state(self.state.model_copy(update=changes))

    def _set_slot(self, record: SlotRecord) -> None:
        self.update(slots={**self.state.slots, record.slot: record})

    def _drop_held(self, action_id: str) -> None:
        if action_id in self.state.held:
            self.update(held={k: v for k, v in self.state.held.items() if k != action_id})

    def _drop_planned(self, action_id: str) -> None:
        kept = [c for c in self.state.contacts if not (c.planned and c.action_id == action_id)]
        if len(kept) != len(self.state.contacts):
            self.update(contacts=kept)

    def audit(
        self, audit_kind: AuditKind, /, *, action_id: str | None = None, actor: Actor = ENGINE, **details: Any
    ) -> None:
        self.trail.append(
            audit_kind,
            self.now,
            action_id=action_id,
            event_id=self.cause.event_id,
            details=details,
            actor=actor,
            model_version=self.ctx.scoring.model_version,
        )

    def emit(self, topic: str, value: OutputModel) -> None:
        self.outputs.append(Output(topic, self.state.account_id, value))  # type: ignore[arg-type]

    def note(self, action_id: str | None, kind: str | None, outcome: str, gates: list[str]) -> None:
        self.history.append(
            DecisionSummary(
                at=self.now,
                event_id=self.cause.event_id,
                event_type=self.cause.event_type,
                action_id=action_id,
                kind=kind,
                outcome=outcome,
                gates=gates,
            )
        )

    # -- candidates -----------------------------------------------------------------------------

    def consider(self, candidate: Candidate) -> None:
        """Gate one candidate and act on the verdict."""
        record = self.state.slots.get(candidate.slot)
        if record is not None and record.offers(candidate, self.now):
            return  # the same offer is already open: a re-trigger does not stack
        verdict = evaluate_gates(candidate, self.ctx)
        action_id = action_id_for(self.state.account_id, self.cause.event_id, candidate.slot)
        if verdict.outcome == "suppress":
            self._suppressed(candidate, verdict, action_id, record, verdict.suppressed_by or "")
            route = (
                route_for(verdict.suppressed_by or "", self.state)
                if verdict.suppressed_by in ROUTED_GATES
                else None
            )
            if route is not None:
                self.consider(route)
            return
        if verdict.outcome == "staff_task":
            self._suppressed(candidate, verdict, action_id, record, "G-CONSENT", rerouted="staff_task")
            self.consider(no_channel_task(candidate))
            return
        built = build_action(
            action_id,
            candidate,
            verdict,
            self.ctx,
            Trigger(event_id=self.cause.event_id, type=self.cause.event_type),
        )
        if built.facts is not None:
            self.draft_requests.append((action_id, built.facts))
        if built.fallback is not None:
            self.audit(
                "draft_fallback",
                action_id=action_id,
                kind=candidate.kind,
                reason=built.fallback.fallback_reason,
                violations=list(built.fallback.violations),
                template_id=built.action.message.template_id if built.action.message else None,
            )
        self._emit_action(candidate, built.action, verdict, record)

    def _suppressed(
        self,
        candidate: Candidate,
        verdict: GateVerdict,
        action_id: str,
        record: SlotRecord | None,
        gate: str,
        **extra: Any,
    ) -> None:
        key = f"{candidate.fingerprint}:{gate}"
        if record is not None and record.suppressed_key == key:
            return  # this suppression is on record already
        gates = verdict.gates_not_passed
        self.audit(
            "suppressed",
            action_id=action_id,
            kind=candidate.kind,
            slot=candidate.slot,
            gate=gate,
            gates=gates,
            channel=verdict.channel,
            **extra,
        )
        self.note(action_id, candidate.kind, "suppressed", gates)
        if record is not None and record.is_open(self.now):
            self._set_slot(record.model_copy(update={"suppressed_key": key}))
            return
        self._set_slot(
            SlotRecord(
                slot=candidate.slot,
                action_id=action_id,
                kind=candidate.kind,
                channel=verdict.channel,
                state="suppressed",
                created_at=self.now,
                expires_at=verdict.expires_at,
                fingerprint=candidate.fingerprint,
                trigger_event_id=self.cause.event_id,
                audience=candidate.audience,
                gate=gate,
                suppressed_key=key,
            )
        )

    def _emit_action(
        self, candidate: Candidate, action: Action, verdict: GateVerdict, record: SlotRecord | None
    ) -> None:
        superseded = record if record is not None and record.is_open(self.now) else None
        if superseded is not None:
            self._drop_held(superseded.action_id)
            self._drop_planned(superseded.action_id)
            self.audit(
                "decision",
                action_id=superseded.action_id,
                effect="superseded",
                by=action.action_id,
                was=superseded.state,
                slot=superseded.slot,
            )
        held = action.review.required
        gates = verdict.gates_not_passed
        self.audit(
            "review_requested" if held else "decision",
            action_id=action.action_id,
            kind=candidate.kind,
            slot=candidate.slot,
            channel=action.channel,
            not_before=action.not_before.isoformat(),
            gates=gates,
            review_reasons=list(action.review.reasons),
            superseded=superseded.action_id if superseded else None,
            message_source=action.message.source if action.message else None,
        )
        self.emit("review" if held else "actions", action)
        self._set_slot(
            SlotRecord(
                slot=candidate.slot,
                action_id=action.action_id,
                kind=candidate.kind,
                channel=action.channel,
                state="held" if held else "released",
                created_at=self.now,
                not_before=action.not_before,
                expires_at=action.expires_at,
                fingerprint=candidate.fingerprint,
                trigger_event_id=self.cause.event_id,
                audience=candidate.audience,
                reasons=list(action.review.reasons),
                balance=self.state.balance if candidate.contacts_patient else None,
            )
        )
        if held:
            self._hold(
                HeldAction(
                    action=action,
                    candidate=candidate,
                    slot=candidate.slot,
                    approver_roles=list(verdict.approver_roles),
                    trigger_type=self.cause.event_type,
                )
            )
        else:
            self.after_release(action, candidate)
        self.note(action.action_id, candidate.kind, "held" if held else "released", gates)

    def _hold(self, held: HeldAction) -> None:
        waiting = {**self.state.held, held.action.action_id: held}
        while len(waiting) > MAX_HELD:  # guard: slots keep this far lower
            oldest = min(waiting.values(), key=lambda h: h.action.created_at)
            waiting.pop(oldest.action.action_id)
            self.audit(
                "suppressed", action_id=oldest.action.action_id, gate="G-CAPACITY", cancelled=True, was="held"
            )
        self.update(held=waiting)

    def after_release(self, action: Action, candidate: Candidate) -> None:
        """Plan the contact a released action will make, and note a validation notice as given."""
        if candidate.contacts_patient and action.channel in PLANNED_CHANNELS:
            planned = ContactFact(
                at=action.not_before, channel=action.channel, action_id=action.action_id, planned=True
            )
            self.update(contacts=recent_contacts([*self.state.contacts, planned], self.now))
        validation = self.ctx.policy.third_party.validation_disclosure
        if action.message is not None and validation in action.message.disclosures:
            self.update(validation_notice_sent=True)

    # -- open actions -----------------------------------------------------------------------------

    def recheck_open(self) -> None:
        """Cancel open actions a gate now stops (a dispute, a cease letter, an opt-out ...).

        Held actions are re-checked always (new review reasons wait for the approval, which re-runs the
        gates); released ones only while their ``not_before`` is ahead (a sender may still hold them), and
        they are also stopped when they now need a review they did not have. Each cancellation is an
        audit record naming the gate.
        """
        for record in list(self.state.slots.values()):
            if not record.is_open(self.now):
                continue
            if record.state == "released" and (record.not_before is None or record.not_before <= self.now):
                continue
            held = self.state.held.get(record.action_id)
            candidate = (
                held.candidate
                if held
                else Candidate(
                    kind=record.kind,
                    purpose=record.slot.removeprefix("staff_task:")
                    if record.kind == "staff_task"
                    else record.kind,
                    audience=record.audience,
                    priority=0.0,
                )
            )
            if (
                record.state == "released"
                and record.balance is not None
                and record.balance != self.state.balance
            ):
                # A payment or an adjustment since: the words state an amount that is no longer true
                # (C-01); the next trigger proposes the action again with the new balance.
                self.cancel(record, "G-AMOUNTS", ["G-AMOUNTS"], balance_then=str(record.balance))
                continue
            if record.state == "released" and not self._still_in_quiet_window(record):
                # The patient's zones changed (a new address or number): the time senders hold is no
                # longer allowed everywhere, and a released action cannot be moved.
                self.cancel(record, "G-QUIET-HOURS", ["G-QUIET-HOURS"], zones=list(self.ctx.zones))
                continue
            verdict = self.recheck(candidate, record.action_id, record.channel, record.expires_at)
            if verdict.outcome in ("suppress", "staff_task"):
                self.cancel(record, verdict.suppressed_by or "G-CONSENT", verdict.gates_not_passed)
                continue
            new = [r for r in verdict.review_reasons if r not in record.reasons]
            if record.state == "released" and new:
                # Released without the review it now needs (e.g. a statement under a new dispute):
                # stop it; the next trigger proposes it again, to review.
                self.cancel(record, verdict.review_gates[new[0]], verdict.gates_not_passed, needs_review=new)

    def _still_in_quiet_window(self, record: SlotRecord) -> bool:
        quiet = self.ctx.policy.quiet_hours
        if (
            record.audience != "patient"
            or record.channel in quiet.exempt_channels
            or record.not_before is None
        ):
            return True
        return in_quiet_window(record.not_before, self.ctx.zones, quiet.start, quiet.end)

    def recheck(
        self, candidate: Candidate, action_id: str, channel: str | None, expires_at: datetime
    ) -> GateVerdict:
        """The gates over an existing action as it is (its channel, its expiry), without its own planned
        contact in the counts."""
        ctx = self.ctx
        own = [c for c in self.state.contacts if c.planned and c.action_id == action_id]
        if own:
            ctx = ctx.with_state(
                self.state.model_copy(update={"contacts": [c for c in self.state.contacts if c not in own]})
            )
        return evaluate_gates(candidate, ctx, fixed_channel=channel, expires_at=expires_at)

    def cancel(self, record: SlotRecord, gate: str, gates: list[str], **extra: Any) -> None:
        self.audit(
            "suppressed",
            action_id=record.action_id,
            kind=record.kind,
            slot=record.slot,
            gate=gate,
            gates=gates,
            cancelled=True,
            was=record.state,
            **extra,
        )
        self._drop_held(record.action_id)
        self._drop_planned(record.action_id)
        self._set_slot(record.model_copy(update={"state": "cancelled", "gate": gate}))
        self.note(record.action_id, record.kind, "cancelled", gates)

    def expire_held(self) -> None:
        """Held actions past their expiry leave the review queue (audited)."""
        for held in list(self.state.held.values()):
            if held.action.expires_at <= self.now:
                record = self.state.slots.get(held.slot)
                self.audit(
                    "suppressed", action_id=held.action.action_id, gate="G-EXPIRY", cancelled=True, was="held"
                )
                self._drop_held(held.action.action_id)
                if record is not None and record.action_id == held.action.action_id:
                    self._set_slot(record.model_copy(update={"state": "cancelled", "gate": "G-EXPIRY"}))

    # -- result -----------------------------------------------------------------------------------

    def mark_reviewed(self, action_id: str) -> None:
        self.update(reviewed=bounded([*self.state.reviewed, action_id], MAX_REVIEWED))

    def finish(self) -> Decision:
        slots = self.state.slots
        if len(slots) > MAX_SLOTS:
            closed = sorted(
                (r for r in slots.values() if not r.is_open(self.now)), key=lambda r: r.created_at
            )
            for record in closed[: len(slots) - MAX_SLOTS]:
                slots = {k: v for k, v in slots.items() if k != record.slot}
        state = self.state.model_copy(
            update={
                "slots": slots,
                "history": bounded(self.history, MAX_HISTORY),
                "contacts": recent_contacts(self.state.contacts, self.now),
                **self.trail.state_update(),
            }
        )
        audits = [Output("audit", state.account_id, record) for record in self.trail.records]
        return Decision(
            state=state, outputs=(*self.outputs, *audits), draft_requests=tuple(self.draft_requests)
        )
