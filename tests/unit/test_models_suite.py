"""When the worker's models learn: a day's labels wait for the next `ModelSuite.tick`, in an order of
their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from models.suite import ModelSuite
from rules.state import AccountState

T0 = datetime(2026, 3, 16, 15, tzinfo=UTC)
ACCOUNTS = [f"ACC-{n}" for n in range(40)]


def _decided(suite: ModelSuite) -> None:
    """Every account gets a message (a snapshot for each model); some share a decision time."""
    for n, account in enumerate(ACCOUNTS):
        state = AccountState.new(account, f"PT-{n}", "X").model_copy(update={"balance": Decimal(50 + 37 * n)})
        at = T0 + timedelta(hours=n % 3)
        scores, x = suite.score(state, at)
        suite.decided(account, x, scores, at, channel="sms", context=suite.channel_context(state))


def _paid_in(order: list[str]) -> ModelSuite:
    suite = ModelSuite(monitored=False)
    _decided(suite)
    for n, account in enumerate(order):
        if n % 3:  # a third never pays: negatives when the windows close
            suite.paid(account, T0 + timedelta(days=2, minutes=n))
    return suite


def _counts(suite: ModelSuite) -> dict[str, dict[str, tuple[float, float]]]:
    """The channel chooser's evidence per segment and channel."""
    return {
        segment: {channel: (beta.alpha, beta.beta) for channel, beta in arms.items()}
        for segment, arms in suite.chooser._posteriors.items()
    }


def test_labels_wait_for_the_next_tick() -> None:
    suite = _paid_in(ACCOUNTS)
    assert (suite.propensity.labels, suite.risk.labels) == (0, 0)
    assert suite.waiting, "payments within the windows are known labels"
    suite.tick(T0 + timedelta(days=3))
    assert suite.risk.labels > 0 and not suite.waiting
    suite.tick(T0 + timedelta(days=120))  # every window has closed
    assert suite.propensity.labels == suite.risk.labels == len(ACCOUNTS)


def test_the_order_labels_came_in_does_not_change_what_the_models_learn() -> None:
    """Two workers that saw the same payments in different orders (partitions interleave differently)
    score alike once they tick."""
    one, other = _paid_in(ACCOUNTS), _paid_in(ACCOUNTS[::-1])
    for suite in (one, other):
        suite.tick(T0 + timedelta(days=120))
    probe = AccountState.new("ACC-NEW", "PT-NEW", "X").model_copy(update={"balance": Decimal("420.00")})
    assert one.score(probe, T0 + timedelta(days=121)) == other.score(probe, T0 + timedelta(days=121))
    assert _counts(one) == _counts(other)
    assert one.score(probe, T0 + timedelta(days=121)) != ModelSuite(monitored=False).score(probe, T0), (
        "the models learned nothing: the comparison proves little"
    )


def test_labels_waiting_at_a_checkpoint_are_learned_after_a_restart() -> None:
    suite = _paid_in(ACCOUNTS)
    restored = ModelSuite.restore(suite.checkpoint(), monitored=False)
    assert len(restored.waiting) == len(suite.waiting) > 0
    for each in (suite, restored):
        each.tick(T0 + timedelta(days=3))
    assert restored.risk.labels == suite.risk.labels > 0
