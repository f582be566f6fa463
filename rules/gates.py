"""Compliance gates and review routing (POLICY.md sections 2 and 3), every one for every candidate.

`evaluate_gates` picks the channel (consent and fallback), computes the earliest allowed instant
(quiet hours in every candidate zone, calendar-day frequency windows, state caps), writes one fact with
every number a gate reads and asserts it into the compiled ``gates`` ruleset. Every gate whose rules fired
gets its outcome, every other gate ``pass``; all of them land in the action's ``explanation.rules``.

Outcome precedence: any ``suppress`` wins (the first in gate order names the suppression), then a
``staff_task`` reroute (no permitted channel), else the action goes out at ``not_before``, to review when
any review rule fired.

>>> from datetime import datetime, UTC
>>> from rules.candidate import Candidate
>>> from rules.context import Context
>>> from rules.policy import load_policy
>>> from rules.state import AccountState
>>> from schemas.events import PatientUpdated
>>> patient = PatientUpdated(account_id="A", patient_id="P", practice_id="X", email="p@example.org",
...                          address={"state": "CA"}, flags={"cease_communication": True})
>>> state = AccountState.new("A", "P", "X").model_copy(update={"patient": patient})
>>> ctx = Context.build(state, load_policy(), datetime(2026, 3, 16, 12, tzinfo=UTC))
>>> verdict = evaluate_gates(Candidate(kind="statement_message", purpose="statement", priority=1), ctx)
>>> verdict.outcome, verdict.suppressed_by
('suppress', 'G-CEASE')
>>> [(r.id, r.outcome) for r in verdict.rules][:3]
[('G-CEASE', 'suppress'), ('G-ATTORNEY', 'pass'), ('G-DECEASED', 'pass')]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from rules.candidate import Candidate
from rules.channels import ChannelChoice, ChannelStatus, choose_channel, permitted
from rules.compiler import NO_CONVERSATION, RuleSpec, cents
from rules.context import Context
from rules.schedule import DayCap, DayPause, Schedule, in_quiet_window, local_day, next_quiet_ok, plan_send
from rules.state import AccountState
from schemas.actions import RuleOutcome

Outcome = Literal["release", "review", "suppress", "staff_task"]


@dataclass(frozen=True)
class GateVerdict:
    outcome: Outcome
    channel: str | None
    not_before: datetime | None
    expires_at: datetime
    suppressed_by: str | None
    review_reasons: tuple[str, ...]
    review_gates: dict[str, str]
    """Which gate raised each review reason."""
    approver_roles: tuple[str, ...]
    disclosures: tuple[str, ...]
    rules: tuple[RuleOutcome, ...]
    fired: frozenset[str]
    features: dict[str, Any]

    @property
    def gates_not_passed(self) -> list[str]:
        return [rule.id for rule in self.rules if rule.outcome != "pass"]


@lru_cache(maxsize=4096)
def rule_outcome(gate: str, outcome: str, detail: str) -> RuleOutcome:
    """Outcome records are immutable and few: build each once."""
    return RuleOutcome(id=gate, outcome=outcome, detail=detail)


def _channel(candidate: Candidate, ctx: Context, fixed: str | None) -> ChannelChoice:
    if fixed is not None or candidate.kind == "staff_task":
        channel = fixed or "phone"
        if not candidate.contacts_patient or permitted(ctx.state, channel):
            return ChannelChoice(channel, "preferred")
        return ChannelChoice(channel, "none")
    return choose_channel(ctx.state, candidate.channels, ctx.policy, ctx.channel_ranking)


def _schedule(
    candidate: Candidate, channel: str | None, ctx: Context, expires_at: datetime
) -> tuple[Schedule, dict[str, Any]]:
    """The earliest allowed instant, and the numbers the timing gates compare with the policy."""
    policy, now = ctx.policy, ctx.now
    quiet = policy.quiet_hours
    numbers: dict[str, Any] = {
        "quiet_exempt": True,
        "quiet_outside": False,
        "quiet_no_window": False,
        "calls_peak": 0,
        "days_since_conversation": NO_CONVERSATION,
        "sms_peak": 0,
        "email_peak": 0,
        "state_peak": 0,
    }
    if not candidate.contacts_patient or channel is None:
        return Schedule(now, "now"), numbers
    state_code = _state_code(ctx)
    day_rules = ctx.ledger.day_rules(channel, state_code, policy)
    today = local_day(now, ctx.reference)
    for rule in day_rules:
        if isinstance(rule, DayPause):
            since = rule.days_since(today)
            numbers["days_since_conversation"] = NO_CONVERSATION if since is None else since
        elif isinstance(rule, DayCap):
            key = {"G-CALL-FREQ": "calls_peak", "G-SMS-FREQ": "sms_peak", "G-EMAIL-FREQ": "email_peak"}
            numbers[key.get(rule.name, "state_peak")] = rule.peak(today)
    exempt = channel in quiet.exempt_channels
    zones = None if exempt else ctx.zones
    if zones is not None:
        numbers["quiet_exempt"] = False
        numbers["quiet_outside"] = not in_quiet_window(now, zones, quiet.start, quiet.end)
        numbers["quiet_no_window"] = next_quiet_ok(now, zones, quiet.start, quiet.end) is None
    schedule = plan_send(now, expires_at, day_rules, zones, ctx.reference, quiet.start, quiet.end)
    return schedule, numbers


def _state_code(ctx: Context) -> str | None:
    patient = ctx.state.patient
    return patient.address.state if patient and patient.address and patient.address.state else None


def gate_facts(
    candidate: Candidate, ctx: Context, channel: str | None, status: ChannelStatus, numbers: dict[str, Any]
) -> dict[str, Any]:
    """The one fact the gates ruleset sees for ``candidate``: every field, always."""
    state, patient = ctx.state, ctx.state.patient
    flags = patient.flags if patient else None
    return {
        "kind": candidate.kind,
        "slot": candidate.slot,
        "audience": candidate.audience,
        "channel": channel or "none",
        "collection": candidate.slot in ctx.policy.collection_slots,
        "cease": bool(flags and flags.cease_communication),
        "attorney": bool(flags and flags.attorney_represented),
        "deceased": bool(flags and flags.deceased),
        "bankruptcy": bool(flags and flags.bankruptcy),
        "dispute_open": bool(state.open_disputes),
        "ever_disputed": state.ever_disputed,
        "channel_status": status,
        "sms_revoked": state.sms_revoked_at is not None,
        **numbers,
        "state": _state_code(ctx) or "",
        "regime": patient.regime if patient else "first_party",
        "validation_sent": state.validation_notice_sent,
        "guarantor_is_patient": patient.guarantor_is_patient if patient else True,
        "confidential": bool(flags and flags.confidential_address),
        "balance_c": cents(state.balance),
        "owed_c": cents(owed(state)),
        "active_account": state.account_status in ("open", "in_collections"),
        "propensity": float(ctx.scoring.propensity),
    }


def owed(state: AccountState) -> Decimal:
    """What the patient still owes: the balance, or a running plan's remainder when that is larger."""
    plan = state.plan
    remaining = plan.balance_remaining if plan and plan.status in ("active", "defaulted") else Decimal(0)
    return max(state.balance, remaining)


def _pass_detail(gate: str, facts: dict[str, Any], ctx: Context) -> str:
    """A short note on why a gate passed, where the numbers help a reader."""
    if gate == "G-CONSENT":
        return f"channel {facts['channel']}"
    if gate == "G-QUIET-HOURS":
        return "letters exempt" if facts["quiet_exempt"] else "zones " + ", ".join(ctx.zones)
    counts = {
        "G-CALL-FREQ": "calls_peak",
        "G-SMS-FREQ": "sms_peak",
        "G-EMAIL-FREQ": "email_peak",
    }
    if gate in counts and facts["channel"] in ("phone", "sms", "email"):
        return f"{facts[counts[gate]]} in the busiest window"
    if gate.startswith("G-STATE-") and facts["state"] == gate.removeprefix("G-STATE-"):
        return f"{facts['state_peak']} in the busiest window"
    return ""


def evaluate_gates(
    candidate: Candidate,
    ctx: Context,
    *,
    fixed_channel: str | None = None,
    expires_at: datetime | None = None,
) -> GateVerdict:
    """Run every gate over ``candidate``; ``fixed_channel``/``expires_at`` re-check a held action as it is."""
    policy = ctx.policy
    expires = expires_at or ctx.now + timedelta(days=policy.actions.expires_after_days)
    channel, status, learned = _channel(candidate, ctx, fixed_channel)
    schedule, numbers = _schedule(candidate, channel, ctx, expires)
    numbers["past_expiry"] = schedule.reason == "past_expiry"
    facts = gate_facts(candidate, ctx, channel, status, numbers)
    compiled = ctx.engines.gates.compiled
    fired = ctx.engines.gates.fired(facts)

    fired_by_gate: dict[str, list[RuleSpec]] = {}
    for name in fired:
        spec = compiled.spec(name)
        fired_by_gate.setdefault(spec.gate, []).append(spec)
    outcomes: list[RuleOutcome] = []
    by_outcome: dict[str, list[str]] = {}
    review_reasons: list[str] = []
    review_gates: dict[str, str] = {}
    for gate in compiled.gate_ids:
        specs = fired_by_gate.get(gate)
        if not specs:
            outcomes.append(rule_outcome(gate, "pass", _pass_detail(gate, facts, ctx)))
            continue
        for spec in specs:
            outcomes.append(rule_outcome(gate, spec.outcome, spec.detail))
            by_outcome.setdefault(spec.outcome, []).append(gate)
            if spec.outcome == "review" and spec.reason:
                review_reasons.append(spec.reason)
                review_gates.setdefault(spec.reason, gate)

    suppressed_by = next(iter(by_outcome.get("suppress", [])), None)
    if suppressed_by is None and schedule.not_before is None:
        # The rules and the schedule disagree: fail closed rather than send at an unknown time.
        suppressed_by = "G-QUIET-HOURS" if schedule.reason == "no_window" else "G-EXPIRY"
    outcome: Outcome
    if suppressed_by is not None:
        outcome = "suppress"
    elif "staff_task" in by_outcome:
        outcome = "staff_task"
    else:
        outcome = "review" if review_reasons else "release"

    disclosures = list(candidate.disclosures)
    if "G-THIRD-PARTY.validation" in fired:
        disclosures += [policy.third_party.validation_disclosure, policy.third_party.disclosure]
    elif "G-THIRD-PARTY.disclose" in fired:
        disclosures.append(policy.third_party.disclosure)
    roles = policy.review.approver_roles
    return GateVerdict(
        outcome=outcome,
        channel=channel,
        not_before=schedule.not_before,
        expires_at=expires,
        suppressed_by=suppressed_by,
        review_reasons=tuple(dict.fromkeys(review_reasons)),
        review_gates=review_gates,
        approver_roles=tuple(roles.restricted if "R-APPROVER" in fired else roles.default),
        disclosures=tuple(dict.fromkeys(disclosures)),
        rules=tuple(outcomes),
        fired=fired,
        features={
            "zones": list(ctx.zones),
            "reference_zone": ctx.reference,
            "schedule": schedule.reason,
            **({"channel_choice": dict(learned)} if learned else {}),
        },
    )
