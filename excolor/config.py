"""One typed, validated description of an experiment (architecture.md ``config``).

An ``Experiment`` fixes everything a population shares: model shape, data, regularizer set,
schedule, evaluation. Seeds, and optionally per-model dopesheets, vary inside a population.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from excolor.dopesheet import Dopesheet, reference_dopesheet
from excolor.regularizers import AngularAnchor, AntiAnchor, AxisAlignedSubspace, RegularizerConfig, Separate

__all__ = ["STREAMS", "Experiment", "ModelConfig", "ex_2_9_1", "ex_2_9_1_regularizers"]

STREAMS = ("hash", "original")
"""Batch/label random streams this build offers (§14.1)."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape of ``CNColorMLP``: latent K, hidden width H, GELU blocks N per side."""

    k_bottleneck: int = 5
    k_codec: int = 16
    n_nonlinear: int = 2

    def __post_init__(self) -> None:
        for name in ("k_bottleneck", "k_codec", "n_nonlinear"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Experiment:
    """Everything that defines a training run except the seed.

    Args:
        name: preset or file name, recorded with results.
        dopesheet: the schedule of ``lr`` and of each regularizer's weight.
        regularizers: the terms, in the order they are added to the loss.
        model: network shape.
        batch_size: colours per training batch (per model).
        subdivisions: training grid size per RGB axis (8 → 512 colours).
        score_grid, score_power: the ablation score's RGB grid and similarity power (§9.8).
        concept_dim: the latent axis that should hold the concept; ablated for the score.
        concept_color: RGB of the concept (used for ``red_angle_deg``).
        stream: the batch/label random stream (§14.1).
    """

    name: str
    dopesheet: Dopesheet
    regularizers: tuple[RegularizerConfig, ...]
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 64
    subdivisions: int = 8
    score_grid: int = 8
    score_power: float = 3.0
    concept_dim: int = 0
    concept_color: tuple[float, float, float] = (1.0, 0.0, 0.0)
    stream: str = "hash"

    def __post_init__(self) -> None:
        names = [r.name for r in self.regularizers]
        if len(set(names)) != len(names):
            raise ValueError(f"regularizer names must be unique, got {names}")
        self.dopesheet.check_properties(names)
        if self.dopesheet.length < 2:
            raise ValueError("the dopesheet must span at least 2 steps")
        if self.batch_size < 1 or self.subdivisions < 2 or self.score_grid < 2:
            raise ValueError("batch_size >= 1, subdivisions >= 2 and score_grid >= 2 are required")
        if not 0 <= self.concept_dim < self.model.k_bottleneck:
            raise ValueError(f"concept_dim {self.concept_dim} is outside the {self.model.k_bottleneck}-D latent")
        if self.stream == "original" and self.subdivisions**3 % self.batch_size:
            raise ValueError("the original stream needs the training set to be whole batches")
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {self.stream!r}")

    def with_dopesheet(self, dopesheet: Dopesheet) -> Experiment:
        return replace(self, dopesheet=dopesheet)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary saved beside every result."""
        return {
            "name": self.name,
            "model": {
                "k_bottleneck": self.model.k_bottleneck,
                "k_codec": self.model.k_codec,
                "n_nonlinear": self.model.n_nonlinear,
            },
            "regularizers": [
                {
                    "name": r.name,
                    "term": type(r.term).__name__,
                    "label_affinities": None if r.label_affinities is None else dict(r.label_affinities),
                    "layer": r.layer,
                    "phases": sorted(r.phases),
                }
                for r in self.regularizers
            ],
            "batch_size": self.batch_size,
            "subdivisions": self.subdivisions,
            "score_grid": self.score_grid,
            "score_power": self.score_power,
            "concept_dim": self.concept_dim,
            "concept_color": list(self.concept_color),
            "stream": self.stream,
            "steps": self.dopesheet.length,
            "dopesheet_csv": self.dopesheet.to_csv(),
        }


def ex_2_9_1_regularizers(k_bottleneck: int = 5) -> tuple[RegularizerConfig, ...]:
    """[separate, anchor, anti-anchor, anti-subspace] on the unit latent (§4.5)."""
    e0 = [1.0] + [0.0] * (k_bottleneck - 1)
    neg_e0 = [-1.0] + [0.0] * (k_bottleneck - 1)
    both = frozenset({"train", "validate"})
    return (
        RegularizerConfig("separate", Separate(power=100.0, shift=True)),
        RegularizerConfig("anchor", AngularAnchor(e0), label_affinities={"red": 1.0}, phases=both),
        RegularizerConfig("anti-anchor", AntiAnchor(neg_e0, hemi=True), phases=both),
        RegularizerConfig("anti-subspace", AxisAlignedSubspace((0,), invert=True)),
    )


def ex_2_9_1(*, hidden: int = 16, dopesheet: Dopesheet | None = None, stream: str = "hash") -> Experiment:
    """Experiment 2.9.1: ablate red (only), 5-D latent, N = 2 (H = 16 as in the 60-seed reference)."""
    return Experiment(
        name="ex-2.9.1",
        dopesheet=dopesheet if dopesheet is not None else reference_dopesheet(),
        regularizers=ex_2_9_1_regularizers(5),
        model=ModelConfig(k_bottleneck=5, k_codec=hidden, n_nonlinear=2),
        stream=stream,
    )
