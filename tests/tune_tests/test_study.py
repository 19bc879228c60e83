"""Sweeps and searches end to end on a real (embedded) Ray, resume, failures and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analysis.results import load_study
from excolor.dopesheet import Dopesheet
from tests.tune_tests.wandb_records import history, run_config
from tune.cli import main
from tune.space import SearchSpace

QUICK = ["--steps", "40", "--wandb", "disabled"]


def _trial_dirs(study: Path) -> list[Path]:
    return sorted(p for p in study.iterdir() if p.is_dir() and (p / "params.json").exists())


def _optuna_states(study: Path, name: str) -> dict[str, int]:
    storage = JournalStorage(JournalFileBackend(str(study / "optuna.journal")))
    states: dict[str, int] = {}
    for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return states


def test_sweep_end_to_end_and_rerun(ray_session, tmp_path: Path, capsys) -> None:
    args = [
        "sweep",
        "--name",
        "sw",
        "--storage",
        str(tmp_path),
        "--seeds",
        "0-3",
        "--seeds-per-trial",
        "2",
        "--scale",
        "anchor=1,2",
        *QUICK,
    ]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "4 done" in out.out
    assert "4 configurations x 2 seeds, cohorts of 2" in out.err  # two Ray trials fill the two CPUs
    study = tmp_path / "sw"
    assert json.loads((study / "study.json").read_text())["layout"] == "cohort"
    trials = _trial_dirs(study / "trials")
    assert [t.name for t in trials] == ["0000", "0001", "0002", "0003"]
    anchors = set()
    for t in trials:
        params = json.loads((t / "params.json").read_text())
        sheet = Dopesheet.read(t / "dopesheet.csv")
        anchors.add((params["scale"]["anchor"], max(sheet.track("anchor").values)))
        seeds = pd.read_csv(t / "seeds.csv")
        assert seeds["seed"].tolist() == params["seeds"]
        last = json.loads((t / "result.json").read_text().splitlines()[-1])
        assert last["final"] and 0 <= last["score_mean"] <= 1
    assert {a: round(v, 6) for a, v in anchors} == {1.0: 0.1, 2.0: 0.2}
    # Running the same command again trains nothing: the records say every configuration is done.
    before = {t.name: (t / "seeds.csv").stat().st_mtime_ns for t in trials}
    assert main(args) == 0
    assert "all trained" in capsys.readouterr().err
    assert {t.name: (t / "seeds.csv").stat().st_mtime_ns for t in _trial_dirs(study / "trials")} == before
    assert load_study(study).counts()["done"] == 4


def test_search_end_to_end(ray_session, tmp_path: Path, capsys) -> None:
    args = [
        "search",
        "--name",
        "se",
        "--storage",
        str(tmp_path),
        "--seeds",
        "0-1",
        "--trials",
        "4",
        "--sampler",
        "random",
        *QUICK,
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "optuna: complete 4" in out
    study = tmp_path / "se"
    assert _optuna_states(study, "se") == {"COMPLETE": 4}
    storage = JournalStorage(JournalFileBackend(str(study / "optuna.journal")))
    first = optuna.load_study(study_name="se", storage=storage).trials[0]
    reference = SearchSpace.default().reference_params()
    assert first.params == pytest.approx(reference)  # the hand schedule is always trial 0
    assert len(first.values) == 2  # multi-objective: score and recon
    record = json.loads((study / "study.json").read_text())
    assert record["kind"] == "search" and record["objectives"] == ["score", "recon"]
    assert main(args) == 0  # rerun: nothing added
    assert _optuna_states(study, "se") == {"COMPLETE": 4}
    assert len(list((study / "trials").iterdir())) == 4


def test_diverging_trials_fail_with_reason_and_leave_nothing_running(ray_session, tmp_path: Path, capsys) -> None:
    base = tmp_path / "explode.csv"
    base.write_text("STEP,lr,separate,anchor,anti-anchor,anti-subspace\n0,1e36,0.01,0.1,0.05,0.1\n39,1e36,0,0,0,0\n")
    space = tmp_path / "space.yaml"
    space.write_text(
        f"base: {base}\nvalues:\n  - name: lr\n    prop: lr\n    steps: [0]\n    low: 1.0e35\n    high: 1.0e37\n"
    )
    args = [
        "search",
        "--name",
        "boom",
        "--storage",
        str(tmp_path),
        "--seeds",
        "0-1",
        "--trials",
        "2",
        "--space",
        str(space),
        "--max-failures",
        "0",
        *QUICK,
    ]
    assert main(args) == 0  # the study completes
    out = capsys.readouterr()
    study = tmp_path / "boom"
    status = load_study(study)
    assert status.counts()["failed"] == 2
    assert all("diverged" in (error or "") for error in status.trials["error"])
    assert "all 2 seeds diverged" in out.out
    assert _optuna_states(study, "boom") == {"FAIL": 2}  # none left RUNNING


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "anchor=x"], "--scale anchor"),
        (["--scale", "anchr=1,2"], "unknown name 'anchr'"),
        (["--scale", "anchor=-1"], ">= 0"),
        (["--seeds-per-trial", "9"], "exceeds"),
        (["--address", "nohost"], "--address"),
        (["--name", "a/b"], "--name"),
        (["--steps", "1"], "--steps"),
        (["--storage", "s3://bucket/studies"], "cloud URIs are not supported"),
    ],
)
def test_sweep_rejects_bad_input_and_writes_nothing(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    args = ["sweep", "--name", "bad", "--storage", str(tmp_path / "store"), "--seeds", "0-3", *extra]
    if "--name" in extra:
        args = [a for a in args[:3] if a != "--name"] + args[3:]
        args = ["sweep", "--storage", str(tmp_path / "store"), "--seeds", "0-3", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "store" / "bad").exists()


def test_search_rejects_a_malformed_space(tmp_path: Path, capsys) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(
        "base: ex-2.9.1\nvalues:\n  - name: a\n    prop: anchor\n    steps: [248]\n    low: 0.5\n    high: 0.1\n"
    )
    assert main(["search", "--name", "s", "--storage", str(tmp_path / "store"), "--space", str(space)]) == 2
    err = capsys.readouterr().err
    assert "space.yaml" in err and "values[0]" in err and "Traceback" not in err
    assert not (tmp_path / "store" / "s").exists()


def test_storage_that_is_a_file_is_rejected(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["sweep", "--name", "s", "--storage", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_a_different_study_under_the_same_name_is_refused(ray_session, tmp_path: Path, capsys) -> None:
    args = ["sweep", "--name", "x", "--storage", str(tmp_path), "--seeds", "0-1", *QUICK]
    assert main(args) == 0
    assert main([*args[:-4], "--steps", "50", "--wandb", "disabled"]) == 2
    assert "different study" in capsys.readouterr().err


def test_status_of_a_non_study(tmp_path: Path, capsys) -> None:
    assert main(["status", str(tmp_path)]) == 2
    assert "not an excolor study" in capsys.readouterr().err


def test_wandb_offline_logs_locally_and_keeps_the_api_key_out_of_rays_logs(
    ray_session, tmp_path: Path, monkeypatch
) -> None:
    """--wandb offline writes a local W&B run per trial, never reaches the network, never logs the key."""
    secret = "excolor-test-secret-5f3a9c1e7b"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    args = [
        "sweep",
        "--name",
        "wb",
        "--storage",
        str(tmp_path),
        "--seeds",
        "0-1",
        "--steps",
        "40",
        "--wandb",
        "offline",
    ]
    assert main(args) == 0
    runs = list((tmp_path / "wb").glob("*/wandb/offline-run-*"))
    assert len(runs) == 1
    (run_file,) = runs[0].glob("run-*.wandb")  # complete, in the study (not in Ray's session directory)
    name, config = run_config(run_file)
    assert name == "trial 0000"  # the id the CLI, the records and the report use
    assert config["study"]["seeds"] == [0, 1] and config["study"]["steps"] == 40
    assert config["study"]["experiment"]["name"] == "ex-2.9.1"
    rows = history(run_file)
    assert [r["step"] for r in rows if not r.get("final")] == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    assert all("node_id" not in r and "results" not in r for r in rows)
    final = rows[-1]
    assert final["final"] is True and final["per_seed/nrows"] == 2 and final["configurations/nrows"] == 1
    import ray

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    leaks = [p for p in session.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []  # Ray's runtime-env agent logs an actor's env vars in plaintext
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_trials_orphaned_by_a_killed_driver_are_marked_failed(tmp_path: Path) -> None:
    """A suggestion the killed driver never started stays RUNNING in the journal unless closed."""
    from tune.searcher import fail_orphaned_trials

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.create_study(study_name="o", storage=storage, directions=["maximize", "minimize"])
    done = study.ask()
    study.tell(done, [0.5, 0.1])
    study.ask()  # suggested, never trained
    assert fail_orphaned_trials(tmp_path, "o") == 1
    states = [t.state.name for t in optuna.load_study(study_name="o", storage=storage).get_trials()]
    assert states == ["COMPLETE", "FAIL"]
    assert fail_orphaned_trials(tmp_path, "o") == 0
    assert fail_orphaned_trials(tmp_path / "none", "o") == 0  # sweeps have no journal


@pytest.mark.parametrize("hostile", ["world-writable", "symlink"])
def test_a_study_made_before_cohorts_is_not_unpickled_from_files_others_could_write(
    tmp_path: Path, hostile: str
) -> None:
    """Resuming an old study unpickles Ray's state: only from files that are the user's alone."""
    from analysis.record import write_study_record
    from excolor.experiments import preset, to_dict
    from tune.errors import UsageError
    from tune.runner import run_study
    from tune.spec import StudySpec

    spec = StudySpec(
        kind="sweep", name="old", storage=str(tmp_path), seeds=(0,), seeds_per_trial=1, experiment=to_dict(preset())
    )
    write_study_record(spec.directory, spec.record())  # no "layout": made before cohorts
    pickle = spec.directory / "tuner.pkl"
    if hostile == "symlink":
        (tmp_path / "elsewhere.pkl").write_bytes(b"not yours")
        pickle.symlink_to(tmp_path / "elsewhere.pkl")
    else:
        pickle.write_bytes(b"replaced")
        pickle.chmod(0o666)
    with pytest.raises(UsageError, match=r"tuner\.pkl (is writable by other users|is a symbolic link)"):
        run_study(spec, preset(), progress=False)
    assert pickle.read_bytes() in (b"replaced", b"not yours")  # untouched; Ray never started
