"""The package layers hold: ``excolor <- analysis <- tune``, no back-edge, no import circle between files.

Every import is read from the source with ``ast`` -- those inside functions and under
``TYPE_CHECKING`` included -- so a lazy import cannot hide an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("excolor", "analysis", "tune")
LAYER = {"excolor": 0, "analysis": 1, "tune": 2}
"""A package may import only packages of a lower or equal layer."""
FORBIDDEN = {
    "excolor": {"ray", "optuna", "wandb", "moocore", "matplotlib"},  # the science: torch + numpy
    "analysis": {"ray", "wandb"},  # reads studies from plain files, with or without Ray
    "tune": set(),
}


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """``{'tune.cli': Path(...), 'tune': Path(.../__init__.py), ...}`` for every module of ``packages``."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path, module: str) -> set[str]:
    """Every module name ``path`` imports anywhere (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's ``__init__`` counts as itself)."""
    return {name: {t for t in imports(path, name) if t in modules and t != name} for name, path in modules.items()}


def layer_violations(modules: Mapping[str, Path]) -> list[str]:
    """Back-edges between packages and forbidden third-party imports, as readable lines."""
    out = []
    for name, path in modules.items():
        package = name.split(".")[0]
        for target in sorted(imports(path, name)):
            top = target.split(".")[0]
            if top in LAYER and LAYER[top] > LAYER[package]:
                out.append(f"{name} imports {target}: {package} may not depend on {top}")
            if top in FORBIDDEN[package]:
                out.append(f"{name} imports {target}: {package} never imports {top}")
    return sorted(set(out))


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _without_package_inits(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Edges between files, ignoring imports of a package's ``__init__`` (its table of contents)."""
    packages = {name for name in edges if "." not in name}
    return {name: {t for t in targets if t not in packages} for name, targets in edges.items() if name not in packages}


def test_packages_depend_in_one_direction() -> None:
    assert layer_violations(module_files(ROOT, PACKAGES)) == []


def test_no_import_circle_between_files() -> None:
    assert cycles(_without_package_inits(graph(module_files(ROOT, PACKAGES)))) == []


def test_every_module_is_seen() -> None:
    modules = module_files(ROOT, PACKAGES)
    assert {"excolor.train", "analysis.record", "tune.cli", "tune.runner"} <= set(modules)


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """A throw-away tree with a back-edge inside a function and a circle under TYPE_CHECKING."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "excolor" / "model.py").write_text("def f():\n    from tune.cli import main\n    import ray\n")
    (tmp_path / "analysis" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n"
    )
    (tmp_path / "analysis" / "b.py").write_text("from analysis import a\n")
    return tmp_path


def test_the_checks_catch_a_back_edge_and_a_circle(tangled: Path) -> None:
    modules = module_files(tangled, PACKAGES)
    assert layer_violations(modules) == [
        "excolor.model imports ray: excolor never imports ray",
        "excolor.model imports tune.cli.main: excolor may not depend on tune",
        "excolor.model imports tune.cli: excolor may not depend on tune",
    ]
    assert cycles(_without_package_inits(graph(modules))) == [["analysis.a", "analysis.b"]]


def test_status_and_the_search_driver_do_not_import_matplotlib() -> None:
    """matplotlib (~1 s here) is paid for only when a report or figure is made: not by ``excolor
    status``, nor by a study's driver, which prints the status at its end, nor by the W&B logger."""
    import subprocess
    import sys

    code = (
        "import sys, analysis.cli, tune.runner, tune.wandb_logging, tune.validate; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_training_does_not_import_what_only_tables_and_reports_need() -> None:
    """A trial process (``tune.cohort``) and ``excolor train``'s trainer import neither scipy (~0.5 s,
    for p-values only), moocore nor matplotlib, and nothing of ``analysis`` beyond what they use:
    the package's names are imported on first use."""
    import subprocess
    import sys

    code = (
        "import sys, tune.cohort, excolor.train; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'moocore', 'matplotlib'}), "
        "sorted(m for m in sys.modules if m in ('analysis.pareto', 'analysis.results', 'analysis.report')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] []"


def test_the_analysis_package_exports_every_name_it_lists() -> None:
    import analysis

    assert set(analysis.__all__) == set(analysis._EXPORTS)
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        analysis.nope  # noqa: B018
