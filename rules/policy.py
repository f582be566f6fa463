"""The decision policy: every threshold, window and switch of POLICY.md, loaded from a versioned YAML file.

Counsel reads and approves the file; code implements the gate kinds and reads their parameters from
here. `load_policy` validates a file with clear errors (file, field path, reason); ``BILLWISE_POLICY``
names another file. Every action and audit record carries ``policy.version``.

>>> policy = load_policy()
>>> policy.quiet_hours.start.hour, policy.quiet_hours.end.hour
(8, 21)
>>> policy.frequency.calls.max_in_window, policy.state_caps["MA"].max_in_window
(7, 2)
>>> str(policy.use_cases.assistance.poverty_line(household_size=4, on=date(2026, 3, 1)))
'33000.00'
"""

from __future__ import annotations

import hashlib
import os
from datetime import date, time
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.common import Channel, TimeZoneName
from schemas.inputs import Role

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.yaml"

Percent = Annotated[Decimal, Field(ge=0, le=1000)]
Amount = Annotated[Decimal, Field(ge=0, decimal_places=2)]
Probability = Annotated[float, Field(ge=0, le=1)]
Trigger = Literal["statement", "account", "payment", "plan", "assistance", "patient", "scan"]
"""What started a decision: an event family (``billing.<family>.*``) or the daily scan."""
StateCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class PolicySection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- scores, actions, scan -----------------------------------------------------------------------


class ScoresPolicy(PolicySection):
    prior_propensity: Probability = Field(
        description="propensity to pay used when no model score is given (documented prior)"
    )
    prior_bad_debt_risk: Probability


class ActionsPolicy(PolicySection):
    expires_after_days: int = Field(ge=1, le=90)


class ScanPolicy(PolicySection):
    timezone: TimeZoneName = Field(description="the zone whose midnight starts a new scan day")
    max_catch_up_days: int = Field(ge=1, le=366)


# -- use cases (POLICY.md section 1) ---------------------------------------------------------------


class StatementMessagePolicy(PolicySection):
    min_balance_due: Amount
    recent_payment_days: int = Field(ge=0, le=365)


class PaymentPlanPolicy(PolicySection):
    triggers: tuple[Trigger, ...]
    min_balance: Amount
    min_age_days: int = Field(ge=0)
    terms_months: tuple[Annotated[int, Field(ge=1, le=120)], ...] = Field(min_length=1)
    min_monthly: Amount
    max_options: int = Field(ge=1, le=6)
    first_due_after_days: int = Field(ge=7, le=30, description="POLICY.md: 7-30 days after decision time")
    tila_disclosure_over_installments: int = Field(ge=1)
    long_term_first_below_propensity: Probability


class CollectionsPolicy(PolicySection):
    triggers: tuple[Trigger, ...]
    min_days_since_statement: int = Field(ge=0)
    reminder_max_balance: Amount
    reminder_min_propensity: Probability
    reminder_channels: tuple[Channel, ...] = Field(min_length=1)
    priority_per: Decimal = Field(gt=0, description="priority = balance x (1 - propensity) x age / this")


class PovertyGuideline(PolicySection):
    year: int
    effective_from: date
    base: Amount = Field(description="poverty line for a household of one (48 contiguous states and DC)")
    per_additional_person: Amount


class DiscountBand(PolicySection):
    up_to_fpl_pct: Percent
    discount_pct: Percent = Field(le=100)


class SlidingTier(PolicySection):
    up_to_fpl_pct: Percent
    from_discount_pct: Percent = Field(le=100)
    to_discount_pct: Percent = Field(le=100)


class AssistancePolicy(PolicySection):
    triggers: tuple[Trigger, ...]
    min_balance: Amount
    min_days_delinquent: int = Field(ge=0)
    skip_statuses: tuple[Literal["invited", "applied", "approved", "denied"], ...]
    guidelines: tuple[PovertyGuideline, ...] = Field(min_length=1)
    free_up_to_fpl_pct: Percent
    sliding: SlidingTier
    state_floors: dict[StateCode, tuple[DiscountBand, ...]] = {}

    @field_validator("guidelines")
    @classmethod
    def _ordered_guidelines(cls, value: tuple[PovertyGuideline, ...]) -> tuple[PovertyGuideline, ...]:
        days = [g.effective_from for g in value]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("guidelines must be listed oldest first, one per effective date")
        return value

    @field_validator("state_floors")
    @classmethod
    def _ordered_bands(
        cls, value: dict[str, tuple[DiscountBand, ...]]
    ) -> dict[str, tuple[DiscountBand, ...]]:
        for state, bands in value.items():
            limits = [band.up_to_fpl_pct for band in bands]
            if limits != sorted(limits):
                raise ValueError(f"state floor {state}: bands must be ordered by up_to_fpl_pct")
        return value

    @model_validator(mode="after")
    def _tiers_ordered(self) -> AssistancePolicy:
        if self.sliding.up_to_fpl_pct <= self.free_up_to_fpl_pct:
            raise ValueError("sliding.up_to_fpl_pct must be above free_up_to_fpl_pct")
        return self

    def guideline(self, on: date) -> PovertyGuideline:
        """The guideline in force on ``on`` (the oldest one before the first effective date)."""
        chosen = self.guidelines[0]
        for guideline in self.guidelines:
            if guideline.effective_from <= on:
                chosen = guideline
        return chosen

    def poverty_line(self, household_size: int, on: date) -> Decimal:
        guideline = self.guideline(on)
        return guideline.base + guideline.per_additional_person * (household_size - 1)


class SettlementPolicy(PolicySection):
    triggers: tuple[Trigger, ...]
    min_age_days: int = Field(ge=0)
    min_balance: Amount
    floor_pct: Percent = Field(gt=0, le=100)
    offer_pct: Percent = Field(gt=0, le=100)
    valid_days: int = Field(ge=1, le=180)

    @model_validator(mode="after")
    def _offer_not_below_floor(self) -> SettlementPolicy:
        if self.offer_pct < self.floor_pct:
            raise ValueError(f"offer_pct {self.offer_pct} is below floor_pct {self.floor_pct}")
        return self


class ShortPayPolicy(PolicySection):
    min_variance: Amount


class BadDebtPolicy(PolicySection):
    triggers: tuple[Trigger, ...]
    min_age_days: int = Field(ge=0)
    max_age_days: int = Field(ge=0)
    max_propensity: Probability

    @model_validator(mode="after")
    def _window(self) -> BadDebtPolicy:
        if self.max_age_days < self.min_age_days:
            raise ValueError("max_age_days must not be below min_age_days")
        return self


class PlanDefaultPolicy(PolicySection):
    reminder_min_missed: int = Field(ge=1)
    staff_task_min_missed: int = Field(ge=1)

    @model_validator(mode="after")
    def _escalation(self) -> PlanDefaultPolicy:
        if self.staff_task_min_missed <= self.reminder_min_missed:
            raise ValueError("staff_task_min_missed must be above reminder_min_missed")
        return self


class UseCasesPolicy(PolicySection):
    statement_message: StatementMessagePolicy
    payment_plan: PaymentPlanPolicy
    collections: CollectionsPolicy
    assistance: AssistancePolicy
    settlement: SettlementPolicy
    short_pay: ShortPayPolicy
    bad_debt: BadDebtPolicy
    plan_default: PlanDefaultPolicy


# -- review (POLICY.md section 2) ----------------------------------------------------------------


class AutomatedLane(PolicySection):
    max_balance: Amount
    min_propensity: Probability
    no_dispute_ever: bool


class ApproverRoles(PolicySection):
    default: tuple[Role, ...] = Field(min_length=1)
    restricted: tuple[Role, ...] = Field(
        min_length=1, description="for balances over the limit and settlements"
    )


class ReviewPolicy(PolicySection):
    always_kinds: tuple[str, ...]
    staff_task_flags: tuple[Literal["deceased", "bankruptcy", "attorney_represented"], ...]
    balance_over: Amount
    ever_disputed: bool
    automated_lane: AutomatedLane
    lane_exempt_kinds: tuple[str, ...]
    third_party_without_validation: bool
    guarantor_confidential: bool
    approver_roles: ApproverRoles
    restricted_kinds: tuple[str, ...]


# -- gates (POLICY.md section 3) -----------------------------------------------------------------


class ChannelsPolicy(PolicySection):
    fallback_order: tuple[Channel, ...] = Field(min_length=1)


class DisputeGate(PolicySection):
    suppress_slots: tuple[str, ...] = Field(description="action kinds (or staff_task:<purpose>) suppressed")
    review_slots: tuple[str, ...]


class OptOutPolicy(PolicySection):
    keywords: tuple[str, ...] = Field(min_length=1)
    ambiguous_phrases: tuple[str, ...]
    emoji_only_is_ambiguous: bool
    channels: tuple[Literal["sms", "email"], ...] = Field(min_length=1)


ZoneSource = Literal["stated", "address_state", "mobile_phone", "home_phone"]


class QuietHours(PolicySection):
    start: time
    end: time
    default_timezone: TimeZoneName = Field(description="zone used when nothing about the patient names one")
    zone_sources: tuple[ZoneSource, ...] = Field(min_length=1)
    exempt_channels: tuple[Channel, ...]
    max_area_code_zones: int = Field(
        ge=1, description="a number whose area code maps to more zones is not geographic (e.g. toll-free)"
    )

    @model_validator(mode="after")
    def _window(self) -> QuietHours:
        if not self.start < self.end:
            raise ValueError(f"quiet_hours.start {self.start} must be before end {self.end}")
        return self


class ChannelCap(PolicySection):
    max_in_window: int = Field(ge=1)


class CallCap(ChannelCap):
    pause_after_conversation_days: int = Field(ge=0, description="the conversation's day is day 1")


class FrequencyPolicy(PolicySection):
    window_days: int = Field(ge=1, le=31, description="calendar days in the patient's zone")
    calls: CallCap
    sms: ChannelCap
    email: ChannelCap
    excluded_outcomes: tuple[str, ...] = Field(
        description="outcomes that never reached anyone, e.g. network failure"
    )


class StateCap(PolicySection):
    max_in_window: int = Field(ge=1)
    window_days: int = Field(ge=1, le=31)
    channels: tuple[Channel, ...] = Field(min_length=1)


# -- conversations (patient messages on the portal or by SMS) --------------------------------------


class NegotiationPolicy(PolicySection):
    max_rounds: int = Field(ge=1, le=10, description="offers the engine makes; the last one is the floor")
    opening_pct: Percent = Field(
        gt=0, le=100, description="the first offer, as a share of the balance; later offers step down"
    )


class ConversationPolicy(PolicySection):
    channels: tuple[Literal["portal", "sms"], ...] = Field(
        min_length=1, description="inbound messages on these channels open or continue a conversation"
    )
    idle_close_hours: int = Field(ge=1, le=24 * 30, description="a quieter conversation starts afresh")
    max_turns: int = Field(ge=2, le=100, description="turns kept for the staff transcript")
    negotiation: NegotiationPolicy


class ThirdPartyPolicy(PolicySection):
    disclosure: str
    validation_disclosure: str


class Policy(PolicySection):
    version: str = Field(min_length=1)
    scores: ScoresPolicy
    actions: ActionsPolicy
    scan: ScanPolicy
    use_cases: UseCasesPolicy
    review: ReviewPolicy
    channels: ChannelsPolicy
    dispute: DisputeGate
    opt_out: OptOutPolicy
    quiet_hours: QuietHours
    frequency: FrequencyPolicy
    state_caps: dict[StateCode, StateCap]
    third_party: ThirdPartyPolicy
    conversations: ConversationPolicy
    collection_slots: tuple[str, ...] = Field(
        description="collection activity (kinds, or staff_task:<purpose>): what bankruptcy stops"
    )

    @model_validator(mode="after")
    def _negotiation_within_settlement(self) -> Policy:
        opening = self.conversations.negotiation.opening_pct
        if opening < self.use_cases.settlement.floor_pct:
            raise ValueError(
                f"conversations.negotiation.opening_pct {opening} is below "
                f"use_cases.settlement.floor_pct {self.use_cases.settlement.floor_pct}"
            )
        return self

    @cached_property
    def fingerprint(self) -> str:
        """A digest of every parameter: two policies with the same fingerprint decide alike."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class PolicyError(ValueError):
    """A policy file that cannot be used, with the file and the offending field named."""


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path``, else in ``$BILLWISE_POLICY``, else the shipped default."""
    chosen = Path(path or os.environ.get("BILLWISE_POLICY") or DEFAULT_POLICY_PATH)
    return _load(chosen.resolve())


def parse_policy(document: object, origin: str = "<policy>") -> Policy:
    """Validate an already-parsed policy document, naming every offending field in one error."""
    if not isinstance(document, dict):
        raise PolicyError(f"policy {origin} must be a mapping at the top level")
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '<top>'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise PolicyError(f"policy {origin} is invalid: {problems}") from None


@cache
def _load(path: Path) -> Policy:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from None
    return parse_policy(document, f"file {path}")
