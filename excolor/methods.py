"""The methods that test a concept axis, as data: surgery and interventions (science.md §7, §8, §9.12).

A trained model is tested by deleting its concept and watching which colours suffer. *Surgery*
edits weights: ``ablated`` zeroes the concept dimensions, ``pruned`` removes them (§7). An
*intervention* edits the latent at inference (§8): ``suppression`` subtracts a gated share of the
concept component (a ``BoundedFalloff``), ``repulsion`` rotates aligned latents away from the
concept axis (a mapper). Each notebook used its own falloff or mapper, so an experiment file names
its interventions with their parameters::

    evaluation:
      interventions:
        - suppression                                   # a registered name: Ex 2.9.1's hard gate
        - {name: soft, kind: suppression, falloff: {start: 0, end: 1, power: 2}}
        - {name: repulsion, kind: repulsion, mapper: {kind: fast-bezier, start: 0, end: 0.5}}

This module is the one registry: the kinds, the named defaults (``REGISTERED``), the similarity
power of each method's error-vs-similarity r, and the names of the metrics a method produces
(``<name>_r``, ``<name>_max_mse``, ``<name>_median_mse``). Nothing here imports torch until an
intervention is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from excolor.interventions import Intervention, Mapper

__all__ = [
    "CUBE_STATS",
    "INTERVENTION_KINDS",
    "MAPPER_KINDS",
    "REGISTERED",
    "SURGERIES",
    "SURGERY_POWER",
    "Falloff",
    "InterventionSpec",
    "MapperSpec",
    "as_intervention",
    "cube_metric_names",
]

SURGERIES = ("ablated", "pruned")
"""Weight edits on the concept dimensions (§7); on these models both give the same outputs (§7.4)."""

SURGERY_POWER = 3.0
"""Similarity power of the ablated/pruned error-vs-similarity r (§9.8, §9.12)."""

INTERVENTION_KINDS = ("suppression", "repulsion")
"""Inference-time latent edits (§8.2, §8.4)."""

MAPPER_KINDS = ("fast-bezier", "bezier", "linear")
"""Mappers a repulsion may use (§8.5, §8.6)."""

CUBE_STATS = ("max_mse", "median_mse")
"""Per-colour MSE statistics on the HSV loss cube, one metric ``<method>_<stat>`` each (§9.4, §10.4)."""

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_RESERVED = ("baseline", *SURGERIES, "score")


def _unit(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


@dataclass(frozen=True)
class Falloff:
    """``BoundedFalloff(start, end, power)``: 0 up to alignment ``start``, rising to ``end`` at 1 (§8.3).

    >>> Falloff(0.0, 1.0, 2.0).describe()
    'falloff 0→1, power 2'
    """

    start: float
    end: float
    power: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _unit("falloff.start", self.start))
        object.__setattr__(self, "end", _unit("falloff.end", self.end))
        if not (math.isfinite(self.power) and self.power >= 0.0):
            raise ValueError(f"falloff.power must be >= 0, got {self.power}")
        object.__setattr__(self, "power", float(self.power))

    def build(self) -> Mapper:
        from excolor.interventions import BoundedFalloff

        return BoundedFalloff(self.start, self.end, self.power)

    def describe(self) -> str:
        return f"falloff {self.start:.3g}→{self.end:.3g}, power {self.power:g}"


@dataclass(frozen=True)
class MapperSpec:
    """A repulsion's alignment map: identity up to ``start``, then a curve to ``end`` at 1 (§8.5, §8.6).

    >>> MapperSpec("fast-bezier", 0.0, 0.5).describe()
    'fast-bezier map 0→0.5'
    """

    kind: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if self.kind not in MAPPER_KINDS:
            raise ValueError(f"mapper.kind must be one of {', '.join(MAPPER_KINDS)}, got {self.kind!r}")
        start, end = _unit("mapper.start", self.start), _unit("mapper.end", self.end)
        if not (start < 1.0 and end > 0.0 and start < end):
            raise ValueError(f"a mapper needs 0 <= start < end <= 1, got start={start}, end={end}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def build(self) -> Mapper:
        from excolor.interventions import BezierMapper, FastBezierMapper, LinearMapper

        cls = {"fast-bezier": FastBezierMapper, "bezier": BezierMapper, "linear": LinearMapper}[self.kind]
        return cls(self.start, self.end)

    def describe(self) -> str:
        return f"{self.kind} map {self.start:.3g}→{self.end:.3g}"


@dataclass(frozen=True)
class InterventionSpec:
    """One named intervention of an experiment: its kind, falloff or mapper, and similarity power.

    Args:
        name: names its metrics (``<name>_r``, ``<name>_max_mse``, ...); lower-case letters,
            digits and '-'.
        kind: ``suppression`` (needs ``falloff``) or ``repulsion`` (needs ``mapper``).
        falloff: the suppression's gate.
        mapper: the repulsion's alignment map.
        power: exponent of the similarity to the anchor in this intervention's error-vs-similarity r.

    >>> REGISTERED["suppression"].describe()
    'suppression (falloff 6.12e-17→1, power 0; r with similarity^2)'
    """

    name: str
    kind: str
    falloff: Falloff | None = None
    mapper: MapperSpec | None = None
    power: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or self.name in _RESERVED:
            raise ValueError(
                f"intervention name must be lower-case letters, digits and '-' and not one of "
                f"{', '.join(_RESERVED)}, got {self.name!r}"
            )
        if self.kind not in INTERVENTION_KINDS:
            raise ValueError(f"intervention kind must be one of {', '.join(INTERVENTION_KINDS)}, got {self.kind!r}")
        if self.kind == "suppression" and (self.falloff is None or self.mapper is not None):
            raise ValueError(f"intervention {self.name!r}: a suppression takes a falloff (and no mapper)")
        if self.kind == "repulsion" and (self.mapper is None or self.falloff is not None):
            raise ValueError(f"intervention {self.name!r}: a repulsion takes a mapper (and no falloff)")
        if not (math.isfinite(self.power) and self.power > 0.0):
            raise ValueError(f"intervention {self.name!r}: power must be > 0, got {self.power}")
        object.__setattr__(self, "power", float(self.power))

    def build(self, axis: torch.Tensor | Sequence[float]) -> Intervention:
        """The latent map on the unit concept ``axis`` ``[K]``: activations ``[N, K]`` → ``[N, K]``.

        A repulsion turns latents lying exactly on the axis towards a direction drawn from a
        fixed-seed CPU generator, so every device and every run gives the same result.
        """
        import torch

        from excolor.interventions import Repulsion, Suppression

        if self.falloff is not None:
            return Suppression(axis, self.falloff.build())
        assert self.mapper is not None
        return Repulsion(axis, self.mapper.build(), generator=torch.Generator().manual_seed(0))

    def describe(self) -> str:
        part = self.falloff.describe() if self.falloff is not None else self.mapper.describe()  # type: ignore[union-attr]
        label = self.kind if self.kind == self.name else f"{self.name}: {self.kind}"
        return f"{label} ({part}; r with similarity^{self.power:g})"

    def to_dict(self) -> dict[str, Any]:
        """The experiment-file form (``as_intervention`` reads it back)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.falloff is not None:
            out["falloff"] = {"start": self.falloff.start, "end": self.falloff.end, "power": self.falloff.power}
        if self.mapper is not None:
            out["mapper"] = {"kind": self.mapper.kind, "start": self.mapper.start, "end": self.mapper.end}
        out["power"] = self.power
        return out


REGISTERED: Mapping[str, InterventionSpec] = {
    # Ex 2.9.1 (§8.3, §12.13): BoundedFalloff(cos 90°, 1, 0), a hard gate that removes the whole
    # positive concept component; its r uses similarity² (§9.12).
    "suppression": InterventionSpec("suppression", "suppression", falloff=Falloff(math.cos(math.pi / 2), 1.0, 0.0)),
    # Ex 2.4 (§8.5, §10.4): rotate aligned latents to at most cos 60° with a fast Bézier map.
    "repulsion": InterventionSpec(
        "repulsion", "repulsion", mapper=MapperSpec("fast-bezier", 0.0, math.cos(math.pi / 3)), power=3.0
    ),
}
"""Interventions an experiment may name by a bare string (what experiment files before issue 17 held)."""


def as_intervention(value: InterventionSpec | str | Mapping[str, Any]) -> InterventionSpec:
    """An ``InterventionSpec`` from a spec, a registered name, or its ``to_dict`` form.

    Raises ``ValueError`` naming the problem (unknown name or key, missing falloff, ...).

    >>> as_intervention({"name": "soft", "kind": "suppression", "falloff": {"start": 0, "end": 1, "power": 2}}).power
    2.0
    """
    if isinstance(value, InterventionSpec):
        return value
    if isinstance(value, str):
        if value not in REGISTERED:
            raise ValueError(
                f"unknown intervention {value!r}; expected one of {', '.join(REGISTERED)} "
                "or a mapping {name, kind, falloff | mapper, power}"
            )
        return REGISTERED[value]
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an intervention name or mapping, got {type(value).__name__}")
    allowed = ("name", "kind", "falloff", "mapper", "power")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; an intervention takes {', '.join(allowed)}")
    if "name" not in value or "kind" not in value:
        raise ValueError("an intervention needs a name and a kind")
    falloff = _parts(value.get("falloff"), ("start", "end", "power"), ("start", "end"), "falloff")
    mapper = _parts(value.get("mapper"), ("kind", "start", "end"), ("kind", "start", "end"), "mapper")
    default_power = REGISTERED[value["kind"]].power if value["kind"] in REGISTERED else 2.0
    return InterventionSpec(
        name=value["name"],
        kind=value["kind"],
        falloff=Falloff(**falloff) if falloff is not None else None,
        mapper=MapperSpec(**mapper) if mapper is not None else None,
        power=_number(value.get("power", default_power), "power"),
    )


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number, got {value!r}")
    return float(value)


def _parts(raw: object, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{what} must be a mapping of {', '.join(allowed)}, got {raw!r}")
    unknown = [k for k in raw if k not in allowed]
    missing = [k for k in required if k not in raw]
    if unknown or missing:
        problem = f"unknown key {unknown[0]!r}" if unknown else f"missing {missing[0]!r}"
        raise ValueError(f"{what}: {problem}; it takes {', '.join(allowed)}")
    return {k: (v if k == "kind" else _number(v, f"{what}.{k}")) for k, v in raw.items()}


def cube_metric_names(interventions: Iterable[InterventionSpec | str] = ()) -> list[str]:
    """The per-model loss-cube metrics: baseline, ablated, then each intervention, each stat.

    >>> cube_metric_names(["suppression"])[:3]
    ['baseline_max_mse', 'baseline_median_mse', 'ablated_max_mse']
    """
    names = ["baseline", "ablated", *(as_intervention(i).name for i in interventions)]
    return [f"{n}_{stat}" for n in names for stat in CUBE_STATS]
