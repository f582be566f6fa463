"""Audit records and their per-account hash chain.

Each record's ``hash`` is the SHA-256 of its canonical JSON (sorted keys, no whitespace, without
``hash``); ``prev_hash`` is the previous record's hash for the same account, 64 zeros for the first.
Any edit, gap or reordering therefore breaks the chain (`verify_chain`).

>>> first = seal(AuditDraft(audit_id="aud-1", at="2026-03-15T14:02:00Z", account_id="ACC-1",
...     actor=Actor(type="engine", id="billwise"), kind="decision", policy_version="v1"), GENESIS_HASH)
>>> second = seal(AuditDraft(audit_id="aud-2", at="2026-03-15T14:03:00Z", account_id="ACC-1",
...     actor=Actor(type="engine", id="billwise"), kind="decision", policy_version="v1"), first.hash)
>>> verify_chain([first, second]) is None
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from schemas.common import Id, OutputModel, Timestamp

GENESIS_HASH = "0" * 64

AuditKind = Literal[
    "decision",
    "suppressed",
    "review_requested",
    "review_approved",
    "review_rejected",
    "draft_fallback",
    "event_rejected",
    "model_updated",
    "data_access",
]


class Actor(OutputModel):
    type: Literal["engine", "user", "system"]
    id: str
    role: str | None = None


class AuditDraft(OutputModel):
    """An audit record before it is sealed into the chain."""

    audit_id: Id
    at: Timestamp
    account_id: Id
    actor: Actor
    kind: AuditKind
    action_id: str | None = None
    event_id: str | None = None
    policy_version: str
    model_version: str | None = None
    details: dict[str, Any] = {}


class AuditRecord(AuditDraft):
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


def canonical_json(document: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that are hashed."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record_without_hash: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(record_without_hash)).hexdigest()


def seal(draft: AuditDraft, prev_hash: str) -> AuditRecord:
    """Chain ``draft`` after the record whose hash is ``prev_hash``."""
    body = draft.model_dump(mode="json")
    body["prev_hash"] = prev_hash
    return AuditRecord(**body, hash=record_hash(body))


class ChainBreak(OutputModel):
    """Where a chain stops verifying, and why."""

    account_id: str
    index: int
    audit_id: str
    reason: Literal["tampered", "broken_link"]


def verify_chain(records: Iterable[AuditRecord | dict[str, Any]]) -> ChainBreak | None:
    """The first break in per-account chains, or ``None`` when every chain is intact.

    Records may interleave accounts (as on a topic); each account's records must appear in order.
    A tampered record fails its own hash; a deleted or reordered one breaks the next link. A record
    identical to one already chained is a redelivery (delivery is at-least-once) and is passed over.
    """
    heads: dict[str, str] = {}
    chained: set[str] = set()
    for index, record in enumerate(records):
        body = record.model_dump(mode="json") if isinstance(record, AuditRecord) else dict(record)
        claimed = body.pop("hash", None)
        account_id = str(body.get("account_id"))
        audit_id = str(body.get("audit_id"))
        if claimed != record_hash(body):
            return ChainBreak(account_id=account_id, index=index, audit_id=audit_id, reason="tampered")
        if claimed in chained:
            continue
        if body.get("prev_hash") != heads.get(account_id, GENESIS_HASH):
            return ChainBreak(account_id=account_id, index=index, audit_id=audit_id, reason="broken_link")
        heads[account_id] = claimed
        chained.add(claimed)
    return None
