"""analysis.report and analysis.cli on small fake studies (one with a real, untrained checkpoint)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import pareto_command, report_command
from analysis.errors import AnalysisError
from analysis.report import write_report
from tests.analysis_tests._studies import FakeTrial, write_study
from tests.analysis_tests.browser import browser_layout

HUES_AND_GREYS = [
    "red",
    "orange",
    "yellow",
    "lime",
    "green",
    "teal",
    "cyan",
    "azure",
    "blue",
    "purple",
    "magenta",
    "pink",
    "black",
    "dark gray",
    "gray",
    "light gray",
    "white",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("studies")
    return write_study(
        root,
        "sw",
        [
            FakeTrial(scale={"anchor": 1.0}, outcome=[(0.6, 2e-4, 1e-3, 0.0), (0.7, 1e-4, 2e-3, 0.0)], checkpoint=True),
            FakeTrial(scale={"anchor": 2.0}, outcome=[(0.9, 3e-4, 1e-3, 0.0), (0.8, 3e-4, 1e-3, 0.0)], checkpoint=True),
            FakeTrial(scale={"anchor": 4.0}, outcome=[(0.2, 9e-4, 1e-2, 1e-3), (0.1, 8e-4, 1e-2, 1e-3)]),
            FakeTrial(state="failed", scale={"anchor": 8.0}),
        ],
    )


def test_report_of_a_sweep_with_a_checkpoint(sweep: Path, tmp_path: Path) -> None:
    paths = write_report(sweep, tmp_path / "out")
    md = paths.markdown.read_text()
    page = paths.html.read_text()
    # summary, front, hand schedule, failed trial, best model
    assert "trials: 4 — 3 done, 0 running, 1 failed, 0 pending" in md
    assert "Front over max score_mean, min val_recon_mean: 2 of 3 done trials" in md
    assert "Hand schedule (trial t0): Pareto rank 0 (on the front)" in md
    assert "all 2 seeds diverged (test)" in md
    # every done trial by Pareto rank, and the objectives over training steps
    assert "## All trials" in md and "3 done trials by Pareto rank, then by score_mean" in md
    assert {"learning_curves.png", "objectives_matrix.png", "schedules.png"} <= {f.name for f in paths.figures}
    assert "Trial t1, seed 0" in md  # front trial with the largest mean score, its §9.10 best seed
    # the §10.1 colour table: 17 colours, baseline and three deltas, 9 decimals
    assert "| colour | baseline | Δ ablated | Δ pruned | Δ suppression |" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and line.split(" | ")[0][2:] in HUES_AND_GREYS]
    assert [r.split(" | ")[0][2:] for r in rows] == HUES_AND_GREYS
    assert all(re.fullmatch(r"−?\d\.\d{9}", cell.strip(" |")) for r in rows for cell in r.split(" | ")[1:])
    # figures: files for Markdown, embedded for HTML, nothing fetched from elsewhere
    names = {p.name for p in paths.figures}
    assert {
        "score_vs_recon.png",
        "objectives_matrix.png",
        "hypervolume_history.png",
        "schedules.png",
        "color_errors.png",
        "error_vs_similarity.png",
    } <= names
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths.figures)
    assert page.count('src="data:image/png;base64,') == len(paths.figures)
    assert not re.search(r'src="(?!data:)', page) and "<link" not in page
    assert paths.latex is not None and paths.latex.read_text().count(r"\\") == 1 + 17
    assert len(pd.read_csv(paths.pareto_csv)) == 2


def test_report_of_a_hand_schedule_sweep_applies_the_original_rule(tmp_path: Path) -> None:
    study = write_study(
        tmp_path,
        "ref",
        [
            FakeTrial(
                seeds=[0, 1, 2], outcome=[(0.9, 1e-4, 1e-3, 0.0), (0.8, 2e-4, 2e-3, 0.0), (0.95, 1e-4, 1e-3, 0.0)]
            ),
            FakeTrial(seeds=[3, 4], outcome=[(0.5, 1e-5, 1e-3, 0.0), (0.95, 1e-4, 1e-3, 0.0)], checkpoint=True),
        ],
    )
    paths = write_report(study, tmp_path / "out")
    md = paths.markdown.read_text()
    # seeds 1 is dominated by 0, 0 by 2; 2 and 4 tie (both kept); 3 has the best recon.
    assert "front size under the original rule: 3 of 5 seeds (the reference notebook found 22 of 60)" in md
    assert "Best seed (largest score on that front): seed 2, score 0.9500" in md
    assert "This trial kept no checkpoint" in md  # seed 2's trial has none: honest, no crash
    assert paths.latex is None


@pytest.mark.parametrize("trials", [[], [FakeTrial(state="running"), FakeTrial(state="pending")]])
def test_report_of_an_empty_or_unfinished_study(tmp_path: Path, trials: list[FakeTrial]) -> None:
    paths = write_report(write_study(tmp_path, "new", trials), tmp_path / "out")
    assert "No finished trials yet" in paths.markdown.read_text()
    assert "<h2>Pareto front</h2>" in paths.html.read_text() and paths.latex is None


def test_report_of_a_study_with_only_failed_trials_is_honest_and_short(tmp_path: Path) -> None:
    study = write_study(tmp_path, "boom", [FakeTrial(state="failed"), FakeTrial(state="failed")])
    paths = write_report(study)
    assert paths.directory == (study / "report").resolve()
    md = paths.markdown.read_text()
    assert "No finished trials yet (0 running, 2 failed, 0 pending)" in md
    assert paths.latex is None and paths.figures == ()
    assert pd.read_csv(paths.pareto_csv).empty


def test_pareto_command_prints_the_front_and_writes_csv(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "front.csv"
    assert pareto_command(sweep, ["score", "anchor", "score-q10"], out) == 0
    text = capsys.readouterr().out
    assert "Pareto front (max score_mean, min val_anchor_mean, max score_q10)" in text
    assert "hand schedule t0: Pareto rank" in text and f"wrote {out}" in text
    front = pd.read_csv(out)
    assert {"trial_id", "score_mean", "val_anchor_mean", "score_q10", "seed_attainment"} <= set(front.columns)


def test_pareto_command_on_failed_only_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path, "boom", [FakeTrial(state="failed")])
    assert pareto_command(study, None, tmp_path / "o") == 0
    assert "no finished trials yet, the front is empty" in capsys.readouterr().out
    assert (tmp_path / "o" / "pareto.csv").exists()
    with pytest.raises(AnalysisError, match="unknown objective 'speed'; known objectives: score, recon"):
        pareto_command(study, ["speed"], None)
    with pytest.raises(AnalysisError, match="not an excolor study"):
        pareto_command(tmp_path / "o", None, None)


def test_report_command_prints_what_it_wrote(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_command(sweep, tmp_path / "r") == 0
    text = capsys.readouterr().out
    for name in ("report.md", "report.html", "pareto.csv", "best_model_table.tex"):
        assert f"{tmp_path / 'r' / name}" in text
    with pytest.raises(AnalysisError, match="does not exist"):
        report_command(tmp_path / "nothing", None)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the chromium browser (headless)")
def test_the_html_report_fits_1400_pixels_and_every_image_renders(sweep: Path, tmp_path: Path) -> None:
    """The report in headless Chromium at 1,400 px: no horizontal overflow, no broken image."""
    paths = write_report(sweep, tmp_path / "out")
    layout = browser_layout(paths.html, tmp_path)
    assert layout["images"] >= 3 and layout["broken"] == 0
    assert layout["overflow"] <= 0 and layout["outside"] == 0


def test_errors_spanning_decades_get_log_axes_and_scores_stay_linear() -> None:
    from analysis.plots import learning_curves_figure, scatter_matrix_figure

    points = [[0.1, 1e-6], [0.5, 1e-4], [0.9, 1e-2]]
    fig = scatter_matrix_figure(points, names=["score_mean", "val_recon_mean"], errors=[False, True])
    axes = fig.axes  # row-major: [0][0] [0][1] [1][0] [1][1]
    assert axes[0].get_xscale() == "linear" and axes[1].get_xscale() == "log"
    assert axes[2].get_yscale() == "log" and axes[3].get_xscale() == "log"
    assert axes[0].get_title() == "score_mean: trials per bin"
    curves = {
        t: pd.DataFrame({"step": [1, 2], "score_mean": [0.01, 0.9], "val_recon_mean": [1e-2, 1e-6]}) for t in "ab"
    }
    fig = learning_curves_figure(
        curves, columns=["score_mean", "val_recon_mean"], highlight=["a"], errors=["val_recon_mean"]
    )
    assert [ax.get_yscale() for ax in fig.axes[:2]] == ["linear", "log"]
