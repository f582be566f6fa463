"""The engine's remembered answers are the engine's answers (hypothesis).

`rules.engine.RulesEngine` evaluates a fact only when its situation (the side of every rule constant its
values fall on) is new, and answers later facts in that situation from memory. Over random facts drawn
around every constant of the rulesets (below, on, above each threshold, other strings), a long-lived
engine must fire exactly what a fresh durable-rules evaluation of each fact fires, and refuse what it
refuses (durable-rules 2.0.28 cannot read a float JSON writes with an exponent, such as ``5e-324``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.compiler import CompiledRuleset, compile_gates, compile_usecases
from rules.conversation import compile_machine
from rules.engine import (
    DEFAULT_BACKEND,
    DurableEvaluator,
    PythonEvaluator,
    RulesEngine,
    RulesEngineError,
    _comparisons,
)
from rules.policy import load_policy

POLICY = load_policy()
RULESETS = {
    "usecases": compile_usecases(POLICY),
    "gates": compile_gates(POLICY),
    "conversation": compile_machine(),
}
ENGINES = {name: RulesEngine(compiled) for name, compiled in RULESETS.items()}
REFERENCE = {
    name: DurableEvaluator(compiled) if DEFAULT_BACKEND == "durable" else PythonEvaluator(compiled)
    for name, compiled in RULESETS.items()
}


def _field_values(compiled: CompiledRuleset, name: str) -> st.SearchStrategy[Any]:
    found: dict[str, list[tuple[str, Any]]] = {}
    for rule in compiled.rules:
        _comparisons(rule.condition, found)
    constants = [constant for _, constant in found.get(name, [])]
    kind = compiled.facts[name]
    if kind is bool:
        return st.booleans()
    if kind is str:
        return st.sampled_from([*constants, "", "other"]) if constants else st.text(max_size=3)
    near = [c + d for c in constants for d in (-1, 0, 1)] if kind is int else []
    if kind is int:
        return st.sampled_from(near) | st.integers(-5, 1_000_000) if near else st.integers(-5, 1_000_000)
    return st.sampled_from([float(c) for c in constants]) | st.floats(0, 1) if constants else st.floats(0, 1)


def _facts(compiled: CompiledRuleset) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({name: _field_values(compiled, name) for name in compiled.facts})


@pytest.mark.parametrize("name", sorted(RULESETS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_remembered_answers_match_a_fresh_evaluation(name: str, data: st.DataObject) -> None:
    facts = data.draw(_facts(RULESETS[name]))
    assert _outcome(ENGINES[name].fired, facts) == _outcome(REFERENCE[name].fired, facts), facts


def _outcome(fired: Callable[[dict[str, Any]], Iterable[str]], facts: dict[str, Any]) -> frozenset[str] | str:
    try:
        return frozenset(fired(facts))
    except RulesEngineError:
        return "refused"


PROPENSITIES = sorted({*(i / 100 for i in range(101)), 0.0001, 0.1999, 0.5999})
"""Every hundredth from 0 to 1, and values just below the use-case rules' propensity thresholds."""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_may_fire_is_false_only_when_no_propensity_fires_anything(data: st.DataObject) -> None:
    """`RulesEngine.may_fire` lets the daily scan skip scoring: it must never say "nothing can fire"
    about a fact that some propensity makes fire."""
    facts = data.draw(_facts(RULESETS["usecases"]))
    engine = ENGINES["usecases"]
    fires_somewhere = any(engine.fired({**facts, "propensity": p}) for p in PROPENSITIES)
    assert engine.may_fire(facts, "propensity") or not fires_somewhere, facts
