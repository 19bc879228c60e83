"""analysis.pareto against brute force (property tests) and hand-computed hypervolumes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import AnalysisError
from analysis.pareto import (
    domination_counts,
    front_mask,
    hypervolume,
    hypervolume_history,
    invalid_mask,
    normalise,
    original_best,
    original_front,
    pareto_ranks,
    seed_attainment,
)

NAN = float("nan")


def _dominates(a: np.ndarray, b: np.ndarray, maximise: list[bool]) -> bool:
    """Python-level definition, one pair at a time (NaN compares false, as in §9.10)."""
    no_worse = all((x >= y) if mx else (x <= y) for x, y, mx in zip(a, b, maximise))
    better = any((x > y) if mx else (x < y) for x, y, mx in zip(a, b, maximise))
    return no_worse and better


def _brute_front(points: np.ndarray, maximise: list[bool], *, drop_invalid: bool) -> list[bool]:
    valid = [bool(np.isfinite(p).all()) or not drop_invalid for p in points]
    return [
        valid[i] and not any(valid[j] and _dominates(points[j], points[i], maximise) for j in range(len(points)))
        for i in range(len(points))
    ]


@st.composite
def point_sets(draw: st.DrawFn) -> tuple[np.ndarray, list[bool]]:
    """Random (n, m) points from a few levels (ties), repeated rows (duplicates), NaN/inf rows, mixed directions."""
    m = draw(st.integers(1, 4))
    levels = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, -1.0])
    pool = draw(st.lists(st.lists(levels, min_size=m, max_size=m), min_size=1, max_size=12))
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=0, max_size=30))
    points = np.array([pool[i] for i in picks], dtype=float).reshape(len(picks), m)
    for i in draw(st.lists(st.integers(0, max(0, len(picks) - 1)), max_size=4)) if len(picks) else []:
        points[i, draw(st.integers(0, m - 1))] = draw(st.sampled_from([NAN, NAN, np.inf, -np.inf]))
    maximise = draw(st.lists(st.booleans(), min_size=m, max_size=m))
    return points, maximise


@settings(max_examples=300, deadline=None)
@given(point_sets())
def test_front_mask_equals_brute_force(case: tuple[np.ndarray, list[bool]]) -> None:
    points, maximise = case
    before = points.copy()
    expected = _brute_front(points, maximise, drop_invalid=True)
    assert front_mask(points, maximise=maximise).tolist() == expected
    np.testing.assert_array_equal(points, before)  # inputs never mutated


@settings(max_examples=300, deadline=None)
@given(point_sets())
def test_original_front_equals_brute_force_with_nan_rows_kept(case: tuple[np.ndarray, list[bool]]) -> None:
    points, maximise = case
    columns = [f"c{j}" for j in range(points.shape[1])]
    df = pd.DataFrame(points, columns=columns, index=[f"r{i}" for i in range(len(points))])
    front = original_front(
        df, [c for c, mx in zip(columns, maximise) if not mx], [c for c, mx in zip(columns, maximise) if mx]
    )
    expected = _brute_front(points, maximise, drop_invalid=False)
    assert front.index.tolist() == [f"r{i}" for i, keep in enumerate(expected) if keep]


@settings(max_examples=150, deadline=None)
@given(point_sets())
def test_ranks_and_domination_counts_equal_brute_force(case: tuple[np.ndarray, list[bool]]) -> None:
    points, maximise = case
    valid = ~invalid_mask(points)
    ranks = np.full(len(points), -1)
    remaining = set(np.flatnonzero(valid).tolist())
    level = 0
    while remaining:  # peel fronts
        layer = {i for i in remaining if not any(_dominates(points[j], points[i], maximise) for j in remaining)}
        for i in layer:
            ranks[i] = level
        remaining -= layer
        level += 1
    assert pareto_ranks(points, maximise=maximise).tolist() == ranks.tolist()
    counts = [
        sum(_dominates(points[j], points[i], maximise) for j in np.flatnonzero(valid)) if valid[i] else -1
        for i in range(len(points))
    ]
    assert domination_counts(points, maximise=maximise).tolist() == counts


def test_original_front_documented_ties_and_nan() -> None:
    df = pd.DataFrame(
        {
            "score": [0.9, 0.9, 0.5, NAN, 0.95, 0.95],
            "val_recon": [1.0, 1.0, 2.0, 9.0, 1.0, 1.0],
            "val_anchor": [0.1, 0.1, 0.2, 0.0, 0.1, 0.1],
            "val_anti-anchor": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    front = original_front(df, ["val_recon", "val_anchor", "val_anti-anchor"], ["score"])
    # 10 and 11 (duplicates) are dominated by 14/15; 12 too; the NaN row 13 is always kept; 14, 15 tie.
    assert front.index.tolist() == [13, 14, 15]
    assert front is not df and front.equals(df.loc[[13, 14, 15]])
    assert original_best(df) == 14  # first occurrence of the largest score; NaN skipped
    assert original_front(df.loc[[10, 11]]).index.tolist() == [10, 11]  # exact duplicates survive together


def test_original_best_without_scores_is_an_error() -> None:
    df = pd.DataFrame({"score": [NAN], "val_recon": [1.0], "val_anchor": [0.0], "val_anti-anchor": [0.0]})
    with pytest.raises(AnalysisError, match="no row of the front"):
        original_best(df)
    with pytest.raises(AnalysisError, match="unknown objective column"):
        original_front(df, ["nope"], ["score"])


@pytest.mark.parametrize(
    ("points", "maximise", "kwargs", "expected"),
    [
        # normalised to (0,0) and (1,1): the first point alone dominates the whole 1.1 x 1.1 box
        ([[1.0, 0.0], [0.0, 1.0]], [True, False], {}, 1.1 * 1.1),
        # normalised (0,1) and (1,0): two 1.1 x 0.1 strips overlapping in a 0.1 x 0.1 square
        ([[1.0, 1.0], [0.0, 0.0]], [True, False], {}, 0.11 + 0.11 - 0.01),
        # three points on a staircase, fixed bounds [0, 4], reference 1 (= 4 in raw units)
        ([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], False, {"bounds": [[0, 0], [4, 4]], "reference": 1.0}, 6 / 16),
        # 3-D: one point at the best corner
        ([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], False, {}, 1.1**3),
        # 1-D: the best value to the reference
        ([[5.0], [3.0]], True, {}, 1.1),
        # a point outside the reference box adds nothing; NaN rows are ignored
        ([[0.5, 0.5], [5.0, 0.0], [NAN, 0.0]], False, {"bounds": [[0, 0], [1, 1]], "reference": 1.0}, 0.25),
        ([[NAN, 1.0]], False, {}, 0.0),
    ],
)
def test_hypervolume_hand_computed(points: list, maximise: Any, kwargs: dict, expected: float) -> None:
    assert hypervolume(points, maximise=maximise, **kwargs) == pytest.approx(expected)


def test_normalise_maps_best_to_zero_and_worst_to_one() -> None:
    z = normalise([[0.9, 1e-5], [0.5, 3e-5], [0.7, 2e-5]], maximise=[True, False])
    np.testing.assert_allclose(z, np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]]))
    assert normalise([[1.0], [1.0]]).tolist() == [[0.0], [0.0]]  # a constant objective is not scaled


@settings(max_examples=100, deadline=None)
@given(point_sets())
def test_hypervolume_history_equals_prefix_hypervolumes(case: tuple[np.ndarray, list[bool]]) -> None:
    points, maximise = case
    history = hypervolume_history(points, maximise=maximise)
    valid = ~invalid_mask(points)
    bounds = np.stack([points[valid].min(axis=0), points[valid].max(axis=0)]) if valid.any() else None
    expected = np.array([hypervolume(points[: k + 1], maximise=maximise, bounds=bounds) for k in range(len(points))])
    np.testing.assert_allclose(history, expected, rtol=1e-12, atol=1e-12)
    assert (np.diff(history) >= -1e-15).all()


def test_seed_attainment_counts_per_seed_fronts() -> None:
    # Two trials on three seeds: a wins seeds 0 and 1, b wins seed 2; on seed 1 they tie (both attain).
    points = [[0.9], [0.1], [0.5], [0.5], [0.1], [0.8], [NAN]]
    seeds = [0, 0, 1, 1, 2, 2, 3]
    trials = ["a", "b", "a", "b", "a", "b", "b"]
    labels, fraction = seed_attainment(points, seeds=seeds, trials=trials, maximise=True)
    assert labels.tolist() == ["a", "b"]
    np.testing.assert_allclose(fraction, [2 / 3, 2 / 4])  # b's NaN row on seed 3 counts as not attained


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: front_mask([1.0, 2.0]), "shape"),
        (lambda: front_mask([[1.0, 2.0]], maximise=[True]), "maximise"),
        (lambda: hypervolume([[1.0, 2.0]], reference=[1.0, 2.0, 3.0]), "reference"),
        (lambda: hypervolume([[1.0, 2.0]], bounds=[[1.0, 1.0], [0.0, 0.0]]), "bounds"),
        (lambda: seed_attainment([[1.0]], seeds=[0, 1], trials=["a"]), "seeds"),
        (lambda: front_mask([["a", "b"]]), "numbers"),
    ],
)
def test_bad_arguments_raise_analysis_error(call: object, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        call()  # type: ignore[operator]


def test_empty_input_returns_empty_output() -> None:
    empty = np.empty((0, 3))
    assert front_mask(empty).shape == (0,)
    assert pareto_ranks(empty).shape == (0,)
    assert hypervolume(empty) == 0.0
    assert hypervolume_history(empty).shape == (0,)


def test_front_mask_agrees_with_original_rule_on_finite_data() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 4, size=(200, 4)).astype(float)
    maximise = [True, False, False, False]
    df = pd.DataFrame(points, columns=["score", "val_recon", "val_anchor", "val_anti-anchor"])
    assert np.flatnonzero(front_mask(points, maximise=maximise)).tolist() == original_front(df).index.tolist()
