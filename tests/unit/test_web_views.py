"""The staff API over aiohttp's test client: every route and every role (401/403/200/202/404/409/413...).

The handlers are the ones the worker serves (`streams.web.views.build_app` mounts the same `StaffAPI`);
Kafka is replaced by a recording `publish` and the account table by a dict.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rules.candidate import Candidate
from rules.policy import load_policy
from rules.state import AccountState, ClaimFact, DecisionSummary, HeldAction, PaymentFact, SlotRecord
from schemas.actions import Action
from schemas.inputs import ReviewDecision
from streams.web.auth import ReviewRules, UserDirectory
from streams.web.review_index import ReviewIndex
from streams.web.views import MAX_BODY_BYTES, WebContext, build_app
from tests.unit.test_web_auth import TOKENS, users_document
from tests.unit.test_web_review_index import NOW, audit_bytes, make_action, review_bytes

ROLES = {role: token for _, (role, token) in TOKENS.items()}
USER_OF_ROLE = {role: user_id for user_id, (role, _) in TOKENS.items()}
DECISIONS = "t.review.decisions"
ACCESS = "t.access"


@dataclass
class Published:
    topic: str
    key: str
    value: dict[str, Any]


@dataclass
class Fakes:
    """What the handlers talk to instead of Kafka and the table."""

    published: list[Published] = field(default_factory=list)
    accounts: dict[str, bytes] = field(default_factory=dict)
    broker_down: bool = False
    gate: asyncio.Event | None = None
    """When set, produces wait for it: a broker that is slow to acknowledge."""

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.broker_down:
            raise ConnectionError("broker unavailable")
        self.published.append(Published(topic, key, json.loads(value)))

    def on(self, topic: str) -> list[Published]:
        return [p for p in self.published if p.topic == topic]


def account_state(
    account_id: str = "ACC-1", balance: str = "450.00", held: Sequence[Action] = ()
) -> AccountState:
    """An account with a claim, a payment, history and the given held actions."""
    state = AccountState.new(account_id, f"PT-{account_id}", "practice-1")
    return state.model_copy(
        update={
            "balance": Decimal(balance),
            "claims": [
                ClaimFact(
                    claim_id="CLM-1",
                    payer="Acme Health",
                    service_date=date(2026, 8, 3),
                    billed=Decimal("900.00"),
                    allowed=Decimal("700.00"),
                    insurance_paid=Decimal("200.00"),
                    patient_responsibility=Decimal("500.00"),
                    deductible=Decimal("500.00"),
                    status="paid",
                )
            ],
            "payments": [
                PaymentFact(payment_id="PAY-1", amount=Decimal("50.00"), at=NOW - timedelta(days=20))
            ],
            "history": [
                DecisionSummary(
                    at=NOW - timedelta(days=2),
                    event_id="evt-1",
                    event_type="billing.statement.generated",
                    action_id="act-old",
                    kind="statement_message",
                    outcome="released",
                    gates=["G-QUIET"],
                ),
                DecisionSummary(
                    at=NOW - timedelta(days=1),
                    event_id="evt-2",
                    event_type="billing.account.updated",
                    action_id=held[0].action_id if held else None,
                    kind="payment_reminder",
                    outcome="held",
                    gates=["R-REVIEW"],
                ),
            ],
            "slots": {
                action.kind: SlotRecord(
                    slot=action.kind,
                    action_id=action.action_id,
                    kind=action.kind,
                    channel=action.channel,
                    state="held",
                    created_at=action.created_at,
                    expires_at=action.expires_at,
                    fingerprint="f" * 16,
                    trigger_event_id=action.trigger.event_id,
                )
                for action in held
            },
            "held": {
                action.action_id: HeldAction(
                    action=action,
                    candidate=Candidate(kind=action.kind, purpose=action.kind, priority=action.priority),
                    slot=action.kind,
                    approver_roles=["billing_manager", "compliance_officer"]
                    if Decimal(balance) > 5000
                    else ["collector", "billing_manager", "compliance_officer", "admin"],
                    trigger_type="billing.account.updated",
                )
                for action in held
            },
        }
    )


# The queue every test starts from: one ordinary, one over $5,000, one settlement, one expired.
ORDINARY = make_action("act-ordinary", account_id="ACC-1", priority=0.4)
BIG = make_action(
    "act-big", account_id="ACC-2", balance="7200.00", priority=0.9, reasons=("R-REVIEW-BALANCE",)
)
SETTLEMENT = make_action(
    "act-settle",
    account_id="ACC-3",
    kind="settlement_offer",
    balance="1200.00",
    priority=0.7,
    settlement=True,
)
EXPIRED = make_action(
    "act-expired", account_id="ACC-4", created=NOW - timedelta(days=40), expires_in=timedelta(days=30)
)
SMS = make_action("act-sms", account_id="ACC-5", channel="sms", priority=0.1)


@pytest.fixture
def fakes() -> Fakes:
    fakes = Fakes()
    fakes.accounts["ACC-1"] = account_state("ACC-1", held=[ORDINARY]).model_dump_json().encode()
    return fakes


@pytest.fixture
def index() -> ReviewIndex:
    index = ReviewIndex()
    for action in (ORDINARY, BIG, SETTLEMENT, EXPIRED, SMS):
        index.apply_review(review_bytes(action))
    index.caught_up = True
    return index


@pytest.fixture
async def client(fakes: Fakes, index: ReviewIndex) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    context = WebContext(
        users=UserDirectory.from_document(users_document()),
        index=index,
        publish=fakes.publish,
        load_account=fakes.accounts.get,
        decisions_topic=DECISIONS,
        access_topic=ACCESS,
        rules=ReviewRules.from_policy(load_policy()),
        clock=lambda: NOW,
    )
    async with TestClient(TestServer(build_app(context))) as test_client:
        yield test_client


Client = TestClient[web.Request, web.Application]


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ROLES[role]}"}


async def post(client: Client, action_id: str, role: str | None, body: Any, **kwargs: Any) -> Any:
    headers = auth(role) if role else {}
    return await client.post(f"/review/{action_id}", json=body, headers=headers, **kwargs)


# -- authentication ---------------------------------------------------------------------------------

PROTECTED = [("GET", "/review"), ("POST", "/review/act-ordinary"), ("GET", "/accounts/ACC-1")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    ("header", "invalid"),
    [
        (None, False),
        ("Bearer not-a-token", True),
        ("Basic dXNlcjpwYXNz", True),
        (f"Bearer {ROLES['admin']}x", True),
        (f"Token {ROLES['admin']}", True),
    ],
    ids=["missing", "unknown", "basic", "near-miss", "wrong-scheme"],
)
async def test_every_api_route_needs_a_valid_bearer_token(
    client: Client, fakes: Fakes, method: str, path: str, header: str | None, invalid: bool
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.request(method, path, headers=headers, json={"decision": "approve"})
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is invalid
    body = await response.json()
    assert body["error"]["code"] == "unauthorized"
    assert fakes.published == []  # nothing produced, nothing recorded


async def test_a_users_file_without_users_refuses_everyone(fakes: Fakes, index: ReviewIndex) -> None:
    context = WebContext(
        users=UserDirectory(),
        index=index,
        publish=fakes.publish,
        load_account=fakes.accounts.get,
        decisions_topic=DECISIONS,
        access_topic=ACCESS,
    )
    async with TestClient(TestServer(build_app(context))) as test_client:
        response = await test_client.get("/review", headers=auth("admin"))
        assert response.status == 401


# -- GET /review ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ROLES))
async def test_every_role_reads_the_queue_by_priority(client: Client, fakes: Fakes, role: str) -> None:
    response = await client.get("/review", headers=auth(role))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["viewer"] == {"user_id": USER_OF_ROLE[role], "role": role}
    assert body["index"] == {"caught_up": True, "held": 5}
    ids = [item["action"]["action_id"] for item in body["items"]]
    assert ids == ["act-big", "act-settle", "act-ordinary", "act-sms"]  # expired hidden by default
    queue = {item["action"]["action_id"]: item["queue"] for item in body["items"]}
    senior = role in ("billing_manager", "compliance_officer")
    assert queue["act-big"]["restricted"] and queue["act-settle"]["restricted"]
    assert not queue["act-ordinary"]["restricted"]
    assert queue["act-big"]["approver_roles"] == ["billing_manager", "compliance_officer"]
    assert queue["act-big"]["can_approve"] is senior
    assert queue["act-settle"]["can_approve"] is senior
    assert queue["act-ordinary"]["can_approve"] is True
    assert all(q["can_reject"] for q in queue.values())
    assert queue["act-big"]["balance"] == "7200.00"
    assert queue["act-ordinary"]["age_days"] == 1.0
    # Every account shown is an access, recorded for the audit trail (ids, role and time only).
    access = fakes.on(ACCESS)
    assert [p.key for p in access] == ["ACC-2", "ACC-3", "ACC-1", "ACC-5"]
    assert access[0].value == {
        "account_id": "ACC-2",
        "user_id": USER_OF_ROLE[role],
        "role": role,
        "at": "2026-11-20T15:00:00Z",
        "resource": "review_queue",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=settlement_offer", ["act-settle"]),
        ("kind=settlement_offer&kind=payment_reminder", ["act-big", "act-settle", "act-ordinary", "act-sms"]),
        ("kind=settlement_offer,payment_plan_offer", ["act-settle"]),
        ("min_balance=1000", ["act-big", "act-settle"]),
        ("max_balance=1000", ["act-ordinary", "act-sms"]),
        ("min_balance=1000&max_balance=5000", ["act-settle"]),
        ("min_age_days=2", []),
        ("max_age_days=2", ["act-big", "act-settle", "act-ordinary", "act-sms"]),
        ("include_expired=true", ["act-big", "act-settle", "act-expired", "act-ordinary", "act-sms"]),
        ("include_expired=true&min_age_days=30", ["act-expired"]),
        ("limit=2", ["act-big", "act-settle"]),
    ],
)
async def test_queue_filters(client: Client, query: str, expected: list[str]) -> None:
    response = await client.get(f"/review?{query}", headers=auth("collector"))
    assert response.status == 200
    assert [item["action"]["action_id"] for item in (await response.json())["items"]] == expected


@pytest.mark.parametrize(
    "query",
    [
        "kind=invoice",
        "min_balance=lots",
        "min_balance=-1",
        "max_balance=NaN",
        "min_age_days=soon",
        "max_age_days=-2",
        "include_expired=maybe",
        "limit=0",
        "limit=501",
        "limit=ten",
    ],
)
async def test_bad_queue_filters_are_400(client: Client, fakes: Fakes, query: str) -> None:
    response = await client.get(f"/review?{query}", headers=auth("collector"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_query"
    assert fakes.published == []


async def test_the_queue_is_not_served_when_the_access_cannot_be_recorded(
    client: Client, fakes: Fakes
) -> None:
    fakes.broker_down = True
    response = await client.get("/review", headers=auth("billing_manager"))
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert "items" not in await response.json()


async def test_resolved_actions_leave_the_queue(client: Client, index: ReviewIndex) -> None:
    index.apply_audit(audit_bytes("review_approved", "act-big"))
    index.apply_audit(audit_bytes("suppressed", "act-settle", gate="G-DISPUTE", cancelled=True))
    response = await client.get("/review", headers=auth("collector"))
    assert [i["action"]["action_id"] for i in (await response.json())["items"]] == ["act-ordinary", "act-sms"]


# -- POST /review/{action_id} -----------------------------------------------------------------------

EDIT = "Hello, your balance is $450.00. Reply STOP to opt out"


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize(
    ("action_id", "decision", "allowed_roles"),
    [
        ("act-ordinary", "approve", {"collector", "billing_manager", "compliance_officer", "admin"}),
        ("act-ordinary", "edit", {"collector", "billing_manager", "compliance_officer", "admin"}),
        ("act-ordinary", "reject", {"collector", "billing_manager", "compliance_officer", "admin"}),
        ("act-big", "approve", {"billing_manager", "compliance_officer"}),
        ("act-big", "edit", {"billing_manager", "compliance_officer"}),
        ("act-big", "reject", {"collector", "billing_manager", "compliance_officer", "admin"}),
        ("act-settle", "approve", {"billing_manager", "compliance_officer"}),
        ("act-settle", "edit", {"billing_manager", "compliance_officer"}),
        ("act-settle", "reject", {"collector", "billing_manager", "compliance_officer", "admin"}),
    ],
)
async def test_decisions_by_role(
    client: Client, fakes: Fakes, role: str, action_id: str, decision: str, allowed_roles: set[str]
) -> None:
    body: dict[str, Any] = {"decision": decision, "note": "checked with the patient"}
    if decision == "edit":
        body["message"] = EDIT
    response = await post(client, action_id, role, body)
    payload = await response.json()
    if role not in allowed_roles:
        assert response.status == 403
        assert payload["error"]["code"] == "forbidden"
        assert payload["error"]["approver_roles"] == ["billing_manager", "compliance_officer"]
        assert fakes.on(DECISIONS) == []
        return
    assert response.status == 202
    account_id = {"act-ordinary": "ACC-1", "act-big": "ACC-2", "act-settle": "ACC-3"}[action_id]
    expected = {
        "action_id": action_id,
        "account_id": account_id,
        "decision": decision,
        "reviewer": {"user_id": USER_OF_ROLE[role], "role": role},
        "at": "2026-11-20T15:00:00Z",
        "note": "checked with the patient",
        **({"message": EDIT} if decision == "edit" else {}),
    }
    assert payload == expected
    [sent] = fakes.on(DECISIONS)
    assert sent.key == account_id  # keyed by account: one writer per account's audit chain
    assert sent.value == expected
    ReviewDecision.model_validate(sent.value)  # the contract's record


async def test_a_second_decision_while_the_first_is_pending_is_409(client: Client, fakes: Fakes) -> None:
    assert (await post(client, "act-ordinary", "collector", {"decision": "approve"})).status == 202
    response = await post(client, "act-ordinary", "billing_manager", {"decision": "reject"})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "decision_pending"
    assert len(fakes.on(DECISIONS)) == 1


async def test_a_decision_refused_by_the_engine_can_be_followed_by_another(
    client: Client, index: ReviewIndex
) -> None:
    assert (await post(client, "act-ordinary", "collector", {"decision": "approve"})).status == 202
    index.apply_audit(audit_bytes("review_rejected", "act-ordinary", reason="role_not_permitted"))
    assert (await post(client, "act-ordinary", "billing_manager", {"decision": "approve"})).status == 202


@pytest.mark.parametrize(
    ("record", "resolution"),
    [
        (audit_bytes("review_approved", "act-ordinary"), "approved"),
        (audit_bytes("review_rejected", "act-ordinary", reason="rejected"), "rejected"),
        (audit_bytes("suppressed", "act-ordinary", gate="G-DISPUTE", cancelled=True), "cancelled"),
        (audit_bytes("review_requested", "act-newer", superseded="act-ordinary"), "superseded"),
    ],
)
async def test_a_resolved_action_is_409(
    client: Client, fakes: Fakes, index: ReviewIndex, record: bytes, resolution: str
) -> None:
    index.apply_audit(record)
    response = await post(client, "act-ordinary", "billing_manager", {"decision": "approve"})
    assert response.status == 409
    error = (await response.json())["error"]
    assert (error["code"], error["resolution"]) == ("already_resolved", resolution)
    assert fakes.on(DECISIONS) == []


async def test_an_unknown_action_is_404(client: Client, fakes: Fakes) -> None:
    response = await post(client, "act-nobody", "billing_manager", {"decision": "approve"})
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert fakes.published == []


async def test_an_unknown_action_while_the_index_loads_is_503(client: Client, index: ReviewIndex) -> None:
    index.caught_up = False
    response = await post(client, "act-nobody", "billing_manager", {"decision": "approve"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"


async def test_an_expired_action_can_only_be_rejected(client: Client) -> None:
    response = await post(client, "act-expired", "billing_manager", {"decision": "approve"})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "expired"
    assert (await post(client, "act-expired", "collector", {"decision": "reject"})).status == 202


async def test_a_balance_that_grew_since_the_hold_restricts_approval(client: Client, fakes: Fakes) -> None:
    """The worker that holds the account checks its current balance and the held action's roles too."""
    grown = account_state("ACC-1", balance="6100.00", held=[ORDINARY])
    fakes.accounts["ACC-1"] = grown.model_dump_json().encode()
    response = await post(client, "act-ordinary", "collector", {"decision": "approve"})
    assert response.status == 403
    assert (await post(client, "act-ordinary", "compliance_officer", {"decision": "approve"})).status == 202


async def test_the_held_actions_own_approver_roles_apply(client: Client, fakes: Fakes) -> None:
    state = account_state("ACC-1", held=[ORDINARY])
    held = state.held["act-ordinary"].model_copy(update={"approver_roles": ["compliance_officer"]})
    fakes.accounts["ACC-1"] = (
        state.model_copy(update={"held": {"act-ordinary": held}}).model_dump_json().encode()
    )
    assert (await post(client, "act-ordinary", "billing_manager", {"decision": "approve"})).status == 403
    assert (await post(client, "act-ordinary", "billing_manager", {"decision": "reject"})).status == 202


async def test_the_reviewer_comes_from_the_token_not_the_body(client: Client, fakes: Fakes) -> None:
    body = {"decision": "approve", "reviewer": {"user_id": "u-mgr", "role": "billing_manager"}}
    response = await post(client, "act-big", "collector", body)
    assert response.status == 400
    assert "token" in (await response.json())["error"]["message"]
    assert fakes.on(DECISIONS) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"decision": "maybe"}, 422),
        ({}, 422),
        ({"decision": "edit"}, 422),
        ({"decision": "edit", "message": "   "}, 422),
        ({"decision": "approve", "message": "new words"}, 422),
        ({"decision": "approve", "extra": 1}, 422),
        ({"decision": "reject", "note": "x" * 2001}, 422),
        ({"decision": "edit", "message": "x" * 5001}, 422),
        (["approve"], 400),
        ("approve", 400),
    ],
)
async def test_invalid_decision_bodies(client: Client, fakes: Fakes, body: Any, status: int) -> None:
    response = await post(client, "act-ordinary", "billing_manager", body)
    assert response.status == status
    assert fakes.on(DECISIONS) == []


async def test_a_body_that_is_not_json_is_400(client: Client) -> None:
    response = await client.post(
        "/review/act-ordinary",
        data=b"{decision: approve",
        headers={**auth("billing_manager"), "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"


async def test_a_body_that_is_not_declared_json_is_415(client: Client) -> None:
    response = await client.post(
        "/review/act-ordinary", data={"decision": "approve"}, headers=auth("billing_manager")
    )
    assert response.status == 415


async def test_a_body_over_the_limit_is_413(client: Client, fakes: Fakes) -> None:
    big = {"decision": "reject", "note": "x" * (MAX_BODY_BYTES + 10)}
    response = await post(client, "act-ordinary", "billing_manager", big)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"
    assert fakes.on(DECISIONS) == []


async def test_a_chunked_body_over_the_limit_is_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"decision": "reject", "note": "'
        for _ in range(10):
            yield b"x" * 8192
        yield b'"}'

    response = await client.post(
        "/review/act-ordinary",
        data=chunks(),
        headers={**auth("billing_manager"), "Content-Type": "application/json"},
    )
    assert response.status == 413


@pytest.mark.parametrize(
    ("action_id", "message", "code"),
    [
        ("act-ordinary", "Pay $450.00 today or we will take legal action.", "threat"),
        ("act-ordinary", "Final notice: pay within 24 hours!", "false_urgency"),
        ("act-sms", "Your MRI balance is $450.00. Reply STOP to opt out", "phi_in_sms"),
    ],
)
async def test_an_edit_failing_the_guardrails_is_422(
    client: Client, fakes: Fakes, action_id: str, message: str, code: str
) -> None:
    response = await post(client, action_id, "billing_manager", {"decision": "edit", "message": message})
    assert response.status == 422
    error = (await response.json())["error"]
    assert code in [v["code"] for v in error["violations"]]
    assert fakes.on(DECISIONS) == []


async def test_a_decision_that_cannot_be_produced_is_503_and_not_pending(
    client: Client, fakes: Fakes
) -> None:
    fakes.broker_down = True
    response = await post(client, "act-ordinary", "collector", {"decision": "approve"})
    assert response.status == 503
    fakes.broker_down = False
    assert (await post(client, "act-ordinary", "collector", {"decision": "approve"})).status == 202


# -- GET /accounts/{account_id} ---------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ROLES))
async def test_every_role_reads_an_account_and_the_read_is_recorded(
    client: Client, fakes: Fakes, role: str
) -> None:
    response = await client.get("/accounts/ACC-1", headers=auth(role))
    assert response.status == 200
    body = await response.json()
    assert body["account_id"] == "ACC-1"
    assert body["balance"] == "450.00"
    assert body["balance_detail"]["claims"][0]["claim_id"] == "CLM-1"
    assert body["balance_detail"]["claims"][0]["patient_responsibility"] == "500.00"
    assert body["balance_detail"]["payments"][0]["amount"] == "50.00"
    [held] = body["held_actions"]
    assert held["action"]["action_id"] == "act-ordinary"
    assert held["action"]["explanation"]["policy_version"] == "test-1"
    assert held["in_review_queue"] is True
    assert held["approver_roles"] == ["admin", "billing_manager", "collector", "compliance_officer"]
    assert [a["action_id"] for a in body["open_actions"]] == ["act-ordinary"]
    assert "fingerprint" not in body["open_actions"][0]
    assert [h["event_id"] for h in body["decision_history"]] == ["evt-2", "evt-1"]  # newest first
    assert body["decision_history"][1]["gates"] == ["G-QUIET"]
    # Internal bookkeeping is not exposed.
    assert "seen_events" not in body and "audit_head" not in body
    [access] = fakes.on(ACCESS)
    assert access.key == "ACC-1"
    assert access.value == {
        "account_id": "ACC-1",
        "user_id": USER_OF_ROLE[role],
        "role": role,
        "at": "2026-11-20T15:00:00Z",
        "resource": "account",
    }


async def test_an_unknown_account_is_404_without_an_access_record(client: Client, fakes: Fakes) -> None:
    response = await client.get("/accounts/ACC-404", headers=auth("collector"))
    assert response.status == 404
    assert fakes.published == []


async def test_an_account_is_not_served_when_the_access_cannot_be_recorded(
    client: Client, fakes: Fakes
) -> None:
    fakes.broker_down = True
    response = await client.get("/accounts/ACC-1", headers=auth("collector"))
    assert response.status == 503
    assert "balance" not in await response.json()


async def test_an_account_owned_by_another_worker_is_forwarded(fakes: Fakes, index: ReviewIndex) -> None:
    forwarded: list[str] = []

    async def route_account(request: web.Request, account_id: str) -> web.StreamResponse | None:
        forwarded.append(account_id)
        return web.json_response({"from": "owner"}) if account_id == "ACC-9" else None

    context = WebContext(
        users=UserDirectory.from_document(users_document()),
        index=index,
        publish=fakes.publish,
        load_account=fakes.accounts.get,
        decisions_topic=DECISIONS,
        access_topic=ACCESS,
        route_account=route_account,
    )
    async with TestClient(TestServer(build_app(context))) as test_client:
        unauthenticated = await test_client.get("/accounts/ACC-9")
        assert unauthenticated.status == 401
        assert forwarded == []  # nothing leaves this worker without a valid token
        response = await test_client.get("/accounts/ACC-9", headers=auth("collector"))
        assert await response.json() == {"from": "owner"}
        assert fakes.published == []  # the owner records the access, not the forwarder
        assert (await test_client.get("/accounts/ACC-1", headers=auth("collector"))).status == 200
    assert forwarded == ["ACC-9", "ACC-1"]


async def test_an_unexpected_error_is_a_json_500_without_details(fakes: Fakes, index: ReviewIndex) -> None:
    def broken(account_id: str) -> bytes | None:
        raise RuntimeError(f"state of {account_id} for patient Ana Diaz")

    context = WebContext(
        users=UserDirectory.from_document(users_document()),
        index=index,
        publish=fakes.publish,
        load_account=broken,
        decisions_topic=DECISIONS,
        access_topic=ACCESS,
    )
    async with TestClient(TestServer(build_app(context))) as test_client:
        response = await test_client.get("/accounts/ACC-1", headers=auth("collector"))
        assert response.status == 500
        assert "Ana" not in await response.text()


# -- the page ---------------------------------------------------------------------------------------


async def test_the_review_page_is_served_without_data_and_with_a_strict_policy(client: Client) -> None:
    response = await client.get("/ui/review")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = await response.text()
    assert '<label for="token">' in html
    assert '<label for="decision-note">' in html
    assert 'role="status"' in html and 'aria-live="polite"' in html
    assert "settlement offer" in html  # the kind filter is rendered on the server
    assert "ACC-" not in html  # the page itself carries no account data


@pytest.mark.parametrize(
    ("name", "content_type"), [("review.css", "text/css"), ("review.js", "text/javascript")]
)
async def test_static_files(client: Client, name: str, content_type: str) -> None:
    response = await client.get(f"/ui/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type


@pytest.mark.parametrize("name", ["nope.js", "..%2Fviews.py", "review.html"])
async def test_other_static_paths_are_404(client: Client, name: str) -> None:
    assert (await client.get(f"/ui/static/{name}")).status == 404


def test_the_action_builder_is_a_valid_contract_action() -> None:
    assert Action.model_validate_json(review_bytes(BIG)).review.reasons == ["R-REVIEW-BALANCE"]
    assert datetime.now(UTC) > NOW  # the fixed clock is in the past; the tests never read the wall clock


async def test_concurrent_decisions_on_one_action_produce_one_record(client: Client, fakes: Fakes) -> None:
    fakes.gate = asyncio.Event()
    first = asyncio.create_task(post(client, "act-ordinary", "collector", {"decision": "approve"}))
    await asyncio.sleep(0.2)  # the first decision now waits for the broker's acknowledgement
    assert not first.done()
    second = await post(client, "act-ordinary", "billing_manager", {"decision": "reject"})
    assert second.status == 409
    fakes.gate.set()
    assert (await first).status == 202
    assert len(fakes.on(DECISIONS)) == 1


async def test_access_records_are_what_the_ingest_agent_reads(client: Client, fakes: Fakes) -> None:
    """The agent parses ``{prefix}.access`` as `streams.commands.AuditRequest`: every record must fit it."""
    from streams.commands import AuditRequest

    await client.get("/accounts/ACC-1", headers=auth("collector"))
    await client.get("/review", headers=auth("admin"))
    records = fakes.on(ACCESS)
    assert {r.value["resource"] for r in records} == {"account", "review_queue"}
    for record in records:
        request = AuditRequest.model_validate(record.value)
        assert (request.kind, request.account_id) == ("data_access", record.key)
        assert request.model_dump(mode="json", include=set(record.value)) == record.value
