"""The examples in analysis's docstrings run (style.md §11)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "analysis.models",
    "analysis.objectives",
    "analysis.pareto",
    "analysis.results",
    "analysis.report",
    "analysis.tables",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
