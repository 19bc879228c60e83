"""Regularizers: per-sample penalties on a layer's activations, with hand-written gradients.

Each term maps activations ``h`` (S, B, F) to a per-sample loss (S, B) (science.md §4.2) and
gives the vector-Jacobian product the population trainer needs (no autograd in the hot loop).
``RegularizerConfig`` binds a term to its dopesheet column, label affinities, layer and phase
(§4.1); ``reduction_weights`` is the label-affine reduction of §4.3.

Letters in shape comments: S models, B batch, F features.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from excolor.limits import MAX_POWER

__all__ = [
    "LAYERS",
    "Anchor",
    "AngularAnchor",
    "AntiAnchor",
    "AxisAlignedSubspace",
    "Planarity",
    "Regularizer",
    "RegularizerConfig",
    "Separate",
    "Unitarity",
    "check_affinities",
    "check_concept",
    "reduction_weights",
]

LAYERS = ("encoder", "bottleneck")
"""Layers a regularizer can read: the pre-norm latent z and the unit latent h."""

_UNIT_EPS = 1e-8
_UNDERFLOW = 1e-36  # C^p below this is dropped by Separate: rounding-level in float32


_last_unit: list[tuple[torch.Tensor, int, tuple[torch.Tensor, torch.Tensor]]] = []


def _unit(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(h / (‖h‖ + 1e-8), ‖h‖), the normalisation the original terms use (§4.2).

    Several terms read the same latent in one step; the last result is reused while ``h`` is
    the same, unmodified tensor (identity and version checked), saving a few passes per term.
    """
    if _last_unit and _last_unit[0][0] is h and _last_unit[0][1] == h._version and not h.requires_grad:
        return _last_unit[0][2]
    n = torch.linalg.vector_norm(h, dim=-1, keepdim=True)  # (S, B, 1)
    result = (h / (n + _UNIT_EPS), n)
    _last_unit[:] = [(h, h._version, result)]
    return result


def _unit_vjp(h: torch.Tensor, n: torch.Tensor, de: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. h of ⟨de, unit(h)⟩; zero-norm rows get the subgradient 0 for the norm part."""
    d = n + _UNIT_EPS
    radial = (h * de).sum(-1, keepdim=True) / (torch.where(n > 0, n, 1.0) * d * d)
    return de / d - torch.where(n > 0, radial, 0.0) * h


class Regularizer(ABC):
    """A per-sample penalty on activations.

    ``forward`` returns the per-sample loss (S, B) and a context; ``vjp`` maps per-sample
    upstream weights g (S, B) to the gradient of Σ g·loss w.r.t. the activations (S, B, F).
    ``forward`` is written in plain differentiable torch ops, so autograd checks ``vjp``.
    """

    @abstractmethod
    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(S, B, F) -> (loss (S, B), context for ``vjp``)."""

    @abstractmethod
    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        """(S, B) upstream weights -> (S, B, F) gradient."""

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        return self.forward(h)[0]

    def options(self) -> dict[str, Any]:
        """Constructor arguments other than the concept vector (for the experiment record)."""
        return {}

    @property
    def concept(self) -> list[float] | None:
        """The concept vector of anchor-like terms, else None."""
        point = getattr(self, "point", None)
        return None if point is None else [float(v) for v in point.tolist()]


def _on(constant: torch.Tensor, like: torch.Tensor, cache: dict[Any, torch.Tensor]) -> torch.Tensor:
    """``constant`` on ``like``'s device and dtype, copied once per (device, dtype): a copy to a GPU in
    every step would make the host wait."""
    key = (like.device, like.dtype)
    if key not in cache:
        cache[key] = constant.to(like)
    return cache[key]


CONCEPT_BOUND = 1e6
"""Largest magnitude of a concept vector's component (latents are unit or near-unit vectors)."""

MIN_DIRECTION_NORM = 1e-3
"""Smallest norm of a concept direction: it is divided by ‖a‖ + 1e-8, so a shorter one shrinks."""

MIN_AFFINITY = 1e-3
"""Smallest magnitude of a label strength: the reduction divides by Σ a + 1e-8 (§4.3)."""

_FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)  # smallest normal float32


def check_concept(point: Sequence[float] | torch.Tensor, *, direction: bool) -> None:
    """Refuse a concept vector that would be silently inert or overflow, with the reason.

    Every component must be finite, 0 or a normal float32 (1e-320 rounds to 0, 1e-40 is subnormal)
    of magnitude at most ``CONCEPT_BOUND``. A ``direction`` (AngularAnchor, AntiAnchor) must have a
    norm of at least ``MIN_DIRECTION_NORM``; a point (Anchor) may be the origin.

    >>> check_concept([1e-320, 0, 0], direction=True)
    Traceback (most recent call last):
    ValueError: component 0 is 1e-320, below the smallest normal float32 (1.2e-38); write 0 or a usable value
    """
    values = [float(v) for v in torch.as_tensor(point, dtype=torch.float64).flatten().tolist()]
    if not values:
        raise ValueError("a concept vector needs at least one component")
    for j, v in enumerate(values):
        if not math.isfinite(v):
            raise ValueError(f"component {j} is {v!r}; expected a finite number")
        if v != 0 and abs(v) < _FLOAT32_TINY:
            raise ValueError(
                f"component {j} is {v!r}, below the smallest normal float32 ({_FLOAT32_TINY:.2g}); "
                "write 0 or a usable value"
            )
        if abs(v) > CONCEPT_BOUND:
            raise ValueError(f"component {j} is {v!r}; expected a magnitude of at most {CONCEPT_BOUND:g}")
    if direction:
        norm = math.sqrt(math.fsum(v * v for v in values))
        if norm == 0:
            raise ValueError("a direction cannot be the zero vector")
        if norm < MIN_DIRECTION_NORM:
            raise ValueError(
                f"the direction's norm is {norm:.3g}; expected at least {MIN_DIRECTION_NORM:g} "
                "(it is divided by norm + 1e-8, so a shorter vector weakens the term)"
            )


def check_affinities(affinities: Mapping[str, float]) -> None:
    """Refuse label strengths that would make a term silently inert, with the reason.

    A sample's affinity is clamp(Σ label·strength, 0, 1) (§4.3), so each strength must lie in
    [−1, 1] (a negative one excludes samples carrying that label), be at least ``MIN_AFFINITY``
    in magnitude, and at least one must be positive, or the term would apply to no sample.
    """
    if not affinities:
        raise ValueError("expected at least one label strength")
    for label, strength in affinities.items():
        value = float(strength)
        if not math.isfinite(value) or not -1.0 <= value <= 1.0:
            raise ValueError(f"label {label!r}: strength {strength!r} is outside [-1, 1]")
        if abs(value) < MIN_AFFINITY:
            raise ValueError(
                f"label {label!r}: strength {strength!r} is below {MIN_AFFINITY:g} in magnitude and has no "
                "effect; remove the label or give it a strength"
            )
    if max(float(v) for v in affinities.values()) <= 0:
        raise ValueError("no label strength is positive, so the term would apply to no sample")


def _vector(point: Sequence[float] | torch.Tensor, *, direction: bool = False) -> torch.Tensor:
    check_concept(point, direction=direction)
    return torch.as_tensor(point, dtype=torch.float32).flatten()


class Anchor(Regularizer):
    """‖h − a‖²: Euclidean pull towards a point."""

    def __init__(self, point: Sequence[float] | torch.Tensor) -> None:
        self.point = _vector(point)
        self._cache: dict[Any, torch.Tensor] = {}

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        diff = h - _on(self.point, h, self._cache)
        return (diff * diff).sum(-1), diff

    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return 2.0 * ctx * g.unsqueeze(-1)


class AngularAnchor(Regularizer):
    """1 − cos(h, a): 0 aligned, 1 orthogonal, 2 opposite."""

    def __init__(self, point: Sequence[float] | torch.Tensor) -> None:
        a = _vector(point, direction=True)
        self.point = a
        self.direction = a / (torch.linalg.vector_norm(a) + _UNIT_EPS)
        self._cache: dict[Any, torch.Tensor] = {}

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        e, n = _unit(h)
        return 1.0 - (e * _on(self.direction, h, self._cache)).sum(-1), (h, n)

    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        h, n = ctx
        return _unit_vjp(h, n, -g.unsqueeze(-1) * _on(self.direction, h, self._cache))


class AntiAnchor(Regularizer):
    """Repulsion from direction a: max(cos, 0) if ``hemi`` else (cos + 1)/2."""

    def __init__(self, point: Sequence[float] | torch.Tensor, *, hemi: bool = True) -> None:
        a = _vector(point, direction=True)
        self.point = a
        self.direction = a / (torch.linalg.vector_norm(a) + _UNIT_EPS)
        self._cache: dict[Any, torch.Tensor] = {}
        self.hemi = hemi

    def options(self) -> dict[str, Any]:
        return {"hemi": self.hemi}

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        e, n = _unit(h)
        c = (e * _on(self.direction, h, self._cache)).sum(-1)  # (S, B)
        loss = c.clamp(min=0.0) if self.hemi else (c + 1.0) / 2.0
        return loss, (h, n, c)

    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        h, n, c = ctx
        dc = torch.where(c >= 0, g, 0.0) if self.hemi else g / 2.0  # clamp passes the gradient at 0
        return _unit_vjp(h, n, dc.unsqueeze(-1) * _on(self.direction, h, self._cache))


class Separate(Regularizer):
    """Batch-wise angular repulsion: loss_i = Σ_j C_ij^p with C = cos similarity (§4.2, §12.5).

    Entries with C ≈ 1 (``isclose(C, 1)``: self-pairs, duplicates) are zeroed before the optional
    (C + 1)/2 shift, so they contribute the constant (1/2)^p (or 0 without shift) and no gradient.

    NOTE(excolor): at p = 100 this term is the costliest part of a step, so it is written for
    speed: (C + 1)/2 comes out of one ``baddbmm``, C^(p−1) is built by in-place repeated squaring
    (kept for the backward), and the backward uses the symmetry of C (two ``bmm``s, no transpose).
    Only rounding differs from the literal formula; the contract tests check it against autograd.
    """

    def __init__(self, channels: Sequence[int] | None = None, *, power: float = 1.0, shift: bool = True) -> None:
        if not math.isfinite(power) or not 1 <= power <= MAX_POWER:
            raise ValueError(f"Separate power must be a number in [1, {MAX_POWER:g}], got {power}")
        self.channels = None if channels is None else tuple(int(c) for c in channels)
        self.power = float(power)
        self.shift = shift

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"power": self.power, "shift": self.shift}
        if self.channels is not None:
            out["channels"] = list(self.channels)
        return out

    def _select(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.channels is None else h[..., list(self.channels)]

    @staticmethod
    def _pow(c: torch.Tensor, p: float) -> torch.Tensor:
        """c^p as a new tensor; integer p by in-place binary exponentiation (few buffers)."""
        if p == 0:
            return torch.ones_like(c)
        if p != int(p):
            return c.clamp(min=0.0) ** p
        k, base, result = int(p), c, None
        inplace = not c.requires_grad  # in-place products would break autograd (the test oracle)
        while k:
            if k & 1:
                result = base.clone() if result is None else (result.mul_(base) if inplace else result * base)
            k >>= 1
            if k:
                base = base * base if (base is c or not inplace) else base.mul_(base)
        assert result is not None
        return result

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        hs = self._select(h)
        e, n = _unit(hs)  # (S, B, F')
        et = e.transpose(-1, -2)
        # isclose(cos, 1) <=> cos >= 1 − tol, as cos <= 1 for unit rows; with shift on C = (1 + cos)/2.
        if self.shift:
            c = torch.baddbmm(e.new_full((1, 1, 1), 0.5), e, et, alpha=0.5)  # (S, B, B)
            threshold = 1.0 - (1e-8 + 1e-5) / 2
        else:
            c = e @ et
            threshold = 1.0 - (1e-8 + 1e-5)
        # Entries whose C^p is below float32's normal range cannot change the loss or a gradient
        # by more than rounding; zeroing them up front keeps the power chain free of denormals.
        floor = _UNDERFLOW ** (1.0 / self.power)
        # With shift C = (1 + cos)/2 >= 0 (up to rounding); without it C = cos can be negative, and an
        # integer power keeps its sign information (an even one makes it positive).
        c_low = nn.functional.threshold(c, floor, 0.0) if self.shift else torch.where(c.abs() >= floor, c, 0.0)
        close = nn.functional.threshold(c_low, math.nextafter(threshold, -math.inf), 0.0)  # C >= threshold
        c_kept = c_low - close  # masked entries -> 0 (thresholding, not bool ops: ~4x cheaper here)
        below = self._pow(c_kept, self.power - 1)  # C^(p-1), 0 where masked
        constant = (0.5 if self.shift else 0.0) ** self.power  # what a masked entry contributes
        masked = close.sum(-1).round_()  # each masked entry is ~1, so this counts them
        loss = (below * c_kept).sum(-1) + masked * constant
        return loss, (h, hs, e, n, below)

    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        h, hs, e, n, below = ctx
        # dL/dcos_ij = g_i p C_ij^(p-1) s, s = 1/2 with shift; C is symmetric, so
        # dL/de_k = p s [g_k (C^(p-1) e)_k + (C^(p-1) (g e))_k]: one bmm against [e, g e].
        scale = self.power / 2.0 if self.shift else self.power
        g3 = g.unsqueeze(-1)  # (S, B, 1)
        f = e.shape[-1]
        # below is symmetric, so below @ V = (Vᵀ @ below)ᵀ; this orientation is ~4x faster in MKL.
        both = (torch.cat([e, g3 * e], dim=-1).transpose(-1, -2) @ below).transpose(-1, -2)  # (S, B, 2F')
        de = (g3 * both[..., :f] + both[..., f:]) * scale  # (S, B, F')
        dhs = _unit_vjp(hs, n, de)
        if self.channels is None:
            return dhs
        dh = torch.zeros_like(h)
        dh[..., list(self.channels)] += dhs
        return dh


class AxisAlignedSubspace(Regularizer):
    """Σ of h_j² over the dimensions outside ``dims`` (inside them if ``invert``)."""

    def __init__(self, dims: Sequence[int], *, invert: bool = False) -> None:
        d = [int(x) for x in dims]
        if not d or len(set(d)) != len(d) or min(d) < 0:
            raise ValueError(f"dims must be non-empty, unique and non-negative, got {list(dims)}")
        self.dims = tuple(sorted(d))
        self.invert = invert
        self._masks: dict[Any, torch.Tensor] = {}

    def options(self) -> dict[str, Any]:
        return {"dims": list(self.dims), "invert": self.invert}

    def _penalised(self, h: torch.Tensor) -> torch.Tensor:
        """1.0 on the penalised features of ``h``, cached per (width, device, dtype)."""
        key = (h.shape[-1], h.device, h.dtype)
        if key not in self._masks:
            f = h.shape[-1]
            inside = torch.zeros(f, dtype=torch.bool)
            inside[[d for d in self.dims if d < f]] = True
            self._masks[key] = (inside if self.invert else ~inside).to(device=h.device, dtype=h.dtype)
        return self._masks[key]

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        masked = h * self._penalised(h)
        return (masked * masked).sum(-1), masked

    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return 2.0 * ctx * g.unsqueeze(-1)


class Planarity(AxisAlignedSubspace):
    """Keep activations in the plane of ``dims`` (default the first two)."""

    def __init__(self, dims: Sequence[int] = (0, 1)) -> None:
        super().__init__(dims)

    def options(self) -> dict[str, Any]:
        return {"dims": list(self.dims)}


class Unitarity(Regularizer):
    """(‖h‖ − 1)²: meaningful on the pre-norm layer ``encoder``."""

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, Any]:
        n = torch.linalg.vector_norm(h, dim=-1)
        return (n - 1.0) ** 2, (h, n)

    def vjp(self, ctx: Any, g: torch.Tensor) -> torch.Tensor:
        h, n = ctx
        scale = torch.where(n > 0, 2.0 * (n - 1.0) / torch.where(n > 0, n, 1.0), 0.0)
        return (g * scale).unsqueeze(-1) * h


Phase = Literal["train", "validate"]


@dataclass(frozen=True)
class RegularizerConfig:
    """A term bound to its weight column, samples, layer and phases (§4.1).

    Args:
        name: identifier; the dopesheet column that supplies its weight; metric stem.
        term: the per-sample penalty.
        label_affinities: None applies to every sample; else label name -> strength in [−1, 1]
            (``check_affinities``).
        layer: ``'bottleneck'`` (unit latent h) or ``'encoder'`` (pre-norm latent z).
        phases: ``train`` adds it to the training loss; ``validate`` reports ``val_<name>``.
    """

    name: str
    term: Regularizer
    label_affinities: Mapping[str, float] | None = None
    layer: str = "bottleneck"
    phases: frozenset[Phase] = field(default_factory=lambda: frozenset({"train"}))

    def __post_init__(self) -> None:
        if not self.name or self.name in {"lr", "STEP", "PHASE", "ACTION"} or ":" in self.name:
            raise ValueError(f"invalid regularizer name {self.name!r}")
        if self.layer not in LAYERS:
            raise ValueError(f"regularizer {self.name!r}: layer must be one of {LAYERS}, got {self.layer!r}")
        bad = set(self.phases) - {"train", "validate"}
        if bad or not self.phases:
            raise ValueError(f"regularizer {self.name!r}: phases must be a non-empty subset of train/validate")
        if self.label_affinities is not None:
            try:
                check_affinities(self.label_affinities)
            except ValueError as e:
                raise ValueError(f"regularizer {self.name!r}: {e}") from None

    @property
    def trains(self) -> bool:
        return "train" in self.phases

    @property
    def validates(self) -> bool:
        return "validate" in self.phases


def reduction_weights(
    affinities: Mapping[str, float] | None,
    labels: Mapping[str, torch.Tensor],
    batch_shape: torch.Size,
    *,
    device: torch.device | str = "cpu",
) -> torch.Tensor | None:
    """Per-sample coefficients c (S, B) such that the term is Σ_b c_b·loss_b (§4.3).

    No affinities: the plain mean. Otherwise a = clamp(Σ label·strength, 0, 1) and
    c = a / (Σ a + 1e-8), so a batch with no positive sample gives exactly 0. Returns None when
    none of the affinity labels exists in the batch (the term is skipped).
    """
    if affinities is None:
        return torch.full(batch_shape, 1.0 / batch_shape[-1], device=device)
    present = [labels[k] * w for k, w in affinities.items() if k in labels]
    if not present:
        return None
    a = torch.stack(present).sum(0).clamp(0.0, 1.0)  # (S, B)
    return a / (a.sum(-1, keepdim=True) + 1e-8)
