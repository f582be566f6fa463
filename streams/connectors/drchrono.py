"""A reference connector for DrChrono: applies the engine's ``platform_update`` actions to its REST API.

The engine writes back what it did and what patients agreed to as ``platform_update`` actions on
``billing.actions`` (CONTRACT.md; `rules.conversation`). This connector consumes them and writes each
one into DrChrono once, idempotent on ``action_id``:

* ``add_note`` → ``POST /api/comm_logs`` (PhoneCallLog: ``patient``, ``doctor``, ``scheduled_time``,
  ``title``, ``message``, ``type``): the chart's communication log, where DrChrono keeps the record of
  calls and messages with the patient.
* ``create_payment_plan`` / ``update_payment_plan`` → DrChrono's API has no payment-plan object (section
  0: "Payment plans: no object in API"), so the plan is recorded where staff see it: ``POST
  /api/comm_logs`` with type ``Payment plan`` and the terms (plan id, monthly amount, months, first due
  date, total, 0 % interest); the practice's statement or payment vendor holds the schedule itself.
* ``post_adjustment`` → ``POST /api/patient_payments`` (CashPayment) with ``payment_transaction_type``
  ``COR`` (correction), ``payment_method`` ``OTHR``, the written-off ``amount`` and a note naming the
  settlement. DrChrono documents no writable adjustment object (a line item's ``adjustment`` is
  read-only), so a correction entry is the documented object that lowers the patient balance
  (inference: verify against a DrChrono sandbox before go-live).

**Idempotency.** DrChrono takes no idempotency key, so the connector keeps its own: a ledger
(SQLite, `Ledger`) of applied ``action_id`` → DrChrono object id, and a marker ``[billwise:<action_id>]``
in every object it writes (``message`` or ``notes``). Before writing, it checks the ledger, then looks
for the marker among the patient's objects of that resource (``GET`` with ``patient`` and ``since``,
following the cursor pages); only when both miss does it ``POST``. A crash between the ``POST`` and the
ledger write therefore finds the object on the next delivery instead of writing it twice.

**Identity.** ``patient_id`` must be DrChrono's numeric patient id (the DrChrono adapter keeps the native
id there). The doctor comes from ``practice_id`` when it names one (``drchrono:doctor-<id>``, the
adapter's form), else from the connector's configured default doctor. Money goes out as JSON numbers,
which DrChrono's spec uses, converted from the contract's decimal strings at the last moment.

**Errors.** 429 and 5xx responses and network errors are retried with backoff (DrChrono throttles at
about 10 calls/s and 500/h); 4xx responses and unmappable ids fail the action (`Applied.status`
``failed``) without retrying. `run` reports each result on ``billing.outcomes`` (``delivered`` or
``failed``) and commits an action's offset only after it is applied or has failed for good.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx

from schemas.actions import Action

log = logging.getLogger(__name__)

MARKER = "[billwise:{action_id}]"
LOOKBACK = timedelta(days=2)
"""How far back (``since``) the marker search looks: redeliveries come within hours."""
PAGE_SIZE = 100
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NOTE_TYPE = "Billwise"
PLAN_NOTE_TYPE = "Payment plan"

Status = Literal["applied", "duplicate", "skipped", "failed"]


@dataclass(frozen=True)
class Applied:
    """What the connector did with one action: wrote it (``applied``), found it already written
    (``duplicate``), left it alone (``skipped``: not a write-back) or could not write it (``failed``)."""

    action_id: str
    status: Status
    resource: str | None = None
    remote_id: str | None = None
    detail: str = ""


class ConnectorError(Exception):
    """An action that cannot be applied (bad ids, a 4xx answer): retrying does not help."""


class Ledger:
    """Applied action ids and the DrChrono objects they became, in a SQLite file (``:memory:`` in tests)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS applied (action_id TEXT PRIMARY KEY, resource TEXT NOT NULL, "
                "remote_id TEXT, at TEXT NOT NULL)"
            )

    def get(self, action_id: str) -> tuple[str, str | None] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT resource, remote_id FROM applied WHERE action_id = ?", (action_id,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, action_id: str, resource: str, remote_id: str | None) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?)",
                (action_id, resource, remote_id, datetime.now(UTC).isoformat()),
            )

    def close(self) -> None:
        self._db.close()


def _number(amount: Any) -> float:
    """A contract money string as the JSON number DrChrono's spec expects (two places, exact)."""
    return float(Decimal(str(amount)).quantize(Decimal("0.01")))


class DrChronoConnector:
    """Applies ``platform_update`` actions to one DrChrono account (one OAuth access token)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        default_doctor: int | None = None,
        ledger: Ledger | None = None,
        client: httpx.Client | None = None,
        retries: int = 4,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.default_doctor = default_doctor
        self.ledger = ledger or Ledger()
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.client = client or httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "X-DRC-API-Version": "v4"},
            timeout=httpx.Timeout(10.0),
        )

    def close(self) -> None:
        self.client.close()

    # -- one action ---------------------------------------------------------------------------------

    def apply(self, action: Action) -> Applied:
        """Write one action into DrChrono, once; never raises for a bad action (``failed`` instead)."""
        update = action.platform_update
        if action.kind != "platform_update" or update is None:
            return Applied(action.action_id, "skipped", detail=action.kind)
        known = self.ledger.get(action.action_id)
        if known is not None:
            return Applied(action.action_id, "duplicate", known[0], known[1], "ledger")
        try:
            resource, body = self._request(action)
            marker = MARKER.format(action_id=action.action_id)
            found = self._find(resource, body["patient"], marker, action.created_at)
            if found is not None:
                self.ledger.put(action.action_id, resource, found)
                return Applied(action.action_id, "duplicate", resource, found, "marker")
            created = self._call("POST", f"/api/{resource}", json=body).json()
        except ConnectorError as exc:
            return Applied(action.action_id, "failed", detail=str(exc))
        remote_id = str(created.get("id")) if isinstance(created, dict) and "id" in created else None
        self.ledger.put(action.action_id, resource, remote_id)
        return Applied(action.action_id, "applied", resource, remote_id)

    def _ids(self, action: Action) -> tuple[int, int]:
        if not action.patient_id.isdigit():
            raise ConnectorError(f"patient_id {action.patient_id!r} is not a DrChrono patient id")
        native = action.practice_id.split(":", 1)[-1]
        if native.startswith("doctor-") and native[len("doctor-") :].isdigit():
            return int(action.patient_id), int(native[len("doctor-") :])
        if self.default_doctor is None:
            raise ConnectorError(f"no doctor for practice {action.practice_id!r}; configure a default doctor")
        return int(action.patient_id), self.default_doctor

    def _request(self, action: Action) -> tuple[str, dict[str, Any]]:
        """The resource and body an action becomes (see the module docstring's table)."""
        assert action.platform_update is not None
        operation, payload = action.platform_update.operation, action.platform_update.payload
        patient, doctor = self._ids(action)
        marker = MARKER.format(action_id=action.action_id)
        at = str(payload.get("at") or action.created_at.isoformat())
        if operation == "add_note":
            return "comm_logs", {
                "patient": patient,
                "doctor": doctor,
                "scheduled_time": at,
                "title": str(payload.get("title") or "Billwise")[:200],
                "message": f"{payload.get('text', '')}\n{marker}",
                "type": NOTE_TYPE,
            }
        if operation in ("create_payment_plan", "update_payment_plan"):
            verb = "created" if operation == "create_payment_plan" else "updated"
            terms = (
                f"Payment plan {payload.get('plan_id')} {verb}: {payload.get('monthly_amount')} "
                f"{payload.get('currency', 'USD')} a month for {payload.get('term_months')} months, "
                f"first due {payload.get('first_due_date')}, total {payload.get('total')}, interest "
                f"{payload.get('interest_rate', '0.00')} %."
            )
            return "comm_logs", {
                "patient": patient,
                "doctor": doctor,
                "scheduled_time": at,
                "title": f"Payment plan {payload.get('plan_id')}"[:200],
                "message": f"{terms}\n{marker}",
                "type": PLAN_NOTE_TYPE,
            }
        if operation == "post_adjustment":
            amount = _number(payload.get("amount", "0"))
            if amount <= 0:
                raise ConnectorError("an adjustment needs a positive amount (DrChrono refuses zero)")
            return "patient_payments", {
                "patient": patient,
                "doctor": doctor,
                "amount": amount,
                "payment_method": "OTHR",
                "payment_transaction_type": "COR",
                "received_date": action.created_at.date().isoformat(),
                "notes": f"Billwise {payload.get('reason', 'adjustment')} write-off after settlement "
                f"{payload.get('settlement_action_id', '')} {marker}",
            }
        raise ConnectorError(f"unknown operation {operation!r}")

    # -- HTTP ---------------------------------------------------------------------------------------

    def _find(self, resource: str, patient: int, marker: str, created_at: datetime) -> str | None:
        """The id of the patient's object of ``resource`` carrying ``marker``, if one exists."""
        field = "notes" if resource == "patient_payments" else "message"
        since = (created_at - LOOKBACK).date().isoformat()
        for item in self._pages(f"/api/{resource}", {"patient": patient, "since": since}):
            if marker in str(item.get(field) or ""):
                return str(item.get("id"))
        return None

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list (``results``, then ``next`` until it is null)."""
        url: str | None = path
        query: dict[str, Any] | None = {**params, "page_size": PAGE_SIZE}
        while url:
            page = self._call("GET", url, params=query).json()
            yield from page.get("results") or []
            url, query = page.get("next"), None  # ``next`` carries the cursor and the filters

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ConnectorError(f"{method} {url}: {type(exc).__name__}") from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code >= 400:
                        # The body may quote patient data: only the status is reported.
                        raise ConnectorError(f"{method} {url}: HTTP {response.status_code}")
                    return response
                if attempt == self.retries:
                    raise ConnectorError(f"{method} {url}: HTTP {response.status_code} after retries")
            self._sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


# -- the consumer -------------------------------------------------------------------------------------


async def run(
    bootstrap: str,
    prefix: str,
    connector: DrChronoConnector,
    *,
    group_id: str = "billwise-connector-drchrono",
    stop: Callable[[], bool] = lambda: False,
    platform: str = "drchrono",
    counts: dict[str, int] | None = None,
) -> dict[str, int]:
    """Consume ``{prefix}.actions`` and apply every ``platform_update`` of ``platform``'s accounts until
    ``stop()``; report each on ``{prefix}.outcomes``. Offsets are committed after the batch is applied,
    so a restart re-reads at most that batch, and the ledger makes the re-read harmless.

    Accounts of other platforms (``account_id`` not ``<platform>:...``) are left to their connectors;
    an empty ``platform`` applies every write-back (a single-platform deployment, and the tests).
    ``counts`` (by `Applied.status`, plus ``invalid``) is updated as it goes, for a caller to watch.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from schemas.inputs import ActionOutcome
    from streams.kafka_security import kafka_client_kwargs
    from streams.sender import outcome_record

    counts = {} if counts is None else counts
    consumer = AIOKafkaConsumer(
        f"{prefix}.actions",
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_kwargs(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_client_kwargs())
    await consumer.start()
    await producer.start()
    try:
        while not stop():
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            for records in batches.values():
                for record in records:
                    try:
                        value = json.loads(record.value or b"null")
                        if not isinstance(value, dict) or value.get("kind") != "platform_update":
                            continue
                        if platform and not str(value.get("account_id", "")).startswith(f"{platform}:"):
                            continue
                        action = Action.model_validate(value)
                    except ValueError:
                        counts["invalid"] = counts.get("invalid", 0) + 1
                        continue
                    applied = await asyncio.to_thread(connector.apply, action)
                    counts[applied.status] = counts.get(applied.status, 0) + 1
                    if applied.status in ("applied", "failed"):
                        outcome = ActionOutcome(
                            action_id=action.action_id,
                            account_id=action.account_id,
                            status="delivered" if applied.status == "applied" else "failed",
                            at=datetime.now(UTC),
                            detail=applied.detail or f"{applied.resource} {applied.remote_id}",
                        )
                        key, value_bytes = outcome_record(outcome)
                        await producer.send_and_wait(f"{prefix}.outcomes", key=key, value=value_bytes)
            if batches:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return counts
