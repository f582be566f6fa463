"""The reference sender's rules: never before ``not_before``, never after ``expires_at``, once per
``action_id``, stopped by the engine's cancellations, an outcome record for everything it handles."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.inputs import ActionOutcome
from streams.sender import (
    Delivery,
    LoggingTransport,
    ReferenceSender,
    SimulatedClock,
    WallClock,
    outcome_record,
)

T0 = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def _text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def action(
    action_id: str = "act-1",
    *,
    not_before: datetime = T0 + timedelta(hours=2),
    expires_at: datetime = T0 + timedelta(days=14),
    kind: str = "statement_message",
    account_id: str = "ACC-1",
) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "account_id": account_id,
        "kind": kind,
        "channel": "sms",
        "not_before": _text(not_before),
        "expires_at": _text(expires_at),
        "message": {"body": "Your statement is ready.", "language": "en", "source": "template"},
    }


class RecordingTransport:
    def __init__(self, status: str = "delivered") -> None:
        self.status = status
        self.calls: list[tuple[str, datetime]] = []

    def deliver(self, action: Mapping[str, Any], at: datetime) -> Delivery:
        self.calls.append((str(action["action_id"]), at))
        return Delivery(self.status, at, "test")  # type: ignore[arg-type]


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def sender(transport: RecordingTransport, clock: SimulatedClock) -> ReferenceSender:
    return ReferenceSender(transport, clock)


def test_never_sends_before_not_before(
    sender: ReferenceSender, transport: RecordingTransport, clock: SimulatedClock
) -> None:
    assert sender.offer(action(not_before=T0 + timedelta(hours=2))) == "queued"
    assert sender.pump() == []
    clock.advance_to(T0 + timedelta(hours=2) - timedelta(seconds=1))
    assert sender.pump() == [] and transport.calls == []
    assert sender.pending == 1 and sender.next_due() == T0 + timedelta(hours=2)
    clock.advance_to(T0 + timedelta(hours=2))
    (outcome,) = sender.pump()
    assert transport.calls == [("act-1", T0 + timedelta(hours=2))]
    assert (outcome.action_id, outcome.account_id, outcome.status) == ("act-1", "ACC-1", "delivered")
    assert outcome.at == T0 + timedelta(hours=2)
    assert sender.pending == 0 and sender.next_due() is None


def test_sends_at_once_when_not_before_has_passed(
    sender: ReferenceSender, transport: RecordingTransport
) -> None:
    sender.offer(action(not_before=T0 - timedelta(hours=1)))
    assert [o.status for o in sender.pump()] == ["delivered"]
    assert transport.calls == [("act-1", T0)]


def test_due_actions_go_out_in_not_before_order(
    sender: ReferenceSender, transport: RecordingTransport, clock: SimulatedClock
) -> None:
    sender.offer(action("late", not_before=T0 + timedelta(hours=3)))
    sender.offer(action("early", not_before=T0 + timedelta(hours=1)))
    sender.offer(action("later", not_before=T0 + timedelta(days=2)))
    clock.advance_to(T0 + timedelta(hours=5))
    assert [o.action_id for o in sender.pump()] == ["early", "late"]
    assert sender.pending == 1


def test_expired_on_arrival_is_dropped_and_reported_cancelled(
    sender: ReferenceSender, transport: RecordingTransport
) -> None:
    assert sender.offer(action(not_before=T0 - timedelta(days=3), expires_at=T0)) == "expired"
    (outcome,) = sender.pump()
    assert (outcome.status, outcome.detail, outcome.at) == ("cancelled", "expired", T0)
    assert transport.calls == [] and sender.stats["expired"] == 1


def test_expiring_while_waiting_is_dropped(
    sender: ReferenceSender, transport: RecordingTransport, clock: SimulatedClock
) -> None:
    sender.offer(action(not_before=T0 + timedelta(days=2), expires_at=T0 + timedelta(days=1)))
    clock.advance_to(T0 + timedelta(days=3))
    (outcome,) = sender.pump()
    assert (outcome.status, outcome.detail) == ("cancelled", "expired")
    assert transport.calls == []


def test_expiry_is_exclusive_at_the_instant(sender: ReferenceSender, clock: SimulatedClock) -> None:
    sender.offer(action(not_before=T0 + timedelta(hours=1), expires_at=T0 + timedelta(hours=1)))
    clock.advance_to(T0 + timedelta(hours=1))
    assert [o.status for o in sender.pump()] == ["cancelled"]


def test_redelivered_action_id_is_sent_once(
    sender: ReferenceSender, transport: RecordingTransport, clock: SimulatedClock
) -> None:
    assert sender.offer(action()) == "queued"
    assert sender.offer(action()) == "duplicate"
    clock.advance_to(T0 + timedelta(days=1))
    assert len(sender.pump()) == 1
    # Redelivered again after it went out (a consumer restart re-reads from the last commit).
    assert sender.offer(action()) == "duplicate"
    assert sender.pump() == []
    assert len(transport.calls) == 1 and sender.stats["duplicate"] == 2


def test_dedup_memory_is_bounded(transport: RecordingTransport, clock: SimulatedClock) -> None:
    sender = ReferenceSender(transport, clock, remember=2)
    for name in ("a", "b", "c"):
        sender.offer(action(name, not_before=T0))
    assert sender.offer(action("c", not_before=T0)) == "duplicate"
    assert sender.offer(action("a", not_before=T0)) == "queued"  # forgotten: the oldest id went first


def test_platform_updates_are_left_to_the_connector(
    sender: ReferenceSender, transport: RecordingTransport
) -> None:
    assert sender.offer(action(kind="platform_update", not_before=T0)) == "skipped"
    assert sender.pump() == [] and transport.calls == []


@pytest.mark.parametrize("missing", ["action_id", "account_id", "not_before", "expires_at"])
def test_an_action_without_the_fields_the_rules_need_is_not_sent(
    sender: ReferenceSender, transport: RecordingTransport, missing: str
) -> None:
    broken = action(not_before=T0)
    del broken[missing]
    assert sender.offer(broken) == "invalid"
    assert sender.pump() == [] and transport.calls == []


def test_a_naive_timestamp_is_invalid(sender: ReferenceSender) -> None:
    broken = {**action(), "not_before": "2026-03-16T14:00:00"}
    assert sender.offer(broken) == "invalid"


def cancellation(action_id: str, was: str = "released", gate: str = "G-AMOUNTS") -> dict[str, Any]:
    return {
        "kind": "suppressed",
        "action_id": action_id,
        "account_id": "ACC-1",
        "details": {"gate": gate, "cancelled": True, "was": was},
    }


def test_engine_cancellation_drops_a_waiting_action(
    sender: ReferenceSender, transport: RecordingTransport, clock: SimulatedClock
) -> None:
    sender.offer(action())
    assert sender.offer_audit(cancellation("act-1")) is True
    (outcome,) = sender.pump()
    assert outcome.status == "cancelled" and "G-AMOUNTS" in (outcome.detail or "")
    clock.advance_to(T0 + timedelta(days=1))
    assert sender.pump() == [] and transport.calls == []


def test_cancellation_that_overtakes_its_action(
    sender: ReferenceSender, transport: RecordingTransport
) -> None:
    assert sender.offer_audit(cancellation("act-1")) is False
    assert sender.offer(action(not_before=T0)) == "cancelled"
    (outcome,) = sender.pump()
    assert outcome.status == "cancelled" and "G-AMOUNTS" in (outcome.detail or "")
    assert transport.calls == []


def test_other_audit_records_change_nothing(sender: ReferenceSender, clock: SimulatedClock) -> None:
    sender.offer(action())
    assert not sender.offer_audit({"kind": "decision", "action_id": "act-1", "details": {}})
    assert not sender.offer_audit({"kind": "suppressed", "action_id": "act-1", "details": {"gate": "G-X"}})
    assert not sender.offer_audit(cancellation("act-1", was="held"))
    clock.advance_to(T0 + timedelta(days=1))
    assert [o.status for o in sender.pump()] == ["delivered"]


def test_cancelling_after_sending_is_too_late(sender: ReferenceSender, clock: SimulatedClock) -> None:
    sender.offer(action(not_before=T0))
    sender.pump()
    assert sender.cancel("act-1") is False
    assert sender.pump() == []


def test_outcomes_follow_the_contract(sender: ReferenceSender, clock: SimulatedClock) -> None:
    sender.offer(action("a", not_before=T0))
    sender.offer(action("b", not_before=T0 - timedelta(days=30), expires_at=T0 - timedelta(days=1)))
    for outcome in sender.pump():
        key, value = outcome_record(outcome)
        assert key == b"ACC-1"
        record = json.loads(value)
        assert ActionOutcome.model_validate(record) == outcome
        assert record["at"].endswith("Z") or record["at"].endswith("+00:00")


def test_logging_transport_prints_one_line_and_reports_sent(clock: SimulatedClock) -> None:
    out = io.StringIO()
    sender = ReferenceSender(LoggingTransport(print_to=out), clock)
    sender.offer(action(not_before=T0))
    (outcome,) = sender.pump()
    assert outcome.status == "sent"
    line = out.getvalue()
    assert "statement_message via sms to ACC-1" in line and "Your statement is ready." in line


def test_clocks() -> None:
    clock = SimulatedClock(T0)
    clock.advance_to(T0 - timedelta(days=1))
    assert clock.now() == T0  # never backwards
    with pytest.raises(ValueError):
        clock.advance_to(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 1, 1))
    assert WallClock().now().tzinfo is not None


def test_stats_count_every_path(sender: ReferenceSender, clock: SimulatedClock) -> None:
    sender.offer(action("a", not_before=T0))
    sender.offer(action("a", not_before=T0))
    sender.offer(action("b", expires_at=T0))
    sender.offer(action("c", kind="platform_update"))
    sender.pump()
    stats = sender.stats
    assert (stats["received"], stats["queued"], stats["duplicate"], stats["expired"], stats["skipped"]) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert stats["delivered"] == 1 and stats["status:delivered"] == 1 and stats["status:cancelled"] == 1
