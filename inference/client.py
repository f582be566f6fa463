"""Async client for vLLM's OpenAI-compatible server: timeouts, retries, a circuit breaker, a cap on
requests in flight, optional API key.

Structured output goes in ``response_format`` (``{"type": "json_schema", ...}``): the old
``guided_json`` field was removed in vLLM 0.12 and is *silently ignored* by newer servers. Every chat
request carries ``max_tokens`` and an explicit low ``temperature``.

Errors are typed in the httpx style; each carries the ``reason`` a draft fallback is recorded with:

=========================  ===================  ============================================
exception                  ``reason``           when
=========================  ===================  ============================================
`VllmTimeoutError`         ``timeout``          no answer within the timeout
`VllmConnectError`         ``unavailable``      the server cannot be reached
`VllmStatusError`          ``server_error``     5xx (``overloaded`` for 429, ``client_error``
                                                for any other 4xx)
`VllmResponseError`        ``invalid_response`` a 2xx whose envelope is not a chat completion
`CircuitOpenError`         ``circuit_open``     the breaker is open: the server is not asked
=========================  ===================  ============================================

>>> breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=10, clock=lambda: 0.0)
>>> breaker.record_failure(); breaker.record_failure(); breaker.state
'open'
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx

from inference import metrics

log = logging.getLogger("billwise.inference.client")

BreakerState = Literal["closed", "open", "half_open"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


# --- errors --------------------------------------------------------------------------------------
class VllmError(Exception):
    """Base of every client error. Messages never carry prompt or answer text."""

    reason = "client_error"


class VllmTimeoutError(VllmError):
    reason = "timeout"


class VllmConnectError(VllmError):
    reason = "unavailable"


class VllmStatusError(VllmError):
    """A non-2xx answer."""

    def __init__(self, status_code: int, message: str = "") -> None:
        super().__init__(message or f"model server answered HTTP {status_code}")
        self.status_code = status_code

    @property
    def reason(self) -> str:  # type: ignore[override]
        if self.status_code == 429:
            return "overloaded"
        return "server_error" if self.status_code >= 500 else "client_error"


class VllmResponseError(VllmError):
    reason = "invalid_response"


class CircuitOpenError(VllmError):
    reason = "circuit_open"


# --- circuit breaker -----------------------------------------------------------------------------
class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failures; open → half-open after
    ``reset_timeout_s``; half-open lets ``half_open_max_calls`` probes through: a success closes it,
    a failure opens it again for another cool-down.

    >>> now = [0.0]
    >>> b = CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=lambda: now[0])
    >>> b.record_failure(); b.allow()
    False
    >>> now[0] = 5.0; b.state, b.allow(), b.allow()
    ('half_open', True, False)
    >>> b.record_success(); b.state
    'closed'
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1:
            raise ValueError("failure_threshold and half_open_max_calls must be >= 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self.on_change = on_change
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            log.info("model circuit breaker %s -> %s", self._state, state)
            self._state = state
            if self.on_change is not None:
                self.on_change(state)

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose cool-down has passed reports ``half_open``)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_timeout_s:
            self._probes = 0
            self._set("half_open")
        return self._state

    def allow(self) -> bool:
        """Whether a request may go out now; in half-open this takes one of the probe slots."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._probes < self.half_open_max_calls:
            self._probes += 1
            return True
        return False

    def record_success(self) -> None:
        """The server answered: close (from half-open) and forget earlier failures."""
        self._failures = 0
        self._probes = 0
        self._set("closed")

    def record_failure(self) -> None:
        """The server failed (timeout, unreachable, 5xx, 429)."""
        if self.state == "half_open":
            self._open()
            return
        self._failures += 1
        if self._state == "closed" and self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probes = 0
        self._set("open")


# --- client --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChatResult:
    """One chat completion: the message content and what produced it."""

    content: str
    model: str
    finish_reason: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def split_base_url(base_url: str) -> tuple[str, str]:
    """(API base ending in ``/v1``, server root) from ``VLLM_BASE_URL`` with or without ``/v1``.

    >>> split_base_url("http://127.0.0.1:8000/v1/")
    ('http://127.0.0.1:8000/v1', 'http://127.0.0.1:8000')
    >>> split_base_url("http://gpu-1:8000")
    ('http://gpu-1:8000/v1', 'http://gpu-1:8000')
    """
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        return base, base[: -len("/v1")]
    return f"{base}/v1", base


class VllmClient:
    """Async client of one vLLM server; share one instance per process (it pools connections).

    ``timeout_s`` bounds each HTTP attempt; callers that need a hard deadline over retries and
    queueing wrap the call in ``asyncio.timeout`` (as `inference.drafting.Drafter` does).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float = 3.0,
        api_key: str | None = None,
        max_in_flight: int = 16,
        max_retries: int = 1,
        backoff_base_s: float = 0.05,
        backoff_max_s: float = 1.0,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_base, self.root = split_base_url(base_url)
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.breaker = breaker or CircuitBreaker()
        if self.breaker.on_change is None:
            self.breaker.on_change = _publish_breaker_state
        metrics.BREAKER_STATE.set(metrics.BREAKER_STATE_VALUES[self.breaker.state])
        self.max_in_flight = max_in_flight
        self._api_key = api_key
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._http = self._new_http()

    def _new_http(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            headers=headers,
            transport=self._transport,
            limits=httpx.Limits(
                max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight
            ),
        )

    def _bind_loop(self) -> None:
        """Connections and the semaphore belong to one event loop: a caller that runs each draft in
        its own ``asyncio.run`` (an offline CLI) gets fresh ones instead of a "different loop" error."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_in_flight)
            self._http = self._new_http()  # the old pool's sockets belong to a closed loop

    async def __aenter__(self) -> VllmClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- plain endpoints (no breaker, no retries: they are for readiness checks and operators) --
    async def health(self) -> bool:
        """``GET /health``: True on 200 (engine alive), False on anything else or no answer."""
        self._bind_loop()
        try:
            response = await self._http.get(f"{self.root}/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def models(self) -> list[str]:
        """``GET /v1/models``: the served model ids."""
        self._bind_loop()
        try:
            response = await self._http.get(f"{self.api_base}/models")
        except httpx.TimeoutException as exc:
            raise VllmTimeoutError("model list timed out") from exc
        except httpx.HTTPError as exc:
            raise VllmConnectError(f"model server unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise VllmStatusError(response.status_code)
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise VllmResponseError("model list is not an OpenAI list") from exc

    # -- chat -----------------------------------------------------------------------------------
    async def chat_json(
        self,
        messages: list[dict[str, str]],
        response_format: dict[str, Any],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        top_p: float = 0.9,
        seed: int | None = None,
    ) -> ChatResult:
        """``POST /v1/chat/completions`` with a structured-output ``response_format``.

        Retries connect errors, timeouts, 429 and 5xx (at most ``max_retries`` times, jittered
        exponential backoff) while the breaker allows; raises a `VllmError` otherwise.
        """
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "response_format": response_format,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "n": 1,
            "stream": False,
        }
        if seed is not None:
            payload["seed"] = seed
        self._bind_loop()
        attempt = 0
        while True:
            try:
                return await self._attempt(payload)
            except (VllmTimeoutError, VllmConnectError, VllmStatusError) as exc:
                retryable = not isinstance(exc, VllmStatusError) or exc.status_code in RETRY_STATUSES
                if not retryable or attempt >= self.max_retries or self.breaker.state == "open":
                    raise
            attempt += 1
            cap = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
            await asyncio.sleep(random.uniform(0, cap))  # full jitter

    async def _attempt(self, payload: dict[str, Any]) -> ChatResult:
        if self.breaker.state == "open":  # fail fast, do not queue behind the semaphore
            metrics.LLM_REQUESTS.labels("circuit_open").inc()
            raise CircuitOpenError("model circuit breaker is open")
        async with self._semaphore:
            if not self.breaker.allow():
                metrics.LLM_REQUESTS.labels("circuit_open").inc()
                raise CircuitOpenError("model circuit breaker is open")
            metrics.LLM_IN_FLIGHT.inc()
            outcome = "cancelled"
            try:
                result = await self._post(payload)
                outcome = "ok"
                self.breaker.record_success()
                return result
            except VllmStatusError as exc:
                outcome = exc.reason
                if exc.status_code in RETRY_STATUSES:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()  # the server is alive; the request was wrong
                raise
            except VllmResponseError:
                outcome = "invalid_response"
                self.breaker.record_success()
                raise
            except VllmError as exc:
                outcome = exc.reason
                self.breaker.record_failure()
                raise
            except asyncio.CancelledError:  # the caller's deadline passed: the server was too slow
                self.breaker.record_failure()
                raise
            finally:
                metrics.LLM_IN_FLIGHT.dec()
                metrics.LLM_REQUESTS.labels(outcome).inc()

    async def _post(self, payload: dict[str, Any]) -> ChatResult:
        try:
            response = await self._http.post(f"{self.api_base}/chat/completions", json=payload)
        except httpx.TimeoutException as exc:
            raise VllmTimeoutError(f"no answer within {self.timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise VllmConnectError(f"model server unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise VllmStatusError(response.status_code)
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not text")
            usage = data.get("usage") or {}
            return ChatResult(
                content=content,
                model=str(data.get("model") or self.model),
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise VllmResponseError("answer is not a chat completion") from exc


def _publish_breaker_state(state: BreakerState) -> None:
    metrics.BREAKER_STATE.set(metrics.BREAKER_STATE_VALUES[state])
