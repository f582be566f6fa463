"""Turning a gated candidate into a contract `Action`: the words, the schedule, the review and the why.

Patient-facing words come from the approved templates (`inference.templates.render_template`) with only
facts the account state holds (`draft_facts`). Words that are not an approved template (a model draft,
a reviewer's edit) must pass the output gates of POLICY.md section 3 (PHI in SMS, amounts, tone, SMS
shape: `inference.guardrails.check_message`), recorded as gate ``G-CONTENT``; a failure holds the action
for review. Staff tasks for non-patients (the attorney, the estate, internal reviews)
carry an internal instruction instead of a message to the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inference.drafting import DraftOutcome
from inference.facts import DraftFacts, conversation_fields
from inference.guardrails import check_message
from inference.templates import render_template
from rules.candidate import Candidate
from rules.context import Context
from rules.gates import GateVerdict
from rules.state import AccountState
from schemas.actions import Action, Explanation, Message, Review, RuleOutcome, Trigger

STAFF_NOTE_VERSION = "v1"


@dataclass(frozen=True)
class Built:
    action: Action
    facts: DraftFacts | None
    fallback: DraftOutcome | None = None
    """The model's failed draft when the template stands in for it (audited as ``draft_fallback``)."""


def draft_facts(
    candidate: Candidate, channel: str, disclosures: tuple[str, ...], state: AccountState
) -> DraftFacts:
    """What the draft of ``candidate`` may say: only facts the account state holds."""
    patient = state.patient
    last_payment = state.last_payment
    if candidate.kind == "statement_message" and not candidate.features.get("acknowledge_payment"):
        last_payment = None  # a statement acknowledges only a recent payment
    statement = state.last_statement
    return DraftFacts(
        kind=candidate.kind,
        channel=channel,
        language=patient.language if patient else "en",
        patient_name=(patient.name.given or None) if patient else None,
        account_id=state.account_id,
        balance=state.balance,
        insurance_pending=state.insurance_pending or None,
        last_payment_amount=last_payment.amount if last_payment else None,
        last_payment_date=last_payment.at.date() if last_payment else None,
        due_date=statement.due_date if statement else None,
        plan_options=candidate.plan_options,
        settlement=candidate.settlement,
        variance=candidate.variance,
        disclosures=disclosures,
        **conversation_fields(candidate.features),
    )


def staff_note(candidate: Candidate, state: AccountState) -> Message:
    """The instruction of a staff task that is not a call to the patient (English: it is for staff)."""
    body = candidate.note or f"Staff task ({candidate.purpose}) for account {state.account_id}."
    return Message(
        subject=f"Staff task: {candidate.purpose.replace('_', ' ')} (account {state.account_id})",
        body=body,
        language="en",
        source="template",
        template_id=f"staff_note.{candidate.purpose.split(':')[0]}.{STAFF_NOTE_VERSION}",
    )


def content_gate(message: Message, facts: DraftFacts | None) -> RuleOutcome:
    """Gate G-CONTENT: amounts, tone, PHI in SMS and SMS shape of the words.

    Approved templates are the words these gates fall back to (POLICY.md section 3: "reject the draft,
    use the template"), filled only from `DraftFacts`: they pass by construction and are not re-linted
    here (the lint costs about a millisecond). Words from a model or a reviewer are checked.
    """
    if facts is None:
        return RuleOutcome(id="G-CONTENT", outcome="pass", detail="internal staff instruction")
    if message.source == "template":
        return RuleOutcome(id="G-CONTENT", outcome="pass", detail=f"approved template {message.template_id}")
    violations = check_message(message, facts)
    if not violations:
        return RuleOutcome(id="G-CONTENT", outcome="pass", detail=message.template_id or message.source)
    codes = ", ".join(dict.fromkeys(v.code for v in violations))
    return RuleOutcome(id="G-CONTENT", outcome="review", detail=codes)


def build_action(
    action_id: str, candidate: Candidate, verdict: GateVerdict, ctx: Context, trigger: Trigger
) -> Built:
    """The action for a candidate the gates let through (``verdict.outcome`` release or review)."""
    assert verdict.channel is not None and verdict.not_before is not None
    state = ctx.state
    facts: DraftFacts | None = None
    fallback: DraftOutcome | None = None
    if candidate.kind == "staff_task" and not candidate.contacts_patient:
        message = staff_note(candidate, state)
    else:
        facts = draft_facts(candidate, verdict.channel, verdict.disclosures, state)
        drafted = ctx.drafts.get(action_id)
        if drafted is not None and drafted.fallback_reason is None:
            message = drafted.message
        else:
            message = render_template(facts)
            fallback = drafted if drafted is not None and drafted.fallback_reason != "disabled" else None
    content = content_gate(message, facts)
    reasons = list(verdict.review_reasons)
    if content.outcome != "pass":
        reasons.append("R-REVIEW-CONTENT")
    features = {
        "propensity_to_pay": ctx.scoring.propensity,
        "scores_source": ctx.scoring.source,
        "balance": str(state.balance),
        "purpose": candidate.purpose,
        **verdict.features,
        **candidate.features,
    }
    action = Action(
        action_id=action_id,
        account_id=state.account_id,
        patient_id=state.patient_id,
        practice_id=state.practice_id,
        kind=candidate.kind,
        channel=verdict.channel,
        created_at=ctx.now,
        not_before=verdict.not_before,
        expires_at=verdict.expires_at,
        priority=candidate.priority,
        message=message,
        plan_options=list(candidate.plan_options),
        settlement=candidate.settlement,
        scores=ctx.scoring.as_scores(),
        review=Review(
            required=bool(reasons), reasons=reasons, state="pending" if reasons else "not_required"
        ),
        explanation=Explanation(
            policy_version=ctx.policy.version,
            rules=[*candidate.rules, *verdict.rules, content],
            features=features,
        ),
        trigger=trigger,
        tags=list(candidate.tags),
    )
    return Built(action, facts, fallback)


def released(action: Action, *, not_before: datetime, message: Message, rules: list[RuleOutcome]) -> Action:
    """A held action as it leaves review: approved, re-scheduled by the gates at approval time."""
    review = action.review.model_copy(update={"state": "approved"})
    explanation = action.explanation.model_copy(update={"rules": rules})
    return action.model_copy(
        update={"not_before": not_before, "message": message, "review": review, "explanation": explanation}
    )
