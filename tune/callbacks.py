"""Tune callbacks of a study: a progress line per finished trial, and W&B logging."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from analysis.objectives import objective

if TYPE_CHECKING:
    from tune.spec import StudySpec

__all__ = ["study_callbacks"]


def _progress(spec: StudySpec, done: int) -> Any:
    from ray import tune

    total = spec.total_trials()
    objectives = [objective(name) for name in spec.objectives]

    class _Progress(tune.Callback):  # type: ignore[misc]
        """One line per finished or failed trial: the study's objectives and the best score so far."""

        def __init__(self) -> None:
            self.finished = done
            self.best = float("-inf")

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if not result.get("final"):
                return
            if "results" in result:  # a cohort: one line per configuration
                from tune.cohort_searcher import cohort_results

                for number, outcome in sorted(cohort_results(result).items(), key=lambda kv: int(kv[0])):
                    self._configuration(int(number), outcome, trial.trial_id)
                return
            self.finished += 1
            score = float(result.get("score_mean", float("nan")))
            self.best = max(self.best, score)
            values = "  ".join(f"{o.name} {float(result.get(o.column, float('nan'))):.4g}" for o in objectives)
            print(
                f"[{self.finished}/{total}] {trial.trial_id}: {values}  diverged {result.get('diverged_frac', 0):.0%}"
                f"   best score {self.best:.4g}",
                file=sys.stderr,
                flush=True,
            )

        def _configuration(self, number: int, outcome: dict, ray_trial: str) -> None:
            self.finished += 1
            if outcome.get("diverged"):
                print(f"[{self.finished}/{total}] trial {number:04d}: FAIL, {outcome.get('reason')}", file=sys.stderr)
                return
            values = outcome.get("values", {})
            self.best = max(self.best, float(values.get("score_mean", float("-inf"))))
            shown = "  ".join(f"{o.name} {float(values.get(o.column, float('nan'))):.4g}" for o in objectives)
            print(
                f"[{self.finished}/{total}] trial {number:04d}: {shown}  diverged {values.get('diverged_frac', 0):.0%}"
                f"   best score {self.best:.4g}   (Ray trial {ray_trial})",
                file=sys.stderr,
                flush=True,
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"[failed] {trial.trial_id}: {trial.error_file or 'see its error.txt'}", file=sys.stderr, flush=True)

    return _Progress()


def study_callbacks(spec: StudySpec, *, done: int = 0) -> list[Any]:
    """Progress lines (counting from ``done`` configurations finished before), and Ray's W&B callback
    unless ``--wandb disabled``."""
    callbacks = [_progress(spec, done)]
    if spec.wandb == "disabled":
        return callbacks
    from ray.air.integrations.wandb import WandbLoggerCallback

    os.environ.setdefault("WANDB_DIR", str(spec.directory))
    return [*callbacks, WandbLoggerCallback(project="excolor", group=spec.name, mode=spec.wandb, log_config=True)]
