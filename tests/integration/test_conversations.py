"""Scripted patient conversations through a real broker and worker, then the DrChrono connector.

The transcripts of tests/fixtures/conversations (English and Spanish: a balance question, a screening,
two negotiations, STOP, a dispute, a plan and a request for a person) go through Kafka: the worker
writes what ``billwise decide`` writes for them. The connector then consumes the write-backs, each
delivered twice, and the DrChrono stand-in ends with one object per write-back.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from inference.formatting import money
from rules.policy import load_policy
from streams.connectors.drchrono import DrChronoConnector, Ledger, run
from streams.connectors.drchrono_standin import running
from streams.kafka_io import produce_events, read_topics
from streams.offline import decide_lines
from tests.integration.conftest import RunningEngine

pytestmark = [pytest.mark.broker]

SCRIPTS = Path("tests/fixtures/conversations")
DOCTOR = 301995


def _as_drchrono(event: dict[str, Any], index: int) -> dict[str, Any]:
    """The script's event for an account the DrChrono adapter mapped: native patient, doctor practice."""
    data = {**event["data"], "patient_id": str(70311000 + index), "practice_id": f"drchrono:doctor-{DOCTOR}"}
    return {**event, "data": data}


def _scripts() -> dict[str, list[dict[str, Any]]]:
    scripts = {}
    for index, path in enumerate(sorted(SCRIPTS.glob("*.jsonl"))):
        lines = path.read_text(encoding="utf-8").splitlines()
        scripts[path.name] = [_as_drchrono(json.loads(line), index) for line in lines]
    return scripts


def _actions(items: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {v["action_id"]: v for topic, v in items if topic.endswith((".actions", ".review"))}


def _replies(actions: dict[str, dict[str, Any]], event_id: str) -> list[dict[str, Any]]:
    return [
        a
        for a in actions.values()
        if a["trigger"]["event_id"] == event_id and a["kind"] == "conversation_reply"
    ]


def test_scripted_conversations_through_kafka_and_write_backs_applied_once(engine: RunningEngine) -> None:
    scripts = _scripts()
    stream = [event for events in scripts.values() for event in events]
    bootstrap, prefix = engine.settings.kafka_bootstrap_servers, engine.settings.topic_prefix
    asyncio.run(produce_events(bootstrap, engine.topic("events"), stream))

    # Per account the order is the script's, as on the topic: offline decides the same sequence.
    lines = [json.dumps(e).encode() for e in stream]
    offline = [o.as_line(prefix) for o in decide_lines(lines, load_policy(), learning=False)]
    topics = [engine.topic(name) for name in ("actions", "review", "audit", "dlq")]
    records = asyncio.run(read_topics(bootstrap, topics, until=len(offline), overall_timeout_s=150))
    streamed = _actions([(r.topic, r.value) for r in records])
    assert streamed == _actions([(o["topic"], o["value"]) for o in offline])
    assert not [r for r in records if r.topic.endswith(".dlq")]

    # A balance question answered with the account's amount.
    qa = scripts["qa.en.jsonl"]
    balance = Decimal(next(e for e in qa if e["type"] == "billing.account.updated")["data"]["balance"])
    [answer] = _replies(streamed, qa[4]["id"])
    assert money(balance) in answer["message"]["body"]
    # A Spanish screening reaching the free-care tier, handed to staff for review.
    screening = scripts["screening.es.jsonl"]
    [result] = _replies(streamed, screening[-1]["id"])
    assert "100%" in result["message"]["body"] and result["message"]["language"] == "es"
    assert any(
        a["kind"] == "assistance_invite" and a["trigger"]["event_id"] == screening[-1]["id"]
        for a in (r.value for r in records if r.topic.endswith(".review"))
    )
    # A negotiation that never goes below the floor and ends in review.
    deal = scripts["negotiation.en.jsonl"]
    floor = (balance * load_policy().use_cases.settlement.floor_pct / 100).quantize(Decimal("0.01"))
    offers = [
        Decimal(a["settlement"]["amount"])
        for e in deal
        for a in _replies(streamed, e["id"])
        if a["settlement"]
    ]
    assert offers and min(offers) >= floor
    held = [r.value for r in records if r.topic.endswith(".review") and r.value["kind"] == "settlement_offer"]
    assert any(
        Decimal(h["settlement"]["amount"]) == floor and h["trigger"]["event_id"] == deal[-1]["id"]
        for h in held
    )
    # STOP mid-conversation ends it: no reply to STOP, no SMS after it.
    stop = scripts["stop.en.jsonl"]
    assert _replies(streamed, stop[-2]["id"]) == []
    assert not [a for a in _replies(streamed, stop[-1]["id"]) if a["channel"] == "sms"]
    # A question it cannot answer, and a request for a person, go to staff.
    tasks = [a for a in streamed.values() if a["kind"] == "staff_task" and "conversation" in a["tags"]]
    assert {"cannot_answer", "asked_for_person", "negotiation_no_agreement"} <= {
        t for a in tasks for t in a["tags"]
    }
    # A dispute raised mid-conversation stops the negotiation.
    dispute = scripts["dispute.en.jsonl"]
    [paused] = _replies(streamed, dispute[-1]["id"])
    assert paused["settlement"] is None and "R-DISPUTE-OPEN" in paused["review"]["reasons"]

    # The connector: every write-back delivered twice, applied once.
    writebacks = [
        r.value for r in records if r.topic.endswith(".actions") and r.value["kind"] == "platform_update"
    ]
    assert {w["platform_update"]["operation"] for w in writebacks} >= {"add_note", "create_payment_plan"}
    asyncio.run(_redeliver(bootstrap, engine.topic("actions"), writebacks))
    with running("secret") as standin:
        connector = DrChronoConnector(standin.base_url, "secret", ledger=Ledger(), sleep=lambda s: None)
        deadline = time.monotonic() + 90
        counts: dict[str, int] = {}

        def done() -> bool:
            return sum(counts.values()) >= 2 * len(writebacks) or time.monotonic() > deadline

        asyncio.run(run(bootstrap, prefix, connector, platform="", stop=done, counts=counts))
        connector.close()
        assert counts == {"applied": len(writebacks), "duplicate": len(writebacks)}
        stored = [*standin.objects["comm_logs"].values(), *standin.objects["patient_payments"].values()]
        assert len(stored) == len(writebacks)
        for action in writebacks:
            marker = f"[billwise:{action['action_id']}]"
            assert sum(marker in str(o.get("message") or o.get("notes")) for o in stored) == 1


async def _redeliver(bootstrap: str, topic: str, actions: list[dict[str, Any]]) -> None:
    """Each action once more on the actions topic, keyed by its account: an at-least-once redelivery."""
    from aiokafka import AIOKafkaProducer

    from streams.kafka_security import kafka_client_kwargs

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kafka_client_kwargs())
    await producer.start()
    try:
        for action in actions:
            await producer.send_and_wait(
                topic, key=action["account_id"].encode(), value=json.dumps(action).encode()
            )
    finally:
        await producer.stop()
