"""The trained models behind a study's numbers: rebuilt from checkpoints and evaluated for the report.

A trial's ``checkpoint_*/population.pt`` holds the whole population in one ``(M, P)`` tensor (rows
in seed order; M can exceed the number of seeds, the extra rows are padding). It is read with
``excolor.readers.load_tensors`` (``torch.load(weights_only=True)``, which refuses anything but tensors and
plain containers, once the file's unpacked size is known to fit): a study copied from elsewhere is
untrusted input.

The tensor does not say which model it holds: the experiment does (``excolor.config.ModelConfig``:
kind, latent K, hidden width H, GELU blocks N). A trial's experiment.yaml fixes all four; without
one, K, N and the kind come from the study's experiment and H is read off the parameter count
(for fixed K and N the count grows with H, so at most one H fits). ``CNColorMLP`` and ``ColorMLP``
have the same parameters: only the experiment tells them apart.

The evaluation plans (baseline, ablated, pruned, suppression, and repulsion when the experiment
measures it) act on the latent axis ``evaluation.concept_dim``; the correlations are with the
similarity to ``evaluation.anchor_hsv``. The latent is the ``bottleneck`` (unit) layer of a
``CNColorMLP`` and the ``encoder`` output of a ``ColorMLP``, which has no ``bottleneck``
(``excolor.evaluate.standard_plans`` assumes one, hence ``evaluation_plans`` here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.errors import AnalysisError

__all__ = [
    "K_BOTTLENECK",
    "N_NONLINEAR",
    "Checkpoint",
    "ModelEvaluation",
    "anchor_name",
    "cube_metrics",
    "evaluate_model",
    "evaluation_plans",
    "latent_layers",
    "load_population",
    "seed_model",
]

K_BOTTLENECK = 5
N_NONLINEAR = 2
"""The Ex 2.9.1 architecture (science.md §2.4): the default when no model is given."""

FloatArray = npt.NDArray[np.float64]


def _shape(model: Any) -> tuple[str, int, int]:
    """(kind, K, N) of a ``ModelConfig``; Ex 2.9.1's for None."""
    if model is None:
        return "CNColorMLP", K_BOTTLENECK, N_NONLINEAR
    return str(model.kind), int(model.k_bottleneck), int(model.n_nonlinear)


def _n_params(k: int, h: int, n: int) -> int:
    from excolor.model import layer_shapes

    return sum(o * i + o for o, i in layer_shapes(k, h, n))


def _hidden_width(n_params: int, k: int = K_BOTTLENECK, n: int = N_NONLINEAR) -> int | None:
    """H such that the MLP with latent K, hidden width H and N blocks has ``n_params`` parameters, if any."""
    lo, hi = 1, 4096
    if _n_params(k, hi, n) < n_params:
        return None
    while lo < hi:  # the count is strictly increasing in H
        mid = (lo + hi) // 2
        if _n_params(k, mid, n) < n_params:
            lo = mid + 1
        else:
            hi = mid
    return lo if _n_params(k, lo, n) == n_params else None


@dataclass(frozen=True)
class Checkpoint:
    """A trial's saved population: ``population.module(seeds.index(s))`` is seed s's model at ``step``."""

    population: Any  # excolor.population.Population, S = len(seeds)
    seeds: list[int]
    step: int | None


def load_population(path: str | Path, /, *, hidden: int | None = None, model: Any = None) -> Checkpoint:
    """A checkpoint's population, its seeds and the training step it was taken at.

    Args:
        path: a ``population.pt``.
        hidden: the expected hidden width H (a trial's experiment.yaml, a search's ``hidden``
            parameter or study.json's ``hidden``); None to read it off the parameter count. A width
            that does not fit the parameter count is an error.
        model: the ``excolor.config.ModelConfig`` giving the kind, K and N (its ``hidden`` is not
            used: pass ``hidden``); None for the Ex 2.9.1 CNColorMLP (K = 5, N = 2).

    Returns:
        A ``Checkpoint`` with one model per seed, in seed order.

    Raises:
        AnalysisError: unreadable file, unexpected content, or a shape that does not fit.
    """
    import torch

    from excolor.population import Population
    from excolor.readers import UnreadableText, load_tensors

    kind, k, n_blocks = _shape(model)
    try:
        state = load_tensors(Path(path))
    except UnreadableText as err:
        raise AnalysisError(f"cannot read checkpoint {path}: {err}") from None
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise AnalysisError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    params = state.get("params") if isinstance(state, dict) else None
    seeds = state.get("seeds") if isinstance(state, dict) else None
    if not isinstance(params, torch.Tensor) or params.ndim != 2 or not isinstance(seeds, (list, tuple)) or not seeds:
        raise AnalysisError(f"checkpoint {path} lacks a (M, P) 'params' tensor and a 'seeds' list")
    n = len(seeds)
    if params.shape[0] < n:
        raise AnalysisError(f"checkpoint {path} has {params.shape[0]} parameter rows for {n} seeds")
    width = _hidden_width(int(params.shape[1]), k, n_blocks)
    if width is None or (hidden is not None and width != hidden):
        expected = f"hidden width {hidden}" if hidden is not None else "any hidden width"
        raise AnalysisError(
            f"checkpoint {path}: {params.shape[1]} parameters per model do not fit a {kind} with "
            f"K={k}, N={n_blocks} and {expected}"
        )
    flat = params[:n].detach().to(torch.float32).contiguous()  # (S, P)
    population = Population(flat, k_bottleneck=k, hidden=width, n_nonlinear=n_blocks, kind=kind)
    step = state.get("step")
    return Checkpoint(population, [int(s) for s in seeds], int(step) if isinstance(step, (int, float)) else None)


def cube_metrics(study: Any, trial_ids: Sequence[str], /) -> pd.DataFrame:
    """Per-seed loss-cube errors of done trials, scored now from their stored models.

    A search scores the loss cube only with ``--cube-metrics`` (it is a quarter of a search's time,
    for diagnostics no objective uses); a report asks for the trials it shows. Each stored
    population (a configuration's ``population.pt`` and its race blocks') is scored as training
    scores it (``excolor.evaluate.population_cube_metrics`` with the study's engine, model by model,
    so the values are those training would have written); a diverged seed's are NaN, as there.

    Returns:
        One row per (trial, seed) found: ``trial_id``, ``seed`` and ``cube_metric_names``' columns.

    Raises:
        AnalysisError: an unreadable population file or experiment (naming the file).
    """
    import torch

    from analysis.record import POPULATION_FILE, race_record_dirs
    from excolor.evaluate import population_cube_metrics
    from excolor.train import resolve_engine

    frames = []
    for trial_id in trial_ids:
        experiment = study.trial_experiment(trial_id)
        ev = experiment.evaluation
        engine, _ = resolve_engine(str(study.record.get("engine") or "torch"), experiment, torch.device("cpu"))
        directory = study.trial_path(trial_id)
        for d in [directory, *race_record_dirs(directory)]:
            if not (d / POPULATION_FILE).is_file():
                continue
            saved = load_population(d / POPULATION_FILE, hidden=experiment.model.hidden, model=experiment.model)
            values = population_cube_metrics(
                saved.population,
                concept_dims=ev.concept_dims,
                concept_dim=ev.concept_dim,
                interventions=ev.interventions,
                engine=engine,
            )
            frames.append(pd.DataFrame({"trial_id": trial_id, "seed": saved.seeds, **values}))
    if not frames:
        return pd.DataFrame(columns=["trial_id", "seed"])
    out = pd.concat(frames, ignore_index=True)
    seeds = study.seeds
    if "diverged" in seeds.columns:
        diverged = seeds.assign(trial_id=seeds["trial_id"].astype(str))[["trial_id", "seed", "diverged"]]
        flags = out.merge(diverged, on=["trial_id", "seed"], how="left")["diverged"]
        lost = flags.fillna(False).astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()
        metrics = [c for c in out.columns if c not in ("trial_id", "seed")]
        out.loc[lost, metrics] = np.nan
    return out


def seed_model(path: str | Path, /, *, seed: int, hidden: int | None = None, model: Any = None) -> Any:
    """The model of one seed from a checkpoint, as a ``CNColorMLP`` or ``ColorMLP`` in eval mode."""
    checkpoint = load_population(path, hidden=hidden, model=model)
    if seed not in checkpoint.seeds:
        raise AnalysisError(f"checkpoint {path} holds seeds {checkpoint.seeds}, not seed {seed}")
    return checkpoint.population.module(checkpoint.seeds.index(seed))


# --------------------------------------------------------------------------------- evaluation


def latent_layers(model: Any, /) -> tuple[str, str]:
    """(surgery layer, intervention layer) of a model's latent; see ``excolor.evaluate.latent_layers``."""
    from excolor.evaluate import latent_layers as _latent_layers

    try:
        return _latent_layers(model)
    except ValueError as err:
        raise AnalysisError(str(err)) from None


def evaluation_plans(
    model: Any,
    /,
    *,
    concept_dim: int = 0,
    interventions: Sequence[Any] = (),
    concept_dims: Sequence[int] | None = None,
) -> tuple[Any, ...]:
    """§9.12's plans for any model kind; see ``excolor.evaluate.model_plans``."""
    from excolor.evaluate import model_plans

    try:
        return model_plans(model, concept_dim=concept_dim, interventions=interventions, concept_dims=concept_dims)
    except ValueError as err:
        raise AnalysisError(str(err)) from None


def anchor_name(anchor_hsv: Sequence[float], /) -> str:
    """'red' for pure red, else the named colour at that HSV, else the HSV triple.

    >>> anchor_name((0.0, 1.0, 1.0)), anchor_name((0.1, 0.5, 0.5))
    ('red', 'HSV (0.1, 0.5, 0.5)')
    """
    from excolor.colors import named_colors

    target = tuple(round(float(v), 6) for v in anchor_hsv)
    colors = named_colors()
    for name, hsv in zip(colors["name"], colors["hsv"]):
        if tuple(round(float(v), 6) for v in hsv) == target:
            return str(name)
    return "HSV (" + ", ".join(f"{float(v):g}" for v in anchor_hsv) + ")"


@dataclass(frozen=True)
class ModelEvaluation:
    """What the report shows of one model.

    Attributes:
        table: ``excolor.evaluate.named_color_table``: 12 hues + 5 greys with ``baseline``, and per
            method (``ablated``, ``pruned``, ``suppression``, ...) its MSE and ``<method>-delta``.
        correlations: per method ``plan``, ``power``, ``r``, ``r2``, ``p`` (error vs similarity to
            the anchor colour raised to the method's power).
        rgb: the ``n³`` RGB cube ``(N, 3)`` of the scatter plots.
        similarity: per method, similarity to the anchor raised to that method's power ``(N,)``.
        errors: per method, the per-colour MSE on the cube ``(N,)``.
        anchor: the anchor colour in words (``'red'``), for labels.
    """

    table: pd.DataFrame
    correlations: pd.DataFrame
    rgb: FloatArray
    similarity: dict[str, FloatArray]
    errors: dict[str, FloatArray]
    anchor: str = "red"


def evaluate_model(model: Any, /, *, n: int = 20, evaluation: Any = None) -> ModelEvaluation:
    """The named-colour table and the error-vs-similarity data of a model (science.md §9.11, §10.1).

    Args:
        model: a ``CNColorMLP`` or ``ColorMLP``.
        n: the correlations' RGB cube is ``n³`` (20³ as in the notebook's scatter plots).
        evaluation: the experiment's ``excolor.config.Evaluation`` (concept axis, anchor colour,
            interventions); None for Ex 2.9.1's (axis 0, red, suppression).

    Ablated and pruned (deleting ``evaluation.concept_dims``) correlate with similarity³, each
    intervention with its own power (Ex 2.9.1's suppression: similarity², ``excolor.methods``).
    """
    from excolor.colors import RED_HSV, rgb_grid
    from excolor.evaluate import error_correlation, named_color_table, per_color_mse, plan_power

    concept_dim = int(evaluation.concept_dim) if evaluation is not None else 0
    anchor_hsv = tuple(float(v) for v in evaluation.anchor_hsv) if evaluation is not None else tuple(RED_HSV)
    interventions = tuple(evaluation.interventions) if evaluation is not None else ()
    concept_dims = tuple(evaluation.concept_dims) if evaluation is not None else None
    plans = evaluation_plans(model, concept_dim=concept_dim, interventions=interventions, concept_dims=concept_dims)
    table = named_color_table(model, plans=plans)
    rgb = rgb_grid(n)  # (N, 3)
    similarity, errors, rows = {}, {}, []
    for plan in plans:
        if plan.name == "baseline":
            continue
        power = plan_power(plan.name, interventions)
        mse = per_color_mse(model, rgb, plan=plan)  # (N,)
        r, p = error_correlation(rgb, mse, anchor_hsv=anchor_hsv, power=power)
        errors[plan.name] = mse
        similarity[plan.name] = _similarity(rgb, anchor_hsv, power)
        rows.append({"plan": plan.name, "power": power, "r": float(r), "r2": float(r) ** 2, "p": float(p)})
    correlations = pd.DataFrame(rows, columns=["plan", "power", "r", "r2", "p"])
    return ModelEvaluation(table, correlations, rgb, similarity, errors, anchor_name(anchor_hsv))


def _similarity(rgb: FloatArray, anchor_hsv: Sequence[float], power: float) -> FloatArray:
    from excolor.colors import hsv_similarity, rgb_to_hsv

    return np.asarray(hsv_similarity(rgb_to_hsv(rgb), anchor_hsv, hemi=True, mode="angular") ** power)
