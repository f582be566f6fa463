"""Delayed labels: a positive only for a payment inside the window, a negative only once it closed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

from models.labels import LABEL_WINDOW, MAX_SNAPSHOTS, backlog, expire, held, on_decision, on_payment

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
X = {"log_balance": 5.0, "has_paid": 1.0}


def test_no_negative_before_the_window_closes() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0)
    assert expire(store, T0 + LABEL_WINDOW - timedelta(seconds=1)) == []
    labels = expire(store, T0 + LABEL_WINDOW)
    assert [(label.account_id, label.y) for label in labels] == [("A", False)]
    assert labels[0].delay_seconds >= LABEL_WINDOW.total_seconds()
    assert store == {}


def test_payment_inside_the_window_is_a_positive_with_the_decision_time_features() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0, p=0.42, model_version="ptp-lr-1+7", meta={"oracle": 0.5})
    labels = on_payment(store, "A", T0 + timedelta(days=12))
    assert len(labels) == 1
    label = labels[0]
    assert label.y is True
    assert label.x == X  # the snapshot, not the account as it is after the payment
    assert (label.p, label.model_version, label.meta) == (0.42, "ptp-lr-1+7", {"oracle": 0.5})
    assert label.decided_at == T0
    assert store == {}


def test_payment_before_the_decision_labels_nothing() -> None:
    """A late-arriving payment that happened before the decision must not leak into its label."""
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0)
    assert on_payment(store, "A", T0 - timedelta(hours=1)) == []
    assert backlog(store) == 1


def test_payment_after_the_window_settles_the_snapshot_as_a_negative() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0)
    labels = on_payment(store, "A", T0 + LABEL_WINDOW + timedelta(days=2))
    assert [label.y for label in labels] == [False]


def test_other_accounts_and_windows_are_untouched() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0)
    on_decision(store, "B", X, T0)
    on_decision(store, "A", X, T0 + timedelta(days=20))
    labels = on_payment(store, "A", T0 + timedelta(days=25))
    assert [(label.account_id, label.y) for label in labels] == [("A", True), ("A", True)]
    assert list(store) == ["B"]


def test_one_snapshot_per_gap_and_a_bounded_list() -> None:
    store: dict[str, Any] = {}
    assert on_decision(store, "A", X, T0)
    assert not on_decision(store, "A", {"log_balance": 9.0}, T0 + timedelta(hours=5))
    assert store["A"][0]["x"] == X  # the first decision is kept, not the later one
    for day in range(1, 40):
        on_decision(store, "A", X, T0 + timedelta(days=7 * day))
    assert len(store["A"]) == MAX_SNAPSHOTS


def test_custom_window_for_other_labels() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0)
    assert expire(store, T0 + timedelta(days=60), window=timedelta(days=90)) == []
    assert [
        label.y for label in on_payment(store, "A", T0 + timedelta(days=80), window=timedelta(days=90))
    ] == [True]


def test_the_store_is_json_serialisable() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0, p=0.3, meta={"channel": "sms"})
    reloaded = json.loads(json.dumps(store))
    assert [label.y for label in on_payment(reloaded, "A", T0 + timedelta(days=1))] == [True]


class AssignmentOnly(MutableMapping[str, Any]):
    """Like a Faust table: only explicit assignments and deletions reach the changelog.

    Reads hand out copies, so any in-place mutation by the code under test is lost, and the test
    sees it.
    """

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes = 0

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self.data[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        self.data[key] = copy.deepcopy(value)

    def __delitem__(self, key: str) -> None:
        self.writes += 1
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.data))

    def __len__(self) -> int:
        return len(self.data)


def test_works_on_a_table_that_only_sees_assignments() -> None:
    table = AssignmentOnly()
    on_decision(table, "A", X, T0)
    on_decision(table, "A", X, T0 + timedelta(days=10))
    on_decision(table, "B", X, T0 + timedelta(days=10))
    assert backlog(table) == 3
    assert [label.y for label in expire(table, T0 + LABEL_WINDOW)] == [False]
    assert backlog(table) == 2
    assert [label.y for label in on_payment(table, "A", T0 + timedelta(days=15))] == [True]
    assert list(table) == ["B"]


def test_held_positives_are_handed_out_when_their_window_closes() -> None:
    table = AssignmentOnly()
    on_decision(table, "A", X, T0)
    on_decision(table, "A", {"log_balance": 9.0}, T0 + timedelta(days=20))
    on_decision(table, "B", X, T0)
    assert on_payment(table, "A", T0 + timedelta(days=5), hold=True) == []
    assert [(label.y, label.labelled_at) for label in held(table)] == [(True, T0 + timedelta(days=5))]
    # The window closes: the paid snapshot is a positive dated by its payment, B's a negative; A's
    # second decision came after the payment and waits for its own window.
    labels = expire(table, T0 + LABEL_WINDOW)
    assert [(label.account_id, label.y) for label in labels] == [("A", True), ("B", False)]
    assert labels[0].delay_seconds == timedelta(days=5).total_seconds()
    assert [snap["x"] for snap in table["A"]] == [{"log_balance": 9.0}]
    assert held(table) == [] and list(table) == ["A"]


def test_a_held_positive_whose_window_the_sweep_missed_is_still_a_positive() -> None:
    store: dict[str, Any] = {}
    on_decision(store, "A", X, T0)
    on_payment(store, "A", T0 + timedelta(days=29), hold=True)
    late = on_payment(store, "A", T0 + LABEL_WINDOW + timedelta(days=3), hold=True)
    assert [label.y for label in late] == [True]
    assert store == {}
