"""``billwise demo`` end to end, small: a simulated practice through the session's broker and a real worker,
the reference sender answering for the patients, the baseline offline, and the report checked against
the records on the topics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from streams.demo import run_demo
from streams.kafka_io import read_topics

pytestmark = pytest.mark.broker

PATIENTS, DAYS, SEED = 200, 60, 11


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _report_data(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="billwise-report-data">(.*?)</script>', page, re.S)
    assert match is not None, "the HTML report embeds its data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_demo_end_to_end(kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    report = tmp_path / "report.html"
    console = Console(record=True, width=160)
    code = run_demo(PATIENTS, DAYS, SEED, report, console=console)
    text = console.export_text()
    assert code == 0, text

    # The terminal report: the notice, the KPI table for both policies, the metrics URL.
    assert "Everything in this report is simulated" in " ".join(text.split())
    assert "Patient payment yield" in text and "baseline" in text and "/metrics" in text

    # The HTML report: self-contained, says simulated, a KPI table with both policies.
    page = report.read_text(encoding="utf-8")
    assert "Simulated world." in page
    assert '<table id="kpis"><tr><th>KPI</th><th>Billwise</th><th>baseline</th>' in page
    for key in ("payment_yield_pct", "days_in_ar", "contacts_per_1000", "plan_share_pct", "inbound_per_100"):
        assert f'data-kpi="{key}"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    data = _report_data(page)
    assert data["simulated"] is True
    assert data["config"] == {**data["config"], "patients": PATIENTS, "days": DAYS, "seed": SEED}

    # The KPI table says what the KPI records say, for both policies.
    for row in data["comparison"]:
        assert row["engine"] == pytest.approx(data["kpis"]["engine"][row["key"]])
        assert row["baseline"] == pytest.approx(data["kpis"]["baseline"][row["key"]])
    engine_kpis, baseline_kpis = data["kpis"]["engine"], data["kpis"]["baseline"]
    for kpis in (engine_kpis, baseline_kpis):
        assert kpis["billed_cents"] > 0 and 0 < kpis["payment_yield_pct"] < 100
        assert kpis["payment_yield_pct"] == pytest.approx(
            100 * kpis["collected_cents"] / kpis["billed_cents"], abs=0.01
        )
    assert baseline_kpis["actions_answered"] == sum(data["policy_actions_sent"]["baseline"].values())

    # Everything the report counts matches the records on the topics.
    prefix = data["run"]["topic_prefix"]
    names = ("actions", "review", "audit", "dlq", "outcomes", "events")
    records = asyncio.run(
        read_topics(kafka_bootstrap, [f"{prefix}.{name}" for name in names], idle_timeout_s=2.0)
    )
    by_route: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for record in records:
        by_route[record.topic.removeprefix(prefix + ".")].append(record.value)
    engine = data["engine"]
    assert len(by_route["actions"]) == engine["released_total"] > 0
    assert len(by_route["review"]) == engine["held_total"]
    assert len(by_route["dlq"]) == sum(engine["dead_letters"].values())
    # The live view's last frame counts what the report counts, the outputs of the last day included.
    assert f"{engine['released_total']:,} / {engine['held_total']:,}" in text
    assert len(by_route["events"]) == data["run"]["events_streamed"]
    assert data["run"]["records_read"] == {
        name: len(by_route[name]) for name in ("actions", "review", "audit", "dlq") if by_route[name]
    }
    released = Counter((a["kind"], a["channel"]) for a in by_route["actions"])
    assert {(r["kind"], r["channel"]): r["count"] for r in engine["released"]} == dict(released)
    suppressed = Counter(
        a["details"]["gate"]
        for a in by_route["audit"]
        if a["kind"] == "suppressed" and not a["details"].get("cancelled")
    )
    assert engine["suppressed_by_gate"] == dict(suppressed)
    held_reasons = Counter(reason for a in by_route["review"] for reason in a["review"]["reasons"])
    assert engine["held_reasons"] == dict(held_reasons)
    # ... and the worker's own counters agree with the records.
    assert data["worker_metrics"]["decisions_by_route"].get("actions", 0) == engine["released_total"]
    assert data["worker_metrics"]["decisions_by_route"].get("review", 0) == engine["held_total"]
    # The simulator's events and the sender's outcome records are all valid contract records.
    assert engine["dead_letters"] == {} and by_route["dlq"] == []
    # Every record the demo wrote was taken by the worker: counted (a redelivery after a rebalance is
    # counted again: at least once), or reported as uncounted by the demo.
    counted = sum(data["worker_metrics"]["outcomes_by_status"].values())
    assert counted + data["run"]["uncounted_inputs"] >= data["run"]["outcomes_written"]

    # The reference sender: one outcome per action it handled, none before not_before, none for held ones.
    outcomes = by_route["outcomes"]
    assert len(outcomes) == data["run"]["outcomes_written"] > 0
    assert len({o["action_id"] for o in outcomes}) == len(outcomes)
    actions = {a["action_id"]: a for a in by_route["actions"]}
    held = {a["action_id"] for a in by_route["review"]}
    for outcome in outcomes:
        assert outcome["action_id"] in actions and outcome["action_id"] not in held
        action = actions[outcome["action_id"]]
        assert outcome["account_id"] == action["account_id"]
        if outcome["status"] != "cancelled":
            assert _moment(outcome["at"]) >= _moment(action["not_before"])
    sender = data["sender"]
    assert sender["delivered"] == sum(1 for o in outcomes if o["status"] != "cancelled")
    assert sender["delivered"] + sender.get("pending_at_end", 0) + sender.get("expired", 0) + sender.get(
        "cancelled", 0
    ) + sender.get("skipped", 0) == len(actions)
    assert engine_kpis["actions_answered"] == sender["delivered"]
    # The patients' replies went back into the events topic, in time order per account.
    replies = [e for e in by_route["events"] if "-r" in e["id"] and e["id"].startswith("act-")]
    assert replies, "replies to the engine's actions are streamed back"
    per_account: dict[str, list[str]] = {}
    for event in by_route["events"]:
        per_account.setdefault(event["data"]["account_id"], []).append(event["time"])
    assert all(times == sorted(times) for times in per_account.values())


def test_reference_sender_against_the_broker(kafka_bootstrap: str) -> None:
    """`streams.sender.run`: consumes actions and cancellations, writes outcomes, commits what it finished."""
    import uuid
    from datetime import UTC, timedelta

    from streams.kafka_io import produce_events
    from streams.sender import SimulatedClock, run
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    prefix = f"snd{uuid.uuid4().hex[:8]}"
    settings = StreamSettings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    asyncio.run(ensure_topics(settings, ("actions", "audit", "outcomes")))
    now = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)

    def action(action_id: str, not_before: datetime, expires_at: datetime) -> dict[str, Any]:
        return {
            "action_id": action_id,
            "account_id": "ACC-9",
            "data": {"account_id": "ACC-9"},  # produce_events keys by data.account_id
            "kind": "statement_message",
            "channel": "email",
            "not_before": not_before.isoformat(),
            "expires_at": expires_at.isoformat(),
            "message": {"body": "Your statement is ready.", "language": "en", "source": "template"},
        }

    due = action("act-due", now - timedelta(hours=1), now + timedelta(days=1))
    later = action("act-later", now + timedelta(hours=5), now + timedelta(days=1))
    stopped = action("act-stopped", now + timedelta(hours=5), now + timedelta(days=1))
    expired = action("act-expired", now - timedelta(days=3), now - timedelta(days=1))
    asyncio.run(produce_events(kafka_bootstrap, f"{prefix}.actions", [due, due, later, stopped, expired]))
    cancel = {
        "kind": "suppressed",
        "action_id": "act-stopped",
        "account_id": "ACC-9",
        "data": {"account_id": "ACC-9"},
        "details": {"gate": "G-DISPUTE", "cancelled": True, "was": "released"},
    }
    asyncio.run(produce_events(kafka_bootstrap, f"{prefix}.audit", [cancel]))

    async def sender_run(at: datetime) -> Any:
        """Run the sender until it has delivered one action (and 2 s more), at most 60 s."""
        from streams.sender import LoggingTransport

        transport = LoggingTransport(None)
        started = time.monotonic()
        first: list[float] = []

        def stop() -> bool:
            now_s = time.monotonic()
            if transport.delivered and not first:
                first.append(now_s)
            return now_s - started > 60 or bool(first and now_s - first[0] > 2)

        return await run(kafka_bootstrap, prefix, transport=transport, clock=SimulatedClock(at), stop=stop)

    stats = asyncio.run(sender_run(now))
    assert stats["duplicate"] == 1 and stats["delivered"] == 1
    outcomes = asyncio.run(read_topics(kafka_bootstrap, [f"{prefix}.outcomes"], idle_timeout_s=1.0))
    by_id = {r.value["action_id"]: r.value for r in outcomes}
    assert set(by_id) == {"act-due", "act-stopped", "act-expired"}  # act-later still waits
    assert by_id["act-due"]["status"] == "sent"
    assert by_id["act-stopped"]["status"] == "cancelled" and "G-DISPUTE" in by_id["act-stopped"]["detail"]
    assert (by_id["act-expired"]["status"], by_id["act-expired"]["detail"]) == ("cancelled", "expired")
    assert all(r.key == "ACC-9" for r in outcomes)

    # A restart (same consumer group) later that day: the waiting action was not lost, the one already
    # sent is not read again, and the cancelled one stays cancelled.
    stats = asyncio.run(sender_run(now + timedelta(hours=6)))
    again = asyncio.run(read_topics(kafka_bootstrap, [f"{prefix}.outcomes"], idle_timeout_s=1.0))
    assert stats["delivered"] == 1, ([r.value for r in again], stats)
    sent = Counter(r.value["action_id"] for r in again if r.value["status"] == "sent")
    assert sent == {"act-due": 1, "act-later": 1}
