"""Tests for excolor.evaluate: Pearson r, scores, plans, named-colour tables and LaTeX (§9)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from torch import nn

from excolor.colors import RED_HSV, hsv_similarity, rgb_grid, rgb_to_hsv
from excolor.evaluate import (
    EvaluationPlan,
    ablation_score,
    error_correlation,
    named_color_latex,
    named_color_table,
    pearson_r,
    per_color_mse,
    red_similarity,
    score_from_errors,
    similarity_correlations,
    standard_plans,
)
from excolor.interventions import Suppression
from excolor.model import build_model
from excolor.surgery import ablate

RNG = np.random.default_rng(42)


def test_pearson_r_matches_scipy_batched() -> None:
    x = RNG.random(50)
    y = RNG.random((3, 4, 50)) + 0.3 * x
    r = pearson_r(x, y)
    assert r.shape == (3, 4)
    expected = np.array([[scipy.stats.pearsonr(x, row).statistic for row in block] for block in y])
    np.testing.assert_allclose(r, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pearson_r(np.broadcast_to(x, y.shape), y), r, atol=1e-15)
    assert float(pearson_r(x, x)) == pytest.approx(1.0)
    assert float(pearson_r(x, -2 * x + 1)) == pytest.approx(-1.0)


def test_pearson_r_is_nan_for_constant_input() -> None:
    x = RNG.random(10)
    r = pearson_r(x, np.stack([np.full(10, 0.1), RNG.random(10)]))
    assert np.isnan(r[0]) and np.isfinite(r[1])
    assert np.isnan(pearson_r(np.zeros(10), x))


@pytest.mark.parametrize(("x", "y"), [(np.zeros(3), np.zeros(4)), (np.zeros(1), np.zeros(1)), (1.0, np.zeros(3))])
def test_pearson_r_rejects_bad_shapes(x: object, y: object) -> None:
    with pytest.raises(ValueError):
        pearson_r(x, y)  # type: ignore[arg-type]


def test_red_similarity() -> None:
    rgb = np.array([[1, 0, 0], [1, 0.5, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 0.5], [1, 0.5, 0.5]], dtype=float)
    assert red_similarity(rgb).tolist() == pytest.approx([1, 2 / 3, 1 / 3, 0, 0, 0.5])
    assert red_similarity(rgb, power=3).tolist() == pytest.approx([1, 8 / 27, 1 / 27, 0, 0, 0.125])


def test_error_correlation_matches_scipy() -> None:
    rgb = rgb_grid(5)
    sim2 = hsv_similarity(rgb_to_hsv(rgb), RED_HSV, hemi=True, mode="angular") ** 2
    mse = RNG.random((2, 125)) * 0.01 + sim2 * np.array([[0.5], [0.01]])
    r, p = error_correlation(rgb, mse, power=2)
    assert r.shape == p.shape == (2,)
    for i in range(2):
        ref = scipy.stats.pearsonr(sim2, mse[i])
        assert r[i] == pytest.approx(ref.statistic, abs=1e-12)
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    r1, _ = error_correlation(rgb, mse[0], power=2)
    assert r1.shape == () and float(r1) == pytest.approx(r[0])
    # A grid-shaped error array correlates with the same-shaped colour grid.
    r_grid, _ = error_correlation(rgb.reshape(5, 5, 5, 3), mse[0].reshape(5, 5, 5), power=2)
    assert float(r_grid) == pytest.approx(r[0])
    with pytest.raises(ValueError):
        error_correlation(rgb, mse[:, :10], power=2)


def test_error_correlation_p_for_two_points_and_perfect_fit() -> None:
    rgb = np.array([[1.0, 0, 0], [0.5, 0.5, 0.5]])
    r, p = error_correlation(rgb, np.array([0.3, 0.1]), power=1)
    assert float(r) == pytest.approx(1.0) and float(p) == 1.0
    rgb3 = np.array([[1.0, 0, 0], [1, 0.5, 0], [0.5, 0.5, 0.5]])
    r, p = error_correlation(rgb3, red_similarity(rgb3) * 2, power=1)
    assert float(r) == pytest.approx(1.0) and float(p) == pytest.approx(0.0, abs=1e-12)


def test_standard_plans() -> None:
    plans = standard_plans()
    assert [p.name for p in plans] == ["baseline", "ablated", "pruned", "suppression"]
    assert [len(p.interventions) for p in plans] == [0, 0, 0, 1]
    (cfg,) = plans[3].interventions
    assert cfg.layers == ("bottleneck",)
    assert isinstance(cfg.apply, Suppression)
    assert cfg.apply.concept_vector.tolist() == [1, 0, 0, 0, 0]
    m = build_model(0)
    assert plans[0].transform(m) is m
    assert plans[2].transform(m).get_parameter("encoder.4.weight").shape == (4, 16)
    assert standard_plans(2, k_bottleneck=4)[3].interventions[0].apply.concept_vector.tolist() == [0, 0, 1, 0]  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        standard_plans(5)
    with pytest.raises(ValueError):
        EvaluationPlan("")


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return build_model(5)


def test_per_color_mse(model: nn.Module) -> None:
    rgb = rgb_grid(4)
    mse = per_color_mse(model, rgb, plan=EvaluationPlan("baseline"))
    assert mse.shape == (64,) and mse.dtype == np.float64
    x = torch.as_tensor(rgb, dtype=torch.float32)
    with torch.no_grad():
        expected = ((model.eval()(x) - x) ** 2).mean(-1)
    model.train()
    np.testing.assert_allclose(mse, expected.numpy(), rtol=1e-6)
    assert per_color_mse(model, rgb.reshape(4, 16, 3), plan=EvaluationPlan("b")).shape == (4, 16)
    assert model.training


@pytest.mark.parametrize("seeds", [(0, 1, 2), (11,)])
def test_score_from_errors_equals_ablation_score(seeds: tuple[int, ...]) -> None:
    models = [build_model(s) for s in seeds]
    rgb = rgb_grid(8)
    plan = EvaluationPlan("ablated", lambda m: ablate(m, "bottleneck", [0]))
    mse = np.stack([per_color_mse(m, rgb, plan=plan) for m in models])  # (S, 512)
    r2, r = score_from_errors(mse, rgb=rgb)
    assert r2.shape == r.shape == (len(seeds),)
    for i, m in enumerate(models):
        score, r_i = ablation_score(m)
        assert score == r2[i] and r_i == r[i]
        assert score == pytest.approx(r_i**2)
    sim3 = hsv_similarity(rgb_to_hsv(rgb), RED_HSV, hemi=True, mode="angular") ** 3
    np.testing.assert_allclose(r, [scipy.stats.pearsonr(sim3, row).statistic for row in mse], atol=1e-12)


def test_score_from_errors_on_ideal_errors() -> None:
    rgb = rgb_grid(8)
    ideal = red_similarity(rgb, power=3) * 0.3 + 1e-5
    r2, r = score_from_errors(np.stack([ideal, -ideal]), rgb=rgb)
    np.testing.assert_allclose(r, [1.0, -1.0])
    np.testing.assert_allclose(r2, [1.0, 1.0])
    assert np.isnan(score_from_errors(np.zeros((1, 512)), rgb=rgb)[0][0])


def test_named_color_table(model: nn.Module) -> None:
    table = named_color_table(model)
    assert list(table.columns) == [
        "name", "rgb", "hsv", "baseline", "ablated", "ablated-delta", "pruned", "pruned-delta",
        "suppression", "suppression-delta",
    ]  # fmt: skip
    assert len(table) == 17
    assert table["name"].iloc[0] == "red" and table["name"].iloc[-1] == "white"
    assert table["rgb"].iloc[1] == pytest.approx((1.0, 0.5, 0.0))
    for plan in ("ablated", "pruned", "suppression"):
        np.testing.assert_allclose(table[f"{plan}-delta"], table[plan] - table["baseline"])
    np.testing.assert_allclose(table["ablated"], table["pruned"], atol=1e-6)
    rgb = np.array(table["rgb"].tolist())
    np.testing.assert_allclose(table["baseline"], per_color_mse(model, rgb, plan=EvaluationPlan("x")))


def test_named_color_table_with_custom_plans(model: nn.Module) -> None:
    plans = standard_plans()
    table = named_color_table(model, plans=[plans[1]])  # no baseline plan: the unedited model
    assert list(table.columns) == ["name", "rgb", "hsv", "baseline", "ablated", "ablated-delta"]
    with pytest.raises(ValueError, match="unique"):
        named_color_table(model, plans=[plans[1], plans[1]])
    with pytest.raises(ValueError, match="clashes"):
        named_color_table(model, plans=[EvaluationPlan("rgb")])


def _fake_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["red", "cyan", "dark_gray"],
            "baseline": [0.000064271, 0.000028671, 1e-12],
            "ablated": [0.34324475, 0.0, 0.0],
            "ablated-delta": [0.343180478, -0.000028671, -1e-12],
            "suppression-delta": [0.213169754, -0.000028671, 0.0],
        }
    )


def test_named_color_latex_structure() -> None:
    tex = named_color_latex(_fake_table())
    lines = tex.strip().splitlines()
    assert lines[0] == r"\begin{tabular}{lrrr}"
    assert lines[1] == r"\toprule"
    assert lines[2] == r"Colour & Baseline & $\Delta$ ablated & $\Delta$ suppression \\"
    assert lines[3] == r"\midrule"
    assert lines[4] == r"red & 0.000064271 & 0.343180478 & 0.213169754 \\"
    assert lines[5] == r"cyan & 0.000028671 & $-$0.000028671 & $-$0.000028671 \\"
    assert lines[6] == r"dark\_gray & 0.000000000 & 0.000000000 & 0.000000000 \\"  # no "-0"
    assert lines[-2:] == [r"\bottomrule", r"\end{tabular}"]
    assert "0.34324475" not in tex  # raw MSE columns are not shown, only deltas
    short = named_color_latex(_fake_table(), decimals=3)
    assert re.search(r"^red & 0\.000 & 0\.343 & 0\.213 \\\\$", short, flags=re.MULTILINE)
    with pytest.raises(ValueError):
        named_color_latex(_fake_table().drop(columns="baseline"))


def test_named_color_latex_of_a_real_table(model: nn.Module) -> None:
    tex = named_color_latex(named_color_table(model))
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 1 + 17
    assert rows[0] == r"Colour & Baseline & $\Delta$ ablated & $\Delta$ pruned & $\Delta$ suppression \\"
    assert all(len(row.split(" & ")) == 5 for row in rows)


def test_similarity_correlations(model: nn.Module) -> None:
    df = similarity_correlations(model)
    assert list(df.columns) == ["plan", "power", "r", "r2", "p"]
    assert df["plan"].tolist() == ["ablated", "pruned", "suppression"]
    assert df["power"].tolist() == [3.0, 3.0, 2.0]
    np.testing.assert_allclose(df["r2"], df["r"] ** 2)
    assert df["r"][0] == pytest.approx(df["r"][1], abs=1e-6)
    rgb = rgb_grid(20)
    mse = per_color_mse(model, rgb, plan=standard_plans()[3])
    ref = scipy.stats.pearsonr(red_similarity(rgb, power=2), mse)
    assert df["r"][2] == pytest.approx(ref.statistic, abs=1e-12)
    assert df["p"][2] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)


def test_population_correlations_equal_per_model_correlations() -> None:
    from excolor.evaluate import population_correlations
    from excolor.population import Population

    pop = Population.from_seeds([0, 3], hidden=10)
    batched = population_correlations(pop, n=8)
    for i in range(2):
        table = similarity_correlations(pop.module(i), n=8).set_index("plan")
        assert batched["ablated_r"][i] == pytest.approx(table.loc["ablated", "r"], abs=1e-6)
        assert batched["suppression_r"][i] == pytest.approx(table.loc["suppression", "r"], abs=1e-6)


@pytest.mark.parametrize("n", [1, 2, 7, 86_400])
def test_cube_error_stats_are_numpys_max_and_median_in_float64_from_either_precision(n: int) -> None:
    """float32 errors (the loss cube's) are partitioned as they are: the same float64 results as
    np.median and max of a float64 copy, bit for bit, NaN rows NaN."""
    from excolor.evaluate import cube_error_stats

    errors = np.random.default_rng(n).random((5, n), dtype=np.float32) ** 3
    errors[1, n // 2] = np.nan
    wide = errors.astype(np.float64)
    for given in (errors, wide):
        stats = cube_error_stats(given)
        assert stats["max_mse"].dtype == stats["median_mse"].dtype == np.float64
        np.testing.assert_array_equal(stats["max_mse"], wide.max(axis=-1))
        np.testing.assert_array_equal(stats["median_mse"], np.median(wide, axis=-1))
    assert np.isnan(cube_error_stats(errors)["median_mse"][1])


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_cube_statistics_on_threads_are_the_serial_ones(threads: int) -> None:
    """Models split across threads (more threads than models too) give the serial values, in order."""
    from excolor.evaluate import _rowwise_stats, cube_error_stats

    rng = np.random.default_rng(threads)
    errors = [rng.random((5, 101), dtype=np.float32) for _ in range(3)]
    errors[2][3, 50] = np.nan
    for serial, split in zip([cube_error_stats(e) for e in errors], _rowwise_stats(errors, threads)):
        assert list(split) == list(serial)
        for key in serial:
            np.testing.assert_array_equal(split[key], serial[key])
    assert _rowwise_stats([], threads) == []
