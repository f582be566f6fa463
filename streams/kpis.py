"""The demo's numbers, as pure functions over records: no Kafka, no clock, no I/O.

Two kinds of tally:

* `WorldTally` folds one simulated world's canonical events (what the practice's books show), the same
  way for the engine's run and for the baseline's, so that the outcome KPIs compare like with like;
* `EngineTally` folds what the engine wrote (``actions``, ``review``, ``audit``, ``dlq`` records):
  actions by kind and channel, held actions and their reasons, suppressions by gate, drafts and
  template fallbacks, dead letters.

`outcome_kpis` turns a world's totals (`models.simulator.Practice.summary`) and its tally into the KPIs;
`compare` lines two policies up. Definitions (also printed in the report):

- **patient payment yield**: patient money collected in the window / patient responsibility billed in
  it (claims' patient responsibility, self-pay charges and the opening balances);
- **days in patient A/R**: patient balances outstanding at the end / average patient responsibility
  billed per day (the usual days-in-A/R formula on the patient side);
- **outbound contacts per $1,000 collected**: outbound communications the practice logged (statements
  mailed or e-mailed, messages, letters, staff calls; failed attempts included) per $1,000 collected;
- **share resolved by plan**: accounts that received a statement and took a payment plan / accounts
  that received a statement;
- **inbound contacts per 100 billed accounts** (the inbound-call proxy): inbound calls and written
  replies logged per 100 accounts that received a statement.

>>> tally = WorldTally()
>>> tally.observe({"type": "billing.statement.generated", "data": {"account_id": "A"}})
>>> tally.observe({"type": "billing.communication.logged",
...                "data": {"account_id": "A", "direction": "outbound", "channel": "letter"}})
>>> kpis = outcome_kpis({"billed_cents": 40_000, "collected_cents": 10_000, "outstanding_cents": 30_000},
...                     tally, days=30)
>>> kpis.payment_yield_pct, kpis.days_in_ar, kpis.contacts_per_1000
(25.0, 22.5, 10.0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "KPI_ROWS",
    "EngineTally",
    "KpiRow",
    "OutcomeKpis",
    "WorldTally",
    "compare",
    "outcome_kpis",
]


@dataclass
class WorldTally:
    """What one simulated world's events say, folded one event at a time (O(accounts) memory)."""

    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    outbound: Counter[str] = field(default_factory=Counter)
    """Outbound communications by channel."""
    outbound_for_actions: int = 0
    """Outbound communications that answer a policy's action (they carry ``action_id``)."""
    inbound_calls: int = 0
    inbound_replies: int = 0
    billed_accounts: set[str] = field(default_factory=set)
    plan_accounts: set[str] = field(default_factory=set)

    def observe(self, event: Mapping[str, Any]) -> None:
        self.events += 1
        etype = str(event.get("type", ""))
        self.by_type[etype] += 1
        data = event.get("data") or {}
        account = str(data.get("account_id", ""))
        if etype == "billing.statement.generated":
            self.billed_accounts.add(account)
        elif etype == "billing.payment_plan.updated" and data.get("status") == "active":
            self.plan_accounts.add(account)
        elif etype == "billing.communication.logged":
            if data.get("direction") == "outbound":
                self.outbound[str(data.get("channel"))] += 1
                if data.get("action_id"):
                    self.outbound_for_actions += 1
            elif data.get("direction") == "inbound":
                if data.get("channel") == "phone":
                    self.inbound_calls += 1
                else:
                    self.inbound_replies += 1

    def observe_all(self, events: Iterable[Mapping[str, Any]]) -> WorldTally:
        for event in events:
            self.observe(event)
        return self

    @property
    def outbound_contacts(self) -> int:
        return sum(self.outbound.values())

    @property
    def plan_share(self) -> float:
        """Accounts billed that took a plan / accounts billed (0 when nothing was billed)."""
        billed = self.billed_accounts
        return len(self.plan_accounts & billed) / len(billed) if billed else 0.0


@dataclass(frozen=True)
class OutcomeKpis:
    """One policy's outcome KPIs over one simulated world (money in cents, shares in percent)."""

    billed_cents: int
    collected_cents: int
    outstanding_cents: int
    payment_yield_pct: float
    days_in_ar: float
    outbound_contacts: int
    contacts_per_1000: float
    billed_accounts: int
    plan_accounts: int
    plan_share_pct: float
    inbound_contacts: int
    inbound_calls: int
    inbound_per_100: float
    plans_started: int = 0
    plans_defaulted: int = 0
    placed_with_agency: int = 0
    disputes: int = 0
    actions_answered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome_kpis(summary: Mapping[str, Any], tally: WorldTally, days: int) -> OutcomeKpis:
    """The KPIs of one world from its totals (``Practice.summary()``) and its event tally."""
    if days < 1:
        raise ValueError("days must be at least 1")
    billed = int(summary.get("billed_cents", 0))
    collected = int(summary.get("collected_cents", 0))
    outstanding = max(0, int(summary.get("outstanding_cents", 0)))
    per_day = billed / days
    billed_accounts = len(tally.billed_accounts)
    plan_accounts = len(tally.plan_accounts & tally.billed_accounts)
    inbound = tally.inbound_calls + tally.inbound_replies
    contacts = tally.outbound_contacts
    return OutcomeKpis(
        billed_cents=billed,
        collected_cents=collected,
        outstanding_cents=outstanding,
        payment_yield_pct=round(100.0 * collected / billed, 2) if billed else 0.0,
        days_in_ar=round(outstanding / per_day, 1) if per_day else 0.0,
        outbound_contacts=contacts,
        contacts_per_1000=round(contacts / (collected / 100_000), 2) if collected else 0.0,
        billed_accounts=billed_accounts,
        plan_accounts=plan_accounts,
        plan_share_pct=round(100.0 * plan_accounts / billed_accounts, 2) if billed_accounts else 0.0,
        inbound_contacts=inbound,
        inbound_calls=tally.inbound_calls,
        inbound_per_100=round(100.0 * inbound / billed_accounts, 2) if billed_accounts else 0.0,
        plans_started=int(summary.get("plans_started", 0)),
        plans_defaulted=int(summary.get("plans_defaulted", 0)),
        placed_with_agency=int(summary.get("placed_with_agency", 0)),
        disputes=int(summary.get("disputes", 0)),
        actions_answered=int(summary.get("actions_answered", 0)),
    )


Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class KpiSpec:
    key: str
    label: str
    unit: str
    better: Better
    headline: bool = True


KPI_ROWS: tuple[KpiSpec, ...] = (
    KpiSpec("payment_yield_pct", "Patient payment yield", "%", "higher"),
    KpiSpec("days_in_ar", "Days in patient A/R", "days", "lower"),
    KpiSpec("contacts_per_1000", "Outbound contacts per $1,000 collected", "contacts", "lower"),
    KpiSpec("plan_share_pct", "Share resolved by plan", "%", "higher"),
    KpiSpec("inbound_per_100", "Inbound calls and replies per 100 billed accounts", "contacts", "lower"),
    KpiSpec("collected_cents", "Collected", "$", "higher", headline=False),
    KpiSpec("billed_cents", "Patient responsibility billed", "$", "neither", headline=False),
    KpiSpec("outstanding_cents", "Outstanding at the end", "$", "lower", headline=False),
    KpiSpec("outbound_contacts", "Outbound contacts", "", "neither", headline=False),
    KpiSpec("actions_answered", "Policy actions delivered to patients", "", "neither", headline=False),
    KpiSpec("plans_started", "Payment plans started", "", "neither", headline=False),
    KpiSpec("plans_defaulted", "Payment plans defaulted", "", "lower", headline=False),
    KpiSpec("placed_with_agency", "Accounts placed with an agency", "", "lower", headline=False),
    KpiSpec("disputes", "Disputes opened", "", "neither", headline=False),
    KpiSpec("inbound_calls", "Inbound calls", "", "lower", headline=False),
)
"""The rows of the comparison table, headline KPIs first, with the direction that is better."""


@dataclass(frozen=True)
class KpiRow:
    spec: KpiSpec
    engine: float
    baseline: float

    @property
    def delta(self) -> float:
        return self.engine - self.baseline

    @property
    def verdict(self) -> Literal["better", "worse", "same", ""]:
        """Whether the engine did better than the baseline on this row (empty: no direction)."""
        if self.spec.better == "neither":
            return ""
        if abs(self.delta) < 1e-9:
            return "same"
        higher = self.delta > 0
        return "better" if higher == (self.spec.better == "higher") else "worse"


def compare(engine: OutcomeKpis, baseline: OutcomeKpis) -> list[KpiRow]:
    """The comparison table: one row per `KPI_ROWS` entry."""
    left, right = engine.as_dict(), baseline.as_dict()
    return [KpiRow(spec, float(left[spec.key]), float(right[spec.key])) for spec in KPI_ROWS]


@dataclass
class EngineTally:
    """What the engine wrote, folded from the records of its output topics."""

    released: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Actions on ``{prefix}.actions`` by (kind, channel)."""
    held: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Actions on ``{prefix}.review`` by (kind, channel)."""
    held_reasons: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    """Candidate actions stopped before release, by gate."""
    cancelled: Counter[str] = field(default_factory=Counter)
    """Released or held actions stopped afterwards, by gate."""
    message_sources: Counter[str] = field(default_factory=Counter)
    """Words of the actions by source: ``llm`` (a draft), ``template``, ``staff``, ``none``."""
    fallbacks: Counter[str] = field(default_factory=Counter)
    """``draft_fallback`` audit records by reason."""
    audit_kinds: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)

    def observe(self, route: str, value: Mapping[str, Any]) -> None:
        """One record; ``route`` is its topic without the prefix (``actions``, ``review``, ``audit``...)."""
        if route in ("actions", "review"):
            key = (str(value.get("kind")), str(value.get("channel")))
            (self.released if route == "actions" else self.held)[key] += 1
            message = value.get("message") or {}
            self.message_sources[str(message.get("source", "none")) if message else "none"] += 1
            if route == "review":
                for reason in (value.get("review") or {}).get("reasons") or ["(none given)"]:
                    self.held_reasons[str(reason)] += 1
        elif route == "audit":
            kind = str(value.get("kind"))
            self.audit_kinds[kind] += 1
            details = value.get("details") or {}
            if kind == "suppressed":
                gate = str(details.get("gate") or "(no gate)")
                (self.cancelled if details.get("cancelled") else self.suppressed)[gate] += 1
            elif kind == "draft_fallback":
                self.fallbacks[str(details.get("reason") or details.get("fallback_reason") or "unknown")] += 1
        elif route == "dlq":
            error = value.get("error") or {}
            self.dead_letters[str(error.get("type", "unknown"))] += 1

    @property
    def released_total(self) -> int:
        return sum(self.released.values())

    @property
    def held_total(self) -> int:
        return sum(self.held.values())

    def by_kind(self) -> dict[str, dict[str, int]]:
        """{kind: {channel: released + held}}, most frequent kinds first."""
        table: dict[str, Counter[str]] = {}
        for (kind, channel), count in (self.released + self.held).items():
            table.setdefault(kind, Counter())[channel] += count
        ordered = sorted(table.items(), key=lambda item: (-sum(item[1].values()), item[0]))
        return {kind: dict(channels.most_common()) for kind, channels in ordered}

    def as_dict(self) -> dict[str, Any]:
        def pairs(counter: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
            return [
                {"kind": kind, "channel": channel, "count": count}
                for (kind, channel), count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            ]

        return {
            "released": pairs(self.released),
            "held": pairs(self.held),
            "released_total": self.released_total,
            "held_total": self.held_total,
            "held_reasons": dict(self.held_reasons.most_common()),
            "suppressed_by_gate": dict(self.suppressed.most_common()),
            "cancelled_by_gate": dict(self.cancelled.most_common()),
            "message_sources": dict(self.message_sources.most_common()),
            "draft_fallbacks": dict(self.fallbacks.most_common()),
            "audit_kinds": dict(self.audit_kinds.most_common()),
            "dead_letters": dict(self.dead_letters.most_common()),
        }
