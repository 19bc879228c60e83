"""W&B logging of a study: one run per Ray trial (a cohort), written into the study directory.

A Tune ``LoggerCallback`` on the driver writes every run, through W&B's one service process.
NOTE(excolor): Ray's ``WandbLoggerCallback`` starts two Ray actors per trial (a logging actor that
imports W&B and Ray's integration, and a queue actor) and W&B starts a service in each logging
actor: ~5 CPU-s per Ray trial, which cost 6–14 s of a 40–54-s Tune run of 512 models on 2 cores
(`python benchmarks/cohort_search.py`, the issue's W&B-offline throughput). The driver is idle
while trials train, and W&B (≥ 0.19) keeps several runs open in one process: here W&B offline now
costs under a second of such a run (44.7 s against 44.3 s with W&B disabled, same configurations).

What is logged, and where:

- the run is written into the trial's directory in the study (``STUDY/train_cohort_*/wandb/``), not
  into Ray's temporary session directory, so ``wandb sync STUDY/*/wandb/offline-run-*`` finds every
  offline run, complete;
- its name lists the configurations it trains (``trials 0016-0031``), its config holds the study's
  settings (``study/...``: experiment, seeds, steps, objectives, sampler) beside the cohort;
- metrics are plotted against the training step (``step``), not Tune's report count;
- the final report adds two tables keyed by the configurations' trial ids: ``configurations`` (each
  configuration's final objectives) and ``per_seed`` (every seed's final values);
- the API key stays in the driver's own environment, where the user set it: nothing passes it to
  Ray (whose runtime-env agent logged actors' env vars in plaintext), and offline runs need none.
"""

from __future__ import annotations

import contextlib
import json
import logging
from numbers import Number
from typing import TYPE_CHECKING, Any

from ray.tune.logger import LoggerCallback
from ray.tune.utils import flatten_dict

if TYPE_CHECKING:
    from tune.spec import StudySpec

__all__ = ["wandb_callback"]

logger = logging.getLogger(__name__)

EXCLUDED = ["node_id", "members", "results", "done", "pid", "hostname", "date", "time_since_restore"]
"""Result keys that are bookkeeping, not metrics (the cohort's outcomes arrive as tables instead)."""

_TO_CONFIG = ["trial_id", "experiment_tag", "node_ip", "experiment_id"]
"""Result keys that describe the Ray trial: they go into the run's config once, as Ray's callback does."""


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


def _metrics(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers to log, trial facts for the config) of one Tune result, keys flattened with ``/``."""
    log: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    for key, value in flatten_dict({k: v for k, v in result.items() if k != "config"}, delimiter="/").items():
        top = key.split("/", 1)[0]
        if top in EXCLUDED or top == "should_checkpoint":
            continue
        if top in _TO_CONFIG:
            facts[key] = value
        elif isinstance(value, Number) or (hasattr(value, "item") and getattr(value, "size", 0) == 1):
            log[key] = value.item() if hasattr(value, "item") else value
    return log, facts


class _StudyWandb(LoggerCallback):  # type: ignore[misc]
    """One W&B run per Ray trial, written from the driver (see the module docstring)."""

    def __init__(self, spec: StudySpec) -> None:
        self._spec = spec
        self._runs: dict[Any, Any] = {}
        self._wandb: Any = None
        self._broken = False  # W&B failed once: the study goes on without it

    def _module(self) -> Any:
        if self._wandb is None:
            import wandb

            self._wandb = wandb
        return self._wandb

    def _give_up(self, what: str, error: Exception) -> None:
        """W&B failed (no network for ``online``, a full disk, a W&B bug): say so once and log no more.
        NOTE(excolor): the driver runs this logger, so a W&B failure must never reach Tune, and an
        unreachable server (W&B waits ~90 s per ``init``) must not stall the study run after run."""
        if not self._broken:
            self._broken = True
            reason = f"{type(error).__name__}: {error}"
            logger.warning("W&B: %s (%s); the study goes on without W&B logging", what, reason)
        self._close_open()

    def log_trial_start(self, trial: Any) -> None:
        if trial in self._runs or self._broken:  # open already; a retried trial's failed run was closed
            return
        try:
            wandb = self._module()
            record = self._spec.record()
            settings = {k: record[k] for k in record if k not in ("storage", "space", "wandb")}
            config = {k: v for k, v in trial.config.items() if k not in EXCLUDED and k != "callbacks"}
            run = wandb.init(
                project="excolor",
                group=self._spec.name,
                name=_run_name(trial.config, str(trial)),
                id=trial.trial_id,
                config={**config, "study": settings, "trial_log_path": trial.path},
                dir=trial.path,  # the trial's directory in the study, not Ray's session
                mode=self._spec.wandb,
                reinit="create_new",  # one open run per Ray trial, side by side in this process
                allow_val_change=True,
                settings=wandb.Settings(console="off", silent=True),  # the driver's terminal is the CLI's
            )
            run.define_metric("step")
            run.define_metric("*", step_metric="step")
        except Exception as error:
            self._give_up(f"the run of Ray trial {trial.trial_id} did not start", error)
            return
        self._runs[trial] = run

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if trial not in self._runs:
            self.log_trial_start(trial)
        run = self._runs.get(trial)
        if run is None:
            return
        try:
            log, facts = _metrics(result)
            if facts:
                run.config.update(facts, allow_val_change=True)
            if result.get("final") and isinstance(result.get("results"), str):
                log.update(_tables(self._module(), json.loads(result["results"])))
            run.log(log)  # W&B counts its own rows; charts use the logged training ``step``
        except Exception as error:
            self._give_up(f"logging Ray trial {trial.trial_id} failed", error)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        run = self._runs.pop(trial, None)
        if run is not None:
            self._finish(run, failed)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._close_open()  # the run stopped first (Ctrl-C, a full disk)

    def _close_open(self) -> None:
        """Close every open run as failed."""
        runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            self._finish(run, failed=True)

    def _finish(self, run: Any, failed: bool) -> None:
        try:
            run.finish(exit_code=1 if failed else 0)
        except Exception as error:  # a lost log must not fail the study; W&B's failure is said once
            if not self._broken:
                logger.warning("W&B run %s did not finish cleanly: %s", run.name, error)

    def __del__(self) -> None:  # quiet: logging at interpreter exit prints its own errors
        with contextlib.suppress(Exception):
            for run in self._runs.values():
                run.finish(exit_code=1)


def wandb_callback(spec: StudySpec) -> Any:
    """The study's W&B logger (``--wandb offline|online``)."""
    return _StudyWandb(spec)
