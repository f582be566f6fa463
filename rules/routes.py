"""Staff tasks that stand in for patient contact: the routes of the hard-stop, consent and opt-out gates.

* attorney represented → a task to contact the attorney (Reg F 1006.6(b)(2), F-06);
* deceased → a task for the estate's personal representative, reviewed (F-29);
* bankruptcy → a task to handle the filing while collection stops;
* no permitted channel → a task to reach the patient by a permitted means (POLICY.md consent gate);
* an unclear opt-out reply ("wrong number", "no más") → a task for a person to read it (T-06).

Each has a stable fingerprint, so repeated triggers leave one open task, not a pile.

>>> from rules.state import AccountState
>>> from schemas.events import PatientUpdated
>>> state = AccountState.new("A", "P", "X").model_copy(update={"patient": PatientUpdated(
...     account_id="A", patient_id="P", practice_id="X", flags={"attorney_represented": True},
...     attorney={"name": "J. Doe", "phone": "+12125550199"})})
>>> task = route_for("G-ATTORNEY", state)
>>> task.slot, task.audience
('staff_task:attorney_contact', 'attorney')
>>> task.note
"Contact the patient's attorney J. Doe (+12125550199) about account A. Do not contact the patient."
"""

from __future__ import annotations

from rules.candidate import Audience, Candidate
from rules.state import AccountState
from schemas.actions import RuleOutcome

ROUTED_GATES = ("G-ATTORNEY", "G-DECEASED", "G-BANKRUPTCY")


def _task(
    purpose: str, audience: Audience, note: str, gate: str, detail: str, distinct: str = ""
) -> Candidate:
    return Candidate(
        kind="staff_task",
        purpose=purpose,
        audience=audience,
        priority=1.0,
        rules=(RuleOutcome(id=gate, outcome="route", detail=detail),),
        note=note,
        tags=(purpose,),
        detail=distinct,
    )


def route_for(gate: str, state: AccountState) -> Candidate | None:
    """The task a hard-stop gate routes to, or None for gates that only stop."""
    account = state.account_id
    if gate == "G-ATTORNEY":
        attorney = state.patient.attorney if state.patient else None
        who = " ".join(
            part
            for part in (
                attorney.name if attorney else None,
                f"({attorney.phone or attorney.email})"
                if attorney and (attorney.phone or attorney.email)
                else None,
            )
            if part
        )
        return _task(
            "attorney_contact",
            "attorney",
            f"Contact the patient's attorney{' ' + who if who else ''} about account {account}. "
            "Do not contact the patient.",
            gate,
            "attorney represented: contact the attorney",
        )
    if gate == "G-DECEASED":
        return _task(
            "estate",
            "estate",
            f"Patient deceased: identify the personal representative of the estate for account {account}. "
            "No outreach to the patient; do not imply that survivors are personally liable.",
            gate,
            "deceased: route to the estate",
        )
    if gate == "G-BANKRUPTCY":
        return _task(
            "bankruptcy",
            "staff",
            f"Bankruptcy reported for account {account}: collection is suspended. Verify the filing and "
            "file a claim if appropriate.",
            gate,
            "bankruptcy: collection suspended",
        )
    return None


def flag_routes(state: AccountState) -> list[Candidate]:
    """The tasks the patient's current flags call for (a new flag raises its task at once)."""
    flags = state.patient.flags if state.patient else None
    if flags is None:
        return []
    raised = {
        "G-ATTORNEY": flags.attorney_represented,
        "G-DECEASED": flags.deceased,
        "G-BANKRUPTCY": flags.bankruptcy,
    }
    return [task for gate, on in raised.items() if on and (task := route_for(gate, state)) is not None]


def no_channel_task(candidate: Candidate) -> Candidate:
    """A work item for staff when no channel may carry ``candidate`` to the patient."""
    return Candidate(
        kind="staff_task",
        purpose=f"no_channel:{candidate.kind}",
        audience="staff",
        priority=candidate.priority,
        rules=(
            *candidate.rules,
            RuleOutcome(id="G-CONSENT", outcome="staff_task", detail="no permitted channel"),
        ),
        note=f"No permitted channel for a {candidate.kind.replace('_', ' ')}: reach the patient by a "
        "permitted means, or update contact details and consent.",
        tags=("no_channel",),
        detail=candidate.fingerprint,
        balance=candidate.balance,
    )


def reply_review_task(text: str, channel: str) -> Candidate:
    """A task for a person to read an unclear reply that may be an opt-out."""
    excerpt = text.strip()[:160]
    return _task(
        "opt_out_review",
        "staff",
        f'An inbound {channel} reply may be an opt-out: "{excerpt}". Read it; if it revokes consent, '
        "record the revocation.",
        "G-OPT-OUT",
        "unclear reply: a person reads it",
        distinct=excerpt,
    )
