"""Reviewer decisions on held actions (``billing.review.decisions``, POLICY.md section 2).

An approval re-runs every gate at approval time, on the held action as it is (its channel, its expiry):

* a gate that now stops it (a dispute opened meanwhile, a cease letter, an opt-out ...) → not released,
  a ``suppressed`` audit record naming the gate;
* a review reason that did not exist when it was held → held again with the new reasons (the reviewer
  approved without knowing them);
* otherwise released to ``actions`` with ``review.state = "approved"`` at the earliest allowed instant.

Only the roles the policy names may approve (``billing_manager`` or ``compliance_officer`` for a balance
over the limit or a settlement); any other role's decision is a ``review_rejected`` audit record and the
action stays held. Edited words must pass the output gates (`inference.guardrails.check_message`).
A decision on an action no longer held is audited; a redelivered one changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from inference.guardrails import check_message
from rules.build import content_gate, draft_facts, released
from rules.engine import DEFAULT_BACKEND, Backend
from rules.outputs import Decision
from rules.policy import Policy
from rules.session import Session
from rules.state import AccountState, ContactFact, HeldAction
from rules.usecases import Cause
from schemas.actions import Message, RuleOutcome, Scores
from schemas.audit import Actor
from schemas.inputs import ReviewDecision

REVIEW_EVENT_TYPE = "billing.review.decision"


def review_decision(
    state: AccountState,
    decision: ReviewDecision,
    policy: Policy,
    now: datetime,
    *,
    scores: Scores | None = None,
    person_contacts: Sequence[ContactFact] = (),
    backend: Backend = DEFAULT_BACKEND,
) -> Decision:
    """Apply a reviewer's decision at ``now`` (normally ``decision.at``)."""
    if decision.account_id != state.account_id:
        raise ValueError(f"review decision for account {decision.account_id} applied to {state.account_id}")
    held = state.held.get(decision.action_id)
    if held is None and decision.action_id in state.reviewed:
        return Decision(state=state, outputs=(), duplicate=True)
    cause = Cause("review", f"review:{decision.action_id}:{decision.at.isoformat()}", REVIEW_EVENT_TYPE)
    session = Session(
        state, policy, now, cause, scores=scores, person_contacts=person_contacts, backend=backend
    )
    actor = Actor(type="user", id=decision.reviewer.user_id, role=decision.reviewer.role)
    if held is None:
        session.audit(
            "review_rejected",
            action_id=decision.action_id,
            actor=actor,
            reason="not_held",
            decision=decision.decision,
        )
        return session.finish()
    if decision.decision == "reject":
        _reject(session, held, actor, decision)
    else:
        _approve(session, held, actor, decision)
    return session.finish()


def _reject(session: Session, held: HeldAction, actor: Actor, decision: ReviewDecision) -> None:
    if actor.role not in session.ctx.policy.review.approver_roles.default:
        _role_violation(session, held, actor, list(session.ctx.policy.review.approver_roles.default))
        return
    action = held.action
    session.audit(
        "review_rejected", action_id=action.action_id, actor=actor, reason="rejected", note=decision.note
    )
    record = session.state.slots.get(held.slot)
    session.update(held={k: v for k, v in session.state.held.items() if k != action.action_id})
    if record is not None and record.action_id == action.action_id:
        session.update(
            slots={**session.state.slots, held.slot: record.model_copy(update={"state": "rejected"})}
        )
    session.mark_reviewed(action.action_id)
    session.note(action.action_id, action.kind, "rejected", [])


def _role_violation(session: Session, held: HeldAction, actor: Actor, required: list[str]) -> None:
    session.audit(
        "review_rejected",
        action_id=held.action.action_id,
        actor=actor,
        reason="role_not_permitted",
        role=actor.role,
        required=required,
    )


def _approve(session: Session, held: HeldAction, actor: Actor, decision: ReviewDecision) -> None:
    action = held.action
    verdict = session.recheck(held.candidate, action.action_id, action.channel, action.expires_at)
    required = [role for role in held.approver_roles if role in verdict.approver_roles]
    if actor.role not in required:
        _role_violation(session, held, actor, required)
        return
    record = session.state.slots.get(held.slot)
    if verdict.outcome in ("suppress", "staff_task") or verdict.not_before is None:
        gate = verdict.suppressed_by or "G-CONSENT"
        if record is not None and record.action_id == action.action_id:
            session.cancel(record, gate, verdict.gates_not_passed, at_approval=True, reviewer=actor.id)
        else:
            session.audit(
                "suppressed", action_id=action.action_id, gate=gate, cancelled=True, at_approval=True
            )
            session.update(held={k: v for k, v in session.state.held.items() if k != action.action_id})
        session.mark_reviewed(action.action_id)
        return
    new_reasons = [r for r in verdict.review_reasons if r not in action.review.reasons]
    if new_reasons:
        reasons = [*action.review.reasons, *new_reasons]
        rehold = action.model_copy(update={"review": action.review.model_copy(update={"reasons": reasons})})
        session.audit(
            "review_requested", action_id=action.action_id, new_reasons=new_reasons, at_approval=True
        )
        session.emit("review", rehold)
        session.update(
            held={**session.state.held, action.action_id: held.model_copy(update={"action": rehold})}
        )
        return
    message = action.message
    content = next((r for r in action.explanation.rules if r.id == "G-CONTENT"), None)
    if decision.decision == "edit":
        if not decision.message or message is None:
            session.audit(
                "review_rejected", action_id=action.action_id, actor=actor, reason="edit_without_text"
            )
            return
        message = Message(
            subject=message.subject,
            body=decision.message,
            language=message.language,
            source="staff",
            disclosures=list(message.disclosures),
        )
        if held.candidate.contacts_patient or held.candidate.kind != "staff_task":
            facts = draft_facts(held.candidate, action.channel, tuple(message.disclosures), session.state)
            violations = check_message(message, facts)
            if violations:
                codes = sorted({v.code for v in violations})
                session.audit(
                    "review_rejected",
                    action_id=action.action_id,
                    actor=actor,
                    reason="edit_failed_guardrails",
                    violations=codes,
                )
                return
            content = content_gate(message, facts)
    approval = RuleOutcome(id="R-APPROVAL", outcome="approved", detail=f"{actor.role} {actor.id}")
    rules = [*held.candidate.rules, *verdict.rules, *([content] if content else []), approval]
    assert message is not None
    out = released(action, not_before=verdict.not_before, message=message, rules=rules)
    session.audit(
        "review_approved",
        action_id=action.action_id,
        actor=actor,
        kind=action.kind,
        channel=action.channel,
        not_before=out.not_before.isoformat(),
        edited=decision.decision == "edit",
        gates=verdict.gates_not_passed,
    )
    session.emit("actions", out)
    session.update(held={k: v for k, v in session.state.held.items() if k != action.action_id})
    if record is not None and record.action_id == action.action_id:
        session.update(
            slots={
                **session.state.slots,
                held.slot: record.model_copy(
                    update={
                        "state": "released",
                        "not_before": out.not_before,
                        "reasons": list(out.review.reasons),
                    }
                ),
            }
        )
    session.after_release(out, held.candidate)
    session.mark_reviewed(action.action_id)
    session.note(action.action_id, action.kind, "approved", verdict.gates_not_passed)
