"""The access record the web layer writes to ``{prefix}.access`` for every read of account data.

The ingest agent (which owns each account's audit hash chain, one writer per account) reads each
access record as a `streams.commands.AuditRequest` (same fields; ``kind`` defaults to ``data_access``)
and seals it into the account's chain; the web layer never writes to the audit
topic itself, so the chain keeps a single writer. Keyed by ``account_id`` like every topic.

``resource`` says what was read: ``account`` (``GET /accounts/{id}``) or ``review_queue`` (the account's
held actions listed by ``GET /review``). Only ids, a role and a time: no PHI.

>>> AccessRecord(account_id="ACC-1", user_id="u-1", role="collector", at="2026-03-15T14:02:00Z",
...              resource="account").model_dump_json()
'{"account_id":"ACC-1","user_id":"u-1","role":"collector","at":"2026-03-15T14:02:00Z","resource":"account"}'
"""

from __future__ import annotations

from typing import Literal

from schemas.common import Id, OutputModel, Timestamp
from schemas.inputs import Role

AccessResource = Literal["account", "review_queue"]


class AccessRecord(OutputModel):
    """Who read which account's data, when, and through which resource."""

    account_id: Id
    user_id: Id
    role: Role
    at: Timestamp
    resource: AccessResource
