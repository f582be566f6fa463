"""The DrChrono connector against the local stand-in: each write-back once, however often it is delivered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from rules.examples import Account
from schemas.actions import Action
from schemas.events import parse_event
from streams.connectors.drchrono import PAGE_SIZE, DrChronoConnector, Ledger
from streams.connectors.drchrono_standin import DrChronoStandIn, running

SCRIPTS = Path("tests/fixtures/conversations")
PATIENT, DOCTOR = "70311452", 301995


def _native(action: Action) -> Action:
    """The action as it is for an account the DrChrono adapter mapped (native patient, doctor practice)."""
    return action.model_copy(update={"patient_id": PATIENT, "practice_id": f"drchrono:doctor-{DOCTOR}"})


@cache
def _writebacks() -> tuple[Action, ...]:
    """One write-back of each operation, from the scripted conversations (plan, turn note, adjustment)."""
    plan = Account()
    for line in (SCRIPTS / "plan.es.jsonl").read_text(encoding="utf-8").splitlines()[:-1]:
        plan.send(parse_event(json.loads(line)))
    deal = Account()
    events = [json.loads(line) for line in (SCRIPTS / "negotiation.en.jsonl").read_text().splitlines()]
    for raw in events:
        deal.send(parse_event(raw))
    agreement = deal.state.settlement_agreement
    deal.review(agreement.action_id, "approve", "billing_manager", "2026-03-16T19:00:00+00:00")
    paid = {**events[2], "id": "paid", "time": "2026-03-20T16:00:00Z"}
    paid["data"] = {
        **paid["data"],
        "payment_id": "P-S",
        "amount": str(agreement.amount),
        "posted_at": paid["time"],
    }
    deal.send(parse_event(paid))
    found: dict[str, Action] = {}
    for action in [*plan.released, *deal.released]:
        if action.platform_update is not None:
            found.setdefault(action.platform_update.operation, action)
    assert set(found) == {"add_note", "create_payment_plan", "post_adjustment"}
    return tuple(_native(a) for a in found.values())


@pytest.fixture
def standin() -> Iterator[DrChronoStandIn]:
    with running("secret") as server:
        yield server


def _connector(standin: DrChronoStandIn, ledger: Ledger | None = None) -> DrChronoConnector:
    return DrChronoConnector(standin.base_url, "secret", ledger=ledger or Ledger(), sleep=lambda s: None)


def test_each_write_back_is_applied_once_when_delivered_twice(standin: DrChronoStandIn) -> None:
    connector = _connector(standin)
    actions = _writebacks()
    first = [connector.apply(a) for a in actions]
    second = [connector.apply(a) for a in actions]
    assert [r.status for r in first] == ["applied"] * 3
    assert [(r.status, r.remote_id) for r in second] == [("duplicate", r.remote_id) for r in first]
    assert standin.writes("comm_logs") == 2 and standin.writes("patient_payments") == 1

    by_op = {a.platform_update.operation: (a, r) for a, r in zip(actions, first, strict=True)}  # type: ignore[union-attr]
    adjustment, applied = by_op["post_adjustment"]
    payment = standin.objects["patient_payments"][int(applied.remote_id)]  # type: ignore[arg-type]
    assert payment["payment_transaction_type"] == "COR" and payment["patient"] == int(PATIENT)
    assert Decimal(str(payment["amount"])) == Decimal(adjustment.platform_update.payload["amount"])  # type: ignore[union-attr]
    assert payment["doctor"] == DOCTOR and f"[billwise:{adjustment.action_id}]" in payment["notes"]
    plan, applied = by_op["create_payment_plan"]
    log = standin.objects["comm_logs"][int(applied.remote_id)]  # type: ignore[arg-type]
    assert log["type"] == "Payment plan" and plan.platform_update.payload["monthly_amount"] in log["message"]  # type: ignore[union-attr]


def test_a_crash_before_the_ledger_write_is_found_by_its_marker(standin: DrChronoStandIn) -> None:
    action = _writebacks()[0]
    assert _connector(standin).apply(action).status == "applied"
    # Fill the patient's log so the marker sits beyond the first page of the search.
    for n in range(PAGE_SIZE + 5):
        standin._create("comm_logs", {"patient": int(PATIENT), "doctor": DOCTOR, "message": f"other {n}"})
    again = _connector(standin, Ledger()).apply(action)  # a fresh ledger: the write was never recorded
    assert again.status == "duplicate" and again.detail == "marker"
    assert standin.writes(again.resource or "") == 1


def test_throttling_is_retried_and_client_errors_fail_without_retry(standin: DrChronoStandIn) -> None:
    connector = _connector(standin)
    note = _writebacks()[0]
    standin.fail_next(429, 503)
    assert connector.apply(note).status == "applied"
    unmapped = note.model_copy(update={"action_id": "act-other", "patient_id": "PT-1"})
    before = len(standin.requests)
    failed = connector.apply(unmapped)
    assert failed.status == "failed" and "patient_id" in failed.detail and len(standin.requests) == before
    standin.fail_next(400)
    rejected = connector.apply(note.model_copy(update={"action_id": "act-rejected"}))
    assert rejected.status == "failed" and "HTTP 400" in rejected.detail


def test_a_wrong_token_is_refused(standin: DrChronoStandIn) -> None:
    connector = DrChronoConnector(standin.base_url, "wrong", sleep=lambda s: None)
    result = connector.apply(_writebacks()[0])
    assert result.status == "failed" and "HTTP 401" in result.detail
    assert standin.writes("comm_logs") == 0


def test_actions_that_are_not_write_backs_are_left_alone(standin: DrChronoStandIn) -> None:
    acct = Account()
    for line in (SCRIPTS / "qa.en.jsonl").read_text(encoding="utf-8").splitlines():
        acct.send(parse_event(json.loads(line)))
    reply = next(
        o.value for o in acct.outputs if isinstance(o.value, Action) and o.value.kind == "conversation_reply"
    )
    assert _connector(standin).apply(_native(reply)).status == "skipped"
    assert standin.requests == []
