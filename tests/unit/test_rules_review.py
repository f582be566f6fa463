"""Review decisions: approval re-runs every gate; rejections, role violations and failed edits are audited."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from rules.examples import Account, account, communication, dispute, patient, statement
from rules.review import review_decision
from schemas.actions import Action
from schemas.inputs import ReviewDecision

NY = ZoneInfo("America/New_York")


def held_offer() -> tuple[Account, Action]:
    acct = Account()
    acct.send(patient("2026-03-16T14:00:00Z"))
    [offer] = acct.send(account("2026-03-16T15:00:00Z", "450.00", "2026-01-05")).held
    return acct, offer


def test_approval_releases_with_the_reviewer_on_record() -> None:
    acct, offer = held_offer()
    step = acct.review(offer.action_id, "approve", "collector", "2026-03-16T16:00:00Z")
    [released] = step.released
    assert released.action_id == offer.action_id and released.review.state == "approved"
    assert released.explanation.rules[-1].id == "R-APPROVAL"
    [record] = step.audits
    assert (
        record.kind == "review_approved" and record.actor.type == "user" and record.actor.role == "collector"
    )
    assert offer.action_id not in acct.state.held
    assert acct.state.slots["payment_plan_offer"].state == "released"
    assert any(c.planned and c.action_id == offer.action_id for c in acct.state.contacts)


def test_rejection_is_audited_and_nothing_is_released() -> None:
    acct, offer = held_offer()
    step = acct.review(offer.action_id, "reject", "collector", "2026-03-16T16:00:00Z")
    assert step.released == [] and [a.kind for a in step.audits] == ["review_rejected"]
    assert acct.state.slots["payment_plan_offer"].state == "rejected"


def test_only_managers_approve_large_balances_and_settlements() -> None:
    acct = Account()
    acct.send(patient("2026-03-16T14:00:00Z"))
    step = acct.send(account("2026-03-16T15:00:00Z", "1500.00", "2025-10-01"))
    settlement = next(a for a in step.held if a.kind == "settlement_offer")
    denied = acct.review(settlement.action_id, "approve", "collector", "2026-03-16T16:00:00Z")
    assert denied.released == []
    [record] = denied.audits
    assert record.kind == "review_rejected" and record.details["reason"] == "role_not_permitted"
    assert settlement.action_id in acct.state.held
    approved = acct.review(settlement.action_id, "approve", "billing_manager", "2026-03-16T16:05:00Z")
    assert [a.kind for a in approved.released] == ["settlement_offer"]


def test_edge_4_a_dispute_arriving_while_held_stops_the_release() -> None:
    """compliance-rules 14.4: dispute at 10:02, the held action must not go out afterwards."""
    acct, offer = held_offer()
    step = acct.send(dispute("2026-03-16T15:02:00Z"))
    assert step.suppressed() == {"payment_plan_offer": "G-DISPUTE"}
    late = acct.review(offer.action_id, "approve", "collector", "2026-03-16T15:05:00Z")
    assert late.released == []


def test_approval_reschedules_by_the_gates_at_approval_time() -> None:
    acct, offer = held_offer()
    for day in (14, 15, 16):  # three emails since the action was held: the email cap is reached
        acct.send(communication(f"2026-03-{day}T17:00:00Z", "email", "delivered"))
    [released] = acct.review(offer.action_id, "approve", "collector", "2026-03-16T18:00:00Z").released
    assert released.not_before == datetime(2026, 3, 21, 8, 0, tzinfo=NY)
    assert {r.id: r.outcome for r in released.explanation.rules}["G-EMAIL-FREQ"] == "delay"


def test_an_expired_action_is_not_released() -> None:
    acct, offer = held_offer()
    step = acct.review(offer.action_id, "approve", "collector", "2026-04-01T16:00:00Z")
    assert step.released == [] and step.suppressed() == {"payment_plan_offer": "G-EXPIRY"}


def test_reasons_that_appear_while_held_need_a_new_approval() -> None:
    acct = Account()
    acct.send(patient("2026-03-16T14:00:00Z"))
    held = next(
        a
        for a in acct.send(statement("2026-03-16T15:00:00Z", "6000.00")).held
        if a.kind == "statement_message"
    )
    acct.send(dispute("2026-03-16T15:10:00Z"))
    assert held.action_id in acct.state.held  # a statement under dispute goes to review, it is not stopped
    step = acct.review(held.action_id, "approve", "billing_manager", "2026-03-16T15:20:00Z")
    assert step.released == []
    [again] = step.held
    assert {"R-DISPUTE-OPEN", "R-REVIEW-DISPUTE"} <= set(again.review.reasons)
    final = acct.review(held.action_id, "approve", "billing_manager", "2026-03-16T15:30:00Z")
    assert [a.action_id for a in final.released] == [held.action_id]


def test_an_edit_must_pass_the_output_gates() -> None:
    acct, offer = held_offer()
    good = "Hello, your balance is $450.00. You can pay in 3 payments of $150.00. " + (
        "This plan is interest-free: 0% APR, no finance charge and no fees. "
        'To stop receiving these messages, reply "STOP" or tell us how you prefer to be contacted.'
    )
    [released] = acct.review(
        offer.action_id, "edit", "collector", "2026-03-16T16:00:00Z", message=good
    ).released
    assert (
        released.message is not None and released.message.source == "staff" and released.message.body == good
    )


def test_edge_21_a_hallucinated_amount_and_threat_are_rejected() -> None:
    """compliance-rules 14.21: "$1,250 due by Friday or we will report you" vs a record of $450."""
    acct, offer = held_offer()
    bad = "You owe $1,250 due by Friday or we will report you to the credit bureaus. Reply STOP to opt out"
    step = acct.review(offer.action_id, "edit", "collector", "2026-03-16T16:00:00Z", message=bad)
    assert step.released == []
    [record] = step.audits
    assert record.details["reason"] == "edit_failed_guardrails"
    assert {"unknown_amount", "threat"} <= set(record.details["violations"])
    assert offer.action_id in acct.state.held


def test_a_redelivered_decision_changes_nothing_and_unknown_actions_are_audited() -> None:
    acct, offer = held_offer()
    acct.review(offer.action_id, "approve", "collector", "2026-03-16T16:00:00Z")
    again = acct.review(offer.action_id, "approve", "collector", "2026-03-16T16:00:00Z")
    assert again.decision.duplicate and again.outputs == []
    unknown = acct.review("act-unknown", "approve", "collector", "2026-03-16T16:00:00Z")
    assert [a.details["reason"] for a in unknown.audits] == ["not_held"]


def test_a_decision_for_another_account_is_refused() -> None:
    acct, offer = held_offer()
    wrong = ReviewDecision(
        action_id=offer.action_id,
        account_id="ACC-OTHER",
        decision="approve",
        reviewer={"user_id": "u", "role": "collector"},
        at=datetime(2026, 3, 16, 16, tzinfo=NY),
    )
    with pytest.raises(ValueError, match="ACC-OTHER"):
        review_decision(acct.state, wrong, acct.policy, wrong.at)
