"""Drafting through the stub vLLM server over real HTTP on 127.0.0.1 (no broker needed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from inference.client import CircuitBreaker, VllmClient
from inference.drafting import Drafter
from inference.facts import DraftFacts
from inference.guardrails import check_message
from inference.stub import StubServer
from inference.templates import render_template
from inference.tokeniser import TOKEN_RE
from schemas.actions import PlanOption, Settlement

PLAN = PlanOption(
    monthly_amount=Decimal("75"), term_months=6, first_due_date=date(2026, 4, 1), total=Decimal("450")
)


def facts(
    channel: str = "email", language: str = "en", kind: str = "payment_plan_offer", **kw: object
) -> DraftFacts:
    values: dict[str, object] = {
        "kind": kind,
        "channel": channel,
        "language": language,
        "practice_name": "Oak Valley Clinic",
        "patient_name": "Maria Lopez",
        "account_id": "ACC-1001",
        "balance": Decimal("450"),
        "last_payment_amount": Decimal("50"),
        "last_payment_date": date(2026, 3, 1),
        "due_date": date(2026, 4, 1),
        "plan_options": (PLAN,),
        "settlement": Settlement(amount=Decimal("315"), floor=Decimal("315"), valid_until=date(2026, 5, 1)),
        "disclosures": ("tila_zero_apr",),
    }
    values.update(kw)
    return DraftFacts.model_validate(values)


@pytest.fixture
async def stub() -> AsyncIterator[StubServer]:
    async with StubServer() as server:
        yield server


def drafter_for(stub: StubServer, *, timeout_s: float = 1.0, **client_kw: object) -> Drafter:
    client = VllmClient(stub.base_url, "billwise-drafter", timeout_s=timeout_s, **client_kw)  # type: ignore[arg-type]
    return Drafter(client, timeout_s=timeout_s)


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", ["email", "sms", "phone", "letter", "portal"])
async def test_good_draft_is_used(stub: StubServer, channel: str, language: str) -> None:
    drafter = drafter_for(stub)
    f = facts(channel, language)
    outcome = await drafter.draft(f)
    await drafter.aclose()
    assert outcome.fallback_reason is None
    message = outcome.message
    assert message.source == "llm" and message.template_id is None
    assert message.model == "billwise-drafter"
    assert message.language == language
    assert check_message(message, f) == []
    assert message.body != render_template(f).body
    assert "$75.00" in message.body or channel == "sms"
    assert "[" not in message.body  # every placeholder restored
    if channel in ("email", "letter", "portal"):
        assert "Maria Lopez" in message.body  # identity restored after the call
    assert "tila_zero_apr" in message.disclosures


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error", "server_error"),
        ("invalid_json", "invalid_json"),
        ("schema_mismatch", "schema_mismatch"),
        ("wrong_amount", "unknown_amount"),
        ("threat", "threat"),
    ],
)
@pytest.mark.parametrize("language", ["en", "es"])
async def test_bad_answers_fall_back_to_the_template(
    stub: StubServer, mode: str, reason: str, language: str
) -> None:
    stub.set_mode(mode)
    before = REGISTRY.get_sample_value("billwise_draft_fallbacks_total", {"reason": reason}) or 0.0
    drafter = drafter_for(stub)
    f = facts("sms", language)
    outcome = await drafter.draft(f)
    await drafter.aclose()
    assert outcome.fallback_reason == reason
    assert outcome.message == render_template(f)
    assert stub.completions, "the model was asked"
    after = REGISTRY.get_sample_value("billwise_draft_fallbacks_total", {"reason": reason})
    assert after == before + 1


async def test_slow_server_times_out(stub: StubServer) -> None:
    stub.set_mode("slow", delay_s=1.0)
    drafter = drafter_for(stub, timeout_s=0.2)
    started = time.perf_counter()
    outcome = await drafter.draft(facts())
    await drafter.aclose()
    assert time.perf_counter() - started < 0.5
    assert outcome.fallback_reason == "timeout"
    assert outcome.message.source == "template"


async def test_unreachable_server_falls_back() -> None:
    async with StubServer() as gone:
        url = gone.base_url
    drafter = Drafter(VllmClient(url, "m", timeout_s=0.5, backoff_base_s=0.001), timeout_s=0.5)
    outcome = await drafter.draft(facts())
    await drafter.aclose()
    assert outcome.fallback_reason == "unavailable"


async def test_no_model_configured_uses_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_BASE_URL", raising=False)
    drafter = Drafter.from_env()
    assert not drafter.enabled
    outcome = await drafter.draft(facts())
    assert outcome.fallback_reason == "disabled" and outcome.message == render_template(facts())


async def test_from_env_drafts_through_the_configured_server(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.api_key = "sekret"
    monkeypatch.setenv("VLLM_BASE_URL", stub.base_url)
    monkeypatch.setenv("VLLM_MODEL", "served-name")
    monkeypatch.setenv("VLLM_TIMEOUT_S", "0.8")
    monkeypatch.setenv("VLLM_API_KEY", "sekret")
    drafter = Drafter.from_env()
    assert drafter.enabled and drafter.timeout_s == 0.8
    outcome = await drafter.draft(facts())
    await drafter.aclose()
    assert outcome.fallback_reason is None and outcome.message.model == "served-name"
    assert stub.completions[-1].has_authorization
    monkeypatch.setenv("VLLM_API_KEY", "wrong")
    drafter = Drafter.from_env()
    outcome = await drafter.draft(facts())
    await drafter.aclose()
    assert outcome.fallback_reason == "client_error"


async def test_nothing_identifying_reaches_the_server(stub: StubServer) -> None:
    # A dirty upstream field: identity pasted into the name. None of it may leave the engine.
    dirty = (
        "Maria Lopez, DOB 04/12/1961, maria.lopez@example.org, (415) 555-0123, +14155550123, "
        "742 Evergreen Terrace"
    )
    drafter = drafter_for(stub)
    for channel in ("email", "sms"):
        for language in ("en", "es"):
            await drafter.draft(facts(channel, language, patient_name=dirty, account_id="PT-78910"))
    await drafter.aclose()
    # Beside the tokens: a random hex token may hold "1961" by chance.
    sent = TOKEN_RE.sub("[TOKEN]", "\n".join(r.text for r in stub.requests))
    assert len(stub.completions) == 4
    for fragment in (
        "Maria",
        "Lopez",
        "PT-78910",
        "04/12/1961",
        "1961",
        "maria.lopez",
        "example.org",
        "555-0123",
        "4155550123",
        "Evergreen",
        "2026-03-01",
        "2026-04-01",
        "March",
        "marzo",
    ):
        assert fragment not in sent, fragment
    assert "$450.00" in sent  # the facts the draft needs do go


async def test_slow_server_under_load_never_blocks_beyond_the_timeout(stub: StubServer) -> None:
    stub.set_mode("slow", delay_s=2.0)
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout_s=0.3)
    drafter = drafter_for(stub, timeout_s=0.5, max_in_flight=16, breaker=breaker)
    f = facts("sms")

    async def timed() -> tuple[float, str | None]:
        started = time.perf_counter()
        outcome = await drafter.draft(f)
        return time.perf_counter() - started, outcome.fallback_reason

    wall_start = time.time()
    started = time.perf_counter()
    results = await asyncio.gather(*(timed() for _ in range(50)))
    total = time.perf_counter() - started
    assert total < 1.5, total  # well under the 2 s the server would take
    assert max(t for t, _ in results) < 1.0
    assert {reason for _, reason in results} <= {"timeout", "circuit_open"}
    # The in-flight cap held: 50 drafts wanted the model, 16 asked before the first deadline passed.
    assert len([r for r in stub.completions if r.at - wall_start < 0.45]) == 16
    assert breaker.state == "open"
    # Open: later drafts do not even ask the server.
    asked = len(stub.completions)
    outcome = await drafter.draft(f)
    assert outcome.fallback_reason == "circuit_open" and len(stub.completions) == asked
    # After the cool-down one probe goes through; the server is healthy again, so the breaker closes.
    stub.set_mode("good")
    await asyncio.sleep(0.35)
    outcome = await drafter.draft(f)
    assert outcome.fallback_reason is None
    assert breaker.state == "closed"
    assert REGISTRY.get_sample_value("billwise_llm_breaker_state") == 0
    await drafter.aclose()


async def test_health_and_models_through_the_client(stub: StubServer) -> None:
    async with VllmClient(stub.base_url, "m") as client:
        assert await client.health() is True
        assert await client.models() == ["stub/billwise-drafter"]
        stub.set_mode("error")
        assert await client.health() is False
