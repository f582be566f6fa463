"""One test per use case of POLICY.md section 1, plus the daily scan and the scores prior."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rules.decide import daily_scan, due_scans, scan_due
from rules.examples import Account, account, assistance, patient, payment, plan, statement
from schemas.actions import Action, Scores

T0 = "2026-03-16T15:00:00Z"


def opened(scores: Scores | None = None, **fields: Any) -> Account:
    acct = Account(scores=scores)
    acct.send(patient("2026-03-01T14:00:00Z", **fields))
    return acct


def by_kind(actions: list[Action]) -> dict[str, Action]:
    return {a.kind if a.kind != "staff_task" else f"staff_task:{a.tags[0]}": a for a in actions}


def test_statement_message_acknowledges_a_recent_payment_and_pending_insurance() -> None:
    acct = opened()
    acct.send(payment("2026-03-01T15:00:00Z", "25.00"))
    step = acct.send(statement(T0, "120.00", insurance_pending="80.00"))
    message = by_kind(step.actions)["statement_message"].message
    assert message is not None
    assert "$120.00" in message.body and "$25.00" in message.body and "$80.00" in message.body
    old = opened()
    old.send(payment("2026-01-10T15:00:00Z", "25.00"))
    message = by_kind(old.send(statement(T0, "120.00")).actions)["statement_message"].message
    assert message is not None and "$25.00" not in message.body
    assert opened().send(statement(T0, "0.00")).actions == []


def test_payment_plan_offer_with_two_or_three_options() -> None:
    acct = opened()
    offer = by_kind(acct.send(account(T0, "450.00", "2026-01-05")).actions)["payment_plan_offer"]
    assert [(o.term_months, o.monthly_amount, o.total) for o in offer.plan_options] == [
        (3, Decimal("150.00"), Decimal("450.00")),
        (6, Decimal("75.00"), Decimal("450.00")),
        (12, Decimal("37.50"), Decimal("450.00")),
    ]
    assert {o.first_due_date for o in offer.plan_options} == {date(2026, 3, 30)}
    assert offer.message is not None and "tila_zero_apr" in offer.message.disclosures  # > 4 installments
    low = opened(scores=Scores(propensity_to_pay=0.1))
    offer = by_kind(low.send(account(T0, "1000.00", "2026-01-05")).actions)["payment_plan_offer"]
    assert [o.term_months for o in offer.plan_options] == [12, 6, 3]
    small = opened()
    offer = by_kind(small.send(account(T0, "100.00", "2026-01-05")).actions)["payment_plan_offer"]
    assert [(o.term_months, o.monthly_amount) for o in offer.plan_options] == [(3, Decimal("33.34"))]


def test_no_plan_offer_when_too_young_too_small_or_a_plan_is_active() -> None:
    assert "payment_plan_offer" not in by_kind(opened().send(account(T0, "450.00", "2026-02-01")).actions)
    assert "payment_plan_offer" not in by_kind(opened().send(account(T0, "99.99", "2026-01-05")).actions)
    acct = opened()
    acct.send(plan("2026-03-10T15:00:00Z", missed=0))
    assert "payment_plan_offer" not in by_kind(acct.send(account(T0, "450.00", "2026-01-05")).actions)


def test_collections_follow_up_reminder_or_prioritised_staff_call() -> None:
    lane = opened(scores=Scores(propensity_to_pay=0.7))
    lane.send(
        statement("2026-02-01T15:00:00Z", "300.00"), account("2026-02-01T15:05:00Z", "300.00", "2026-01-20")
    )
    step = lane.scan("2026-03-10T12:00:00+00:00")
    reminder = by_kind(step.actions)["payment_reminder"]
    assert reminder.channel in ("email", "portal", "sms") and not reminder.review.required
    call = opened(scores=Scores(propensity_to_pay=0.5))
    call.send(
        statement("2026-02-01T15:00:00Z", "300.00"), account("2026-02-01T15:05:00Z", "300.00", "2026-01-20")
    )
    task = by_kind(call.scan("2026-03-10T12:00:00+00:00").actions)["staff_task:collections_call"]
    assert task.channel == "phone"
    assert task.priority == 300 * 0.5 * 49 / 1000  # balance x (1 - propensity) x age days / 1000


def test_assistance_invite_prefilled_and_always_reviewed() -> None:
    acct = opened(address={"line": "1 Pine", "state": "WA"})
    acct.send(assistance("2026-03-10T15:00:00Z", "invited", household_size=4, income="82500"))
    # invited is not a skip status: the invite is re-proposed with the screening
    step = acct.send(account(T0, "2000.00", "2026-02-20"))
    invite = by_kind(step.actions)["assistance_invite"]
    assert invite.review.required and "R-REVIEW-KIND" in invite.review.reasons
    screening = invite.explanation.features["screening"]
    assert screening["fpl_pct"] == "250.00" and screening["guideline_year"] == 2026
    assert screening["discount_pct"] == "100.00" and screening["basis"] == "state floor WA"
    assert invite.message is not None and "financial_assistance" in invite.message.disclosures
    applied = opened()
    applied.send(assistance("2026-03-10T15:00:00Z", "applied"))
    assert "assistance_invite" not in by_kind(applied.send(account(T0, "2000.00", "2026-02-20")).actions)
    delinquent = opened()
    assert "assistance_invite" in by_kind(delinquent.send(account(T0, "200.00", "2025-12-01")).actions)


def test_settlement_offer_at_or_above_the_floor_valid_30_days_and_reviewed() -> None:
    acct = opened()
    offer = by_kind(acct.send(account(T0, "1234.57", "2025-11-01")).actions)["settlement_offer"]
    assert offer.settlement is not None
    assert offer.settlement.amount >= offer.settlement.floor == Decimal("864.20")
    assert offer.settlement.valid_until == date(2026, 4, 15)
    assert offer.review.required
    assert acct.state.held[offer.action_id].approver_roles == ["billing_manager", "compliance_officer"]
    assert "settlement_offer" not in by_kind(opened().send(account(T0, "1234.57", "2026-01-01")).actions)


def test_short_pay_inquiry_states_the_variance_and_remaining_balance() -> None:
    acct = opened()
    acct.send(account("2026-03-10T15:00:00Z", "90.00", "2026-03-01"))
    inquiry = by_kind(acct.send(payment(T0, "40.00", expected="50.00")).actions)["short_pay_inquiry"]
    assert (
        inquiry.message is not None and "$10.00" in inquiry.message.body and "$50.00" in inquiry.message.body
    )
    assert "short_pay_inquiry" not in by_kind(opened().send(payment(T0, "49.00", expected="50.00")).actions)


def test_bad_debt_risk_is_a_flagged_staff_task() -> None:
    acct = opened(scores=Scores(propensity_to_pay=0.1))
    task = by_kind(acct.send(account(T0, "80.00", "2026-01-01")).actions)["staff_task:bad_debt_risk"]
    assert (
        task.tags == ["bad_debt_risk"] and task.message is not None and "Bad-debt risk" in task.message.body
    )
    assert "staff_task:bad_debt_risk" not in by_kind(
        opened().send(account(T0, "80.00", "2026-01-01")).actions
    )


def test_plan_default_reminder_then_staff_task_after_two_missed() -> None:
    acct = opened()
    reminder = by_kind(acct.send(plan(T0, missed=1)).actions)["payment_reminder"]
    assert reminder.tags == ["plan_default"]
    task = by_kind(acct.send(plan("2026-04-16T15:00:00Z", missed=2)).actions)["staff_task:plan_default"]
    assert task.channel == "phone"
    assert opened().send(plan(T0, missed=0)).actions == []


def test_daily_scan_is_due_once_a_day_and_idempotent() -> None:
    acct = opened()
    acct.send(account("2026-01-20T15:00:00Z", "450.00", "2025-12-01"))
    state = acct.state
    assert state.last_scan_day == date(2026, 3, 1)
    assert not scan_due(state.last_scan_day, datetime(2026, 3, 2, 4, 59, tzinfo=UTC), acct.policy)
    assert scan_due(state.last_scan_day, datetime(2026, 3, 2, 5, 0, tzinfo=UTC), acct.policy)
    at = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    first = daily_scan(state, acct.policy, at)
    again = daily_scan(first.state, acct.policy, at + timedelta(hours=3))
    assert again.duplicate and again.outputs == ()
    assert first.state.last_scan_day == date(2026, 3, 2)


def test_held_actions_expire_on_the_scan() -> None:
    acct = opened()
    [held] = acct.send(account("2026-03-01T15:00:00Z", "450.00", "2025-12-20")).held
    step = acct.scan("2026-03-20T12:00:00+00:00")
    assert step.suppressed()[held.action_id] == "G-EXPIRY" and held.action_id not in acct.state.held


def test_without_scores_the_documented_prior_applies() -> None:
    offer = by_kind(opened().send(account(T0, "450.00", "2026-01-05")).actions)["payment_plan_offer"]
    assert offer.scores.propensity_to_pay == 0.5 and offer.scores.model_version is None
    assert offer.explanation.features["scores_source"] == "prior"
    scored = opened(scores=Scores(propensity_to_pay=0.9, model_version="m-7"))
    offer = by_kind(scored.send(account(T0, "450.00", "2026-01-05")).actions)["payment_plan_offer"]
    assert offer.scores.model_version == "m-7" and offer.explanation.features["scores_source"] == "model"


def test_missed_scan_days_are_caught_up_within_the_policy_bound() -> None:
    policy = opened().policy
    now = datetime(2026, 5, 1, 15, tzinfo=UTC)
    assert due_scans(date(2026, 5, 1), now, policy) == []
    assert [t.date() for t in due_scans(date(2026, 4, 28), now, policy)] == [
        date(2026, 4, 29),
        date(2026, 4, 30),
        date(2026, 5, 1),
    ]
    assert len(due_scans(date(2025, 1, 1), now, policy)) == policy.scan.max_catch_up_days
    assert due_scans(None, now, policy) == [datetime(2026, 5, 1, 4, tzinfo=UTC)]
