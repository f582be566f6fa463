"""vLLM client: breaker transitions, retries, fail-fast, in-flight cap, request shape (no network)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from inference.client import (
    CircuitBreaker,
    CircuitOpenError,
    VllmClient,
    VllmConnectError,
    VllmResponseError,
    VllmStatusError,
    VllmTimeoutError,
    split_base_url,
)
from inference.prompts import response_format


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()


def test_breaker_half_open_probe_closes_on_success() -> None:
    clock = Clock()
    changes: list[str] = []
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock, on_change=changes.append)
    breaker.record_failure()
    clock.now += 9.9
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # no second probe while the first is out
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert changes == ["open", "half_open", "closed"]


def test_breaker_half_open_probe_failure_reopens_for_a_new_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, half_open_max_calls=2, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow() and breaker.allow() and not breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.state == "half_open"


def test_split_base_url() -> None:
    assert split_base_url("http://h:8000/v1") == ("http://h:8000/v1", "http://h:8000")
    assert split_base_url("http://h:8000/") == ("http://h:8000/v1", "http://h:8000")


def completion(content: str = '{"ok": true}', finish: str = "stop") -> dict[str, Any]:
    return {
        "model": "served-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


MESSAGES = [{"role": "user", "content": "hi"}]


def make_client(handler: Any, **kw: Any) -> VllmClient:
    kw.setdefault("backoff_base_s", 0.001)
    return VllmClient("http://vllm.test/v1", "m", transport=httpx.MockTransport(handler), **kw)


async def test_request_shape_and_api_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    async with make_client(handler, api_key="sekret") as client:
        result = await client.chat_json(MESSAGES, response_format(), max_tokens=300, temperature=0.1)
    assert result.content == '{"ok": true}' and result.model == "served-model"
    (request,) = seen
    assert request.url == "http://vllm.test/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sekret"
    body = json.loads(request.content)
    assert body["max_tokens"] == 300 and body["temperature"] == 0.1
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == [
        "subject",
        "body",
        "sms_body",
        "tone_tags",
    ]
    assert not any(key.startswith("guided_") for key in body)


async def test_retries_transient_errors_then_succeeds() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503) if calls == 1 else httpx.Response(200, json=completion())

    async with make_client(handler, max_retries=2) as client:
        await client.chat_json(MESSAGES, response_format())
    assert calls == 2
    assert client.breaker.state == "closed"


async def test_retries_are_bounded() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused")

    async with make_client(handler, max_retries=2) as client:
        with pytest.raises(VllmConnectError) as info:
            await client.chat_json(MESSAGES, response_format())
    assert calls == 3
    assert info.value.reason == "unavailable"


async def test_client_errors_are_not_retried_and_do_not_trip_the_breaker() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"error": "bad"})

    breaker = CircuitBreaker(failure_threshold=1)
    async with make_client(handler, breaker=breaker, max_retries=3) as client:
        with pytest.raises(VllmStatusError) as info:
            await client.chat_json(MESSAGES, response_format())
    assert calls == 1 and info.value.reason == "client_error"
    assert breaker.state == "closed"


async def test_timeout_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    async with make_client(handler, max_retries=0) as client:
        with pytest.raises(VllmTimeoutError) as info:
            await client.chat_json(MESSAGES, response_format())
    assert info.value.reason == "timeout"


async def test_malformed_envelope_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": []})

    async with make_client(handler) as client:
        with pytest.raises(VllmResponseError):
            await client.chat_json(MESSAGES, response_format())


async def test_open_breaker_fails_fast_without_calling_the_server() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500)

    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30, clock=clock)
    async with make_client(handler, breaker=breaker, max_retries=5) as client:
        with pytest.raises(VllmStatusError):
            await client.chat_json(
                MESSAGES, response_format()
            )  # 2 failures open the breaker: no more retries
        assert calls == 2 and breaker.state == "open"
        with pytest.raises(CircuitOpenError) as info:
            await client.chat_json(MESSAGES, response_format())
        assert calls == 2 and info.value.reason == "circuit_open"


async def test_in_flight_cap() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json=completion())

    async with make_client(handler, max_in_flight=3) as client:
        await asyncio.gather(*(client.chat_json(MESSAGES, response_format()) for _ in range(12)))
    assert peak == 3


async def test_health_and_models() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(503)
        return httpx.Response(200, json={"object": "list", "data": [{"id": "a"}, {"id": "b"}]})

    async with make_client(handler) as client:
        assert await client.health() is False
        assert await client.models() == ["a", "b"]


def test_client_survives_a_new_event_loop_per_call() -> None:
    """An offline CLI may run each batch in its own asyncio.run: connections and the in-flight
    semaphore must follow the loop instead of failing with "bound to a different event loop"."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.005)
        return httpx.Response(200, json=completion())

    client = make_client(handler, max_in_flight=1)

    async def batch() -> None:
        await asyncio.gather(*(client.chat_json(MESSAGES, response_format()) for _ in range(3)))

    asyncio.run(batch())
    asyncio.run(batch())
    asyncio.run(client.aclose())
