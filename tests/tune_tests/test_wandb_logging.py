"""The driver's W&B logger: a W&B failure never reaches Tune, and stops W&B for the rest of the study."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tune.wandb_logging import _StudyWandb


class _Run:
    def __init__(self, fail_log: bool) -> None:
        self.fail_log = fail_log
        self.rows: list[dict[str, Any]] = []
        self.exit_code: int | None = None
        self.name = "run"
        self.config = SimpleNamespace(update=lambda *a, **k: None)

    def define_metric(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, row: dict[str, Any]) -> None:
        if self.fail_log:
            raise OSError("No space left on device")
        self.rows.append(row)

    def finish(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code


class _Wandb:
    """The parts of the ``wandb`` module the logger calls; ``init`` fails or its runs fail to log."""

    def __init__(self, *, fail_init: bool = False, fail_log: bool = False) -> None:
        self.fail_init, self.fail_log = fail_init, fail_log
        self.inits = 0
        self.runs: list[_Run] = []
        self.names: list[str] = []

    def init(self, **kwargs: Any) -> _Run:
        self.inits += 1
        self.names.append(kwargs["name"])
        if self.fail_init:
            raise TimeoutError("Run initialization has timed out after 90.0 sec")
        self.runs.append(_Run(self.fail_log))
        return self.runs[-1]

    def Settings(self, **kwargs: Any) -> dict[str, Any]:  # wandb.Settings
        return kwargs


def _logger(tmp_path: Path, wandb: _Wandb) -> _StudyWandb:
    spec = SimpleNamespace(name="s", wandb="online", record=lambda: {"name": "s", "storage": str(tmp_path)})
    callback = _StudyWandb(spec)  # type: ignore[arg-type]
    callback._wandb = wandb
    return callback


class _Trial:
    """What the logger reads of a Tune trial (hashable, as Tune's are)."""

    def __init__(self, tmp_path: Path, number: int) -> None:
        self.trial_id, self.config, self.path = f"t{number}", {"cohort": [{"number": number}]}, str(tmp_path)


def test_a_run_that_cannot_start_leaves_the_study_alone_and_is_not_retried(tmp_path: Path, caplog) -> None:
    wandb = _Wandb(fail_init=True)
    callback = _logger(tmp_path, wandb)
    first, second = _Trial(tmp_path, 0), _Trial(tmp_path, 1)
    with caplog.at_level(logging.WARNING, logger="tune.wandb_logging"):
        callback.log_trial_start(first)
        callback.log_trial_result(1, first, {"step": 150, "score_mean": 0.5})
        callback.log_trial_start(second)
        callback.log_trial_result(1, second, {"step": 150})
        callback.log_trial_end(first)
        callback.on_experiment_end([first, second])
    assert wandb.inits == 1  # an unreachable server is not waited for again, trial after trial
    (message,) = [r.getMessage() for r in caplog.records]
    assert "the run of Ray trial t0 did not start (TimeoutError" in message and "goes on without W&B" in message


def test_a_run_that_cannot_log_is_closed_and_logging_stops(tmp_path: Path, caplog) -> None:
    wandb = _Wandb(fail_log=True)
    callback = _logger(tmp_path, wandb)
    first, second = _Trial(tmp_path, 0), _Trial(tmp_path, 1)
    with caplog.at_level(logging.WARNING, logger="tune.wandb_logging"):
        callback.log_trial_start(first)
        callback.log_trial_start(second)
        callback.log_trial_result(1, first, {"step": 150})
        callback.log_trial_result(1, second, {"step": 150})
        callback.log_trial_end(second)
    assert [r.exit_code for r in wandb.runs] == [1, 1]  # both open runs closed as failed
    assert len(caplog.records) == 1 and "logging Ray trial t0 failed (OSError" in caplog.records[0].getMessage()


@pytest.mark.parametrize("failed", [False, True])
def test_a_run_is_named_after_its_configurations_and_closed_as_its_trial_ended(tmp_path: Path, failed: bool) -> None:
    wandb = _Wandb()
    callback = _logger(tmp_path, wandb)
    trial = _Trial(tmp_path, 7)
    callback.log_trial_result(1, trial, {"step": 150, "score_mean": 0.5, "node_id": "x", "config": {"a": 1}})
    callback.log_trial_end(trial, failed=failed)
    (run,) = wandb.runs
    assert wandb.names == ["trial 0007"]  # the id the CLI, the records and the report use
    assert run.rows == [{"step": 150, "score_mean": 0.5}]  # bookkeeping and the config are not metrics
    assert run.exit_code == (1 if failed else 0)
