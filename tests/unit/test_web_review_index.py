"""The in-memory review queue (`streams.web.review_index.ReviewIndex`): held, resolved, ordered, filtered."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.actions import (
    Action,
    Explanation,
    Message,
    PlanOption,
    Review,
    RuleOutcome,
    Settlement,
    Trigger,
)
from streams.web.review_index import QueueFilter, ReviewIndex, action_balance

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def make_action(
    action_id: str,
    *,
    account_id: str = "ACC-1",
    kind: str = "payment_reminder",
    channel: str = "email",
    priority: float = 0.5,
    balance: str | None = "450.00",
    created: datetime = NOW - timedelta(days=1),
    expires_in: timedelta = timedelta(days=29),
    reasons: tuple[str, ...] = ("R-REVIEW-LANE",),
    state: str = "pending",
    settlement: bool = False,
    plans: bool = False,
    message: str | None = "Your balance is $450.00. Reply STOP to opt out",
) -> Action:
    """A held action as the engine writes it to ``billing.review``."""
    features: dict[str, Any] = {"balance": balance} if balance is not None else {}
    return Action(
        action_id=action_id,
        account_id=account_id,
        patient_id=f"PT-{account_id}",
        practice_id="practice-1",
        kind=kind,
        channel=channel,
        created_at=created,
        not_before=created,
        expires_at=created + expires_in,
        priority=priority,
        message=Message(subject="Your bill", body=message, source="template") if message else None,
        plan_options=[
            PlanOption(
                monthly_amount=Decimal("150.00"),
                term_months=3,
                first_due_date=(created + timedelta(days=14)).date(),
                total=Decimal("450.00"),
            )
        ]
        if plans
        else [],
        settlement=Settlement(
            amount=Decimal("840.00"),
            floor=Decimal("840.00"),
            valid_until=(created + timedelta(days=30)).date(),
        )
        if settlement
        else None,
        review=Review(required=True, reasons=list(reasons), state=state),
        explanation=Explanation(policy_version="test-1", features=features),
        trigger=Trigger(event_id=f"evt-{action_id}", type="billing.account.updated"),
    )


def review_bytes(action: Action) -> bytes:
    return action.model_dump_json().encode()


def audit_bytes(audit_kind: str, action_id: str | None, /, **details: Any) -> bytes:
    record = {
        "audit_id": f"aud-{audit_kind}-{action_id}",
        "at": "2026-11-20T15:00:00Z",
        "account_id": "ACC-1",
        "actor": {"type": "engine", "id": "billwise"},
        "kind": audit_kind,
        "action_id": action_id,
        "policy_version": "test-1",
        "details": details,
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
    }
    return json.dumps(record).encode()


def test_held_actions_come_out_by_priority_then_age() -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("a-low", priority=0.2)))
    index.apply_review(review_bytes(make_action("a-high", priority=0.9)))
    index.apply_review(review_bytes(make_action("a-mid-new", priority=0.5, created=NOW - timedelta(hours=1))))
    index.apply_review(review_bytes(make_action("a-mid-old", priority=0.5, created=NOW - timedelta(days=3))))
    assert [e.action_id for e in index.query(QueueFilter(), NOW)] == [
        "a-high",
        "a-mid-old",
        "a-mid-new",
        "a-low",
    ]
    assert [e.action_id for e in index.query(QueueFilter(), NOW, limit=2)] == ["a-high", "a-mid-old"]


def test_a_redelivered_or_re_held_action_replaces_its_entry() -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("a-1", reasons=("R-REVIEW-LANE",))))
    index.apply_review(review_bytes(make_action("a-1", reasons=("R-REVIEW-LANE", "R-DISPUTE-OPEN"))))
    assert len(index) == 1
    assert index.held["a-1"].action.review.reasons == ["R-REVIEW-LANE", "R-DISPUTE-OPEN"]


@pytest.mark.parametrize(
    ("record", "resolution"),
    [
        (audit_bytes("review_approved", "a-1", kind="payment_reminder"), "approved"),
        (audit_bytes("review_rejected", "a-1", reason="rejected", note=None), "rejected"),
        (audit_bytes("review_rejected", "a-1"), "rejected"),
        (audit_bytes("review_rejected", "a-1", reason="not_held", decision="approve"), "closed"),
        (audit_bytes("suppressed", "a-1", gate="G-DISPUTE", cancelled=True, was="held"), "cancelled"),
        (audit_bytes("suppressed", "a-1", gate="G-EXPIRY", cancelled=True, was="held"), "cancelled"),
        (audit_bytes("review_requested", "a-2", kind="payment_reminder", superseded="a-1"), "superseded"),
        (audit_bytes("decision", "a-2", superseded="a-1"), "superseded"),
        (audit_bytes("decision", "a-1", effect="superseded", by="a-2", was="held"), "superseded"),
        (audit_bytes("suppressed", None, gate="G-OPTOUT", cancelled=["a-1", "a-9"]), "cancelled"),
    ],
    ids=[
        "approved",
        "rejected",
        "rejected-no-reason",
        "not-held",
        "dispute",
        "expiry",
        "superseded-held",
        "superseded-released",
        "superseded-own-record",
        "cancelled-list",
    ],
)
def test_audit_records_resolve_held_actions(record: bytes, resolution: str) -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("a-1")))
    index.apply_audit(record)
    assert "a-1" not in index.held
    assert index.lookup("a-1").resolution == resolution
    assert index.query(QueueFilter(), NOW) == []


@pytest.mark.parametrize(
    "record",
    [
        audit_bytes("review_rejected", "a-1", reason="role_not_permitted", role="collector"),
        audit_bytes("review_rejected", "a-1", reason="edit_failed_guardrails", violations=["threat"]),
        audit_bytes("review_requested", "a-1", new_reasons=["R-DISPUTE-OPEN"], at_approval=True),
    ],
    ids=["role", "edit-guardrails", "re-held"],
)
def test_refused_decisions_keep_the_action_held_and_allow_another_decision(record: bytes) -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("a-1")))
    index.mark_pending("a-1")
    assert index.lookup("a-1").pending_decision
    index.apply_audit(record)
    lookup = index.lookup("a-1")
    assert lookup.entry is not None
    assert lookup.resolution is None
    assert not lookup.pending_decision


def test_records_that_resolve_nothing_change_nothing() -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("a-1")))
    for record in (
        audit_bytes("decision", "a-2", superseded=None),
        audit_bytes("suppressed", "a-1", gate="G-DISPUTE", cancelled=False),
        audit_bytes("data_access", None, resource="account"),
        audit_bytes("review_requested", "a-1"),
    ):
        index.apply_audit(record)
    assert list(index.held) == ["a-1"]


def test_a_resolution_seen_before_its_held_action_keeps_it_out() -> None:
    """The two topics are read concurrently: the approval may be read before the hold."""
    index = ReviewIndex()
    index.apply_audit(audit_bytes("review_approved", "a-1"))
    index.apply_review(review_bytes(make_action("a-1")))
    assert len(index) == 0
    assert index.lookup("a-1").resolution == "approved"


def test_a_review_record_in_a_final_state_resolves_it() -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("a-1")))
    index.apply_review(review_bytes(make_action("a-1", state="rejected")))
    assert index.lookup("a-1").resolution == "rejected"


def test_garbage_is_counted_and_skipped() -> None:
    index = ReviewIndex()
    for value in (b"{", b'{"action_id": 1}', b"[]", None, b""):
        index.apply_review(value)
    for value in (b'{"kind": "review_approved"', b'["review_approved"]'):
        index.apply_audit(value)
    assert len(index) == 0
    assert index.skipped == 5


def test_resolutions_are_bounded() -> None:
    index = ReviewIndex(max_resolved=3)
    for n in range(5):
        index.apply_audit(audit_bytes("review_approved", f"a-{n}"))
    assert list(index.resolved) == ["a-2", "a-3", "a-4"]


def test_filters() -> None:
    index = ReviewIndex()
    actions = [
        make_action("small", balance="120.00", created=NOW - timedelta(hours=5)),
        make_action("big", balance="7200.00", kind="payment_plan_offer", created=NOW - timedelta(days=10)),
        make_action("settle", balance="1200.00", kind="settlement_offer", created=NOW - timedelta(days=2)),
        make_action("unknown", balance=None, kind="staff_task", created=NOW - timedelta(days=2)),
        make_action("old", balance="300.00", created=NOW - timedelta(days=40), expires_in=timedelta(days=30)),
    ]
    for action in actions:
        index.apply_review(review_bytes(action))

    def ids(**wanted: Any) -> set[str]:
        return {e.action_id for e in index.query(QueueFilter(**wanted), NOW)}

    assert ids() == {"small", "big", "settle", "unknown"}
    assert ids(include_expired=True) == {"small", "big", "settle", "unknown", "old"}
    assert ids(kinds=frozenset({"settlement_offer", "payment_plan_offer"})) == {"big", "settle"}
    assert ids(min_balance=Decimal("1000")) == {"big", "settle"}
    assert ids(max_balance=Decimal("1200.00")) == {"small", "settle"}
    assert ids(min_age=timedelta(days=1)) == {"big", "settle", "unknown"}
    assert ids(max_age=timedelta(days=3)) == {"small", "settle", "unknown"}
    assert ids(min_age=timedelta(days=1), max_balance=Decimal("5000")) == {"settle"}


def test_expired_actions_are_forgotten_after_a_grace_period() -> None:
    index = ReviewIndex()
    index.apply_review(review_bytes(make_action("recent", created=NOW - timedelta(days=31))))
    index.apply_review(review_bytes(make_action("ancient", created=NOW - timedelta(days=60))))
    assert index.prune(NOW) == 1
    assert list(index.held) == ["recent"]


def test_action_balance_sources() -> None:
    assert action_balance(make_action("a", balance="450.75")) == Decimal("450.75")
    assert action_balance(make_action("a", balance=None, plans=True)) == Decimal("450.00")
    assert action_balance(make_action("a", balance=None)) is None
    assert action_balance(make_action("a", balance="n/a")) is None


def test_backlog_gauges_read_the_feeds_index() -> None:
    from prometheus_client import REGISTRY

    from streams.web.review_index import ReviewFeed

    index = ReviewIndex()
    ReviewFeed(index, "127.0.0.1:1", "t.review", "t.audit", clock=lambda: NOW)
    assert REGISTRY.get_sample_value("billwise_review_queue_depth") == 0
    assert REGISTRY.get_sample_value("billwise_review_oldest_age_seconds") == 0
    index.apply_review(review_bytes(make_action("a-1", created=NOW - timedelta(hours=2))))
    index.apply_review(review_bytes(make_action("a-2", created=NOW - timedelta(hours=5))))
    index.apply_review(review_bytes(make_action("gone", created=NOW - timedelta(days=40))))  # expired
    assert index.backlog(NOW) == (2, 5 * 3600.0)
    assert REGISTRY.get_sample_value("billwise_review_queue_depth") == 2
    assert REGISTRY.get_sample_value("billwise_review_oldest_age_seconds") == 5 * 3600.0


def test_held_actions_are_kept_as_their_records_not_as_parsed_objects() -> None:
    # A parsed action with its gates' outcomes is dozens of objects the garbage collector walks at
    # every full collection; a queue of them paused the worker for 75-127 ms each time (issue 8).
    gates = [RuleOutcome(id=f"G-{n}", outcome="pass") for n in range(20)]
    actions = [make_action(f"a-{n}") for n in range(200)]
    records = [
        review_bytes(a.model_copy(update={"explanation": a.explanation.model_copy(update={"rules": gates})}))
        for a in actions
    ]
    index = ReviewIndex()
    gc.collect()
    before = len(gc.get_objects())
    for record in records:
        index.apply_review(record)
    gc.collect()
    tracked_per_action = (len(gc.get_objects()) - before) / len(records)
    assert len(index) == 200
    assert tracked_per_action < 3, tracked_per_action
    assert index.held["a-7"].action == Action.model_validate_json(records[7])
