"""Objective names shared with ``tune``: which column each one reads, and in which direction.

``tune.study`` owns the names and directions: ``objective_metric`` (the trial-level column),
``objective_mode`` (``'max'`` or ``'min'``) and ``known_objectives(experiment)`` (``score``,
``recon``, ``score-q10`` and the experiment's validating regularizers, e.g. ``reg-anchor`` ->
``val_reg-anchor_mean``). This module only adds what analysis needs on top: the per-seed column
that each trial-level aggregate summarises, and one clear error for a name the study does not know.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analysis.errors import AnalysisError
from tune.study import OBJECTIVES, known_objectives, objective_metric, objective_mode

__all__ = ["ALL_OBJECTIVES", "Objective", "experiment_objectives", "objective", "resolve_objectives"]


@dataclass(frozen=True)
class Objective:
    """One objective of a study.

    Attributes:
        name: the CLI / study.json name, e.g. ``'recon'`` or ``'reg-anchor'``.
        column: the trial-level column in ``Study.trials``, e.g. ``'val_recon_mean'``.
        seed_column: the per-seed column in ``Study.seeds`` that ``column`` aggregates over
            seeds (``'score'`` for both ``score`` and ``score-q10``).
        maximise: True for scores, False for errors.
    """

    name: str
    column: str
    seed_column: str
    maximise: bool

    @property
    def label(self) -> str:
        """``'max score_mean'``: name and direction, for table headers and plot titles."""
        return f"{'max' if self.maximise else 'min'} {self.column}"


def _seed_column(column: str) -> str:
    for suffix in ("_mean", "_q10", "_std"):
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def objective(name: str) -> Objective:
    """The objective ``name`` as ``tune`` reads it (no check that a study knows it).

    >>> objective("reg-anchor")
    Objective(name='reg-anchor', column='val_reg-anchor_mean', seed_column='val_reg-anchor', maximise=False)
    """
    column = objective_metric(name)
    return Objective(name, column, _seed_column(column), objective_mode(name) == "max")


ALL_OBJECTIVES: tuple[Objective, ...] = tuple(objective(name) for name in OBJECTIVES)
"""The Ex 2.9.1 objectives, in ``tune``'s order (score, recon, anchor, anti-anchor, score-q10)."""


def experiment_objectives(experiment: Any) -> tuple[Objective, ...]:
    """Every objective a study of ``experiment`` knows: score, recon, its validating regularizers, score-q10.

    The order is ``ALL_OBJECTIVES``'s for Ex 2.9.1 (the regularizers between recon and score-q10).
    """
    names = known_objectives(experiment)
    fixed = ("score", "recon")
    ordered = [*fixed, *(n for n in names if n not in (*fixed, "score-q10")), "score-q10"]
    return tuple(objective(n) for n in dict.fromkeys(ordered) if n in names)


def resolve_objectives(names: Iterable[str], experiment: Any = None) -> tuple[Objective, ...]:
    """Objectives by name, in the given order; AnalysisError naming the known ones otherwise.

    Args:
        names: objective names (``score``, ``recon``, ``score-q10``, a validating regularizer).
        experiment: the study's ``excolor.config.Experiment``; None for the Ex 2.9.1 names.

    >>> [o.column for o in resolve_objectives(["score", "recon"])]
    ['score_mean', 'val_recon_mean']
    """
    known_list = ALL_OBJECTIVES if experiment is None else experiment_objectives(experiment)
    known = {o.name: o for o in known_list}
    where = "" if experiment is None else f" (the objectives of experiment {experiment.name})"
    out = []
    for name in names:
        if name not in known:
            raise AnalysisError(f"unknown objective {name!r}; known objectives: {', '.join(known)}{where}")
        out.append(known[name])
    if not out:
        raise AnalysisError(f"no objectives given; known objectives: {', '.join(known)}{where}")
    if len({o.name for o in out}) != len(out):
        raise AnalysisError(f"objectives must be distinct, got {[o.name for o in out]}")
    return tuple(out)
