"""The facts a draft may state, and nothing else.

`DraftFacts` is what the decision core hands to drafting: the action's kind and channel, the patient's
language and the few account facts the words may mention. Templates render from it, prompts are built
from it (after PHI tokenisation), and the guardrails check every drafted text against it: a money amount
that is not one of `DraftFacts.known_amounts` is rejected.

>>> from decimal import Decimal
>>> f = DraftFacts(kind="payment_reminder", channel="sms", language="es-MX", balance=Decimal("450.75"))
>>> f.lang
'es'
>>> sorted(f.known_amounts())
[Decimal('450.75')]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.actions import ActionKind, PlanOption, Settlement

CENT = Decimal("0.01")

KINDS: frozenset[str] = frozenset(get_args(ActionKind)) - {"platform_update"}
"""Action kinds that carry words (``platform_update`` does not)."""

CHANNELS: frozenset[str] = frozenset({"email", "sms", "phone", "letter", "portal"})

LANGUAGES: frozenset[str] = frozenset({"en", "es"})
"""Languages with approved templates and prompts; any other language falls back to English."""

DISCLOSURE_CODES: frozenset[str] = frozenset(
    {"opt_out", "tila_zero_apr", "debt_collector", "validation_notice", "financial_assistance"}
)
"""Disclosure codes drafting knows the approved wording of (see `inference.disclosures`)."""


REPLIES: frozenset[str] = frozenset(
    {
        "balance",
        "insurance",
        "payments",
        "how_to_pay",
        "plan_options",
        "plan_accepted",
        "ask_household",
        "ask_income",
        "screening_result",
        "offer",
        "final_offer",
        "agreed",
        "no_agreement",
        "negotiation_paused",
        "dispute",
        "handoff",
        "cannot_answer",
    }
)
"""What a ``conversation_reply`` does (`rules.conversation`); each has approved words in every language."""

CONVERSATION_FIELDS = (
    "reply",
    "claims",
    "payments",
    "household_size",
    "annual_income",
    "fpl_pct",
    "discount_pct",
    "estimated_discount",
)


class ClaimLine(BaseModel):
    """One adjudicated claim behind the balance (an EOB line): what insurance paid and the patient's share."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payer: str
    service_date: date
    billed: Decimal
    insurance_paid: Decimal
    patient_responsibility: Decimal
    deductible: Decimal = Decimal(0)
    coinsurance: Decimal = Decimal(0)
    copay: Decimal = Decimal(0)
    noncovered: Decimal = Decimal(0)


class PaymentLine(BaseModel):
    """One payment the patient made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Decimal
    on: date


def conversation_fields(features: Mapping[str, Any]) -> dict[str, Any]:
    """The reply facts a conversation candidate carries in ``features["conversation"]``, as `DraftFacts`
    fields (JSON-ready text is parsed back by the model's validation)."""
    carried = features.get("conversation") or {}
    return {name: carried[name] for name in CONVERSATION_FIELDS if carried.get(name) is not None}


def effective_language(tag: str | None) -> str:
    """The template language for a BCP 47 tag: ``es``/``es-MX`` → ``es``; anything else → ``en``.

    >>> effective_language("es-US"), effective_language("fr"), effective_language(None)
    ('es', 'en', 'en')
    """
    primary = (tag or "en").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else "en"


class DraftFacts(BaseModel):
    """Everything a draft may state; nothing else.

    ``patient_name`` and ``account_id`` are PHI: templates may print them, but they are replaced by
    random tokens before any model call (`inference.tokeniser`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    channel: str
    language: str = "en"
    practice_name: str | None = None
    patient_name: str | None = None
    account_id: str | None = None
    balance: Decimal | None = None
    insurance_pending: Decimal | None = None
    last_payment_amount: Decimal | None = None
    last_payment_date: date | None = None
    due_date: date | None = None
    plan_options: tuple[PlanOption, ...] = ()
    settlement: Settlement | None = None
    variance: Decimal | None = None
    disclosures: tuple[str, ...] = ()
    reply: str | None = None
    """Conversation replies only: what the reply does (one of `REPLIES`)."""
    claims: tuple[ClaimLine, ...] = ()
    payments: tuple[PaymentLine, ...] = ()
    household_size: int | None = None
    annual_income: Decimal | None = None
    """Assistance screening: what the patient told us, and what the policy's tiers make of it."""
    fpl_pct: Decimal | None = None
    discount_pct: Decimal | None = None
    estimated_discount: Decimal | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"no drafting for kind {value!r}; expected one of {sorted(KINDS)}")
        return value

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; expected one of {sorted(CHANNELS)}")
        return value

    @field_validator("reply")
    @classmethod
    def _known_reply(cls, value: str | None) -> str | None:
        if value is not None and value not in REPLIES:
            raise ValueError(f"unknown conversation reply {value!r}; expected one of {sorted(REPLIES)}")
        return value

    @field_validator("disclosures")
    @classmethod
    def _known_disclosures(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if code not in DISCLOSURE_CODES]
        if unknown:
            raise ValueError(f"unknown disclosure codes {unknown}; known: {sorted(DISCLOSURE_CODES)}")
        return tuple(dict.fromkeys(value))  # de-duplicated, order kept

    @property
    def lang(self) -> str:
        """The language the words are in: ``en`` or ``es``."""
        return effective_language(self.language)

    def known_amounts(self) -> frozenset[Decimal]:
        """Every money amount a text may state, to the cent.

        The settlement ``floor`` is not among them: it is the engine's limit, not something to tell
        the patient.
        """
        amounts: list[Decimal | None] = [
            self.balance,
            self.insurance_pending,
            self.last_payment_amount,
            self.variance,
        ]
        for option in self.plan_options:
            amounts += [option.monthly_amount, option.total]
        if self.settlement is not None:
            amounts.append(self.settlement.amount)
        for claim in self.claims:
            amounts += [
                claim.billed,
                claim.insurance_paid,
                claim.patient_responsibility,
                claim.deductible,
                claim.coinsurance,
                claim.copay,
                claim.noncovered,
            ]
        amounts += [payment.amount for payment in self.payments]
        amounts += [self.annual_income, self.estimated_discount]
        return frozenset(a.quantize(CENT) for a in amounts if a is not None)

    def known_dates(self) -> frozenset[date]:
        """Every calendar date a text may state."""
        dates: list[date | None] = [self.last_payment_date, self.due_date]
        dates += [option.first_due_date for option in self.plan_options]
        if self.settlement is not None:
            dates.append(self.settlement.valid_until)
        dates += [claim.service_date for claim in self.claims]
        dates += [payment.on for payment in self.payments]
        return frozenset(d for d in dates if d is not None)
