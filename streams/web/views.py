"""The staff HTTP API and review page (CONTRACT.md, HTTP section), as plain aiohttp handlers.

Routes (all JSON but the page; every API route needs a bearer token, see `streams.web.auth`):

* ``GET /review``: held actions by priority; filters ``kind`` (repeatable or comma-separated),
  ``min_balance``, ``max_balance``, ``min_age_days``, ``max_age_days``, ``include_expired``, ``limit``.
* ``POST /review/{action_id}``: ``{"decision": "approve"|"reject"|"edit", "message"?, "note"?}``; the
  reviewer is the token's user. Produces a `schemas.inputs.ReviewDecision` to
  ``{prefix}.review.decisions`` (keyed by account_id) and answers 202 with it; the engine re-runs every
  gate when it applies the decision.
* ``GET /accounts/{account_id}``: the account's state from the table, open and held actions, decision
  history with explanations, the claims (EOB lines), statement and payments behind the balance.
* ``GET /ui/review`` and ``/ui/static/*``: the review page (no data in it; it calls the API above).

Every read of account data produces an access record (`streams.web.access`) to ``{prefix}.access``
and waits for the broker's acknowledgement before answering: if the read cannot be recorded, it is
not served (503). Errors are ``{"error": {"status", "code", "message"}}``. Nothing here logs a token,
a request body, an account or patient id, or any text of a message: logs carry route templates,
status codes and exception class names only.

The handlers are framework-neutral aiohttp handlers so the unit tests serve them from a bare aiohttp
application (`build_app`); `streams.web.install_web` mounts the same handlers on the Faust worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Literal, NoReturn, get_args

import jinja2
from aiohttp import web
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inference.guardrails import clinical_detail, false_urgency, threat
from rules.state import AccountState
from schemas.actions import Action, ActionKind
from schemas.inputs import ReviewDecision, Reviewer
from streams.http_body import BodyRefused, read_limited
from streams.web.access import AccessRecord, AccessResource
from streams.web.auth import ReviewRules, User, UserDirectory, bearer_token
from streams.web.review_index import HeldEntry, QueueFilter, ReviewIndex

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""A review decision is a few kilobytes at most; anything bigger is refused (413) before it is read."""
BODY_TIMEOUT_S = 5.0
"""A client that trickles its body is cut off (408) rather than holding a handler open."""
PUBLISH_TIMEOUT_S = 10.0
"""How long a request waits for the broker to acknowledge its record before answering 503."""
REQUEST_TIMEOUT_S = 20.0
"""Upper bound on any one request, including a forward to the worker that owns the account."""
MAX_MESSAGE_CHARS = 5000
MAX_NOTE_CHARS = 2000
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
HISTORY_SHOWN = 50
CONTACTS_SHOWN = 20

KINDS: frozenset[str] = frozenset(get_args(ActionKind))

WEB_REQUESTS = Counter(
    "billwise_web_requests_total", "Staff API requests, by route template and status", ["route", "status"]
)
REVIEW_DECISIONS = Counter(
    "billwise_review_decisions_submitted_total",
    "Review decisions accepted by the API, by decision",
    ["decision"],
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Publish = Callable[[str, str, bytes], Awaitable[None]]
"""``publish(topic, key, value)``: resolves once the broker has acknowledged the record."""
RouteAccount = Callable[[web.Request, str], Awaitable[web.StreamResponse | None]]
"""A forward of the request to the worker that owns the account, or ``None`` to serve it here."""

_API_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_PAGE_HEADERS = {
    **_API_HEADERS,
    # Scripts and styles from this origin only: the page never runs inline or third-party code.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


class Problem(Exception):
    """An HTTP error answer, raised anywhere in a handler and rendered by `guarded`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> web.Response:
        body = {"error": {"status": self.status, "code": self.code, "message": self.message, **self.extra}}
        return web.json_response(body, status=self.status, headers={**_API_HEADERS, **self.headers})


def _unauthorized(message: str, *, invalid: bool) -> NoReturn:
    challenge = 'Bearer realm="billwise"' + (', error="invalid_token"' if invalid else "")
    raise Problem(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


@dataclass
class WebContext:
    """What the handlers need from the worker; tests build one with fakes."""

    users: UserDirectory
    index: ReviewIndex
    publish: Publish
    load_account: Callable[[str], bytes | None]
    """The account's state JSON from this worker's table, or ``None`` (unknown, or not local)."""
    decisions_topic: str
    access_topic: str
    rules: ReviewRules = field(default_factory=ReviewRules)
    route_account: RouteAccount | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class DecisionBody(BaseModel):
    """The body of ``POST /review/{action_id}``: the reviewer is the token's user, never the body's."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject", "edit"]
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str
    handler: Handler


def guarded(name: str, handler: Handler, *, page: bool = False) -> Handler:
    """``handler`` with JSON errors, security headers, an overall timeout and a request counter."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                response = await handler(request)
        except Problem as problem:
            response = problem.response()
        except TimeoutError:
            response = Problem(503, "timeout", "the request took too long; try again").response()
        except Exception as exc:
            # Class name only: exception text can quote account data.
            log.error("unhandled error in %s: %s", name, type(exc).__name__)
            response = Problem(500, "internal_error", "internal error").response()
        for header, value in (_PAGE_HEADERS if page else _API_HEADERS).items():
            response.headers.setdefault(header, value)
        WEB_REQUESTS.labels(route=name, status=str(response.status)).inc()
        return response

    run.__name__ = f"guarded_{name}"
    return run


class StaffAPI:
    """The handlers, bound to one `WebContext`."""

    def __init__(self, context: WebContext) -> None:
        self.ctx = context
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("streams.web", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
        )
        self._static = {
            name: resources.files("streams.web").joinpath("static", name).read_bytes()
            for name in ("review.css", "review.js", "favicon.svg")
        }

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/review", "review_queue", guarded("review_queue", self.review_queue)),
            Route(
                "POST", "/review/{action_id}", "review_decide", guarded("review_decide", self.review_decide)
            ),
            Route("GET", "/accounts/{account_id}", "account", guarded("account", self.account)),
            Route("GET", "/ui/review", "review_page", guarded("review_page", self.review_page, page=True)),
            Route("GET", "/ui/static/{name}", "static", guarded("static", self.static, page=True)),
        ]

    # -- authentication ----------------------------------------------------------------------------
    def authenticate(self, request: web.Request) -> User:
        header = request.headers.get("Authorization")
        token = bearer_token(header)
        if token is None:
            _unauthorized("a bearer token is required", invalid=header is not None)
        user = self.ctx.users.authenticate(token)
        if user is None:
            _unauthorized("the token is not valid", invalid=True)
        return user

    # -- GET /review -------------------------------------------------------------------------------
    async def review_queue(self, request: web.Request) -> web.Response:
        user = self.authenticate(request)
        wanted, limit = parse_queue_query(request.query)
        now = self.ctx.clock()
        entries = self.ctx.index.query(wanted, now, limit)
        # The queue shows account data (drafts, balances): every account listed is an access.
        await self._record_access(user, (entry.account_id for entry in entries), "review_queue")
        items = [self._queue_item(entry, user, now) for entry in entries]
        body = {
            "viewer": {"user_id": user.user_id, "role": user.role},
            "index": {"caught_up": self.ctx.index.caught_up, "held": len(self.ctx.index)},
            "count": len(items),
            "items": items,
        }
        return web.json_response(body)

    def _queue_item(self, entry: HeldEntry, user: User, now: datetime) -> dict[str, Any]:
        action = entry.action
        restricted = self._restricted(action, entry.balance)
        lookup = self.ctx.index.lookup(entry.action_id)
        return {
            "action": action.model_dump(mode="json"),
            "queue": {
                "balance": _money(entry.balance),
                "age_days": round(entry.age(now).total_seconds() / 86400, 2),
                "expired": entry.expired(now),
                "restricted": restricted,
                "approver_roles": sorted(self.ctx.rules.approver_roles(restricted)),
                "can_approve": self.ctx.rules.may_decide(user.role, "approve", restricted),
                "can_reject": self.ctx.rules.may_decide(user.role, "reject", restricted),
                "decision_pending": lookup.pending_decision,
            },
        }

    def _restricted(self, action: Action, balance: Decimal | None, state: AccountState | None = None) -> bool:
        balances: list[Decimal | None] = [balance]
        if state is not None:
            balances.append(state.balance)
        return self.ctx.rules.is_restricted(
            action.kind,
            balances=balances,
            reasons=action.review.reasons,
            has_settlement=action.settlement is not None,
        )

    # -- POST /review/{action_id} ------------------------------------------------------------------
    async def review_decide(self, request: web.Request) -> web.Response:
        user = self.authenticate(request)
        rules = self.ctx.rules
        if user.role not in rules.reviewer_roles:
            raise Problem(403, "forbidden", f"role {user.role} does not review actions")
        body = await read_decision_body(request)
        action_id = request.match_info["action_id"]
        lookup = self.ctx.index.lookup(action_id)
        if lookup.resolution is not None:
            raise Problem(
                409,
                "already_resolved",
                f"the action was already {lookup.resolution}",
                extra={"resolution": lookup.resolution},
            )
        if lookup.pending_decision:
            raise Problem(409, "decision_pending", "a decision on this action was just submitted")
        entry = lookup.entry
        if entry is None:
            if not self.ctx.index.caught_up:
                raise Problem(
                    503,
                    "index_catching_up",
                    "the review queue is still loading; try again shortly",
                    headers={"Retry-After": "2"},
                )
            raise Problem(404, "not_found", "no held action with this id")
        action = entry.action
        now = self.ctx.clock()
        if body.decision != "reject" and entry.expired(now):
            raise Problem(409, "expired", "the action has expired; it can only be rejected")

        # The account's current state, when this worker holds it: a balance that grew since the
        # action was held restricts approval too, and the held action's own approver roles apply.
        state = _state(self.ctx.load_account(action.account_id))
        restricted = self._restricted(action, entry.balance, state)
        if not rules.may_decide(user.role, body.decision, restricted):
            roles = ", ".join(sorted(rules.approver_roles(restricted)))
            raise Problem(
                403,
                "forbidden",
                f"only {roles} may {body.decision} this action",
                extra={"approver_roles": sorted(rules.approver_roles(restricted))},
            )
        held = state.held.get(action_id) if state is not None else None
        if held is not None and body.decision != "reject" and user.role not in held.approver_roles:
            raise Problem(
                403, "forbidden", f"only {', '.join(sorted(held.approver_roles))} may approve this action"
            )

        if body.decision == "edit":
            violations = edit_violations(body.message or "", action.channel)
            if violations:
                raise Problem(
                    422,
                    "message_rejected",
                    "the edited message fails the output guardrails",
                    extra={"violations": violations},
                )

        decision = ReviewDecision(
            action_id=action_id,
            account_id=action.account_id,
            decision=body.decision,
            reviewer=Reviewer(user_id=user.user_id, role=user.role),
            at=now,
            message=body.message if body.decision == "edit" else None,
            note=body.note or None,
        )
        payload = decision.model_dump_json(exclude_none=True).encode()
        # Pending before the await: a concurrent second decision on this worker gets 409, not a duplicate.
        self.ctx.index.mark_pending(action_id)
        try:
            await self._publish(self.ctx.decisions_topic, action.account_id, payload)
        except Problem:
            self.ctx.index.clear_pending(action_id)
            raise
        REVIEW_DECISIONS.labels(decision=body.decision).inc()
        return web.json_response(decision.model_dump(mode="json", exclude_none=True), status=202)

    # -- GET /accounts/{account_id} ----------------------------------------------------------------
    async def account(self, request: web.Request) -> web.StreamResponse:
        user = self.authenticate(request)
        account_id = request.match_info["account_id"]
        if self.ctx.route_account is not None:
            forwarded = await self.ctx.route_account(request, account_id)
            if forwarded is not None:
                return forwarded
        blob = self.ctx.load_account(account_id)
        if blob is None:
            # No access record: there is no account (and no audit chain) to record it in.
            raise Problem(404, "not_found", "no account with this id")
        state = _state(blob)
        if state is None:
            raise Problem(500, "state_unreadable", "the account state cannot be read")
        await self._record_access(user, [account_id], "account")
        return web.json_response(account_view(state, self.ctx.index, self.ctx.rules, self.ctx.clock()))

    # -- the page ----------------------------------------------------------------------------------
    async def review_page(self, request: web.Request) -> web.Response:
        kinds = sorted(KINDS)
        html = self._templates.get_template("review.html").render(kinds=kinds)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content = self._static.get(name)
        if content is None:
            raise Problem(404, "not_found", "no such file")
        content_type = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}[
            name.rsplit(".", 1)[1]
        ]
        return web.Response(body=content, content_type=content_type, charset="utf-8")

    # -- producing ---------------------------------------------------------------------------------
    async def _record_access(self, user: User, account_ids: Iterable[str], resource: AccessResource) -> None:
        at = self.ctx.clock()
        records = [
            AccessRecord(
                account_id=account_id, user_id=user.user_id, role=user.role, at=at, resource=resource
            )
            for account_id in dict.fromkeys(account_ids)  # one record per account, in order
        ]
        await asyncio.gather(
            *(
                self._publish(self.ctx.access_topic, r.account_id, r.model_dump_json().encode())
                for r in records
            )
        )

    async def _publish(self, topic: str, key: str, value: bytes) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.ctx.publish(topic, key, value)
        except Exception as exc:
            log.warning("could not produce to %s: %s", topic, type(exc).__name__)
            raise Problem(
                503, "broker_unavailable", "the record could not be written; nothing was changed or served",
                headers={"Retry-After": "5"},
            ) from None  # fmt: skip


# -- request parsing ---------------------------------------------------------------------------------


async def read_decision_body(request: web.Request) -> DecisionBody:
    """The decision body: at most `MAX_BODY_BYTES` of JSON, read within `BODY_TIMEOUT_S`."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Problem(413, "too_large", f"the body may be at most {MAX_BODY_BYTES} bytes")
    if request.content_type != "application/json":
        raise Problem(415, "unsupported_media_type", "send the decision as application/json")
    try:
        raw = await read_limited(request, MAX_BODY_BYTES, BODY_TIMEOUT_S)
    except BodyRefused as exc:
        raise Problem(exc.status, exc.code, exc.message) from None
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Problem(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise Problem(400, "invalid_body", "the body must be a JSON object")
    if "reviewer" in document:
        raise Problem(400, "invalid_body", "the reviewer comes from the token, not the body")
    try:
        body = DecisionBody.model_validate(document)
    except ValidationError as exc:
        # Locations and messages only (``include_input=False``): the input may be patient text.
        problems = [
            {"field": ".".join(str(p) for p in error["loc"]), "message": error["msg"]}
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise Problem(
            422, "invalid_body", "the decision is not valid", extra={"problems": problems}
        ) from None
    if body.decision == "edit" and not body.message:
        raise Problem(422, "invalid_body", "an edit needs the edited message")
    if body.decision != "edit" and body.message is not None:
        raise Problem(422, "invalid_body", "a message is only sent with an edit")
    return body


def parse_queue_query(query: Any) -> tuple[QueueFilter, int]:
    """``GET /review``'s filters and limit from the query string; 400 on a bad value."""
    kinds = frozenset(k.strip() for value in query.getall("kind", []) for k in value.split(",") if k.strip())
    unknown = sorted(kinds - KINDS)
    if unknown:
        raise Problem(400, "invalid_query", f"unknown kind: {', '.join(unknown)}")
    wanted = QueueFilter(
        kinds=kinds,
        min_balance=_decimal_param(query, "min_balance"),
        max_balance=_decimal_param(query, "max_balance"),
        min_age=_days_param(query, "min_age_days"),
        max_age=_days_param(query, "max_age_days"),
        include_expired=_bool_param(query, "include_expired"),
    )
    limit_text = query.get("limit")
    try:
        limit = int(limit_text) if limit_text is not None else DEFAULT_LIMIT
    except ValueError:
        raise Problem(400, "invalid_query", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, "invalid_query", f"limit must be between 1 and {MAX_LIMIT}")
    return wanted, limit


def _decimal_param(query: Any, name: str) -> Decimal | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Problem(400, "invalid_query", f"{name} must be an amount such as 5000.00") from None
    if not value.is_finite() or value < 0:
        raise Problem(400, "invalid_query", f"{name} must be a non-negative amount")
    return value


def _days_param(query: Any, name: str) -> timedelta | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        days = float(text)
    except ValueError:
        raise Problem(400, "invalid_query", f"{name} must be a number of days") from None
    if not 0 <= days <= 3650:
        raise Problem(400, "invalid_query", f"{name} must be between 0 and 3650")
    return timedelta(days=days)


def _bool_param(query: Any, name: str) -> bool:
    text = (query.get(name) or "").lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise Problem(400, "invalid_query", f"{name} must be true or false")


def edit_violations(text: str, channel: str) -> list[dict[str, str]]:
    """The output guardrails an edited message fails that need no account facts.

    The engine runs the full `inference.guardrails.check_message` (amounts, dates, disclosures, SMS
    shape) when it applies the decision; checking tone and clinical detail here lets a reviewer fix
    an edit at once instead of finding it refused later.
    """
    found: list[dict[str, str]] = []
    if not text.strip():
        found.append({"code": "empty_text", "detail": "body"})
    phrase = threat(text)
    if phrase:
        found.append({"code": "threat", "detail": phrase})
    phrase = false_urgency(text)
    if phrase:
        found.append({"code": "false_urgency", "detail": phrase})
    if channel == "sms":
        term = clinical_detail(text)
        if term:
            found.append({"code": "phi_in_sms", "detail": term})
    return found


# -- the account view --------------------------------------------------------------------------------


def _state(blob: bytes | None) -> AccountState | None:
    if blob is None:
        return None
    try:
        return AccountState.model_validate_json(blob)
    except ValidationError:
        log.error("account state does not parse as AccountState")
        return None


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount.quantize(Decimal('0.01')):f}"


def account_view(
    state: AccountState, index: ReviewIndex, rules: ReviewRules, now: datetime
) -> dict[str, Any]:
    """Everything a collector on a patient call needs on one screen, as JSON.

    The internal bookkeeping of the state (de-duplication memory, audit chain head, candidates kept
    for re-gating) stays out: it is not the staff's business and would only widen what is exposed.
    """
    dump = state.model_dump(mode="json")
    held = [
        {
            "action": held.action.model_dump(mode="json"),
            "slot": held.slot,
            "approver_roles": sorted(held.approver_roles),
            "in_review_queue": held.action.action_id in index.held,
        }
        for held in state.held.values()
    ]
    open_actions = [
        slot.model_dump(mode="json", exclude={"fingerprint", "suppressed_key"})
        for slot in state.slots.values()
        if slot.is_open(now)
    ]
    return {
        "account_id": state.account_id,
        "patient_id": state.patient_id,
        "practice_id": state.practice_id,
        "patient": dump["patient"],
        "currency": "USD",
        "balance": dump["balance"],
        "insurance_pending": dump["insurance_pending"],
        "status": state.account_status,
        "self_pay": state.self_pay,
        "nonprofit_hospital": state.nonprofit_hospital,
        "oldest_unpaid_service_date": dump["oldest_unpaid_service_date"],
        "first_statement_date": dump["first_statement_date"],
        "plan": dump["plan"],
        "disputes": {"open": list(state.open_disputes), "ever": state.ever_disputed},
        "assistance": {
            "status": state.assistance_status,
            "household_size": state.household_size,
            "annual_income": dump["annual_income"],
        },
        "balance_detail": {
            # The statement, the adjudicated claims (EOB lines) and the payments behind the balance.
            "last_statement": dump["last_statement"],
            "claims": dump["claims"],
            "payments": dump["payments"],
        },
        "communication": {
            "recent_contacts": dump["contacts"][-CONTACTS_SHOWN:],
            "sms_revoked_at": dump.get("sms_revoked_at"),
            "email_revoked_at": dump.get("email_revoked_at"),
            "calls_revoked_at": dump.get("calls_revoked_at"),
            "validation_notice_sent": state.validation_notice_sent,
        },
        "open_actions": open_actions,
        "held_actions": held,
        "approval": {
            "balance_over": _money(rules.balance_over),
            "restricted_roles": sorted(rules.restricted_roles),
        },
        # Newest first: what a caller asks about is usually what happened last.
        "decision_history": list(reversed(dump["history"][-HISTORY_SHOWN:])),
    }


# -- a bare aiohttp application (tests, and anyone embedding the API elsewhere) ----------------------


def build_app(context: WebContext) -> web.Application:
    """An aiohttp application serving the staff API and page over ``context``."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    for route in StaffAPI(context).routes():
        app.router.add_route(route.method, route.path, route.handler)
    return app
