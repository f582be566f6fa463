"""Consent and channel choice: the preferred channel if permitted, else the next permitted one.

Permissions (POLICY.md section 3, consent gate): SMS needs ``consent.sms`` and a mobile number and no
opt-out since; email needs an address and ``consent.email`` not false and no opt-out since; the portal
needs ``consent.portal``; a letter needs a mailing address the patient has not asked to keep
confidential; a staff call needs a number the patient has not asked us to stop calling.

**Learned fallback order.** POLICY.md: "preferred first, then email, portal, sms, letter". The patient's
stated channel always comes first: when it is permitted (and the use case allows it) it is used, and no
model overrides it. Only when it is not, or the patient stated none, and more than one fallback channel is
permitted, may a `ChannelRanking` (the channel chooser's draw for this decision,
`models.channel.ChannelChooser.rank`) order the fallbacks instead of the policy's fixed order. Without
a ranking (no models, a cold segment, a replay, a reviewer's approval) the policy's order applies
unchanged. The ranking is an input like the scores: choosing stays a pure function of it, and the pick
and its probability go into the action's explanation (`ChannelChoice.learned`).

>>> from rules.policy import load_policy
>>> from rules.state import AccountState
>>> from schemas.events import PatientUpdated
>>> state = AccountState.new("A", "P", "X").model_copy(update={"patient": PatientUpdated(
...     account_id="A", patient_id="P", practice_id="X", email="p@example.org", mobile_phone="+12125550123",
...     preferred_channel="sms", consent={"sms": False, "portal": True})})
>>> choose_channel(state, (), load_policy())
ChannelChoice(channel='email', status='fallback', learned=None)
>>> choose_channel(state, ("portal", "sms"), load_policy()).channel
'portal'
>>> posteriors = {"portal": (30.0, 10.0), "email": (10.0, 30.0)}  # portal answered 3 in 4, email 1 in 4
>>> order = ("portal", "sms", "email", "letter")  # this decision's draw
>>> ranking = ChannelRanking(posteriors, "sms|small", given_order=order)
>>> choice = choose_channel(state, (), load_policy(), ranking)
>>> choice.channel, choice.status, choice.learned["probability"]
('portal', 'fallback', 1.0)
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np

from rules.policy import Policy
from rules.state import AccountState

ChannelStatus = Literal["preferred", "fallback", "none"]
PROBABILITY_DRAWS = 200
"""Draws behind a probability estimate (standard error at most 0.035)."""


@dataclass(frozen=True)
class ChannelRanking:
    """One decision's channel ranking from the channel chooser: a Thompson draw, and what it was drawn
    from.

    ``order`` ranks the channels best first for this decision: one Beta sample per channel of
    ``posteriors`` (the (alpha, beta) reward posteriors, in their order), from a generator seeded by
    ``seed`` and ``key`` (the decision's account and trigger), so the same decision always draws the
    same order. It is drawn on first use: most decisions never choose among fallback channels, and the
    draw was a fifth of the cost of scoring an account. ``given_order`` fixes the order instead (an
    example, a test). `probability` estimates how likely a channel was to come first, with its own
    seeded draws: the same ranking always gives the same estimate.
    """

    posteriors: Mapping[str, tuple[float, float]]
    segment: str
    seed: int = 0
    key: str = ""
    given_order: tuple[str, ...] | None = None

    @cached_property
    def order(self) -> tuple[str, ...]:
        if self.given_order is not None:
            return self.given_order
        rng = random.Random(f"{self.seed}|{self.key}")
        samples = {channel: rng.betavariate(a, b) for channel, (a, b) in self.posteriors.items()}
        return tuple(sorted(samples, key=samples.__getitem__, reverse=True))

    def first(self, candidates: Sequence[str]) -> str:
        """The best of ``candidates`` in this ranking (a channel it does not know comes last)."""
        return next((c for c in self.order if c in candidates), candidates[0])

    def probability(self, channel: str, candidates: Sequence[str]) -> float:
        """The share of `PROBABILITY_DRAWS` Thompson draws among ``candidates`` that ``channel`` wins."""
        arms = tuple(dict.fromkeys(candidates))
        params = tuple(self.posteriors.get(c, (1.0, 1.0)) for c in arms)
        shares = _win_shares(self.seed, self.segment, arms, params)
        return shares[arms.index(channel)] if channel in arms else 0.0


@lru_cache(maxsize=1024)
def _win_shares(
    seed: int, segment: str, arms: tuple[str, ...], params: tuple[tuple[float, float], ...]
) -> tuple[float, ...]:
    """How often each arm wins a Thompson draw (seeded: the same inputs, the same estimate). Cached, as
    a batch decides each event twice (templates, then drafts) and a segment's posteriors change only
    when it learns. The draws are numpy's, all at once: about 60 µs for three arms, where drawing them
    one by one with `random` took about 1 ms."""
    key = f"{seed}|{segment}|{','.join(arms)}".encode()
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    alphas, betas = zip(*params, strict=True)
    samples = rng.beta(alphas, betas, size=(PROBABILITY_DRAWS, len(arms)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(arms))
    return tuple(float(w) / PROBABILITY_DRAWS for w in wins)


class ChannelChoice(NamedTuple):
    channel: str | None
    status: ChannelStatus
    learned: Mapping[str, Any] | None = None
    """When the chooser ordered the fallbacks: its pick, the probability of that pick among the
    permitted fallbacks, the candidates, what the policy's order would have picked, the segment."""


def callable_numbers(state: AccountState) -> list[str]:
    patient = state.patient
    if patient is None or state.calls_revoked_at is not None:
        return []
    numbers = [patient.mobile_phone, patient.home_phone]
    return [n for n in numbers if n and n not in state.blocked_numbers]


def permitted(state: AccountState, channel: str) -> bool:
    """Whether ``channel`` may reach the patient now."""
    patient = state.patient
    if patient is None:
        return False
    consent = patient.consent
    if channel == "sms":
        return bool(patient.mobile_phone and consent.sms is True and state.sms_revoked_at is None)
    if channel == "email":
        return bool(patient.email and consent.email is not False and state.email_revoked_at is None)
    if channel == "portal":
        return consent.portal is True
    if channel == "letter":
        return bool(patient.address and patient.address.line and not patient.flags.confidential_address)
    if channel == "phone":
        return bool(callable_numbers(state))
    return False


def choose_channel(
    state: AccountState, allowed: Sequence[str], policy: Policy, ranking: ChannelRanking | None = None
) -> ChannelChoice:
    """The channel to use among ``allowed`` (empty: any), and whether it is the first choice.

    ``ranking`` orders the permitted fallback channels (module docstring); ``status`` always follows the
    policy's order ("fallback": the first choice is not permitted), whoever ordered the fallbacks.
    """
    preferred = state.patient.preferred_channel if state.patient else None
    order: list[str] = [c for c in dict.fromkeys([preferred, *policy.channels.fallback_order]) if c]
    if allowed:
        order = [c for c in order if c in allowed] + [c for c in allowed if c not in order]
    usable = [c for c in order if permitted(state, c)]
    if not usable:
        return ChannelChoice(None, "none")
    status: ChannelStatus = "preferred" if usable[0] == order[0] else "fallback"
    if ranking is None or usable[0] == preferred or len(usable) == 1:
        return ChannelChoice(usable[0], status)
    channel = ranking.first(usable)
    learned = {
        "by": "channel_chooser",
        "channel": channel,
        "probability": round(ranking.probability(channel, usable), 3),
        "candidates": usable,
        "policy_order": usable[0],
        "segment": ranking.segment,
    }
    return ChannelChoice(channel, status, learned)
