"""The demo's KPI math (`streams.kpis`): outcome KPIs per world, the comparison, the engine's tallies."""

from __future__ import annotations

from typing import Any

import pytest

from streams.kpis import KPI_ROWS, EngineTally, OutcomeKpis, WorldTally, compare, outcome_kpis


def event(etype: str, account: str, **data: Any) -> dict[str, Any]:
    return {"type": etype, "data": {"account_id": account, **data}}


def statement(account: str) -> dict[str, Any]:
    return event("billing.statement.generated", account)


def comm(account: str, direction: str, channel: str, **extra: Any) -> dict[str, Any]:
    return event("billing.communication.logged", account, direction=direction, channel=channel, **extra)


def test_world_tally_counts_what_the_books_show() -> None:
    tally = WorldTally().observe_all(
        [
            statement("A"),
            statement("A"),
            statement("B"),
            statement("C"),
            statement("D"),
            comm("A", "outbound", "letter"),
            comm("A", "outbound", "email", action_id="act-1"),
            comm("B", "outbound", "sms", outcome="failed", action_id="act-2"),
            comm("B", "inbound", "phone"),
            comm("C", "inbound", "sms", text="STOP"),
            event("billing.payment_plan.updated", "A", status="active"),
            event("billing.payment_plan.updated", "A", status="active"),  # a second update, same account
            event("billing.payment_plan.updated", "B", status="defaulted"),
            event("billing.payment_plan.updated", "Z", status="active"),  # never billed: not in the share
        ]
    )
    assert tally.events == 14
    assert tally.billed_accounts == {"A", "B", "C", "D"}
    assert tally.outbound_contacts == 3 and tally.outbound_for_actions == 2
    assert dict(tally.outbound) == {"letter": 1, "email": 1, "sms": 1}
    assert (tally.inbound_calls, tally.inbound_replies) == (1, 1)
    assert tally.plan_accounts == {"A", "Z"}
    assert tally.plan_share == pytest.approx(0.25)
    assert tally.by_type["billing.statement.generated"] == 5


def test_outcome_kpis_formulas() -> None:
    tally = WorldTally().observe_all(
        [
            *(statement(f"A{i}") for i in range(8)),
            *(comm(f"A{i}", "outbound", "letter") for i in range(8)),
            *(comm("A0", "outbound", "sms") for _ in range(4)),
            comm("A1", "inbound", "phone"),
            comm("A2", "inbound", "email"),
            event("billing.payment_plan.updated", "A3", status="active"),
            event("billing.payment_plan.updated", "A4", status="active"),
        ]
    )
    summary = {
        "billed_cents": 1_800_000,  # $18,000 over 90 days: $200 a day
        "collected_cents": 600_000,  # $6,000
        "outstanding_cents": 1_000_000,  # $10,000
        "plans_started": 2,
        "plans_defaulted": 1,
        "placed_with_agency": 3,
        "disputes": 4,
        "actions_answered": 5,
    }
    kpis = outcome_kpis(summary, tally, days=90)
    assert kpis.payment_yield_pct == pytest.approx(33.33)
    assert kpis.days_in_ar == pytest.approx(50.0)  # $10,000 / $200 a day
    assert kpis.outbound_contacts == 12
    assert kpis.contacts_per_1000 == pytest.approx(2.0)  # 12 contacts / 6 thousand dollars
    assert (kpis.billed_accounts, kpis.plan_accounts, kpis.plan_share_pct) == (8, 2, 25.0)
    assert (kpis.inbound_contacts, kpis.inbound_calls, kpis.inbound_per_100) == (2, 1, 25.0)
    assert (kpis.plans_started, kpis.plans_defaulted, kpis.placed_with_agency, kpis.disputes) == (2, 1, 3, 4)
    assert kpis.actions_answered == 5
    assert kpis.as_dict()["collected_cents"] == 600_000


def test_outcome_kpis_with_nothing_billed_or_collected() -> None:
    kpis = outcome_kpis({}, WorldTally(), days=30)
    assert (kpis.payment_yield_pct, kpis.days_in_ar, kpis.contacts_per_1000) == (0.0, 0.0, 0.0)
    assert (kpis.plan_share_pct, kpis.inbound_per_100) == (0.0, 0.0)


def test_a_credit_balance_is_no_negative_ar() -> None:
    kpis = outcome_kpis({"billed_cents": 1000, "outstanding_cents": -500}, WorldTally(), days=10)
    assert kpis.outstanding_cents == 0 and kpis.days_in_ar == 0.0


def test_days_must_be_positive() -> None:
    with pytest.raises(ValueError):
        outcome_kpis({}, WorldTally(), days=0)


def kpis(**values: Any) -> OutcomeKpis:
    base: dict[str, Any] = dict.fromkeys(OutcomeKpis.__dataclass_fields__, 0)
    base.update(values)
    return OutcomeKpis(**base)


def test_compare_says_which_direction_is_better() -> None:
    rows = {
        row.spec.key: row
        for row in compare(
            kpis(payment_yield_pct=40.0, days_in_ar=50.0, contacts_per_1000=9.0, plan_share_pct=5.0),
            kpis(payment_yield_pct=35.0, days_in_ar=60.0, contacts_per_1000=6.0, plan_share_pct=5.0),
        )
    }
    assert [row.spec.key for row in rows.values()] == [spec.key for spec in KPI_ROWS]
    assert rows["payment_yield_pct"].verdict == "better" and rows["payment_yield_pct"].delta == 5.0
    assert rows["days_in_ar"].verdict == "better"  # lower is better
    assert rows["contacts_per_1000"].verdict == "worse"  # more contacts for the same money
    assert rows["plan_share_pct"].verdict == "same"
    assert rows["billed_cents"].verdict == ""  # no direction: the same world billed the same
    headline = [spec.key for spec in KPI_ROWS if spec.headline]
    assert headline == [
        "payment_yield_pct",
        "days_in_ar",
        "contacts_per_1000",
        "plan_share_pct",
        "inbound_per_100",
    ]


def action(
    kind: str, channel: str, *, source: str | None = "template", reasons: Any = None
) -> dict[str, Any]:
    value: dict[str, Any] = {"kind": kind, "channel": channel}
    if source is not None:
        value["message"] = {"source": source, "body": "..."}
    if reasons is not None:
        value["review"] = {"required": True, "reasons": reasons, "state": "pending"}
    return value


def test_engine_tally_folds_the_output_topics() -> None:
    tally = EngineTally()
    records: list[tuple[str, dict[str, Any]]] = [
        ("actions", action("statement_message", "email")),
        ("actions", action("statement_message", "sms")),
        ("actions", action("statement_message", "email", source="llm")),
        ("actions", action("staff_task", "phone", source=None)),
        ("review", action("payment_plan_offer", "email", reasons=["R-REVIEW-LANE"])),
        ("review", action("settlement_offer", "letter", reasons=["R-REVIEW-KIND", "R-REVIEW-BALANCE"])),
        ("review", action("assistance_invite", "sms", reasons=[])),
        ("audit", {"kind": "decision", "details": {}}),
        ("audit", {"kind": "suppressed", "details": {"gate": "G-CONSENT"}}),
        ("audit", {"kind": "suppressed", "details": {"gate": "G-CONSENT"}}),
        ("audit", {"kind": "suppressed", "details": {"gate": "G-AMOUNTS", "cancelled": True}}),
        ("audit", {"kind": "draft_fallback", "details": {"reason": "timeout"}}),
        ("audit", {"kind": "draft_fallback", "details": {"fallback_reason": "guardrail"}}),
        ("dlq", {"error": {"type": "invalid_json"}}),
        ("dlq", {"error": {"type": "invalid_json"}}),
        ("dlq", {"error": {"type": "key_mismatch"}}),
    ]
    for route, value in records:
        tally.observe(route, value)
    assert (tally.released_total, tally.held_total) == (4, 3)
    assert tally.released[("statement_message", "email")] == 2
    assert tally.held_reasons == {
        "R-REVIEW-LANE": 1,
        "R-REVIEW-KIND": 1,
        "R-REVIEW-BALANCE": 1,
        "(none given)": 1,
    }
    assert dict(tally.suppressed) == {"G-CONSENT": 2}
    assert dict(tally.cancelled) == {"G-AMOUNTS": 1}
    assert dict(tally.message_sources) == {"template": 5, "llm": 1, "none": 1}
    assert dict(tally.fallbacks) == {"timeout": 1, "guardrail": 1}
    assert dict(tally.dead_letters) == {"invalid_json": 2, "key_mismatch": 1}
    assert tally.audit_kinds["suppressed"] == 3
    by_kind = tally.by_kind()
    assert next(iter(by_kind)) == "statement_message"
    assert by_kind["statement_message"] == {"email": 2, "sms": 1}
    assert sum(sum(per.values()) for per in by_kind.values()) == 7
    data = tally.as_dict()
    assert data["released_total"] == 4 and data["held_total"] == 3
    assert data["released"][0] == {"kind": "statement_message", "channel": "email", "count": 2}
    assert data["suppressed_by_gate"] == {"G-CONSENT": 2}
