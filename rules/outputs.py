"""What a decision returns: the new state and the records to write, with the account's audit chain.

`Output` names a logical topic (the shell adds the ``billing.`` prefix); `AuditTrail` seals audit records
onto the account's hash chain, carrying its head in the state.

>>> from datetime import datetime, UTC
>>> from rules.policy import load_policy
>>> from rules.state import AccountState
>>> trail = AuditTrail(AccountState.new("A", "P", "X"), load_policy())
>>> record = trail.append("suppressed", datetime(2026, 3, 16, tzinfo=UTC), details={"gate": "G-CEASE"})
>>> record.prev_hash == "0" * 64, record.policy_version, trail.state_update()["audit_seq"]
(True, '2026.1-default', 1)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from inference.facts import DraftFacts
from rules.policy import Policy
from rules.state import AccountState
from schemas.audit import Actor, AuditDraft, AuditKind, AuditRecord, seal
from schemas.common import OutputModel

ENGINE = Actor(type="engine", id="billwise")

Topic = Literal["actions", "review", "audit", "dlq"]


@dataclass(frozen=True)
class Output:
    """One record to write: the logical topic (prefixed by the shell), the key and the value."""

    topic: Topic
    key: str
    value: OutputModel

    def as_line(self, prefix: str = "billing") -> dict[str, Any]:
        """The ``billwise decide`` line: ``{"topic": "billing.actions", "key": ..., "value": {...}}``."""
        return {
            "topic": f"{prefix}.{self.topic}",
            "key": self.key,
            "value": self.value.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class Decision:
    state: AccountState
    outputs: tuple[Output, ...]
    duplicate: bool = False
    draft_requests: tuple[tuple[str, DraftFacts], ...] = ()
    """The patient-facing words this decision wants drafted, by action id. The shell drafts them with
    the model (concurrently, off the per-event path) and decides again with the drafts; the decision is
    otherwise the same, because drafting changes only an action's message and adds audit records."""


class AuditTrail:
    """Appends sealed audit records to one account's chain, carrying its head along."""

    def __init__(self, state: AccountState, policy: Policy) -> None:
        self.account_id = state.account_id
        self.head = state.audit_head
        self.seq = state.audit_seq
        self.policy_version = policy.version
        self.records: list[AuditRecord] = []

    def append(
        self,
        kind: AuditKind,
        at: datetime,
        *,
        action_id: str | None = None,
        event_id: str | None = None,
        details: dict[str, Any] | None = None,
        actor: Actor = ENGINE,
        model_version: str | None = None,
    ) -> AuditRecord:
        self.seq += 1
        digest = hashlib.sha256(f"{self.account_id}\x1f{self.seq}".encode()).hexdigest()[:24]
        record = seal(
            AuditDraft(
                audit_id=f"aud-{digest}",
                at=at,
                account_id=self.account_id,
                actor=actor,
                kind=kind,
                action_id=action_id,
                event_id=event_id,
                policy_version=self.policy_version,
                model_version=model_version,
                details=details or {},
            ),
            self.head,
        )
        self.head = record.hash
        self.records.append(record)
        return record

    def state_update(self) -> dict[str, Any]:
        return {"audit_head": self.head, "audit_seq": self.seq}
