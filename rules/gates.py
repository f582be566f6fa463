"""Compliance gates (POLICY.md section 3): every gate is evaluated for every candidate.

`evaluate_gates` returns a `GateVerdict`: the channel to use, the earliest send time, whether the
candidate is suppressed or held for review, and one `RuleOutcome` per gate for the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rules.candidates import Candidate
from rules.policy import Policy
from rules.state import AccountState
from schemas.actions import RuleOutcome

PATIENT_CONTACT_KINDS = frozenset(
    {
        "statement_message",
        "payment_plan_offer",
        "payment_reminder",
        "assistance_invite",
        "settlement_offer",
        "short_pay_inquiry",
        "conversation_reply",
    }
)


@dataclass(frozen=True)
class GateVerdict:
    channel: str
    not_before: datetime
    suppressed_by: str | None
    review_reasons: tuple[str, ...]
    rules: tuple[RuleOutcome, ...]
    disclosures: tuple[str, ...] = ()


def _permitted_channels(state: AccountState) -> list[str]:
    patient = state.patient
    if patient is None:
        return []
    permitted = []
    if patient.email and patient.consent.email is not False:
        permitted.append("email")
    if patient.consent.portal:
        permitted.append("portal")
    if patient.mobile_phone and patient.consent.sms:
        permitted.append("sms")
    if patient.address and patient.address.line and not patient.flags.confidential_address:
        permitted.append("letter")
    return permitted


def _choose_channel(state: AccountState, policy: Policy) -> str | None:
    permitted = _permitted_channels(state)
    preferred = state.patient.preferred_channel if state.patient else None
    for channel in [preferred, *policy.channels.fallback_order]:
        if channel in permitted:
            return channel
    return None


def _quiet_hours(now: datetime, zone: ZoneInfo, policy: Policy) -> datetime:
    """The earliest instant at or after ``now`` inside the allowed window of ``zone``."""
    local = now.astimezone(zone)
    start, end = policy.quiet_hours.start, policy.quiet_hours.end
    if start <= local.time() < end:
        return now
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(now.tzinfo)


def evaluate_gates(candidate: Candidate, state: AccountState, policy: Policy, now: datetime) -> GateVerdict:
    """Run every gate over ``candidate`` and collect their outcomes."""
    rules: list[RuleOutcome] = []
    suppressed_by: str | None = None
    review: list[str] = []
    flags = state.patient.flags if state.patient else None

    for gate, raised in (
        ("G-CEASE", bool(flags and flags.cease_communication)),
        ("G-DECEASED", bool(flags and flags.deceased)),
        ("G-BANKRUPTCY", bool(flags and flags.bankruptcy)),
        ("G-ATTORNEY", bool(flags and flags.attorney_represented)),
    ):
        rules.append(RuleOutcome(id=gate, outcome="suppress" if raised else "pass"))
        if raised and suppressed_by is None:
            suppressed_by = gate

    if state.open_disputes:
        rules.append(RuleOutcome(id="G-DISPUTE", outcome="review", detail="open dispute"))
        review.append("R-DISPUTE-OPEN")
    else:
        rules.append(RuleOutcome(id="G-DISPUTE", outcome="pass"))

    channel = _choose_channel(state, policy)
    if channel is None:
        rules.append(RuleOutcome(id="G-CONSENT", outcome="suppress", detail="no permitted channel"))
        suppressed_by = suppressed_by or "G-CONSENT"
        channel = "letter"
    else:
        rules.append(RuleOutcome(id="G-CONSENT", outcome="pass", detail=f"channel {channel}"))

    zone_name = (state.patient.timezone if state.patient else None) or policy.quiet_hours.default_timezone
    not_before = now if channel == "letter" else _quiet_hours(now, ZoneInfo(zone_name), policy)
    rules.append(
        RuleOutcome(
            id="G-QUIET-HOURS",
            outcome="delay" if not_before > now else "pass",
            detail=f"zone {zone_name}",
        )
    )

    if state.balance > policy.review.balance_over:
        review.append("R-REVIEW-BALANCE")
    rules.append(RuleOutcome(id="R-REVIEW", outcome="review" if review else "pass", detail=", ".join(review)))

    disclosures = ("opt_out",) if channel == "sms" else ()
    return GateVerdict(
        channel=channel,
        not_before=not_before,
        suppressed_by=suppressed_by,
        review_reasons=tuple(review),
        rules=tuple(rules),
        disclosures=disclosures,
    )
