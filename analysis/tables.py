"""Study-level answers built from the loaded tables: the front, the hand schedule's place, the best model.

``pareto``, ``report`` and the CLI all ask the same questions of a ``Study``; this module answers
them once, with the numeric work delegated to ``analysis.pareto``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.errors import AnalysisError
from analysis.objectives import ALL_OBJECTIVES, Objective, resolve_objectives
from analysis.pareto import (
    ORIGINAL_MAXIMIZE,
    ORIGINAL_MINIMIZE,
    domination_counts,
    front_mask,
    hypervolume,
    hypervolume_history,
    invalid_mask,
    original_best,
    original_front,
    pareto_ranks,
    seed_attainment,
)
from analysis.results import Study

__all__ = [
    "OBJECTIVE_COLUMNS",
    "BestModel",
    "FrontSummary",
    "OriginalRule",
    "all_hand_sweep",
    "best_model_choice",
    "front_summary",
    "original_rule",
]


@dataclass(frozen=True)
class FrontSummary:
    """The Pareto view of a study's done trials over some objectives.

    Attributes:
        objectives: the objectives compared.
        done: the done trials in completion order, with added columns ``on_front``, ``pareto_rank``
            (0 = front, -1 = invalid), ``dominated_by`` (how many trials dominate it) and
            ``seed_attainment`` (fraction of its seeds on which it is on the per-seed front; NaN
            without per-seed rows).
        front: the rows of ``done`` on the front, best first in the first objective.
        invalid: trial ids left out for a NaN or infinite objective.
        bounds: ``(2, m)`` normalisation bounds of the hypervolume (min and max of the valid rows).
        hypervolume: against ``DEFAULT_REFERENCE`` in every normalised objective.
        history: ``(n,)`` hypervolume after each done trial, in completion order.
    """

    objectives: tuple[Objective, ...]
    done: pd.DataFrame
    front: pd.DataFrame
    invalid: tuple[str, ...]
    bounds: npt.NDArray[np.float64]
    hypervolume: float
    history: npt.NDArray[np.float64]

    @property
    def columns(self) -> list[str]:
        return [o.column for o in self.objectives]

    @property
    def maximise(self) -> list[bool]:
        return [o.maximise for o in self.objectives]

    def hand(self) -> pd.DataFrame:
        """The done hand-schedule trials with their Pareto columns."""
        return self.done[self.done["hand"].astype(bool)]


def front_summary(study: Study, objectives: Sequence[str] | None = None) -> FrontSummary:
    """Front, ranks, hypervolume (history) and seed attainment of the study's done trials.

    Args:
        study: a loaded study.
        objectives: objective names (default: the study's own, from study.json).

    Raises:
        AnalysisError: an unknown objective name.
    """
    objs = resolve_objectives(objectives) if objectives is not None else study.objectives
    columns = [o.column for o in objs]
    maximise = [o.maximise for o in objs]
    done = study.done().copy()
    points = done[columns].to_numpy(dtype=np.float64) if len(done) else np.empty((0, len(objs)))  # (n, m)
    done["on_front"] = front_mask(points, maximise=maximise)
    done["pareto_rank"] = pareto_ranks(points, maximise=maximise)
    done["dominated_by"] = domination_counts(points, maximise=maximise)
    done["seed_attainment"] = _attainment(study, objs, done)
    invalid = invalid_mask(points)
    valid_points = points[~invalid]
    bounds = (
        np.stack([valid_points.min(axis=0), valid_points.max(axis=0)])
        if len(valid_points)
        else np.zeros((2, len(objs)))
    )
    front = done[done["on_front"]]
    first = objs[0]
    front = front.sort_values(first.column, ascending=not first.maximise, kind="stable")
    return FrontSummary(
        objectives=objs,
        done=done,
        front=front,
        invalid=tuple(str(t) for t in done.loc[invalid, "trial_id"]),
        bounds=bounds,
        hypervolume=hypervolume(points, maximise=maximise),
        history=hypervolume_history(points, maximise=maximise),
    )


def _attainment(study: Study, objs: Sequence[Objective], done: pd.DataFrame) -> pd.Series:
    out = pd.Series(np.nan, index=done.index)
    seeds = study.seeds
    seed_columns = list(dict.fromkeys(o.seed_column for o in objs))
    if seeds.empty or any(c not in seeds.columns for c in seed_columns):
        return out
    rows = seeds[seeds["trial_id"].isin(done["trial_id"])]
    if rows.empty:
        return out
    maximise = [next(o.maximise for o in objs if o.seed_column == c) for c in seed_columns]
    labels, fraction = seed_attainment(
        rows[seed_columns].to_numpy(dtype=np.float64),
        seeds=rows["seed"].to_numpy(),
        trials=rows["trial_id"].astype(str).to_numpy(),
        maximise=maximise,
    )
    by_trial = dict(zip(labels.tolist(), fraction.tolist()))
    return done["trial_id"].astype(str).map(by_trial).astype(float)


def all_hand_sweep(study: Study) -> bool:
    """A sweep whose trials all run the hand schedule (e.g. the 60-seed reference): seeds are the only variable."""
    return study.kind == "sweep" and len(study.trials) > 0 and bool(study.trials["hand"].astype(bool).all())


@dataclass(frozen=True)
class OriginalRule:
    """§9.10's selection over per-seed rows: front (NaN and ties kept) and the best seed."""

    rows: pd.DataFrame  # the per-seed rows compared
    front: pd.DataFrame  # original_front(rows)
    best: pd.Series  # the best row (largest score on the front)


def original_rule(seeds: pd.DataFrame) -> OriginalRule:
    """§9.10 on per-seed rows: minimise val_recon, val_anchor, val_anti-anchor; maximise score.

    Raises:
        AnalysisError: no rows, a missing column, or no row with a score.
    """
    if seeds.empty:
        raise AnalysisError("no per-seed results to apply the original rule to")
    front = original_front(seeds, ORIGINAL_MINIMIZE, ORIGINAL_MAXIMIZE)
    best = original_best(seeds)
    return OriginalRule(rows=seeds, front=front, best=seeds.loc[best])


@dataclass(frozen=True)
class BestModel:
    """Which model the report opens: a trial, one of its seeds, and why those."""

    trial_id: str
    seed: int
    reason: str
    seed_row: pd.Series


def best_model_choice(study: Study, summary: FrontSummary) -> BestModel | None:
    """The best trial and, within it, the best seed; None without per-seed results.

    For a sweep of the hand schedule only, seeds are all that varies: the best seed is §9.10's best
    over all per-seed rows, as in the notebook. Otherwise the best trial is the front's trial with
    the largest mean score, and its best seed is §9.10's best among that trial's seeds.
    """
    seeds = study.seeds
    if seeds.empty:
        return None
    if all_hand_sweep(study):
        rule = original_rule(seeds)
        row = rule.best
        return BestModel(str(row["trial_id"]), int(row["seed"]), "§9.10 best over all seeds (hand-schedule sweep)", row)
    candidates = summary.front[summary.front["trial_id"].isin(seeds["trial_id"])]
    candidates = candidates[candidates["score_mean"].notna()]
    if candidates.empty:
        return None
    trial = candidates.loc[candidates["score_mean"].idxmax()]
    rows = seeds[seeds["trial_id"] == trial["trial_id"]]
    try:
        row = rows.loc[original_best(rows)]
    except AnalysisError:
        return None
    return BestModel(
        str(trial["trial_id"]),
        int(row["seed"]),
        "front trial with the largest mean score; its §9.10 best seed",
        row,
    )


OBJECTIVE_COLUMNS = [o.column for o in ALL_OBJECTIVES]
"""Every objective column, for scatter matrices."""
