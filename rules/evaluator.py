"""A pure-Python evaluator of the durable-rules JSON expressions the compiler writes.

It gives the same answer as the durable-rules engine for the subset `rules.compiler` uses (equality,
``$neq``, ``$lt``/``$lte``/``$gt``/``$gte``, ``$and``, ``$or``) on facts of the declared types, including
the engine's quirk that a comparison on a missing field never matches (not even ``$neq``). A property
test checks the agreement on random facts. It serves as the engine's stand-in where durable-rules cannot
be imported (CPython 3.13+, see the engineering brief) and as the comparison point of `rules.bench`.

>>> match = compile_expr({"$and": [{"kind": "sms"}, {"$or": [{"$gte": {"n": 3}}, {"$neq": {"s": "x"}}]}]})
>>> match({"kind": "sms", "n": 1, "s": "y"}), match({"kind": "sms", "n": 1, "s": "x"}), match({"kind": "sms"})
(True, False, False)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_MISSING = object()

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
}


def _same(left: Any, right: Any) -> bool:
    # JSON keeps booleans apart from numbers; Python's True == 1 must not leak in.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def _field(spec: Mapping[str, Any]) -> tuple[str, Any]:
    if len(spec) != 1:
        raise ValueError(f"a comparison names exactly one field: {spec!r}")
    return next(iter(spec.items()))


def compile_expr(expr: Mapping[str, Any]) -> Predicate:
    """A predicate over a fact for one durable-rules JSON expression."""
    if "$and" in expr or "$or" in expr:
        combine = all if "$and" in expr else any
        parts = [compile_expr(part) for part in expr["$and" if "$and" in expr else "$or"]]
        return lambda fact: combine(part(fact) for part in parts)
    key, value = _field(expr)
    if key in _COMPARE:
        name, bound = _field(value)
        compare = _COMPARE[key]

        def ordered(fact: Mapping[str, Any]) -> bool:
            seen = fact.get(name, _MISSING)
            return seen is not _MISSING and not isinstance(seen, bool) and compare(seen, bound)

        return ordered
    if key == "$neq":
        name, other = _field(value)
        return lambda fact: (seen := fact.get(name, _MISSING)) is not _MISSING and not _same(seen, other)
    if key.startswith("$"):
        raise ValueError(f"operator {key} is not supported by the Python evaluator")
    return lambda fact: (seen := fact.get(key, _MISSING)) is not _MISSING and _same(seen, value)
