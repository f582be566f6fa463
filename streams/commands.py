"""Internal commands to the ingest agent, on internal topics keyed by account id.

Each account's state and audit hash chain have one writer, the ingest agent that owns the account's
partition. Anything else that must change them sends that agent a command instead:

* Web views (a staff member reading an account, a webhook with a bad signature) do not write audit
  records themselves: they send an `AuditRequest` to ``{prefix}.access`` and the agent seals it into
  the chain.
* The daily-scan timer does not decide anything itself: it sends a `ScanRequest` to ``{prefix}.scans``
  for every account whose scan day has passed, and the agent runs the missed scans like the ones it
  catches up before an account's next event.

>>> AuditRequest.model_validate({"account_id": "ACC-1", "user_id": "u-7", "role": "collector",
...     "at": "2026-03-01T10:00:00Z", "resource": "account"}).kind
'data_access'
"""

from __future__ import annotations

from typing import Any, Literal

from schemas.common import ContractModel, Id, Timestamp

ACCESS_TOPIC = "access"
"""The internal topic's name after the prefix: ``billing.access``."""
SCAN_TOPIC = "scans"
"""The internal topic's name after the prefix: ``billing.scans``."""


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
    """Run an account's daily scans missed up to ``at`` (the timer's clock).

    Idempotent: scans are kept per scan day, so a request for a day already scanned changes nothing.

    >>> ScanRequest.model_validate({"account_id": "ACC-1", "at": "2026-03-02T05:00:00Z"}).at.isoformat()
    '2026-03-02T05:00:00+00:00'
    """

    account_id: Id
    at: Timestamp
