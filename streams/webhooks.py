"""Webhook ingress: ``POST /webhooks/{platform}`` writes a verified delivery to the platform's topic.

The route is served by the worker's web server (`streams.platform_ingress.install_platform_ingress`).
A delivery whose signature holds is written, as delivered, to ``{prefix}.platform.<platform>`` and
acknowledged (202) once the broker has it; the adapter agent of that topic maps it to canonical events.

Signature schemes (secrets from ``BILLWISE_WEBHOOK_SECRET_<PLATFORM>``, the platform upper-cased with
``-`` as ``_``: ``BILLWISE_WEBHOOK_SECRET_DRCHRONO``, ``BILLWISE_WEBHOOK_SECRET_X12_835``):

- ``drchrono``: DrChrono sends the webhook's secret token itself in ``X-drchrono-signature``; it is not
  an HMAC of the body (platform-data-models.md §1.3, DrChrono API docs "Webhooks"). It is compared with
  the configured secret in constant time before the body is read. The verification handshake (on
  creating the webhook or changing its URL) is ``GET /webhooks/drchrono?msg=<random>``, answered
  200 ``{"secret_token": hex(HMAC-SHA256(key=secret, msg))}``. A ``PING`` delivery (the "Ping webhook"
  button) is acknowledged and not written. DrChrono names the event in ``X-drchrono-event`` and the
  delivery in ``X-drchrono-delivery``, not in the body; the ingress appends them to the JSON object as
  top-level ``"event"`` and ``"delivery"`` members, where `schemas.adapters.drchrono` reads them (a
  ``LINE_ITEM_DELETE`` must not be read as a modification). Every other byte stays as delivered.
- every other platform (none of Tebra, AdvancedMD, CareCloud, FHIR or X12 835 documents a push mechanism
  of its own, so deliveries come from a connector or poller): ``X-Billwise-Signature:
  sha256=<hex(HMAC-SHA256(key=secret, body))>`` (the ``sha256=`` prefix may be left out). There is no
  handshake for these platforms: answering one would sign any message an attacker chose.

Answers: 202 written; 200 handshake or PING; 400 empty body or handshake without ``msg``; 401 missing
or wrong signature (and an `streams.commands.AuditRequest` of kind ``event_rejected`` for the
pseudo-account ``webhook:<platform>`` on ``{prefix}.access``); 404 unknown platform; 405 handshake on a
platform without one; 408 body not received in time; 413 body over the limit
(``BILLWISE_WEBHOOK_MAX_BYTES``, default 1 MiB); 503 no secret configured for the platform, or the
broker did not take the record (the sender retries).

Message key: for DrChrono the platform's patient id when the delivery names one (``object.patient``,
or ``object.id`` of a ``PATIENT_CREATE``/``PATIENT_MODIFY``), so one patient's deliveries keep their
order; otherwise none. The adapter agent re-keys every canonical event by its ``account_id``.

Logs name the platform, the outcome and the remote address; never a secret, a signature or a body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from streams.commands import AuditRequest
from streams.http_body import BodyRefused, read_limited

log = logging.getLogger(__name__)

SECRET_ENV_PREFIX = "BILLWISE_WEBHOOK_SECRET_"
MAX_BYTES_ENV = "BILLWISE_WEBHOOK_MAX_BYTES"
DEFAULT_MAX_BYTES = 1024 * 1024
BODY_TIMEOUT_S = 30.0
PUBLISH_TIMEOUT_S = 15.0
MAX_HANDSHAKE_MSG = 1024

DRCHRONO = "drchrono"
DRCHRONO_SIGNATURE = "X-drchrono-signature"
DRCHRONO_EVENT = "X-drchrono-event"
DRCHRONO_DELIVERY = "X-drchrono-delivery"
BILLWISE_SIGNATURE = "X-Billwise-Signature"
_PATIENT_EVENTS = frozenset({"PATIENT_CREATE", "PATIENT_MODIFY"})
_MAX_KEY_CHARS = 128

WEBHOOK_REQUESTS = Counter(
    "billwise_webhook_requests_total",
    "Webhook requests by platform (unknown platforms as 'unknown') and HTTP status",
    ["platform", "status"],
)

Publish = Callable[[str, bytes | None, bytes], Awaitable[None]]
"""``publish(topic, key, value)``: resolves once the broker has acknowledged the record."""


def secret_env_name(platform: str) -> str:
    """``drchrono`` → ``BILLWISE_WEBHOOK_SECRET_DRCHRONO``; ``x12-835`` → ``..._X12_835``."""
    return SECRET_ENV_PREFIX + platform.upper().replace("-", "_")


@dataclass(frozen=True)
class WebhookConfig:
    """Per-platform shared secrets (platforms without one refuse deliveries) and the body size limit."""

    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls, platforms: Iterable[str], environ: Mapping[str, str] | None = None) -> WebhookConfig:
        env = os.environ if environ is None else environ
        secrets = {}
        for platform in platforms:
            value = env.get(secret_env_name(platform), "").strip()
            if value:
                secrets[platform] = value.encode()
        raw_limit = env.get(MAX_BYTES_ENV, "").strip()
        try:
            max_bytes = int(raw_limit) if raw_limit else DEFAULT_MAX_BYTES
        except ValueError:
            raise ValueError(f"{MAX_BYTES_ENV}={raw_limit!r} is not a number of bytes") from None
        if max_bytes < 1:
            raise ValueError(f"{MAX_BYTES_ENV} must be positive")
        return cls(secrets=secrets, max_bytes=max_bytes)


# -- signatures -------------------------------------------------------------------------------------


def handshake_token(secret: bytes, msg: str) -> str:
    """DrChrono's verification answer: hex HMAC-SHA256 of ``msg`` keyed by the webhook secret."""
    return hmac.new(secret, msg.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_drchrono(signature: str | None, secret: bytes) -> bool:
    """DrChrono's ``X-drchrono-signature`` is the secret token itself: compare in constant time."""
    if not signature:
        return False
    return hmac.compare_digest(signature.strip().encode("utf-8", "surrogateescape"), secret)


def body_signature(secret: bytes, body: bytes) -> str:
    """The ``X-Billwise-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_body_signature(signature: str | None, secret: bytes, body: bytes) -> bool:
    """``X-Billwise-Signature``: HMAC-SHA256 of the body, hex, optionally prefixed ``sha256=``."""
    if not signature:
        return False
    given = signature.strip()
    if given[:7].lower() == "sha256=":
        given = given[7:]
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.lower().encode("utf-8", "surrogateescape"), expected.encode())


# -- DrChrono deliveries ----------------------------------------------------------------------------


def drchrono_record(body: bytes, event: str | None, delivery: str | None) -> tuple[bytes | None, bytes]:
    """The key and value to write for a DrChrono delivery.

    A body that is a JSON object gets the header's event name and delivery id appended as top-level
    ``"event"``/``"delivery"`` members (appended, so they win over any the body carried: JSON readers
    keep the last of duplicate names); anything else is written unchanged for the adapter to reject.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, body
    if not isinstance(document, dict):
        return None, body
    key = _patient_key(document, event)
    members = []
    if event:
        members.append(b'"event":' + json.dumps(event.strip()).encode())
    if delivery:
        members.append(b'"delivery":' + json.dumps(delivery.strip()).encode())
    if not members:
        return key, body
    stripped = body.rstrip(b" \t\r\n")  # a parsed JSON object ends with "}" and JSON whitespace
    separator = b"," if document else b""
    return key, stripped[:-1] + separator + b",".join(members) + b"}"


def _patient_key(document: dict[str, Any], event: str | None) -> bytes | None:
    obj = document.get("object")
    if not isinstance(obj, dict):
        return None
    value = obj.get("patient")
    if value is None and event in _PATIENT_EVENTS:
        value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text.encode() if text and len(text) <= _MAX_KEY_CHARS else None


# -- HTTP -------------------------------------------------------------------------------------------


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body = {"error": {"status": self.status, "code": self.code, "message": self.message}}
        return web.json_response(body, status=self.status, headers=self.headers)


@dataclass
class WebhookIngress:
    """The webhook handlers, bound to the platforms' topics and a producer."""

    config: WebhookConfig
    platform_topics: Mapping[str, str]
    """Platform name → full topic name (``billing.platform.drchrono``)."""
    access_topic: str
    publish: Publish
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        missing = sorted(set(self.platform_topics) - set(self.config.secrets))
        if missing and len(missing) == len(self.platform_topics):
            log.warning("no %s<PLATFORM> is set: every webhook is refused (503)", SECRET_ENV_PREFIX)
        elif missing:
            names = ", ".join(secret_env_name(p) for p in missing)
            log.warning("webhooks refused (503) until a secret is set: %s", names)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for ``GET`` and ``POST /webhooks/{platform}``."""
        platform = request.match_info.get("platform", "")
        try:
            if platform not in self.platform_topics:
                raise _Refusal(404, "unknown_platform", "no webhook for this platform")
            if request.method == "POST":
                response = await self._deliver(request, platform)
            elif request.method == "GET":
                response = self._handshake(request, platform)
            else:
                raise _Refusal(405, "method_not_allowed", "use POST", {"Allow": "POST"})
        except _Refusal as refusal:
            response = refusal.response()
        except Exception as exc:  # class name only: exception text can quote the body
            log.error("webhook %s failed: %s", _label(platform, self.platform_topics), type(exc).__name__)
            response = _Refusal(500, "internal_error", "internal error").response()
        WEBHOOK_REQUESTS.labels(platform=_label(platform, self.platform_topics), status=response.status).inc()
        return response

    def _secret(self, platform: str) -> bytes:
        secret = self.config.secrets.get(platform)
        if secret is None:
            raise _Refusal(503, "not_configured", "webhooks for this platform are not configured")
        return secret

    def _handshake(self, request: web.Request, platform: str) -> web.Response:
        if platform != DRCHRONO:
            raise _Refusal(
                405, "method_not_allowed", "this platform has no verification handshake", {"Allow": "POST"}
            )
        secret = self._secret(platform)
        msg = request.query.get("msg", "")
        if not msg or len(msg) > MAX_HANDSHAKE_MSG:
            raise _Refusal(
                400, "bad_request", f"the handshake needs a msg of 1 to {MAX_HANDSHAKE_MSG} characters"
            )
        log.info("webhook %s: verification handshake answered", platform)
        return web.json_response({"secret_token": handshake_token(secret, msg)})

    async def _deliver(self, request: web.Request, platform: str) -> web.Response:
        secret = self._secret(platform)
        limit = self.config.max_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _Refusal(413, "too_large", f"the body may be at most {limit} bytes")
        if platform == DRCHRONO:
            # The token is a header: refuse before reading a byte of an unauthenticated body.
            signature = request.headers.get(DRCHRONO_SIGNATURE)
            if not verify_drchrono(signature, secret):
                await self._reject(request, platform, signature)
            body = await _read_body(request, limit)
            event = request.headers.get(DRCHRONO_EVENT)
            if event is not None and event.strip() == "PING":
                log.info("webhook %s: PING acknowledged", platform)
                return web.json_response({"status": "pong"})
            key, value = drchrono_record(body, event, request.headers.get(DRCHRONO_DELIVERY))
        else:
            body = await _read_body(request, limit)
            signature = request.headers.get(BILLWISE_SIGNATURE)
            if not verify_body_signature(signature, secret, body):
                await self._reject(request, platform, signature)
            key, value = None, body
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.publish(self.platform_topics[platform], key, value)
        except Exception as exc:
            log.warning("webhook %s: could not write the delivery: %s", platform, type(exc).__name__)
            raise _Refusal(
                503, "broker_unavailable", "the delivery was not stored; retry later", {"Retry-After": "30"}
            ) from None
        return web.json_response({"status": "accepted"}, status=202)

    async def _reject(self, request: web.Request, platform: str, signature: str | None) -> None:
        """401, after asking the engine to record the rejection in ``webhook:<platform>``'s audit chain."""
        remote = request.remote or "unknown"
        state = "missing" if not signature else "invalid"
        log.warning("webhook %s: %s signature from %s", platform, state, remote)
        actor = f"webhook:{platform}"
        audit = AuditRequest(
            account_id=actor,
            user_id=actor,
            at=self.clock(),
            resource="webhook",
            kind="event_rejected",
            details={"reason": "bad_signature", "signature": state, "remote": remote},
        )
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.publish(self.access_topic, actor.encode(), audit.model_dump_json().encode())
        except Exception as exc:
            log.warning("webhook %s: could not request the audit record: %s", platform, type(exc).__name__)
        raise _Refusal(401, "unauthorized", "missing or invalid signature")


async def _read_body(request: web.Request, limit: int) -> bytes:
    """At most ``limit`` bytes within `BODY_TIMEOUT_S`; an empty delivery is refused."""
    try:
        body = await read_limited(request, limit, BODY_TIMEOUT_S)
    except BodyRefused as exc:
        raise _Refusal(exc.status, exc.code, exc.message) from None
    if not body:
        raise _Refusal(400, "empty_body", "the delivery has no body")
    return body


def _label(platform: str, known: Mapping[str, str]) -> str:
    return platform if platform in known else "unknown"


ROUTE = "/webhooks/{platform}"


def build_app(ingress: WebhookIngress) -> web.Application:
    """A bare aiohttp application with the webhook route (for tests; the worker mounts it on Faust)."""
    app = web.Application()
    app.router.add_route("GET", ROUTE, ingress.handle)
    app.router.add_route("POST", ROUTE, ingress.handle)
    return app
