"""Audit requests from outside the decision path: a staff member reading an account, a rejected webhook.

They go through the same per-account hash chain as decisions, so the worker that owns the account's
partition seals them (`streams.commands.AuditRequest` is the record that asks for it).

>>> from datetime import UTC, datetime
>>> from rules.policy import load_policy
>>> decision = record_access(None, "ACC-1", "data_access", datetime(2026, 3, 1, tzinfo=UTC),
...     user_id="u-7", role="collector", details={"resource": "account"}, policy=load_policy())
>>> [(o.topic, o.value.kind, o.value.actor.id) for o in decision.outputs]
[('audit', 'data_access', 'u-7')]
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rules.outputs import AuditTrail, Decision, Output
from rules.policy import Policy
from rules.state import AccountState
from schemas.audit import Actor, AuditKind


def record_access(
    state: AccountState | None,
    account_id: str,
    kind: AuditKind,
    at: datetime,
    *,
    user_id: str,
    role: str | None,
    details: dict[str, Any],
    policy: Policy,
) -> Decision:
    """The account's state with one more audit record for ``user_id``'s access (or the system's)."""
    if state is None:
        # A pseudo-account (``webhook:drchrono``) or an account not seen yet: its chain starts here.
        state = AccountState.new(account_id, account_id, account_id)
    trail = AuditTrail(state, policy)
    actor = Actor(type="user" if role else "system", id=user_id, role=role)
    record = trail.append(kind, at, actor=actor, details=details)
    return Decision(
        state=state.model_copy(update=trail.state_update()), outputs=(Output("audit", account_id, record),)
    )
