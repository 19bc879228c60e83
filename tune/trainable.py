"""The Ray Tune trainable: one trial = one configuration trained on a population of seeds.

After every validation the trial reports per-seed aggregates of the original metrics (mean, std and
the 10 % quantile of each, ``analysis.aggregate``) with a checkpoint of the whole
population; on restart it resumes from ``tune.get_checkpoint()`` exactly where it stopped. Only
finite numbers reach Tune and Optuna:

- a trial whose seeds all diverge raises ``TrialDiverged`` (the trial is FAILED, retried per
  ``FailureConfig``, and Optuna records it as failed rather than leaving it RUNNING);
- in a partly diverged trial each diverged seed counts as the worst outcome of every metric
  (``DIVERGED_VALUE``: score 0, reconstruction errors 1, ...) — the documented rule — and
  ``diverged_frac`` says how many there were.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.aggregate import aggregate
from analysis.record import DOPESHEET_FILE, EXPERIMENT_FILE, SEEDS_FILE

if TYPE_CHECKING:
    from excolor.config import Experiment
    from tune.space import SearchSpace

__all__ = ["TrialDiverged", "TrialSettings", "train_trial", "trial_experiment"]

CHECKPOINT_FILE = "population.pt"


class TrialDiverged(RuntimeError):
    """Every seed of the trial's population diverged: nothing finite to report."""


@dataclass(frozen=True)
class TrialSettings:
    """What a study fixes for all its trials (the searched/swept values come in ``config``)."""

    experiment: Experiment  # the study's resolved experiment (--hidden/--stream applied at the edge)
    steps: int | None = None  # every trial's schedule stretched to this many steps
    space: SearchSpace | None = None  # searches
    threads: int = 1
    seeds: tuple[int, ...] | None = None  # searches: every trial trains the same seeds
    checkpoint_every_s: float = 10.0  # population checkpoints at most this often (and at the end)
    device: str = "cpu"  # 'cpu', 'cuda' or 'auto' (resolved on the node that runs the trial)
    engine: str = "torch"  # excolor.train.ENGINES
    study_dir: str | None = None  # cohort searches write each configuration's record under it
    records: str | None = None  # ... in this subdirectory (default: trials/; validations: validation/<label>)
    cube: bool = True  # score every seed on the loss cube as it finishes (a search: --cube-metrics)


def trial_experiment(settings: TrialSettings, config: Mapping[str, Any]) -> Experiment:
    """The trial's experiment: the study's, with the searched or swept schedule and width, stretched."""
    base = settings.experiment
    sheet = base.dopesheet
    hidden = None
    if settings.space is not None:  # a search: the searched parameters define the schedule
        params = {k: v for k, v in config.items() if k in settings.space.distributions()}
        sheet, hidden = settings.space.apply(params)
    scales = config.get("scale") or {}
    if scales:  # a sweep: per-regularizer multipliers of the schedule
        sheet = sheet.scaled(dict(scales))
    if settings.steps is not None and settings.steps != sheet.length:
        sheet = sheet.stretched(settings.steps)
    experiment = base.with_dopesheet(sheet) if sheet is not base.dopesheet else base
    return experiment.with_model(hidden=int(hidden)) if hidden is not None else experiment


def train_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Tune function trainable (use ``tune.with_parameters(train_trial, settings=...)``)."""
    import torch
    from ray import tune

    from excolor.devices import resolve_device
    from excolor.train import PopulationTrainer

    torch.set_num_threads(max(1, settings.threads))
    seeds = [int(s) for s in config.get("seeds", settings.seeds or ())]
    experiment = trial_experiment(settings, config)
    trainer = PopulationTrainer(experiment, seeds, device=resolve_device(settings.device), engine=settings.engine)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trainer.load(os.path.join(d, CHECKPOINT_FILE))
    trial_dir = Path(tune.get_context().get_trial_dir())
    from excolor.experiments import to_yaml

    (trial_dir / DOPESHEET_FILE).write_text(experiment.dopesheet.to_csv())
    (trial_dir / EXPERIMENT_FILE).write_text(to_yaml(experiment))  # the trial's resolved experiment

    last_checkpoint = [time.monotonic()]

    import ray

    node_id = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, Any], *, final: bool = False) -> None:
        row = {**metrics, "step": trainer.step, "final": final, "node_id": node_id}
        # A checkpoint costs a file write, a copy to storage and a Tune state snapshot: take one
        # at most every CHECKPOINT_EVERY_S seconds, and always at the end.
        if not final and time.monotonic() - last_checkpoint[0] < settings.checkpoint_every_s:
            tune.report(row)
            return
        with tempfile.TemporaryDirectory() as d:
            trainer.save(os.path.join(d, CHECKPOINT_FILE))
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))
        last_checkpoint[0] = time.monotonic()

    def on_validation(step: int, metrics: dict[str, np.ndarray]) -> None:
        diverged = ~trainer.alive[: trainer.n_models].cpu().numpy()
        if diverged.all():
            raise TrialDiverged(_diverged_reason(trainer, seeds))
        # The score of the model so far: Tune wants every objective in every report, and it shows
        # how the ablation score develops (final value: after the last step).
        score, r = (v[: trainer.n_models] for v in trainer.ablation_scores())
        report(aggregate({**metrics, "score": score, "ablated_r": r}, diverged=diverged))

    trainer.run(report=on_validation)
    final = trainer.final_metrics()
    if final["diverged"].all():
        raise TrialDiverged(_diverged_reason(trainer, seeds))
    import pandas as pd

    pd.DataFrame(final).to_csv(trial_dir / SEEDS_FILE, index=False)
    keys = ["seed", "score", "ablated_r", "val_recon"] + [
        f"val_{r.name}" for r in experiment.regularizers if r.validates
    ]
    per_seed = {k: [float(x) for x in final[k]] for k in keys}
    report({**aggregate(final, diverged=final["diverged"]), "per_seed": per_seed}, final=True)


def _diverged_reason(trainer: Any, seeds: list[int]) -> str:
    steps = trainer.diverged_step[: trainer.n_models].cpu().numpy()
    return (
        f"all {len(seeds)} seeds diverged (non-finite loss or gradient; first at step {int(steps.min())}, "
        f"last at step {int(steps.max())}): the schedule's lr or weights are too large"
    )
