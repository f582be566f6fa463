"""Replay: the same events under two policies, as a readable diff of actions."""

from __future__ import annotations

from rules.examples import account, communication, patient, statement
from rules.policy import Policy, load_policy, parse_policy
from rules.replay import as_dict, replay, run_events
from schemas.audit import AuditRecord


def lines() -> list[str]:
    events = [
        patient("2026-03-01T14:00:00Z", preferred_channel="sms"),
        statement("2026-03-01T15:00:00Z", "450.00"),
        account("2026-03-01T15:05:00Z", "450.00", "2026-01-05"),
        communication("2026-03-02T15:00:00Z", "sms", "delivered"),
        statement("2026-03-20T15:00:00Z", "450.00", statement_id="S-2"),
    ]
    return [e.model_dump_json() for e in events] + ["not json", ""]


def stricter() -> Policy:
    document = load_policy().model_dump(mode="json")
    document["version"] = "stricter"
    document["review"]["automated_lane"]["min_propensity"] = 0.95
    document["review"]["lane_exempt_kinds"] = ["staff_task"]  # statements now go to review too
    document["use_cases"]["payment_plan"]["min_balance"] = "500.00"  # no plan offer for $450
    return parse_policy(document)


def test_the_same_policy_gives_no_difference() -> None:
    diff = replay(lines(), load_policy(), load_policy())
    assert (diff.added, diff.removed, diff.changed) == ((), (), ())
    assert diff.unchanged > 0 and diff.events == 5 and diff.rejected == 1


def test_a_stricter_policy_shows_removed_and_changed_actions() -> None:
    diff = replay(lines(), load_policy(), stricter())
    assert {v.kind for v in diff.removed} == {"payment_plan_offer"}
    changed = {c.a.kind: c.fields for c in diff.changed}
    assert "route" in changed["statement_message"] and "review_reasons" in changed["statement_message"]
    text = diff.render()
    assert f"Removed under B: {len(diff.removed)}" in text and "route actions -> review" in text
    assert "stricter" in text
    assert as_dict(diff)["removed"][0]["kind"] == "payment_plan_offer"


def test_replays_run_the_daily_scan_when_the_clock_passes_a_day() -> None:
    result = run_events(lines(), load_policy())
    audits = [o.value for o in result.outputs if isinstance(o.value, AuditRecord)]
    scans = {a.event_id for a in audits if (a.event_id or "").startswith("scan-")}
    assert scans  # the 19-day gap ran the collections and plan scans
    assert result.states["ACC-1"].last_scan_day is not None
