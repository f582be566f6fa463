"""The examples in the models' docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "models.simulator",
    "models.features",
    "models.labels",
    "models.propensity",
    "models.risk",
    "models.channel",
    "models.store",
    "models.monitoring",
    "models.evaluate",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
