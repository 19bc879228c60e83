"""Objective names shared with ``tune``: which column each one reads, and in which direction.

``tune.study`` owns the names and directions (``OBJECTIVES``) and the trial-level columns
(``OBJECTIVE_METRIC``); this module only adds what analysis needs on top: the per-seed column
that each trial-level aggregate summarises, and one clear error for an unknown name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analysis.errors import AnalysisError
from tune.study import OBJECTIVE_METRIC, OBJECTIVES

__all__ = ["ALL_OBJECTIVES", "Objective", "resolve_objectives"]


@dataclass(frozen=True)
class Objective:
    """One objective of a study.

    Attributes:
        name: the CLI / study.json name, e.g. ``'recon'``.
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


ALL_OBJECTIVES: tuple[Objective, ...] = tuple(
    Objective(name, OBJECTIVE_METRIC[name], _seed_column(OBJECTIVE_METRIC[name]), mode == "max")
    for name, mode in OBJECTIVES.items()
)
"""Every objective ``tune`` knows, in its order (score, recon, anchor, anti-anchor, score-q10)."""


def resolve_objectives(names: Iterable[str]) -> tuple[Objective, ...]:
    """Objectives by name, in the given order; AnalysisError naming the known ones otherwise.

    >>> [o.column for o in resolve_objectives(["score", "recon"])]
    ['score_mean', 'val_recon_mean']
    """
    known = {o.name: o for o in ALL_OBJECTIVES}
    out = []
    for name in names:
        if name not in known:
            raise AnalysisError(f"unknown objective {name!r}; known objectives: {', '.join(known)}")
        out.append(known[name])
    if not out:
        raise AnalysisError(f"no objectives given; known objectives: {', '.join(known)}")
    if len({o.name for o in out}) != len(out):
        raise AnalysisError(f"objectives must be distinct, got {[o.name for o in out]}")
    return tuple(out)
