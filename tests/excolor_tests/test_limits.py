"""Sizes bounded when a file is read, and silently inert science refused (issue 16, items 9, 10, 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from excolor.config import ModelConfig
from excolor.data import TrainingData
from excolor.dopesheet import Dopesheet, DopesheetError
from excolor.experiments import ExperimentError, parse_experiment
from excolor.limits import (
    MAX_STEPS,
    LimitError,
    check_memory,
    check_steps,
    experiment_sizes,
    experiment_sizes_default,
    memory_limit,
)
from excolor.regularizers import AngularAnchor, AntiAnchor, RegularizerConfig, check_affinities
from tune.cli import main

BASE = """\
name: mine
seeds: 0-3
model: {kind: CNColorMLP, k_bottleneck: 5, hidden: 8, n_nonlinear: 1}
data:
  colors: rgb-grid
  batch_size: 64
  validation_grid: 8
  labels:
    red: {attribute: redness, power: 8, scale: 0.08}
regularizers:
  - {name: anchor, kind: AngularAnchor, concept: [1, 0, 0, 0, 0], labels: {red: 1.0}, phases: [train, validate]}
  - {name: separate, kind: Separate, options: {power: 100, shift: true}}
dopesheet: |
  STEP,lr,anchor
  0,1e-8,0
  10,0.01,0.1
evaluation: {concept_dim: 0, score_grid: 8, interventions: [suppression]}
"""

# (id, replaced text, replacement, field, fragments of the message)
HOSTILE = [
    ("hidden-1e9", "hidden: 8", "hidden: 1000000000", "model.hidden", ["at most 65,536", "1000000000"]),
    ("n_nonlinear-1e6", "n_nonlinear: 1", "n_nonlinear: 1000000", "model.n_nonlinear", ["at most 256"]),
    ("k_bottleneck-1e6", "k_bottleneck: 5", "k_bottleneck: 1000000", "model.k_bottleneck", ["at most 1,024"]),
    ("batch-1e12", "batch_size: 64", "batch_size: 1000000000000", "data.batch_size", ["at most 1,048,576"]),
    ("batch-memory", "batch_size: 64", "batch_size: 1048576", "data.batch_size", ["TiB", "model_bytes", "limit"]),
    (
        "codec-memory",
        "hidden: 8, n_nonlinear: 1",
        "hidden: 65536, n_nonlinear: 8",
        "model.hidden",
        ["65,536 makes two models need about", "TiB"],
    ),
    ("validation-grid", "validation_grid: 8", "validation_grid: 100000", "data.validation_grid", ["at most 200"]),
    ("score-grid", "score_grid: 8", "score_grid: 5000", "evaluation.score_grid", ["at most 200"]),
    ("seeds-range", "seeds: 0-3", "seeds: 0-99999999999", "seeds", ["seeds are at most 4294967295"]),
    ("seeds-int", "seeds: 0-3", "seeds: 99999999999", "seeds", ["seeds are at most 4294967295"]),
    ("seeds-count", "seeds: 0-3", "seeds: 0-20000000", "seeds", ["at most 10,000,000"]),
    ("seeds-negative", "seeds: 0-3", "seeds: -5", "seeds", ["expected N, N-M"]),
    (
        "subnormal-concept",
        "concept: [1, 0, 0, 0, 0]",
        "concept: [1e-320, 0, 0, 0, 0]",
        "regularizers[0].concept",
        ["below the smallest normal float32"],
    ),
    (
        "tiny-concept",
        "concept: [1, 0, 0, 0, 0]",
        "concept: [1e-30, 0, 0, 0, 0]",
        "regularizers[0].concept",
        ["norm is 1e-30; expected at least 0.001"],
    ),
    (
        "huge-concept",
        "concept: [1, 0, 0, 0, 0]",
        "concept: [1e30, 0, 0, 0, 0]",
        "regularizers[0].concept",
        ["magnitude of at most 1e+06"],
    ),
    ("zero-concept", "concept: [1, 0, 0, 0, 0]", "concept: [0, 0, 0, 0, 0]", "regularizers[0].concept", ["zero"]),
    (
        "strength-minus-1e30",
        "labels: {red: 1.0}",
        "labels: {red: -1e30}",
        "regularizers[0].labels.red",
        ["strength in [-1, 1]", "-1e+30"],
    ),
    ("strength-2", "labels: {red: 1.0}", "labels: {red: 2}", "regularizers[0].labels.red", ["[-1, 1]"]),
    ("strength-zero", "labels: {red: 1.0}", "labels: {red: 0}", "regularizers[0].labels.red", ["at least 0.001"]),
    ("strength-subnormal", "labels: {red: 1.0}", "labels: {red: 1e-320}", "regularizers[0].labels.red", ["0.001"]),
    ("strength-negative", "labels: {red: 1.0}", "labels: {red: -0.5}", "regularizers[0].labels", ["no strength"]),
    (
        "separate-power",
        "options: {power: 100",
        "options: {power: 1e30",
        "regularizers[1].options.power",
        ["at most 1000"],
    ),
    ("label-power", "power: 8,", "power: 1e300,", "data.labels.red.power", ["at most 1000"]),
    ("label-scale", "scale: 0.08", "scale: 1e-320", "data.labels.red.scale", ["labels no colour"]),
    ("score-power", "score_grid: 8,", "score_grid: 8, score_power: 1e9,", "evaluation.score_power", ["at most 1000"]),
    ("long-name", "name: mine", "name: " + "m" * 300, "name", ["at most 100 characters", "got 300"]),
    ("long-term-name", "{name: anchor,", "{name: " + "a" * 300 + ",", "regularizers[0].name", ["at most 100"]),
    ("dopesheet-step", "10,0.01,0.1", "1000000000000,0.01,0.1", "dopesheet", ["line 3, column 'STEP'", "1,000,000"]),
    ("dopesheet-weight", "10,0.01,0.1", "10,0.01,1e-320", "dopesheet", ["line 3, column 'anchor'", "float32"]),
]


@pytest.mark.parametrize(("old", "new", "field", "fragments"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_experiment_file(old: str, new: str, field: str, fragments: list[str]) -> None:
    """One ExperimentError naming the file and the field, raised before anything is allocated."""
    assert old in BASE
    with pytest.raises(ExperimentError) as info:
        parse_experiment(BASE.replace(old, new), source="mine.yaml")
    err = info.value
    message = str(err)
    assert err.field == field, message
    assert message.startswith(f"mine.yaml, {field}: ") and "\n" not in message and len(message) < 400
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_base_is_valid_and_bounds_are_inclusive() -> None:
    e = parse_experiment(BASE, source="mine.yaml")
    assert e.seeds == "0-3" and e.model.hidden == 8
    edge = BASE.replace("validation_grid: 8", "validation_grid: 200").replace(
        "labels: {red: 1.0}", "labels: {red: -1, x: 1}"
    )
    edge = edge.replace(
        "    red: {attribute", "    x: {attribute: redness, power: 1000, scale: 1e-9}\n    red: {attribute"
    )
    assert parse_experiment(edge).data.validation_grid == 200
    assert parse_experiment(BASE.replace("seeds: 0-3", "seeds: 4294967295")).seeds == "4294967295"


# ------------------------------------------------------------------------------------ dopesheets


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("STEP,lr\n0,1e-8\n1000000000000,0.1\n", 3, "STEP", "beyond the limit of 1,000,000 steps"),
        ("STEP,lr\n0,1e-8\n1" + "0" * 5000 + ",0.1\n", 3, "STEP", "(5,001 characters) is beyond the limit"),
        ("STEP,lr\n0,1e-8\n+10000000,0.1\n", 3, "STEP", "beyond the limit"),
        ("STEP,lr\n10,1e-8\n+999990,0.1\n", 3, "STEP", "resolves to 1,000,000; a schedule spans at most 1,000,000"),
        ("STEP,lr\n0,1e-8\n10,1" + "0" * 5000 + "\n", 3, "lr", "overflows float32"),
        ("STEP,lr\n0,1e-8\n10,1e39\n", 3, "lr", "overflows float32"),
        ("STEP,lr,w\n0,1e-8,1e-320\n10,0.1,1\n", 2, "w", "below the smallest normal float32"),
        ("STEP,lr:log\n0,1e-12\n10,0.1\n", 2, "lr", "must be >= 1e-10"),
    ],
    ids=[
        "step-1e12",
        "step-5000-digits",
        "offset",
        "resolved",
        "value-5000-digits",
        "value-1e39",
        "subnormal",
        "log-floor",
    ],
)
def test_hostile_dopesheet(text: str, line: int, column: str, fragment: str) -> None:
    with pytest.raises(DopesheetError) as info:
        Dopesheet.parse(text, source="sheet.csv")
    err = info.value
    assert (err.source, err.row, err.column) == ("sheet.csv", line, column)
    assert fragment in str(err) and len(str(err)) < 300, str(err)


def test_longest_dopesheet_is_accepted() -> None:
    assert Dopesheet.parse(f"STEP,lr\n0,1e-8\n{MAX_STEPS - 1},0.1\n").length == MAX_STEPS


@pytest.mark.parametrize("n", [10**9, 10**5000, MAX_STEPS + 1], ids=["1e9", "1e5000", "max+1"])
def test_stretch_bounded(n: int) -> None:
    sheet = Dopesheet.parse("STEP,lr\n0,1e-8\n10,0.1\n")
    with pytest.raises(ValueError, match=r"n_steps: expected a number of steps in 2\.\.1,000,000"):
        sheet.stretched(n)


@pytest.mark.parametrize(
    "n",
    [1, 0, -5, MAX_STEPS + 1, 10**12, 10**5000, 2.5, True, "10"],
    ids=["1", "0", "-5", "max+1", "1e12", "1e5000", "float", "bool", "str"],
)
def test_check_steps_refuses(n: object) -> None:
    with pytest.raises(ValueError) as info:
        check_steps(n)
    assert str(info.value).startswith("expected a number of steps in 2..1,000,000, got ") and len(str(info.value)) < 120


def test_check_steps_accepts() -> None:
    assert (check_steps(2), check_steps(MAX_STEPS)) == (2, MAX_STEPS)


# ------------------------------------------------------------------------------------ memory


def test_check_memory_names_the_costliest_field() -> None:
    sizes = experiment_sizes_default()
    check_memory(sizes)
    with pytest.raises(LimitError) as info:
        check_memory({**sizes, "model.n_nonlinear": 256, "model.hidden": 20_000})
    assert (info.value.field in ("model.hidden", "model.n_nonlinear") and "GiB" in str(info.value)) or "TiB" in str(
        info.value
    )
    assert memory_limit() >= 256 << 30


def test_experiment_sizes_of_a_preset() -> None:
    from excolor.experiments import preset

    sizes = experiment_sizes(preset())
    assert sizes == {**experiment_sizes_default(), "data.validation_grid": 8}
    check_memory(sizes)


# ------------------------------------------------------------------------------- science sanity


@pytest.mark.parametrize("cls", [AngularAnchor, AntiAnchor])
@pytest.mark.parametrize("point", [[1e-320, 0, 0], [1e-40, 0, 0], [1e-9, 0, 0], [0, 0, 0], [float("nan"), 1, 0]])
def test_inert_directions_refused(cls: type, point: list[float]) -> None:
    with pytest.raises(ValueError):
        cls(point)


def test_usable_directions_accepted() -> None:
    assert float(AngularAnchor([0.001, 0, 0]).direction[0]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "affinities", [{"red": -1e30}, {"red": 1.5}, {"red": 0.0}, {"red": -0.5}, {"red": float("nan")}, {}]
)
def test_inert_affinities_refused(affinities: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        check_affinities(affinities)
    with pytest.raises(ValueError, match="regularizer 'anchor'"):
        RegularizerConfig("anchor", AngularAnchor([1, 0, 0]), label_affinities=affinities)


# ------------------------------------------------------------------------------------ the CLI

CLI_CASES = {
    "dev-zero": None,
    "deep": BASE + "description: " + "[" * 5000 + "]" * 5000 + "\n",
    "digits": BASE.replace("hidden: 8", "hidden: 1" + "0" * 5000),
    "hidden": BASE.replace("hidden: 8", "hidden: 1000000000"),
    "batch": BASE.replace("batch_size: 64", "batch_size: 1000000000000"),
    "seeds": BASE.replace("seeds: 0-3", "seeds: 0-99999999999"),
    "concept": BASE.replace("concept: [1, 0, 0, 0, 0]", "concept: [1e-320, 0, 0, 0, 0]"),
    "strength": BASE.replace("labels: {red: 1.0}", "labels: {red: -1e30}"),
    "step": BASE.replace("10,0.01,0.1", "1000000000000,0.01,0.1"),
    "50MB": BASE + "description: " + "x" * (50 << 20) + "\n",
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_train_refuses_a_hostile_experiment(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit status 2, one line on stderr naming the file, nothing written to --out."""
    text = CLI_CASES[case]
    path = "/dev/zero" if text is None else str(tmp_path / "hostile.yaml")
    if text is not None:
        Path(path).write_text(text)
    out = tmp_path / "out"
    assert main(["train", "--experiment", path, "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"excolor train: error: --experiment: {path}"), captured.err
    assert len(lines[0]) < 400 and captured.out == ""
    assert not out.exists()


def test_train_refuses_a_huge_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["train", "--steps", "1000000000", "--seeds", "0", "--out", str(out), "--quiet"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "1,000,000" in lines[0]
    assert not out.exists()


def test_train_refuses_a_dev_zero_dopesheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["train", "--dopesheet", "/dev/zero", "--seeds", "0", "--out", str(out), "--quiet"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "/dev/zero: cannot read the file: not a regular file" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: ModelConfig(hidden=10**9), "model.hidden must be at most 65,536"),
        (lambda: ModelConfig(n_nonlinear=10**6), "model.n_nonlinear must be at most 256"),
        (lambda: TrainingData(batch_size=10**12), "batch_size must be at most 1,048,576"),
        (lambda: TrainingData(validation_grid=10**4), "validation_grid must be at most 200"),
        (lambda: TrainingData(colors="hsv-cube", hsv_shape=(10**4, 10**4, 10)), "more than 10,000,000 colours"),
    ],
    ids=["hidden", "n_nonlinear", "batch_size", "validation_grid", "hsv_shape"],
)
def test_python_api_sizes_bounded(build: object, fragment: str) -> None:
    """The typed configs refuse the same sizes, for callers that skip the file reader (``--hidden``)."""
    with pytest.raises(ValueError, match=fragment):
        build()  # type: ignore[operator]
