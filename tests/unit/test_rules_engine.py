"""The compiler and the rules engine: JSON rulesets from the policy, every matching rule fires, pitfalls."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rules.compiler import GATE_FACTS, USECASE_FACTS, cents, compile_gates, compile_usecases
from rules.engine import (
    DEFAULT_GATE_FACTS,
    DEFAULT_USECASE_FACTS,
    DurableEvaluator,
    PythonEvaluator,
    RulesEngine,
    RulesEngineError,
    _Host,
    engines_for,
)
from rules.policy import load_policy, parse_policy


def gate(**facts: Any) -> dict[str, Any]:
    return {**DEFAULT_GATE_FACTS, **facts}


def test_default_facts_declare_every_field() -> None:
    assert DEFAULT_GATE_FACTS.keys() == GATE_FACTS.keys()
    assert DEFAULT_USECASE_FACTS.keys() == USECASE_FACTS.keys()


def test_rulesets_are_durable_rules_json_with_the_policy_thresholds() -> None:
    policy = load_policy()
    gates = compile_gates(policy).definition()
    uses = compile_usecases(policy).definition()
    json.dumps(gates)  # plain JSON, as durable-rules' JSON reference describes
    assert gates["R-REVIEW-BALANCE"] == {
        "all": [{"m": {"$gt": {"balance_c": 500000}}}],
        "run": "R-REVIEW-BALANCE",
    }
    plan = json.dumps(uses["UC-PLAN-OFFER"])
    assert '{"$gte": {"balance_c": 10000}}' in plan and '{"$gte": {"age_days": 60}}' in plan
    assert {"$gte": {"state_peak": 2}} in gates["G-STATE-MA.delay"]["all"][0]["m"]["$and"]


def test_a_policy_change_changes_the_rules() -> None:
    document = load_policy().model_dump(mode="json")
    document["state_caps"]["WA"] = {
        "max_in_window": 3,
        "window_days": 7,
        "channels": ["phone", "sms", "email"],
    }
    document["review"]["balance_over"] = "2500.00"
    gates = compile_gates(parse_policy(document)).definition()
    assert "G-STATE-WA.delay" in gates
    assert gates["R-REVIEW-BALANCE"]["all"][0]["m"] == {
        "$gt": {"balance_c": cents(parse_policy(document).review.balance_over)}
    }


def test_every_matching_gate_fires_not_only_the_first() -> None:
    engine = engines_for(load_policy()).gates
    fired = engine.fired(
        gate(
            kind="payment_reminder",
            slot="payment_reminder",
            cease=True,
            deceased=True,
            bankruptcy=True,
            attorney=True,
            dispute_open=True,
            ever_disputed=True,
            balance_c=900000,
        )
    )
    assert {
        "G-CEASE",
        "G-DECEASED",
        "G-BANKRUPTCY",
        "G-ATTORNEY",
        "G-DISPUTE.suppress",
        "R-REVIEW-BALANCE",
        "R-REVIEW-DISPUTE",
        "R-REVIEW-LANE",
        "R-APPROVER",
    } <= fired


def test_nothing_matching_is_not_an_error_and_the_engine_keeps_working() -> None:
    engine = engines_for(load_policy()).gates
    clean = gate(kind="statement_message", slot="statement_message", propensity=0.9, balance_c=1000)
    for _ in range(3):
        assert engine.fired(clean) == frozenset()
        assert engine.fired({**clean, "cease": True}) == {"G-CEASE"}


def test_many_evaluations_stay_under_the_sid_limit() -> None:
    """1,024 live sids per ruleset: one sid, cleared after each evaluation, never runs out."""
    engine = engines_for(load_policy()).usecases
    facts = {**DEFAULT_USECASE_FACTS, "trigger": "statement", "statement_due_c": 100}
    for i in range(1500):
        assert engine.fired({**facts, "balance_c": i}) == {"UC-STATEMENT"}


def test_facts_with_a_missing_or_mistyped_field_are_refused() -> None:
    """$neq does not match a missing field: a fact with a hole could slip past a gate."""
    engine = engines_for(load_policy()).gates
    holed = gate()
    del holed["regime"]
    with pytest.raises(RulesEngineError, match="missing \\['regime'\\]"):
        engine.fired(holed)
    with pytest.raises(RulesEngineError, match="cease must be bool"):
        engine.fired(gate(cease=1))
    with pytest.raises(RulesEngineError, match="balance_c must be int"):
        engine.fired(gate(balance_c=True))


def test_registration_does_not_depend_on_a_mutated_definition() -> None:
    """Ruleset.__init__ deletes 'run' from the dict it gets: each registration gets a fresh one."""
    compiled = compile_gates(load_policy())
    before = copy.deepcopy(compiled.definition())
    DurableEvaluator(compiled)
    DurableEvaluator(compiled)
    assert compiled.definition() == before


def test_an_exception_inside_an_action_is_raised_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """durable-rules writes an action's exception into state['exception'] and returns normally."""

    class Broken(_Host):
        def get_action(self, action_name: str) -> Any:
            def fail(c: Any) -> None:
                raise RuntimeError("boom")

            return fail

    monkeypatch.setattr("rules.engine._Host", Broken)
    evaluator = DurableEvaluator(compile_gates(load_policy()))
    with pytest.raises(RulesEngineError, match="boom"):
        evaluator.fired(gate(cease=True))


def test_python_evaluator_matches_durable_rules_on_the_same_facts() -> None:
    compiled = compile_gates(load_policy())
    durable, python = DurableEvaluator(compiled), PythonEvaluator(compiled)
    samples = [
        gate(),
        gate(cease=True, channel="sms", sms_revoked=True),
        gate(channel="phone", calls_peak=7, past_expiry=True, days_since_conversation=3),
        gate(state="MA", channel="sms", state_peak=2, regime="third_party"),
        gate(kind="staff_task", slot="staff_task:collections_call", channel_status="none", deceased=True),
        gate(guarantor_is_patient=False, confidential=True, propensity=0.6, balance_c=50000),
    ]
    for facts in samples:
        assert set(durable.fired(facts)) == set(python.fired(facts)), facts


def test_the_python_backend_runs_the_same_decisions() -> None:
    assert RulesEngine(compile_usecases(load_policy()), "python").fired(
        {**DEFAULT_USECASE_FACTS, "trigger": "statement", "statement_due_c": 1}
    ) == {"UC-STATEMENT"}


def test_an_engine_error_is_a_rules_error_and_the_next_evaluation_works() -> None:
    evaluator = DurableEvaluator(compile_gates(load_policy()))
    facts = gate(cease=True)
    evaluator._host.assert_fact(evaluator._name, {**facts, "sid": evaluator.SID})  # a fact left behind
    with pytest.raises(RulesEngineError, match="refused a fact"):
        evaluator.fired(facts)  # the identical fact is "already observed"
    assert "G-CEASE" in evaluator.fired(facts)


def test_a_tiny_propensity_is_decided_like_any_other_below_the_thresholds() -> None:
    """A model can score 5e-05; JSON writes it with an exponent, which durable-rules refuses (error 204)."""
    engine = RulesEngine(compile_usecases(load_policy()))
    facts = dict(DEFAULT_USECASE_FACTS, trigger="scan", age_days=75, propensity=5e-05, balance_c=50_000)
    assert engine.fired(facts) == engine.fired(dict(facts, propensity=0.01))
    assert "UC-BAD-DEBT" in engine.fired(facts)


def test_may_fire_finds_a_rule_only_a_low_propensity_fires() -> None:
    """Bad-debt risk (60-90 days, propensity < 0.2) is the one rule this fact can fire: it fires at
    0.1, not at the prior's 0.5, and `may_fire` must find it without being told the propensity."""
    engine = engines_for(load_policy()).usecases
    facts = {
        **DEFAULT_USECASE_FACTS,
        "trigger": "scan",
        "active_account": True,
        "balance_c": 5000,
        "age_days": 75,
        "days_since_statement": 10,
        "plan_active": True,
        "assistance_status": "approved",
    }
    assert engine.fired({**facts, "propensity": 0.5}) == frozenset()
    assert engine.fired({**facts, "propensity": 0.1}) == {"UC-BAD-DEBT"}
    assert engine.may_fire(facts, "propensity")
    assert not engine.may_fire({**facts, "age_days": 95}, "propensity")
