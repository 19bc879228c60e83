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
from analysis.objectives import ALL_OBJECTIVES, Constraint, Objective, feasible, resolve_objectives
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
    original_minimize,
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
    "objective_columns",
    "original_columns",
    "original_rule",
    "study_original_rule",
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
        infeasible: trial ids left out for breaking one of the study's constraints (``feasible`` column).
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
    infeasible: tuple[str, ...] = ()

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
        objectives: objective names (default: the study's own, from study.json); any objective of
            the study's experiment (``score``, ``recon``, ``score-q10``, a validating regularizer).

    Raises:
        AnalysisError: an objective name the study's experiment does not know.
    """
    objs = resolve_objectives(objectives, study.experiment) if objectives is not None else study.objectives
    columns = [o.column for o in objs]
    maximise = [o.maximise for o in objs]
    done = study.done().copy()
    points = done[columns].to_numpy(dtype=np.float64, copy=True) if len(done) else np.empty((0, len(objs)))  # (n, m)
    done["feasible"] = _feasible(done, study.constraints)
    points[~done["feasible"].to_numpy(dtype=bool)] = np.nan  # an infeasible trial is never on a front
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
        invalid=tuple(str(t) for t in done.loc[invalid & done["feasible"].to_numpy(dtype=bool), "trial_id"]),
        infeasible=tuple(str(t) for t in done.loc[~done["feasible"].astype(bool), "trial_id"]),
        bounds=bounds,
        hypervolume=hypervolume(points, maximise=maximise),
        history=hypervolume_history(points, maximise=maximise),
    )


def _feasible(done: pd.DataFrame, constraints: Sequence[Constraint]) -> pd.Series:
    """Whether each done trial keeps the study's constraints (all True without constraints)."""
    if not constraints:
        return pd.Series(True, index=done.index, dtype=bool)
    rows = done.to_dict("records")
    return pd.Series([feasible(r, constraints) for r in rows], index=done.index, dtype=bool)


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
    """§9.10's selection over per-seed rows: front (NaN and ties kept) and the best seed.

    ``minimize`` and ``maximize`` are the columns compared; ``missing`` the rule's columns that the
    per-seed table lacks (left out of the comparison, e.g. a metric an older study did not record).
    """

    rows: pd.DataFrame  # the per-seed rows compared
    front: pd.DataFrame  # original_front(rows)
    best: pd.Series  # the best row (largest score on the front)
    minimize: tuple[str, ...] = ORIGINAL_MINIMIZE
    maximize: tuple[str, ...] = ORIGINAL_MAXIMIZE
    missing: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The compared columns: maximised first (score), then minimised (val_recon, val_<reg>...)."""
        return [*self.maximize, *self.minimize]


def original_columns(study: Study) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """§9.10's ``(minimize, maximize)`` per-seed columns for the study's experiment.

    Minimise val_recon and each validating regularizer's ``val_<name>``, maximise score: for Ex
    2.9.1 exactly the notebook's ``ORIGINAL_MINIMIZE`` / ``ORIGINAL_MAXIMIZE``.
    """
    return original_minimize(study.validating), ORIGINAL_MAXIMIZE


def _rule_columns(
    seeds: pd.DataFrame, minimize: Sequence[str], maximize: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(minimize, maximize, missing): regularizer columns the table lacks are left out; recon and score are not."""
    required = {"val_recon", "score", *maximize}
    missing = tuple(c for c in minimize if c not in seeds.columns and c not in required)
    return tuple(c for c in minimize if c not in missing), tuple(maximize), missing


def original_rule(
    seeds: pd.DataFrame,
    /,
    *,
    minimize: Sequence[str] = ORIGINAL_MINIMIZE,
    maximize: Sequence[str] = ORIGINAL_MAXIMIZE,
) -> OriginalRule:
    """§9.10 on per-seed rows: minimise ``minimize`` (Ex 2.9.1: val_recon, val_anchor, val_anti-anchor),
    maximise ``maximize`` (score).

    A regularizer column the table lacks is left out (and listed in ``missing``); val_recon and the
    score are required.

    Raises:
        AnalysisError: no rows, a missing val_recon or score column, or no row with a score.
    """
    if seeds.empty:
        raise AnalysisError("no per-seed results to apply the original rule to")
    mini, maxi, missing = _rule_columns(seeds, minimize, maximize)
    front = original_front(seeds, mini, maxi)
    best = original_best(seeds, minimize=mini, maximize=maxi)
    return OriginalRule(rows=seeds, front=front, best=seeds.loc[best], minimize=mini, maximize=maxi, missing=missing)


def study_original_rule(study: Study) -> OriginalRule:
    """§9.10 over all the study's per-seed rows, with the columns of its experiment (``original_columns``)."""
    minimize, maximize = original_columns(study)
    return original_rule(study.seeds, minimize=minimize, maximize=maximize)


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
    minimize, maximize = original_columns(study)
    if all_hand_sweep(study):
        rule = original_rule(seeds, minimize=minimize, maximize=maximize)
        row = rule.best
        return BestModel(str(row["trial_id"]), int(row["seed"]), "§9.10 best over all seeds (hand-schedule sweep)", row)
    candidates = summary.front[summary.front["trial_id"].isin(seeds["trial_id"])]
    candidates = candidates[candidates["score_mean"].notna()]
    if candidates.empty:
        return None
    trial = candidates.loc[candidates["score_mean"].idxmax()]
    rows = seeds[seeds["trial_id"] == trial["trial_id"]]
    mini, maxi, _ = _rule_columns(rows, minimize, maximize)
    try:
        row = rows.loc[original_best(rows, minimize=mini, maximize=maxi)]
    except AnalysisError:
        return None
    return BestModel(
        str(trial["trial_id"]),
        int(row["seed"]),
        "front trial with the largest mean score; its §9.10 best seed",
        row,
    )


OBJECTIVE_COLUMNS = [o.column for o in ALL_OBJECTIVES]
"""Every Ex 2.9.1 objective column (``objective_columns`` gives a study's)."""


def objective_columns(study: Study) -> list[str]:
    """Every objective column of the study's experiment, for scatter matrices."""
    return [o.column for o in study.known_objectives]
