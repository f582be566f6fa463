"""Running compiled rulesets: durable-rules (the default) or the equivalent Python evaluator.

`RulesEngine.fired(facts)` returns the names of every rule that matches one fact. With durable-rules the
engine's measured pitfalls are handled here, once:

* rules match a **fact** (``assert_fact``), which every matching rule sees, so all gates fire, not only
  the first (events are consumed by the first matching rule);
* one fixed ``sid`` and ``delete_state`` after every evaluation: the engine holds at most 1,024 live sids
  per ruleset, and account state lives in the Faust table, not in the engine;
* the host's background dispatch threads are not started: they would run our actions on another
  thread, racing the synchronous result;
* an exception inside an action is swallowed into ``state['exception']``: it is checked, and raised;
* ``MessageNotHandledException`` (nothing matched) means "no rule fired"; the sid is then left as it is,
  because ``delete_state`` right after it aborts the process in 2.0.28 [measured];
* ``Ruleset.__init__`` mutates the dict it is given: every registration gets a fresh definition;
* a fact missing a declared field is refused (``$neq`` would not match a missing field).

>>> from rules.policy import load_policy
>>> engines = engines_for(load_policy())
>>> facts = dict(DEFAULT_USECASE_FACTS, trigger="statement", statement_due_c=12000, balance_c=12000)
>>> sorted(engines.usecases.fired(facts))
['UC-STATEMENT']
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rules.compiler import (
    GATE_FACT_DEFAULTS,
    USECASE_FACT_DEFAULTS,
    CompiledRuleset,
    compile_gates,
    compile_usecases,
)
from rules.evaluator import compile_expr
from rules.policy import Policy

try:
    from durable import engine as durable_engine
except ImportError:  # pragma: no cover - durable-rules does not build on CPython 3.13 (brief, section 3.1)
    durable_engine = None

Backend = Literal["durable", "python"]
DEFAULT_BACKEND: Backend = "durable" if durable_engine is not None else "python"

DEFAULT_USECASE_FACTS = USECASE_FACT_DEFAULTS
DEFAULT_GATE_FACTS = GATE_FACT_DEFAULTS


class RulesEngineError(ValueError):
    """The rules could not be evaluated: nothing may be released on a decision that did not run."""


class _Evaluator(Protocol):
    def fired(self, facts: Mapping[str, Any]) -> tuple[str, ...]: ...


def check_facts(facts: Mapping[str, Any], declared: Mapping[str, type]) -> None:
    """Refuse a fact with a missing, unknown or mistyped field (float fields also take ints)."""
    if facts.keys() != declared.keys():
        missing = sorted(declared.keys() - facts.keys())
        unknown = sorted(facts.keys() - declared.keys())
        raise RulesEngineError(f"fact fields do not match the ruleset: missing {missing}, unknown {unknown}")
    for name, kind in declared.items():
        value = facts[name]
        ok = isinstance(value, (int, float)) if kind is float else type(value) is kind
        if not ok or (kind is not bool and isinstance(value, bool)):
            raise RulesEngineError(f"fact field {name} must be {kind.__name__}, got {value!r}")


class PythonEvaluator:
    def __init__(self, compiled: CompiledRuleset) -> None:
        self._rules = [(rule.name, compile_expr(rule.condition)) for rule in compiled.rules]

    def fired(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(name for name, matches in self._rules if matches(facts))


if durable_engine is not None:

    class _Host(durable_engine.Host):
        """A durable-rules host whose actions record the rule that fired, and nothing else."""

        def __init__(self) -> None:
            self.fired: list[str] = []
            super().__init__()

        def get_action(self, action_name: str) -> Any:
            fired = self.fired

            def record(c: Any) -> None:  # durable-rules checks the arity: one argument
                fired.append(action_name)

            return record

        def _run(self) -> None:
            # No background dispatch or timer threads: rules run synchronously inside assert_fact.
            pass


class DurableEvaluator:
    """One compiled ruleset on its own durable-rules host, evaluated one fact at a time."""

    SID = "eval"

    def __init__(self, compiled: CompiledRuleset) -> None:
        if durable_engine is None:  # pragma: no cover
            raise RulesEngineError("durable-rules is not importable on this Python")
        self._name = compiled.name
        self._definition = compiled.definition
        self._host = _Host()
        self._host.set_rulesets({compiled.name: compiled.definition()})
        self._lock = threading.Lock()

    def fired(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        with self._lock:
            self._host.fired.clear()
            try:
                state = self._host.assert_fact(self._name, {**facts, "sid": self.SID})
            except durable_engine.MessageNotHandledException:
                # Nothing matched and nothing was stored. Do not delete_state here: in 2.0.28 that
                # aborts the process (free(): invalid pointer) [measured]; the empty sid is reused.
                return ()
            except Exception as exc:  # MessageObservedException, or the C extension's own error type
                self._reset()
                raise RulesEngineError(f"rules engine refused a fact in {self._name}: {exc!r}") from None
            try:
                self._host.delete_state(self._name, self.SID)
            except Exception as exc:  # the C extension raises its own error type
                raise RulesEngineError(f"could not clear rules state of {self._name}: {exc}") from None
            if isinstance(state, dict) and "exception" in state:
                raise RulesEngineError(f"a rule action failed in {self._name}: {state['exception']}")
            return tuple(self._host.fired)

    def _reset(self) -> None:
        """A fresh host after an engine error, so one bad evaluation does not poison the next."""
        self._host = _Host()
        self._host.set_rulesets({self._name: self._definition()})


class RulesEngine:
    """A compiled ruleset and an evaluator for it; `fired` validates the fact first."""

    def __init__(self, compiled: CompiledRuleset, backend: Backend = DEFAULT_BACKEND) -> None:
        self.compiled = compiled
        self.backend = backend
        self._evaluator: _Evaluator = (
            DurableEvaluator(compiled) if backend == "durable" else PythonEvaluator(compiled)
        )

    def fired(self, facts: Mapping[str, Any]) -> frozenset[str]:
        check_facts(facts, self.compiled.facts)
        return frozenset(self._evaluator.fired(facts))


@dataclass(frozen=True)
class Engines:
    usecases: RulesEngine
    gates: RulesEngine


_ENGINES: dict[tuple[str, str], Engines] = {}
_ENGINES_LOCK = threading.Lock()


def engines_for(policy: Policy, backend: Backend = DEFAULT_BACKEND) -> Engines:
    """The compiled rulesets of ``policy`` on ``backend``, built once per policy and backend."""
    key = (policy.fingerprint, backend)
    with _ENGINES_LOCK:
        engines = _ENGINES.get(key)
        if engines is None:
            engines = Engines(
                RulesEngine(compile_usecases(policy), backend), RulesEngine(compile_gates(policy), backend)
            )
            _ENGINES[key] = engines
        return engines
