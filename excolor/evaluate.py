"""Does deleting the red axis damage red colours only? The scores and tables that answer it (science.md §9).

The Ex 2.9.1 objective (``ablation_score``) is r² of the Pearson correlation between each colour's
reconstruction error after ablating latent axis 0 and its HSV similarity to red, cubed, on the 8³ RGB
grid (§9.8). The same correlation on the 20³ cube, and per-named-colour error tables, describe the
best model of a study (§9.11, §9.12, §10.1).

The model runs in float32 (eval mode, clamped outputs); grids, similarities and correlations are
float64 (§14.4). Letters: S = models, N = colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from excolor.colors import RED_HSV, ColorCube, hsv_similarity, named_colors, rgb_grid, rgb_to_hsv
from excolor.devices import on_threads
from excolor.interventions import InterventionConfig, infer
from excolor.methods import REGISTERED, SURGERY_POWER, InterventionSpec, as_intervention, cube_metric_names
from excolor.population import Population
from excolor.surgery import ablate, prune

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is made: `excolor train` and Ray trials need none

__all__ = [
    "CORRELATION_POWERS",
    "INTERVENTION_POWERS",
    "LOSS_CUBE_SHAPE",
    "EvaluationPlan",
    "Method",
    "ablation_score",
    "concept_intervention",
    "cube_error_stats",
    "error_correlation",
    "intervention_correlations",
    "latent_layers",
    "loss_cube",
    "method_errors",
    "model_plans",
    "named_color_latex",
    "named_color_table",
    "pearson_r",
    "per_color_mse",
    "plan_power",
    "population_correlations",
    "population_cube_metrics",
    "red_similarity",
    "score_from_errors",
    "similarity_correlations",
    "standard_plans",
]

FloatArray = npt.NDArray[np.float64]

CORRELATION_POWERS: Mapping[str, float] = {
    "ablated": SURGERY_POWER,
    "pruned": SURGERY_POWER,
    "suppression": REGISTERED["suppression"].power,
}
"""Similarity power per plan of Ex 2.9.1's error-vs-similarity correlations (§9.12, §10.1 scatter plots);
an experiment's own interventions carry theirs (``InterventionSpec.power``)."""

INTERVENTION_POWERS: Mapping[str, float] = {name: spec.power for name, spec in REGISTERED.items()}
"""Similarity power of each registered intervention's r (``excolor.methods.REGISTERED``)."""

LOSS_CUBE_SHAPE = (150, 24, 24)
"""Hues × saturations × values of the HSV loss cube of §9.4 (hue range extended by 1/12 past both ends)."""

_LAYER = "bottleneck"


def _identity(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class EvaluationPlan:
    """A named way to evaluate a model: a weight edit (``transform``) plus inference-time interventions (§9.7)."""

    name: str
    transform: Callable[[nn.Module], nn.Module] = _identity
    interventions: tuple[InterventionConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an EvaluationPlan needs a non-empty name")
        object.__setattr__(self, "interventions", tuple(self.interventions))


def standard_plans(k_bottleneck_dim: int = 0, *, k_bottleneck: int = 5) -> tuple[EvaluationPlan, ...]:
    """The four plans of §9.12: ``baseline``, ``ablated``, ``pruned``, ``suppression``.

    Args:
        k_bottleneck_dim: the latent axis that should hold the concept (0 in Ex 2.9.1).
        k_bottleneck: the model's latent width K; the suppression's concept vector is the unit
            vector along ``k_bottleneck_dim`` in K dimensions.

    >>> [p.name for p in standard_plans()]
    ['baseline', 'ablated', 'pruned', 'suppression']
    """
    if not 0 <= k_bottleneck_dim < k_bottleneck:
        raise ValueError(f"k_bottleneck_dim must lie in [0, {k_bottleneck}), got {k_bottleneck_dim}")
    return _plans(k_bottleneck, k_bottleneck_dim, (_LAYER, _LAYER), ())


def latent_layers(model: nn.Module, /) -> tuple[str, str]:
    """(surgery layer, intervention layer) of a model's latent.

    ``CNColorMLP``: ``('bottleneck', 'bottleneck')``, the unit latent. ``ColorMLP``: the latent is
    the ``encoder`` output; surgery addresses it as ``'decoder'`` (its neighbours are the encoder's
    last Linear and the decoder's first, whatever the widths), interventions hook ``'encoder'``.
    """
    names = {name for name, _ in model.named_modules()}
    if _LAYER in names:
        return _LAYER, _LAYER
    if {"encoder", "decoder"} <= names:
        return "decoder", "encoder"
    raise ValueError(f"a {type(model).__name__} has neither a 'bottleneck' nor 'encoder' and 'decoder' modules")


def model_plans(
    model: nn.Module,
    /,
    *,
    concept_dim: int = 0,
    interventions: Iterable[InterventionSpec | str] = (),
    concept_dims: Sequence[int] | None = None,
) -> tuple[EvaluationPlan, ...]:
    """§9.12's plans for any model kind: ``baseline``, ``ablated``, ``pruned`` (deleting
    ``concept_dims``, default ``(concept_dim,)``), ``suppression`` (the experiment's own if
    ``interventions`` has one of that name, else Ex 2.9.1's gate), then the other ``interventions``
    (registered names or ``InterventionSpec``s), all acting on latent axis ``concept_dim``.

    On a ``CNColorMLP`` with the defaults these are ``standard_plans`` (same gate, same surgery).
    """
    k = int(getattr(model, "k_bottleneck", 0)) or _latent_width(model)
    if not 0 <= concept_dim < k:
        raise ValueError(f"concept_dim {concept_dim} is outside the model's {k}-D latent")
    dims = tuple(concept_dims) if concept_dims else (concept_dim,)
    return _plans(k, concept_dim, latent_layers(model), interventions, dims)


def _plans(
    k: int,
    concept_dim: int,
    layers: tuple[str, str],
    interventions: Iterable[InterventionSpec | str],
    concept_dims: Sequence[int] | None = None,
) -> tuple[EvaluationPlan, ...]:
    """baseline, ablated, pruned (surgery on ``concept_dims`` at ``layers[0]``), ``suppression``
    unless ``interventions`` has a spec of that name, then ``interventions`` (hooked at ``layers[1]``)
    on latent axis ``concept_dim`` of a K-D latent."""
    surgery, hook = layers
    dims = tuple(concept_dims) if concept_dims else (concept_dim,)
    axis = torch.zeros(k)
    axis[concept_dim] = 1.0
    plans = [
        EvaluationPlan("baseline"),
        EvaluationPlan("ablated", partial(ablate, layer_id=surgery, dims=dims)),
        EvaluationPlan("pruned", partial(prune, layer_id=surgery, dims=dims)),
    ]
    # Every plan set has a suppression (an experiment's own, or Ex 2.9.1's gate), as it always had.
    specs = {"suppression": REGISTERED["suppression"], **{s.name: s for s in map(as_intervention, interventions)}}
    for spec in specs.values():
        hooked = InterventionConfig(spec.build(axis), (hook,))
        plans.append(EvaluationPlan(spec.name, interventions=(hooked,)))
    return tuple(plans)


def plan_power(name: str, interventions: Iterable[InterventionSpec | str] = ()) -> float:
    """Similarity power of a plan's error-vs-similarity r: surgery 3, an intervention its own power.

    >>> plan_power("ablated"), plan_power("suppression")
    (3.0, 2.0)
    """
    if name in ("ablated", "pruned"):
        return SURGERY_POWER
    for spec in (as_intervention(i) for i in interventions):
        if spec.name == name:
            return spec.power
    return REGISTERED[name].power if name in REGISTERED else SURGERY_POWER


def pearson_r(x: npt.ArrayLike, y: npt.ArrayLike, /) -> FloatArray:
    """Pearson correlation along the last axis, batched over leading axes (float64).

    Args:
        x: ``[N]`` or ``[..., N]``, broadcast against ``y``.
        y: ``[..., N]``, N >= 2.

    Returns:
        r ``[...]`` in [-1, 1]. Where either side is constant (zero variance) r is undefined and
        returned as NaN, as scipy does; callers decide what that means for them.

    >>> round(float(pearson_r([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])), 4)
    0.9934
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim == 0 or ya.ndim == 0 or xa.shape[-1] != ya.shape[-1]:
        raise ValueError(f"x and y must share a last axis, got shapes {xa.shape} and {ya.shape}")
    if ya.shape[-1] < 2:
        raise ValueError(f"pearson_r needs at least 2 points, got {ya.shape[-1]}")
    xa, ya = np.broadcast_arrays(xa, ya)
    constant = np.all(xa == xa[..., :1], axis=-1) | np.all(ya == ya[..., :1], axis=-1)  # (...)
    xm = xa - xa.mean(axis=-1, keepdims=True)
    ym = ya - ya.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = xm / np.linalg.norm(xm, axis=-1, keepdims=True)
        yn = ym / np.linalg.norm(ym, axis=-1, keepdims=True)
        r = np.clip(np.sum(xn * yn, axis=-1), -1.0, 1.0)  # (...)
    return np.where(constant, np.nan, r)


def _pearson_p(r: FloatArray, n: int) -> FloatArray:
    """Two-sided p-value of r under the null of no correlation (Student t with n − 2 dof)."""
    if n == 2:  # r is ±1 by construction; scipy reports p = 1.
        return np.where(np.isnan(r), np.nan, 1.0)
    # NOTE(evaluate): p = P(|T| >= |t|) with t = r·sqrt(df/(1 − r²)) equals I_{1−r²}(df/2, 1/2).
    import scipy.special  # here, not at the top: training never needs it, and it costs ~0.5 s to import

    return np.asarray(scipy.special.betainc((n - 2) / 2.0, 0.5, np.clip(1.0 - r**2, 0.0, 1.0)))


def red_similarity(rgb: npt.ArrayLike, /, *, power: float = 1.0) -> FloatArray:
    """Hemi-angular HSV similarity of RGB colours ``[..., 3]`` to pure red, raised to ``power`` → ``[...]``."""
    return hsv_similarity(rgb_to_hsv(rgb), RED_HSV, hemi=True, mode="angular") ** power


def _correlate(
    rgb: npt.ArrayLike, mse: npt.ArrayLike, anchor_hsv: npt.ArrayLike, power: float
) -> tuple[FloatArray, int]:
    """r of similarity**power vs errors; the colour axes of ``mse`` are the trailing ones, matching ``rgb``."""
    sim = hsv_similarity(rgb_to_hsv(rgb), anchor_hsv, hemi=True, mode="angular") ** power  # (colour axes)
    errors = np.asarray(mse, dtype=np.float64)
    if errors.ndim < sim.ndim or errors.shape[errors.ndim - sim.ndim :] != sim.shape:
        raise ValueError(f"mse {errors.shape} must end with the colour axes of rgb {sim.shape}")
    errors = errors.reshape(*errors.shape[: errors.ndim - sim.ndim], sim.size)  # (..., N)
    return pearson_r(sim.reshape(-1), errors), sim.size


def error_correlation(
    rgb: npt.ArrayLike,
    mse: npt.ArrayLike,
    /,
    *,
    anchor_hsv: npt.ArrayLike = RED_HSV,
    power: float,
) -> tuple[FloatArray, FloatArray]:
    """Pearson (r, p) between per-colour error and similarity to the anchor, to the ``power`` (§9.6).

    Args:
        rgb: colours ``[N, 3]`` (or any ``[..., 3]`` grid, flattened in C order).
        mse: per-colour errors ``[..., N]`` (or ``[..., <grid axes>]``); leading axes are batched.
        anchor_hsv: the concept colour in HSV.
        power: exponent applied to the similarity.

    Returns:
        r and p, each of the batch shape (0-d for a single model); NaN where r is undefined.
    """
    r, n = _correlate(rgb, mse, anchor_hsv, power)
    return r, _pearson_p(r, n)


def score_from_errors(
    mse: npt.ArrayLike, /, *, rgb: npt.ArrayLike, power: float = 3.0, anchor_hsv: npt.ArrayLike = RED_HSV
) -> tuple[FloatArray, FloatArray]:
    """The ablation score of S models from their per-colour errors: (r² ``[S]``, r ``[S]``) (§9.8).

    Args:
        mse: ``[S, N]`` errors of each ablated model on the colours ``rgb``.
        rgb: ``[N, 3]``, normally ``rgb_grid(8)``.
        power: exponent of the similarity to the anchor colour.
        anchor_hsv: the concept colour (pure red in every shipped experiment).

    The sign of r is discarded by the square; report r beside the score so that collapsed runs with
    a negative r stay visible (§14.2). NaN where a model's errors are all equal.
    """
    r, _ = _correlate(rgb, mse, anchor_hsv, power)
    return r**2, r


def per_color_mse(model: nn.Module, rgb: npt.ArrayLike, /, *, plan: EvaluationPlan, batch_size: int = 64) -> FloatArray:
    """Reconstruction error of each colour ``[..., 3]`` → ``[...]`` for the model variant of ``plan``.

    The forward and the error (mean over the 3 channels) are float32 in eval mode, as in training
    and validation; the result is returned as float64. ``batch_size`` is the notebooks' 64 by
    default; large grids (the 86,400-colour loss cube) run faster in larger batches.
    """
    colors = np.asarray(rgb, dtype=np.float64)
    if colors.ndim == 0 or colors.shape[-1] != 3:
        raise ValueError(f"rgb must have shape [..., 3], got {colors.shape}")
    x = torch.as_tensor(colors, dtype=torch.float32)
    variant = plan.transform(model)
    y, _ = infer(variant, x, interventions=plan.interventions, capture=None, batch_size=batch_size)
    mse = ((y.float().cpu() - x) ** 2).mean(dim=-1)  # (...)
    return mse.numpy().astype(np.float64)


def ablation_score(
    model: nn.Module, /, *, grid: int = 8, power: float = 3.0, dims: Sequence[int] = (0,)
) -> tuple[float, float]:
    """The Ex 2.9.1 objective: (r², r) of ablated-model error vs similarity to red, cubed (§9.8).

    Latent ``dims`` (axis 0 in Ex 2.9.1; a subspace such as Ex 2.1's ``(0, 1)``) are ablated and
    the model evaluated on the ``grid``³ RGB grid.
    """
    rgb = rgb_grid(grid)  # (N, 3)
    plan = EvaluationPlan("ablated", partial(ablate, layer_id=latent_layers(model)[0], dims=tuple(dims)))
    mse = per_color_mse(model, rgb, plan=plan)  # (N,)
    score, r = score_from_errors(mse[None, :], rgb=rgb, power=power)
    return float(score[0]), float(r[0])


def _latent_width(model: nn.Module) -> int:
    """K of the model, read off one forward pass at the bottleneck (also right for pruned models)."""
    return int(infer(model, np.zeros((1, 3)), capture=_LAYER)[1].shape[-1])


def _resolve_plans(model: nn.Module, plans: Iterable[EvaluationPlan] | None) -> tuple[EvaluationPlan, ...]:
    resolved = model_plans(model) if plans is None else tuple(plans)
    names = [p.name for p in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"plan names must be unique, got {names}")
    return resolved


def named_color_table(model: nn.Module, /, *, plans: Iterable[EvaluationPlan] | None = None) -> pd.DataFrame:
    """Per-named-colour error of each plan, and its increase over the baseline (§9.11, §10.1).

    Args:
        model: the trained model.
        plans: default ``standard_plans`` for the model's K. The plan named ``'baseline'`` gives the
            baseline column (the unedited model if there is none).

    Returns:
        One row per named colour (12 hues then 5 greys, §9.3) with columns ``name``, ``rgb``, ``hsv``,
        ``baseline``, then ``<plan>`` (MSE) and ``<plan>-delta`` (MSE − baseline) per other plan.
    """
    import pandas as pd

    resolved = _resolve_plans(model, plans)
    colors = named_colors()
    rgb = np.array(colors["rgb"].tolist())  # (17, 3)
    baseline = next((p for p in resolved if p.name == "baseline"), EvaluationPlan("baseline"))
    base_mse = per_color_mse(model, rgb, plan=baseline)
    table = pd.DataFrame({"name": colors["name"], "rgb": colors["rgb"], "hsv": colors["hsv"], "baseline": base_mse})
    for plan in resolved:
        if plan.name == "baseline":
            continue
        if plan.name in table.columns or f"{plan.name}-delta" in table.columns:
            raise ValueError(f"plan name {plan.name!r} clashes with a table column")
        mse = per_color_mse(model, rgb, plan=plan)
        table[plan.name] = mse
        table[f"{plan.name}-delta"] = mse - base_mse
    return table


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_number(value: float, decimals: int) -> str:
    """Fixed-point with a typographic minus; values that round to zero carry no sign."""
    if math.isnan(value):
        return "--"
    text = f"{value:.{decimals}f}"
    if text.startswith("-"):
        return text[1:] if float(text) == 0.0 else "$-$" + text[1:]
    return text


def named_color_latex(table: pd.DataFrame, /, *, decimals: int = 9) -> str:
    """A LaTeX (booktabs) tabular of ``named_color_table``: Colour, Baseline, then Δ per method (§10.1).

    Methods are the table's ``<plan>-delta`` columns, in order, headed ``$\\Delta$ <plan>``.
    """
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    missing = {"name", "baseline"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    deltas = [c for c in table.columns if isinstance(c, str) and c.endswith("-delta")]
    headers = ["Colour", "Baseline"] + [rf"$\Delta$ {_latex_escape(c[: -len('-delta')])}" for c in deltas]
    lines = [
        rf"\begin{{tabular}}{{l{'r' * (1 + len(deltas))}}}",
        r"\toprule",
        " & ".join(headers) + r" \\",
        r"\midrule",
    ]
    for _, row in table.iterrows():
        cells = [_latex_escape(str(row["name"]))]
        cells += [_latex_number(float(row[c]), decimals) for c in ["baseline", *deltas]]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def similarity_correlations(model: nn.Module, /, *, n: int = 20) -> pd.DataFrame:
    """Error-vs-similarity-to-red correlations on the n³ RGB cube (§9.12, §10.1's scatter plots).

    Returns:
        Rows ``ablated`` and ``pruned`` (similarity cubed) and ``suppression`` (squared), with
        columns ``plan``, ``power``, ``r``, ``r2`` and ``p``.
    """
    import pandas as pd

    rgb = rgb_grid(n)  # (n³, 3)
    plans = {p.name: p for p in standard_plans(k_bottleneck=_latent_width(model))}
    rows = []
    for name, power in CORRELATION_POWERS.items():
        mse = per_color_mse(model, rgb, plan=plans[name])
        r, p = error_correlation(rgb, mse, power=power)
        rows.append({"plan": name, "power": power, "r": float(r), "r2": float(r) ** 2, "p": float(p)})
    return pd.DataFrame(rows, columns=["plan", "power", "r", "r2", "p"])


@torch.no_grad()
def population_correlations(population: Population, /, *, n: int = 20, concept_dim: int = 0) -> dict[str, FloatArray]:
    """§9.12's per-model correlations for a whole population at once, on the n³ RGB cube.

    Returns ``ablated_r`` (MSE after ablating ``concept_dim`` vs similarity³) and
    ``suppression_r`` (MSE under the hard-gate suppression of that axis vs similarity²), each (S,).
    Equal to ``similarity_correlations`` of each model, without building S models.
    """
    rgb = rgb_grid(n)
    x = torch.as_tensor(rgb, dtype=torch.float32, device=population.flat.device)
    axis = torch.zeros(population.k_bottleneck, device=x.device)
    axis[concept_dim] = 1.0
    suppress = REGISTERED["suppression"].build(axis)
    out = {}
    for name, kwargs in (("ablated", {"ablate": [concept_dim]}), ("suppression", {"latent_map": suppress})):
        y = population.predict(x, **kwargs)  # (S, N, 3)
        mse = ((y - x) ** 2).mean(-1).double().cpu().numpy()  # (S, N)
        out[f"{name}_r"] = pearson_r(red_similarity(rgb, power=CORRELATION_POWERS[name]), mse)
    return out


Method = tuple[Sequence[int], Callable[[torch.Tensor], torch.Tensor] | None]
"""How a model is scored: (pre-norm latent coordinates to ablate, a latent map or None)."""


def method_errors(
    population: Population,
    x: torch.Tensor,
    methods: Sequence[Method],
    *,
    engine: str = "torch",
    dtype: type[np.floating[Any]] = np.float64,
) -> list[npt.NDArray[np.floating[Any]]]:
    """Per-colour MSE (S, N) of every model on colours ``x`` (N, 3), one array per method, as
    ``dtype`` (the models compute in float32; statistics that only order the errors need no more).

    ``engine`` ``kernel`` evaluates with the compiled per-model forward (``excolor.kernel_forward``,
    equal to float tolerance and several times faster on the CPU); any other value, or a population
    off the CPU, with ``Population.color_errors``.
    """
    if engine == "kernel" and population.flat.device.type == "cpu":
        from excolor.kernel_forward import color_errors

        return [e.numpy().astype(dtype, copy=False) for e in color_errors(population, x, methods)]
    return [
        population.color_errors(x, ablate=ablate, latent_map=latent_map).cpu().numpy().astype(dtype, copy=False)
        for ablate, latent_map in methods
    ]


def concept_intervention(name: str | InterventionSpec, axis: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The latent map of an intervention (a registered name or a spec) on the unit concept ``axis``.

    ``suppression``: Ex 2.9.1's hard gate (BoundedFalloff(cos 90°, 1, 0)) removes the whole positive
    component. ``repulsion``: rotate aligned latents to at most cos 60° with a fast Bézier map
    (Ex 2.4, §10.4). See ``excolor.methods.REGISTERED``.
    """
    return as_intervention(name).build(axis)


@torch.no_grad()
def intervention_correlations(
    population: Population,
    interventions: Iterable[InterventionSpec | str],
    /,
    *,
    concept_dim: int = 0,
    anchor_hsv: npt.ArrayLike = RED_HSV,
    n: int = 20,
    engine: str = "torch",
) -> dict[str, FloatArray]:
    """``<name>_r`` (S,) for each intervention: per-colour error under it vs similarity to the anchor,
    raised to the intervention's power, on the n³ RGB cube (§9.12); it acts on the concept axis.
    ``engine``: see ``method_errors``."""
    rgb = rgb_grid(n)
    x = torch.as_tensor(rgb, dtype=torch.float32, device=population.flat.device)
    axis = torch.zeros(population.k_bottleneck, device=x.device)
    axis[concept_dim] = 1.0
    hsv = rgb_to_hsv(rgb)
    specs = list(map(as_intervention, interventions))
    errors = method_errors(population, x, [((), spec.build(axis)) for spec in specs], engine=engine)  # (S, N) each
    out = {}
    for spec, mse in zip(specs, errors):
        sim = hsv_similarity(hsv, anchor_hsv, hemi=True, mode="angular") ** spec.power
        out[f"{spec.name}_r"] = pearson_r(sim, mse)
    return out


def loss_cube(shape: tuple[int, int, int] = LOSS_CUBE_SHAPE) -> ColorCube:
    """§9.4's HSV loss cube: hue linspace(−1/12, 1 + 1/12), saturation and value linspace(0, 1).

    >>> loss_cube((4, 3, 2)).rgb_grid.shape
    (4, 3, 2, 3)
    """
    nh, ns, nv = shape
    return ColorCube.from_hsv(np.linspace(-1 / 12, 1 + 1 / 12, nh), np.linspace(0, 1, ns), np.linspace(0, 1, nv))


def cube_error_stats(mse: npt.ArrayLike, /) -> dict[str, FloatArray]:
    """``max_mse`` and ``median_mse`` over the colour axis of per-colour errors ``[..., N]`` → ``[...]``.

    >>> {k: float(v) for k, v in cube_error_stats([0.0, 0.1, 0.5]).items()}
    {'max_mse': 0.5, 'median_mse': 0.1}
    """
    errors = np.asarray(mse)
    if errors.dtype not in (np.float32, np.float64):
        errors = errors.astype(np.float64)
    # NOTE(excolor): np.median's own result in float64, from a partition in the errors' own dtype:
    # the loss cube's float32 errors need no float64 copy, and partition them in half the time.
    n = errors.shape[-1]
    middle = [(n - 1) // 2, n // 2]
    pair = np.partition(errors, middle, axis=-1)[..., middle].astype(np.float64)
    nan = np.isnan(errors).any(axis=-1)
    return {
        "max_mse": np.where(nan, np.nan, errors.max(axis=-1).astype(np.float64)),
        "median_mse": np.where(nan, np.nan, (pair[..., 0] + pair[..., 1]) / 2),
    }


@torch.no_grad()
def population_cube_metrics(
    population: Population,
    /,
    *,
    concept_dims: Sequence[int] = (0,),
    concept_dim: int = 0,
    interventions: Iterable[InterventionSpec | str] = (),
    shape: tuple[int, int, int] = LOSS_CUBE_SHAPE,
    engine: str = "torch",
) -> dict[str, FloatArray]:
    """Max and median per-colour MSE on the HSV loss cube for each method, per model (§9.4, §10.4).

    The figures the notebooks quote (Ex 2.8: ablated max 0.74, median 0.044; Ex 2.4: suppression
    max 0.16). Keys ``cube_metric_names(interventions)``: ``baseline_*``, ``ablated_*`` (deleting
    ``concept_dims``; pruning gives the same outputs, §7.4) and ``<intervention>_*`` on axis
    ``concept_dim``; each (S,). ``engine``: see ``method_errors`` (the encoder then runs once for
    all methods).
    """
    rgb = loss_cube(shape).rgb_grid.reshape(-1, 3)  # (N, 3)
    x = torch.as_tensor(rgb, dtype=torch.float32, device=population.flat.device)
    axis = torch.zeros(population.k_bottleneck, device=x.device)
    axis[concept_dim] = 1.0
    runs: dict[str, Method] = {"baseline": ((), None), "ablated": (list(concept_dims), None)}
    for spec in map(as_intervention, interventions):
        runs[spec.name] = ((), spec.build(axis))
    out: dict[str, FloatArray] = {}
    errors = method_errors(population, x, list(runs.values()), engine=engine, dtype=np.float32)
    for name, stats in zip(runs, _rowwise_stats(errors, torch.get_num_threads())):  # (S, N) each
        for stat, values in stats.items():
            out[f"{name}_{stat}"] = values
    assert list(out) == cube_metric_names(interventions)
    return out


def _rowwise_stats(errors: Sequence[npt.NDArray[np.floating]], threads: int) -> list[dict[str, FloatArray]]:
    """``cube_error_stats`` of each (S, N) array, its models shared among ``threads`` threads (numpy
    partitions without the GIL: 0.8 s -> 0.4 s for 256 models' three methods on 2 cores)."""
    size = errors[0].shape[0] if errors else 0
    out = [{"max_mse": np.empty(size), "median_mse": np.empty(size)} for _ in errors]

    def fill(lo: int, hi: int) -> None:
        for e, stats in zip(errors, out):
            for key, values in cube_error_stats(e[lo:hi]).items():
                stats[key][lo:hi] = values

    on_threads(fill, size, threads)
    return out
