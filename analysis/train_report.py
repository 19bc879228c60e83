"""The report of an ``excolor train`` output directory: the same evidence as a study's, for one run.

``excolor train --out DIR`` writes ``metrics.csv`` (one row per seed), ``models.pt`` (every seed's
parameters), ``experiment.yaml`` and ``dopesheet.csv``. ``write_train_report`` reads them and writes
``report.md`` (+ ``figures/*.png``), a self-contained ``report.html``, ``pareto.csv`` (the §9.10 front
over the run's seeds) and ``best_model_table.tex``: the run's numbers (score distribution, collapsed
and diverged runs, loss-cube errors), the per-seed distributions, and one model's full set
(``analysis.report.model_set``): the §9.10 best seed, or the seed asked for.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import figures
from analysis.errors import AnalysisError
from analysis.pareto import ORIGINAL_MAXIMIZE, original_minimize
from analysis.report import (
    ReportPaths,
    _cube_columns,
    _Document,
    _fmt,
    _intervention_columns,
    _seed_ranges,
    distribution_columns,
    model_set,
)
from analysis.tables import original_rule

__all__ = ["TrainRun", "load_train_run", "write_train_report"]

_MODELS_FORMAT = "excolor.models/1"


class TrainRun:
    """An ``excolor train`` output directory, loaded: its experiment, per-seed metrics and models."""

    def __init__(self, directory: Path, experiment: Any, metrics: pd.DataFrame, models: Any, seeds: list[int]) -> None:
        self.directory = directory
        self.experiment = experiment
        self.metrics = metrics
        self.population = models  # excolor.population.Population, rows in ``seeds`` order
        self.seeds = seeds

    def model(self, seed: int) -> Any:
        """Seed ``seed``'s model (a ``CNColorMLP`` or ``ColorMLP``)."""
        if seed not in self.seeds:
            raise AnalysisError(f"{self.directory} holds seeds {_seed_ranges(tuple(self.seeds))}, not seed {seed}")
        return self.population.module(self.seeds.index(seed))


def load_train_run(directory: str | Path, /) -> TrainRun:
    """Read an ``excolor train`` output directory (metrics.csv, models.pt, experiment.yaml).

    ``models.pt`` is read with ``excolor.readers.load_tensors``: tensors and plain containers only,
    of a bounded unpacked size.

    Raises:
        AnalysisError: a file is missing or malformed, or the models do not fit the experiment.
    """
    import torch

    from excolor.experiments import ExperimentError, load_experiment
    from excolor.population import Population
    from excolor.readers import UnreadableText, load_tensors

    path = Path(directory).expanduser().resolve()
    missing = [f for f in ("metrics.csv", "models.pt", "experiment.yaml") if not (path / f).is_file()]
    if missing:
        raise AnalysisError(f"{path} is not an excolor train output directory: no {', '.join(missing)}")
    try:
        experiment = load_experiment(path / "experiment.yaml")
    except ExperimentError as err:
        raise AnalysisError(f"cannot read the run's experiment: {err}") from None
    try:
        metrics = pd.read_csv(path / "metrics.csv")
    except (OSError, ValueError) as err:
        raise AnalysisError(f"cannot read {path / 'metrics.csv'}: {err}") from None
    try:
        state = load_tensors(path / "models.pt")
    except UnreadableText as err:
        raise AnalysisError(f"cannot read {path / 'models.pt'}: {err}") from None
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise AnalysisError(f"cannot read {path / 'models.pt'}: {type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != _MODELS_FORMAT:
        raise AnalysisError(f"{path / 'models.pt'} is not an {_MODELS_FORMAT} file")
    params, seeds = state.get("parameters"), state.get("seeds")
    if not isinstance(params, torch.Tensor) or params.ndim != 2 or not isinstance(seeds, list):
        raise AnalysisError(f"{path / 'models.pt'} lacks an (S, P) 'parameters' tensor and a 'seeds' list")
    m = experiment.model
    try:
        population = Population(
            params.detach().to(torch.float32).contiguous(),
            k_bottleneck=m.k_bottleneck,
            hidden=m.hidden,
            n_nonlinear=m.n_nonlinear,
            kind=m.kind,
        )
    except (ValueError, RuntimeError) as err:
        raise AnalysisError(f"{path / 'models.pt'} does not fit the run's {m.kind} {m.shape}: {err}") from None
    if len(seeds) != params.shape[0]:
        raise AnalysisError(f"{path / 'models.pt'} has {params.shape[0]} models for {len(seeds)} seeds")
    return TrainRun(path, experiment, metrics, population, [int(s) for s in seeds])


def _stats_table(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per metric (narrow, whatever the number of metrics): min, median, mean, std, max over seeds."""
    rows = []
    for c in columns:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        stats = (
            [v.min(), np.median(v), v.mean(), v.std(ddof=1) if v.size > 1 else 0.0, v.max()] if v.size else [np.nan] * 5
        )
        rows.append([c, *(_fmt(x) for x in stats)])
    return pd.DataFrame(rows, columns=["metric", "min", "median", "mean", "std", "max"])


def write_train_report(directory: str | Path, out: str | Path | None = None, *, seed: int | None = None) -> ReportPaths:
    """Report an ``excolor train`` output directory; the full set of one model (``seed``, default the
    §9.10 best: minimise val_recon and each validating regularizer, maximise score).

    Args:
        directory: the ``--out`` directory of ``excolor train``.
        out: where to write (created); default ``DIRECTORY/report/``.
        seed: the seed whose model gets the full figure set.

    Raises:
        AnalysisError: not a train output directory, an unknown seed, or ``out`` cannot be written.
    """
    run = load_train_run(directory)
    e, metrics = run.experiment, run.metrics
    if seed is not None and seed not in run.seeds:
        raise AnalysisError(f"{run.directory} holds seeds {_seed_ranges(tuple(run.seeds))}, not seed {seed}")
    target = Path(out).expanduser() if out is not None else run.directory / "report"
    try:
        (target / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AnalysisError(f"cannot write the report to {target}: {err.strerror or err}") from None
    target = target.resolve()

    validating = tuple(r.name for r in e.regularizers if r.validates)
    rule = original_rule(metrics, minimize=original_minimize(validating), maximize=ORIGINAL_MAXIMIZE)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = _Document(f"Training report: {e.name}")
    doc.para(f"Generated {stamp} by excolor analysis from the files in {run.directory}.")
    m, ev = e.model, e.evaluation
    doc.heading("Run")
    doc.bullets(
        [
            f"experiment: {e.name}" + (f" — {e.description}" if e.description else ""),
            f"model: {m.kind}, K = {m.k_bottleneck}, H = {m.hidden}, N = {m.n_nonlinear}",
            "regularizers: " + ", ".join(f"{r.name} ({type(r.term).__name__})" for r in e.regularizers),
            f"schedule: {e.dopesheet.length} steps; stream {e.stream}",
            f"evaluation: concept axis {ev.concept_dim}, ablated/pruned dims {list(ev.concept_dims)}; "
            f"interventions: {'; '.join(i.describe() for i in ev.interventions) or 'none'}",
            f"seeds: {len(run.seeds)} ({_seed_ranges(tuple(run.seeds))})",
        ]
    )
    n_div = int(metrics["diverged"].astype(bool).sum()) if "diverged" in metrics else 0
    n_col = int(metrics["collapsed"].astype(bool).sum()) if "collapsed" in metrics else 0
    doc.para(f"Diverged: {n_div}; collapsed (final val_recon > 0.01): {n_col} of {len(metrics)} models.")
    columns = [c for c in ("score", "ablated_r") if c in metrics] + distribution_columns(e, list(metrics.columns))
    doc.table(_stats_table(metrics, [c for c in dict.fromkeys(columns) if c in metrics]))

    doc.heading("Distributions across seeds")
    shown = distribution_columns(e, list(metrics.columns))
    try:
        doc.figure(
            "seed_distributions",
            figures.distribution_figure(metrics, columns=shown),
            "All seeds of the run: a box (red line: median) with every seed as a point.",
        )
    except AnalysisError as err:
        doc.para(f"No distributions: {err}.")

    doc.heading("Seeds")
    doc.para(
        f"§9.10 front over the seeds (minimise {', '.join(rule.minimize)}; maximise {', '.join(rule.maximize)}): "
        f"{len(rule.front)} of {len(metrics)} seeds."
    )
    top_cols = ["seed", "score", "val_recon", *_intervention_columns(list(metrics.columns))]
    top_cols += [c for c in _cube_columns(list(metrics.columns)) if c.startswith("ablated_")]
    top = metrics.sort_values("score", ascending=False, kind="stable").head(5)
    frame = pd.DataFrame({c: [_fmt(v) for v in top[c]] for c in top_cols if c in top})
    frame.insert(1, "on front", ["yes" if i in rule.front.index else "" for i in top.index])
    doc.para("Top five seeds by score:")
    doc.table(frame)

    chosen = int(rule.best["seed"]) if seed is None else seed
    why = "the §9.10 best seed" if seed is None else "chosen"
    doc.heading(f"Model: seed {chosen}")
    row = metrics[metrics["seed"] == chosen].iloc[0]
    doc.para(
        f"Seed {chosen} ({why}): "
        + ", ".join(f"{c} {_fmt(row[c])}" for c in ("score", "ablated_r", "val_recon") if c in row.index)
        + "."
    )
    header = f"% excolor analysis: train run {run.directory}, seed {chosen}\n"
    latex = model_set(doc, run.model(chosen), e, label=f"seed {chosen}", out=target, latex_header=header)
    try:
        rule.front.to_csv(target / "pareto.csv", index=False)
        written = []
        for figure in doc.figures():
            path = target / "figures" / f"{figure.name}.png"
            path.write_bytes(figure.png)
            written.append(path)
        (target / "report.md").write_text(doc.markdown(), encoding="utf-8")
        (target / "report.html").write_text(doc.html(), encoding="utf-8")
    except OSError as err:
        raise AnalysisError(f"cannot write the report to {target}: {err.strerror or err}") from None
    return ReportPaths(
        target, target / "report.md", target / "report.html", target / "pareto.csv", latex, tuple(written)
    )
