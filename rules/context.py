"""What one decision knows besides the state: the time, the scores, the channel ranking, the patient's
zones, the contacts.

Built once per decision (`Context.build`) and refreshed when the decision plans a new contact
(`Context.with_state`), so the second candidate of an event sees the first one's planned contact.

>>> from datetime import datetime, UTC
>>> from rules.policy import load_policy
>>> from rules.state import AccountState
>>> ctx = Context.build(AccountState.new("A", "P", "X"), load_policy(), datetime(2026, 3, 16, tzinfo=UTC))
>>> ctx.scoring.propensity, ctx.scoring.source, ctx.zones
(0.5, 'prior', ('America/New_York',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TypedDict, Unpack

from inference.drafting import DraftOutcome
from rules.channels import ChannelRanking
from rules.engine import DEFAULT_BACKEND, Backend, Engines, engines_for
from rules.frequency import Ledger
from rules.policy import Policy
from rules.schedule import local_day
from rules.state import AccountState, ContactFact
from rules.zones import candidate_zones, reference_zone
from schemas.actions import Scores


@dataclass(frozen=True)
class Scoring:
    """The scores a decision uses: the model's when given, else the policy's documented priors."""

    propensity: float
    bad_debt_risk: float
    model_version: str | None
    source: str

    @classmethod
    def of(cls, scores: Scores | None, policy: Policy) -> Scoring:
        prior = policy.scores
        if scores is None:
            return cls(prior.prior_propensity, prior.prior_bad_debt_risk, None, "prior")
        return cls(
            scores.propensity_to_pay if scores.propensity_to_pay is not None else prior.prior_propensity,
            scores.bad_debt_risk if scores.bad_debt_risk is not None else prior.prior_bad_debt_risk,
            scores.model_version,
            "model" if scores.propensity_to_pay is not None else "prior",
        )

    def as_scores(self) -> Scores:
        return Scores(
            propensity_to_pay=self.propensity,
            bad_debt_risk=self.bad_debt_risk,
            model_version=self.model_version,
        )


class DecisionInputs(TypedDict, total=False):
    """What a decision may be given besides the state, its input and the policy; all of it optional.

    `rules.decide.decide`, `rules.decide.daily_scan`, `rules.review.review_decision` and `Session` take
    these as keyword arguments and hand them on to `Context.build`.
    """

    scores: Scores | None
    """The models' scores for the account (absent: the policy's documented priors)."""
    person_contacts: Sequence[ContactFact]
    """Contacts with the same person on their other accounts, when the caller keeps them (the frequency
    caps count per person)."""
    backend: Backend
    """The rules engine that evaluates the compiled rulesets (`rules.engine`)."""
    drafts: Mapping[str, DraftOutcome] | None
    """Model drafts by action id (absent: approved templates)."""
    channel_ranking: ChannelRanking | None
    """The channel chooser's ranking for this decision (absent: the policy's fallback order)."""


@dataclass(frozen=True)
class Context:
    state: AccountState
    policy: Policy
    now: datetime
    scoring: Scoring
    zones: tuple[str, ...]
    reference: str
    ledger: Ledger
    engines: Engines
    person_contacts: tuple[ContactFact, ...] = ()
    drafts: Mapping[str, DraftOutcome] = field(default_factory=dict)
    """Model drafts by action id (see `rules.outputs.Decision.draft_requests`); absent: templates."""
    channel_ranking: ChannelRanking | None = None
    """The channel chooser's ranking for this decision (`rules.channels`); absent: the policy's order."""

    @classmethod
    def build(
        cls, state: AccountState, policy: Policy, now: datetime, **given: Unpack[DecisionInputs]
    ) -> Context:
        reference = reference_zone(state.patient, policy)
        others = tuple(given.get("person_contacts", ()))
        return cls(
            state=state,
            policy=policy,
            now=now,
            scoring=Scoring.of(given.get("scores"), policy),
            zones=candidate_zones(state.patient, policy),
            reference=reference,
            ledger=Ledger.build([*state.contacts, *others], reference, policy),
            engines=engines_for(policy, given.get("backend", DEFAULT_BACKEND)),
            person_contacts=others,
            drafts=given.get("drafts") or {},
            channel_ranking=given.get("channel_ranking"),
        )

    def with_state(self, state: AccountState) -> Context:
        """The same decision over a newer state (contacts planned meanwhile count from now on)."""
        ledger = Ledger.build([*state.contacts, *self.person_contacts], self.reference, self.policy)
        return replace(self, state=state, ledger=ledger)

    @property
    def today(self) -> date:
        """The decision's calendar day in the scan zone: account ages are counted from it."""
        return local_day(self.now, self.policy.scan.timezone)
