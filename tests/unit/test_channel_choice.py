"""The channel chooser in decisions: it orders the permitted fallbacks only, is explained, and is
deterministic; the worker's models feed it rewards and checkpoint it."""

from __future__ import annotations

import asyncio
import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.channel import ChannelChooser
from models.store import dumps
from models.suite import CHECKPOINT_KIND, ModelSuite
from rules.channels import ChannelRanking, choose_channel
from rules.decide import decide
from rules.examples import patient, statement
from rules.policy import load_policy
from rules.state import AccountState
from schemas.actions import Action
from schemas.events import PatientUpdated
from streams.ingest import InputRecord, Processor

POLICY = load_policy()
T0 = datetime(2026, 3, 16, 15, tzinfo=UTC)


def _state(**patient_data: Any) -> AccountState:
    data = {
        "account_id": "A",
        "patient_id": "P",
        "practice_id": "X",
        "email": "p@example.org",
        "mobile_phone": "+12125550123",
        "address": {"line": "1 Main St", "city": "New York", "state": "NY", "postal_code": "10001"},
        "consent": {"email": True, "sms": True, "portal": True},
        **patient_data,
    }
    return AccountState.new("A", "P", "X").model_copy(update={"patient": PatientUpdated(**data)})


LETTER_FIRST = ChannelRanking(
    given_order=("letter", "portal", "sms", "email", "phone"),  # this decision's draw
    posteriors={"letter": (30.0, 10.0)},  # letters answered 3 times in 4; nothing known of the others
    segment="test",
)
LETTER_WINS = 30 * 31 / (40 * 41)
"""P(letter beats two uniform posteriors) = E[X^2] for X ~ Beta(30, 10)."""


def test_the_stated_channel_wins_over_any_ranking() -> None:
    choice = choose_channel(_state(preferred_channel="email"), (), POLICY, LETTER_FIRST)
    assert choice == ("email", "preferred", None)


def test_the_ranking_orders_the_permitted_fallbacks_and_says_so() -> None:
    state = _state(preferred_channel="sms", consent={"email": True, "sms": False, "portal": True})
    assert choose_channel(state, (), POLICY).channel == "email"  # the policy's order
    choice = choose_channel(state, (), POLICY, LETTER_FIRST)
    assert (choice.channel, choice.status) == ("letter", "fallback")
    assert choice.learned is not None
    assert {k: v for k, v in choice.learned.items() if k != "probability"} == {
        "by": "channel_chooser",
        "channel": "letter",
        "candidates": ["email", "portal", "letter"],
        "policy_order": "email",
        "segment": "test",
    }
    assert choice.learned["probability"] == pytest.approx(LETTER_WINS, abs=0.08)  # 200 draws
    # A use case that allows digital channels only: the ranking picks among those.
    assert choose_channel(state, ("email", "portal", "sms"), POLICY, LETTER_FIRST).channel == "portal"


def test_with_no_stated_channel_the_ranking_orders_all_permitted_channels() -> None:
    choice = choose_channel(_state(), (), POLICY, LETTER_FIRST)
    assert (choice.channel, choice.status) == ("letter", "preferred")  # email, the first, was permitted
    assert choice.learned is not None and choice.learned["candidates"] == ["email", "portal", "sms", "letter"]


def test_one_permitted_channel_leaves_the_chooser_nothing_to_choose() -> None:
    only_email = _state(preferred_channel="sms", consent={"email": True, "sms": False}, address=None)
    assert choose_channel(only_email, (), POLICY, LETTER_FIRST) == ("email", "fallback", None)
    nothing = _state(preferred_channel="sms", consent={"email": False, "sms": False}, address=None)
    assert choose_channel(nothing, (), POLICY, LETTER_FIRST) == (None, "none", None)


def _decide(ranking: ChannelRanking | None) -> Action:
    state = decide(
        None, patient("2026-03-16T14:00:00Z", preferred_channel="sms", consent={"email": True}), POLICY
    )
    event = statement("2026-03-16T15:00:00Z", balance_due="120.00")
    decision = decide(state.state, event, POLICY, channel_ranking=ranking)
    [action] = [o.value for o in decision.outputs if isinstance(o.value, Action)]
    return action


def test_the_decision_uses_and_explains_the_choice_and_is_the_same_every_time() -> None:
    assert _decide(None).channel == "email"
    assert "channel_choice" not in _decide(None).explanation.features
    action = _decide(LETTER_FIRST)
    assert action.channel == "letter"
    choice = action.explanation.features["channel_choice"]
    assert choice["candidates"] == ["email", "letter"]  # this patient allows e-mail and letters only
    assert choice["probability"] == pytest.approx(30 / 40, abs=0.08)  # Beta(30, 10) beats a uniform
    assert action.model_dump_json() == _decide(LETTER_FIRST).model_dump_json()


def _warm_suite(**kwargs: Any) -> ModelSuite:
    """A suite whose chooser learned that patients without a stated channel answer letters."""
    suite = ModelSuite(monitored=False, chooser=ChannelChooser(seed=4, min_evidence=20), **kwargs)
    context = {"preferred_channel": None, "balance": 300.0}
    for n in range(60):
        suite.chooser.reward("letter", context, n % 4 != 0)
        suite.chooser.reward("email", context, n % 10 == 0)
    return suite


def test_engagement_and_payments_reward_the_channel_that_went_out_and_silence_does_not() -> None:
    suite = ModelSuite(monitored=False, chooser=ChannelChooser(min_evidence=0))
    state = _state(preferred_channel="sms").model_copy(update={"balance": 300})
    context = suite.channel_context(state)
    scores, x = suite.score(state, T0)
    for account, channel in (("A", "sms"), ("B", "email"), ("C", "letter")):
        suite.decided(account, x, scores, T0, channel=channel, context=context)
    suite.outcome("A", "opened", T0 + timedelta(days=1))  # an open is not an answer
    suite.outcome("A", "clicked", T0 + timedelta(days=2))
    suite.paid("B", T0 + timedelta(days=3))
    suite.tick(T0 + timedelta(days=14))
    posteriors = {c: (p.alpha, p.beta) for c, p in suite.chooser._posteriors["sms|small"].items()}
    assert posteriors == {"sms": (2.0, 1.0), "email": (2.0, 1.0), "letter": (1.0, 2.0)}


def test_the_checkpoint_keeps_the_chooser_and_its_open_messages() -> None:
    suite = _warm_suite()
    state = _state().model_copy(update={"balance": 300})
    suite.decided(
        "A", {}, suite.score(state, T0)[0], T0, channel="letter", context=suite.channel_context(state)
    )
    restored = ModelSuite.restore(suite.checkpoint(), monitored=False)
    assert restored.channel_ranking(state, "evt-1") == suite.channel_ranking(state, "evt-1") is not None
    assert restored.channel_snapshots == suite.channel_snapshots and "A" in restored.channel_snapshots
    old = {k: v for k, v in pickle.loads(pickle.dumps(suite.__dict__)).items() if k in ("propensity", "risk")}
    older = ModelSuite.restore(
        dumps({**old, "snapshots": {}, "risk_snapshots": {}}, kind=CHECKPOINT_KIND), monitored=False
    )
    assert older.channel_ranking(state, "evt-1") is None  # a checkpoint from before: a cold chooser


SAMPLE = Path("streams/sample_events.jsonl")


def _records() -> list[InputRecord]:
    lines = [line for line in SAMPLE.read_bytes().splitlines() if b"sample-bad" not in line]
    return [
        InputRecord("billing.events", 0, n, str(json.loads(line)["data"]["account_id"]).encode(), line, T0)
        for n, line in enumerate(lines)
    ]


def _actions(suite: ModelSuite) -> list[Action]:
    processed = asyncio.run(Processor(POLICY, models=suite).process(_records(), {}))
    return [o.value for o in processed.outputs if isinstance(o.value, Action)]


def test_the_worker_passes_the_chooser_ranking_in_and_decides_the_same_way_twice() -> None:
    """ACC-1004 stated no channel and may get e-mail or letters: the warmed chooser prefers letters."""
    first, again = _actions(_warm_suite(learning=False)), _actions(_warm_suite(learning=False))
    assert [a.model_dump_json() for a in first] == [a.model_dump_json() for a in again]
    chosen = [a for a in first if "channel_choice" in a.explanation.features]
    assert chosen and {a.account_id for a in chosen} == {"ACC-1004"}
    for action in chosen:
        choice = action.explanation.features["channel_choice"]
        assert action.channel == choice["channel"] and choice["segment"] == "none|small"
        assert set(choice["candidates"]) == {"email", "letter"} and 0.0 < choice["probability"] <= 1.0
    cold = _actions(ModelSuite(monitored=False, learning=False))
    assert all("channel_choice" not in a.explanation.features for a in cold)
    assert {a.channel for a in cold if a.account_id == "ACC-1004"} <= {"email", "phone"}
