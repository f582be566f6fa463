"""Channel choice: which permitted channel to use for an account, learned from what patients answer.

The compliance gates decide which channels are *permitted* (consent, quiet hours, frequency); this
module ranks them. POLICY.md's consent gate reads "preferred first, then email, portal, sms, letter": the
patient's stated channel is always used when it is permitted, and the chooser only orders the fallback
channels, in place of the policy's fixed order (`rules.channels.choose_channel`). The decision core never
calls this model: the worker draws a `rules.channels.ChannelRanking` for the decision (`rank`) and passes
it in, next to the scores, so a decision stays a pure function of its inputs.

It is Thompson sampling with a Beta-Bernoulli reward per channel (River's ``proba.Beta`` posteriors),
one set per segment of accounts, so a patient who asked for texts and one who asked for letters do not
share one ranking. Segments use the stated channel preference and the balance band only: no protected
attribute, and not language (a proxy for national origin).

**Deterministic draws.** The draw for a decision is seeded by the decision's key (account and trigger),
not taken from a running random stream (``river.bandit.ThompsonSampling.pull`` is one): the same event
decided twice over the same posteriors ranks the channels the same way, so a redelivered or replayed
event yields byte-identical actions. Different accounts and triggers still get independent draws, which
is all Thompson sampling needs to explore.

**Cold start.** Until a segment has learned ``min_evidence`` outcomes, `rank` returns ``None`` and the
policy's fixed order stands: a new deployment behaves exactly as the policy reads, and gathers evidence
on it (mostly on the first fallback channel) before it starts to explore.

The reward is 1 when the patient acts on the message (clicks its link, replies, talks to staff: the
`REWARD_OUTCOMES`) or pays within `REWARD_WINDOW` of it, else 0. Opens do not count: only e-mail
reports them (a text or a letter never does), so rewarding opens would favour e-mail for being
measurable rather than for being answered. It is delayed like any label: keep a snapshot at send time with
`models.labels.on_decision(store, account_id, {}, at, meta=chooser.meta(channel, context))`, turn
outcomes into labels with ``on_payment(store, account_id, at, window=REWARD_WINDOW)`` (a payment or an
engagement outcome on ``billing.outcomes`` / ``communication.logged``) and ``expire(..., window=...)``,
and feed each label to `ChannelChooser.learn` (`models.suite.ModelSuite` does all of this).

`ChannelRanking.probability` estimates how likely the chosen channel was to be drawn among the channels
that competed, for the action's explanation and off-policy evaluation later.

>>> chooser = ChannelChooser(seed=1)
>>> context = {"preferred_channel": "letter", "balance": 120.0}
>>> chooser.rank(context, "ACC-1|evt-1") is None  # no evidence yet: the policy's order
True
>>> for n in range(300):  # texts are answered 60% of the time, e-mails 10%
...     chooser.reward("sms", context, n % 10 < 6)
...     chooser.reward("email", context, n % 10 == 0)
>>> ranking = chooser.rank(context, "ACC-1|evt-1")
>>> ranking.first(["email", "sms"]), ranking.probability("sms", ["email", "sms"])
('sms', 1.0)
>>> ranking == chooser.rank(context, "ACC-1|evt-1")  # the same decision draws the same ranking
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from river import proba

from models.labels import Label
from rules.channels import ChannelRanking

__all__ = ["CHANNELS", "REWARD_OUTCOMES", "REWARD_WINDOW", "ChannelChooser"]

CHANNELS = ("sms", "email", "portal", "letter", "phone")
REWARD_WINDOW = timedelta(days=14)
"""An answer or a payment within two weeks of the message is credited to the channel."""
REWARD_OUTCOMES = frozenset({"clicked", "replied", "conversation"})
"""Outcomes (``communication.logged`` / ``billing.action.outcome``) that every channel can report."""
MIN_EVIDENCE = 50
"""Outcomes a segment must have learned before the chooser orders its fallback channels."""
_SMALL_BALANCE = 500.0
"""Cedar's 'convenience' (small) versus 'affordability' (large) tracks; also POLICY's digital lane."""


class ChannelChooser:
    """Per-segment Thompson sampling over the channels, drawn deterministically per decision."""

    def __init__(self, *, seed: int = 0, min_evidence: int = MIN_EVIDENCE) -> None:
        self.seed = seed
        self.min_evidence = min_evidence
        self._posteriors: dict[str, dict[str, proba.Beta]] = {}
        self._evidence: dict[str, int] = {}

    @staticmethod
    def segment(context: Mapping[str, Any] | None) -> str:
        """The segment of an account: stated preference and balance band, e.g. ``"sms|small"``."""
        context = context or {}
        preferred = context.get("preferred_channel") or "none"
        band = "small" if float(context.get("balance") or 0.0) <= _SMALL_BALANCE else "large"
        return f"{preferred}|{band}"

    def _params(self, segment: str) -> dict[str, tuple[float, float]]:
        """Beta (alpha, beta) of every channel; Beta(1, 1) where nothing was learned."""
        arms = self._posteriors.get(segment, {})
        return {c: (arms[c].alpha, arms[c].beta) if c in arms else (1.0, 1.0) for c in CHANNELS}

    def _ranking(self, segment: str, key: str) -> ChannelRanking:
        return ChannelRanking(posteriors=self._params(segment), segment=segment, seed=self.seed, key=key)

    def rank(self, context: Mapping[str, Any] | None, key: str) -> ChannelRanking | None:
        """This decision's ranking of the channels (``key``: its account and trigger), or ``None`` while
        the segment has fewer than ``min_evidence`` outcomes (the policy's order then applies)."""
        segment = self.segment(context)
        if self._evidence.get(segment, 0) < self.min_evidence:
            return None
        return self._ranking(segment, key)

    def probabilities(
        self, permitted: Sequence[str], context: Mapping[str, Any] | None = None
    ) -> dict[str, float]:
        """Each permitted channel's chance of being drawn first among ``permitted`` now (for dashboards)."""
        segment = self.segment(context)
        ranking = self._ranking(segment, key=f"segment|{segment}")  # seeded by the segment: stable
        arms = list(dict.fromkeys(permitted))
        return {arm: ranking.probability(arm, arms) for arm in arms}

    def reward(self, channel: str, context: Mapping[str, Any] | None, reward: bool | float) -> None:
        """Credit ``channel`` in the account's segment with an outcome (1 = engaged or paid)."""
        self._update(self.segment(context), channel, bool(reward))

    def _update(self, segment: str, channel: str, reward: bool) -> None:
        arms = self._posteriors.setdefault(segment, {})
        arms.setdefault(channel, proba.Beta()).update(reward)
        self._evidence[segment] = self._evidence.get(segment, 0) + 1

    def meta(self, channel: str, context: Mapping[str, Any] | None) -> dict[str, Any]:
        """What to keep in the snapshot at send time, so that `learn` can credit the right arm later."""
        return {"channel": channel, "segment": self.segment(context)}

    def learn(self, label: Label) -> None:
        """Credit the channel recorded in a delayed label's snapshot (see `meta`)."""
        channel = label.meta.get("channel")
        segment = label.meta.get("segment")
        if channel and segment:
            self._update(segment, channel, bool(label.y))

    def ranking(self, context: Mapping[str, Any] | None = None) -> list[str]:
        """The channels a segment has learned about, best to worst posterior mean (for dashboards)."""
        arms = self._posteriors.get(self.segment(context), {})
        return sorted(
            arms, key=lambda arm: arms[arm].alpha / (arms[arm].alpha + arms[arm].beta), reverse=True
        )
