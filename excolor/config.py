"""One typed, validated description of an experiment (architecture.md ``config``); its file format is ``experiments``.

An ``Experiment`` fixes everything a population shares: model shape, data, regularizer set,
schedule, evaluation. Seeds, and optionally per-model dopesheets, vary inside a population.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from excolor.colors import RED_HSV, hsv_to_rgb
from excolor.data import TrainingData
from excolor.dopesheet import Dopesheet
from excolor.limits import SIZE_FIELDS
from excolor.methods import InterventionSpec, as_intervention
from excolor.model import MODEL_KINDS
from excolor.regularizers import RegularizerConfig

__all__ = [
    "STREAMS",
    "Evaluation",
    "Experiment",
    "ModelConfig",
    "TrainingData",
]

STREAMS = ("hash", "original")
"""Batch/label random streams this build offers (§14.1)."""


@dataclass(frozen=True)
class ModelConfig:
    """Model kind and shape: latent K, hidden width H, GELU blocks N per side (§2)."""

    k_bottleneck: int = 5
    hidden: int = 16
    n_nonlinear: int = 2
    kind: str = "CNColorMLP"

    def __post_init__(self) -> None:
        for name in ("k_bottleneck", "hidden", "n_nonlinear"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
            if value > SIZE_FIELDS[f"model.{name}"][0]:  # before anything sized by it is allocated
                raise ValueError(f"model.{name} must be at most {SIZE_FIELDS[f'model.{name}'][0]:,}, got {value:,}")
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")

    @property
    def layers(self) -> tuple[str, ...]:
        """Layers regularizers can read: ``encoder`` (pre-norm latent) and, on CNColorMLP, ``bottleneck``."""
        return ("encoder", "bottleneck") if self.kind == "CNColorMLP" else ("encoder",)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.k_bottleneck, self.hidden, self.n_nonlinear)


@dataclass(frozen=True)
class Evaluation:
    """How a trained model is scored (§9.8) and which methods test it (§7, §8, §9.12).

    Args:
        concept_dim: the latent axis that should hold the concept: interventions act along it and
            ``red_angle_deg`` measures the anchor colour's angle from it.
        anchor_hsv: the concept colour in HSV; the score correlates error with similarity to it.
        score_power: exponent of that similarity in the score.
        score_grid: the score's RGB grid size per axis (8 → 512 colours, corners included).
        interventions: each adds ``<name>_r`` (error-vs-similarity r on the 20³ cube) and the loss
            cube's ``<name>_max_mse``/``<name>_median_mse``. Names of ``excolor.methods.REGISTERED``
            (``suppression``: Ex 2.9.1's hard gate; ``repulsion``: Ex 2.4's Bézier map) or
            ``InterventionSpec``s; stored as specs.
        concept_dims: the latent dimensions that ablation and pruning delete, for the score and
            every report (e.g. Ex 2.1's vibrant plane ``(0, 1)``); default ``(concept_dim,)``.
    """

    concept_dim: int = 0
    anchor_hsv: tuple[float, float, float] = RED_HSV
    score_power: float = 3.0
    score_grid: int = 8
    interventions: tuple[InterventionSpec, ...] = ()
    concept_dims: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.score_grid < 2 or not self.score_power > 0:
            raise ValueError("evaluation needs score_grid >= 2 and score_power > 0")
        if len(self.anchor_hsv) != 3 or not all(0.0 <= float(v) <= 1.0 for v in self.anchor_hsv):
            raise ValueError(f"anchor_hsv must be three numbers in [0, 1], got {self.anchor_hsv!r}")
        specs = tuple(as_intervention(i) for i in self.interventions)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"intervention names must be unique, got {names}")
        object.__setattr__(self, "interventions", specs)
        dims = tuple(int(d) for d in self.concept_dims) or (int(self.concept_dim),)
        if len(set(dims)) != len(dims) or min(dims) < 0:
            raise ValueError(f"concept_dims must be distinct non-negative dimensions, got {list(self.concept_dims)}")
        object.__setattr__(self, "concept_dims", dims)

    @property
    def intervention_names(self) -> tuple[str, ...]:
        """The interventions' names, which name their metrics."""
        return tuple(i.name for i in self.interventions)

    @property
    def concept_rgb(self) -> tuple[float, float, float]:
        r, g, b = (float(v) for v in hsv_to_rgb(self.anchor_hsv))
        return (r, g, b)


@dataclass(frozen=True)
class Experiment:
    """Everything that defines a training run except the seed.

    Args:
        name: preset or file name, recorded with results.
        dopesheet: the schedule of ``lr`` and of each regularizer's weight.
        regularizers: the terms, in the order they are added to the loss.
        model: network kind and shape.
        data: training colours, sampler, labels, batch size, validation grid.
        evaluation: the score and the measured interventions.
        stream: the batch/label random stream (§14.1).
        description: one line for ``excolor experiments``.
        seeds: the seeds a run uses when none are given, e.g. ``'0-59'``.
    """

    name: str
    dopesheet: Dopesheet
    regularizers: tuple[RegularizerConfig, ...]
    model: ModelConfig = field(default_factory=ModelConfig)
    data: TrainingData = field(default_factory=TrainingData)
    evaluation: Evaluation = field(default_factory=Evaluation)
    stream: str = "hash"
    description: str = ""
    seeds: str = "0-59"

    def __post_init__(self) -> None:
        names = [r.name for r in self.regularizers]
        if len(set(names)) != len(names):
            raise ValueError(f"regularizer names must be unique, got {names}")
        for r in self.regularizers:
            if r.layer not in self.model.layers:
                raise ValueError(
                    f"regularizer {r.name!r} reads layer {r.layer!r}, which a {self.model.kind} does not have; "
                    f"its layers: {', '.join(self.model.layers)}"
                )
            for label in r.label_affinities or {}:
                if label not in self.data.labels:
                    raise ValueError(
                        f"regularizer {r.name!r} has an affinity for label {label!r}, which the data does not "
                        f"define; labels: {', '.join(self.data.labels) or '(none)'}"
                    )
        self.dopesheet.check_properties(names)
        if self.dopesheet.length < 2:
            raise ValueError("the dopesheet must span at least 2 steps")
        if not 0 <= self.evaluation.concept_dim < self.model.k_bottleneck:
            raise ValueError(
                f"evaluation.concept_dim {self.evaluation.concept_dim} is outside the "
                f"{self.model.k_bottleneck}-D latent"
            )
        if max(self.evaluation.concept_dims) >= self.model.k_bottleneck:
            raise ValueError(
                f"evaluation.concept_dims {list(self.evaluation.concept_dims)} reach outside the "
                f"{self.model.k_bottleneck}-D latent"
            )
        if len(self.evaluation.concept_dims) >= self.model.k_bottleneck:
            raise ValueError("evaluation.concept_dims must leave at least one latent dimension")
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {self.stream!r}")
        if self.stream == "original":
            d = self.data
            if d.colors != "rgb-grid" or d.weighting != "uniform" or len(d.labels) != 1:
                raise ValueError(
                    "the original stream reproduces the published Ex 2.9.1-style runs only: an rgb-grid, "
                    "the uniform sampler and one label; use the hash stream"
                )
            if d.subdivisions**3 % d.batch_size or d.subdivisions**3 % 32:
                raise ValueError("the original stream needs the training set to be whole batches")

    # Shorthands used by the trainer (and kept for code written against the first version).
    @property
    def batch_size(self) -> int:
        return self.data.batch_size

    @property
    def subdivisions(self) -> int:
        return self.data.subdivisions

    @property
    def score_grid(self) -> int:
        return self.evaluation.score_grid

    @property
    def score_power(self) -> float:
        return self.evaluation.score_power

    @property
    def concept_dim(self) -> int:
        return self.evaluation.concept_dim

    @property
    def concept_dims(self) -> tuple[int, ...]:
        return self.evaluation.concept_dims

    @property
    def concept_color(self) -> tuple[float, float, float]:
        return self.evaluation.concept_rgb

    def with_dopesheet(self, dopesheet: Dopesheet) -> Experiment:
        return replace(self, dopesheet=dopesheet)

    def with_model(self, **changes: Any) -> Experiment:
        """The same experiment with model fields changed, e.g. ``with_model(hidden=10)``."""
        return replace(self, model=replace(self.model, **changes))
