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

import itertools
import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
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

MAX_SITUATIONS = 65_536
"""Situations remembered per ruleset with the rules they fire (see `RulesEngine`); a guard, policies
have far fewer."""

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
                state = self._host.assert_fact(self._name, {**_written_plainly(facts), "sid": self.SID})
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


SMALLEST_PLAIN_FLOAT = 1e-4
"""The smallest magnitude JSON writes without an exponent (``repr(1e-4) == '0.0001'``)."""


def _written_plainly(facts: Mapping[str, Any]) -> Mapping[str, Any]:
    """``facts`` with every float durable-rules can read: it refuses an exponent (error 204 on
    ``5e-05``, a propensity the model can produce). A magnitude below `SMALLEST_PLAIN_FLOAT` is sent
    as that bound, which sits on the same side of every policy constant (thresholds are probabilities
    in tenths, days and dollars, none between 0 and 0.0001).

    >>> _written_plainly({"propensity": 5e-05, "age_days": 40})
    {'propensity': 0.0001, 'age_days': 40}
    """

    def tiny(value: Any) -> bool:
        return type(value) is float and 0 < abs(value) < SMALLEST_PLAIN_FLOAT

    if not any(map(tiny, facts.values())):
        return facts
    return {k: math.copysign(SMALLEST_PLAIN_FLOAT, v) if tiny(v) else v for k, v in facts.items()}


class RulesEngine:
    """A compiled ruleset and an evaluator for it; `fired` validates the fact first.

    Answers are remembered by the fact's *situation* (`Situations`): for every field the rules read,
    which side of each of their constants the value falls on. Two facts in the same situation make
    every comparison in every rule come out the same, so they fire the same rules, and only the first
    is evaluated. An evaluation is a pure function of one fact (the ruleset never changes after
    compilation, and the durable-rules sid is deleted after every evaluation), so a remembered answer
    is the engine's answer. Situations are few (the thresholds of the policy cut each number into a
    handful of ranges), while facts rarely repeat exactly (ages grow by a day, scores move): a daily
    scan's use-case fact then costs the lookup (a few µs) instead of a durable-rules evaluation
    (20-90 µs, the more rules fire the more it costs). An evaluation that raises is not remembered.
    """

    def __init__(self, compiled: CompiledRuleset, backend: Backend = DEFAULT_BACKEND) -> None:
        self.compiled = compiled
        self.backend = backend
        self._evaluator: _Evaluator = (
            DurableEvaluator(compiled) if backend == "durable" else PythonEvaluator(compiled)
        )
        self._situation = Situations(compiled)
        self._values = _values_of(tuple(compiled.facts))
        self._types = tuple(compiled.facts.values())
        self._known: dict[tuple[Any, ...], frozenset[str]] = {}
        self._stand_ins: dict[str, tuple[Any, ...] | None] = {}
        self._may_fire: dict[tuple[str, tuple[Any, ...]], bool] = {}

    def fired(self, facts: Mapping[str, Any]) -> frozenset[str]:
        # Every caller builds facts of exactly the declared types; anything else gets the full check,
        # which refuses it or lets it through (an int in a float field).
        if facts.keys() != self.compiled.facts.keys() or tuple(map(type, self._values(facts))) != self._types:
            check_facts(facts, self.compiled.facts)
        situation = self._situation(facts)
        known = self._known.get(situation) if situation is not None else None
        if known is None:
            known = frozenset(self._evaluator.fired(facts))
            if situation is not None and len(self._known) < MAX_SITUATIONS:
                self._known[situation] = known  # concurrent writers write the same answer
        return known

    def may_fire(self, facts: Mapping[str, Any], unknown: str) -> bool:
        """Whether any rule fires for ``facts`` with some value of the numeric field ``unknown``.

        The rules can only tell a number apart by its side of each constant it is compared with, so one
        stand-in per side (below the first constant, each constant, between two, above the last) tries
        every outcome. The daily scan asks this with the propensity unknown, so that an account on which
        nothing can fire is not scored at all. When the rules are of a form `Situations` does not
        understand the answer is True: the caller must then compute the real value.

        >>> from rules.policy import load_policy
        >>> from rules.compiler import compile_usecases
        >>> engine = RulesEngine(compile_usecases(load_policy()))
        >>> engine.may_fire(dict(DEFAULT_USECASE_FACTS, trigger="scan"), "propensity")
        False
        >>> overdue = dict(DEFAULT_USECASE_FACTS, trigger="scan", active_account=True, balance_c=9000,
        ...                age_days=75, days_since_statement=75)
        >>> engine.may_fire(overdue, "propensity")
        True
        """
        if unknown not in self._stand_ins:
            self._stand_ins[unknown] = _stand_ins(self.compiled, unknown)
        stand_ins = self._stand_ins[unknown]
        if stand_ins is None:
            return True
        # The answer depends on the situation of every other field only: remembered by that.
        situation = self._situation(facts) if unknown in self._situation.fields else None
        if situation is None:
            return any(self.fired({**facts, unknown: value}) for value in stand_ins)
        i = self._situation.fields.index(unknown)
        key = (unknown, situation[:i] + situation[i + 1 :])
        answer = self._may_fire.get(key)
        if answer is None:
            answer = any(self.fired({**facts, unknown: value}) for value in stand_ins)
            if len(self._may_fire) < MAX_SITUATIONS:
                self._may_fire[key] = answer
        return answer


def _stand_ins(compiled: CompiledRuleset, name: str) -> tuple[Any, ...] | None:
    """One value of the numeric field ``name`` on each side of each constant the rules compare it
    with (see `RulesEngine.may_fire`); None when the rules are not all understood."""
    found: dict[str, list[tuple[str, Any]]] = {}
    kind = compiled.facts[name]
    if kind not in (int, float) or not all(_comparisons(rule.condition, found) for rule in compiled.rules):
        return None
    bounds = sorted({constant for _, constant in found.get(name, [])})
    if not all(type(bound) in (int, float) for bound in bounds):
        return None
    if not bounds:
        return (kind(0),)
    if kind is int:
        # Integers: each integral constant and the first integer above each constant (in the gap to
        # the next constant, or the next constant itself when no integer lies between them).
        above = {math.floor(bound) + 1 for bound in bounds}
        return tuple(sorted({math.floor(bounds[0]) - 1, *above, *(int(b) for b in bounds if b == int(b))}))
    between = [(low + high) / 2 for low, high in itertools.pairwise(bounds)]
    return tuple(float(value) for value in (bounds[0] - 1, *bounds, *between, bounds[-1] + 1))


_ORDERING = frozenset({"$lt", "$lte", "$gt", "$gte"})
_ELSE = object()
"""A value equal to none of the constants its field is compared with."""


def _comparisons(expr: Mapping[str, Any], found: dict[str, list[tuple[str, Any]]]) -> bool:
    """Collect ``field -> [(operator, constant)]`` from a condition; False on a form not understood."""
    if len(expr) != 1:
        return False
    ((key, value),) = expr.items()
    if key in ("$and", "$or"):
        return all(_comparisons(part, found) for part in value)
    if key in _ORDERING or key == "$neq":
        if not isinstance(value, Mapping) or len(value) != 1:
            return False
        ((name, constant),) = value.items()
        found.setdefault(name, []).append((key, constant))
        return True
    if key.startswith("$"):
        return False
    found.setdefault(key, []).append(("$eq", value))
    return True


def _side(kind: type, uses: list[tuple[str, Any]]) -> Callable[[Any], Any] | None:
    """How a field's value is reduced to its situation; None: by the value itself."""
    constants = [constant for _, constant in uses]
    if kind in (int, float) and all(type(c) in (int, float) for c in constants):
        bounds = sorted(set(constants))

        def rank(value: Any) -> Any:
            # 2i: strictly between the (i-1)th and ith constant; 2i+1: equal to the ith.
            i = bisect_left(bounds, value)
            return 2 * i + (i < len(bounds) and bounds[i] == value)

        return rank
    if not any(op in _ORDERING for op, _ in uses) and all(type(c) is kind for c in constants):
        named = frozenset(constants)
        return lambda value: value if value in named else _ELSE
    return None


class Situations:
    """The function from a (checked) fact to its situation: the value of every field the rules read,
    reduced to what the rules can tell apart. Numbers become their rank among the constants they are
    compared with (between two, or equal to one); strings and booleans only compared for equality keep
    their value when it is one of the constants and are all alike otherwise; fields no rule reads are
    left out. A float that is not finite, or that JSON writes with an exponent (durable-rules 2.0.28
    refuses ``1e+16``; tiny ones are sent as `SMALLEST_PLAIN_FLOAT`), has no situation (None): it is
    evaluated every time, so the engine decides what it makes of it, as it did before answers were
    remembered. A condition of another form than the compiler writes (see `rules.evaluator`) leaves
    every field as it is.

    >>> from rules.policy import load_policy
    >>> from rules.compiler import compile_usecases
    >>> situation = Situations(compile_usecases(load_policy()))
    >>> facts = dict(DEFAULT_USECASE_FACTS, trigger="scan", age_days=40, propensity=0.31)
    >>> situation(facts) == situation(dict(facts, age_days=41, propensity=0.32))
    True
    >>> situation(facts) == situation(dict(facts, age_days=400))
    False
    """

    def __init__(self, compiled: CompiledRuleset) -> None:
        found: dict[str, list[tuple[str, Any]]] = {}
        understood = all(_comparisons(rule.condition, found) for rule in compiled.rules)
        self.fields = tuple(name for name in compiled.facts if not understood or name in found)
        """The fields a situation is made of, in its order."""
        sides = [_side(compiled.facts[name], found[name]) if understood else None for name in self.fields]
        self._floats = [name for name in self.fields if compiled.facts[name] is float]
        self._values = _values_of(self.fields)
        self._parts = list(enumerate(sides))

    def __call__(self, facts: Mapping[str, Any]) -> tuple[Any, ...] | None:
        if not all(_plain(facts[name]) for name in self._floats):
            return None
        row = self._values(facts)
        return tuple(row[i] if side is None else side(row[i]) for i, side in self._parts)


def _plain(number: float) -> bool:
    """Whether JSON writes ``number`` as a plain decimal: `json` writes a float as its ``repr``, which
    has an exponent below 1e-4 or from 1e16 on (and NaN and infinities are not numbers in JSON).

    >>> [_plain(x) for x in (0.0, 0.0001, 5e-05, 9999999999999998.0, 1e16, float("nan"))]
    [True, True, False, True, False, False]
    """
    magnitude = abs(number)
    return magnitude == 0 or SMALLEST_PLAIN_FLOAT <= magnitude < 1e16


def _values_of(fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A fact's values in ``fields`` order, always as a tuple (``itemgetter`` of one field is not)."""
    if len(fields) > 1:
        return itemgetter(*fields)
    return lambda facts: tuple(facts[name] for name in fields)


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
