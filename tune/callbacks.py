"""Tune callbacks of a study: a progress line per finished trial, and W&B logging."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from analysis.objectives import objective

if TYPE_CHECKING:
    from tune.spec import StudySpec

__all__ = ["study_callbacks"]


HEARTBEAT_S = float(os.environ.get("EXCOLOR_HEARTBEAT_S", "30"))
"""Seconds between heartbeat lines while nothing else is printed."""


def _duration(seconds: float) -> str:
    """``75.0`` -> ``'1m15s'``; ``3725`` -> ``'1h02m'``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _progress(spec: StudySpec, done: int) -> Any:
    from ray import tune

    total = spec.total_trials()
    objectives = [objective(name) for name in spec.objectives]

    class _Progress(tune.Callback):  # type: ignore[misc]
        """A line per finished configuration (the study's objectives), and a heartbeat in between."""

        def __init__(self) -> None:
            self.finished = done  # configurations ended, in this run and before it
            self.failed = 0
            self.best: dict[str, float] = {}
            self.start = time.monotonic()
            self.last_line = self.start

        def _say(self, text: str) -> None:
            print(text, file=sys.stderr, flush=True)
            self.last_line = time.monotonic()

        def _best(self, values: dict) -> str:
            for o in objectives:
                v = float(values.get(o.column, float("nan")))
                if math.isfinite(v):
                    old = self.best.get(o.name)
                    self.best[o.name] = v if old is None else (max(old, v) if o.maximise else min(old, v))
            return "  ".join(f"{o.name} {self.best[o.name]:.4g}" for o in objectives if o.name in self.best)

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            now = time.monotonic()
            if now - self.last_line < HEARTBEAT_S:
                return
            running = sum(t.status == "RUNNING" for t in trials)
            elapsed = now - self.start
            if self.finished >= total:  # every configuration done: what runs is seed racing
                self._say(
                    f"... {self.finished}/{total} done; seed racing: {running} Ray trial(s) running; "
                    f"{_duration(elapsed)} elapsed"
                )
                return
            new = self.finished - done
            eta = f"ETA {_duration(elapsed / new * (total - self.finished))}" if new else "ETA after the first results"
            best = ", best " + "  ".join(f"{k} {v:.4g}" for k, v in self.best.items()) if self.best else ""
            self._say(
                f"... {self.finished}/{total} done, {self.failed} failed, {running} Ray trial(s) running; "
                f"{_duration(elapsed)} elapsed, {eta}{best}"
            )

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if not result.get("final"):
                return
            if "results" in result:  # a cohort: one line per configuration
                from tune.cohort_searcher import cohort_results

                outcomes = cohort_results(result)
                for key in sorted(k for k in outcomes if k.isdigit()):
                    self._configuration(f"trial {int(key):04d}", outcomes[key], f"   (Ray trial {trial.trial_id})")
                for key in sorted(k for k in outcomes if not k.isdigit()):  # seed racing: NNNN/race-K
                    self._race_block(key, outcomes[key])
                return
            self._configuration(trial.trial_id, {"values": result}, "")

        def _configuration(self, name: str, outcome: dict, where: str) -> None:
            self.finished += 1
            if outcome.get("diverged"):
                self.failed += 1
                self._say(f"[{self.finished}/{total}] {name}: FAIL, {outcome.get('reason')}")
                return
            values = outcome.get("values", {})
            shown = "  ".join(f"{o.name} {float(values.get(o.column, float('nan'))):.4g}" for o in objectives)
            best = self._best(values)
            self._say(
                f"[{self.finished}/{total}] {name}: {shown}  diverged {values.get('diverged_frac', 0):.0%}"
                f"   best: {best}{where}"
            )

        def _race_block(self, record: str, outcome: dict) -> None:
            number, _, block = record.partition("/")
            if outcome.get("diverged"):
                self._say(f"[race] trial {number} {block}: all seeds diverged")
                return
            values = outcome.get("values", {})
            shown = "  ".join(f"{o.name} {float(values.get(o.column, float('nan'))):.4g}" for o in objectives)
            self._say(f"[race] trial {number} {block} (its own seeds only): {shown}")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._say(f"[failed] Ray trial {trial.trial_id}: {trial.error_file or 'see its error.txt'}")

    return _Progress()


def study_callbacks(spec: StudySpec, *, done: int = 0) -> list[Any]:
    """Progress lines (counting from ``done`` configurations finished before), and the W&B logger
    unless ``--wandb disabled``."""
    callbacks = [_progress(spec, done)]
    if spec.wandb == "disabled":
        return callbacks
    from tune.wandb_logging import wandb_callback

    os.environ.setdefault("WANDB_DIR", str(spec.directory))
    return [*callbacks, wandb_callback(spec)]
