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
>>> draws = (("portal", "email"), ("email", "portal"), ("portal", "sms"))  # further draws, to price it
>>> ranking = ChannelRanking(order=("portal", "sms", "email", "letter"), draws=draws, segment="sms|small")
>>> choice = choose_channel(state, (), load_policy(), ranking)
>>> choice.channel, choice.status, choice.learned["probability"]
('portal', 'fallback', 0.667)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from rules.policy import Policy
from rules.state import AccountState

ChannelStatus = Literal["preferred", "fallback", "none"]


@dataclass(frozen=True)
class ChannelRanking:
    """One decision's channel ranking from the channel chooser: a Thompson draw, and draws to price it.

    ``order`` ranks the channels best first for this decision; ``draws`` are further draws from the same
    posteriors, from which `probability` estimates how likely a channel was to come first.
    """

    order: tuple[str, ...]
    draws: tuple[tuple[str, ...], ...]
    segment: str

    def first(self, candidates: Sequence[str]) -> str:
        """The best of ``candidates`` in this ranking (a channel it does not know comes last)."""
        return _first(self.order, candidates)

    def probability(self, channel: str, candidates: Sequence[str]) -> float:
        """The share of the draws in which ``channel`` comes first among ``candidates``."""
        if not self.draws:
            return 1.0 if self.first(candidates) == channel else 0.0
        return sum(1 for draw in self.draws if _first(draw, candidates) == channel) / len(self.draws)


def _first(order: Sequence[str], candidates: Sequence[str]) -> str:
    return next((c for c in order if c in candidates), candidates[0])


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
