"""Internal commands to the ingest agent: records it must chain into an account's audit trail.

Each account's audit hash chain has one writer, the ingest agent that owns the account's partition.
Web views (a staff member reading an account, a webhook with a bad signature) therefore do not write
audit records themselves: they send an `AuditRequest` to the internal topic ``{prefix}.access``, keyed
by the account id, and the agent seals it into the chain.

>>> AuditRequest.model_validate({"account_id": "ACC-1", "user_id": "u-7", "role": "collector",
...     "at": "2026-03-01T10:00:00Z", "resource": "account"}).kind
'data_access'
"""

from __future__ import annotations

from typing import Any, Literal

from schemas.common import ContractModel, Id, Timestamp

ACCESS_TOPIC = "access"
"""The internal topic's name after the prefix: ``billing.access``."""


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
