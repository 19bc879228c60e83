"""The trained models behind a study's numbers: rebuilt from checkpoints and evaluated for the report.

A trial's ``checkpoint_*/population.pt`` holds the whole population in one ``(M, P)`` tensor (rows
in seed order; M can exceed the number of seeds, the extra rows are padding). It is read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers: a study
copied from elsewhere is untrusted input.
"""

from __future__ import annotations

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
    "evaluate_model",
    "load_population",
    "seed_model",
]

K_BOTTLENECK = 5
N_NONLINEAR = 2
"""The Ex 2.9.1 architecture (science.md §2.4); only the hidden width H varies between studies."""

FloatArray = npt.NDArray[np.float64]


def _hidden_width(n_params: int) -> int | None:
    """H such that the Ex 2.9.1 MLP with hidden width H has ``n_params`` parameters, if any."""
    from excolor.model import layer_shapes

    for h in range(1, 4097):
        if sum(o * i + o for o, i in layer_shapes(K_BOTTLENECK, h, N_NONLINEAR)) == n_params:
            return h
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A trial's saved population: ``population.module(seeds.index(s))`` is seed s's model at ``step``."""

    population: Any  # excolor.population.Population, S = len(seeds)
    seeds: list[int]
    step: int | None


def load_population(path: str | Path, /, *, hidden: int | None = None) -> Checkpoint:
    """A checkpoint's population, its seeds and the training step it was taken at.

    Args:
        path: a ``population.pt``.
        hidden: the expected hidden width (study.json's ``hidden`` or a search's ``hidden``
            parameter). The width is also read off the parameter count; a disagreement is an error.

    Returns:
        A ``Checkpoint`` with one model per seed, in seed order.

    Raises:
        AnalysisError: unreadable file, unexpected content, or a width that does not fit.
    """
    import torch

    from excolor.population import Population

    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise AnalysisError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    params = state.get("params") if isinstance(state, dict) else None
    seeds = state.get("seeds") if isinstance(state, dict) else None
    if not isinstance(params, torch.Tensor) or params.ndim != 2 or not isinstance(seeds, (list, tuple)) or not seeds:
        raise AnalysisError(f"checkpoint {path} lacks a (M, P) 'params' tensor and a 'seeds' list")
    n = len(seeds)
    if params.shape[0] < n:
        raise AnalysisError(f"checkpoint {path} has {params.shape[0]} parameter rows for {n} seeds")
    width = _hidden_width(int(params.shape[1]))
    if width is None or (hidden is not None and width != hidden):
        raise AnalysisError(
            f"checkpoint {path}: {params.shape[1]} parameters per model do not fit hidden width {hidden}"
        )
    flat = params[:n].detach().to(torch.float32).contiguous()  # (S, P)
    population = Population(flat, k_bottleneck=K_BOTTLENECK, k_codec=width, n_nonlinear=N_NONLINEAR)
    step = state.get("step")
    return Checkpoint(population, [int(s) for s in seeds], int(step) if isinstance(step, (int, float)) else None)


def seed_model(path: str | Path, /, *, seed: int, hidden: int | None = None) -> Any:
    """The model of one seed from a checkpoint, as a ``CNColorMLP`` in eval mode."""
    checkpoint = load_population(path, hidden=hidden)
    if seed not in checkpoint.seeds:
        raise AnalysisError(f"checkpoint {path} holds seeds {checkpoint.seeds}, not seed {seed}")
    return checkpoint.population.module(checkpoint.seeds.index(seed))


@dataclass(frozen=True)
class ModelEvaluation:
    """What the report shows of one model.

    Attributes:
        table: ``excolor.evaluate.named_color_table``: 12 hues + 5 greys with ``baseline``, and per
            method (``ablated``, ``pruned``, ``suppression``) its MSE and ``<method>-delta``.
        correlations: ``similarity_correlations``: per method ``power``, ``r``, ``r2``, ``p``.
        rgb: the ``n³`` RGB cube ``(N, 3)`` of the scatter plots.
        similarity: per method, similarity to red raised to that method's power ``(N,)``.
        errors: per method, the per-colour MSE on the cube ``(N,)``.
    """

    table: pd.DataFrame
    correlations: pd.DataFrame
    rgb: FloatArray
    similarity: dict[str, FloatArray]
    errors: dict[str, FloatArray]


def evaluate_model(model: Any, /, *, n: int = 20) -> ModelEvaluation:
    """The named-colour table and the error-vs-similarity data of a model (science.md §9.11, §10.1).

    The correlations are computed on the ``n³`` RGB cube (20³ as in the notebook's scatter plots),
    ablated and pruned against similarity³, suppression against similarity².
    """
    from excolor.colors import rgb_grid
    from excolor.evaluate import (
        CORRELATION_POWERS,
        named_color_table,
        per_color_mse,
        red_similarity,
        similarity_correlations,
        standard_plans,
    )

    table = named_color_table(model)
    correlations = similarity_correlations(model, n=n)
    rgb = rgb_grid(n)  # (N, 3)
    plans = {p.name: p for p in standard_plans(k_bottleneck=K_BOTTLENECK)}
    similarity = {name: red_similarity(rgb, power=power) for name, power in CORRELATION_POWERS.items()}
    errors = {name: per_color_mse(model, rgb, plan=plans[name]) for name in CORRELATION_POWERS}
    return ModelEvaluation(table, correlations, rgb, similarity, errors)
