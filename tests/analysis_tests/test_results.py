"""analysis.results: study directories -> tables, without Ray; states, hand schedule, Optuna, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.errors import AnalysisError
from analysis.results import load_studies, load_study
from tests.analysis_tests._studies import FakeTrial, write_study
from tune.space import SearchSpace


def _sweep(tmp_path: Path, name: str = "sw") -> Path:
    return write_study(
        tmp_path,
        name,
        [
            FakeTrial(scale={"anchor": 1.0}, finished=1_800_000_010.0),
            FakeTrial(scale={"anchor": 2.0}, finished=1_800_000_005.0),
            FakeTrial(state="failed", scale={"anchor": 4.0}),
            FakeTrial(state="running", scale={"anchor": 0.5}),
            FakeTrial(state="pending", scale={"anchor": 8.0}),
        ],
    )


def test_sweep_trials_states_hand_and_seeds(tmp_path: Path) -> None:
    study = load_study(_sweep(tmp_path))
    t = study.trials
    assert study.kind == "sweep" and study.name == "sw"
    assert t["state"].tolist() == ["done", "done", "failed", "running", "pending"]
    assert study.counts() == {"done": 2, "running": 1, "failed": 1, "pending": 1}
    assert t["hand"].tolist() == [True, False, False, False, False]  # scale 1 = the hand schedule
    assert t["config/scale/anchor"].tolist() == [1.0, 2.0, 4.0, 0.5, 8.0]
    assert "diverged" in t.loc[2, "error"]
    assert t["completion_order"].tolist()[:2] == [1.0, 0.0]  # trial 1 finished first
    assert t["score_mean"].notna().tolist() == [True, True, True, True, False]  # running/failed: last report
    assert study.optuna is None
    # one row per done trial x seed, typed
    s = study.seeds
    assert len(s) == 4 and s["seed"].tolist() == [0, 1, 0, 1]
    assert s["diverged"].dtype == bool and s["score"].dtype.kind == "f"
    assert set(s["trial_id"]) == {"t0", "t1"} and "config/scale/anchor" in s.columns


def test_a_study_reads_the_same_after_copying(tmp_path: Path) -> None:
    original = _sweep(tmp_path / "a")
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(original, copy)
    a, b = load_study(original), load_study(copy)
    assert a.trials.equals(b.trials)
    assert b.directory == copy.resolve()
    assert b.checkpoint("t0") is None and b.dopesheet("t0") is not None


def test_a_half_written_last_line_is_skipped(tmp_path: Path) -> None:
    path = _sweep(tmp_path)
    result = (
        next(
            p
            for p in path.glob("train_trial_*")
            if json.loads((p / "params.json").read_text())["scale"] == {"anchor": 1.0}
        )
        / "result.json"
    )
    result.write_text(result.read_text() + '{"score_mean": 0.1, "final": fa')
    study = load_study(path)
    assert study.trials.loc[0, "state"] == "done"
    assert any("unreadable line" in note for note in study.notes)


def test_search_with_journal_joins_optuna_and_finds_the_hand_schedule(tmp_path: Path) -> None:
    reference = SearchSpace.default().reference_params()
    trials = [
        FakeTrial(params=reference),  # tune enqueues the hand schedule first: Optuna's trial 0
        FakeTrial(params={**reference, "lr_peak": 0.2}),
        FakeTrial(state="failed", params={**reference, "lr_peak": 0.25}),
    ]
    study = load_study(write_study(tmp_path, "se", trials, kind="search", journal=True))
    assert study.optuna is not None and study.optuna["state"].tolist() == ["COMPLETE", "COMPLETE", "FAIL"]
    assert study.trials["optuna_number"].tolist() == [0, 1, 2]
    assert study.trials["optuna_state"].tolist() == ["COMPLETE", "COMPLETE", "FAIL"]
    assert study.trials["hand"].tolist() == [True, False, False]
    assert study.trials["config/lr_peak"].tolist() == [0.1, 0.2, 0.25]
    assert study.trials.loc[0, "n_seeds"] == 2  # a search trains the study's first seed group
    assert {"value/score", "value/recon", "param/lr_peak"} <= set(study.optuna.columns)


def test_search_hand_schedule_from_the_described_space(tmp_path: Path) -> None:
    space = SearchSpace.default()
    reference = space.reference_params()
    trials = [FakeTrial(params={**reference, "lr_peak": 0.2}), FakeTrial(params=reference)]
    path = write_study(tmp_path, "se", trials, kind="search")  # no journal
    record = json.loads((path / "study.json").read_text())
    (path / "study.json").write_text(json.dumps({**record, "space": space.describe()}))
    study = load_study(path)
    assert study.optuna is None and any("no optuna.journal" in n for n in study.notes)
    assert study.trials["hand"].tolist() == [False, True]
    assert study.hand_dopesheet().length == 40  # the space's base sheet, stretched to the study's steps


def test_unreadable_journal_is_a_note_not_an_error(tmp_path: Path) -> None:
    path = write_study(tmp_path, "se", [FakeTrial(params={"lr_peak": 0.1})], kind="search")
    (path / "optuna.journal").write_text("not a journal\n")
    study = load_study(path)
    assert study.optuna is None and any("optuna.journal" in n for n in study.notes)
    assert study.counts()["done"] == 1


def test_empty_study_has_empty_tables_with_columns(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, "empty", []))
    assert study.trials.empty and {"state", "hand", "score_mean", "val_recon_mean"} <= set(study.trials.columns)
    assert study.seeds.empty and "seed" in study.seeds.columns
    assert study.counts() == {"done": 0, "running": 0, "failed": 0, "pending": 0}


def test_load_studies_side_by_side(tmp_path: Path) -> None:
    a = _sweep(tmp_path / "x", "one")
    b = _sweep(tmp_path / "y", "two")
    c = _sweep(tmp_path / "z", "one")  # same name as a
    both = load_studies([a, b])
    assert both.trials["study"].value_counts().to_dict() == {"one": 5, "two": 5}
    assert set(both.seeds["study"]) == {"one", "two"}
    clash = load_studies([a, c])
    assert set(clash.trials["study"]) == {str(a.resolve()), str(c.resolve())}
    with pytest.raises(AnalysisError, match="no study"):
        load_studies([])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a directory"),
        (lambda p: p, "not an excolor study"),
        (lambda p: (p / "study.json").write_text("{nope") and p, "unreadable"),
        (lambda p: (p / "study.json").write_text('{"format": "other/9"}') and p, "format"),
        (lambda p: (p / "study.json").write_text('{"format": "excolor.study/1", "kind": "x"}') and p, "kind"),
    ],
)
def test_bad_directories_raise_one_clear_error(tmp_path: Path, setup: object, message: str) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(AnalysisError, match=message) as info:
        load_study(path)
    assert "\n" not in str(info.value)


def test_a_duplicated_trial_folder_keeps_both_rows(tmp_path: Path) -> None:
    path = _sweep(tmp_path)
    first = sorted(path.glob("train_trial_*"))[0]
    shutil.copytree(first, path / (first.name + "_copy"))
    study = load_study(path)
    assert len(study.trials) == 6 and study.trials["trial_id"].is_unique
    assert len(study.seeds) == 6
