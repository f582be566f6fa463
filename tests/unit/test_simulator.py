"""The patient-behaviour simulator: deterministic, valid, calibrated, and answering actions."""

from __future__ import annotations

import itertools
import statistics
import tracemalloc
from datetime import datetime, timedelta
from typing import Any

import pytest

from models.simulator import FixedCadence, Practice
from schemas.events import parse_event


def _events(seed: int = 3, patients: int = 300, days: int = 150) -> list[dict[str, Any]]:
    return list(Practice(seed=seed, patients=patients, days=days).events())


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return _events()


def test_same_seed_same_events_other_seed_other_events() -> None:
    first = list(itertools.islice(Practice(seed=11, patients=200, days=90).events(), 2_000))
    again = list(itertools.islice(Practice(seed=11, patients=200, days=90).events(), 2_000))
    other = list(itertools.islice(Practice(seed=12, patients=200, days=90).events(), 2_000))
    assert first == again
    assert first != other


def test_every_event_is_a_valid_canonical_event(events: list[dict[str, Any]]) -> None:
    types = set()
    for raw in events:
        event = parse_event(raw)
        types.add(event.type)
        assert event.data.account_id == raw["subject"]
    # The organic stream covers the whole life of an account.
    assert {
        "billing.patient.updated",
        "billing.charge.posted",
        "billing.claim.adjudicated",
        "billing.statement.generated",
        "billing.payment.posted",
        "billing.account.updated",
        "billing.communication.logged",
        "billing.payment_plan.updated",
    } <= types


def test_events_are_time_ordered_with_unique_ids(events: list[dict[str, Any]]) -> None:
    times = [raw["time"] for raw in events]
    assert times == sorted(times)
    keys = [(raw["source"], raw["id"]) for raw in events]
    assert len(set(keys)) == len(keys)


def test_timestamps_are_realistic(events: list[dict[str, Any]]) -> None:
    # Statements run as a night batch; patients pay in waking hours, not all at midnight.
    statement_hours = {
        int(raw["time"][11:13]) for raw in events if raw["type"] == "billing.statement.generated"
    }
    assert statement_hours <= {7, 8, 9}  # 02:00-05:00 Eastern, in UTC
    pay_hours = {int(raw["time"][11:13]) for raw in events if raw["type"] == "billing.payment.posted"}
    assert len(pay_hours) >= 12


def test_balances_are_calibrated_to_the_peer_anchors(events: list[dict[str, Any]]) -> None:
    balances = [
        float(raw["data"]["balance_due"]) for raw in events if raw["type"] == "billing.statement.generated"
    ]
    assert len(balances) > 200
    under_500 = sum(b <= 500 for b in balances) / len(balances)
    assert 0.63 <= under_500 <= 0.9  # most bills under $500 (TransUnion: 63% of even hospital bills)
    assert 75 <= statistics.median(balances) <= 350  # Phreesia: average patient balance $169
    assert max(balances) > 1_000  # and a tail of large balances


def test_payment_is_less_likely_for_larger_balances_and_older_debt() -> None:
    practice = Practice(seed=5, patients=800, days=240)
    by_balance: dict[str, list[float]] = {"small": [], "mid": [], "large": []}
    by_age: dict[str, list[float]] = {"young": [], "old": []}
    for raw in practice.events():
        if raw["type"] != "billing.statement.generated":
            continue
        data = raw["data"]
        p = practice.oracle_propensity(data["account_id"])
        balance = float(data["balance_due"])
        by_balance["small" if balance <= 500 else "large" if balance > 1_000 else "mid"].append(p)
        oldest = min(line["service_date"] for line in data["lines"])
        age = (datetime.fromisoformat(data["statement_date"]) - datetime.fromisoformat(oldest)).days
        if age < 90:
            by_age["young"].append(p)
        elif age >= 180:
            by_age["old"].append(p)
    assert statistics.mean(by_balance["small"]) > statistics.mean(by_balance["large"]) + 0.05
    assert statistics.mean(by_age["young"]) > statistics.mean(by_age["old"]) + 0.1
    # ~0.3 per statement cycle on average (MGMA: 3.3 statements before payment).
    everyone = by_balance["small"] + by_balance["mid"] + by_balance["large"]
    assert 0.25 <= statistics.mean(everyone) <= 0.55


def test_patients_differ_in_language_zone_consent_and_flags(events: list[dict[str, Any]]) -> None:
    patients = [raw["data"] for raw in events if raw["type"] == "billing.patient.updated"]
    assert len(patients) > 250
    spanish = sum(p["language"] == "es" for p in patients) / len(patients)
    assert 0.05 <= spanish <= 0.2
    assert len({p["address"]["state"] for p in patients}) >= 8
    assert 0.7 <= sum("timezone" in p for p in patients) / len(patients) < 1.0  # some zones unknown
    assert any(p["consent"]["sms"] is False for p in patients)
    assert any(p["consent"]["sms"] is True for p in patients)
    assert any(not p.get("guarantor_is_patient", True) for p in patients)  # children have guarantors


def test_oracle_is_a_probability_for_every_account() -> None:
    practice = Practice(seed=2, patients=50, days=60)
    for _ in practice.events():
        pass
    values = [practice.oracle_propensity(account) for account in practice.account_ids()]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert len(set(values)) > 10


def _statement_actions(practice: Practice, kind: str, channel: str, limit: int = 400) -> list[dict[str, Any]]:
    """Run the practice, answering each statement with one action a week later; return the replies."""
    replies: list[dict[str, Any]] = []
    for raw in practice.events():
        if raw["type"] != "billing.statement.generated" or len(replies) > limit * 4:
            continue
        data = raw["data"]
        sent = datetime.fromisoformat(raw["time"].replace("Z", "+00:00")) + timedelta(days=7)
        sent = sent.replace(hour=17)  # mid-morning to noon across US zones
        action = {
            "action_id": f"act-{raw['id']}",
            "account_id": data["account_id"],
            "kind": kind,
            "channel": channel,
            "not_before": sent.isoformat(),
            "message": {"language": "en"},
        }
        replies.extend(practice.respond(action, sent))
    return replies


def test_replies_are_valid_dated_after_the_action_and_carry_its_id() -> None:
    practice = Practice(seed=4, patients=200, days=120)
    replies = _statement_actions(practice, "payment_reminder", "sms")
    assert replies
    for raw in replies:
        event = parse_event(raw)
        assert raw["id"].startswith("act-")
        if event.type == "billing.communication.logged":
            assert raw["data"]["action_id"].startswith("act-")
    kinds = {raw["type"] for raw in replies}
    assert {"billing.communication.logged", "billing.payment.posted"} <= kinds


def test_replies_are_deterministic_per_action() -> None:
    def run() -> list[dict[str, Any]]:
        return _statement_actions(Practice(seed=8, patients=120, days=90), "statement_message", "email")

    assert run() == run()


def test_unknown_account_gets_no_reply() -> None:
    practice = Practice(seed=1, patients=5, days=10)
    assert practice.respond({"action_id": "a", "account_id": "ACC-nope", "kind": "payment_reminder"}) == []


def test_channel_fit_moves_the_reply() -> None:
    """A message on the channel the patient really answers is engaged with far more often."""
    practice = Practice(seed=6, patients=1_500, days=1)
    for _ in practice.events():
        pass
    now = practice.start + timedelta(hours=18)
    engaged = {True: 0, False: 0}
    sent = {True: 0, False: 0}
    for n, account in enumerate(practice.account_ids()):
        patient = practice._by_account[account]
        if not (patient.email and patient.consent["email"]):
            continue
        fits = patient.affinity == "email"
        replies = practice.respond(
            {"action_id": f"fit-{n}", "account_id": account, "kind": "statement_message", "channel": "email"},
            now,
        )
        sent[fits] += 1
        engaged[fits] += any(r["data"].get("outcome") in ("opened", "clicked") for r in replies)
    assert sent[True] > 50 and sent[False] > 50
    assert engaged[True] / sent[True] > engaged[False] / sent[False] + 0.1


def test_plan_affordability_moves_take_up() -> None:
    practice = Practice(seed=9, patients=1_500, days=1)
    for _ in practice.events():
        pass
    now = practice.start + timedelta(hours=18)
    taken = {"affordable": 0, "dear": 0}
    offered = {"affordable": 0, "dear": 0}
    for n, account in enumerate(practice.account_ids()):
        patient = practice._by_account[account]
        if not patient.mobile or not patient.sms_ok or patient.balance < 10_000:
            continue
        for label, factor in (("affordable", 0.5), ("dear", 3.0)):
            monthly = f"{patient.afford * factor:.2f}"
            action = {
                "action_id": f"plan-{label}-{n}",
                "account_id": account,
                "kind": "payment_plan_offer",
                "channel": "sms",
                "plan_options": [{"monthly_amount": monthly, "term_months": 6}],
            }
            replies = practice.respond(action, now)
            offered[label] += 1
            taken[label] += any(r["type"] == "billing.payment_plan.updated" for r in replies)
            patient.plan = None  # keep the account open for the next offer
    assert offered["affordable"] > 30
    assert taken["affordable"] / offered["affordable"] > taken["dear"] / offered["dear"]


def test_a_reply_payment_reaches_the_practice_books() -> None:
    practice = Practice(seed=4, patients=200, days=120)
    _statement_actions(practice, "payment_reminder", "sms")
    summary = practice.summary()
    assert summary["actions_answered"] > 50
    assert summary["collected_after_action_cents"] > 0


def test_fixed_cadence_baseline_sends_letters_at_60_and_90_days() -> None:
    practice = Practice(seed=3, patients=150, days=150)
    baseline = FixedCadence()
    sent: list[dict[str, Any]] = []
    first_statement: dict[str, str] = {}
    for raw in practice.events():
        baseline.observe(raw)
        if raw["type"] == "billing.statement.generated":
            first_statement.setdefault(raw["data"]["account_id"], raw["data"]["statement_date"])
        for action in baseline.due(raw["time"]):
            sent.append(action)
            practice.respond(action, action["not_before"])
    assert sent and all(a["channel"] == "letter" and a["kind"] == "payment_reminder" for a in sent)
    for action in sent:
        age = (
            datetime.fromisoformat(action["not_before"])
            - datetime.fromisoformat(first_statement[action["account_id"]] + "T00:00:00+00:00")
        ).days
        assert age >= 60
    per_account = [a["account_id"] for a in sent]
    assert max(per_account.count(a) for a in set(per_account)) <= 2


def test_generation_is_lean() -> None:
    """Events are generated lazily: memory is per patient (a few KB), not per event."""
    tracemalloc.start()  # slows Python several times over: keep this run small
    practice = Practice(seed=7, patients=400, days=60)
    count = sum(1 for _ in practice.events())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count > 2_000
    assert peak / 400 < 12 * 1024  # bytes per patient, the heap and the timestamp caches included
