"""The examples in the docstrings of all three packages run, and there are examples to run (style.md §11)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in ("excolor", "analysis", "tune")
    for p in (ROOT / package).rglob("*.py")
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


@pytest.mark.parametrize("package", ["excolor", "analysis", "tune"])
def test_each_package_has_examples_that_run(package: str) -> None:
    attempted = 0
    for name in (m for m in MODULES if m.split(".")[0] == package):
        attempted += doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS).attempted
    assert attempted >= 3, f"{package}: only {attempted} doctest examples ran"
