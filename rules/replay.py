"""What another policy would have decided on the same events (``billwise replay --policy F --events F``).

`run_events` folds canonical event lines through the decision core the way the stream would, including
the daily scan of every known account each time the events' clock passes a scan-day boundary.
`replay` runs the same lines under two policies and compares the actions, keyed by their deterministic
``action_id``: added (only under B), removed (only under A) and changed (both, with different fields).

>>> from rules.examples import account, patient
>>> from rules.policy import load_policy
>>> lines = [e.model_dump_json() for e in (patient("2026-03-16T13:00:00Z"),
...          account("2026-03-16T13:05:00Z", "450.00", "2026-01-05"))]
>>> diff = replay(lines, load_policy(), load_policy())
>>> (len(diff.added), len(diff.removed), len(diff.changed), diff.unchanged)
(0, 0, 0, 1)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from rules.decide import daily_scan, decide, due_scans, scan_day
from rules.engine import DEFAULT_BACKEND, Backend
from rules.outputs import Output
from rules.policy import Policy
from rules.state import AccountState
from schemas.actions import Action
from schemas.audit import AuditRecord
from schemas.events import InvalidEvent, parse_event

COMPARED_FIELDS = (
    "route",
    "channel",
    "not_before",
    "review_reasons",
    "plan_options",
    "settlement",
    "priority",
)


@dataclass(frozen=True)
class ActionView:
    """The parts of an action a policy change can move."""

    action_id: str
    account_id: str
    kind: str
    route: str
    channel: str
    not_before: str
    review_reasons: tuple[str, ...]
    plan_options: tuple[str, ...]
    settlement: str
    priority: float

    @classmethod
    def of(cls, output: Output) -> ActionView:
        action = output.value
        assert isinstance(action, Action)
        return cls(
            action_id=action.action_id,
            account_id=action.account_id,
            kind=action.kind,
            route=output.topic,
            channel=action.channel,
            not_before=action.not_before.isoformat(),
            review_reasons=tuple(action.review.reasons),
            plan_options=tuple(f"{o.term_months}x{o.monthly_amount}" for o in action.plan_options),
            settlement=str(action.settlement.amount) if action.settlement else "",
            priority=action.priority,
        )

    def line(self) -> str:
        return (
            f"{self.account_id} {self.kind} via {self.channel} -> {self.route}, not before {self.not_before}"
        )


@dataclass(frozen=True)
class ActionChange:
    a: ActionView
    b: ActionView
    fields: tuple[str, ...]

    def line(self) -> str:
        changes = "; ".join(
            f"{name} {getattr(self.a, name)!s} -> {getattr(self.b, name)!s}" for name in self.fields
        )
        return f"{self.a.account_id} {self.a.kind} [{self.a.action_id}]: {changes}"


@dataclass(frozen=True)
class RunResult:
    outputs: list[Output]
    states: dict[str, AccountState]
    events: int
    rejected: int


@dataclass(frozen=True)
class ReplayDiff:
    policy_a: str
    policy_b: str
    events: int
    rejected: int
    added: tuple[ActionView, ...]
    removed: tuple[ActionView, ...]
    changed: tuple[ActionChange, ...]
    unchanged: int
    suppressions: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per gate: how many suppressions under A and under B, where they differ."""

    def render(self) -> str:
        """A readable report, one action a line."""
        lines = [
            f"Replay of {self.events} events ({self.rejected} rejected): A = policy {self.policy_a}, "
            f"B = policy {self.policy_b}",
            f"Added under B: {len(self.added)}",
            *(f"  + {view.line()} [{view.action_id}]" for view in self.added),
            f"Removed under B: {len(self.removed)}",
            *(f"  - {view.line()} [{view.action_id}]" for view in self.removed),
            f"Changed: {len(self.changed)}",
            *(f"  ~ {change.line()}" for change in self.changed),
            f"Unchanged: {self.unchanged}",
        ]
        if self.suppressions:
            lines.append("Suppressions by gate (A -> B):")
            lines += [f"  {gate}: {a} -> {b}" for gate, (a, b) in sorted(self.suppressions.items())]
        return "\n".join(lines)


def _scan_all(
    states: dict[str, AccountState], outputs: list[Output], policy: Policy, now: datetime, backend: Backend
) -> None:
    """Every known account's missed daily scans up to ``now``, as the Faust timer would have run them."""
    for account_id, state in list(states.items()):
        for at in due_scans(state.last_scan_day, now, policy):
            decision = daily_scan(state, policy, at, backend=backend)
            state = decision.state
            outputs.extend(decision.outputs)
        states[account_id] = state


def run_events(
    lines: Iterable[str | bytes], policy: Policy, *, backend: Backend = DEFAULT_BACKEND
) -> RunResult:
    """Every output of the decision core for canonical event lines, with daily scans between days."""
    states: dict[str, AccountState] = {}
    outputs: list[Output] = []
    clock: date | None = None
    events = rejected = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except InvalidEvent:
            rejected += 1
            continue
        events += 1
        day = scan_day(event.time, policy)
        if clock is not None and day > clock:  # the events' clock passed a scan-day boundary
            _scan_all(states, outputs, policy, event.time, backend)
        clock = day if clock is None else max(clock, day)
        decision = decide(states.get(event.account_id), event, policy, backend=backend)
        states[event.account_id] = decision.state
        outputs.extend(decision.outputs)
    return RunResult(outputs, states, events, rejected)


def _actions(result: RunResult) -> dict[str, ActionView]:
    """The last word on every action id (a re-held or approved action appears more than once)."""
    return {
        view.action_id: view
        for view in (ActionView.of(o) for o in result.outputs if o.topic in ("actions", "review"))
    }


def _suppressions(result: RunResult) -> Counter[str]:
    return Counter(
        str(o.value.details.get("gate"))
        for o in result.outputs
        if isinstance(o.value, AuditRecord) and o.value.kind == "suppressed"
    )


def replay(
    lines: Iterable[str | bytes], policy_a: Policy, policy_b: Policy, *, backend: Backend = DEFAULT_BACKEND
) -> ReplayDiff:
    """Decide the same events under ``policy_a`` and ``policy_b`` and compare the actions."""
    materialised = list(lines)
    run_a = run_events(materialised, policy_a, backend=backend)
    run_b = run_events(materialised, policy_b, backend=backend)
    a, b = _actions(run_a), _actions(run_b)
    changed = []
    for action_id in sorted(a.keys() & b.keys()):
        fields = tuple(
            name for name in COMPARED_FIELDS if getattr(a[action_id], name) != getattr(b[action_id], name)
        )
        if fields:
            changed.append(ActionChange(a[action_id], b[action_id], fields))
    sup_a, sup_b = _suppressions(run_a), _suppressions(run_b)
    suppressions = {
        gate: (sup_a[gate], sup_b[gate]) for gate in sup_a.keys() | sup_b.keys() if sup_a[gate] != sup_b[gate]
    }
    return ReplayDiff(
        policy_a=_name(policy_a),
        policy_b=_name(policy_b),
        events=run_a.events,
        rejected=run_a.rejected,
        added=tuple(b[k] for k in sorted(b.keys() - a.keys())),
        removed=tuple(a[k] for k in sorted(a.keys() - b.keys())),
        changed=tuple(changed),
        unchanged=len(a.keys() & b.keys()) - len(changed),
        suppressions=suppressions,
    )


def _name(policy: Policy) -> str:
    return f"{policy.version} ({policy.fingerprint})"


def as_dict(diff: ReplayDiff) -> dict[str, Any]:
    """The diff as JSON-ready data (for a ``--json`` option)."""
    return {
        "policy_a": diff.policy_a,
        "policy_b": diff.policy_b,
        "events": diff.events,
        "rejected": diff.rejected,
        "added": [view.__dict__ for view in diff.added],
        "removed": [view.__dict__ for view in diff.removed],
        "changed": [
            {"action_id": c.a.action_id, "fields": {f: [getattr(c.a, f), getattr(c.b, f)] for f in c.fields}}
            for c in diff.changed
        ],
        "unchanged": diff.unchanged,
        "suppressions": {gate: list(counts) for gate, counts in diff.suppressions.items()},
    }
