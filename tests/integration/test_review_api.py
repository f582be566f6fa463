"""The staff API through a real worker and broker: the queue fills from held actions, decisions land on
``{prefix}.review.decisions``, account reads land on ``{prefix}.access``, and the engine applies them.

Tests marked "engine wiring" need the ingest agent to consume ``review.decisions`` and ``access``
(`rules.review.review_decision`, chained ``data_access`` records); the others need only this package.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from schemas.audit import verify_chain
from streams.brokers import free_port
from streams.kafka_io import Record, produce_events, read_topics
from streams.settings import StreamSettings
from streams.topics import CONTRACT_TOPICS, ensure_topics
from streams.worker_process import WorkerProcess, start_worker
from tests.unit.test_web_auth import TOKENS, users_document

pytestmark = [pytest.mark.broker]

ROLE_TOKENS = {role: token for _, (role, token) in TOKENS.items()}
USER_OF_ROLE = {role: user_id for user_id, (role, _) in TOKENS.items()}
T = TypeVar("T")


@dataclass
class StaffEngine:
    """A worker with a users file, and helpers to talk to its API and topics."""

    settings: StreamSettings
    worker: WorkerProcess
    now: datetime

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.worker.web_port}"

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def request(self, method: str, path: str, role: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ROLE_TOKENS[role]}"} if role else {}
        return httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def produce(self, events: list[dict[str, Any]]) -> None:
        asyncio.run(produce_events(self.bootstrap, self.topic("events"), events))

    def read(self, *names: str, until: int | None = None, idle_s: float = 2.0) -> list[Record]:
        topics = [self.topic(name) for name in names]
        return asyncio.run(read_topics(self.bootstrap, topics, until=until, idle_timeout_s=idle_s))

    def queue(self, role: str = "billing_manager", query: str = "") -> dict[str, Any]:
        response = self.request("GET", f"/review{query}", role)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def held(self, account_id: str, query: str = "") -> dict[str, dict[str, Any]]:
        """The account's actions in the queue, by kind."""
        items = self.queue(query=query)["items"]
        return {i["action"]["kind"]: i for i in items if i["action"]["account_id"] == account_id}


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 120.0) -> T:
    """``probe()`` once it returns something truthy; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def staff_engine(kafka_bootstrap: str, tmp_path: Path) -> Iterator[StaffEngine]:
    """A ready worker (4 partitions, fresh topics) whose API knows the four users of `TOKENS`."""
    run = uuid.uuid4().hex[:8]
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users_document()))
    env = {
        "BILLWISE_TOPIC_PREFIX": f"rv{run}",
        "BILLWISE_APP_ID": f"billwise-rv{run}",
        "BILLWISE_PARTITIONS": "4",
        "BILLWISE_DATA_DIR": str(tmp_path / "worker-data"),
        "BILLWISE_USERS_FILE": str(users_file),
    }
    settings = StreamSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=env["BILLWISE_TOPIC_PREFIX"], partitions=4
    )
    asyncio.run(ensure_topics(settings, (*CONTRACT_TOPICS, "access")))
    worker = start_worker(kafka_bootstrap, free_port(), log_path=tmp_path / "worker.log", env=env)
    with worker:
        yield StaffEngine(settings, worker, datetime.now(UTC).replace(microsecond=0))


# -- events -----------------------------------------------------------------------------------------


class Events:
    """Canonical events for one test account, timed just before now (so held actions are current)."""

    def __init__(self, account_id: str, now: datetime) -> None:
        self.account_id = account_id
        self.now = now

    def _at(self, hours_ago: float) -> str:
        return (self.now - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")

    def _event(self, suffix: str, type_: str, hours_ago: float, data: dict[str, Any]) -> dict[str, Any]:
        ids = {
            "account_id": self.account_id,
            "patient_id": f"PT-{self.account_id}",
            "practice_id": "practice-w",
        }
        return {
            "specversion": "1.0",
            "id": f"{self.account_id}-{suffix}",
            "source": "tests/review-api",
            "type": type_,
            "time": self._at(hours_ago),
            "subject": self.account_id,
            "data": {**ids, **data},
        }

    def patient(self) -> dict[str, Any]:
        return self._event(
            "patient",
            "billing.patient.updated",
            4,
            {
                "name": {"given": "Ana", "family": "Diaz"},
                "language": "en",
                "email": f"{self.account_id.lower()}@example.com",
                "timezone": "America/New_York",
                "preferred_channel": "email",
                "address": {"line": "2 Oak Ave", "city": "Miami", "state": "FL", "postal_code": "33101"},
                "consent": {"email": True, "sms": False, "autodialed_calls": False, "portal": True},
            },
        )

    def account(self, balance: str, oldest_unpaid_days: int = 70) -> dict[str, Any]:
        oldest = (self.now - timedelta(days=oldest_unpaid_days)).date().isoformat()
        data = {"balance": balance, "status": "open", "self_pay": True, "oldest_unpaid_service_date": oldest}
        return self._event("account", "billing.account.updated", 3, data)

    def statement(self, balance: str) -> dict[str, Any]:
        data = {
            "statement_id": f"S-{self.account_id}",
            "statement_date": self.now.date().isoformat(),
            "due_date": (self.now + timedelta(days=30)).date().isoformat(),
            "balance_due": balance,
        }
        return self._event("statement", "billing.statement.generated", 3, data)

    def dispute(self) -> dict[str, Any]:
        data = {
            "dispute_id": f"D-{self.account_id}",
            "status": "opened",
            "reason": "billing error",
            "received_at": self._at(0.5),
        }
        return self._event("dispute", "billing.dispute.updated", 0.5, data)


def held_queue(staff: StaffEngine, expected: dict[str, set[str]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Wait until the queue holds (at least) ``expected`` kinds per account; returns them by account."""

    def probe() -> dict[str, dict[str, dict[str, Any]]] | None:
        body = staff.queue()
        if not body["index"]["caught_up"]:
            return None
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for item in body["items"]:
            found.setdefault(item["action"]["account_id"], {})[item["action"]["kind"]] = item
        ok = all(kinds <= set(found.get(account, {})) for account, kinds in expected.items())
        return found if ok else None

    return wait_for(probe, f"held actions {expected}")


# -- the API through a real worker ------------------------------------------------------------------


@pytest.mark.smoke
def test_queue_decisions_and_account_reads_through_a_real_worker(staff_engine: StaffEngine) -> None:
    staff = staff_engine
    big, small = Events("ACC-BIG", staff.now), Events("ACC-SMALL", staff.now)
    staff.produce([big.patient(), big.account("7200.00"), small.patient(), small.account("800.00")])
    queue = held_queue(
        staff, {"ACC-BIG": {"payment_plan_offer", "assistance_invite"}, "ACC-SMALL": {"payment_plan_offer"}}
    )
    big_plan = queue["ACC-BIG"]["payment_plan_offer"]
    big_invite = queue["ACC-BIG"]["assistance_invite"]
    small_plan = queue["ACC-SMALL"]["payment_plan_offer"]
    assert big_plan["queue"]["restricted"] and big_plan["queue"]["balance"] == "7200.00"
    assert not small_plan["queue"]["restricted"]

    # 401 without a token on every API route; /health and /metrics stay open.
    for method, path in [("GET", "/review"), ("POST", f"/review/{small_plan['action']['action_id']}"),
                         ("GET", "/accounts/ACC-BIG")]:  # fmt: skip
        response = staff.request(method, path, json={"decision": "approve"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert staff.request("GET", "/health").status_code == 200
    metrics = staff.request("GET", "/metrics")
    assert metrics.status_code == 200 and "billwise_web_requests_total" in metrics.text

    # Every role reads the queue, by priority; filters by kind and balance.
    for role in ROLE_TOKENS:
        body = staff.queue(role)
        assert body["viewer"]["role"] == role
        priorities = [item["action"]["priority"] for item in body["items"]]
        assert priorities == sorted(priorities, reverse=True)
    kinds = {i["action"]["kind"] for i in staff.queue(query="?kind=assistance_invite")["items"]}
    assert kinds == {"assistance_invite"}
    rich = {i["action"]["account_id"] for i in staff.queue(query="?min_balance=5000")["items"]}
    assert rich == {"ACC-BIG"}

    # 403: a collector or an admin may not approve over $5,000; 404 unknown; 413 too big.
    big_plan_id = big_plan["action"]["action_id"]
    for role in ("collector", "admin"):
        response = staff.request("POST", f"/review/{big_plan_id}", role, json={"decision": "approve"})
        assert response.status_code == 403, response.text
    assert (
        staff.request("POST", "/review/act-nope", "billing_manager", json={"decision": "approve"}).status_code
        == 404
    )
    huge = {"decision": "reject", "note": "x" * 70_000}
    assert staff.request("POST", f"/review/{big_plan_id}", "billing_manager", json=huge).status_code == 413

    # 202: the decisions land on review.decisions, keyed by account, reviewer from the token.
    approve = staff.request(
        "POST",
        f"/review/{big_plan_id}",
        "billing_manager",
        json={"decision": "approve", "note": "plan agreed by phone"},
    )
    assert approve.status_code == 202, approve.text
    small_plan_id = small_plan["action"]["action_id"]
    reject = staff.request("POST", f"/review/{small_plan_id}", "collector", json={"decision": "reject"})
    assert reject.status_code == 202, reject.text
    again = staff.request("POST", f"/review/{big_plan_id}", "compliance_officer", json={"decision": "reject"})
    assert again.status_code == 409
    decisions = staff.read("review.decisions", until=2)
    by_action = {r.value["action_id"]: r for r in decisions}
    assert by_action[big_plan_id].key == "ACC-BIG"
    assert by_action[big_plan_id].value["reviewer"] == {
        "user_id": USER_OF_ROLE["billing_manager"],
        "role": "billing_manager",
    }
    assert by_action[big_plan_id].value["note"] == "plan agreed by phone"
    assert by_action[small_plan_id].value["decision"] == "reject"
    assert by_action[small_plan_id].value["reviewer"]["role"] == "collector"

    # The engine applies the approval: the plan offer is released as approved, no longer held.
    [released] = [r for r in staff.read("actions", until=1) if r.value["action_id"] == big_plan_id]
    assert released.value["review"]["state"] == "approved"

    # The account view: the table's state, and an access record for the read.
    account = staff.request("GET", "/accounts/ACC-BIG", "collector")
    assert account.status_code == 200, account.text
    view = account.json()
    assert view["balance"] == "7200.00"
    assert {h["action"]["kind"] for h in view["held_actions"]} == {"assistance_invite"}
    assert any(h["outcome"] == "held" for h in view["decision_history"])
    assert big_invite["action"]["explanation"]["rules"]  # explanations come with the held actions
    assert staff.request("GET", "/accounts/ACC-NOBODY", "collector").status_code == 404
    access = [r for r in staff.read("access", idle_s=2.0) if r.value["resource"] == "account"]
    assert [(r.key, r.value["user_id"], r.value["role"]) for r in access] == [
        ("ACC-BIG", USER_OF_ROLE["collector"], "collector")
    ]


def test_an_approval_after_a_dispute_cancelled_the_action_is_refused(staff_engine: StaffEngine) -> None:
    """A dispute stops a held plan offer (audited, G-DISPUTE): the queue drops it and approving it is 409."""
    staff = staff_engine
    events = Events("ACC-DISPUTED", staff.now)
    staff.produce([events.patient(), events.account("800.00")])
    plan = held_queue(staff, {"ACC-DISPUTED": {"payment_plan_offer"}})["ACC-DISPUTED"]["payment_plan_offer"]
    action_id = plan["action"]["action_id"]

    staff.produce([events.dispute()])
    wait_for(
        lambda: "payment_plan_offer" not in staff.held("ACC-DISPUTED"), "the queue to drop the plan offer"
    )
    response = staff.request("POST", f"/review/{action_id}", "billing_manager", json={"decision": "approve"})
    assert response.status_code == 409
    assert response.json()["error"]["resolution"] == "cancelled"
    audit = [r.value for r in staff.read("audit") if r.value.get("action_id") == action_id]
    assert [(a["kind"], a["details"].get("gate")) for a in audit][-1] == ("suppressed", "G-DISPUTE")
    assert not [r for r in staff.read("actions") if r.value["action_id"] == action_id]
    assert not staff.read("review.decisions")


# -- with the engine wiring (the ingest agent consumes review.decisions and access) -----------------


def _audit_for(
    staff: StaffEngine, action_id: str, predicate: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    return [
        r.value for r in staff.read("audit") if r.value.get("action_id") == action_id and predicate(r.value)
    ]


def test_engine_applies_review_decisions_and_access_records(staff_engine: StaffEngine) -> None:
    """Engine wiring: an approval is released to actions, a rejection is audited, both leave the queue,
    and an account read becomes a chained ``data_access`` audit record."""
    staff = staff_engine
    events = Events("ACC-APPLY", staff.now)
    staff.produce([events.patient(), events.account("7200.00")])
    queue = held_queue(staff, {"ACC-APPLY": {"payment_plan_offer", "assistance_invite"}})["ACC-APPLY"]
    plan_id = queue["payment_plan_offer"]["action"]["action_id"]
    invite_id = queue["assistance_invite"]["action"]["action_id"]

    assert (
        staff.request(
            "POST", f"/review/{plan_id}", "billing_manager", json={"decision": "approve"}
        ).status_code
        == 202
    )
    assert (
        staff.request("POST", f"/review/{invite_id}", "collector", json={"decision": "reject"}).status_code
        == 202
    )
    assert staff.request("GET", "/accounts/ACC-APPLY", "compliance_officer").status_code == 200

    released = wait_for(
        lambda: [r.value for r in staff.read("actions", idle_s=1.0) if r.value["action_id"] == plan_id],
        "the approved plan offer on the actions topic",
    )
    assert released[0]["review"]["state"] == "approved"
    approved = wait_for(
        lambda: _audit_for(staff, plan_id, lambda a: a["kind"] == "review_approved"), "review_approved"
    )
    assert approved[0]["actor"] == {
        "type": "user",
        "id": USER_OF_ROLE["billing_manager"],
        "role": "billing_manager",
    }
    rejected = wait_for(
        lambda: _audit_for(staff, invite_id, lambda a: a["kind"] == "review_rejected"), "review_rejected"
    )
    assert rejected[0]["actor"]["id"] == USER_OF_ROLE["collector"]
    wait_for(lambda: not staff.held("ACC-APPLY"), "the queue to drop both decided actions")

    def data_access() -> list[dict[str, Any]]:
        return [
            r.value
            for r in staff.read("audit", idle_s=1.0)
            if r.value["kind"] == "data_access" and r.value["account_id"] == "ACC-APPLY"
        ]

    accesses = wait_for(
        lambda: [a for a in data_access() if a["details"].get("resource") == "account"],
        "a data_access record",
    )
    assert accesses[0]["actor"]["id"] == USER_OF_ROLE["compliance_officer"]
    assert verify_chain(r.value for r in staff.read("audit")) is None


def test_an_approval_after_a_dispute_is_not_released(staff_engine: StaffEngine) -> None:
    """Engine wiring: a statement message held for its balance; a dispute arrives (the dispute gate sends
    statement messages to review, so it stays held); a billing manager approves it: the engine re-runs
    every gate, finds the dispute, and does not release it."""
    staff = staff_engine
    events = Events("ACC-LATE-DISPUTE", staff.now)
    staff.produce([events.patient(), events.statement("7200.00")])
    held = held_queue(staff, {"ACC-LATE-DISPUTE": {"statement_message"}})["ACC-LATE-DISPUTE"]
    action_id = held["statement_message"]["action"]["action_id"]

    staff.produce([events.dispute()])

    def dispute_applied() -> bool:
        response = staff.request("GET", "/accounts/ACC-LATE-DISPUTE", "billing_manager")
        return response.status_code == 200 and bool(response.json()["disputes"]["open"])

    wait_for(dispute_applied, "the dispute in the account state")
    # Whether the dispute cancelled the action or left it held, the API must not let an approval through
    # unchecked: either 409 now, or 202 and the engine refuses it when it re-runs the gates.
    response = staff.request("POST", f"/review/{action_id}", "billing_manager", json={"decision": "approve"})
    assert response.status_code in (202, 409), response.text
    if response.status_code == 202:

        def refusal() -> list[dict[str, Any]]:
            return _audit_for(
                staff,
                action_id,
                lambda a: a["details"].get("at_approval") is True or a["kind"] == "review_approved",
            )

        records = wait_for(refusal, "the engine's answer to the approval")
        assert all(record["kind"] != "review_approved" for record in records)
        assert "DISPUTE" in json.dumps(records)  # the refusal names the dispute (gate or review reason)
    time.sleep(2)  # give a wrong release time to show up
    assert not [r for r in staff.read("actions") if r.value["action_id"] == action_id]
