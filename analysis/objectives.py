"""The objectives of a study: names, the result column each reads, and its direction (the one owner).

An objective is named on the command line and in ``study.json`` (``score``, ``recon``,
``score-q10`` or a validating regularizer of the experiment such as ``anchor`` or ``reg-anchor``).
Each reads one trial-level column that the trainable reports (``score_mean``, ``val_recon_mean``,
``val_<regularizer>_mean``, ``score_q10``), which aggregates one per-seed column over the trial's
seeds. ``tune`` asks Optuna to optimise these columns; ``analysis`` draws fronts over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from excolor.config import Experiment

__all__ = [
    "ALL_OBJECTIVES",
    "DEFAULT_OBJECTIVES",
    "Constraint",
    "Objective",
    "experiment_objectives",
    "feasible",
    "known_objectives",
    "objective",
    "parse_constraint",
    "resolve_objectives",
]

_FIXED: dict[str, tuple[str, bool]] = {
    "score": ("score_mean", True),  # mean ablation score over the trial's seeds
    "recon": ("val_recon_mean", False),  # mean final val_recon
    "score-q10": ("score_q10", True),  # the 10 % quantile of the score: robustness across seeds
    "score-cvar10": ("score_cvar10", True),  # the mean of the worst 10 % of seeds
    "fail-rate": ("fail_rate", False),  # the share of seeds scoring < 0.5, collapsed or diverged
}
_EX_2_9_1_ORDER = ("score", "recon", "anchor", "anti-anchor", "score-q10", "score-cvar10", "fail-rate")

DEFAULT_OBJECTIVES = ("score", "recon")
"""What a search optimises and a sweep's front is drawn over unless told otherwise."""


@dataclass(frozen=True)
class Objective:
    """One objective of a study.

    Attributes:
        name: the CLI / study.json name, e.g. ``'recon'`` or ``'reg-anchor'``.
        column: the trial-level column (Tune's result, ``Study.trials``), e.g. ``'val_recon_mean'``.
        seed_column: the per-seed column in ``Study.seeds`` that ``column`` aggregates over
            seeds (``'score'`` for both ``score`` and ``score-q10``).
        maximise: True for scores, False for errors.
    """

    name: str
    column: str
    seed_column: str
    maximise: bool

    @property
    def mode(self) -> str:
        """``'max'`` or ``'min'``, as Ray Tune and Optuna's searcher take it."""
        return "max" if self.maximise else "min"

    @property
    def label(self) -> str:
        """``'max score_mean'``: name and direction, for table headers and plot titles."""
        return f"{self.mode} {self.column}"


def _seed_column(column: str) -> str:
    if column in ("fail_rate",):
        return "score"  # a share of seeds, read off their scores
    for suffix in ("_mean", "_q10", "_std", "_cvar10"):
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def objective(name: str) -> Objective:
    """The objective ``name`` (no check that a study knows it): a fixed one, else a regularizer's.

    >>> objective("reg-anchor")
    Objective(name='reg-anchor', column='val_reg-anchor_mean', seed_column='val_reg-anchor', maximise=False)
    >>> objective("score").mode
    'max'
    """
    column, maximise = _FIXED.get(name, (f"val_{name}_mean", False))
    return Objective(name, column, _seed_column(column), maximise)


ALL_OBJECTIVES: tuple[Objective, ...] = tuple(objective(name) for name in _EX_2_9_1_ORDER)
"""The Ex 2.9.1 objectives: score, recon, anchor, anti-anchor, score-q10, score-cvar10, fail-rate."""


def known_objectives(experiment: Experiment) -> tuple[str, ...]:
    """Names of the objectives a study of ``experiment`` can optimise.

    Score and recon, the experiment's validating regularizers, then the seed-robust ones:
    score-q10, score-cvar10 and fail-rate.
    """
    regularizers = tuple(r.name for r in experiment.regularizers if r.validates)
    return tuple(dict.fromkeys(("score", "recon", *regularizers, "score-q10", "score-cvar10", "fail-rate")))


def experiment_objectives(experiment: Experiment) -> tuple[Objective, ...]:
    """Every objective a study of ``experiment`` knows, as ``Objective``s (``known_objectives`` order)."""
    return tuple(objective(n) for n in known_objectives(experiment))


def resolve_objectives(names: Iterable[str], experiment: Experiment | None = None) -> tuple[Objective, ...]:
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


@dataclass(frozen=True)
class Constraint:
    """A bound on one objective's column, e.g. ``recon<=2e-05``; a trial that breaks one is infeasible.

    Optuna's samplers take it as each trial's constraint (``Trial.set_constraint``; a value <= 0 is
    feasible), and no infeasible trial is ever on a front.
    """

    objective: Objective
    op: str  # '<=' | '>='
    bound: float

    def violation(self, value: float) -> float:
        """How far ``value`` breaks the bound (<= 0: kept).

        >>> Constraint(objective("recon"), "<=", 2e-5).violation(3e-5) > 0
        True
        """
        return value - self.bound if self.op == "<=" else self.bound - value

    def __str__(self) -> str:
        return f"{self.objective.name}{self.op}{self.bound:g}"


def parse_constraint(text: str, experiment: Experiment | None = None) -> Constraint:
    """``'recon<=2e-5'`` or ``'score-q10>=0.5'`` -> ``Constraint``; AnalysisError otherwise.

    >>> str(parse_constraint("recon<=2e-5"))
    'recon<=2e-05'
    """
    for op in ("<=", ">="):
        name, sep, bound = text.partition(op)
        if sep:
            break
    else:
        raise AnalysisError(f"constraint {text!r}: expected NAME<=VALUE or NAME>=VALUE (e.g. recon<=2e-5)")
    (obj,) = resolve_objectives([name.strip()], experiment)
    try:
        value = float(bound)
    except ValueError:
        raise AnalysisError(f"constraint {text!r}: {bound.strip()!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise AnalysisError(f"constraint {text!r}: the bound must be finite")
    return Constraint(obj, op, value)


def feasible(values: Mapping[str, float], constraints: Iterable[Constraint]) -> bool:
    """Whether trial-level ``values`` (by column) keep every constraint; a missing value breaks it."""
    for c in constraints:
        value = values.get(c.objective.column)
        if not isinstance(value, (int, float)) or value != value or c.violation(float(value)) > 0:
            return False
    return True
