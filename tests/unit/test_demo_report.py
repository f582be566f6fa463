"""The demo's pieces that need no broker: day steps, the offline baseline, the simulator transport and the
self-contained HTML report."""

from __future__ import annotations

import doctest
import json
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import streams.demo
import streams.kpis
import streams.sender
from models.simulator import Practice
from rules.policy import load_policy
from rules.schedule import local_day
from streams.demo import STEP, SimulatorTransport, _by_scan_day, _DaySteps, run_baseline
from streams.report import SIMULATED_NOTICE, print_report, render_html, write_html


@pytest.mark.parametrize("module", [streams.kpis, streams.sender, streams.demo])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_day_steps_cut_the_stream_by_day_and_never_run_behind_it() -> None:
    practice = Practice(seed=5, patients=60, days=20)
    steps = _DaySteps(practice)
    seen: list[str] = []
    for day in range(1, 21):
        batch = steps.next_day()
        boundary = practice.start + STEP * day
        assert all(e["time"] < boundary.isoformat().replace("+00:00", "Z") for e in batch)
        assert steps.now >= boundary
        seen.extend(e["time"] for e in batch)
    assert seen == sorted(seen)
    assert seen


def test_each_day_is_sent_in_runs_of_one_scan_day() -> None:
    """A demo day (midnight to midnight UTC) holds the evening of one of the engine's scan days (midnight
    in New York) and the start of the next: the demo waits for the worker between the two."""
    zone, practice = load_policy().scan.timezone, Practice(seed=5, patients=400, days=20)
    steps, split = _DaySteps(practice), 0
    for _ in range(20):
        batch = steps.next_day()
        runs = _by_scan_day(batch, zone)
        assert [event for _, run in runs for event in run] == batch
        for day, run in runs:
            assert {local_day(datetime.fromisoformat(event["time"]), zone) for event in run} == {day}
        assert len({day for day, _ in runs}) == len(runs)
        split += len(runs) > 1
    assert split >= 5, f"only {split} days held two scan days: the check proves little"


def test_replies_to_actions_sent_at_the_step_clock_keep_the_stream_in_order() -> None:
    practice = Practice(seed=11, patients=80, days=40)
    steps = _DaySteps(practice)
    transport = SimulatorTransport(practice)
    times: list[str] = []
    statuses: Counter[str] = Counter()
    for _ in range(40):
        batch = steps.next_day()
        times.extend(e["time"] for e in batch)
        for event in batch:
            if event["type"] == "billing.statement.generated":
                action = {
                    "action_id": f"act-{event['id']}",
                    "account_id": event["data"]["account_id"],
                    "kind": "statement_message",
                    "channel": "sms",
                    "not_before": event["time"],
                    "message": {"language": "en"},
                }
                delivery = transport.deliver(action, steps.now)
                assert delivery.at >= steps.now
                statuses[delivery.status] += 1
    assert times == sorted(times)
    assert sum(transport.replies.values()) > 0
    assert set(statuses) <= {"sent", "delivered", "failed", "bounced", "opened", "clicked", "replied"}
    assert practice.summary()["actions_answered"] == sum(statuses.values())


def test_baseline_is_deterministic_and_sends_reminder_letters() -> None:
    first, second = run_baseline(3, 150, 120), run_baseline(3, 150, 120)
    assert first.kpis == second.kpis
    assert first.collected_by_day == second.collected_by_day and len(first.collected_by_day) == 120
    assert first.collected_by_day == sorted(first.collected_by_day)
    assert set(first.actions_sent) == {"payment_reminder"}
    assert first.kpis.actions_answered == sum(first.actions_sent.values())
    assert first.kpis.billed_cents > 0 and first.kpis.collected_cents > 0
    assert first.tally.outbound["letter"] >= sum(first.actions_sent.values())


def sample_data() -> dict[str, Any]:
    """A report dict of the shape `streams.report.build_report` returns."""
    comparison = [
        {
            "key": "payment_yield_pct",
            "label": "Patient payment yield",
            "unit": "%",
            "better": "higher",
            "headline": True,
            "engine": 31.5,
            "baseline": 29.0,
            "delta": 2.5,
            "verdict": "better",
        },
        {
            "key": "collected_cents",
            "label": "Collected",
            "unit": "$",
            "better": "higher",
            "headline": False,
            "engine": 123_456.0,
            "baseline": 100_000.0,
            "delta": 23_456.0,
            "verdict": "better",
        },
    ]
    engine = {
        "released": [{"kind": "statement_message", "channel": "email", "count": 3}],
        "held": [{"kind": "payment_plan_offer", "channel": "sms", "count": 1}],
        "released_total": 3,
        "held_total": 1,
        "held_reasons": {"R-REVIEW-LANE": 1},
        "suppressed_by_gate": {"G-CONSENT": 2},
        "cancelled_by_gate": {},
        "message_sources": {"template": 4},
        "draft_fallbacks": {},
        "audit_kinds": {"decision": 4},
        "dead_letters": {"invalid_json": 1},
    }
    return {
        "title": "Billwise demo report",
        "simulated": True,
        "simulated_notice": SIMULATED_NOTICE,
        "config": {"patients": 10, "days": 5, "seed": 1, "start": "2026-01-05", "end": "2026-01-10"},
        "run": {
            "broker": "embedded Tansu <memory>",
            "topic_prefix": "billing",
            "metrics_url": "http://127.0.0.1:1/metrics",
            "wall_s": 12.0,
            "worker_ready_s": 3.0,
            "events_streamed": 100,
            "baseline_events": 98,
            "outcomes_written": 3,
            "records_read": {"actions": 3, "review": 1},
            "audit_chain": "intact",
            "policy_versions": {"2026.1-default": 4},
        },
        "policies": {"engine": "engine </script><b>", "baseline": "fixed cadence"},
        "kpis": {"engine": {}, "baseline": {}},
        "kpi_definitions": {"payment_yield_pct": "collected / billed"},
        "comparison": comparison,
        "engine": engine,
        "actions_by_kind": {"statement_message": {"email": 3}, "payment_plan_offer": {"sms": 1}},
        "sender": {"delivered": 3, "pending_at_end": 0, "replies": {"billing.payment.posted": 2}},
        "worker_metrics": {},
        "outbound_by_channel": {"engine": {"email": 5}, "baseline": {"letter": 4}},
        "policy_actions_sent": {"engine": {}, "baseline": {}},
        "series": {
            "engine_collected_cents": [0, 10, 30, 60, 90],
            "baseline_collected_cents": [0, 5, 20, 40, 80],
        },
    }


def test_html_is_self_contained_says_simulated_and_embeds_its_data(tmp_path: Path) -> None:
    data = sample_data()
    path = write_html(tmp_path / "sub" / "report.html", data)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "Simulated world." in page and "no real patient data" in page
    # Nothing is fetched from anywhere: no external scripts, styles, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert page.count("<svg") >= 4
    assert 'data-kpi="payment_yield_pct"' in page and "31.5%" in page and "29.0%" in page
    # The embedded data round-trips, and text cannot close the script element early.
    match = re.search(r'<script type="application/json" id="billwise-report-data">(.*?)</script>', page, re.S)
    assert match is not None
    assert json.loads(match.group(1)) == json.loads(json.dumps(data))
    assert "engine &lt;/script&gt;&lt;b&gt;" in page


def test_terminal_report_prints_the_kpis_and_the_notice() -> None:
    console = Console(record=True, width=140)
    print_report(console, sample_data())
    text = console.export_text()
    assert "simulated world" in text and "Patient payment yield" in text
    assert "31.5%" in text and "29.0%" in text and "+2.5 pt" in text
    assert "statement_message" in text and "R-REVIEW-LANE" in text and "G-CONSENT" in text


def test_render_html_without_a_series_or_actions() -> None:
    data = sample_data()
    data["series"] = {"engine_collected_cents": [5], "baseline_collected_cents": [4]}
    data["actions_by_kind"] = {}
    page = render_html(data)
    assert "too short to chart" in page and "no actions" in page


def test_step_is_one_day() -> None:
    assert timedelta(days=1) == STEP
