"""Delayed labels: learn from the features the model saw at decision time, once the outcome is known.

"Did the patient pay within 30 days of the decision?" is known early when they pay (a positive) and
only when the window closes when they do not (a negative). So at decision time the features are kept
as a *snapshot*; a payment inside the window turns every open snapshot of the account into a positive,
and a sweep turns snapshots whose window has closed into negatives. The model always learns from the
snapshot, never from the account as it is when the label arrives: learning current features against an
old outcome would leak the outcome into the features (a paid account has a smaller balance).

**Holding positives.** With ``hold=True`` a payment only marks the open snapshots as paid; `expire` hands
them out, with the unpaid ones, when their window closes. A learner then sees labels in decision order,
both classes after the same delay. Without it, the labels of any period are that month's payers and the
previous month's non-payers, and early on payers only: an online learner drifts towards whatever pays
fast. Measured on the simulator (`models.evaluate`, 20,000 events, 14 seeds) holding raised the
propensity model's ``auc / oracle_auc`` on every seed (mean +0.007).

The store is a mapping ``account_id -> list of snapshot dicts`` made of JSON types only, so the worker
can keep it in a Faust table (JSON codec) keyed by account and co-partitioned with the account state.
Every change is an explicit assignment (``store[key] = new``) or deletion, never an in-place mutation,
because Faust writes only assignments to the table's changelog. Snapshots are few per account: a
decision within ``min_gap`` of the previous snapshot of the same account is not kept again, which also
stops busy accounts from dominating what the model learns. Which decision is kept never depends on
the outcome, so the thinning does not bias the labels.

>>> from datetime import UTC, datetime, timedelta
>>> store = {}
>>> t0 = datetime(2026, 3, 1, tzinfo=UTC)
>>> on_decision(store, "ACC-1", {"log_balance": 5.0}, t0, p=0.4)
True
>>> on_decision(store, "ACC-1", {"log_balance": 5.0}, t0 + timedelta(hours=2))  # within MIN_GAP
False
>>> on_decision(store, "ACC-2", {"log_balance": 7.0}, t0)
True
>>> [(l.account_id, l.y) for l in on_payment(store, "ACC-1", t0 + timedelta(days=3))]
[('ACC-1', True)]
>>> expire(store, t0 + timedelta(days=29))  # ACC-2's window is still open: no label yet
[]
>>> [(l.account_id, l.y) for l in expire(store, t0 + timedelta(days=30))]
[('ACC-2', False)]
>>> store
{}
>>> on_decision(store, "ACC-3", {"log_balance": 6.0}, t0)
True
>>> on_payment(store, "ACC-3", t0 + timedelta(days=3), hold=True)  # marked, not yet handed out
[]
>>> [(l.y, l.delay_seconds / 86_400) for l in expire(store, t0 + timedelta(days=30))]  # handed out
[(True, 3.0)]
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "LABEL_WINDOW",
    "MAX_SNAPSHOTS",
    "Label",
    "SnapshotStore",
    "SweepQueue",
    "backlog",
    "expire",
    "held",
    "on_decision",
    "on_payment",
]

LABEL_WINDOW = timedelta(days=30)
"""A payment within 30 days of the decision is a positive (POLICY.md's collections cadence is 30 days)."""
MIN_GAP = timedelta(days=7)
"""At most one snapshot per account per week: the engine re-decides on every event, and learning each of
those decisions would weight busy accounts by their event rate rather than once per outcome."""
MAX_SNAPSHOTS = 8
"""Bound per account, so a table value never grows without limit (beyond it the oldest is dropped
unlabelled; with ``MIN_GAP`` of a week and a 30-day window at most five are ever open)."""

Snapshot = dict[str, Any]
"""``{"at": epoch seconds, "x": features, "p": score or None, "v": model version or None, "meta": {}}``,
and ``"paid": epoch seconds`` once a held positive (``on_payment(..., hold=True)``)."""
SnapshotStore = MutableMapping[str, list[Snapshot]]
"""A plain dict in tests and the offline evaluation, a Faust table in the worker."""


@dataclass(frozen=True)
class Label:
    """One example to learn: the decision-time features and what happened within the window."""

    account_id: str
    x: dict[str, float]
    y: bool
    decided_at: datetime
    labelled_at: datetime
    p: float | None = None
    model_version: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def delay_seconds(self) -> float:
        """How long the label took to arrive (the label-delay metric)."""
        return (self.labelled_at - self.decided_at).total_seconds()


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("decision and label times must be timezone-aware")
    return moment.timestamp()


def _label(account_id: str, snap: Snapshot, y: bool, at: datetime) -> Label:
    return Label(
        account_id=account_id,
        x=snap["x"],
        y=y,
        decided_at=datetime.fromtimestamp(snap["at"], UTC),
        labelled_at=at,
        p=snap.get("p"),
        model_version=snap.get("v"),
        meta=snap.get("meta") or {},
    )


def _held_positive(account_id: str, snap: Snapshot) -> Label:
    """A held positive, labelled when its payment came."""
    return _label(account_id, snap, True, datetime.fromtimestamp(snap["paid"], UTC))


def _settled(account_id: str, snap: Snapshot, now: datetime) -> Label:
    """A snapshot's label as of ``now``, its window closed: a held positive, else a negative."""
    return _held_positive(account_id, snap) if snap.get("paid") else _label(account_id, snap, False, now)


def on_decision(
    store: SnapshotStore,
    account_id: str,
    x: dict[str, float],
    at: datetime,
    *,
    p: float | None = None,
    model_version: str | None = None,
    meta: dict[str, Any] | None = None,
    min_gap: timedelta = MIN_GAP,
) -> bool:
    """Keep the decision-time features of ``account_id``; False when a snapshot within ``min_gap`` exists.

    ``p`` and ``model_version`` (the score given and the model that gave it) travel with the snapshot
    for monitoring; ``meta`` carries anything else JSON-serialisable (e.g. the channel chosen).
    """
    now = _epoch(at)
    snaps = store.get(account_id) or []
    if snaps and now - snaps[-1]["at"] < min_gap.total_seconds():
        return False
    snap: Snapshot = {"at": now, "x": dict(x), "p": p, "v": model_version, "meta": dict(meta or {})}
    store[account_id] = [*snaps, snap][-MAX_SNAPSHOTS:]
    return True


def on_payment(
    store: SnapshotStore,
    account_id: str,
    at: datetime,
    *,
    window: timedelta = LABEL_WINDOW,
    hold: bool = False,
) -> list[Label]:
    """The labels a payment at ``at`` settles for ``account_id``.

    Snapshots whose window contains ``at`` become positives (``hold``: they are marked paid and `expire`
    hands them out when the window closes). Snapshots whose window had already closed become negatives
    (the sweep just had not reached them). Snapshots taken *after* ``at`` (a payment that arrives late)
    stay: that payment happened before the decision and says nothing about it.
    """
    snaps = store.get(account_id)
    if not snaps:
        return []
    paid = _epoch(at)
    span = window.total_seconds()
    labels: list[Label] = []
    keep: list[Snapshot] = []
    for snap in snaps:
        if snap["at"] > paid:
            keep.append(snap)
        elif paid < snap["at"] + span:
            if hold:
                keep.append(snap if snap.get("paid") else {**snap, "paid": paid})
            else:
                labels.append(_label(account_id, snap, True, at))
        else:
            labels.append(_settled(account_id, snap, at))
    if keep != snaps:
        _put(store, account_id, keep)
    return labels


def expire(
    store: SnapshotStore,
    now: datetime,
    *,
    window: timedelta = LABEL_WINDOW,
    accounts: Iterable[str] | None = None,
) -> list[Label]:
    """Labels for every snapshot whose window closed by ``now`` (run it from a per-worker timer):
    negatives, and the positives a held payment marked.

    ``accounts``: the only accounts to look at (a `SweepQueue`'s ``due``); all of them when absent.
    On a Faust table this sees only the partitions the worker owns, which is what each worker needs.
    """
    cutoff = _epoch(now) - window.total_seconds()
    labels: list[Label] = []
    for account_id in list(store.keys()) if accounts is None else accounts:
        snaps = store.get(account_id) or []
        if not snaps or snaps[0]["at"] > cutoff:  # snapshots are in time order
            continue
        keep = [snap for snap in snaps if snap["at"] > cutoff]
        labels.extend(_settled(account_id, snap, now) for snap in snaps if snap["at"] <= cutoff)
        _put(store, account_id, keep)
    return labels


class SweepQueue:
    """A store's snapshots by the time they were taken, so that `expire` visits only the accounts with
    a window that has closed.

    A sweep of every account costs O(accounts); the worker sweeps as stream time advances, i.e. after
    every event, which made label expiry the largest single cost of a 20,000-event run (12 s of 143 s
    profiled). Every kept snapshot is pushed once (`push`, after `on_decision` kept one); entries of
    snapshots a payment has settled meanwhile are simply found with nothing to do.

    >>> from datetime import UTC, datetime, timedelta
    >>> store, queue = {}, SweepQueue()
    >>> t0 = datetime(2026, 3, 1, tzinfo=UTC)
    >>> for account_id, day in (("B", 0), ("A", 2)):
    ...     if on_decision(store, account_id, {}, t0 + timedelta(days=day)):
    ...         queue.push(account_id, t0 + timedelta(days=day))
    >>> def sweep(day):
    ...     now = t0 + timedelta(days=day)
    ...     return [label.account_id for label in expire(store, now, accounts=queue.due(now))]
    >>> sweep(31), sweep(31.5), sweep(32)
    (['B'], [], ['A'])
    """

    def __init__(self, store: SnapshotStore | None = None, window: timedelta = LABEL_WINDOW) -> None:
        self.window = window
        self._heap = [
            (snap["at"], account_id) for account_id, snaps in (store or {}).items() for snap in snaps
        ]
        heapq.heapify(self._heap)

    def push(self, account_id: str, at: datetime) -> None:
        """A snapshot of ``account_id`` taken at ``at`` was kept."""
        heapq.heappush(self._heap, (_epoch(at), account_id))

    def due(self, now: datetime) -> list[str]:
        """The accounts with a snapshot whose window closed by ``now``, oldest first, each once; they
        leave the queue (pass them to `expire` at the same ``now``)."""
        cutoff = _epoch(now) - self.window.total_seconds()
        due: dict[str, None] = {}
        while self._heap and self._heap[0][0] <= cutoff:
            due[heapq.heappop(self._heap)[1]] = None
        return list(due)


def held(store: SnapshotStore) -> list[Label]:
    """The positives a held payment marked whose window is still open (known, not yet handed out).

    For reports that count every known outcome; the store is left as it is.
    """
    return [
        _held_positive(account_id, snap)
        for account_id in list(store.keys())
        for snap in store.get(account_id) or []
        if snap.get("paid")
    ]


def backlog(store: SnapshotStore) -> int:
    """How many decisions are waiting for their label (the label-backlog metric)."""
    return sum(len(snaps) for snaps in store.values())


def _put(store: SnapshotStore, account_id: str, keep: list[Snapshot]) -> None:
    """Write the account's remaining snapshots (an explicit assignment, or a deletion when none remain)."""
    if keep:
        store[account_id] = keep
    else:
        del store[account_id]
