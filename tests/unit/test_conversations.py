"""Patient conversations through the decision core: the scripted transcripts of tests/fixtures/conversations.

Each script sets up one account (patient, an adjudicated claim, a payment, the balance) and then plays the
patient's messages. Expected amounts are computed from the script's own events and the policy, never
copied from the engine's output.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inference.client import ChatResult
from inference.drafting import Drafter
from inference.formatting import money
from inference.prompts import CONTEXT_MARKER, INSTRUCTION_MARKER
from rules.assistance import screen
from rules.context import Context
from rules.conversation import offers, read_intent, read_number, transition
from rules.examples import Account
from rules.policy import Policy, PolicyError, load_policy, parse_policy
from rules.state import AccountState
from schemas.actions import Action
from schemas.events import parse_event
from streams.cli import app
from streams.offline import decide_lines

SCRIPTS = Path("tests/fixtures/conversations")
CENT = Decimal("0.01")
POLICY = load_policy()


def _replies_skip_the_lane() -> Policy:
    """A practice's policy that lets replies in a conversation the patient started skip the automated-lane
    rule (POLICY.md section 2 holds every communication beyond a statement message outside the lane;
    every other review rule still applies)."""
    document = POLICY.model_dump(mode="json")
    document["review"]["lane_exempt_kinds"].append("conversation_reply")
    return parse_policy(document)


REPLIES_SKIP_THE_LANE = _replies_skip_the_lane()


def _events(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SCRIPTS / name).read_text(encoding="utf-8").splitlines()]


def _fact(events: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    return next(e["data"] for e in events if e["type"] == event_type)


def _balance(events: list[dict[str, Any]]) -> Decimal:
    return Decimal(_fact(events, "billing.account.updated")["balance"])


def _run(name: str, policy: Policy = POLICY) -> tuple[Account, dict[str, list[Action]]]:
    """The script through the decision core; every action by the id of the event that caused it."""
    acct = Account(policy)
    by_event: dict[str, list[Action]] = {}
    for raw in _events(name):
        step = acct.send(parse_event(raw))
        by_event[raw["id"]] = step.actions
    return acct, by_event


def _messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events if e["type"] == "billing.communication.logged"]


def _reply(actions: list[Action]) -> Action:
    [reply] = [a for a in actions if a.kind == "conversation_reply"]
    return reply


def _writebacks(actions: list[Action], operation: str) -> list[Action]:
    return [a for a in actions if a.platform_update is not None and a.platform_update.operation == operation]


def _up(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_CEILING)


# -- the machine's parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("STOP", "stop"),
        ("wrong number", "unclear"),
        ("I'd like to speak to a person about my insurance", "human"),
        ("This charge is a mistake", "dispute"),
        ("Necesito ayuda financiera", "assistance"),
        ("Can I settle for less?", "negotiate"),
        ("¿Puedo pagar en cuotas?", "plan"),
        ("How do I pay online?", "how_to_pay"),
        ("¿Cuánto pagó mi seguro?", "insurance"),
        ("Did you get my payment?", "payments"),
        ("¿Cuánto debo?", "balance"),
        ("Sí", "accept"),
        ("Where do I park?", "other"),
    ],
)
def test_intents_in_english_and_spanish(text: str, intent: str) -> None:
    assert read_intent(text, POLICY) == intent


def test_numbers_and_amounts_are_read_as_decimals() -> None:
    assert read_number("I can pay $1,234.56 today") == Decimal("1234.56")
    assert read_number("somos cuatro") == Decimal(4)
    assert read_number("52k") == Decimal(52000)
    assert read_number("no idea") is None


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_the_declared_machine_takes_the_first_transition_that_fires(backend: str) -> None:
    base = {"has_number": False, "dispute_open": False, "settlement_ok": True, "has_plans": True}
    assert transition({**base, "step": "negotiating", "intent": "stop"}, backend).name == "C-STOP"  # type: ignore[arg-type]
    paused = {**base, "step": "negotiating", "intent": "other", "has_number": True, "dispute_open": True}
    assert transition(paused, backend).name == "C-PAUSED"  # type: ignore[arg-type]
    no_settlement = {**base, "step": "qa", "intent": "negotiate", "settlement_ok": False}
    assert transition(no_settlement, backend).outcome == "plan_offered"  # type: ignore[arg-type]
    assert transition({**base, "step": "qa", "intent": "other"}, backend).name == "C-OTHER"  # type: ignore[arg-type]


@pytest.mark.parametrize("rounds", [1, 2, 3, 5])
@pytest.mark.parametrize("balance", ["1000.00", "1234.57", "9999.99"])
def test_offers_step_down_to_the_floor_and_never_below(rounds: int, balance: str) -> None:
    document = POLICY.model_dump(mode="json")
    document["conversations"]["negotiation"]["max_rounds"] = rounds
    policy = parse_policy(document)
    now = datetime.fromisoformat("2026-03-16T18:00:00+00:00")
    ctx = Context.build(AccountState.new("A", "P", "X"), policy, now)
    amount = Decimal(balance)
    floor = _up(amount * policy.use_cases.settlement.floor_pct / 100)
    ladder = [s.amount for s in offers(amount, ctx)]
    assert len(ladder) == rounds and ladder[-1] == floor
    assert ladder == sorted(ladder, reverse=True) and all(a >= floor for a in ladder)
    if rounds > 1:
        assert ladder[0] == _up(amount * policy.conversations.negotiation.opening_pct / 100)


def test_the_policy_refuses_an_opening_below_the_settlement_floor() -> None:
    document = POLICY.model_dump(mode="json")
    document["conversations"]["negotiation"]["opening_pct"] = "60"
    with pytest.raises(PolicyError, match="opening_pct"):
        parse_policy(document)


# -- the scripted conversations ------------------------------------------------------------------------


def test_billing_questions_are_answered_from_the_accounts_facts() -> None:
    events = _events("qa.en.jsonl")
    acct, by_event = _run("qa.en.jsonl")
    balance, claim = _balance(events), _fact(events, "billing.claim.adjudicated")
    paid = Decimal(_fact(events, "billing.payment.posted")["amount"])
    ask_balance, ask_insurance, ask_payments, ask_parking = _messages(events)

    answer = _reply(by_event[ask_balance])
    # The default policy holds a reply outside the automated lane for review, like any communication
    # beyond a statement message; a practice can let replies skip the lane.
    assert answer.review.required and answer.review.reasons == ["R-REVIEW-LANE"]
    _, skipping = _run("qa.en.jsonl", REPLIES_SKIP_THE_LANE)
    assert _reply(skipping[ask_balance]).review.required is False
    assert answer.channel == "portal"
    assert money(balance) in answer.message.body and money(paid) in answer.message.body  # type: ignore[union-attr]
    eob = _reply(by_event[ask_insurance]).message.body  # type: ignore[union-attr]
    for part in ("billed", "insurance_paid", "patient_responsibility"):
        assert money(Decimal(claim[part])) in eob
    for part in ("deductible", "coinsurance", "copay"):
        assert money(Decimal(claim["breakdown"][part])) in eob
    assert money(paid) in _reply(by_event[ask_payments]).message.body  # type: ignore[union-attr]

    # The question it cannot answer goes to staff with the transcript.
    [task] = [a for a in by_event[ask_parking] if a.kind == "staff_task"]
    assert "cannot_answer" in task.tags and "Where can I park" in task.message.body  # type: ignore[union-attr]
    assert "Hi, what is my balance?" in task.message.body  # type: ignore[union-attr]
    # Every turn is written back as an activity-log note.
    for message in _messages(events):
        [note] = _writebacks(by_event[message], "add_note")
        assert note.platform_update.payload["communication_id"] == f"MSG-{message}"  # type: ignore[union-attr]
    assert acct.state.conversation.step == "qa"


def test_a_spanish_screening_reaches_the_policy_tier_and_goes_to_review() -> None:
    events = _events("screening.es.jsonl")
    acct, by_event = _run("screening.es.jsonl")
    opening, _household, income = _messages(events)
    assert _reply(by_event[opening]).message.language == "es"  # type: ignore[union-attr]
    assert _reply(by_event[opening]).channel == "sms"

    today = datetime.fromisoformat(events[-1]["time"]).date()
    expected = screen(4, Decimal("52000.00"), "CA", _balance(events), today, POLICY)
    line = POLICY.use_cases.assistance.poverty_line(4, today)
    assert expected.fpl_pct == (Decimal("52000") / line * 100).quantize(CENT)
    assert expected.fpl_pct is not None and expected.fpl_pct <= POLICY.use_cases.assistance.free_up_to_fpl_pct
    result = _reply(by_event[income]).message.body  # type: ignore[union-attr]
    assert f"{expected.fpl_pct}%" in result and "100%" in result
    assert money(expected.estimated_discount) in result  # type: ignore[arg-type]
    [application] = [a for a in by_event[income] if a.kind == "assistance_invite"]
    assert application.review.required and "R-REVIEW-KIND" in application.review.reasons
    assert application.explanation.features["screening"] == expected.features()
    assert acct.state.conversation.closed_reason == "screened"


def test_a_negotiation_never_goes_below_the_floor_and_ends_in_review() -> None:
    events = _events("negotiation.en.jsonl")
    acct, by_event = _run("negotiation.en.jsonl")
    balance = _balance(events)
    floor = _up(balance * POLICY.use_cases.settlement.floor_pct / 100)
    *counters, accept = _messages(events)
    made = [_reply(by_event[m]).settlement for m in counters]
    amounts = [s.amount for s in made if s is not None]
    assert len(amounts) == POLICY.conversations.negotiation.max_rounds
    assert amounts[0] == _up(balance * POLICY.conversations.negotiation.opening_pct / 100)
    assert amounts[-1] == floor and all(a >= floor for a in amounts)

    [agreement] = [a for a in by_event[accept] if a.kind == "settlement_offer"]
    assert agreement.settlement is not None and agreement.settlement.amount == floor
    assert agreement.review.required and "R-REVIEW-KIND" in agreement.review.reasons
    assert acct.state.settlement_agreement.action_id == agreement.action_id
    assert agreement.action_id in acct.state.held and acct.state.conversation.closed_reason == "agreed"


def test_a_proposal_below_the_floor_after_the_last_round_goes_to_staff() -> None:
    events = _events("negotiation.es.jsonl")
    acct, by_event = _run("negotiation.es.jsonl")
    floor = _up(_balance(events) * POLICY.use_cases.settlement.floor_pct / 100)
    last = _messages(events)[-1]
    assert (
        Decimal(_fact([e for e in events if e["id"] == last], "billing.communication.logged")["text"]) < floor
    )
    assert _reply(by_event[last]).settlement is None
    assert not any(a.kind == "settlement_offer" for a in by_event[last])
    [task] = [a for a in by_event[last] if a.kind == "staff_task"]
    assert "negotiation_no_agreement" in task.tags
    assert acct.state.settlement_agreement is None


def test_stop_mid_conversation_ends_it_and_nothing_more_goes_out_by_sms() -> None:
    events = _events("stop.en.jsonl")
    acct, by_event = _run("stop.en.jsonl")
    question, stop, after = _messages(events)
    assert _reply(by_event[question]).channel == "sms"
    assert not any(a.kind == "conversation_reply" for a in by_event[stop])
    assert not any(a.kind == "conversation_reply" and a.channel == "sms" for a in by_event[after])
    assert acct.state.sms_revoked_at is not None
    stopped = next(
        o.value
        for o in acct.outputs
        if o.topic == "audit" and o.value.details.get("rule") == "C-STOP" and o.value.event_id == stop
    )
    assert stopped.details["step"] == "closed"


def test_a_dispute_raised_mid_negotiation_stops_it() -> None:
    events = _events("dispute.en.jsonl")
    acct, by_event = _run("dispute.en.jsonl")
    opening, retry = _messages(events)
    assert _reply(by_event[opening]).settlement is not None
    dispute = next(e["id"] for e in events if e["type"] == "billing.dispute.updated")
    assert not any(a.kind == "conversation_reply" for a in by_event[dispute])
    answer = _reply(by_event[retry])
    assert answer.settlement is None and answer.review.required
    assert "R-DISPUTE-OPEN" in answer.review.reasons
    assert not any(a.kind == "settlement_offer" for a in by_event[retry])
    assert acct.state.conversation.closed_reason == "dispute_open"


def test_an_accepted_plan_is_written_back_and_a_person_can_be_asked_for() -> None:
    events = _events("plan.es.jsonl")
    _acct, by_event = _run("plan.es.jsonl")
    ask, choose, person = _messages(events)
    listed = _reply(by_event[ask]).plan_options
    [chosen] = _reply(by_event[choose]).plan_options
    assert chosen == listed[1]  # the patient replied "2"
    assert chosen.monthly_amount == _up(_balance(events) / chosen.term_months)
    [plan] = _writebacks(by_event[choose], "create_payment_plan")
    payload = plan.platform_update.payload  # type: ignore[union-attr]
    assert (
        payload["monthly_amount"] == str(chosen.monthly_amount)
        and payload["term_months"] == chosen.term_months
    )
    [task] = [a for a in by_event[person] if a.kind == "staff_task"]
    assert "asked_for_person" in task.tags
    assert "Quiero hablar con una persona" in task.message.body  # type: ignore[union-attr]


def test_an_approved_settlement_once_paid_is_adjusted_on_the_platform() -> None:
    events = _events("negotiation.en.jsonl")
    acct, _ = _run("negotiation.en.jsonl")
    agreement = acct.state.settlement_agreement
    step = acct.review(agreement.action_id, "approve", "billing_manager", "2026-03-16T19:00:00+00:00")
    assert [a.kind for a in step.released] == ["settlement_offer"]
    payment = {
        **events[2],
        "id": "settlement-paid",
        "time": "2026-03-20T16:00:00Z",
        "data": {**events[2]["data"], "payment_id": "PAY-S", "amount": str(agreement.amount),
                 "posted_at": "2026-03-20T16:00:00Z"},
    }  # fmt: skip
    paid = acct.send(parse_event(payment))
    [adjustment] = _writebacks(paid.released, "post_adjustment")
    assert Decimal(adjustment.platform_update.payload["amount"]) == _balance(events) - agreement.amount  # type: ignore[union-attr]
    assert acct.state.settlement_agreement.adjusted
    again = acct.send(parse_event({**payment, "id": "settlement-paid-2"}))
    assert _writebacks(again.released, "post_adjustment") == []


def test_a_reported_outreach_is_noted_and_a_redelivered_message_repeats_nothing() -> None:
    events = _events("qa.en.jsonl")
    acct, by_event = _run("qa.en.jsonl")
    reply = _reply(by_event[_messages(events)[0]])
    sent = {
        **events[-1],
        "id": "sender-log",
        "data": {**events[-1]["data"], "communication_id": "OUT-1", "direction": "outbound",
                 "outcome": "delivered", "text": None, "action_id": reply.action_id},
    }  # fmt: skip
    [note] = _writebacks(acct.send(parse_event(sent)).released, "add_note")
    assert note.platform_update.payload["source_action_id"] == reply.action_id  # type: ignore[union-attr]
    assert acct.send(parse_event(events[-1])).decision.duplicate


def test_billwise_decide_replays_a_transcript_file() -> None:
    path = SCRIPTS / "negotiation.en.jsonl"
    result = CliRunner().invoke(app, ["decide", "--events", str(path)])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [o.as_line() for o in decide_lines(path.read_bytes().splitlines(), POLICY)]
    assert printed == json.loads(json.dumps(expected))
    kinds = [(line["topic"], line["value"].get("kind")) for line in printed]
    assert ("billing.review", "settlement_offer") in kinds
    assert kinds.count(("billing.review", "conversation_reply")) == len(_messages(_events(path.name)))


# -- drafting, gates and time ----------------------------------------------------------------------------


class _Model:
    """A stand-in model: answers with the balance the prompt gives it, or with ``body`` when set."""

    def __init__(self, body: str | None = None) -> None:
        self.body = body
        self.prompts: list[str] = []

    async def chat_json(self, messages: list[dict[str, str]], response_format: Any, **kw: Any) -> ChatResult:
        user = messages[-1]["content"]
        self.prompts.append(user)
        context = json.loads(user.split(CONTEXT_MARKER, 1)[1].split(INSTRUCTION_MARKER, 1)[0])
        body = self.body or f"Your balance is {context.get('balance')}."
        draft = {"subject": "Your balance", "body": body, "sms_body": body, "tone_tags": ["friendly"]}
        return ChatResult(json.dumps(draft), "stub-model", "stop")

    async def aclose(self) -> None:
        return None


def _replies_drafted_by(model: _Model) -> list[Action]:
    lines = (SCRIPTS / "qa.en.jsonl").read_bytes().splitlines()[:5]  # the set-up and the balance question
    outputs = decide_lines(lines, POLICY, drafter=Drafter(model))  # type: ignore[arg-type]
    return [o.value for o in outputs if isinstance(o.value, Action) and o.value.kind == "conversation_reply"]


def test_the_model_drafts_replies_from_facts_only_with_the_template_as_fallback() -> None:
    events = _events("qa.en.jsonl")
    model = _Model()
    [reply] = _replies_drafted_by(model)
    assert reply.message.source == "llm" and money(_balance(events)) in reply.message.body  # type: ignore[union-attr]
    question = events[4]["data"]["text"]
    assert model.prompts and all(question not in prompt and "Sam" not in prompt for prompt in model.prompts)

    [fallback] = _replies_drafted_by(_Model("Pay $9,999.00 now or we will take legal action."))
    assert fallback.message.source == "template"  # type: ignore[union-attr]
    assert money(_balance(events)) in fallback.message.body  # type: ignore[union-attr]


def test_a_late_message_is_answered_in_the_morning_and_flags_stop_replies() -> None:
    events = _events("qa.en.jsonl")
    late = {**events[4], "id": "late", "time": "2026-03-17T06:30:00Z"}  # 23:30 in Los Angeles
    late["data"] = {**late["data"], "at": late["time"], "communication_id": "MSG-late"}
    acct = Account()
    for raw in events[:4]:
        acct.send(parse_event(raw))
    reply = _reply(acct.send(parse_event(late)).actions)
    assert reply.not_before == datetime.fromisoformat("2026-03-17T15:00:00+00:00")  # 08:00 local

    ceased = Account()
    for raw in events[:4]:
        ceased.send(parse_event(raw))
    flags = {
        **events[0],
        "id": "cease",
        "data": {**events[0]["data"], "flags": {"cease_communication": True}},
    }
    ceased.send(parse_event(flags))
    step = ceased.send(parse_event(events[4]))
    assert not any(a.kind == "conversation_reply" for a in step.actions)
    assert step.suppressed()["conversation_reply"] == "G-CEASE"


def test_a_conversation_idle_past_the_policy_limit_starts_afresh() -> None:
    events = _events("negotiation.en.jsonl")
    acct = Account()
    for raw in events[:5]:  # the set-up and the first proposal: one offer made
        acct.send(parse_event(raw))
    first = acct.state.conversation
    assert first.rounds == 1
    later = f"2026-03-{16 + POLICY.conversations.idle_close_hours // 24 + 1}T18:00:00Z"
    again = {**events[5], "id": "later", "time": later}
    again["data"] = {**again["data"], "at": later, "communication_id": "MSG-later"}
    acct.send(parse_event(again))
    assert acct.state.conversation.conversation_id == "MSG-later"
    assert acct.state.conversation.step == "qa"  # "I could do 700" out of context: not a negotiation
