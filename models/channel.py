"""Channel choice: which permitted channel to use for an account, learned from what patients answer.

The compliance gates decide which channels are *permitted* (consent, quiet hours, frequency); this
module picks among them. It is Thompson sampling with a Beta-Bernoulli reward per channel
(``river.bandit.ThompsonSampling``), one bandit per segment of accounts, so a patient who asked for
texts and one who asked for letters do not share one ranking. Segments use the stated channel
preference and the balance band only: no protected attribute, and not language (a proxy for national
origin).

The reward is 1 when the patient acts on the message (clicks its link, replies, talks to staff: the
`REWARD_OUTCOMES`) or pays within `REWARD_WINDOW` of it, else 0. Opens do not count: only e-mail
reports them (a text or a letter never does), so rewarding opens would favour e-mail for being
measurable rather than for being answered. It is delayed like any label: keep a snapshot at send time with
`models.labels.on_decision(store, account_id, {}, at, meta=chooser.meta(channel, context))`, turn
outcomes into labels with ``on_payment(store, account_id, at, window=REWARD_WINDOW)`` (a payment or an
engagement outcome on ``billing.outcomes`` / ``communication.logged``) and ``expire(..., window=...)``,
and feed each label to `ChannelChooser.learn`.

Thompson sampling explores by itself: a channel with little evidence keeps a wide posterior and is
still tried now and then; a clearly worse channel is tried less and less. `probabilities` estimates
how likely each channel was to be chosen, for the audit record and off-policy evaluation later.

>>> chooser = ChannelChooser(seed=1)
>>> context = {"preferred_channel": "sms", "balance": 120.0}
>>> for _ in range(300):  # texts are answered 60% of the time, letters 10%
...     for channel, rate in (("sms", 0.6), ("letter", 0.1)):
...         chooser.reward(channel, context, rate > 0.5 or _ % 10 == 0)
>>> chooser.choose(["sms", "letter"], context)
'sms'
>>> chooser.choose(["letter"], context)  # a single permitted channel is simply used
'letter'
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from river import bandit, proba

from models.labels import Label

__all__ = ["CHANNELS", "REWARD_OUTCOMES", "REWARD_WINDOW", "ChannelChooser"]

CHANNELS = ("sms", "email", "portal", "letter", "phone")
REWARD_WINDOW = timedelta(days=14)
"""An answer or a payment within two weeks of the message is credited to the channel."""
REWARD_OUTCOMES = frozenset({"clicked", "replied", "conversation"})
"""Outcomes (``communication.logged`` / ``billing.action.outcome``) that every channel can report."""
_SMALL_BALANCE = 500.0
"""Cedar's 'convenience' (small) versus 'affordability' (large) tracks; also POLICY's digital lane."""


class ChannelChooser:
    """Per-segment Thompson sampling among the permitted channels."""

    def __init__(self, *, seed: int = 0, burn_in: int = 0) -> None:
        self.seed = seed
        self.burn_in = burn_in
        self._bandits: dict[str, Any] = {}

    @staticmethod
    def segment(context: Mapping[str, Any] | None) -> str:
        """The segment of an account: stated preference and balance band, e.g. ``"sms|small"``."""
        context = context or {}
        preferred = context.get("preferred_channel") or "none"
        band = "small" if float(context.get("balance") or 0.0) <= _SMALL_BALANCE else "large"
        return f"{preferred}|{band}"

    def _bandit(self, segment: str) -> Any:
        policy = self._bandits.get(segment)
        if policy is None:
            # A stable per-segment seed (crc32, not hash(): hash() changes between processes).
            seed = (self.seed * 1_000_003 + zlib.crc32(segment.encode())) % 2**32
            policy = self._bandits[segment] = bandit.ThompsonSampling(
                reward_obj=proba.Beta(), burn_in=self.burn_in, seed=seed
            )
        return policy

    def choose(self, permitted: Sequence[str], context: Mapping[str, Any] | None = None) -> str:
        """One of ``permitted`` (in the gates' order of preference); raises if none is permitted."""
        arms = list(dict.fromkeys(permitted))
        if not arms:
            raise ValueError("no permitted channel: the gates should have made this a staff task")
        if len(arms) == 1:
            return arms[0]
        return str(self._bandit(self.segment(context)).pull(arms))

    def probabilities(
        self, permitted: Sequence[str], context: Mapping[str, Any] | None = None, draws: int = 200
    ) -> dict[str, float]:
        """Monte Carlo estimate of each channel's chance of being chosen now (for audit and replay).

        It samples the posteriors directly, so it does not disturb the bandit's own random stream.
        """
        arms = list(dict.fromkeys(permitted))
        if len(arms) <= 1:
            return dict.fromkeys(arms, 1.0)
        params = self._posteriors(self.segment(context), arms)
        rng = random.Random(self.seed)  # its own stream: estimating must not change the next choice
        wins = dict.fromkeys(arms, 0)
        for _ in range(draws):
            samples = {arm: rng.betavariate(*params[arm]) for arm in arms}
            wins[max(arms, key=samples.__getitem__)] += 1
        return {arm: wins[arm] / draws for arm in arms}

    def _posteriors(self, segment: str, arms: Sequence[str]) -> dict[str, tuple[float, float]]:
        """Beta (alpha, beta) of each arm; River keeps them in ``_rewards`` (0.26.1), Beta(1, 1) if unseen."""
        rewards = self._bandit(segment)._rewards
        return {
            arm: (rewards[arm].alpha, rewards[arm].beta) if arm in rewards else (1.0, 1.0) for arm in arms
        }

    def reward(self, channel: str, context: Mapping[str, Any] | None, reward: bool | float) -> None:
        """Credit ``channel`` in the account's segment with an outcome (1 = engaged or paid)."""
        self._bandit(self.segment(context)).update(channel, bool(reward))

    def meta(self, channel: str, context: Mapping[str, Any] | None) -> dict[str, Any]:
        """What to keep in the snapshot at send time, so that `learn` can credit the right arm later."""
        return {"channel": channel, "segment": self.segment(context)}

    def learn(self, label: Label) -> None:
        """Credit the channel recorded in a delayed label's snapshot (see `meta`)."""
        channel = label.meta.get("channel")
        segment = label.meta.get("segment")
        if channel and segment:
            self._bandit(segment).update(channel, bool(label.y))

    def ranking(self, context: Mapping[str, Any] | None = None) -> list[str]:
        """Channels of a segment from best to worst posterior mean (for dashboards and tests)."""
        segment = self.segment(context)
        params = self._posteriors(segment, list(self._bandit(segment)._rewards))
        return sorted(params, key=lambda arm: params[arm][0] / sum(params[arm]), reverse=True)
