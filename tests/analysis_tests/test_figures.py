"""analysis.figures, analysis.train_report and the one-model choice of analysis.report (issue 17)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import figures
from analysis.errors import AnalysisError
from analysis.report import write_report
from analysis.train_report import load_train_run, write_train_report
from excolor.experiments import PRESETS, preset
from excolor.model import CNColorMLP
from tests.analysis_tests._studies import FakeTrial, write_study
from tests.analysis_tests.browser import browser_layout

STEPS = 20


def _train_dir(root: Path, name: str, seeds: list[int]) -> Path:
    """An ``excolor train`` output directory: the preset's schedule squeezed to STEPS steps, H = 8."""
    from tune.arguments import resolve_experiment
    from tune.run_train import run_train

    out = root / name
    run_train(
        experiment=resolve_experiment(name, hidden=8, steps=STEPS),
        seeds=seeds,
        out=out,
        force=False,
        population=None,
        threads=1,
        quiet=True,
    )
    return out


def _check_page(paths: object) -> str:
    """Every figure written as a PNG and embedded in the HTML; nothing fetched from elsewhere."""
    page = paths.html.read_text()  # type: ignore[attr-defined]
    pngs = paths.figures  # type: ignore[attr-defined]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'src="(?!data:)', page) and "<link" not in page
    return page


FULL_SET = {"color_errors", "error_vs_similarity", "color_slices", "color_slice_errors", "latent_views", "stacked"}


@pytest.fixture(scope="module")
def run_2_4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train_dir(tmp_path_factory.mktemp("train"), "ex-2.4", [0, 1, 2])


def test_train_report_of_ex_2_4_shows_its_own_interventions(run_2_4: Path, tmp_path: Path) -> None:
    metrics = pd.read_csv(run_2_4 / "metrics.csv")
    for name in ("suppression", "repulsion"):  # the notebook's own, named after themselves
        assert {f"{name}_r", f"{name}_max_mse", f"{name}_median_mse"} <= set(metrics.columns)
    paths = write_train_report(run_2_4, tmp_path / "out", seed=1)
    md = paths.markdown.read_text()
    assert {p.stem for p in paths.figures} == FULL_SET | {"seed_distributions"}
    assert "## Model: seed 1" in md and "seed 1 (chosen)" in md.lower()
    assert "| colour | baseline | Δ ablated | Δ pruned | Δ suppression | Δ repulsion |" in md
    assert "suppression (falloff 0→1, power 2; r with similarity^2)" in md
    assert "repulsion (fast-bezier map 0→0.5; r with similarity^3)" in md
    # the loss-cube table: one row per method
    for method in ("baseline", "ablated", "pruned", "suppression", "repulsion"):
        assert re.search(rf"^\| {method} \| [0-9.e-]+ \| [0-9.e-]+ \|$", md, re.M), method
    _check_page(paths)
    assert paths.latex is not None and paths.latex.read_text().count(r"\\") == 1 + 17


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the chromium browser (headless)")
def test_the_train_report_fits_1400_pixels_and_every_image_renders(run_2_4: Path, tmp_path: Path) -> None:
    """An `excolor train` output's report in headless Chromium at 1,400 px: no overflow, no broken image."""
    paths = write_train_report(run_2_4, tmp_path / "out", seed=1)
    layout = browser_layout(paths.html, tmp_path)
    assert layout["images"] >= len(FULL_SET) and layout["broken"] == 0
    assert layout["overflow"] <= 0 and layout["outside"] == 0


def test_train_report_default_seed_and_errors(run_2_4: Path, tmp_path: Path) -> None:
    paths = write_train_report(run_2_4, tmp_path / "out")
    assert "the §9.10 best seed" in paths.markdown.read_text()
    with pytest.raises(AnalysisError, match="not seed 7"):
        write_train_report(run_2_4, tmp_path / "x", seed=7)
    with pytest.raises(AnalysisError, match="not an excolor train output directory"):
        write_train_report(tmp_path, tmp_path / "y")


def test_cube_errors_of_a_model_match_the_training_metrics(run_2_4: Path) -> None:
    """The report's per-model loss-cube table equals the metrics training wrote (pruned ≡ ablated)."""
    run = load_train_run(run_2_4)
    row = run.metrics[run.metrics["seed"] == 2].iloc[0]
    table = figures.cube_errors(run.model(2), evaluation=run.experiment.evaluation).set_index("method")
    for method in ("baseline", "ablated", "suppression", "repulsion"):
        for stat in ("max_mse", "median_mse"):
            assert table.loc[method, stat] == pytest.approx(row[f"{method}_{stat}"], rel=1e-4, abs=1e-8)
    assert table.loc["pruned", "max_mse"] == pytest.approx(table.loc["ablated", "max_mse"], rel=1e-4, abs=1e-8)


# ex-2.4 above; ex-2.1 (ColorMLP, a 2-D concept subspace) by default, the others with -m slow.
@pytest.mark.parametrize(
    "name", [p if p == "ex-2.1" else pytest.param(p, marks=pytest.mark.slow) for p in PRESETS if p != "ex-2.4"]
)
def test_every_preset_trains_and_reports_with_its_own_interventions(name: str, tmp_path: Path) -> None:
    run = _train_dir(tmp_path, name, [0, 1])
    e = preset(name)
    paths = write_train_report(run, tmp_path / "out")
    md = paths.markdown.read_text()
    assert {p.stem for p in paths.figures} == FULL_SET | {"seed_distributions"}
    names = ["suppression", *(i for i in e.evaluation.intervention_names if i != "suppression")]
    assert "| colour | baseline | Δ ablated | Δ pruned | " + " | ".join(f"Δ {n}" for n in names) + " |" in md
    assert f"ablated/pruned dims {list(e.evaluation.concept_dims)}" in md
    _check_page(paths)


def test_study_report_for_a_chosen_trial_and_seed(tmp_path: Path) -> None:
    study = write_study(
        tmp_path,
        "sw",
        [
            FakeTrial(scale={"anchor": 1.0}, outcome=[(0.6, 2e-4, 1e-3, 0.0), (0.7, 1e-4, 2e-3, 0.0)], checkpoint=True),
            FakeTrial(scale={"anchor": 2.0}, outcome=[(0.9, 3e-4, 1e-3, 0.0), (0.8, 3e-4, 1e-3, 0.0)], checkpoint=True),
        ],
    )
    best = write_report(study, tmp_path / "best")
    md = best.markdown.read_text()
    assert "## Best model" in md and "Trial t1, seed 0" in md
    assert {p.stem for p in best.figures} >= FULL_SET | {"seed_distributions"}
    _check_page(best)
    chosen = write_report(study, tmp_path / "chosen", trial="t0")
    assert "## Chosen model" in chosen.markdown.read_text()
    assert "Trial t0, seed 1 (chosen: trial t0; its seed with the largest score)" in chosen.markdown.read_text()
    by_seed = write_report(study, tmp_path / "seed", seed=1)
    assert "Trial t1, seed 1 (chosen: trial t1, seed 1)" in by_seed.markdown.read_text()
    with pytest.raises(AnalysisError, match="no per-seed results for trial 'nope'"):
        write_report(study, tmp_path / "x", trial="nope")
    with pytest.raises(AnalysisError, match="no trial trained seed 9"):
        write_report(study, tmp_path / "x", seed=9)


# ------------------------------------------------------------------------------------- figure data


@pytest.fixture(scope="module")
def model() -> CNColorMLP:
    torch.manual_seed(0)
    return CNColorMLP(5, hidden=8, n_nonlinear=2)


def test_color_slices_grid_and_methods(model: CNColorMLP) -> None:
    slices = figures.color_slices(model)
    assert slices.rgb.shape == (12, 4, 5, 3)
    assert list(slices.recon) == ["baseline", "ablated", "pruned", "suppression"]
    # S = 0 is grey, V = 0 is black (§9.4's slice cube)
    assert np.allclose(slices.rgb[:, 0, :, 0], slices.rgb[:, 0, :, 1]) and np.allclose(slices.rgb[:, :, 0], 0)
    for name, recon in slices.recon.items():
        assert recon.shape == (12, 4, 5, 3) and ((recon >= 0) & (recon <= 1)).all()
        np.testing.assert_allclose(slices.mse[name], ((recon - slices.rgb) ** 2).mean(-1), atol=1e-6)
    np.testing.assert_allclose(slices.recon["ablated"], slices.recon["pruned"], atol=1e-6)


def test_latent_views_capture_after_the_intervention(model: CNColorMLP) -> None:
    from excolor.colors import rgb_grid

    views = figures.latent_views(model, colors=rgb_grid(4))
    assert list(views.latents) == ["baseline", "suppression"] and views.unit
    base, sup = views.latents["baseline"], views.latents["suppression"]
    np.testing.assert_allclose(np.linalg.norm(base, axis=-1), 1.0, atol=1e-5)
    # the hard gate removes every positive concept component and leaves the rest
    assert (sup[:, 0] <= 1e-6).all()
    np.testing.assert_allclose(sup[base[:, 0] <= 0], base[base[:, 0] <= 0], atol=1e-6)
    assert views.extents["suppression"][0] == pytest.approx(0.0, abs=1e-12)
    assert views.pairs[0][0] == 0 and len(views.pairs) == 3


def test_distribution_figure_groups_and_skips_empty_columns() -> None:
    frame = pd.DataFrame({"trial_id": ["a", "a", "b"], "score": [0.1, 0.5, 0.9], "val_recon": [np.nan] * 3})
    fig = figures.distribution_figure(frame, columns=["score", "val_recon", "missing"], group="trial_id")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b"]
    with pytest.raises(AnalysisError):
        figures.distribution_figure(frame, columns=["val_recon"])
