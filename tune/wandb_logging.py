"""W&B logging of a study: one run per Ray trial (a cohort), written into the study directory.

Ray's ``WandbLoggerCallback`` does the work (one logging actor per trial on the driver's node);
excolor changes what it logs and where:

- the run is written into the trial's directory in the study (``STUDY/train_cohort_*/wandb/``), not
  into Ray's temporary session directory, so ``wandb sync STUDY/*/wandb/offline-run-*`` finds every
  offline run, complete;
- its name lists the configurations it trains (``trials 0016-0031``), its config holds the study's
  settings (``study/...``: experiment, seeds, steps, objectives, sampler) beside the cohort;
- metrics are plotted against the training step (``step``), not Tune's report count;
- the final report adds two tables keyed by the configurations' trial ids: ``configurations`` (each
  configuration's final objectives) and ``per_seed`` (every seed's final values);
- the API key never enters Ray's runtime env (Ray's runtime-env agent logged it in plaintext): the
  actor gets it as an argument, and offline runs get none.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

import ray
from ray.air.integrations.wandb import WANDB_ENV_VAR, WandbLoggerCallback, _WandbLoggingActor
from ray.air.util.node import _force_on_current_node

if TYPE_CHECKING:
    from tune.spec import StudySpec

__all__ = ["wandb_callback"]

EXCLUDED = ["node_id", "members", "results", "done", "pid", "hostname", "date", "time_since_restore"]
"""Result keys that are bookkeeping, not metrics (the cohort's outcomes arrive as tables instead)."""


class _StepAxis:
    """The ``wandb`` module as the logging actor uses it, with every metric plotted against ``step``."""

    def __init__(self, wandb: Any) -> None:
        self._wandb = wandb

    def init(self, *args: Any, **kwargs: Any) -> Any:
        run = self._wandb.init(*args, **kwargs)
        run.define_metric("step")
        run.define_metric("*", step_metric="step")
        return run

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        self._wandb.log(data)  # W&B counts its own rows; charts use the logged training ``step``

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wandb, name)


class _LoggingActor(_WandbLoggingActor):  # type: ignore[misc]
    """Ray's W&B logging actor with the step axis, the cohort's tables and the key as an argument."""

    def __init__(self, *args: Any, api_key: str | None = None, **kwargs: Any) -> None:
        if api_key:
            os.environ[WANDB_ENV_VAR] = api_key
        super().__init__(*args, **kwargs)
        self._wandb = _StepAxis(self._wandb)  # type: ignore[assignment]

    def _handle_result(self, result: dict) -> tuple[dict, dict]:
        log, config = super()._handle_result({k: v for k, v in result.items() if k != "results"})
        if result.get("final") and isinstance(result.get("results"), str):
            log.update(_tables(self._wandb, json.loads(result["results"])))
        return log, config


def _tables(wandb: Any, outcomes: dict[str, Any]) -> dict[str, Any]:
    """The cohort's final outcomes as two W&B tables: per configuration, and per seed."""
    columns: list[str] = []
    seed_columns: list[str] = []
    for outcome in outcomes.values():
        columns += [k for k in outcome.get("values", {}) if k not in columns]
        seed_columns += [k for k in outcome.get("per_seed", {}) if k not in seed_columns]
    configurations = wandb.Table(columns=["trial_id", "diverged", *columns])
    per_seed = wandb.Table(columns=["trial_id", *seed_columns])
    for key, outcome in sorted(outcomes.items()):
        trial_id = f"{int(key):04d}" if key.isdigit() else key
        values = outcome.get("values", {})
        configurations.add_data(trial_id, bool(outcome.get("diverged")), *[values.get(c) for c in columns])
        seeds = outcome.get("per_seed", {})
        for i in range(len(seeds.get("seed", []))):
            per_seed.add_data(trial_id, *[seeds[c][i] if c in seeds else None for c in seed_columns])
    return {"configurations": configurations, "per_seed": per_seed}


def _run_name(config: dict[str, Any], fallback: str) -> str:
    """``trials 0016-0031`` for a cohort (the ids the CLI, the records and the report use)."""
    members = config.get("cohort") or []
    names = [str(m.get("record") or f"{int(m['number']):04d}") for m in members if isinstance(m, dict)]
    if not names:
        return fallback
    race = " race" if any(isinstance(m, dict) and m.get("race") for m in members) else ""
    return f"trial {names[0]}{race}" if len(names) == 1 else f"trials {names[0]}-{names[-1]}{race}"


class _Wandb(WandbLoggerCallback):  # type: ignore[misc]
    """Ray's W&B callback, logging as the module docstring says and failing quietly at exit.

    NOTE(excolor): Ray's ``__del__`` calls ``ray.is_initialized()``; collected at interpreter exit
    (after ``ray`` is torn down) it printed "Exception ignored in ... __del__" and a traceback.
    """

    _logger_actor_cls = _LoggingActor

    def __init__(self, spec: StudySpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._spec = spec

    def _start_logging_actor(self, trial: Any, exclude_results: list[str], **wandb_init_kwargs: Any) -> None:
        if not self._remote_logger_class:
            # As Ray makes it, without a runtime env and without restarts (a restart needs its arguments
            # kept in the object store, which Ray warns about; a lost logger loses only logging).
            options: dict[str, Any] = {"num_cpus": 0}
            options.update(_force_on_current_node())  # type: ignore[arg-type]
            self._remote_logger_class = ray.remote(**options)(self._logger_actor_cls)  # type: ignore[assignment]
        record = self._spec.record()
        settings = {k: record[k] for k in record if k not in ("storage", "space", "wandb")}
        wandb_init_kwargs["config"] = {**(wandb_init_kwargs.get("config") or {}), "study": settings}
        wandb_init_kwargs["name"] = _run_name(trial.config, str(wandb_init_kwargs.get("name")))
        wandb_init_kwargs["dir"] = trial.path  # the trial's directory in the study, not Ray's session
        os.makedirs(trial.path, exist_ok=True)
        key = os.environ.get(WANDB_ENV_VAR) if self._spec.wandb == "online" else None
        super()._start_logging_actor(trial, exclude_results, api_key=key, **wandb_init_kwargs)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            super().__del__()


def wandb_callback(spec: StudySpec) -> Any:
    """Ray's W&B callback for the study (``--wandb offline|online``)."""
    return _Wandb(spec, project="excolor", group=spec.name, mode=spec.wandb, log_config=True, excludes=EXCLUDED)
