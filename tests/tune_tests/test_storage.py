"""A full disk under a study: no configuration is failed for it, the journal survives, a rerun finishes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from analysis.objectives import objective
from tune.cohort_searcher import CohortSearcher
from tune.errors import is_storage_full
from tune.searcher import journal_storage, make_sampler
from tune.space import SearchSpace

ROOT = Path(__file__).resolve().parents[2]


def test_a_journal_line_cut_off_by_a_full_disk_is_dropped_not_glued_to_the_next(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="j", storage=journal_storage(tmp_path), directions=["maximize"])
    study.tell(study.ask(), 0.5)
    journal = tmp_path / "optuna.journal"
    whole = journal.read_bytes()
    with journal.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "cut')  # the write the full disk stopped
    again = optuna.load_study(study_name="j", storage=journal_storage(tmp_path))
    assert journal.read_bytes() == whole
    again.tell(again.ask(), 0.7)  # appends after the last complete line
    final = optuna.load_study(study_name="j", storage=journal_storage(tmp_path))
    assert [t.values for t in final.trials] == [[0.5], [0.7]]


def test_storage_full_is_recognised_through_rays_wrapping() -> None:
    assert is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("trial failed") from inner
    except RuntimeError as outer:
        assert is_storage_full(outer)
    assert is_storage_full(RuntimeError("ray::train_cohort() ... OSError: [Errno 28] No space left on device"))
    assert not is_storage_full(ValueError("missing search parameter"))


def test_a_cohort_stopped_by_a_full_disk_is_not_failed(tmp_path: Path, monkeypatch) -> None:
    searcher = CohortSearcher(
        study_dir=tmp_path,
        study_name="full",
        space=SearchSpace.default(),
        objectives=[objective("score"), objective("recon")],
        sampler=make_sampler("random", 0),
        trials=4,
        cohort=2,
    )
    searcher.suggest("a")
    monkeypatch.setattr("tune.cohort_searcher.storage_nearly_full", lambda directory: True)
    searcher.on_trial_complete("a", None, error=True)
    assert searcher.storage_full and searcher.suggest("b") == "FINISHED"  # nothing new starts
    states = [t.state for t in optuna.load_study(study_name="full", storage=journal_storage(tmp_path)).trials]
    assert states == [TrialState.RUNNING, TrialState.RUNNING]  # trained again on the rerun, not FAIL


def _mounted_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return ok.returncode == 0


@pytest.mark.slow
def test_a_search_on_a_disk_that_fills_stops_cleanly_and_finishes_after_space_is_freed(tmp_path: Path) -> None:
    """Storage on a 48 MB tmpfs filled mid-study: exit 1 with one line, no FAIL; freed, the rerun completes."""
    disk = tmp_path / "disk"
    if shutil.which("mount") is None or not _mounted_tmpfs(disk, "48m"):
        pytest.skip("this test needs to mount a tmpfs (root)")
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
        args = [sys.executable, "-m", "tune.cli", "search", "--name", "full", "--storage", str(disk)]
        args += ["--seeds", "0-2", "--steps", "300", "--trials", "6", "--cohort", "2", "--max-concurrent", "1"]
        args += ["--wandb", "disabled", "--max-failures", "1"]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        trials = disk / "full" / "trials"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list(trials.glob("*/seeds.csv"))) < 2:
            time.sleep(0.2)
        filler = disk / "filler"
        with filler.open("wb") as f:  # fill the disk
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err[-3000:]
        assert "ran out of space" in err and "Traceback" not in err.split("ran out of space")[-1]
        study = optuna.load_study(study_name="full", storage=journal_storage(disk / "full"))
        assert TrialState.FAIL not in [t.state for t in study.trials]
        finished = {p.parent.name: p.stat().st_mtime_ns for p in trials.glob("*/seeds.csv")}
        filler.unlink()
        rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        study = optuna.load_study(study_name="full", storage=journal_storage(disk / "full"))
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
        after = {p.parent.name: p.stat().st_mtime_ns for p in trials.glob("*/seeds.csv")}
        assert all(after[k] == v for k, v in finished.items()) and len(after) == 6
        for p in trials.glob("*/result.json"):
            json.loads(p.read_text().splitlines()[-1])  # every record ends in a whole line
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
