"""compliance-rules.md section 14, the items POLICY.md's gates cover: 1-6, 8, 11, 14-16, 20 and 21.

Items 4 and 21 (a dispute racing a held action, a hallucinated amount in an edit) are exercised through
review decisions in ``test_rules_review.py``; their decision-time halves are here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from rules.decide import decide
from rules.examples import Account, communication, consent, dispute, event, patient, plan, statement
from rules.policy import load_policy
from rules.state import ContactFact
from schemas.actions import Action

NY = ZoneInfo("America/New_York")


def opened(**fields: object) -> Account:
    acct = Account()
    acct.send(patient("2026-03-01T14:00:00Z", **fields))
    return acct


def only(actions: list[Action], kind: str) -> Action:
    [action] = [a for a in actions if a.kind == kind]
    return action


def call_task(acct: Account, at: str) -> Action | None:
    """A plan with two missed payments raises a staff call (the patient's phone)."""
    step = acct.send(plan(at, missed=2, plan_id=f"PL-{at}"))
    return next((a for a in step.actions if a.kind == "staff_task"), None)


def test_1_patient_zone_not_practice_zone() -> None:
    acct = opened(mobile_phone="+12125550123", address={"line": "1 Sunset", "state": "CA"})
    action = only(acct.send(statement("2026-06-10T14:00:00Z", "120.00")).actions, "statement_message")
    # 10:00 in New York is 07:00 in California: 11:00 Eastern is the first hour allowed in both.
    assert action.not_before == datetime(2026, 6, 10, 11, 0, tzinfo=NY)
    assert action.explanation.features["zones"] == ["America/Los_Angeles", "America/New_York"]


def test_2_dst_days_keep_08_00_local() -> None:
    spring = opened().send(statement("2026-03-08T11:30:00Z", "120.00"))  # 07:30 EDT on the change day
    assert only(spring.actions, "statement_message").not_before == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    fall = opened().send(statement("2026-11-01T11:30:00Z", "120.00"))  # 06:30 EST on the change day
    assert only(fall.actions, "statement_message").not_before == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def test_3_two_phones_count_together_and_opt_outs_reach_as_far_as_they_say() -> None:
    acct = opened(home_phone="+12125550177")
    for day in range(11, 18):  # 7 calls, to either number: one count
        acct.send(communication(f"2026-03-{day}T15:00:00Z", "phone", "no_answer"))
    task = call_task(acct, "2026-03-17T18:00:00Z")
    assert task is not None and task.not_before == datetime(2026, 3, 18, 8, 0, tzinfo=NY)
    # "Stop calling my work phone" blocks that number only; the mobile can still be called.
    acct.send(consent("2026-03-18T15:00:00Z", "phone", False, address="+12125550177"))
    assert call_task(acct, "2026-03-18T16:00:00Z") is not None
    # "Stop calling" blocks every call.
    acct.send(consent("2026-03-18T17:00:00Z", "phone", False))
    blocked = acct.send(plan("2026-03-18T18:00:00Z", missed=3, plan_id="PL-X"))
    assert blocked.actions == [] and blocked.suppressed() == {"staff_task": "G-CONSENT"}
    # STOP on one SMS thread revokes SMS everywhere (the engine's revoke-all default).
    acct.send(communication("2026-03-18T19:00:00Z", "sms", "replied", "inbound", text="STOP"))
    assert acct.state.sms_revoked_at is not None


def test_4_a_dispute_cancels_a_released_action_still_waiting_for_its_time() -> None:
    acct = opened(preferred_channel="sms")
    sms = only(acct.send(statement("2026-03-16T05:00:00Z", "120.00")).actions, "statement_message")  # 01:00
    assert not sms.review.required and sms.not_before == datetime(2026, 3, 16, 8, 0, tzinfo=NY)
    step = acct.send(dispute("2026-03-16T06:02:00Z"))
    [cancel] = [a for a in step.audits if a.action_id == sms.action_id]
    assert (
        cancel.kind == "suppressed" and cancel.details["cancelled"] and cancel.details["gate"] == "G-DISPUTE"
    )


def test_5_a_conversation_pauses_calls_until_day_8_and_does_not_count() -> None:
    acct = opened()
    acct.send(communication("2026-03-16T15:00:00Z", "phone", "conversation", "inbound"))  # Monday
    task = call_task(acct, "2026-03-17T15:00:00Z")
    assert task is not None and task.not_before == datetime(2026, 3, 23, 8, 0, tzinfo=NY)  # next Monday
    rules = {r.id: r.outcome for r in task.explanation.rules}
    assert rules["G-CALL-PAUSE"] == "delay" and rules["G-CALL-FREQ"] == "pass"


def test_6_the_eighth_call_waits_for_the_next_day() -> None:
    acct = opened()
    for day in range(11, 18):  # Wednesday 11 March to Tuesday 17 March, one unanswered call a day
        acct.send(
            communication(f"2026-03-{day}T15:00:00Z", "phone", "voicemail" if day == 12 else "no_answer")
        )
    acct.send(communication("2026-03-17T16:00:00Z", "phone", "failed"))  # never connected: not counted
    task = call_task(acct, "2026-03-18T00:00:00Z")  # Tuesday 20:00 in New York
    assert task is not None
    assert task.not_before == datetime(2026, 3, 18, 8, 0, tzinfo=NY)  # Wednesday 08:00
    assert {r.id: r.outcome for r in task.explanation.rules}["G-CALL-FREQ"] == "delay"


def test_8_opt_out_wording() -> None:
    replies = {
        "no mas": "ambiguous",
        "no más": "ambiguous",
        "wrong number": "ambiguous",
        "🙄": "ambiguous",
        "stop texting me pls": "revoke",
        "STOP": "revoke",
    }
    for text, expected in replies.items():
        acct = opened()
        step = acct.send(communication("2026-03-16T15:00:00Z", "sms", "replied", "inbound", text=text))
        if expected == "revoke":
            assert acct.state.sms_revoked_at is not None, text
        else:
            assert acct.state.sms_revoked_at is None, text
            # A person reads it; the conversation's activity-log note is a write-back, not a task.
            tasks = [a.tags for a in step.actions if a.kind != "platform_update"]
            assert tasks == [["opt_out_review"]], text
    email = opened()
    email.send(communication("2026-03-16T15:00:00Z", "email", "replied", "inbound", text="STOP"))
    assert email.state.email_revoked_at is not None and email.state.sms_revoked_at is None


def test_11_massachusetts_third_contact_in_seven_days_waits() -> None:
    acct = opened(preferred_channel="sms", address={"line": "1 Beacon", "state": "MA"})
    acct.send(communication("2026-03-12T15:00:00Z", "sms", "delivered"))
    acct.send(communication("2026-03-13T15:00:00Z", "phone", "voicemail"))  # a voicemail counts
    sms = only(acct.send(statement("2026-03-16T15:00:00Z", "120.00")).actions, "statement_message")
    rules = {r.id: r.outcome for r in sms.explanation.rules}
    assert rules["G-STATE-MA"] == "delay" and rules["G-SMS-FREQ"] == "pass"  # Reg F alone would allow it
    assert sms.not_before == datetime(2026, 3, 19, 8, 0, tzinfo=NY)


def test_14_deceased_blocks_the_queued_reminder_and_routes_to_the_estate() -> None:
    acct = opened(preferred_channel="portal")
    acct.send(plan("2026-03-16T15:00:00Z", missed=1))
    queued = [
        o.value
        for o in acct.outputs
        if o.topic in ("actions", "review") and o.value.kind == "payment_reminder"
    ]
    [reminder] = queued
    assert reminder.channel == "portal"
    step = acct.send(patient("2026-03-16T15:30:00Z", preferred_channel="portal", flags={"deceased": True}))
    assert step.suppressed()["payment_reminder"] == "G-DECEASED"
    [estate] = step.held
    assert estate.kind == "staff_task" and "estate" in estate.tags and estate.review.required
    assert "survivors" in (estate.message.body if estate.message else "")


def test_15_guarantor_is_not_the_patient_and_asked_for_confidentiality() -> None:
    fields = {"guarantor_is_patient": False, "flags": {"confidential_address": True}, "email": None}
    portal = opened(mobile_phone=None, **fields)
    held = only(portal.send(statement("2026-03-16T15:00:00Z", "120.00")).held, "statement_message")
    assert held.channel == "portal" and "R-REVIEW-GUARANTOR" in held.review.reasons
    nothing = opened(mobile_phone=None, consent={"portal": False}, **fields)
    step = nothing.send(statement("2026-03-16T15:00:00Z", "120.00"))
    assert all(a.channel != "letter" for a in step.actions)  # nothing to the address on file
    assert only(step.actions, "staff_task").tags == ["no_channel"]


def test_16_several_dates_of_service_and_several_accounts_share_one_call_count() -> None:
    policy = load_policy()
    acct = opened()
    for service_day in ("2026-01-05", "2026-01-12", "2026-01-19"):  # three debts on one account
        acct.send(
            event(
                "billing.charge.posted",
                f"{service_day}T15:00:00Z",
                charge_id=f"CH-{service_day}",
                service_date=service_day,
                description="Office visit",
                amount="100.00",
            )
        )
    for day in range(11, 15):
        acct.send(communication(f"2026-03-{day}T15:00:00Z", "phone", "no_answer"))
    # Three more calls were made on the same person's other account: the person has had 7.
    elsewhere = [
        ContactFact(at=datetime(2026, 3, day, 15, tzinfo=UTC), channel="phone", outcome="no_answer")
        for day in (15, 16, 17)
    ]
    decision = decide(acct.state, plan("2026-03-17T18:00:00Z", missed=2), policy, person_contacts=elsewhere)
    [task] = [o.value for o in decision.outputs if isinstance(o.value, Action)]
    assert task.not_before == datetime(2026, 3, 18, 8, 0, tzinfo=NY)


def test_20_spanish_third_party_message_carries_the_disclosure_in_spanish() -> None:
    acct = opened(language="es", regime="third_party")
    held = only(acct.send(statement("2026-03-16T15:00:00Z", "120.00")).held, "statement_message")
    assert held.message is not None and held.message.language == "es"
    assert "cobrador de deudas" in held.message.body and "debt collector" not in held.message.body


def test_21_the_template_path_states_only_known_amounts() -> None:
    acct = opened()
    action = only(acct.send(statement("2026-03-16T15:00:00Z", "1205.00")).actions, "statement_message")
    assert {r.id: r.outcome for r in action.explanation.rules}["G-CONTENT"] == "pass"
    assert (
        action.message is not None
        and "$1,205.00" in action.message.body
        and "1,250" not in action.message.body
    )
