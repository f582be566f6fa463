"""Platform ingress through a real worker and broker: webhook deliveries over HTTP become canonical events
on ``{prefix}.events`` and then actions; bad signatures are refused before Kafka; unmappable payloads
are dead-lettered with the offending field's path.

The worker gets webhook secrets through its environment (``BILLWISE_WEBHOOK_SECRET_<PLATFORM>``); the
topics, including ``{prefix}.platform.<platform>`` and ``{prefix}.access``, are created before it starts.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from streams.brokers import free_port
from streams.commands import ACCESS_TOPIC
from streams.kafka_io import Record, read_topics
from streams.platform_ingress import PLATFORM_TOPICS, platform_topic
from streams.settings import StreamSettings
from streams.topics import CONTRACT_TOPICS, ensure_topics
from streams.webhooks import body_signature, handshake_token
from streams.worker_process import WorkerProcess, start_worker

pytestmark = [pytest.mark.broker]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "platforms"
DRCHRONO_SECRET = "5e1f7a0c9b3d4e2f8a6b1c0d9e8f7a6b5c4d3e2f"
X12_SECRET = "x12-connector-" + "9" * 24
T = TypeVar("T")


@dataclass
class IngressEngine:
    settings: StreamSettings
    worker: WorkerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker.web_port}/webhooks"

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def deliver(self, event: str, document: dict[str, Any], token: str = DRCHRONO_SECRET) -> httpx.Response:
        """A DrChrono delivery: event and delivery id in headers, the body as DrChrono sends it."""
        headers = {
            "Content-Type": "application/json",
            "X-drchrono-event": event,
            "X-drchrono-signature": token,
            "X-drchrono-delivery": uuid.uuid4().hex[:8],
        }
        return httpx.post(f"{self.url}/drchrono", content=json.dumps(document), headers=headers, timeout=30)

    def read(self, *names: str, idle_s: float = 1.0) -> list[Record]:
        topics = [self.topic(name) for name in names]
        return asyncio.run(read_topics(self.bootstrap, topics, idle_timeout_s=idle_s, overall_timeout_s=30))

    def read_raw(self, name: str) -> list[bytes]:
        """Every value on a topic whose records need not be JSON."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def run() -> list[bytes]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            await consumer.start()
            try:
                partitions = [TopicPartition(self.topic(name), p) for p in range(self.settings.partitions)]
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                ends = await consumer.end_offsets(partitions)
                values: list[bytes] = []
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    positions = [await consumer.position(tp) for tp in partitions]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                        break
                    for messages in (await consumer.getmany(timeout_ms=500)).values():
                        values.extend(m.value for m in messages if m.value is not None)
                return values
            finally:
                await consumer.stop()

        return asyncio.run(run())

    def produce_platform(self, platform: str, key: bytes | None, value: bytes) -> None:
        """What a poller does: write a polled page to the platform topic."""

        async def run() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await producer.start()
            try:
                await producer.send_and_wait(self.topic(platform_topic(platform)), value=value, key=key)
            finally:
                await producer.stop()

        asyncio.run(run())


@pytest.fixture(scope="module")
def ingress_engine(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngressEngine]:
    """A worker with DrChrono and X12 835 webhook secrets, on fresh topics (4 partitions)."""
    run = uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("platform-ingress")
    env = {
        "BILLWISE_TOPIC_PREFIX": f"pi{run}",
        "BILLWISE_APP_ID": f"billwise-pi{run}",
        "BILLWISE_PARTITIONS": "4",
        "BILLWISE_DATA_DIR": str(tmp / "worker-data"),
        "BILLWISE_WEBHOOK_SECRET_DRCHRONO": DRCHRONO_SECRET,
        "BILLWISE_WEBHOOK_SECRET_X12_835": X12_SECRET,
    }
    settings = StreamSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=env["BILLWISE_TOPIC_PREFIX"], partitions=4
    )
    asyncio.run(ensure_topics(settings, (*CONTRACT_TOPICS, *PLATFORM_TOPICS, ACCESS_TOPIC)))
    worker = start_worker(kafka_bootstrap, free_port(), log_path=tmp / "worker.log", env=env)
    with worker:
        yield IngressEngine(settings, worker)
    log = (tmp / "worker.log").read_text(errors="replace")
    for secret in (DRCHRONO_SECRET, X12_SECRET):
        assert secret not in log


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def drchrono(name: str) -> dict[str, Any]:
    """A fixture as DrChrono delivers it: no ``event``/``delivery`` in the body (they are headers)."""
    document: dict[str, Any] = json.loads((FIXTURES / "drchrono" / name).read_text())
    document.pop("event", None)
    document.pop("delivery", None)
    return document


def patient_delivery(patient_id: int, **changes: Any) -> dict[str, Any]:
    document = drchrono("webhook_patient_modify.json")
    document["object"].update({"id": patient_id, **changes})
    return document


def events_of(engine: IngressEngine, account_id: str) -> list[dict[str, Any]]:
    return [r.value for r in engine.read("events") if r.key == account_id]


def actions_of(engine: IngressEngine, account_id: str) -> list[Record]:
    return [r for r in engine.read("actions", "review") if r.key == account_id]


def test_drchrono_handshake_on_the_worker(ingress_engine: IngressEngine) -> None:
    response = httpx.get(f"{ingress_engine.url}/drchrono", params={"msg": "abc123"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"secret_token": handshake_token(DRCHRONO_SECRET.encode(), "abc123")}


def test_drchrono_webhooks_and_polled_ledger_become_an_action(ingress_engine: IngressEngine) -> None:
    engine = ingress_engine
    account = "drchrono:70311452"
    # 1. The patient (email on file, SMS not disabled) and a line item arrive as webhook deliveries.
    patient = patient_delivery(70311452, disable_sms_messages=False)
    assert engine.deliver("PATIENT_MODIFY", patient).status_code == 202
    assert engine.deliver("LINE_ITEM_MODIFY", drchrono("webhook_line_item_modify.json")).status_code == 202
    events = wait_for(
        lambda: events_of(engine, account) if len(events_of(engine, account)) >= 2 else None, "events"
    )
    assert [e["type"] for e in events] == ["billing.patient.updated", "billing.charge.posted"]
    assert events[0]["data"]["email"] == "ana.rivera@example.com"
    assert not actions_of(engine, account)  # a charge alone says nothing about what the patient owes

    # 2. The poller's complete ledger for the patient: DrChrono has no balance field, the adapter sums
    #    balance_pt (45.00 + 10.56 + 120.00, oldest unpaid service 2023-11-02).
    ledger = json.loads((FIXTURES / "drchrono" / "line_items_ledger.json").read_text())
    ledger["results"] = [item for item in ledger["results"] if item["patient"] == "70311452"]
    for item in ledger["results"]:
        if item["id"] == 98770012:
            item["balance_pt"] = 120.0
    engine.produce_platform("drchrono", b"70311452", json.dumps(ledger).encode())

    actions = wait_for(lambda: actions_of(engine, account), "an action for the account")
    balance = next(e for e in events_of(engine, account) if e["type"] == "billing.account.updated")
    assert balance["data"]["balance"] == "175.56"
    kinds = {r.value["kind"]: r for r in actions}
    assert "payment_plan_offer" in kinds
    offer = kinds["payment_plan_offer"]
    assert offer.value["account_id"] == account
    assert offer.value["channel"] == "email"  # the contact details came from the webhook delivery


def test_a_drchrono_webhook_alone_becomes_an_action(ingress_engine: IngressEngine) -> None:
    """A deceased patient's PATIENT_MODIFY: the engine holds a staff task for review."""
    engine = ingress_engine
    account = "drchrono:70399001"
    delivery = patient_delivery(70399001, patient_status="D", date_of_death="2024-03-01")
    assert engine.deliver("PATIENT_MODIFY", delivery).status_code == 202
    [action] = wait_for(lambda: actions_of(engine, account), "the staff task")
    assert action.topic == engine.topic("review")
    assert action.value["kind"] == "staff_task"


def test_bad_signature_is_refused_before_kafka(ingress_engine: IngressEngine) -> None:
    engine = ingress_engine
    marker = 70377777
    delivery = patient_delivery(marker)
    response = engine.deliver("PATIENT_MODIFY", delivery, token="not-the-secret")
    assert response.status_code == 401
    missing = httpx.post(f"{engine.url}/drchrono", content=json.dumps(delivery), timeout=10)
    assert missing.status_code == 401
    requests = wait_for(
        lambda: [r for r in engine.read("access") if r.key == "webhook:drchrono"] or None, "audit requests"
    )
    assert len(requests) >= 2
    assert {r.value["kind"] for r in requests} == {"event_rejected"}
    assert {r.value["details"]["reason"] for r in requests} == {"bad_signature"}
    # Once a valid delivery written after the bad ones has been mapped, nothing of the bad ones can follow.
    canary = patient_delivery(70377778)
    assert engine.deliver("PATIENT_MODIFY", canary).status_code == 202
    wait_for(lambda: events_of(engine, "drchrono:70377778"), "the canary's event")
    assert not any(str(marker).encode() in value for value in engine.read_raw(platform_topic("drchrono")))
    assert not events_of(engine, f"drchrono:{marker}")


def test_unmappable_deliveries_are_dead_lettered_with_the_path(ingress_engine: IngressEngine) -> None:
    engine = ingress_engine
    bad_amount = drchrono("webhook_line_item_modify.json")
    bad_amount["object"].update({"id": 99188001, "billed": "lots"})
    assert engine.deliver("LINE_ITEM_MODIFY", bad_amount).status_code == 202
    deletion = drchrono("webhook_line_item_delete.json")
    deletion["object"]["id"] = 99188002
    assert engine.deliver("LINE_ITEM_DELETE", deletion).status_code == 202

    def letters() -> list[dict[str, Any]] | None:
        found = [
            r.value
            for r in engine.read("dlq")
            if r.value["source_topic"] == engine.topic("platform.drchrono")
            and ("99188001" in r.value["raw"] or "99188002" in r.value["raw"])
        ]
        return found if len(found) == 2 else None

    by_path = {letter["error"]["path"]: letter for letter in wait_for(letters, "two dead letters")}
    assert set(by_path) == {"object.billed", "event"}
    assert {letter["error"]["type"] for letter in by_path.values()} == {"adapter_error"}
    assert "LINE_ITEM_DELETE" in by_path["event"]["error"]["message"]


def test_hmac_signed_x12_835_delivery_becomes_claim_events(ingress_engine: IngressEngine) -> None:
    engine = ingress_engine
    body = (FIXTURES / "x12-835" / "aetna_multi_claim.835").read_bytes()
    unsigned = httpx.post(f"{engine.url}/x12-835", content=body, timeout=10)
    assert unsigned.status_code == 401
    signature = body_signature(X12_SECRET.encode(), body)
    response = httpx.post(
        f"{engine.url}/x12-835", content=body, headers={"X-Billwise-Signature": signature}, timeout=10
    )
    assert response.status_code == 202
    claims = wait_for(
        lambda: [r for r in engine.read("events") if r.key and r.key.startswith("x12-835:")] or None, "claims"
    )
    assert {r.value["type"] for r in claims} == {"billing.claim.adjudicated"}
    assert all(r.value["data"]["account_id"] == r.key for r in claims)
    assert httpx.post(f"{engine.url}/tebra", content=b"<x/>", timeout=10).status_code == 503  # no secret set
    assert httpx.post(f"{engine.url}/epic", content=b"{}", timeout=10).status_code == 404
