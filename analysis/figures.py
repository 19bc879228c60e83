"""The figures the notebooks showed of one model and of a set of seeds (issue 17; science.md §9.4, §10.1).

- **Colour slices**: the model's predicted colours over an HSV grid (V up, H across), one panel
  per saturation level, one row per method (input, baseline, ablated, pruned, each intervention);
  and the per-colour error over the same grid.
- **Latent views**: the training colours' latents, each drawn in its own colour, projected onto
  pairs of latent axes, with the unit circle, the concept axis and each intervention's extent
  (the cone where it acts); one row per method, latents captured after the intervention.
- **Loss-cube errors**: max and median per-colour MSE on §9.4's 150×24×24 HSV cube per method.
- **Distributions across seeds**: box plots with every seed as a point, per metric, per trial.
- **The stacked figure**: latent panels over colour slices, in one image (the paper's layout).

Data functions (``color_slices``, ``latent_views``, ``cube_errors``) run the model; figure
functions take their results and return a matplotlib ``Figure`` (no pyplot, as in ``analysis.plots``).
Letters: N colours, K latent width, Hn/Sn/Vn the slice grid's hue/saturation/value counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from analysis.errors import AnalysisError

__all__ = [
    "SLICE_SHAPE",
    "ColorSlices",
    "LatentViews",
    "color_slices",
    "color_slices_figure",
    "cube_errors",
    "distribution_figure",
    "latent_views",
    "latent_views_figure",
    "slice_errors_figure",
    "stacked_figure",
]

FloatArray = npt.NDArray[np.float64]

SLICE_SHAPE = (12, 4, 5)
"""Hues × saturations × values of the colour-slice cube (§9.4: 12 hues, 4 saturations, 5 values)."""

_MAX_PAIRS = 3
_BATCH = 4096  # rows per forward: outputs equal up to float rounding; 64-row batches are slow on big grids


# --------------------------------------------------------------------------------- data


def _plans(model: Any, evaluation: Any) -> tuple[Any, ...]:
    from analysis.models import evaluation_plans

    if evaluation is None:
        return evaluation_plans(model)
    return evaluation_plans(
        model,
        concept_dim=int(evaluation.concept_dim),
        interventions=tuple(evaluation.interventions),
        concept_dims=tuple(evaluation.concept_dims),
    )


@dataclass(frozen=True)
class ColorSlices:
    """A model's colours over an HSV grid, per method.

    Attributes:
        hue, saturation, value: the grid's coordinates ``(Hn,)``, ``(Sn,)``, ``(Vn,)``.
        rgb: the true colours ``(Hn, Sn, Vn, 3)``.
        recon: per method (``baseline``, ``ablated``, ...), the model's output ``(Hn, Sn, Vn, 3)``.
        mse: per method, the per-colour error ``(Hn, Sn, Vn)``.
    """

    hue: FloatArray
    saturation: FloatArray
    value: FloatArray
    rgb: FloatArray
    recon: dict[str, FloatArray]
    mse: dict[str, FloatArray]


def color_slices(model: Any, /, *, evaluation: Any = None, shape: Sequence[int] = SLICE_SHAPE) -> ColorSlices:
    """Predict the colour-slice cube (hues ``arange_cyclic(1/Hn)``, S and V ``linspace(0, 1)``) per method.

    Args:
        model: a ``CNColorMLP`` or ``ColorMLP``.
        evaluation: the experiment's ``Evaluation`` (concept dims, interventions); None for Ex 2.9.1's.
        shape: (Hn, Sn, Vn).
    """
    import torch

    from excolor.colors import ColorCube, arange_cyclic
    from excolor.interventions import infer

    nh, ns, nv = (int(v) for v in shape)
    if min(nh, ns, nv) < 1:
        raise AnalysisError(f"a slice grid needs positive sizes, got {tuple(shape)}")
    h, s, v = arange_cyclic(step_size=1.0 / nh), np.linspace(0.0, 1.0, ns), np.linspace(0.0, 1.0, nv)
    cube = ColorCube.from_hsv(h, s, v)
    rgb = np.asarray(cube.rgb_grid, dtype=np.float64)  # (Hn, Sn, Vn, 3)
    x = torch.as_tensor(rgb, dtype=torch.float32)
    recon, mse = {}, {}
    for plan in _plans(model, evaluation):
        y, _ = infer(plan.transform(model), x, interventions=plan.interventions, capture=None, batch_size=_BATCH)
        y64 = y.double().cpu().numpy()
        recon[plan.name] = y64
        mse[plan.name] = ((y.float().cpu() - x) ** 2).mean(dim=-1).double().numpy()
    return ColorSlices(np.asarray(h, dtype=np.float64), s, v, rgb, recon, mse)


def cube_errors(model: Any, /, *, evaluation: Any = None, shape: Sequence[int] | None = None) -> pd.DataFrame:
    """Max and median per-colour MSE on the HSV loss cube for every method of one model (§9.4, §10.4).

    Returns rows ``method`` (baseline, ablated, pruned, each intervention) with ``max_mse`` and
    ``median_mse`` (the per-model metrics of training, here with pruning done by real surgery).
    """
    from excolor.evaluate import LOSS_CUBE_SHAPE, cube_error_stats, loss_cube, per_color_mse

    cube_shape = tuple(shape) if shape is not None else LOSS_CUBE_SHAPE
    rgb = loss_cube(cube_shape).rgb_grid.reshape(-1, 3)  # type: ignore[arg-type]
    rows = []
    for plan in _plans(model, evaluation):
        stats = cube_error_stats(per_color_mse(model, rgb, plan=plan, batch_size=_BATCH))
        rows.append({"method": plan.name, **{k: float(v) for k, v in stats.items()}})
    return pd.DataFrame(rows, columns=["method", "max_mse", "median_mse"])


@dataclass(frozen=True)
class LatentViews:
    """Training colours' latents per method, and what to draw on them.

    Attributes:
        rgb: the colours ``(N, 3)``.
        latents: per method, the latents ``(N, K)`` after its intervention (``baseline`` and each
            intervention; surgery removes dimensions, so it has no view in the same axes).
        pairs: the projected axis pairs, concept axis first where it is in the pair.
        concept_dim: the concept axis.
        extents: per intervention, the alignments (cosines with the concept axis) that bound where
            it acts: a suppression's falloff start, a repulsion's mapper start and end.
        unit: whether the latent is the unit bottleneck (a circle is drawn) or a raw encoder output.
    """

    rgb: FloatArray
    latents: dict[str, FloatArray]
    pairs: tuple[tuple[int, int], ...]
    concept_dim: int
    extents: dict[str, tuple[float, ...]]
    unit: bool


def _interesting_pairs(latents: FloatArray, concept_dim: int, limit: int = _MAX_PAIRS) -> tuple[tuple[int, int], ...]:
    """The concept axis against the two other axes that vary most, and those two against each other."""
    k = latents.shape[-1]
    others = [d for d in range(k) if d != concept_dim]
    if not others:
        return ()
    spread = latents[:, others].var(axis=0)
    top = [others[i] for i in np.argsort(-spread, kind="stable")[:2]]
    pairs = [(concept_dim, d) for d in top]
    if len(top) == 2:
        pairs.append((top[0], top[1]))
    return tuple(pairs[:limit])


def latent_views(model: Any, /, *, colors: npt.ArrayLike, evaluation: Any = None) -> LatentViews:
    """The latents of ``colors`` ``(N, 3)`` (normally the training colours), baseline and per intervention.

    Args:
        model: a ``CNColorMLP`` (latent = the unit ``bottleneck``) or ``ColorMLP`` (the ``encoder`` output).
        colors: RGB in [0, 1].
        evaluation: the experiment's ``Evaluation``; None for Ex 2.9.1's.
    """
    import torch

    from excolor.evaluate import latent_layers
    from excolor.interventions import infer
    from excolor.methods import as_intervention

    rgb = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    x = torch.as_tensor(rgb, dtype=torch.float32)
    hook = latent_layers(model)[1]
    concept_dim = int(evaluation.concept_dim) if evaluation is not None else 0
    latents: dict[str, FloatArray] = {}
    extents: dict[str, tuple[float, ...]] = {}
    for plan in _plans(model, evaluation):
        if plan.name in ("ablated", "pruned"):
            continue
        _, z = infer(model, x, interventions=plan.interventions, capture=hook, batch_size=_BATCH)
        latents[plan.name] = z.double().cpu().numpy()  # (N, K)
        if plan.name != "baseline":
            names = [i.name for i in (evaluation.interventions if evaluation is not None else ())]
            spec = (
                as_intervention(evaluation.interventions[names.index(plan.name)])
                if plan.name in names
                else as_intervention(plan.name)
            )
            if spec.falloff is not None:
                extents[plan.name] = (spec.falloff.start,)
            elif spec.mapper is not None:
                extents[plan.name] = (spec.mapper.start, spec.mapper.end)
    base = latents["baseline"]
    return LatentViews(rgb, latents, _interesting_pairs(base, concept_dim), concept_dim, extents, hook == "bottleneck")


# --------------------------------------------------------------------------------- figures


def _slice_rows(slices: ColorSlices, methods: Sequence[str] | None) -> list[str]:
    names = list(slices.recon) if methods is None else [m for m in methods if m in slices.recon]
    if not names:
        raise AnalysisError(f"no such methods in the slices; have {list(slices.recon)}")
    return names


def _slice_axes(fig: Figure, rows: int, cols: int) -> np.ndarray:
    return np.asarray(fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True))


def _label_slice(ax: Any, slices: ColorSlices, *, first_col: bool, last_row: bool) -> None:
    nh, nv = len(slices.hue), len(slices.value)
    ax.set_xticks([0, nh / 2 - 0.5, nh - 1])
    ax.set_xticklabels(["0°", f"{slices.hue[nh // 2] * 360:.0f}°", f"{slices.hue[-1] * 360:.0f}°"], fontsize=6)
    ax.set_yticks([0, nv - 1])
    ax.set_yticklabels(["0", "1"], fontsize=6)
    if last_row:
        ax.set_xlabel("hue", fontsize=7)
    if first_col:
        ax.set_ylabel("value", fontsize=7)


def color_slices_figure(slices: ColorSlices, /, *, methods: Sequence[str] | None = None, title: str = "") -> Figure:
    """Rows: the true colours, then each method's predicted colours; columns: saturation levels;
    each panel V (up) vs H (across), as in the Ex 2.9.1, 2.4 and 2.8 notebooks."""
    names = _slice_rows(slices, methods)
    rows = ["input", *names]
    ns = len(slices.saturation)
    fig = Figure(figsize=(1.9 * ns + 0.8, 1.15 * len(rows) + 0.6))
    axes = _slice_axes(fig, len(rows), ns)
    for i, row in enumerate(rows):
        image = slices.rgb if row == "input" else np.clip(slices.recon[row], 0.0, 1.0)  # (Hn, Sn, Vn, 3)
        for j in range(ns):
            ax = axes[i, j]
            ax.imshow(np.transpose(image[:, j], (1, 0, 2)), origin="lower", aspect="auto", interpolation="nearest")
            _label_slice(ax, slices, first_col=j == 0, last_row=i == len(rows) - 1)
            if i == 0:
                ax.set_title(f"S = {slices.saturation[j]:.2f}", fontsize=8)
        axes[i, 0].annotate(
            row, (-0.55, 0.5), xycoords="axes fraction", rotation=90, va="center", ha="center", fontsize=8
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def slice_errors_figure(slices: ColorSlices, /, *, methods: Sequence[str] | None = None, title: str = "") -> Figure:
    """The per-colour error of each method over the colour-slice grid, one shared colour scale."""
    names = _slice_rows(slices, methods)
    ns = len(slices.saturation)
    vmax = max(1e-12, max(float(np.nanmax(slices.mse[m])) for m in names))
    fig = Figure(figsize=(1.9 * ns + 1.6, 1.15 * len(names) + 0.6))
    axes = _slice_axes(fig, len(names), ns)
    image = None
    for i, name in enumerate(names):
        for j in range(ns):
            ax = axes[i, j]
            image = ax.imshow(
                slices.mse[name][:, j].T, origin="lower", aspect="auto", cmap="magma", vmin=0.0, vmax=vmax
            )
            _label_slice(ax, slices, first_col=j == 0, last_row=i == len(names) - 1)
            if i == 0:
                ax.set_title(f"S = {slices.saturation[j]:.2f}", fontsize=8)
        axes[i, 0].annotate(
            name, (-0.55, 0.5), xycoords="axes fraction", rotation=90, va="center", ha="center", fontsize=8
        )
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="MSE")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _draw_latent_panel(ax: Any, views: LatentViews, method: str, pair: tuple[int, int]) -> None:
    a, b = pair
    z = views.latents[method]
    order = np.argsort(views.rgb.sum(axis=-1))  # dark first, so bright colours are not hidden
    ax.scatter(z[order, a], z[order, b], c=views.rgb[order], s=7, edgecolors="#00000022", linewidths=0.2)
    if views.unit:
        t = np.linspace(0.0, 2.0 * math.pi, 200)
        ax.plot(np.cos(t), np.sin(t), color="#999999", lw=0.6)
    c = views.concept_dim
    if c in pair:  # the concept axis, and the cone where the intervention acts
        direction = np.array([1.0, 0.0]) if a == c else np.array([0.0, 1.0])
        ax.annotate("", xy=tuple(direction * 1.1), xytext=(0.0, 0.0), arrowprops={"arrowstyle": "->", "color": "black"})
        for k, cos in enumerate(views.extents.get(method, ())):
            half = math.acos(max(-1.0, min(1.0, cos)))
            for sign in (1.0, -1.0):
                angle = sign * half
                ray = (
                    np.array([math.cos(angle), math.sin(angle)])
                    if a == c
                    else np.array([math.sin(angle), math.cos(angle)])
                )
                ax.plot([0, ray[0] * 1.1], [0, ray[1] * 1.1], ls="--" if k == 0 else ":", color="#d62728", lw=0.9)
    ax.set_xlabel(f"latent {a}", fontsize=7)
    ax.set_ylabel(f"latent {b}", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.2)


def latent_views_figure(views: LatentViews, /, *, title: str = "") -> Figure:
    """One row per method (baseline, each intervention), one panel per axis pair: the training
    colours' latents in their own colours, the concept axis (arrow) and the intervention's extent
    (red: dashed = where it starts acting, dotted = a repulsion's largest alignment after mapping)."""
    if not views.pairs:
        raise AnalysisError("a 1-D latent has no pair of axes to project onto")
    methods = list(views.latents)
    fig = Figure(figsize=(3.0 * len(views.pairs) + 0.4, 2.9 * len(methods) + 0.4))
    axes = np.asarray(fig.subplots(len(methods), len(views.pairs), squeeze=False))
    for i, method in enumerate(methods):
        for j, pair in enumerate(views.pairs):
            _draw_latent_panel(axes[i, j], views, method, pair)
            axes[i, j].set_title(f"{method}: axes {pair[0]}, {pair[1]}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def stacked_figure(views: LatentViews, slices: ColorSlices, /, *, title: str = "") -> Figure:
    """The paper-style figure: the baseline's latent panels over each method's colour slices."""
    methods = list(slices.recon)
    ns = len(slices.saturation)
    cols = max(ns, len(views.pairs))
    rows = 1 + len(methods)
    fig = Figure(figsize=(2.2 * cols, 2.4 + 1.1 * len(methods)))
    grid = fig.add_gridspec(rows, cols, height_ratios=[2.2] + [1.0] * len(methods), hspace=0.35, wspace=0.3)
    for j, pair in enumerate(views.pairs):
        ax = fig.add_subplot(grid[0, j])
        _draw_latent_panel(ax, views, "baseline", pair)
    for i, name in enumerate(methods, start=1):
        for j in range(ns):
            ax = fig.add_subplot(grid[i, j])
            image = np.clip(slices.recon[name][:, j], 0.0, 1.0)
            ax.imshow(np.transpose(image, (1, 0, 2)), origin="lower", aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
            if i == 1:
                ax.set_title(f"S = {slices.saturation[j]:.2f}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def distribution_figure(
    frame: pd.DataFrame,
    /,
    *,
    columns: Sequence[str],
    group: str | None = None,
    order: Sequence[Any] | None = None,
    highlight: Mapping[Any, str] | None = None,
    title: str = "",
) -> Figure:
    """Box plots with every seed drawn as a point: one panel per metric, one box per group (trial).

    Args:
        frame: one row per seed (a study's ``seeds`` table or a train run's metrics).
        columns: the metrics, one panel each (missing or all-NaN columns are skipped).
        group: the column that names a box (``trial_id``); None draws one box of all rows.
        order: the groups to draw, in order (default: all, in order of appearance).
        highlight: group → colour of its points (e.g. the hand schedule in black).
    """
    shown = [c for c in columns if c in frame.columns and pd.to_numeric(frame[c], errors="coerce").notna().any()]
    if not shown:
        raise AnalysisError(f"none of {list(columns)} has values to plot")
    groups: list[Any] = [None] if group is None else list(order if order is not None else dict.fromkeys(frame[group]))
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    width = max(3.2, 0.45 * len(groups) + 1.2)
    fig = Figure(figsize=(width * ncols, 2.9 * nrows))
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    for ax, column in zip(axes, shown):
        data = []
        for g in groups:
            rows = frame if g is None else frame[frame[group] == g]
            values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
            data.append(values[np.isfinite(values)])
        positions = np.arange(1, len(groups) + 1)
        ax.boxplot(
            [d if d.size else [np.nan] for d in data],
            positions=positions,
            widths=0.6,
            showfliers=False,
            medianprops={"color": "#d62728"},
        )
        for pos, g, values in zip(positions, groups, data):
            colour = (highlight or {}).get(g, "#1f77b4")
            ax.scatter(pos + rng.uniform(-0.18, 0.18, values.size), values, s=8, color=colour, alpha=0.7, zorder=3)
        ax.set_title(column, fontsize=9)
        ax.set_xticks(positions)
        ax.set_xticklabels(["all seeds" if g is None else str(g) for g in groups], rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        values = np.concatenate([d for d in data if d.size]) if any(d.size for d in data) else np.array([])
        spread = values.size and (values > 0).all() and values.max() / values.min() > 100
        if spread and (column.endswith("_mse") or column.startswith("val_")):  # errors span decades
            ax.set_yscale("log")
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
