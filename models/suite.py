"""The models one worker keeps, and how the stream feeds them: scores in, delayed labels back.

`ModelSuite` scores an account before a decision (propensity to pay and bad-debt risk, from
`models.features`), keeps the decision-time feature snapshot when a patient-facing action goes out,
learns a positive when the account pays within the label window and a negative when the window closes
(`models.labels`), and reports rolling quality to Prometheus (`models.monitoring`). Each worker learns
from its own partitions' accounts (below).

**The models learn once a day.** Labels (payments, engagement outcomes, windows that closed) wait until
stream time reaches the next day boundary (`tick`, which the worker calls at the first event of each
scan day), and are then learned in one fixed order: by decision time, account and model. Learning as
each label arrived made a worker's scores depend on how the records of its partitions happened to
interleave within a batch, so two runs over the same events decided differently (the demo's report
changed from run to run with the same seed). Now a day's scores depend only on the days before it: the
stream and ``billwise decide`` decide identically as long as each day's events are decided before the
next day's, in any interleaving of partitions. A label is learned at most a day later than before,
against label windows of 14 to 90 days. ``learning=False`` keeps the models as they are (their
checkpoint, or the priors).

It also keeps the channel chooser (`models.channel`): `channel_ranking` draws the ranking a decision
passes to the decision core, `decided` keeps the channel that went out, and payments (`paid`) and
engagement outcomes (`outcome`: clicks, replies, conversations) within `models.channel.REWARD_WINDOW`
reward it; silence until the window closes is a zero (`tick`).

`checkpoint` and `ModelSuite.restore` save and load the learned models and their open snapshots
(`models.store`: versioned, tied to the River version), so a restarted worker resumes where it was; a
cold start uses the documented priors of `models.propensity` and `models.risk`, and the policy's channel
order.

**Models are per worker.** Each worker learns from the accounts of the partitions it owns and
checkpoints to its own data directory (``BILLWISE_DATA_DIR``/``models.ckpt``); nothing is shared between
workers. In a scaled-out deployment that means:

* N workers are N models, each trained on about 1/N of the labels: each learns more slowly than one
  worker would on the whole book, and their scores for similar accounts drift apart a little (the
  ``model_version`` on every action names the worker's model state: ``ptp-lr-2+<labels learned>``);
* a rebalance moves account state (the Faust table) but not the models or their open snapshots (plain
  dicts in the worker and its checkpoint): the worker that takes over a partition scores its accounts
  with its own model, and the old worker, which no longer sees those accounts' payments, labels their
  open snapshots negative when the windows close. That is at most a label window (30 days; 14 for the
  chooser, 90 for risk) of one partition's labels, some of them wrong, per rebalance; keeping snapshots
  in a table co-partitioned with the accounts (`models.labels` supports it) would fix it;
* the channel chooser's segments warm up per worker too (``min_evidence`` outcomes each);
* a worker that starts on a new data directory starts from the priors; copying a checkpoint to it is a
  valid warm start (models are interchangeable, their snapshots only matter to the accounts they name);
* a single trainer that learns from every worker's labels and publishes the models (for example on a
  compacted topic) is the next step if the drift or the slower learning matters.

>>> from datetime import UTC, datetime
>>> from decimal import Decimal
>>> from rules.state import AccountState
>>> suite = ModelSuite(monitored=False)
>>> state = AccountState.new("ACC-1", "PT-1", "P-1").model_copy(update={"balance": Decimal("250.00")})
>>> scores, x = suite.score(state, datetime(2026, 3, 1, tzinfo=UTC))
>>> 0.0 < scores.propensity_to_pay < 1.0, scores.model_version == suite.propensity.model_version
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from models.channel import REWARD_OUTCOMES, REWARD_WINDOW, ChannelChooser
from models.features import features
from models.labels import LABEL_WINDOW, Label, SweepQueue, expire, on_decision, on_payment
from models.monitoring import ModelMonitor
from models.propensity import PropensityModel
from models.risk import RISK_WINDOW, RiskModel
from models.store import dumps, loads
from rules.channels import ChannelRanking
from rules.state import AccountState
from schemas.actions import Scores

CHECKPOINT_KIND = "model-suite"
Learner = Literal["propensity", "risk", "channel"]
LEARNERS: tuple[Learner, ...] = ("propensity", "risk", "channel")


class ModelSuite:
    def __init__(
        self,
        propensity: PropensityModel | None = None,
        risk: RiskModel | None = None,
        chooser: ChannelChooser | None = None,
        *,
        monitored: bool = True,
        learning: bool = True,
    ) -> None:
        self.learning = learning
        self.propensity = propensity or PropensityModel()
        self.risk = risk or RiskModel()
        self.chooser = chooser or ChannelChooser()
        self.snapshots: dict[str, Any] = {}
        self.risk_snapshots: dict[str, Any] = {}
        self.channel_snapshots: dict[str, Any] = {}
        self._queues: dict[str, SweepQueue] = {}
        self._index_snapshots()
        self.waiting: list[tuple[Learner, Label]] = []
        """Labels known since the last `tick`, with the model that learns them."""
        self.monitor = ModelMonitor("propensity") if monitored else None

    def score(self, state: AccountState, now: datetime) -> tuple[Scores, dict[str, float]]:
        """The account's scores at ``now`` and the features they came from."""
        x = features(state, now)
        p = self.propensity.score(x)
        if self.monitor is not None:
            self.monitor.observe_score(p)
        scores = Scores(
            propensity_to_pay=round(p, 4),
            bad_debt_risk=round(self.risk.score(x), 4),
            model_version=self.propensity.model_version,
        )
        return scores, x

    @staticmethod
    def channel_context(state: AccountState) -> dict[str, Any]:
        """What the channel chooser segments an account by (`ChannelChooser.segment`)."""
        patient = state.patient
        return {
            "preferred_channel": patient.preferred_channel if patient else None,
            "balance": float(state.balance),
        }

    def channel_ranking(self, state: AccountState, trigger: str) -> ChannelRanking | None:
        """The chooser's ranking for deciding ``trigger`` (an event's or a scan's key) on ``state``.

        Drawn from the account and the trigger, so deciding the same trigger again over the same model
        gives the same ranking; ``None`` while the account's segment is cold (the policy's order).
        """
        return self.chooser.rank(self.channel_context(state), f"{state.account_id}|{trigger}")

    def decided(
        self,
        account_id: str,
        x: dict[str, float],
        scores: Scores,
        at: datetime,
        *,
        channel: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """A patient-facing action went out: keep the snapshots its labels will be learned from.

        ``channel`` (and the `channel_context` of the account) also keep one for the channel chooser.
        """
        if not self.learning:
            return
        kept = {
            "propensity": on_decision(self.snapshots, account_id, x, at, p=scores.propensity_to_pay),
            "risk": on_decision(self.risk_snapshots, account_id, x, at, p=scores.bad_debt_risk),
            "channel": channel is not None
            and on_decision(
                self.channel_snapshots, account_id, {}, at, meta=self.chooser.meta(channel, context)
            ),
        }
        for name, was_kept in kept.items():
            if was_kept:
                self._queues[name].push(account_id, at)

    def outcome(self, account_id: str, status: str, at: datetime) -> None:
        """A sender's or the platform's report on a message: clicks, replies and conversations reward the
        channels of the account's open messages (`models.channel.REWARD_OUTCOMES`), at the next `tick`."""
        if status in REWARD_OUTCOMES:
            self._wait("channel", on_payment(self.channel_snapshots, account_id, at, window=REWARD_WINDOW))

    def paid(self, account_id: str, at: datetime) -> None:
        """A payment: every open snapshot of the account within its window becomes a positive, learned at
        the next `tick` (the propensity model's when its window closes, `models.labels`' held positives)."""
        self._wait("propensity", on_payment(self.snapshots, account_id, at, hold=True))
        self._wait("risk", on_payment(self.risk_snapshots, account_id, at, window=RISK_WINDOW))
        self._wait("channel", on_payment(self.channel_snapshots, account_id, at, window=REWARD_WINDOW))

    def tick(self, now: datetime) -> None:
        """Stream time reached ``now`` (a day boundary): windows that closed by then become negatives,
        and every waiting label is learned, in an order that does not depend on the order they came in."""
        for name in LEARNERS:
            self._wait(name, self._expire(name, now))
        # Stable: labels of one account, decided at the same time for the same model, keep the order of
        # that account's own records, which every interleaving of partitions preserves.
        waiting = sorted(self.waiting, key=lambda item: (item[1].decided_at, item[1].account_id, item[0]))
        self.waiting = []
        for name, label in waiting:
            self._learn(name, label)
        if self.monitor is not None and any(name != "channel" for name, _ in waiting):
            self.monitor.set_backlog(sum(len(v) for v in self.snapshots.values()))

    def _wait(self, name: Learner, labels: list[Label]) -> None:
        self.waiting.extend((name, label) for label in labels)

    def _stores(self) -> dict[str, tuple[dict[str, Any], timedelta]]:
        """Each model's open snapshots and its label window."""
        return {
            "propensity": (self.snapshots, LABEL_WINDOW),
            "risk": (self.risk_snapshots, RISK_WINDOW),
            "channel": (self.channel_snapshots, REWARD_WINDOW),
        }

    def _index_snapshots(self) -> None:
        """Sweep queues over the snapshot stores as they are (new, or restored from a checkpoint)."""
        self._queues = {name: SweepQueue(store, window) for name, (store, window) in self._stores().items()}

    def _expire(self, name: Learner, now: datetime) -> list[Label]:
        store, window = self._stores()[name]
        return expire(store, now, window=window, accounts=self._queues[name].due(now))

    def _learn(self, name: Learner, label: Label) -> None:
        if name == "propensity":
            self.propensity.learn(label.x, label.y)
            if self.monitor is not None:
                self.monitor.observe(label)
        elif name == "risk":
            self.risk.learn(label.x, paid=label.y)
        else:
            self.chooser.learn(label)

    def checkpoint(self) -> bytes:
        return dumps(
            {
                "propensity": self.propensity,
                "risk": self.risk,
                "chooser": self.chooser,
                "snapshots": self.snapshots,
                "risk_snapshots": self.risk_snapshots,
                "channel_snapshots": self.channel_snapshots,
                "waiting": self.waiting,
            },
            kind=CHECKPOINT_KIND,
        )

    @classmethod
    def restore(cls, blob: bytes | None, *, monitored: bool = True, learning: bool = True) -> ModelSuite:
        """The suite saved in ``blob``, or a cold start with the priors when there is none.

        A checkpoint from before the channel chooser was added restores with a cold chooser.
        """
        if blob is None:
            return cls(monitored=monitored, learning=learning)
        saved = loads(blob, kind=CHECKPOINT_KIND)
        suite = cls(
            saved["propensity"], saved["risk"], saved.get("chooser"), monitored=monitored, learning=learning
        )
        suite.snapshots = saved["snapshots"]
        suite.risk_snapshots = saved["risk_snapshots"]
        suite.channel_snapshots = saved.get("channel_snapshots", {})
        suite.waiting = saved.get("waiting", [])
        suite._index_snapshots()
        return suite
