"""Webhook ingress over aiohttp's test client: signatures, DrChrono's handshake and PING, limits, audit.

Kafka is replaced by a recording ``publish``; `adapt_record` (the adapter agents' mapping) is tested on
the realistic payloads in ``tests/fixtures/platforms``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from schemas.adapters import PLATFORMS, adapt
from schemas.deadletter import DeadLetter
from schemas.events import parse_event
from streams.commands import AuditRequest
from streams.ingest import InputRecord
from streams.platform_ingress import PLATFORM_TOPICS, adapt_record, platform_topic
from streams.webhooks import (
    DEFAULT_MAX_BYTES,
    WebhookConfig,
    WebhookIngress,
    body_signature,
    build_app,
    drchrono_record,
    handshake_token,
    secret_env_name,
    verify_body_signature,
    verify_drchrono,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "platforms"
DRCHRONO_SECRET = "3f9c0b2e7d5a41c8b6e0f1a2d3c4b5a697887766"
TEBRA_SECRET = "tebra-connector-secret-0123456789"
NOW = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)
ACCESS = "t.access"
TOPICS = {platform: f"t.platform.{platform}" for platform in PLATFORMS}

Client = TestClient[web.Request, web.Application]


@dataclass
class Recorder:
    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    broker_down: bool = False

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.broker_down:
            raise ConnectionError("broker unavailable")
        self.records.append((topic, key, value))

    def on(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return [(key, value) for t, key, value in self.records if t == topic]


def ingress(recorder: Recorder, max_bytes: int = DEFAULT_MAX_BYTES, **secrets: str) -> WebhookIngress:
    if not secrets:
        secrets = {"drchrono": DRCHRONO_SECRET, "tebra": TEBRA_SECRET}
    return WebhookIngress(
        config=WebhookConfig(secrets={p: s.encode() for p, s in secrets.items()}, max_bytes=max_bytes),
        platform_topics=TOPICS,
        access_topic=ACCESS,
        publish=recorder.publish,
        clock=lambda: NOW,
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(ingress(recorder)))) as test_client:
        yield test_client


def fixture_bytes(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / name).read_bytes()


def drchrono_headers(
    event: str = "LINE_ITEM_MODIFY", signature: str | None = DRCHRONO_SECRET
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-drchrono-event": event,
        "X-drchrono-delivery": "8841203",
    }
    if signature is not None:
        headers["X-drchrono-signature"] = signature
    return headers


def native_delivery(name: str) -> bytes:
    """A fixture as DrChrono sends it: ``event`` and ``delivery`` only in the headers."""
    document = json.loads(fixture_bytes("drchrono", name))
    document.pop("event", None)
    document.pop("delivery", None)
    return json.dumps(document, indent=1).encode()


# -- signature functions ----------------------------------------------------------------------------


def test_handshake_token_is_hmac_sha256_hex_of_msg_keyed_by_the_secret() -> None:
    expected = hmac.new(b"s3cret", b"abc123", hashlib.sha256).hexdigest()
    assert handshake_token(b"s3cret", "abc123") == expected
    assert len(expected) == 64


def test_drchrono_signature_is_the_secret_token_itself() -> None:
    secret = DRCHRONO_SECRET.encode()
    assert verify_drchrono(DRCHRONO_SECRET, secret)
    assert verify_drchrono(f" {DRCHRONO_SECRET} ", secret)
    assert not verify_drchrono(DRCHRONO_SECRET[:-1], secret)
    assert not verify_drchrono(DRCHRONO_SECRET.upper(), secret)
    assert not verify_drchrono(handshake_token(secret, "x"), secret)
    assert not verify_drchrono("", secret)
    assert not verify_drchrono(None, secret)
    assert not verify_drchrono("zé\udcff", secret)  # non-ASCII header text is compared, not an error


def test_body_signature_round_trip_and_tampering() -> None:
    secret, body = TEBRA_SECRET.encode(), b"<GetChargesResult/>"
    signature = body_signature(secret, body)
    assert signature.startswith("sha256=")
    assert verify_body_signature(signature, secret, body)
    assert verify_body_signature(signature.removeprefix("sha256="), secret, body)
    assert verify_body_signature(signature.upper().replace("SHA256=", "sha256="), secret, body)
    assert not verify_body_signature(signature, secret, body + b" ")
    assert not verify_body_signature(signature, b"other", body)
    assert not verify_body_signature(None, secret, body)
    assert not verify_body_signature("sha256=", secret, body)


def test_comparisons_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    verify_drchrono("nope", b"secret")
    verify_body_signature("sha256=00", b"secret", b"body")
    assert len(calls) == 2


def test_config_from_env_reads_per_platform_secrets_and_the_limit() -> None:
    assert secret_env_name("x12-835") == "BILLWISE_WEBHOOK_SECRET_X12_835"
    env = {
        "BILLWISE_WEBHOOK_SECRET_DRCHRONO": "tok",
        "BILLWISE_WEBHOOK_SECRET_X12_835": "edi",
        "BILLWISE_WEBHOOK_SECRET_TEBRA": "   ",
        "BILLWISE_WEBHOOK_MAX_BYTES": "2048",
    }
    config = WebhookConfig.from_env(PLATFORMS, env)
    assert config.secrets == {"drchrono": b"tok", "x12-835": b"edi"}
    assert config.max_bytes == 2048
    assert "tok" not in repr(config)
    assert WebhookConfig.from_env(PLATFORMS, {}).max_bytes == DEFAULT_MAX_BYTES
    with pytest.raises(ValueError):
        WebhookConfig.from_env(PLATFORMS, {"BILLWISE_WEBHOOK_MAX_BYTES": "1MiB"})


# -- DrChrono delivery records ----------------------------------------------------------------------


def test_drchrono_record_appends_event_and_delivery_and_keys_by_patient() -> None:
    body = native_delivery("webhook_line_item_delete.json")
    key, value = drchrono_record(body, "LINE_ITEM_DELETE", "8841377")
    assert key == b"70311452"
    assert value.startswith(body.rstrip()[:-1])  # the delivered bytes, then the two members
    document = json.loads(value)
    assert document["event"] == "LINE_ITEM_DELETE"
    assert document["delivery"] == "8841377"
    assert document["object"] == json.loads(body)["object"]


def test_drchrono_record_header_wins_over_the_body() -> None:
    key, value = drchrono_record(b'{"event": "LINE_ITEM_MODIFY", "object": {}}', "LINE_ITEM_DELETE", None)
    assert json.loads(value)["event"] == "LINE_ITEM_DELETE"
    assert key is None


def test_drchrono_record_patient_events_key_by_object_id() -> None:
    key, _ = drchrono_record(native_delivery("webhook_patient_modify.json"), "PATIENT_MODIFY", "1")
    assert key == b"70311452"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b"{" * 5000])
def test_drchrono_record_leaves_other_bodies_alone(body: bytes) -> None:
    assert drchrono_record(body, "LINE_ITEM_MODIFY", "1") == (None, body)


def test_drchrono_record_of_an_empty_object() -> None:
    _, value = drchrono_record(b"{ }\n", "PING", None)
    assert json.loads(value) == {"event": "PING"}


def test_a_deletion_is_a_dead_letter_only_because_the_event_name_is_carried() -> None:
    body = native_delivery("webhook_line_item_delete.json")
    assert [e.type for e in adapt("drchrono", body)] == ["billing.charge.posted"]  # misread without it
    _, value = drchrono_record(body, "LINE_ITEM_DELETE", "8841377")
    outgoing = adapt_record("drchrono", record(value))
    assert [o.topic for o in outgoing] == ["dlq"]
    assert json.loads(outgoing[0].value)["error"]["path"] == "event"


# -- HTTP -------------------------------------------------------------------------------------------


async def test_drchrono_handshake_answers_the_hmac_of_msg(client: Client) -> None:
    response = await client.get("/webhooks/drchrono", params={"msg": "r4nd0m"})
    assert response.status == 200
    assert await response.json() == {"secret_token": handshake_token(DRCHRONO_SECRET.encode(), "r4nd0m")}


async def test_handshake_needs_msg_and_exists_only_for_drchrono(client: Client, recorder: Recorder) -> None:
    assert (await client.get("/webhooks/drchrono")).status == 400
    assert (await client.get("/webhooks/drchrono", params={"msg": "x" * 5000})).status == 400
    # An HMAC-signed platform must not sign a caller's text: that would forge X-Billwise-Signature.
    response = await client.get("/webhooks/tebra", params={"msg": "<GetChargesResult/>"})
    assert response.status == 405
    assert "secret_token" not in await response.text()
    assert (await client.get("/webhooks/nope", params={"msg": "x"})).status == 404
    assert recorder.records == []


async def test_drchrono_delivery_is_written_to_the_platform_topic(client: Client, recorder: Recorder) -> None:
    body = native_delivery("webhook_line_item_modify.json")
    response = await client.post("/webhooks/drchrono", data=body, headers=drchrono_headers())
    assert response.status == 202, await response.text()
    [(key, value)] = recorder.on(TOPICS["drchrono"])
    assert key == b"70311452"
    assert json.loads(value)["event"] == "LINE_ITEM_MODIFY"
    assert recorder.on(ACCESS) == []
    events = adapt("drchrono", value)
    assert [(e.type, e.account_id) for e in events] == [("billing.charge.posted", "drchrono:70311452")]


async def test_drchrono_ping_is_acknowledged_and_not_written(client: Client, recorder: Recorder) -> None:
    body = b'{"receiver": {"id": 512}, "object": {}}'
    response = await client.post("/webhooks/drchrono", data=body, headers=drchrono_headers("PING"))
    assert response.status == 200
    assert recorder.records == []


@pytest.mark.parametrize(
    ("signature", "state"),
    [(None, "missing"), ("", "missing"), ("wrong-token", "invalid"), (DRCHRONO_SECRET + "0", "invalid")],
)
async def test_bad_drchrono_signature_is_401_with_an_audit_request(
    client: Client, recorder: Recorder, signature: str | None, state: str
) -> None:
    body = native_delivery("webhook_line_item_modify.json")
    response = await client.post(
        "/webhooks/drchrono", data=body, headers=drchrono_headers(signature=signature)
    )
    assert response.status == 401
    assert recorder.on(TOPICS["drchrono"]) == []
    [(key, value)] = recorder.on(ACCESS)
    assert key == b"webhook:drchrono"
    audit = AuditRequest.model_validate_json(value)
    assert audit.account_id == audit.user_id == "webhook:drchrono"
    assert audit.kind == "event_rejected"
    assert audit.at == NOW
    assert audit.details == {"reason": "bad_signature", "signature": state, "remote": "127.0.0.1"}
    assert DRCHRONO_SECRET not in value.decode()
    assert b"70311452" not in value  # nothing of the body


async def test_the_drchrono_handshake_answer_is_not_a_delivery_signature(client: Client) -> None:
    token = handshake_token(DRCHRONO_SECRET.encode(), "r4nd0m")
    response = await client.post("/webhooks/drchrono", data=b"{}", headers=drchrono_headers(signature=token))
    assert response.status == 401


async def test_hmac_platform_delivery(client: Client, recorder: Recorder) -> None:
    body = fixture_bytes("tebra", "get_charges_response.xml")
    signature = body_signature(TEBRA_SECRET.encode(), body)
    response = await client.post("/webhooks/tebra", data=body, headers={"X-Billwise-Signature": signature})
    assert response.status == 202
    assert recorder.on(TOPICS["tebra"]) == [(None, body)]  # the body exactly as delivered, unkeyed


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Billwise-Signature": "sha256=" + "0" * 64},
        {"X-Billwise-Signature": body_signature(TEBRA_SECRET.encode(), b"another body")},
        {"X-drchrono-signature": TEBRA_SECRET},  # DrChrono's scheme does not apply to other platforms
    ],
)
async def test_bad_hmac_signature_is_401(client: Client, recorder: Recorder, headers: dict[str, str]) -> None:
    response = await client.post("/webhooks/tebra", data=b"<GetChargesResult/>", headers=headers)
    assert response.status == 401
    assert recorder.on(TOPICS["tebra"]) == []
    [(key, value)] = recorder.on(ACCESS)
    assert key == b"webhook:tebra"
    assert AuditRequest.model_validate_json(value).details["reason"] == "bad_signature"


async def test_unknown_platform_is_404(client: Client, recorder: Recorder) -> None:
    response = await client.post("/webhooks/epic", data=b"{}", headers=drchrono_headers())
    assert response.status == 404
    assert recorder.records == []


async def test_platform_without_a_secret_refuses_with_503(client: Client, recorder: Recorder) -> None:
    response = await client.post("/webhooks/fhir", data=b"{}", headers={"X-Billwise-Signature": "sha256=00"})
    assert response.status == 503
    assert recorder.records == []


async def test_body_over_the_limit_is_413(recorder: Recorder) -> None:
    async with TestClient(TestServer(build_app(ingress(recorder, max_bytes=1000)))) as small:
        body = b'{"object": {"pad": "' + b"x" * 1200 + b'"}}'
        response = await small.post("/webhooks/drchrono", data=body, headers=drchrono_headers())
        assert response.status == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
            for _ in range(5):
                yield b"x" * 300

        response = await small.post("/webhooks/drchrono", data=chunks(), headers=drchrono_headers())
        assert response.status == 413
        body_ok = b'{"object": {"pad": "' + b"x" * 900 + b'"}}'
        assert len(body_ok) <= 1000
        response = await small.post("/webhooks/drchrono", data=body_ok, headers=drchrono_headers())
        assert response.status == 202
    assert len(recorder.on(TOPICS["drchrono"])) == 1


async def test_default_limit_accepts_a_large_delivery_above_aiohttps_own(recorder: Recorder) -> None:
    async with TestClient(TestServer(build_app(ingress(recorder, max_bytes=3 * 1024 * 1024)))) as big:
        body = b'{"object": {"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
        response = await big.post("/webhooks/drchrono", data=body, headers=drchrono_headers())
        assert response.status == 202


async def test_empty_body_is_400(client: Client, recorder: Recorder) -> None:
    response = await client.post("/webhooks/drchrono", data=b"", headers=drchrono_headers())
    assert response.status == 400
    assert recorder.records == []


async def test_broker_down_is_503_so_the_sender_retries(client: Client, recorder: Recorder) -> None:
    recorder.broker_down = True
    body = native_delivery("webhook_line_item_modify.json")
    response = await client.post("/webhooks/drchrono", data=body, headers=drchrono_headers())
    assert response.status == 503
    assert response.headers["Retry-After"]


async def test_logs_carry_no_secret_signature_or_body(
    client: Client, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    body = native_delivery("webhook_patient_modify.json")
    await client.post(
        "/webhooks/drchrono", data=body, headers=drchrono_headers(signature="guess-" + "a" * 30)
    )
    await client.post("/webhooks/drchrono", data=body, headers=drchrono_headers("PATIENT_MODIFY"))
    await client.get("/webhooks/drchrono", params={"msg": "r4nd0m"})
    recorder.broker_down = True
    await client.post("/webhooks/drchrono", data=body, headers=drchrono_headers("PATIENT_MODIFY"))
    text = caplog.text
    assert caplog.records
    for secret in (
        DRCHRONO_SECRET,
        "guess-",
        "Rivera",
        "ana.rivera",
        handshake_token(DRCHRONO_SECRET.encode(), "r4nd0m"),
    ):
        assert secret not in text


# -- adapter agents' mapping ------------------------------------------------------------------------


def record(value: bytes, key: bytes | None = None, topic: str = "t.platform.drchrono") -> InputRecord:
    return InputRecord(topic=topic, partition=2, offset=41, key=key, value=value, received_at=NOW)


def test_platform_topics_are_named_after_the_platforms() -> None:
    assert PLATFORM_TOPICS == (
        "platform.drchrono",
        "platform.tebra",
        "platform.advancedmd",
        "platform.carecloud",
        "platform.fhir",
        "platform.x12-835",
    )
    assert platform_topic("x12-835") == "platform.x12-835"


def test_adapt_record_keys_each_canonical_event_by_its_account() -> None:
    outgoing = adapt_record("drchrono", record(fixture_bytes("drchrono", "line_items_ledger.json")))
    assert {o.topic for o in outgoing} == {"events"}
    events = [parse_event(o.value) for o in outgoing]
    assert [o.key for o in outgoing] == [e.account_id for e in events]
    assert {e.account_id for e in events} == {"drchrono:70311452", "drchrono:70488120"}
    assert "billing.account.updated" in {e.type for e in events}


@pytest.mark.parametrize(
    ("platform", "name"),
    [
        ("tebra", "get_charges_response.xml"),
        ("fhir", "invoice_statement.json"),
        ("x12-835", "aetna_multi_claim.835"),
        ("advancedmd", "gettxhistory.json"),
        ("carecloud", "patient.json"),
    ],
)
def test_adapt_record_maps_every_platform(platform: str, name: str) -> None:
    outgoing = adapt_record(platform, record(fixture_bytes(platform, name), topic=f"t.platform.{platform}"))
    assert outgoing
    assert {o.topic for o in outgoing} == {"events"}
    for o in outgoing:
        assert parse_event(o.value).account_id == o.key


def test_unmappable_record_is_a_dead_letter_with_the_path() -> None:
    ledger = json.loads(fixture_bytes("drchrono", "line_items_ledger.json"))
    ledger["results"][1]["balance_pt"] = "ten dollars"
    raw = json.dumps(ledger).encode()
    [out] = adapt_record("drchrono", record(raw, key=b"70311452"))
    assert out.topic == "dlq"
    assert out.key == "70311452"
    letter = DeadLetter.model_validate_json(out.value)
    assert letter.error.type == "adapter_error"
    assert letter.error.path == "results[1].balance_pt"
    assert (letter.source_topic, letter.partition, letter.offset) == ("t.platform.drchrono", 2, 41)
    assert letter.raw == raw.decode()


@pytest.mark.parametrize("value", [b"", b"\x00\xff\xfe", b"{", b"null", b"{" * 100000])
def test_garbage_is_a_dead_letter_never_an_exception(value: bytes) -> None:
    for platform in PLATFORMS:
        [out] = adapt_record(platform, record(value))
        assert out.topic == "dlq"
        assert DeadLetter.model_validate_json(out.value).error.type == "adapter_error"


def test_an_empty_list_maps_to_nothing_or_a_dead_letter() -> None:
    for platform in PLATFORMS:
        assert {o.topic for o in adapt_record(platform, record(b"[]"))} <= {"dlq"}


def test_an_unexpected_adapter_failure_is_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.platform_ingress as module

    def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("bug")

    monkeypatch.setattr(module, "adapt", broken)
    [out] = adapt_record("fhir", record(b"{}"))
    assert out.topic == "dlq"
    assert "RuntimeError" in DeadLetter.model_validate_json(out.value).error.message
