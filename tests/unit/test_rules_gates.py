"""One test per compliance gate and review rule of POLICY.md sections 2 and 3."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rules.compiler import compile_gates
from rules.examples import Account, account, communication, consent, dispute, patient, payment, statement
from rules.policy import load_policy
from rules.state import AccountState
from schemas.actions import Action, Scores

NY = ZoneInfo("America/New_York")
T0 = "2026-03-16T15:00:00Z"  # 11:00 in New York


def opened(**fields: Any) -> Account:
    acct = Account(scores=fields.pop("scores", None))
    acct.send(patient("2026-03-16T14:00:00Z", **fields))
    return acct


def by_kind(actions: list[Action]) -> dict[str, Action]:
    return {a.kind: a for a in actions}


def outcomes(action: Action) -> dict[str, str]:
    return {rule.id: rule.outcome for rule in action.explanation.rules}


def test_every_action_lists_every_gate_with_its_outcome() -> None:
    step = opened().send(statement(T0, "120.00"))
    [action] = step.actions
    listed = {rule.id for rule in action.explanation.rules}
    assert set(compile_gates(load_policy()).gate_ids) <= listed
    assert {"UC-STATEMENT", "G-CONTENT"} <= listed
    assert action.explanation.policy_version == load_policy().version


def test_dispute_suppresses_collection_and_sends_statements_to_review() -> None:
    acct = opened()
    acct.send(dispute("2026-03-16T14:30:00Z"))
    step = acct.send(account(T0, "450.00", "2026-01-05"))
    assert step.actions == [] and step.suppressed() == {"payment_plan_offer": "G-DISPUTE"}
    [held] = acct.send(statement("2026-03-16T15:05:00Z", "450.00")).held
    assert "R-DISPUTE-OPEN" in held.review.reasons and outcomes(held)["G-DISPUTE"] == "review"


def test_cease_suppresses_every_patient_facing_action() -> None:
    acct = opened(flags={"cease_communication": True})
    step = acct.send(statement(T0, "120.00"))
    assert step.actions == [] and step.suppressed() == {"statement_message": "G-CEASE"}


def test_attorney_routes_to_a_task_for_the_attorney() -> None:
    acct = opened(flags={"attorney_represented": True}, attorney={"name": "J. Doe", "phone": "+12125550199"})
    tasks = [a for a in acct.outputs if a.topic == "review"]
    assert [t.value.kind for t in tasks] == ["staff_task"]
    step = acct.send(statement(T0, "120.00"))
    assert step.suppressed() == {"statement_message": "G-ATTORNEY"}
    assert step.actions == []  # the attorney task is open already: it does not stack
    task = tasks[0].value
    assert "attorney J. Doe" in task.message.body and "Do not contact the patient" in task.message.body
    assert "R-REVIEW-KIND" in task.review.reasons


def test_deceased_routes_to_the_estate_with_review() -> None:
    acct = opened(flags={"deceased": True})
    step = acct.send(account(T0, "450.00", "2026-01-05"))
    assert step.suppressed() == {"payment_plan_offer": "G-DECEASED"}
    [estate] = [o.value for o in acct.outputs if o.topic == "review"]
    assert estate.kind == "staff_task" and estate.review.required
    assert "personal representative" in estate.message.body


def test_bankruptcy_stops_collection_including_staff_collection_tasks() -> None:
    acct = opened(flags={"bankruptcy": True}, scores=Scores(propensity_to_pay=0.1))
    step = acct.send(account(T0, "450.00", "2026-01-05"))
    assert step.suppressed() == {"payment_plan_offer": "G-BANKRUPTCY", "staff_task": "G-BANKRUPTCY"}
    assert [a.kind for a in acct.released] == []
    reviewed = [o.value for o in acct.outputs if o.topic == "review"]
    assert [a.tags for a in reviewed] == [["bankruptcy"]]


def test_consent_falls_back_to_the_next_permitted_channel() -> None:
    acct = opened(preferred_channel="sms", consent={"sms": False, "email": True})
    [action] = acct.send(statement(T0, "120.00")).actions
    assert action.channel == "email" and outcomes(action)["G-CONSENT"] == "fallback"


def test_no_permitted_channel_becomes_a_staff_task() -> None:
    acct = opened(email=None, mobile_phone=None, address=None, consent={"portal": False})
    step = acct.send(statement(T0, "120.00"))
    [task] = step.actions
    assert task.kind == "staff_task" and "no_channel" in task.tags
    assert step.suppressed() == {"statement_message": "G-CONSENT"}


def test_opt_out_reply_revokes_sms_at_once_and_cancels_held_sms() -> None:
    acct = opened(preferred_channel="sms")
    [held] = acct.send(account(T0, "450.00", "2026-01-05")).held
    assert held.channel == "sms"
    step = acct.send(communication("2026-03-16T15:10:00Z", "sms", "replied", "inbound", text="Stop"))
    assert acct.state.sms_revoked_at is not None
    assert step.suppressed() == {"payment_plan_offer": "G-OPT-OUT"}
    assert any(a.details.get("effect") == "consent_revoked" for a in step.audits)
    assert held.action_id not in acct.state.held
    # A later patient.updated echoing the old consent does not undo the opt-out.
    acct.send(patient("2026-03-16T16:00:00Z", preferred_channel="sms"))
    step = acct.send(statement("2026-03-16T16:05:00Z", "450.00"))
    assert {a.kind: a.channel for a in step.actions} == {
        "statement_message": "email",
        "payment_plan_offer": "email",
    }


def test_unclear_reply_goes_to_staff() -> None:
    acct = opened()
    step = acct.send(communication("2026-03-16T15:10:00Z", "sms", "replied", "inbound", text="wrong number"))
    [task] = [a for a in step.actions if a.kind != "platform_update"]  # besides the activity-log note
    assert (
        task.kind == "staff_task" and task.tags == ["opt_out_review"] and "wrong number" in task.message.body
    )
    assert acct.state.sms_revoked_at is None


def test_quiet_hours_delay_to_08_00_local_and_letters_are_exempt() -> None:
    acct = opened()
    [action] = acct.send(statement("2026-03-16T06:00:00Z", "120.00")).actions  # 02:00 in New York
    assert action.not_before == datetime(2026, 3, 16, 8, 0, tzinfo=NY)
    assert outcomes(action)["G-QUIET-HOURS"] == "delay"
    mail = opened(email=None, mobile_phone=None, consent={"portal": False})
    [letter] = mail.send(statement("2026-03-16T06:00:00Z", "120.00")).actions
    assert letter.channel == "letter" and letter.not_before == letter.created_at


def test_email_frequency_delays_the_fourth_email_in_seven_days() -> None:
    acct = opened()
    for day in (10, 11, 12):
        acct.send(communication(f"2026-03-{day}T15:00:00Z", "email", "delivered"))
    [action] = acct.send(statement(T0, "120.00")).actions  # 16 March: the window 10-16 holds 3 already
    assert action.channel == "email" and outcomes(action)["G-EMAIL-FREQ"] == "delay"
    assert action.not_before == datetime(2026, 3, 17, 8, 0, tzinfo=NY)


def test_sms_frequency_delays_and_suppresses_past_expiry() -> None:
    acct = opened(preferred_channel="sms")
    for day in (14, 15, 16):
        acct.send(communication(f"2026-03-{day}T14:00:00Z", "sms", "delivered"))
    [action] = acct.send(statement(T0, "120.00")).actions
    assert action.channel == "sms" and outcomes(action)["G-SMS-FREQ"] == "delay"
    assert action.not_before == datetime(2026, 3, 21, 8, 0, tzinfo=NY)


def test_third_party_first_message_needs_the_validation_notice_and_review() -> None:
    acct = opened(regime="third_party")
    [held] = acct.send(statement(T0, "120.00")).held
    assert "R-REVIEW-VALIDATION" in held.review.reasons
    assert {"validation_notice", "debt_collector"} <= set(held.message.disclosures)
    assert "attempt to collect a debt" in held.message.body
    acct.review(held.action_id, "approve", "collector", "2026-03-16T15:30:00Z")
    assert acct.state.validation_notice_sent
    [later] = acct.send(statement("2026-03-20T15:00:00Z", "120.00", statement_id="S-2")).actions
    assert "R-REVIEW-VALIDATION" not in later.review.reasons
    assert "debt_collector" in later.message.disclosures and "from a debt collector" in later.message.body


def test_guarantor_with_a_confidential_patient_goes_to_review_and_never_by_letter() -> None:
    acct = opened(
        guarantor_is_patient=False, flags={"confidential_address": True}, email=None, mobile_phone=None
    )
    step = acct.send(statement(T0, "120.00"))
    assert all(a.channel != "letter" for a in step.actions)
    portal = opened(
        guarantor_is_patient=False,
        flags={"confidential_address": True},
        email=None,
        mobile_phone=None,
        consent={"portal": True},
    )
    [held] = portal.send(statement(T0, "120.00")).held
    assert held.channel == "portal" and "R-REVIEW-GUARANTOR" in held.review.reasons


def test_review_routing_rules() -> None:
    big = opened()
    held = by_kind(big.send(statement(T0, "6000.00")).held)["statement_message"]
    assert "R-REVIEW-BALANCE" in held.review.reasons
    assert big.state.held[held.action_id].approver_roles == ["billing_manager", "compliance_officer"]

    lane = opened(scores=Scores(propensity_to_pay=0.9))
    [offer] = lane.send(account(T0, "300.00", "2026-01-05")).released  # automated lane: released
    assert offer.kind == "payment_plan_offer" and not offer.review.required

    off_lane = opened(scores=Scores(propensity_to_pay=0.5))
    [offer] = off_lane.send(account(T0, "300.00", "2026-01-05")).held
    assert offer.review.reasons == ["R-REVIEW-LANE"]

    disputed = opened(scores=Scores(propensity_to_pay=0.9))
    disputed.send(dispute("2026-03-16T14:10:00Z"), dispute("2026-03-16T14:20:00Z", status="resolved"))
    [offer] = disputed.send(account(T0, "300.00", "2026-01-05")).held
    assert "R-REVIEW-DISPUTE" in offer.review.reasons


def test_a_newer_trigger_supersedes_an_open_action_and_an_unchanged_one_does_not_stack() -> None:
    acct = opened()
    [first] = acct.send(account(T0, "450.00", "2026-01-05")).held
    assert acct.send(account("2026-03-16T16:00:00Z", "450.00", "2026-01-05")).actions == []
    step = acct.send(account("2026-03-16T17:00:00Z", "400.00", "2026-01-05"))
    [second] = step.held
    [record] = [a for a in step.audits if a.action_id == second.action_id]
    assert record.details["superseded"] == first.action_id
    assert list(acct.state.held) == [second.action_id]


def test_consent_revocation_by_event_blocks_the_channel() -> None:
    acct = opened(preferred_channel="sms")
    acct.send(consent("2026-03-16T14:30:00Z", "sms", False))
    [action] = acct.send(statement(T0, "120.00")).actions
    assert action.channel == "email"


def test_nothing_owed_or_a_closed_account_stops_collection() -> None:
    acct = opened()
    step = acct.send(account(T0, "450.00", "2026-01-05", status="written_off"))
    assert step.actions == [] and acct.state.account_status == "written_off"
    paid = opened()
    [held] = paid.send(account(T0, "450.00", "2026-01-05")).held
    step = paid.send(account("2026-03-16T16:00:00Z", "0.00", None))
    assert (
        step.suppressed() == {"payment_plan_offer": "G-NOTHING-OWED"}
        and held.action_id not in paid.state.held
    )


def test_edge_4_a_payment_posted_while_a_message_waits_stops_its_stale_amount() -> None:
    acct = opened()
    [message] = acct.send(statement("2026-03-16T05:00:00Z", "120.00")).actions  # waits for 08:00
    assert message.not_before > message.created_at
    step = acct.send(payment("2026-03-16T06:00:00Z", "20.00"))
    assert step.suppressed() == {"statement_message": "G-AMOUNTS"}


def test_the_superseded_action_has_its_own_audit_record() -> None:
    acct = opened()
    [first] = acct.send(account(T0, "450.00", "2026-01-05")).held
    step = acct.send(account("2026-03-16T17:00:00Z", "400.00", "2026-01-05"))
    [record] = [a for a in step.audits if a.action_id == first.action_id]
    assert record.details["effect"] == "superseded" and record.details["was"] == "held"


def test_a_state_written_by_another_engine_version_still_loads() -> None:
    acct = opened()
    document = acct.state.model_dump(mode="json") | {"open_actions": {}, "some_future_field": 1}
    assert AccountState.model_validate(document).account_id == acct.state.account_id
