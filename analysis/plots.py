"""Figures of a study: arrays and tables in, a matplotlib ``Figure`` out.

Figures are built on ``matplotlib.figure.Figure`` directly, never through ``pyplot``: no global
figure registry, no GUI backend, nothing to close, and ``fig.savefig`` renders PNG with Agg
whatever backend the caller's process has selected. ``png_bytes`` / ``save_png`` do the writing.

Conventions: the hand schedule is always black (a star in scatter plots, a dashed line in schedule
plots); front members are coloured; everything else is light grey.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from analysis.models import ModelEvaluation
    from excolor.dopesheet import Dopesheet

__all__ = [
    "color_error_figure",
    "hypervolume_figure",
    "png_bytes",
    "save_png",
    "scatter_matrix_figure",
    "schedules_figure",
    "score_recon_figure",
    "similarity_figure",
]

_GREY = "#c8c8c8"
_FRONT = "#d62728"
_HAND = "black"
_DPI = 110


def png_bytes(fig: Figure, /) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path, /) -> Path:
    """Write the figure as a PNG file and return its path."""
    out = Path(path)
    out.write_bytes(png_bytes(fig))
    return out


def _mask(values: npt.ArrayLike | None, n: int, name: str) -> npt.NDArray[np.bool_]:
    if values is None:
        return np.zeros(n, dtype=bool)
    a = np.asarray(values, dtype=bool)
    if a.shape != (n,):
        raise AnalysisError(f"{name} must have one entry per point ({n}), got shape {a.shape}")
    return a


def _spans_decades(values: npt.NDArray[np.float64]) -> bool:
    """Positive values spread over more than a factor 30: errors, best read on a log axis."""
    finite = values[np.isfinite(values)]
    return bool(len(finite) and (finite > 0).all() and finite.max() / finite.min() > 30)


def _log_if_positive(ax: object, values: npt.NDArray[np.float64], axis: str) -> None:
    if _spans_decades(values):
        getattr(ax, f"set_{axis}scale")("log")


def score_recon_figure(
    recon: npt.ArrayLike,
    score: npt.ArrayLike,
    /,
    *,
    front: npt.ArrayLike | None = None,
    hand: npt.ArrayLike | None = None,
    join: bool = True,
    xlabel: str = "val_recon_mean (lower is better)",
    ylabel: str = "score_mean (higher is better)",
    title: str = "Score vs reconstruction",
) -> Figure:
    """Every point grey, the front coloured and joined in recon order, the hand schedule a black star.

    Args:
        recon, score: ``(n,)`` per trial (or per seed).
        front: ``(n,)`` bool, the points to highlight.
        hand: ``(n,)`` bool, the hand-schedule points (outlined in red when also on the front).
        join: draw the front as a line in recon order; only meaningful when the front is over
            exactly these two objectives (a front over more objectives is not a curve here).
    """
    x = np.asarray(recon, dtype=np.float64)
    y = np.asarray(score, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise AnalysisError(f"recon and score must be (n,) arrays of one length, got {x.shape} and {y.shape}")
    on_front = _mask(front, len(x), "front")
    is_hand = _mask(hand, len(x), "hand")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    ax.scatter(x[~on_front], y[~on_front], s=22, color=_GREY, label="dominated", zorder=2)
    order = np.argsort(x[on_front], kind="stable")
    style = "-o" if join else "o"
    ax.plot(x[on_front][order], y[on_front][order], style, color=_FRONT, ms=5, lw=1, label="Pareto front", zorder=3)
    if is_hand.any():
        edges = [_FRONT if f else _HAND for f in on_front[is_hand]]
        ax.scatter(
            x[is_hand],
            y[is_hand],
            marker="*",
            s=170,
            color=_HAND,
            edgecolors=edges,
            linewidths=1.2,
            label="hand schedule",
            zorder=4,
        )
    _log_if_positive(ax, x, "x")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def scatter_matrix_figure(
    points: npt.ArrayLike,
    /,
    *,
    names: Sequence[str],
    front: npt.ArrayLike | None = None,
    hand: npt.ArrayLike | None = None,
    errors: Sequence[bool] | None = None,
) -> Figure:
    """All pairs of objectives ``(n, k)``: scatter plots off the diagonal, histograms on it.

    The front and the hand schedule are marked as in ``score_recon_figure``, so a trial that is only
    good in one pair of objectives stands out. An error (``errors``: per column; default: every
    column) whose values span more than a factor 30 gets log axes and log-spaced bins, so the front
    is not crushed into a corner.
    """
    a = np.asarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != len(names) or a.shape[1] < 1:
        raise AnalysisError(f"points must be (n, {len(names)}) for names {list(names)}, got {a.shape}")
    n, k = a.shape
    on_front = _mask(front, n, "front")
    is_hand = _mask(hand, n, "hand")
    size = max(2.0, 9.0 / k)
    fig = Figure(figsize=(size * k, size * k))
    axes = fig.subplots(k, k, squeeze=False)
    error = list(errors) if errors is not None else [True] * k
    log = [error[c] and _spans_decades(a[:, c]) for c in range(k)]
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if i == j:
                values = a[:, i][np.isfinite(a[:, i])]
                if len(values):
                    count = min(20, max(3, len(values)))
                    lo, hi = values.min(), values.max()
                    bins = np.geomspace(lo, hi, count + 1) if log[i] else np.linspace(lo, hi, count + 1)
                    ax.hist(values, bins=bins, color=_GREY, edgecolor="white", label="all trials")
                    front_values = a[on_front, i][np.isfinite(a[on_front, i])]
                    ax.hist(front_values, bins=bins, color=_FRONT, alpha=0.6, label="front")
                ax.set_title(f"{names[i]}: trials per bin", fontsize=7)
            else:
                ax.scatter(a[~on_front, j], a[~on_front, i], s=8, color=_GREY)
                ax.scatter(a[on_front, j], a[on_front, i], s=12, color=_FRONT)
                if is_hand.any():
                    ax.scatter(a[is_hand, j], a[is_hand, i], marker="*", s=80, color=_HAND)
                if log[i]:
                    ax.set_yscale("log")
            if log[j]:
                ax.set_xscale("log")
            # Short tick labels and no shared offset text ("1e-5"), which would collide with the labels.
            if not log[j]:
                ax.xaxis.set_major_locator(MaxNLocator(3))
                ax.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            if i != j and not log[i]:
                ax.yaxis.set_major_locator(MaxNLocator(3))
                ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            if i == k - 1:
                ax.set_xlabel(names[j] + (" (log)" if log[j] else ""), fontsize=8)
            if j == 0:
                ax.set_ylabel(names[i] + (" (log)" if log[i] and i != j else ""), fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle("Objectives pairwise (red: Pareto front, star: hand schedule)", fontsize=10)
    fig.tight_layout()
    return fig


def hypervolume_figure(history: npt.ArrayLike, /, *, title: str = "Hypervolume as trials finished") -> Figure:
    """The hypervolume after each finished trial ``(n,)``, a step line in completion order."""
    h = np.asarray(history, dtype=np.float64)
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    if len(h):
        ax.step(np.arange(1, len(h) + 1), h, where="post", color="#1f77b4")
        ax.plot(np.arange(1, len(h) + 1), h, "o", ms=3, color="#1f77b4")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("finished trials (completion order)")
    ax.set_ylabel("hypervolume (normalised objectives)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def _step_panels(n: int, *, width: float, height: float) -> tuple[Figure, npt.NDArray[Any]]:
    """n panels over training steps, two per row (one if n is 1); the grid's spare panel hidden."""
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _label_step_panel(ax: Any, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)


def schedules_figure(hand: Dopesheet, /, *, sheets: Mapping[str, Dopesheet]) -> Figure:
    """One panel per property (lr, then each regularizer weight) over steps: ``sheets`` over the hand schedule.

    Args:
        hand: the hand schedule (a broad grey band drawn underneath, so that a trial with the hand
            schedule itself stays visible on top of it).
        sheets: label -> schedule of each trial to show (e.g. the front's trials).
    """
    props = list(hand.props)
    for sheet in sheets.values():
        props += [p for p in sheet.props if p not in props]
    fig, axes = _step_panels(len(props), width=6.0, height=2.6)
    colours = [f"C{i % 10}" for i in range(len(sheets))]
    for ax, prop in zip(axes, props):
        for colour, (label, sheet) in zip(colours, sheets.items()):
            if prop in sheet.props:
                ax.plot(np.arange(sheet.length), sheet.table([prop])[:, 0], color=colour, lw=1.2, label=label)
        if prop in hand.props:
            ax.plot(np.arange(hand.length), hand.table([prop])[:, 0], color="#bbbbbb", lw=5, label="hand", zorder=1)
        if prop == "lr":
            ax.set_yscale("log")
        _label_step_panel(ax, prop)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), fontsize=8, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def learning_curves_figure(
    curves: Mapping[str, pd.DataFrame],
    /,
    *,
    columns: Sequence[str],
    highlight: Sequence[str] = (),
    errors: Sequence[str] = (),
) -> Figure:
    """Each objective over training steps, one line per trial (``curves``: trial id -> ``step`` + columns).

    Trials in ``highlight`` (the front) are drawn in colour and labelled, the others thin and grey.
    A column in ``errors`` that spans decades gets a log axis.
    """
    fig, axes = _step_panels(len(columns), width=6.4, height=3.4)
    shown = [t for t in highlight if t in curves]
    colours = {t: f"C{i % 10}" for i, t in enumerate(shown)}
    for ax, column in zip(axes, columns):
        values = []
        for trial, frame in curves.items():
            if column not in frame or trial in colours:
                continue
            ax.plot(frame["step"], frame[column], color=_GREY, lw=0.6, alpha=0.5, zorder=1)
            values.append(frame[column].to_numpy(dtype=float))
        for trial in shown:
            frame = curves[trial]
            if column in frame:
                ax.plot(frame["step"], frame[column], color=colours[trial], lw=1.4, label=trial, zorder=2)
                values.append(frame[column].to_numpy(dtype=float))
        if values and column in errors:
            _log_if_positive(ax, np.concatenate(values), "y")
        _label_step_panel(ax, column)
    if shown:
        axes[0].legend(fontsize=7, loc="best", title="front", title_fontsize=7)
    fig.tight_layout()
    return fig


def color_error_figure(table: pd.DataFrame, /, *, title: str = "Per-colour reconstruction error") -> Figure:
    """Grouped bars per named colour: baseline MSE and the MSE after each method (ablated, pruned, ...).

    Args:
        table: ``excolor.evaluate.named_color_table`` (columns ``name``, ``rgb``, ``baseline``,
            then ``<method>`` and ``<method>-delta``).
    """
    if "name" not in table.columns or "baseline" not in table.columns:
        raise AnalysisError(f"a named-colour table needs 'name' and 'baseline' columns, got {list(table.columns)}")
    methods = ["baseline"] + [c.removesuffix("-delta") for c in table.columns if str(c).endswith("-delta")]
    n = len(table)
    width = 0.8 / len(methods)
    fig = Figure(figsize=(max(7.0, 0.55 * n), 4.0))
    ax = fig.add_subplot()
    x = np.arange(n)
    for i, method in enumerate(methods):
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            table[method].to_numpy(dtype=np.float64),
            width,
            label=method,
            color=f"C{i}",
        )
    ax.set_xticks(x)
    ax.set_xticklabels(table["name"].tolist(), rotation=60, ha="right", fontsize=8)
    if "rgb" in table.columns:  # a swatch of each colour under its bars
        low = -0.04 * max(1e-12, float(np.nanmax(table[methods].to_numpy(dtype=np.float64))))
        for xi, rgb in zip(x, table["rgb"]):
            ax.bar(xi, low, 0.8, color=tuple(float(c) for c in rgb), edgecolor="#888888", linewidth=0.5)
        ax.axhline(0, color="#888888", lw=0.5)
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def similarity_figure(evaluation: ModelEvaluation, /, *, title: str = "") -> Figure:
    """Error vs similarity to the anchor colour per method, each colour drawn in its own colour, with r and R²."""
    methods = list(evaluation.errors)
    fig = Figure(figsize=(4.2 * len(methods), 3.8))
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    corr = evaluation.correlations.set_index("plan")
    for ax, method in zip(axes, methods):
        ax.scatter(evaluation.similarity[method], evaluation.errors[method], s=4, c=evaluation.rgb, alpha=0.8)
        power = corr.loc[method, "power"] if method in corr.index else float("nan")
        r = corr.loc[method, "r"] if method in corr.index else float("nan")
        r2 = corr.loc[method, "r2"] if method in corr.index else float("nan")
        ax.set_title(f"{method}: r = {r:+.2f}, R² = {r2:.2f}", fontsize=10)
        ax.set_xlabel(f"similarity to {evaluation.anchor} ^ {power:g}", fontsize=8)
        ax.set_ylabel("MSE", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
