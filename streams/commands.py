"""Internal commands to the ingest agent, on internal topics keyed by account id.

Each account's state and audit hash chain have one writer, the ingest agent that owns the account's
partition. Anything else that must change them sends that agent a command instead:

* Web views (a staff member reading an account, a webhook with a bad signature) do not write audit
  records themselves: they send an `AuditRequest` to ``{prefix}.access`` and the agent seals it into
  the chain.
* The daily-scan timer does not decide anything itself: it sends `ScanRequest` records to
  ``{prefix}.scans`` naming every account whose scan day has passed, up to `MAX_SCAN_ACCOUNTS` of one
  partition per record (`scan_requests`), and the agent runs the missed scans like the ones it catches
  up before an account's next event.

>>> AuditRequest.model_validate({"account_id": "ACC-1", "user_id": "u-7", "role": "collector",
...     "at": "2026-03-01T10:00:00Z", "resource": "account"}).kind
'data_access'
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from aiokafka.partitioner import murmur2
from pydantic import Field

from schemas.common import ContractModel, Id, Timestamp

ACCESS_TOPIC = "access"
"""The internal topic's name after the prefix: ``billing.access``."""
SCAN_TOPIC = "scans"
"""The internal topic's name after the prefix: ``billing.scans``."""
MAX_SCAN_ACCOUNTS = 100
"""Accounts named by one `ScanRequest`: their quiet scans take a few milliseconds together, so a record
does not hold the partition's events back for long."""


class AuditRequest(ContractModel):
    """Something the engine must record in an account's audit trail on behalf of a user or the system.

    ``account_id`` may name a pseudo-account such as ``webhook:drchrono`` for records that concern no
    patient account (a delivery rejected before anything in it could be trusted).
    """

    account_id: Id
    user_id: Id
    role: str | None = None
    at: Timestamp
    resource: str = "account"
    kind: Literal["data_access", "event_rejected"] = "data_access"
    details: dict[str, Any] = {}


class ScanRequest(ContractModel):
    """Run the daily scans missed up to ``at`` (the timer's clock) of the accounts ``account_ids``.

    The accounts are all on one partition, and the record is keyed by the first of them, so that it
    reaches the agent that owns them all (`scan_requests` builds them so). With one record per
    account, sending, consuming and acknowledging each record cost the worker more than the quiet scan
    it asked for (docs/performance.md, seventh session).

    Idempotent: scans are kept per scan day, so a request for a day already scanned changes nothing.

    >>> request = ScanRequest.model_validate({"account_ids": ["ACC-1", "ACC-9"], "at": "2026-03-02T05:00Z"})
    >>> request.account_ids, request.at.isoformat()
    (('ACC-1', 'ACC-9'), '2026-03-02T05:00:00+00:00')
    """

    account_ids: tuple[Id, ...] = Field(min_length=1, max_length=MAX_SCAN_ACCOUNTS)
    at: Timestamp


def partition_of(account_id: str, partitions: int) -> int:
    """The partition a record keyed by ``account_id`` goes to among ``partitions``: the Kafka client's
    default partitioner (murmur2, as Java's and aiokafka's producers use), which also decides where
    each account's events, and so its state, live.

    >>> [partition_of(account, 8) for account in ("ACC-1", "ACC-2", "ACC-3")]
    [7, 1, 3]
    """
    if partitions == 1:
        return 0  # offline runs, on every scan: the hash (3 µs in Python) cannot change the answer
    return (murmur2(account_id.encode()) & 0x7FFFFFFF) % partitions


def scan_requests(account_ids: Iterable[str], at: datetime, partitions: int) -> list[tuple[bytes, bytes]]:
    """(key, value) records asking for the scans of ``account_ids`` up to ``at``: the accounts grouped
    by partition, in their order, at most `MAX_SCAN_ACCOUNTS` a record, each keyed by its first account.

    >>> from datetime import UTC
    >>> records = scan_requests([f"ACC-{n}" for n in range(1, 7)], datetime(2026, 3, 2, 5, tzinfo=UTC), 2)
    >>> [(key, ScanRequest.model_validate_json(value).account_ids) for key, value in records]
    [(b'ACC-1', ('ACC-1', 'ACC-2', 'ACC-3', 'ACC-4', 'ACC-5')), (b'ACC-6', ('ACC-6',))]
    """
    by_partition: dict[int, list[str]] = {}
    for account_id in account_ids:
        by_partition.setdefault(partition_of(account_id, partitions), []).append(account_id)
    return [
        (chunk[0].encode(), ScanRequest(account_ids=tuple(chunk), at=at).model_dump_json().encode())
        for accounts in by_partition.values()
        for chunk in (accounts[i : i + MAX_SCAN_ACCOUNTS] for i in range(0, len(accounts), MAX_SCAN_ACCOUNTS))
    ]
