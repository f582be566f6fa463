"""Patient conversations (billing questions, assistance screening, negotiation) as a declared state machine.

An inbound ``billing.communication.logged`` with ``text`` on a conversation channel (the policy's
``conversations.channels``: portal and SMS) opens the account's conversation or continues it. The
conversation's state (`rules.state.ConversationState`) lives inside `AccountState`, so it is kept in the
worker's Faust table and replays offline exactly like every other fact; the rules engine holds nothing
between events.

**The machine.** `read_intent` reads the patient's words (English and Spanish keywords, numbers and
amounts); one fact (step, intent, whether a number was given, dispute, eligibility) is asserted into the
compiled ``conversation`` ruleset (durable-rules, like the gates), and the first transition in
`TRANSITIONS` order whose rule fired is taken. Steps: ``qa`` (answering), ``plan_offered``,
``ask_household``, ``ask_income``, ``negotiating`` and ``closed``. Three flows:

* *billing Q&A* answers from the account's facts only: the balance (with any insurance still pending and
  the last payment), the EOB lines behind it (billed, insurance paid, deductible, coinsurance, copay,
  not covered), the payments made, how to pay, the plan options (a chosen option becomes a
  ``create_payment_plan`` write-back). Anything else becomes a ``staff_task`` carrying the transcript;
* *assistance screening* asks household size, then yearly income, computes FPL % and the discount with
  the policy's tiers (`rules.assistance.screen`, state floors included) and hands the pre-filled
  application to staff as an ``assistance_invite``, which is always reviewed. What the patient says
  stays in the conversation and the application: the account's assistance facts change only when the
  platform reports them (``billing.assistance.updated``);
* *negotiation*, only when the account meets the policy's settlement thresholds (the ``UC-SETTLEMENT``
  rule; otherwise the patient is offered the plan options): the engine makes at most
  ``negotiation.max_rounds`` offers, from ``opening_pct`` of the balance down in even steps to the
  settlement floor (`rules.offers.settlement_offer`), never below it. A patient's amount at or above the
  current offer is agreed at the offer; one between the next offer and the current one is agreed as
  proposed; below the floor after the last round ends without agreement (a staff task). An agreement is
  a ``settlement_offer`` held for review (restricted approvers), recorded as the account's
  `SettlementAgreement`; once approved and paid, the rest of the balance is written off on the platform
  (``post_adjustment``).

At any step: an opt-out (``STOP`` ...) ends the conversation without a reply (SMS consent is revoked by
`rules.decide`); an unclear reply ends it (staff read it, `rules.routes.reply_review_task`); asking for a
person, or saying the bill is wrong, hands the conversation to staff. A dispute opened while negotiating
ends the negotiation; while one is open, settlement talk is refused.

**Replies** are ``conversation_reply`` candidates on the channel the patient used and go through every
gate like any action (quiet hours, opt-out, cease, attorney, dispute review, consent, frequency ...):
a reply the gates stop is audited, not sent. Replies share one slot, so a new message supersedes a
reply still waiting (for the morning, or for review) with the answer to the latest one. SMS replies
count towards the SMS frequency cap like any text (a long SMS conversation is delayed by it; the
portal has no cap). Conversation replies are exempt from the automated-lane review rule in the default
policy (the patient asked; every other review rule still holds them). Words come from the model with
the approved template as fallback; the model sees the reply's facts only (`inference.facts.DraftFacts`),
never the patient's message, so nothing the patient wrote reaches a prompt.

**Write-backs** (`platform_update`, CONTRACT.md) go to ``billing.actions`` for the platform connector,
without gates (they record facts in the practice's own system, they contact nobody): an ``add_note`` for
every conversation turn (the patient's words and the reply) and for every outreach a sender reports
(`outreach_note`), ``create_payment_plan`` for an accepted plan, ``post_adjustment`` for a paid,
approved settlement. Their ``channel`` is ``portal`` (the practice system) and their ids are
deterministic per event and operation, so a redelivered event repeats the same write-back id.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal

from rules.assistance import screen
from rules.candidate import Candidate
from rules.compiler import CompiledRuleset, Expr, RuleSpec, all_of, any_of, eq, one_of
from rules.context import Context
from rules.engine import Backend, RulesEngine
from rules.offers import plan_options, settlement_offer
from rules.optout import classify
from rules.session import Session
from rules.state import ConversationState, SettlementAgreement, Turn, bounded
from rules.usecases import Cause, usecase_facts
from schemas.actions import (
    Action,
    Explanation,
    PlatformUpdate,
    RuleOutcome,
    Settlement,
    Trigger,
    action_id_for,
)
from schemas.events import CommunicationLogged, DisputeUpdated, PaymentPosted

Operation = Literal["add_note", "create_payment_plan", "update_payment_plan", "post_adjustment"]
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
TURN_TEXT_MAX = 1000
"""Characters of one turn kept for the transcript."""
PAYMENTS_SHOWN = 5

Intent = Literal[
    "stop",
    "unclear",
    "human",
    "dispute",
    "assistance",
    "negotiate",
    "plan",
    "how_to_pay",
    "insurance",
    "payments",
    "balance",
    "accept",
    "other",
]

# Phrases per intent ("|"-separated), casefolded and without accents, matched as whole words; English, then
# Spanish. The order is the precedence: "a person about my insurance" asks for a person, "a plan for my
# payments" asks about a plan.
_PHRASE_TEXT: tuple[tuple[Intent, str], ...] = (
    (
        "human",
        "person|human|agent|representative|someone|somebody|speak to|talk to|call me|"
        "persona|humano|agente|representante|alguien|hablar con|llamenme",
    ),
    (
        "dispute",
        "dispute|not mine|not my bill|wrong amount|incorrect|error|mistake|overcharged|never received|"
        "disputa|disputo|no es mio|no es mia|incorrecto|equivocado|equivocacion|cobro indebido",
    ),
    (
        "assistance",
        "assistance|financial help|charity|afford|help paying|hardship|low income|"
        "asistencia|ayuda financiera|ayuda para pagar|no puedo pagar|caridad|bajos ingresos",
    ),
    (
        "negotiate",
        "settle|settlement|lower|reduce|less|discount|deal|offer|lump sum|pay off|"
        "liquidar|liquidacion|acuerdo|rebaja|rebajar|descuento|menos|oferta|reducir",
    ),
    ("plan", "plan|installment|installments|monthly|cuotas|mensual|mensualidades"),
    (
        "how_to_pay",
        "how do i pay|how can i pay|how to pay|where do i pay|pay online|make a payment|pay my bill|"
        "como pago|como puedo pagar|donde pago|pagar en linea|hacer un pago",
    ),
    (
        "insurance",
        "insurance|insurer|deductible|coinsurance|copay|co pay|eob|explanation of benefits|covered|claim|"
        "seguro|aseguradora|deducible|coaseguro|copago|cubre|cubierto|reclamo",
    ),
    ("payments", "payment|payments|paid|pago|pagos|pague|pagado"),
    ("balance", "balance|owe|how much|amount due|bill|statement|saldo|debo|cuanto|adeudo|factura"),
)
_PHRASES = tuple((intent, tuple(text.split("|"))) for intent, text in _PHRASE_TEXT)
_ACCEPT = (
    "yes",
    "yeah",
    "yep",
    "ok",
    "okay",
    "agree",
    "accept",
    "si",
    "acepto",
    "de acuerdo",
    "esta bien",
    "vale",
)
_ACCEPT_MAX_WORDS = 5
"""A longer message that happens to contain "ok" is not an acceptance."""

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10,
}  # fmt: skip
_AMOUNT_RE = re.compile(
    r"(?<![\w.,])\$?\s?(\d{1,3}(?:,\d{3}){0,3}|\d{1,12})(?!\d|,\d)(?:\.(\d{1,2}))?\s?(k\b)?", re.IGNORECASE
)
"""A number of at most twelve digits (longer runs of digits are not amounts: account or phone numbers)."""
_WORDS_RE = re.compile(r"[^\w]+", re.UNICODE)


def _plain(text: str) -> str:
    """Casefolded words without accents or punctuation: "¿Cuánto debo?" → "cuanto debo"."""
    folded = "".join(
        c for c in unicodedata.normalize("NFD", text.casefold()) if unicodedata.category(c) != "Mn"
    )
    return " ".join(_WORDS_RE.split(folded)).strip()


def _has(plain: str, phrases: tuple[str, ...]) -> bool:
    padded = f" {plain} "
    return any(f" {phrase} " in padded for phrase in phrases)


def read_number(text: str) -> Decimal | None:
    """The first number or amount in ``text`` ("$1,250.50", "42k", "four"), else None.

    >>> [read_number(t) for t in ["I can pay $1,250.50", "42k a year", "we are four", "hello"]]
    [Decimal('1250.50'), Decimal('42000'), Decimal('4'), None]
    """
    match = _AMOUNT_RE.search(text)
    if match:
        try:
            value = Decimal(
                match.group(1).replace(",", "") + (f".{match.group(2)}" if match.group(2) else "")
            )
        except InvalidOperation:  # pragma: no cover - the pattern admits digits only
            return None
        return value * 1000 if match.group(3) else value
    for word in _plain(text).split():
        if word in _NUMBER_WORDS:
            return Decimal(_NUMBER_WORDS[word])
    return None


def read_intent(text: str, policy: Any) -> Intent:
    """What the patient's words ask for; opt-out words first (`rules.optout.classify`).

    >>> from rules.policy import load_policy
    >>> p = load_policy()
    >>> [read_intent(t, p) for t in ["STOP", "¿Cuánto debo?", "Can I talk to a person about my insurance?",
    ...                              "What did my insurance pay?", "Can I settle for $800?", "yes",
    ...                              "Necesito ayuda financiera", "Where is the parking?"]]
    ['stop', 'balance', 'human', 'insurance', 'negotiate', 'accept', 'assistance', 'other']
    """
    reading = classify(text, policy)
    if reading == "revoke":
        return "stop"
    if reading == "ambiguous":
        return "unclear"
    plain = _plain(text)
    if len(plain.split()) <= _ACCEPT_MAX_WORDS and _has(plain, _ACCEPT):
        return "accept"
    for intent, phrases in _PHRASES:
        if _has(plain, phrases):
            return intent
    return "other"


# -- the declared machine -------------------------------------------------------------------------------

STEPS = ("qa", "plan_offered", "ask_household", "ask_income", "negotiating", "closed")

MACHINE_FACTS: dict[str, type] = {
    "step": str,
    "intent": str,
    "has_number": bool,
    "dispute_open": bool,
    "settlement_ok": bool,
    "has_plans": bool,
}

_screening = one_of("step", ("ask_household", "ask_income"))
_TRANSITIONS: tuple[tuple[str, Expr, str], ...] = (
    # (rule, condition, the step it leads to; "same" keeps the step)
    ("C-STOP", eq("intent", "stop"), "closed"),
    ("C-UNCLEAR", eq("intent", "unclear"), "closed"),
    ("C-HUMAN", eq("intent", "human"), "closed"),
    ("C-DISPUTE", eq("intent", "dispute"), "closed"),
    ("C-HOUSEHOLD", all_of(eq("step", "ask_household"), eq("has_number", True)), "ask_income"),
    ("C-INCOME", all_of(eq("step", "ask_income"), eq("has_number", True)), "closed"),
    ("C-REASK", _screening, "same"),
    (
        "C-PAUSED",
        all_of(any_of(eq("step", "negotiating"), eq("intent", "negotiate")), eq("dispute_open", True)),
        "closed",
    ),
    (
        "C-COUNTER",
        all_of(eq("step", "negotiating"), any_of(eq("has_number", True), eq("intent", "accept"))),
        "negotiating",
    ),
    (
        "C-PLAN-CHOICE",
        all_of(eq("step", "plan_offered"), any_of(eq("has_number", True), eq("intent", "accept"))),
        "qa",
    ),
    ("C-ASSISTANCE", eq("intent", "assistance"), "ask_household"),
    ("C-NEGOTIATE", all_of(eq("intent", "negotiate"), eq("settlement_ok", True)), "negotiating"),
    (
        "C-PLANS",
        all_of(one_of("intent", ("negotiate", "plan")), eq("has_plans", True)),
        "plan_offered",
    ),
    ("C-HOW-TO-PAY", one_of("intent", ("negotiate", "plan", "how_to_pay")), "qa"),
    ("C-INSURANCE", eq("intent", "insurance"), "qa"),
    ("C-PAYMENTS", eq("intent", "payments"), "qa"),
    ("C-BALANCE", eq("intent", "balance"), "qa"),
    ("C-OTHER", {"$neq": {"intent": ""}}, "qa"),
)
"""Every transition, in precedence order: the first whose rule fires is taken (C-OTHER always fires)."""


def compile_machine() -> CompiledRuleset:
    """The conversation's transitions as a durable-rules ruleset (one fact per inbound message)."""
    rules = tuple(RuleSpec(name, name, target, condition) for name, condition, target in _TRANSITIONS)
    return CompiledRuleset("conversation", rules, tuple(r.name for r in rules), MACHINE_FACTS)


@cache
def machine(backend: Backend) -> RulesEngine:
    """The compiled machine on ``backend``, built once per process."""
    return RulesEngine(compile_machine(), backend)


def transition(facts: dict[str, Any], backend: Backend) -> RuleSpec:
    """The transition the machine takes for one fact.

    >>> t = transition({"step": "ask_household", "intent": "other", "has_number": True,
    ...                 "dispute_open": False, "settlement_ok": False, "has_plans": True}, "python")
    >>> t.name, t.outcome
    ('C-HOUSEHOLD', 'ask_income')
    """
    engine = machine(backend)
    fired = engine.fired(facts)
    return next(spec for spec in engine.compiled.rules if spec.name in fired)


# -- one turn ---------------------------------------------------------------------------------------------


@dataclass
class Move:
    """What one transition does: the reply, the next step, and what else it asks for."""

    reply: str | None
    step: str
    closed_reason: str | None = None
    staff: str | None = None
    """A staff task's purpose: the conversation goes to a person with its transcript."""
    facts: dict[str, Any] = field(default_factory=dict)
    plan_options: tuple[Any, ...] = ()
    settlement: Settlement | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    extra: list[Candidate] = field(default_factory=list)
    plan: Any = None
    """An accepted plan option (a ``create_payment_plan`` write-back)."""
    detail: str = ""


def converse(session: Session, data: CommunicationLogged) -> None:
    """Take one inbound message through the machine: reply, staff tasks, write-backs, new state."""
    policy = session.ctx.policy.conversations
    if data.direction != "inbound" or data.channel not in policy.channels or not (data.text or "").strip():
        return
    text = (data.text or "").strip()
    state = session.state
    conv = state.conversation
    if (
        conv is None
        or not conv.is_open
        or session.now - conv.last_at > timedelta(hours=policy.idle_close_hours)
    ):
        conv = ConversationState(
            conversation_id=data.communication_id,
            channel=data.channel,
            language=state.patient.language if state.patient else "en",
            step="qa",
            started_at=session.now,
            last_at=session.now,
        )
    conv = _with_turn(conv, Turn(at=data.at, by="patient", text=text[:TURN_TEXT_MAX]), policy.max_turns)
    intent = read_intent(text, session.ctx.policy)
    number = read_number(text)
    ctx = session.ctx
    facts = {
        "step": conv.step,
        "intent": intent,
        "has_number": number is not None,
        "dispute_open": bool(state.open_disputes),
        "settlement_ok": settlement_allowed(ctx),
        "has_plans": bool(_plans(ctx)),
    }
    spec = transition(facts, ctx.engines.usecases.backend)
    move = _MOVES[spec.name](spec, conv, ctx, number)
    step = conv.step if move.step == "same" else move.step
    conv = conv.model_copy(
        update={"step": step, "last_at": session.now, "closed_reason": move.closed_reason, **move.updates}
    )
    session.audit(
        "decision",
        effect="conversation_turn",
        conversation_id=conv.conversation_id,
        rule=spec.name,
        intent=intent,
        step=step,
        reply=move.reply,
    )
    rule = RuleOutcome(id=spec.name, outcome=step, detail=move.detail or f"intent {intent}")
    conv = _with_turn(conv, _reply(session, conv, data, move, rule), policy.max_turns)
    session.update(conversation=conv)
    if move.staff:
        session.consider(_staff_task(conv, move.staff, data.communication_id, rule))
    for candidate in move.extra:
        _consider_extra(session, candidate, conv)
    if move.plan is not None:
        write_back(session, "create_payment_plan", _plan_payload(move.plan, conv))
    write_back(session, "add_note", _turn_note(conv, data))


def _with_turn(conv: ConversationState, turn: Turn, limit: int) -> ConversationState:
    return conv.model_copy(update={"turns": bounded([*conv.turns, turn], limit)})


def _reply(
    session: Session, conv: ConversationState, data: CommunicationLogged, move: Move, rule: RuleOutcome
) -> Turn:
    """Put the reply through the gates; the engine's turn: the words released or held, or why none."""
    if move.reply is None:
        return Turn(at=session.now, by="engine", text=f"(no reply: {rule.id})")
    candidate = Candidate(
        kind="conversation_reply",
        purpose="conversation",
        priority=1.0,
        rules=(rule,),
        plan_options=tuple(move.plan_options),
        settlement=move.settlement,
        balance=session.state.balance,
        channels=(conv.channel,),
        features={"conversation": {"id": conv.conversation_id, "reply": move.reply, **move.facts}},
        detail=data.communication_id,
    )
    session.consider(candidate)
    action_id = action_id_for(session.state.account_id, session.cause.event_id, candidate.slot)
    action = next(
        (o.value for o in session.outputs if isinstance(o.value, Action) and o.value.action_id == action_id),
        None,
    )
    if action is None or action.message is None:
        record = session.state.slots.get(candidate.slot)
        gate = record.gate if record is not None and record.action_id == action_id else None
        return Turn(at=session.now, by="engine", text=f"(no reply: stopped by {gate or 'a gate'})")
    return Turn(at=session.now, by="engine", text=action.message.body[:TURN_TEXT_MAX], action_id=action_id)


def _staff_task(conv: ConversationState, reason: str, communication_id: str, rule: RuleOutcome) -> Candidate:
    """A person takes the conversation over: the task carries the whole transcript kept."""
    lines = [f"{t.at:%Y-%m-%d %H:%M} {t.by}: {t.text}" for t in conv.turns]
    note = (
        f"Patient conversation {conv.conversation_id} on {conv.channel} needs a person "
        f"({reason.replace('_', ' ')}). Reply to the patient on the same channel.\nTranscript:\n"
        + "\n".join(lines)
    )
    return Candidate(
        kind="staff_task",
        purpose="conversation",
        audience="staff",
        priority=1.0,
        rules=(rule,),
        note=note,
        tags=("conversation", reason),
        detail=communication_id,
    )


def _consider_extra(session: Session, candidate: Candidate, conv: ConversationState) -> None:
    """A settlement agreement or an assistance application; an agreement is recorded once it is held."""
    session.consider(candidate)
    if candidate.kind != "settlement_offer" or candidate.settlement is None:
        return
    action_id = action_id_for(session.state.account_id, session.cause.event_id, candidate.slot)
    record = session.state.slots.get(candidate.slot)
    if record is not None and record.action_id == action_id and record.state == "held":
        session.update(
            settlement_agreement=SettlementAgreement(
                action_id=action_id,
                amount=candidate.settlement.amount,
                balance=session.state.balance,
                agreed_at=session.now,
            )
        )


# -- the moves ----------------------------------------------------------------------------------------------


def settlement_allowed(ctx: Context) -> bool:
    """Whether the account meets the policy's settlement thresholds (the ``UC-SETTLEMENT`` rule)."""
    trigger = ctx.policy.use_cases.settlement.triggers[0]
    fired = ctx.engines.usecases.fired(usecase_facts(Cause(trigger, "", ""), ctx))
    return any(ctx.engines.usecases.compiled.spec(name).gate == "UC-SETTLEMENT" for name in fired)


def _plans(ctx: Context) -> tuple[Any, ...]:
    return plan_options(ctx.state.balance, ctx.now, ctx.scoring.propensity, ctx.policy)


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount.quantize(CENT))


def offers(balance: Decimal, ctx: Context) -> tuple[Settlement, ...]:
    """The engine's offers in order: ``opening_pct`` of the balance stepping down to the floor.

    >>> from datetime import datetime, UTC
    >>> from rules.policy import load_policy
    >>> from rules.state import AccountState
    >>> ctx = Context.build(AccountState.new("A", "P", "X"), load_policy(), datetime(2026, 3, 16, tzinfo=UTC))
    >>> [str(s.amount) for s in offers(Decimal("1250.00"), ctx)]   # 90 %, 80 %, 70 % (the floor)
    ['1125.00', '1000.00', '875.00']
    """
    terms = ctx.policy.conversations.negotiation
    base = settlement_offer(balance, ctx.now, ctx.policy)
    opening = max(base.floor, (balance * terms.opening_pct / HUNDRED).quantize(CENT, rounding=ROUND_CEILING))
    n = terms.max_rounds
    amounts = [
        base.floor
        if n == 1
        else (base.floor + (opening - base.floor) * (n - k) / (n - 1)).quantize(CENT, rounding=ROUND_CEILING)
        for k in range(1, n + 1)
    ]
    return tuple(base.model_copy(update={"amount": max(a, base.floor)}) for a in amounts)


def _balance_facts(ctx: Context) -> dict[str, Any]:
    state = ctx.state
    return {
        "claims": [
            {
                "payer": c.payer,
                "service_date": c.service_date.isoformat(),
                "billed": _money(c.billed),
                "insurance_paid": _money(c.insurance_paid),
                "patient_responsibility": _money(c.patient_responsibility),
                "deductible": _money(c.deductible),
                "coinsurance": _money(c.coinsurance),
                "copay": _money(c.copay),
                "noncovered": _money(c.noncovered),
            }
            for c in state.claims
        ],
        "payments": [
            {"amount": _money(p.amount), "on": p.at.date().isoformat()}
            for p in bounded(state.payments, PAYMENTS_SHOWN)
        ],
    }


MoveFn = Callable[[RuleSpec, ConversationState, Context, Decimal | None], Move]


def _closing(reply: str | None, reason: str, staff: bool = False) -> MoveFn:
    def move(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
        return Move(reply, "closed", closed_reason=reason, staff=reason if staff else None)

    return move


def _unclear(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    """An unclear reply ("wrong number"): no answer; a person reads it (on opt-out channels the opt-out
    review task of `rules.decide` already asks for that)."""
    routed = conv.channel in ctx.policy.opt_out.channels
    return Move(None, "closed", closed_reason="unclear_reply", staff=None if routed else "unclear_reply")


def _answer(reply: str, staff: str | None = None) -> MoveFn:
    def move(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
        return Move(reply, spec.outcome, staff=staff, facts=_balance_facts(ctx))

    return move


def _household(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    assert number is not None
    size = int(number)
    if size != number or not 1 <= size <= 50:
        return Move("ask_household", "same", detail=f"not a household size: {number}")
    return Move("ask_income", spec.outcome, updates={"household_size": size})


def _income(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    assert number is not None and conv.household_size is not None
    state = ctx.state
    address = state.patient.address if state.patient else None
    screening = screen(
        conv.household_size,
        number.quantize(CENT),
        address.state if address else None,
        state.balance,
        ctx.today,
        ctx.policy,
    )
    invite = Candidate(
        kind="assistance_invite",
        purpose="assistance",
        priority=1.0,
        rules=(
            RuleOutcome(id="C-INCOME", outcome="application", detail=f"screened in {conv.conversation_id}"),
        ),
        disclosures=("financial_assistance",),
        features={"screening": screening.features(), "source": "conversation"},
        balance=state.balance,
        detail=conv.conversation_id,
    )
    facts = {
        "household_size": screening.household_size,
        "annual_income": _money(screening.annual_income),
        "fpl_pct": str(screening.fpl_pct),
        "discount_pct": str(screening.discount_pct),
        "estimated_discount": _money(screening.estimated_discount),
    }
    return Move(
        "screening_result",
        spec.outcome,
        closed_reason="screened",
        facts=facts,
        updates={"annual_income": number.quantize(CENT)},
        extra=[invite],
        detail=f"FPL {screening.fpl_pct} %, discount {screening.discount_pct} % ({screening.basis})",
    )


def _reask(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    return Move(conv.step, "same")


def _assistance(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    return Move("ask_household", spec.outcome, updates={"household_size": None, "annual_income": None})


def _plan_offer(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    options = _plans(ctx)
    return Move(
        "plan_options",
        "plan_offered",
        plan_options=options,
        updates={"plan_terms": [o.term_months for o in options]},
    )


def _plan_choice(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    """The option the patient chose: its number in the list, a number of months, or "yes" to a single one."""
    terms = conv.plan_terms
    term: int | None = None
    months = "month" in _plain(conv.turns[-1].text) or " mes" in f" {_plain(conv.turns[-1].text)}"
    if number is None:
        term = terms[0] if len(terms) == 1 else None
    elif months and int(number) in terms:
        term = int(number)
    elif number == int(number) and 1 <= number <= len(terms):
        term = terms[int(number) - 1]
    chosen = next((o for o in _plans(ctx) if o.term_months == term), None)
    if chosen is None:
        return _plan_offer(spec, conv, ctx, number)  # not one of the options: show them again
    return Move("plan_accepted", spec.outcome, plan_options=(chosen,), plan=chosen, detail=f"{term} months")


def _open_negotiation(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    return _negotiate(spec, conv.model_copy(update={"rounds": 0, "last_offer": None}), ctx, number)


def _negotiate(spec: RuleSpec, conv: ConversationState, ctx: Context, number: Decimal | None) -> Move:
    """One negotiation turn: agree, counter with the next offer, or end at the floor."""
    balance = ctx.state.balance
    ladder = offers(balance, ctx)
    current = conv.last_offer if conv.rounds and conv.last_offer is not None else balance
    proposed = number.quantize(CENT) if number is not None else None
    agreed: Decimal | None = None
    if proposed is None and conv.rounds:
        agreed = current  # "yes" to the offer on the table
    elif proposed is not None and proposed >= current:
        agreed = current
    if agreed is None and conv.rounds >= len(ladder):
        return Move(
            "no_agreement",
            "closed",
            closed_reason="no_agreement",
            staff="negotiation_no_agreement",
            detail=f"{proposed} below the floor {ladder[-1].floor} after {conv.rounds} offers",
        )
    following = ladder[conv.rounds] if agreed is None else None
    if following is not None and proposed is not None and proposed >= following.amount:
        agreed = proposed
    if agreed is not None and agreed < balance:
        terms = ladder[-1].model_copy(update={"amount": agreed})
        settlement = Candidate(
            kind="settlement_offer",
            purpose="settlement",
            priority=1.0,
            rules=(RuleOutcome(id="C-AGREED", outcome="review", detail=f"agreed in {conv.conversation_id}"),),
            settlement=terms,
            balance=balance,
            features={"agreed_in_conversation": conv.conversation_id},
            detail=conv.conversation_id,
        )
        return Move(
            "agreed",
            "closed",
            closed_reason="agreed",
            settlement=terms,
            updates={"agreed": agreed},
            extra=[settlement],
            detail=f"agreed {agreed} (floor {terms.floor})",
        )
    if agreed is not None:  # the whole balance: nothing to negotiate
        return Move("how_to_pay", "qa", facts=_balance_facts(ctx))
    assert following is not None
    last = conv.rounds + 1 == len(ladder)
    return Move(
        "final_offer" if last else "offer",
        "negotiating",
        settlement=following,
        updates={"rounds": conv.rounds + 1, "last_offer": following.amount},
        detail=f"offer {conv.rounds + 1} of {len(ladder)}: {following.amount} (floor {following.floor})",
    )


_MOVES: dict[str, MoveFn] = {
    "C-STOP": _closing(None, "opt_out"),
    "C-UNCLEAR": _unclear,
    "C-HUMAN": _closing("handoff", "asked_for_person", staff=True),
    "C-DISPUTE": _closing("dispute", "dispute_claimed", staff=True),
    "C-HOUSEHOLD": _household,
    "C-INCOME": _income,
    "C-REASK": _reask,
    "C-PAUSED": _closing("negotiation_paused", "dispute_open"),
    "C-COUNTER": _negotiate,
    "C-PLAN-CHOICE": _plan_choice,
    "C-ASSISTANCE": _assistance,
    "C-NEGOTIATE": _open_negotiation,
    "C-PLANS": _plan_offer,
    "C-HOW-TO-PAY": _answer("how_to_pay"),
    "C-INSURANCE": _answer("insurance"),
    "C-PAYMENTS": _answer("payments"),
    "C-BALANCE": _answer("balance"),
    "C-OTHER": _answer("cannot_answer", staff="cannot_answer"),
}


# -- events besides messages ---------------------------------------------------------------------------


def on_dispute(session: Session, data: DisputeUpdated) -> None:
    """A dispute opened while negotiating ends the negotiation (the held agreement is stopped by the
    dispute gate when open actions are re-checked)."""
    conv = session.state.conversation
    if data.status != "opened" or conv is None or conv.step != "negotiating":
        return
    session.update(conversation=conv.model_copy(update={"step": "closed", "closed_reason": "dispute_open"}))
    session.audit(
        "decision",
        effect="conversation_closed",
        conversation_id=conv.conversation_id,
        gate="G-DISPUTE",
        dispute_id=data.dispute_id,
    )


def on_payment(session: Session, data: PaymentPosted) -> None:
    """An approved settlement paid in full: write the rest of the agreed balance off on the platform."""
    agreement = session.state.settlement_agreement
    if agreement is None or agreement.adjusted:
        return
    record = session.state.slots.get("settlement_offer")
    if record is None or record.action_id != agreement.action_id or record.state != "released":
        return  # not approved (yet), or stopped
    paid = sum((p.amount for p in session.state.payments if p.at >= agreement.agreed_at), Decimal(0))
    if paid < agreement.amount:
        return
    write_back(
        session,
        "post_adjustment",
        {
            "amount": _money(agreement.balance - paid),
            "currency": "USD",
            "reason": "settlement",
            "settlement_action_id": agreement.action_id,
            "settlement_amount": _money(agreement.amount),
            "balance_at_agreement": _money(agreement.balance),
            "paid": _money(paid),
        },
    )
    session.update(settlement_agreement=agreement.model_copy(update={"adjusted": True}))


def outreach_note(session: Session, data: CommunicationLogged) -> None:
    """The activity-log note of an outreach a sender reports (an outbound log naming an engine action)."""
    if data.direction != "outbound" or data.action_id is None:
        return
    # The decision history names the action's kind while the account remembers it.
    what = next(
        (h.kind for h in reversed(session.state.history) if h.action_id == data.action_id and h.kind),
        "message",
    ).replace("_", " ")
    write_back(
        session,
        "add_note",
        {
            "title": f"Billwise {what} by {data.channel} ({data.outcome})",
            "text": f"Billwise {what} sent by {data.channel}: {data.outcome}.",
            "at": data.at.isoformat(),
            "channel": data.channel,
            "direction": "outbound",
            "source_action_id": data.action_id,
            "communication_id": data.communication_id,
        },
    )


# -- write-backs -------------------------------------------------------------------------------------


def _turn_note(conv: ConversationState, data: CommunicationLogged) -> dict[str, Any]:
    patient, reply = conv.turns[-2], conv.turns[-1]
    return {
        "title": f"Billwise conversation {conv.conversation_id} ({conv.channel})",
        "text": f"Patient: {patient.text}\nBillwise: {reply.text}",
        "at": data.at.isoformat(),
        "channel": conv.channel,
        "direction": "inbound",
        "conversation_id": conv.conversation_id,
        "communication_id": data.communication_id,
        "reply_action_id": reply.action_id,
        "step": conv.step,
    }


def _plan_payload(option: Any, conv: ConversationState) -> dict[str, Any]:
    return {
        "plan_id": f"bw-{conv.conversation_id}-{option.term_months}m",
        "monthly_amount": _money(option.monthly_amount),
        "term_months": option.term_months,
        "first_due_date": option.first_due_date.isoformat(),
        "total": _money(option.total),
        "currency": "USD",
        "interest_rate": "0.00",
        "conversation_id": conv.conversation_id,
    }


def write_back(session: Session, operation: Operation, payload: dict[str, Any]) -> None:
    """A ``platform_update`` for the platform connector, released at once (no patient is contacted)."""
    state, now = session.state, session.now
    action_id = action_id_for(state.account_id, session.cause.event_id, f"platform_update:{operation}")
    action = Action(
        action_id=action_id,
        account_id=state.account_id,
        patient_id=state.patient_id,
        practice_id=state.practice_id,
        kind="platform_update",
        channel="portal",
        created_at=now,
        not_before=now,
        expires_at=now + timedelta(days=session.ctx.policy.actions.expires_after_days),
        priority=0.0,
        explanation=Explanation(
            policy_version=session.ctx.policy.version,
            rules=[RuleOutcome(id="W-PLATFORM", outcome="release", detail=operation)],
        ),
        trigger=Trigger(event_id=session.cause.event_id, type=session.cause.event_type),
        tags=["write_back"],
        platform_update=PlatformUpdate(operation=operation, payload=payload),
    )
    session.audit("decision", action_id=action_id, kind="platform_update", operation=operation)
    session.emit("actions", action)
    session.note(action_id, "platform_update", "released", [])


__all__ = [
    "STEPS",
    "compile_machine",
    "converse",
    "offers",
    "on_dispute",
    "on_payment",
    "outreach_note",
    "read_intent",
    "read_number",
    "settlement_allowed",
    "transition",
    "write_back",
]
