"""Pareto fronts, ranks, hypervolume and seed attainment: arrays in, arrays out.

Two rules for "non-dominated" live here, on purpose:

1. The moocore-based functions (``front_mask``, ``pareto_ranks``, ``hypervolume``,
   ``hypervolume_history``, ``seed_attainment``, ``domination_counts``). A row with any
   non-finite objective (NaN or ±inf) is *invalid*: it is never on the front, has rank -1 and
   adds no hypervolume; ``invalid_mask`` finds these rows so that callers can report them
   separately. Rows equal in every objective are all kept (weak non-dominance), as in §9.10.
2. ``original_front`` / ``original_best``: the selection rule of the Ex 2.9.1 notebook
   (science.md §9.10), reproduced exactly — including its treatment of NaN, which compares false
   with everything and so is never dominated: a NaN row is always *on* that front. The rule
   minimises val_recon and every validating regularizer's ``val_<name>`` and maximises the score;
   ``original_minimize`` names those columns for any experiment (Ex 2.9.1: ``ORIGINAL_MINIMIZE``).

NOTE(analysis): rule 1 excludes NaN rows because rule 2's behaviour is an accident of IEEE
comparisons, not a decision: a trial whose reconstruction error is unknown would otherwise be
reported as optimal. Rule 2 is kept verbatim so that numbers line up with §10.1.

Letters in shape comments: n points (rows), m objectives (columns), b rows of a block.

Directions are per objective (``maximise``: one bool, or one per column). Hypervolume is computed
on objectives normalised to [0, 1], 0 = best bound and 1 = worst bound (see ``normalise``), against
the reference point 1.1 in every normalised objective unless told otherwise: the 10 % margin gives
the extreme points of the front a non-zero contribution, as is customary.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import moocore
import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.errors import AnalysisError

__all__ = [
    "DEFAULT_REFERENCE",
    "ORIGINAL_MAXIMIZE",
    "ORIGINAL_MINIMIZE",
    "domination_counts",
    "front_mask",
    "hypervolume",
    "hypervolume_history",
    "invalid_mask",
    "normalise",
    "original_best",
    "original_front",
    "original_minimize",
    "pareto_ranks",
    "seed_attainment",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Directions = bool | Sequence[bool] | npt.NDArray[np.bool_]

DEFAULT_REFERENCE = 1.1
"""Reference point of ``hypervolume`` in every normalised objective (1 = the worst bound)."""

ORIGINAL_MINIMIZE: tuple[str, ...] = ("val_recon", "val_anchor", "val_anti-anchor")
ORIGINAL_MAXIMIZE: tuple[str, ...] = ("score",)
"""The objectives of the Ex 2.9.1 notebook's ``pareto_front`` call (science.md §9.10)."""


def original_minimize(validating: Sequence[str], /) -> tuple[str, ...]:
    """§9.10's columns to minimise for an experiment whose validating regularizers are ``validating``.

    ``val_recon``, then ``val_<name>`` per validating regularizer, in the experiment's order.

    >>> original_minimize(["anchor", "anti-anchor"]) == ORIGINAL_MINIMIZE
    True
    >>> original_minimize(["reg-anchor"])
    ('val_recon', 'val_reg-anchor')
    """
    return ("val_recon", *(f"val_{name}" for name in validating))


# --------------------------------------------------------------------------------- validation


def _as_points(points: npt.ArrayLike) -> FloatArray:
    """(n, m) float64 view or copy of ``points``; m >= 1, n may be 0. Never written to."""
    try:
        a = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AnalysisError(f"points must be numbers, got {err}") from None
    if a.ndim != 2 or a.shape[1] < 1:
        raise AnalysisError(f"points must have shape (n, m) with m >= 1 objectives, got {a.shape}")
    return a


def _directions(maximise: Directions, m: int) -> BoolArray:
    if np.ndim(maximise) == 0:  # one bool for every objective
        return np.repeat(bool(maximise), m)
    d = np.asarray(maximise, dtype=bool).reshape(-1)
    if d.size != m:
        raise AnalysisError(f"maximise must be one bool or one per objective ({m}), got {d.size}")
    return d


def _labels(values: npt.ArrayLike, n: int, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.shape != (n,):
        raise AnalysisError(f"{name} must have one label per point ({n}), got shape {a.shape}")
    return a


def invalid_mask(points: npt.ArrayLike, /) -> BoolArray:
    """Rows with a NaN or infinite objective ``(n, m) -> (n,)``: excluded by the moocore-based rule.

    >>> invalid_mask([[1.0, 2.0], [float("nan"), 0.0]]).tolist()
    [False, True]
    """
    a = _as_points(points)
    return np.asarray(~np.isfinite(a).all(axis=1), dtype=np.bool_)


# --------------------------------------------------------------------------------- fronts


def front_mask(points: npt.ArrayLike, /, *, maximise: Directions = False) -> BoolArray:
    """Non-dominated rows ``(n, m) -> (n,)`` bool, computed by moocore.

    Row j dominates row i when it is at least as good in every objective and better in one.
    Rows equal in every objective do not dominate each other: duplicates of a front point are all
    on the front. Invalid rows (NaN or ±inf, see ``invalid_mask``) are never on the front and
    never dominate.

    Args:
        points: objective values, one row per trial.
        maximise: True for objectives to maximise; one bool for all or one per column.

    Returns:
        True where the row is on the front.

    >>> front_mask([[0.9, 0.2], [0.8, 0.1], [0.7, 0.3], [0.9, 0.2]], maximise=[True, False]).tolist()
    [True, True, False, True]
    """
    a = _as_points(points)
    d = _directions(maximise, a.shape[1])
    out = np.zeros(a.shape[0], dtype=bool)
    valid = ~invalid_mask(a)
    if valid.any():
        out[valid] = moocore.is_nondominated(a[valid], maximise=d, keep_weakly=True)
    return out


def pareto_ranks(points: npt.ArrayLike, /, *, maximise: Directions = False) -> IntArray:
    """Non-dominated sorting ``(n, m) -> (n,)``: 0 = the front, 1 = the front once 0 is removed, ...

    Equal rows share a rank. Invalid rows get -1.

    >>> pareto_ranks([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [float("nan"), 0.0]]).tolist()
    [0, 1, 2, -1]
    """
    a = _as_points(points)
    d = _directions(maximise, a.shape[1])
    out = np.full(a.shape[0], -1, dtype=np.int64)
    valid = ~invalid_mask(a)
    if valid.any():
        out[valid] = moocore.pareto_rank(a[valid], maximise=d)
    return out


def _minimisation_form(a: FloatArray, d: BoolArray) -> FloatArray:
    return np.where(d, -a, a)  # (n, m) a new array: maximised columns negated


def _dominated_counts(x: FloatArray) -> IntArray:
    """For each row of x (minimisation form), how many rows dominate it. NaN compares false.

    O(n²·m) in blocks of rows so that memory stays a few MB.
    """
    n, m = x.shape
    out = np.zeros(n, dtype=np.int64)
    block = max(1, 2_000_000 // max(1, n * m))
    for start in range(0, n, block):
        xi = x[start : start + block, None, :]  # (b, 1, m)
        no_worse = (x[None, :, :] <= xi).all(axis=-1)  # (b, n)
        better = (x[None, :, :] < xi).any(axis=-1)  # (b, n)
        out[start : start + block] = (no_worse & better).sum(axis=1)
    return out


def domination_counts(points: npt.ArrayLike, /, *, maximise: Directions = False) -> IntArray:
    """How many valid rows dominate each row ``(n, m) -> (n,)``; -1 for invalid rows.

    0 exactly on the front. O(n²·m): meant for the few thousand trials of a study ("the hand
    schedule is dominated by 3 trials"), not for benchmark-sized point sets.

    >>> domination_counts([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]).tolist()
    [0, 1, 2]
    """
    a = _as_points(points)
    d = _directions(maximise, a.shape[1])
    out = np.full(a.shape[0], -1, dtype=np.int64)
    valid = ~invalid_mask(a)
    if valid.any():
        out[valid] = _dominated_counts(_minimisation_form(a[valid], d))
    return out


# --------------------------------------------------------------------------------- hypervolume


def _bounds(a: FloatArray, valid: BoolArray, bounds: npt.ArrayLike | None) -> FloatArray:
    m = a.shape[1]
    if bounds is None:
        if not valid.any():
            return np.zeros((2, m))
        return np.stack([a[valid].min(axis=0), a[valid].max(axis=0)])  # (2, m)
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (2, m) or not np.isfinite(b).all() or (b[1] < b[0]).any():
        raise AnalysisError(f"bounds must be finite [[lower...], [upper...]] of shape (2, {m}), got {b.tolist()}")
    return b


def normalise(
    points: npt.ArrayLike, /, *, maximise: Directions = False, bounds: npt.ArrayLike | None = None
) -> FloatArray:
    """Objectives rescaled so that 0 is the best bound and 1 the worst, all to be minimised.

    A minimised objective maps ``lower -> 0, upper -> 1``; a maximised one ``upper -> 0, lower -> 1``.
    Objectives on different scales (a score in [0, 1], errors around 1e-5) then weigh alike in
    the hypervolume.

    Args:
        points: ``(n, m)`` raw objective values.
        maximise: directions, as in ``front_mask``.
        bounds: ``[[lower, ...], [upper, ...]]`` in raw units, shape (2, m). Default: the minimum
            and maximum of the valid rows, so the data span [0, 1] exactly. Give fixed bounds
            (e.g. score in [0, 1]) to compare hypervolumes across studies. An objective with
            ``lower == upper`` is shifted but not scaled (divided by 1).

    Returns:
        ``(n, m)`` float64; invalid rows are NaN.

    >>> normalise([[0.9, 1e-5], [0.5, 3e-5]], maximise=[True, False]).tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    """
    a = _as_points(points)
    d = _directions(maximise, a.shape[1])
    valid = ~invalid_mask(a)
    lower, upper = _bounds(a, valid, bounds)
    span = np.where(upper > lower, upper - lower, 1.0)  # (m,)
    z = np.where(d, upper - a, a - lower) / span  # (n, m)
    z[~valid] = np.nan
    return z


def _reference(reference: float | npt.ArrayLike | None, m: int) -> FloatArray:
    r = np.asarray(DEFAULT_REFERENCE if reference is None else reference, dtype=np.float64).reshape(-1)
    if r.size == 1:
        r = np.repeat(r, m)
    if r.shape != (m,) or not np.isfinite(r).all():
        raise AnalysisError(f"reference must be one finite number or one per objective ({m}), got {r.tolist()}")
    return r


def hypervolume(
    points: npt.ArrayLike,
    /,
    *,
    maximise: Directions = False,
    reference: float | npt.ArrayLike | None = None,
    bounds: npt.ArrayLike | None = None,
) -> float:
    """Hypervolume of the normalised points against a reference point (moocore, exact).

    The volume of the region, in normalised objective space (see ``normalise``), that the valid
    points dominate and that dominates the reference point. With the default bounds and reference
    the largest possible value is 1.1**m (one point best in every objective).

    Args:
        points: ``(n, m)`` raw objective values; invalid rows are ignored.
        maximise: directions, as in ``front_mask``.
        reference: the reference point in *normalised* units (1 = worst bound), one number for all
            objectives or one per objective; default ``DEFAULT_REFERENCE`` = 1.1. Points not
            strictly better than it in every objective add nothing.
        bounds: raw-unit normalisation bounds, as in ``normalise``.

    Returns:
        The hypervolume, 0.0 when there is no valid point.

    >>> hypervolume([[1.0, 0.0], [0.0, 1.0]], maximise=[True, False])  # one point best in both
    1.2100000000000002
    """
    a = _as_points(points)
    z = normalise(a, maximise=maximise, bounds=bounds)
    r = _reference(reference, a.shape[1])
    z = z[np.isfinite(z).all(axis=1)]
    if len(z) == 0:
        return 0.0
    return float(moocore.hypervolume(z, ref=r))


def hypervolume_history(
    points: npt.ArrayLike,
    /,
    *,
    maximise: Directions = False,
    reference: float | npt.ArrayLike | None = None,
    bounds: npt.ArrayLike | None = None,
) -> FloatArray:
    """Hypervolume of the first k points for every k: how a study's front grew as trials finished.

    Args:
        points: ``(n, m)`` in completion order.
        maximise, reference: as in ``hypervolume``.
        bounds: as in ``normalise``; the default is taken over *all* n points, so every entry of
            the history is on the same scale and the last entry equals ``hypervolume(points)``.

    Returns:
        ``(n,)`` non-decreasing; entry k is the hypervolume of points[: k + 1].

    The front is kept incrementally: a point weakly dominated by the current front (or invalid, or
    outside the reference box) leaves the value unchanged, so moocore runs once per improvement.

    >>> hypervolume_history([[1.0, 1.0], [0.0, 0.0], [0.5, 0.5]]).tolist()
    [0.010000000000000018, 1.2100000000000002, 1.2100000000000002]
    """
    a = _as_points(points)
    z = normalise(a, maximise=maximise, bounds=bounds)  # (n, m) minimise, NaN = invalid
    r = _reference(reference, a.shape[1])
    out = np.zeros(len(z))
    front = np.empty((0, z.shape[1]))  # (k, m) mutually non-dominated, inside the box
    value = 0.0
    for k, p in enumerate(z):
        inside = bool(np.isfinite(p).all() and (p < r).all())
        if inside and not (front <= p).all(axis=1).any():
            front = np.vstack([front[~(p <= front).all(axis=1)], p])
            value = float(moocore.hypervolume(front, ref=r))
        out[k] = value
    return out


# --------------------------------------------------------------------------------- seeds


def seed_attainment(
    points: npt.ArrayLike,
    /,
    *,
    seeds: npt.ArrayLike,
    trials: npt.ArrayLike,
    maximise: Directions = False,
) -> tuple[np.ndarray, FloatArray]:
    """How often each trial is non-dominated when the trials are compared seed by seed.

    For every seed, the per-seed results of all trials trained on that seed form one set; a trial
    *attains* the seed when its row is on that set's front (moocore, within sets). A configuration
    that is on the front for 90 % of the seeds is robust; one that reaches the trial-level front
    through one lucky seed is not.

    Args:
        points: ``(n, m)`` per-seed objective values, one row per trial × seed.
        seeds: ``(n,)`` the seed of each row.
        trials: ``(n,)`` the trial of each row.
        maximise: directions, as in ``front_mask``.

    Returns:
        ``(trial labels, fraction)``: the distinct trials (sorted, as ``np.unique``) and, for each,
        the fraction of its rows that are on their seed's front. Invalid rows count as not
        attained.

    >>> labels, frac = seed_attainment(
    ...     [[1.0], [2.0], [2.0], [1.0]], seeds=[0, 0, 1, 1], trials=["a", "b", "a", "b"]
    ... )
    >>> labels.tolist(), frac.tolist()
    (['a', 'b'], [0.5, 0.5])
    """
    a = _as_points(points)
    d = _directions(maximise, a.shape[1])
    n = a.shape[0]
    seed_labels = _labels(seeds, n, "seeds")
    trial_labels = _labels(trials, n, "trials")
    attained = np.zeros(n, dtype=bool)
    valid = ~invalid_mask(a)
    if valid.any():
        _, sets = np.unique(seed_labels[valid], return_inverse=True)
        x, dx = a[valid], d
        if x.shape[1] == 1:  # moocore's within-sets variant wants m >= 2; a constant column changes nothing
            x, dx = np.column_stack([x, np.zeros(len(x))]), np.append(d, False)
        attained[valid] = moocore.is_nondominated_within_sets(x, sets, maximise=dx, keep_weakly=True)
    labels, inverse = np.unique(trial_labels, return_inverse=True)
    hits = np.bincount(inverse, weights=attained.astype(np.float64), minlength=len(labels))
    counts = np.bincount(inverse, minlength=len(labels))
    return labels, hits / np.maximum(counts, 1)


# --------------------------------------------------------------------------------- §9.10


def original_front(
    df: pd.DataFrame,
    minimize: Sequence[str] = ORIGINAL_MINIMIZE,
    maximize: Sequence[str] = ORIGINAL_MAXIMIZE,
) -> pd.DataFrame:
    """The Ex 2.9.1 notebook's ``pareto_front(df, minimize, maximize)`` (science.md §9.10), exactly.

    Row j dominates row i iff j <= i in every ``minimize`` column, j >= i in every ``maximize``
    column, and one of those comparisons is strict. Consequences kept on purpose:

    - rows equal in every objective do not dominate each other: exact duplicates all survive;
    - every comparison with NaN is false, so a row with NaN in any objective column is never
      dominated and never dominates: it is always on this front.

    The call shape (``df, minimize, maximize``, positional) is the notebook's; the defaults are its
    2.9.1 call. The original loop skipped already-dominated rows as candidate dominators, which
    gives the same set by transitivity; this version compares all pairs in numpy blocks.

    Returns:
        A copy of the non-dominated rows, original index and order.

    >>> df = pd.DataFrame({"score": [0.9, 0.8, float("nan"), 0.9], "val_recon": [1.0, 2.0, 9.0, 1.0]})
    >>> original_front(df, ["val_recon"], ["score"]).index.tolist()
    [0, 2, 3]
    """
    columns = [*minimize, *maximize]
    if not columns:
        raise AnalysisError("original_front needs at least one objective column")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AnalysisError(f"unknown objective column(s) {missing}; the table has {list(df.columns)}")
    try:
        x = np.concatenate(
            [df[list(minimize)].to_numpy(dtype=np.float64), -df[list(maximize)].to_numpy(dtype=np.float64)], axis=1
        )  # (n, m) minimisation form; NaN stays NaN
    except (TypeError, ValueError) as err:
        raise AnalysisError(f"objective columns {columns} must be numeric: {err}") from None
    keep = _dominated_counts(x) == 0
    return df.loc[keep].copy()


def original_best(
    df: pd.DataFrame,
    /,
    *,
    minimize: Sequence[str] = ORIGINAL_MINIMIZE,
    maximize: Sequence[str] = ORIGINAL_MAXIMIZE,
    score: str = "score",
) -> Hashable:
    """Index label of §9.10's best run: the ``original_front`` row with the largest score.

    As ``front[score].idxmax()`` in the notebook: NaN scores are skipped and the first row wins a
    tie. Raises AnalysisError when no front row has a score.

    >>> df = pd.DataFrame({"score": [0.9, 0.95, 0.95], "val_recon": [1.0, 2.0, 2.0]})
    >>> original_best(df, minimize=["val_recon"])
    1
    """
    front = original_front(df, minimize, maximize)
    if score not in front.columns:
        raise AnalysisError(f"unknown score column {score!r}; the table has {list(df.columns)}")
    values = pd.to_numeric(front[score], errors="coerce")
    if values.notna().sum() == 0:
        raise AnalysisError(f"no row of the front has a {score!r} value: there is no best run")
    return values.idxmax()
