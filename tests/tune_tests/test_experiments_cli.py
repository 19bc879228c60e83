"""Experiments through the command line: --experiment on train/sweep/search, `excolor experiments`,
search spaces derived from an experiment's dopesheet, and the errors a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from excolor.experiments import PRESETS, load_experiment, preset, to_dict
from tune.cli import main
from tune.space import SearchSpace

QUICK = ["--steps", "40", "--wandb", "disabled"]


def _trial_dirs(study: Path) -> list[Path]:
    return sorted(p for p in study.iterdir() if p.is_dir() and (p / "params.json").exists())


def test_experiments_lists_every_preset_on_one_line(capsys) -> None:
    assert main(["experiments"]) == 0
    out = capsys.readouterr().out.splitlines()
    for name in PRESETS:
        (line,) = [line for line in out if line.startswith(name + " ")]
        assert len(line.split(None, 1)[1]) > 20  # a real description


def test_experiments_prints_an_editable_file_that_loads_back(tmp_path: Path, capsys) -> None:
    assert main(["experiments", "ex-2.4"]) == 0
    path = tmp_path / "mine.yaml"
    path.write_text(capsys.readouterr().out)
    assert to_dict(load_experiment(path)) == to_dict(preset("ex-2.4"))


def test_unknown_experiment_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["train", "--experiment", "ex-2.9", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "ex-2.9" in err and "ex-2.9.1" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_experiment_file_typo_names_the_field(tmp_path: Path, capsys) -> None:
    doc = to_dict(preset("ex-2.8"))
    doc["regularizers"][1]["kind"] = "AngularAnchr"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["train", "--experiment", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "regularizers[1].kind" in err and "AngularAnchor" in err and "Unitarity" in err


@pytest.mark.parametrize("name", ["ex-2.8", "ex-2.1"])
def test_train_with_an_experiment_writes_a_rerunnable_record(name: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / name
    args = ["train", "--experiment", name, "--seeds", "0-2", "--steps", "60", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{name}: ") and "60 steps" in printed
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["seed"].tolist() == [0, 1, 2]
    assert metrics["score"].between(0, 1).all()
    validating = [r.name for r in preset(name).regularizers if r.validates]
    assert all(f"val_{v}" in metrics for v in validating)
    # The saved experiment reproduces the run exactly.
    again = tmp_path / "again"
    assert (
        main(["train", "--experiment", str(out / "experiment.yaml"), "--seeds", "0-2", "--quiet", "--out", str(again)])
        == 0
    )
    pd.testing.assert_series_equal(pd.read_csv(again / "metrics.csv")["score"], metrics["score"])


def test_dopesheet_with_another_experiments_columns_is_refused(tmp_path: Path, capsys) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text(preset("ex-2.9.1").dopesheet.to_csv())
    assert main(["train", "--experiment", "ex-2.8", "--dopesheet", str(sheet), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "separate" in err and "reg-anchor" in err


def test_derived_space_covers_the_experiments_schedule() -> None:
    """A non-default experiment gets a space over its own keyframes and rows; its reference point is the
    experiment's schedule itself."""
    experiment = preset("ex-2.8")
    space = SearchSpace.for_experiment(experiment)
    props = {v.prop for v in space.values}
    assert props == {"lr", "reg-separate", "reg-anchor", "reg-anti-anchor", "reg-unit"}
    assert {t.step for t in space.times} == {10, 500, 1000, 2800}
    sheet, hidden = space.apply(space.reference_params())
    assert hidden is None and sheet.to_csv() == experiment.dopesheet.to_csv()
    # The default experiment keeps its hand-written space.
    assert SearchSpace.for_experiment(preset()).source == "<default>"


def test_search_of_another_experiment_end_to_end(ray_session, tmp_path: Path, capsys) -> None:
    args = [
        "search",
        "--experiment",
        "ex-2.10.1",
        "--name",
        "s10",
        "--storage",
        str(tmp_path),
        "--seeds",
        "0",
        "--trials",
        "2",
        "--objective",
        "score",
        "--objective",
        "anchor",
        *QUICK,
    ]
    assert main(args) == 0
    study = tmp_path / "s10"
    record = json.loads((study / "study.json").read_text())
    assert record["experiment"]["name"] == "ex-2.10.1"
    names = set(SearchSpace.for_experiment(preset("ex-2.10.1")).names)
    storage = JournalStorage(JournalFileBackend(str(study / "optuna.journal")))
    trials = optuna.load_study(study_name="s10", storage=storage).get_trials()
    assert len(trials) == 2 and all(set(t.params) == names for t in trials)
    assert all(len(t.values) == 2 for t in trials)
    for t in sorted((study / "trials").iterdir()):  # one record per configuration
        trial_experiment = load_experiment(t / "experiment.yaml")
        assert [r.name for r in trial_experiment.regularizers] == ["separate", "anchor", "anti-subspace"]
        last = json.loads((t / "result.json").read_text().splitlines()[-1])
        assert "val_anchor_mean" in last and "val_anti-anchor_mean" not in last and "suppression_r_mean" in last
    assert "val_anchor_mean" in capsys.readouterr().out  # the status front shows the objective's column


def test_sweep_scales_an_experiments_own_regularizer(ray_session, tmp_path: Path) -> None:
    args = ["sweep", "--experiment", "ex-2.1", "--name", "w", "--storage", str(tmp_path), "--seeds", "0"]
    assert main([*args, "--scale", "reg-polar=1,2", *QUICK]) == 0
    trials = _trial_dirs(tmp_path / "w" / "trials")
    peaks = sorted(max(load_experiment(t / "experiment.yaml").dopesheet.track("reg-polar").values) for t in trials)
    assert len(trials) == 2 and peaks[1] == pytest.approx(2 * peaks[0])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "anchor=1,2"], "unknown name 'anchor'; ex-2.8 has lr, reg-unit"),
        (["--objective", "anchor"], None),
    ],
)
def test_study_names_are_checked_against_the_experiment(
    tmp_path: Path, capsys, extra: list[str], message: str | None
) -> None:
    kind = "sweep" if extra[0] == "--scale" else "search"
    args = [kind, "--experiment", "ex-2.8", "--name", "x", "--storage", str(tmp_path), *extra, *QUICK]
    assert main(args) == 2
    err = capsys.readouterr().err
    if message is None:
        assert "unknown objective 'anchor' for ex-2.8" in err and "reg-anchor" in err
    else:
        assert message in err
    assert not (tmp_path / "x").exists()


def test_a_space_for_another_experiment_is_refused(tmp_path: Path, capsys) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("base: ex-2.9.1\nvalues: [{name: a, prop: anchor, steps: [248, 750], low: 0.01, high: 1.0}]\n")
    args = ["search", "--experiment", "ex-2.8", "--name", "x", "--storage", str(tmp_path), "--space", str(space)]
    assert main([*args, *QUICK]) == 2
    err = capsys.readouterr().err
    assert "separate" in err and "not a regularizer of ex-2.8" in err
