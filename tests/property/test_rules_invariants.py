"""Compliance invariants over random event sequences (hypothesis).

Whatever the events, their order and the reviewers' approvals:

* no action the engine releases reaches a patient with an open dispute, a cease request, an attorney,
  a death or a bankruptcy on record, and a hard stop cancels released actions still waiting for their
  time (a statement approved by a reviewer under a dispute is the policy's one exception);
* no SMS goes out without SMS consent, a mobile number and no opt-out since;
* every ``not_before`` of a timed channel lies in 08:00-21:00 in every candidate zone of the patient,
  when released and for as long as it waits (the patient's zones may change meanwhile);
* no released call makes an eighth in any 7 calendar days.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.decide import daily_scan, decide, scan_day, scan_due
from rules.examples import account, communication, consent, dispute, patient, payment, plan, statement
from rules.outputs import Decision
from rules.policy import load_policy
from rules.review import review_decision
from rules.schedule import start_of_day
from rules.state import AccountState
from rules.zones import candidate_zones, reference_zone
from schemas.actions import PATIENT_FACING_KINDS, Action
from schemas.audit import AuditRecord
from schemas.inputs import ReviewDecision

POLICY = load_policy()
START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
PATIENT_CALL_TAGS = {"collections_call", "plan_default"}
HARD_STOP_FLAGS = ("cease_communication", "attorney_represented", "deceased", "bankruptcy")

phones = st.sampled_from(
    ["+12125550123", "+14155550123", "+16175550123", "+16025550123", "+13175550123", None]
)
states = st.sampled_from([None, "NY", "CA", "MA", "AZ", "IN", "TX", "WA"])
zones = st.sampled_from(
    [None, "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Phoenix"]
)
maybe = st.sampled_from([True, True, None, False])


@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    state = draw(states)
    flags = {flag: draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False for flag in HARD_STOP_FLAGS}
    return {
        "mobile_phone": draw(phones),
        "home_phone": draw(phones),
        "email": draw(st.sampled_from(["p@example.org", None])),
        "address": {"line": "1 Main St", "state": state} if state else None,
        "timezone": draw(zones),
        "preferred_channel": draw(
            st.sampled_from([None, "sms", "sms", "email", "portal", "letter", "phone"])
        ),
        "consent": {"sms": draw(maybe), "email": draw(maybe), "portal": draw(maybe)},
        "flags": {**flags, "confidential_address": draw(st.booleans())},
        "regime": draw(st.sampled_from(["first_party", "first_party", "first_party", "third_party"])),
        "language": draw(st.sampled_from(["en", "es"])),
    }


money = st.integers(0, 900_000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")
service_days = st.integers(0, 200).map(lambda days: (START.date() - timedelta(days=days)).isoformat())

steps = st.one_of(
    st.tuples(st.just("patient"), patients()),
    st.tuples(st.just("account"), st.tuples(money, service_days)),
    st.tuples(st.just("statement"), money),
    st.tuples(st.just("statement"), money),
    st.tuples(st.just("plan"), st.integers(1, 3)),
    st.tuples(st.just("calls"), st.integers(4, 9)),
    st.tuples(st.just("payment"), st.tuples(money, money)),
    st.tuples(st.just("plan"), st.integers(0, 3)),
    st.tuples(st.just("dispute"), st.sampled_from(["opened", "resolved"])),
    st.tuples(
        st.just("contact"),
        st.tuples(
            st.sampled_from(["phone", "sms", "email"]),
            st.sampled_from(["no_answer", "voicemail", "answered", "delivered", "failed", "conversation"]),
        ),
    ),
    st.tuples(st.just("reply"), st.sampled_from(["STOP", "wrong number", "ok thanks", "quit", "👍"])),
    st.tuples(
        st.just("consent"), st.tuples(st.sampled_from(["sms", "email", "phone", "all"]), st.booleans())
    ),
    st.tuples(st.just("review"), st.sampled_from(["collector", "billing_manager", "compliance_officer"])),
)
sequences = st.tuples(
    patients(), st.lists(st.tuples(st.integers(1, 3 * 24 * 60), steps), min_size=1, max_size=18)
)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event_for(kind: str, arg: Any, at: datetime, n: int) -> Any:
    t = stamp(at)
    if kind == "patient":
        return patient(t, **arg)
    if kind == "account":
        return account(t, arg[0], arg[1])
    if kind == "statement":
        return statement(t, arg, statement_id=f"S-{n}")
    if kind == "payment":
        return payment(t, arg[0], expected=arg[1], payment_id=f"PAY-{n}")
    if kind == "plan":
        return plan(t, missed=arg, plan_id=f"PL-{n}")
    if kind == "dispute":
        return dispute(t, status=arg)
    if kind == "contact":
        return communication(t, arg[0], arg[1], communication_id=f"C-{n}")
    if kind == "calls":  # a sender logging a burst of unanswered calls, one a day back from now
        return [
            communication(stamp(at - timedelta(days=d)), "phone", "no_answer", communication_id=f"B-{n}-{d}")
            for d in range(arg)
        ]
    if kind == "reply":
        return communication(t, "sms", "replied", "inbound", text=arg, communication_id=f"R-{n}")
    return consent(t, arg[0], arg[1])


def reaches_patient(action: Action) -> bool:
    return action.kind in PATIENT_FACING_KINDS or bool(PATIENT_CALL_TAGS & set(action.tags))


def calls_by_day(state: AccountState) -> Counter[date]:
    zone = ZoneInfo(reference_zone(state.patient, POLICY))
    return Counter(
        c.at.astimezone(zone).date()
        for c in state.contacts
        if c.channel == "phone" and c.direction == "outbound" and c.outcome != "failed"
    )


def check(before: AccountState | None, decision: Decision, at: datetime) -> None:
    state = decision.state
    flags = state.patient.flags if state.patient else None
    stopped = bool(flags and any(getattr(flags, f) for f in HARD_STOP_FLAGS))
    released = [o.value for o in decision.outputs if o.topic == "actions"]
    for action in released:
        assert isinstance(action, Action)
        if reaches_patient(action):
            assert not stopped, (action.kind, flags)
            approved_under_dispute = (
                action.review.state == "approved" and "R-DISPUTE-OPEN" in action.review.reasons
            )
            assert not state.open_disputes or approved_under_dispute, action.kind
        if action.channel == "sms":
            patient_ = state.patient
            assert patient_ is not None and patient_.mobile_phone and patient_.consent.sms is True
            assert state.sms_revoked_at is None
        if reaches_patient(action) and action.channel not in POLICY.quiet_hours.exempt_channels:
            for name in candidate_zones(state.patient, POLICY):
                local = action.not_before.astimezone(ZoneInfo(name)).time()
                assert time(8) <= local < time(21), (name, action.not_before)
        if reaches_patient(action) and action.channel == "phone":
            calls = calls_by_day(state)
            day = action.not_before.astimezone(ZoneInfo(reference_zone(state.patient, POLICY))).date()
            for first in (day - timedelta(days=k) for k in range(7)):
                window = sum(calls[first + timedelta(days=i)] for i in range(7))
                assert window <= POLICY.frequency.calls.max_in_window, (day, window)
    # Released actions still waiting for their time stay inside the window of the patient's zones as
    # they are now (an address change cancels what no longer fits).
    quiet = POLICY.quiet_hours
    for record in state.slots.values():
        waiting = record.state == "released" and record.not_before is not None and record.not_before > at
        if waiting and record.audience == "patient" and record.channel not in quiet.exempt_channels:
            assert record.not_before is not None
            for name in candidate_zones(state.patient, POLICY):
                local = record.not_before.astimezone(ZoneInfo(name)).time()
                assert quiet.start <= local < quiet.end, (name, record)
    # A hard stop that arrives now cancels every released patient action still waiting for its time.
    if before is not None and stopped:
        cancelled = {
            o.value.action_id
            for o in decision.outputs
            if isinstance(o.value, AuditRecord)
            and o.value.kind == "suppressed"
            and o.value.details.get("cancelled")
        }
        for record in before.slots.values():
            waiting = record.state == "released" and record.not_before is not None and record.not_before > at
            if waiting and record.expires_at > at and record.audience == "patient":
                assert record.action_id in cancelled or state.slots[record.slot].state == "cancelled", record


def scan_until(state: AccountState, at: datetime) -> AccountState:
    day = state.last_scan_day or scan_day(at, POLICY)
    while scan_due(day, at, POLICY):
        day += timedelta(days=1)
        moment = start_of_day(day, POLICY.scan.timezone)
        decision = daily_scan(state, POLICY, moment)
        check(state, decision, moment)
        state = decision.state
    return state


def run_sequence(sequence: tuple[dict[str, Any], list[tuple[int, tuple[str, Any]]]]) -> None:
    """Drive one account through the steps (with daily scans between days), checking every decision."""
    first, rest = sequence
    state: AccountState | None = None
    at = START
    for n, (gap, (kind, arg)) in enumerate([(0, ("patient", first)), *rest]):
        at += timedelta(minutes=gap)
        if state is not None:
            state = scan_until(state, at)
        if kind == "review":
            if state is None or not state.held:
                continue
            action_id = sorted(state.held)[n % len(state.held)]
            reviewed = ReviewDecision(
                action_id=action_id,
                account_id=state.account_id,
                decision="approve",
                reviewer={"user_id": "u-1", "role": arg},
                at=at,
            )
            decision = review_decision(state, reviewed, POLICY, at)
        else:
            events = event_for(kind, arg, at, n)
            for event in events if isinstance(events, list) else [events]:
                decision = decide(state, event, POLICY)
                check(state, decision, at)
                state = decision.state
            continue
        check(state, decision, at)
        state = decision.state


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences)
def test_no_released_action_breaks_a_gate(
    sequence: tuple[dict[str, Any], list[tuple[int, tuple[str, Any]]]],
) -> None:
    run_sequence(sequence)


call_steps = st.one_of(
    st.tuples(st.just("calls"), st.integers(1, 9)),
    st.tuples(st.just("plan"), st.integers(2, 3)),
    st.tuples(
        st.just("contact"), st.tuples(st.just("phone"), st.sampled_from(["no_answer", "failed", "voicemail"]))
    ),
    st.tuples(st.just("account"), st.tuples(money, service_days)),
)
call_sequences = st.tuples(
    patients().map(lambda p: {**p, "mobile_phone": "+12125550123", "flags": {}, "regime": "first_party"}),
    st.lists(st.tuples(st.integers(1, 2 * 24 * 60), call_steps), min_size=2, max_size=14),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call_sequences)
def test_no_eighth_call_in_seven_days(
    sequence: tuple[dict[str, Any], list[tuple[int, tuple[str, Any]]]],
) -> None:
    """The same invariants on call-heavy histories, where the 7-in-7 cap is reached often."""
    run_sequence(sequence)
