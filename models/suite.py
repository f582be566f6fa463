"""The models one worker keeps, and how the stream feeds them: scores in, delayed labels back.

`ModelSuite` scores an account before a decision (propensity to pay and bad-debt risk, from
`models.features`), keeps the decision-time feature snapshot when a patient-facing action goes out,
learns a positive when the account pays within the label window and a negative when the window closes
(`models.labels`), and reports rolling quality to Prometheus (`models.monitoring`). Each worker learns
from its own partitions' accounts (the brief's option B: models on different workers drift apart a
little; a single trainer topic is the next step if that matters).

Online learning makes a worker's decisions depend on the order in which its partitions' labels
arrived, which no offline run reproduces. ``learning=False`` keeps the models as they are (their
checkpoint, or the priors): the stream and ``billwise decide`` then decide identically, which is what
replays and the fault tests compare.

`checkpoint` and `ModelSuite.restore` save and load the learned models (`models.store`: versioned, tied
to the River version), so a restarted worker resumes where it was; a cold start uses the documented
priors of `models.propensity` and `models.risk`.

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

from datetime import datetime
from typing import Any

from models.features import features
from models.labels import Label, expire, on_decision, on_payment
from models.monitoring import ModelMonitor
from models.propensity import PropensityModel
from models.risk import RISK_WINDOW, RiskModel
from models.store import dumps, loads
from rules.state import AccountState
from schemas.actions import Scores

CHECKPOINT_KIND = "model-suite"


class ModelSuite:
    def __init__(
        self,
        propensity: PropensityModel | None = None,
        risk: RiskModel | None = None,
        *,
        monitored: bool = True,
        learning: bool = True,
    ) -> None:
        self.learning = learning
        self.propensity = propensity or PropensityModel()
        self.risk = risk or RiskModel()
        self.snapshots: dict[str, Any] = {}
        self.risk_snapshots: dict[str, Any] = {}
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

    def decided(self, account_id: str, x: dict[str, float], scores: Scores, at: datetime) -> None:
        """A patient-facing action went out: keep the snapshot its label will be learned from."""
        if not self.learning:
            return
        on_decision(self.snapshots, account_id, x, at, p=scores.propensity_to_pay)
        on_decision(self.risk_snapshots, account_id, x, at, p=scores.bad_debt_risk)

    def paid(self, account_id: str, at: datetime) -> None:
        """A payment: every open snapshot of the account within its window becomes a positive (the
        propensity model's when the window closes, `models.labels`' held positives)."""
        self._learn(
            on_payment(self.snapshots, account_id, at, hold=True),
            on_payment(self.risk_snapshots, account_id, at, window=RISK_WINDOW),
        )

    def tick(self, now: datetime) -> None:
        """Windows that closed by ``now`` become negatives (called as stream time advances)."""
        self._learn(expire(self.snapshots, now), expire(self.risk_snapshots, now, window=RISK_WINDOW))

    def _learn(self, labels: list[Label], risk_labels: list[Label]) -> None:
        for label in labels:
            self.propensity.learn(label.x, label.y)
            if self.monitor is not None:
                self.monitor.observe(label)
        for label in risk_labels:
            self.risk.learn(label.x, paid=label.y)
        if self.monitor is not None and (labels or risk_labels):
            self.monitor.set_backlog(sum(len(v) for v in self.snapshots.values()))

    def checkpoint(self) -> bytes:
        return dumps(
            {
                "propensity": self.propensity,
                "risk": self.risk,
                "snapshots": self.snapshots,
                "risk_snapshots": self.risk_snapshots,
            },
            kind=CHECKPOINT_KIND,
        )

    @classmethod
    def restore(cls, blob: bytes | None, *, monitored: bool = True, learning: bool = True) -> ModelSuite:
        """The suite saved in ``blob``, or a cold start with the priors when there is none."""
        if blob is None:
            return cls(monitored=monitored, learning=learning)
        saved = loads(blob, kind=CHECKPOINT_KIND)
        suite = cls(saved["propensity"], saved["risk"], monitored=monitored, learning=learning)
        suite.snapshots = saved["snapshots"]
        suite.risk_snapshots = saved["risk_snapshots"]
        return suite
