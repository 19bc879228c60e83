"""Inference-time edits of latent activations, and inference with them hooked in (science.md §8, §9.1).

An *intervention* maps a batch of activations ``h`` ``[N, K]`` (any leading axes) to a new batch of
the same shape; ``infer`` hooks interventions onto named layers so that the layer's output is
replaced. *Falloffs* and *mappers* are elementwise functions of the alignment ``d = clamp(<h, v>, 0, 1)``
with a concept vector ``v``: a falloff gives the fraction of ``v``'s component to remove
(``Suppression``), a mapper the new alignment to rotate to (``Repulsion``).

Letters: N = rows (colours), K = latent width.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = [
    "AxisAlignedSuppression",
    "BezierMapper",
    "BoundedFalloff",
    "FastBezierMapper",
    "Intervention",
    "InterventionConfig",
    "LinearMapper",
    "Mapper",
    "Repulsion",
    "Suppression",
    "infer",
]


class Mapper(Protocol):
    """Elementwise function of an alignment in [0, 1] (falloffs and mappers): tensor ``[...]`` → ``[...]``."""

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor: ...


class Intervention(Protocol):
    """Replacement for a layer's output: activations ``[N, K]`` → ``[N, K]``."""

    def __call__(self, h: torch.Tensor, /) -> torch.Tensor: ...


def _check_unit_interval(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")


def _check_mapper_bounds(cls: str, a: float, b: float) -> None:
    """Mappers need 0 <= a < b <= 1 (and b > 0)."""
    if not (0.0 <= a < 1.0 and 0.0 < b <= 1.0 and a < b):
        raise ValueError(f"{cls} needs 0 <= a < 1, 0 < b <= 1 and a < b, got a={a}, b={b}")


def _as_concept(vector: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Concept vector as a 1-D tensor (cast to the activations' dtype/device only when used)."""
    v = torch.as_tensor(vector).detach().clone()
    if v.ndim != 1 or v.numel() == 0:
        raise ValueError(f"concept_vector must be a non-empty 1-D vector, got shape {tuple(v.shape)}")
    if not bool(torch.isfinite(v.double()).all()):
        raise ValueError("concept_vector must be finite")
    return v


def _concept_like(v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    if h.shape[-1] != v.shape[0]:
        raise ValueError(f"activations have width {h.shape[-1]} but the concept vector has {v.shape[0]}")
    return v.to(dtype=h.dtype, device=h.device)


@dataclass(frozen=True)
class BoundedFalloff:
    """Gate that is 0 up to alignment ``a`` and rises to ``b`` at alignment 1 as a power law (§8.3).

    f(x) = b·((x − a)/(1 − a))^power for x > a, else 0; with a > 1 − eps it is the identity. Power 0
    gives the hard gate "b for every x > a" used by the Ex 2.9.1 suppression.

    >>> BoundedFalloff(0.5, 0.8)(torch.tensor([0.25, 0.75, 1.0])).tolist()
    [0.0, 0.4000000059604645, 0.800000011920929]
    """

    a: float
    b: float
    power: float = 1.0
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_unit_interval("a", self.a)
        _check_unit_interval("b", self.b)
        if not (math.isfinite(self.power) and self.power >= 0.0):
            raise ValueError(f"power must be >= 0, got {self.power}")
        if not self.eps > 0.0:
            raise ValueError(f"eps must be > 0, got {self.eps}")

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor:
        if self.a > 1.0 - self.eps:
            return x
        base = ((x - self.a) / (1.0 - self.a)).clamp(min=0.0)
        return torch.where(x > self.a, self.b * base**self.power, torch.zeros_like(x))


@dataclass(frozen=True)
class LinearMapper:
    """Identity up to ``a``, then a straight line from (a, a) to (1, b) (§8.6).

    >>> LinearMapper(0.2, 0.6)(torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)).tolist()
    [0.1, 0.35, 0.6]
    """

    a: float
    b: float

    def __post_init__(self) -> None:
        _check_mapper_bounds("LinearMapper", self.a, self.b)

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor:
        return torch.where(x > self.a, self.a + (self.b - self.a) * (x - self.a) / (1.0 - self.a), x)


@dataclass(frozen=True)
class BezierMapper:
    """Identity up to ``a``, then a cubic Bézier from (a, a) to (1, b), solved for x by Newton (§8.5).

    The inner control points lie a fraction ``control_distance`` of the way from each end towards
    the intersection of the end tangents (slopes ``start_slope`` at (a, a), ``end_slope`` at (1, b)),
    so the curve leaves the identity smoothly and flattens out at ``b``.

    >>> round(float(BezierMapper(0.0, 0.5)(torch.tensor([0.5], dtype=torch.float64))[0]), 4)
    0.3826
    """

    a: float
    b: float
    start_slope: float = field(default=1.0, kw_only=True)
    end_slope: float = field(default=0.0, kw_only=True)
    control_distance: float = field(default=1 / math.sqrt(2), kw_only=True)

    def __post_init__(self) -> None:
        _check_mapper_bounds(type(self).__name__, self.a, self.b)
        if not all(math.isfinite(s) for s in (self.start_slope, self.end_slope)):
            raise ValueError("start_slope and end_slope must be finite")
        if not (math.isfinite(self.control_distance) and self.control_distance > 0.0):
            raise ValueError(f"control_distance must be > 0, got {self.control_distance}")

    @property
    def control_points(self) -> npt.NDArray[np.float64]:
        """P0..P3 as rows ``[4, 2]`` of (x, y)."""
        a, b, s0, s1, c = self.a, self.b, self.start_slope, self.end_slope, self.control_distance
        if abs(s0 - s1) < 1e-8:
            ix, iy = (a + 1.0) / 2.0, (a + b) / 2.0
        else:
            ix = (a * (s0 - 1.0) + b - s1) / (s0 - s1)
            iy = s0 * (ix - a) + a
        p0, p3, corner = np.array([a, a]), np.array([1.0, b]), np.array([ix, iy])
        return np.stack([p0, p0 + c * (corner - p0), p3 + c * (corner - p3), p3])

    def _curve(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x(t), y(t)) of the curve at parameters ``t``."""
        p = self.control_points
        u = 1.0 - t
        w = (u**3, 3.0 * u**2 * t, 3.0 * u * t**2, t**3)
        x = sum(wi * float(pi[0]) for wi, pi in zip(w, p, strict=True))
        y = sum(wi * float(pi[1]) for wi, pi in zip(w, p, strict=True))
        return torch.as_tensor(x), torch.as_tensor(y)

    def _dx_dt(self, t: torch.Tensor) -> torch.Tensor:
        x0, x1, x2, x3 = (float(v) for v in self.control_points[:, 0])
        u = 1.0 - t
        return 3.0 * u**2 * (x1 - x0) + 6.0 * u * t * (x2 - x1) + 3.0 * t**2 * (x3 - x2)

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor:
        xd = x.double()
        mask = xd > self.a
        t = ((xd - self.a) / (1.0 - self.a)).clamp(0.01, 0.99)
        for _ in range(10):
            err = self._curve(t)[0] - xd
            if not bool(mask.any()) or float(err[mask].abs().max()) < 1e-6:
                break
            t = (t - err / (self._dx_dt(t) + 1e-8)).clamp(0.0, 1.0)
        return torch.where(mask, self._curve(t)[1], xd).to(x.dtype)


@dataclass(frozen=True)
class FastBezierMapper(BezierMapper):
    """``BezierMapper`` evaluated by linear interpolation in a table of ``lookup_resolution`` curve points.

    >>> round(float(FastBezierMapper(0.0, 0.5)(torch.tensor([0.5], dtype=torch.float64))[0]), 4)
    0.3826
    """

    lookup_resolution: int = field(default=1000, kw_only=True)
    _table: tuple[torch.Tensor, torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lookup_resolution < 2:
            raise ValueError(f"lookup_resolution must be >= 2, got {self.lookup_resolution}")
        t = torch.linspace(0.0, 1.0, self.lookup_resolution, dtype=torch.float64)
        object.__setattr__(self, "_table", self._curve(t))

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor:
        xs, ys = (v.to(x.device) for v in self._table)
        xd = x.double()
        i = torch.searchsorted(xs, xd.contiguous(), side="left").clamp(1, self.lookup_resolution - 1)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        y = y0 + (y1 - y0) * (xd - x0) / (x1 - x0 + 1e-8)
        return torch.where(xd > self.a, y, xd).to(x.dtype)


@dataclass(frozen=True, eq=False, init=False)
class Suppression:
    """Subtract a gated share of the component along the concept vector (§8.2); no re-normalisation.

    out = h − falloff(d)·⟨h, v⟩·v with d = clamp(⟨h, v⟩, 0, 1); ``v`` is assumed to be unit length.

    >>> s = Suppression([1.0, 0.0], BoundedFalloff(0.0, 1.0, 2.0))
    >>> [round(x, 3) for x in s(torch.tensor([[0.6, 0.8]]))[0].tolist()]
    [0.384, 0.8]
    """

    concept_vector: torch.Tensor
    falloff: Mapper

    def __init__(self, concept_vector: torch.Tensor | Sequence[float], falloff: Mapper) -> None:
        object.__setattr__(self, "concept_vector", _as_concept(concept_vector))
        object.__setattr__(self, "falloff", falloff)

    def __call__(self, h: torch.Tensor, /) -> torch.Tensor:
        v = _concept_like(self.concept_vector, h)  # (K,)
        p = h @ v  # (N,)
        g = self.falloff(p.clamp(0.0, 1.0))  # (N,)
        return h - (g * p).unsqueeze(-1) * v  # (N, K)


@dataclass(frozen=True, eq=False, init=False)
class Repulsion:
    """Rotate rows aligned with the concept vector to the alignment given by ``mapper`` (§8.4).

    Rows with ⟨h, v⟩ > 0 become unit vectors in the plane of h and v with ⟨out, v⟩ = mapper(d); other
    rows are unchanged. A row parallel to v has no plane; it is rotated towards a random direction
    orthogonal to v, drawn from ``generator`` (torch's global generator if None).

    >>> r = Repulsion([1.0, 0.0], FastBezierMapper(0.0, 0.5))
    >>> [round(x, 4) for x in r(torch.tensor([[0.6, 0.8]], dtype=torch.float64))[0].tolist()]
    [0.427, 0.9043]
    """

    concept_vector: torch.Tensor
    mapper: Mapper
    eps: float
    generator: torch.Generator | None

    def __init__(
        self,
        concept_vector: torch.Tensor | Sequence[float],
        mapper: Mapper,
        eps: float = 1e-8,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
        object.__setattr__(self, "concept_vector", _as_concept(concept_vector))
        object.__setattr__(self, "mapper", mapper)
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "generator", generator)

    def _random_orthogonal(self, n: int, v: torch.Tensor) -> torch.Tensor:
        """``n`` random unit vectors orthogonal to ``v``, ``[n, K]``."""
        device = self.generator.device if self.generator is not None else v.device
        r = torch.randn(n, v.shape[0], generator=self.generator, dtype=v.dtype, device=device).to(v.device)
        r = r - (r @ v).unsqueeze(-1) * v / (v @ v)  # (n, K)
        return r / r.norm(dim=-1, keepdim=True)

    def __call__(self, h: torch.Tensor, /) -> torch.Tensor:
        v = _concept_like(self.concept_vector, h)  # (K,)
        d = (h @ v).clamp(0.0, 1.0)  # (N,)
        t = self.mapper(d)  # (N,)
        v_perp = h - d.unsqueeze(-1) * v  # (N, K)
        n = v_perp.norm(dim=-1)  # (N,)
        degenerate = n < self.eps
        if bool(degenerate.any()):
            v_perp = v_perp.clone()
            v_perp[degenerate] = self._random_orthogonal(int(degenerate.sum()), v)
            n = torch.where(degenerate, torch.ones_like(n), n)
        u = v_perp / n.unsqueeze(-1)  # (N, K)
        tc = t.clamp(-1.0 + self.eps, 1.0 - self.eps)
        rotated = tc.unsqueeze(-1) * v + torch.sqrt(1.0 - tc**2).unsqueeze(-1) * u  # (N, K)
        return torch.where((d > 0).unsqueeze(-1), rotated, h)


@dataclass(frozen=True)
class AxisAlignedSuppression:
    """Set the listed latent coordinates to 0 (§8.6).

    >>> AxisAlignedSuppression((0,))(torch.tensor([[0.6, 0.8]])).tolist()
    [[0.0, 0.800000011920929]]
    """

    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        dims = tuple(sorted({operator.index(d) for d in self.dims}))
        if not dims or dims[0] < 0:
            raise ValueError(f"dims must be a non-empty set of non-negative ints, got {self.dims}")
        object.__setattr__(self, "dims", dims)

    def _check(self, h: torch.Tensor) -> None:
        if self.dims[-1] >= h.shape[-1]:
            raise IndexError(f"dim {self.dims[-1]} is out of range for activations of width {h.shape[-1]}")

    def distance(self, h: torch.Tensor, /) -> torch.Tensor:
        """Norm of the suppressed coordinates, ``[N]``."""
        self._check(h)
        return h[..., list(self.dims)].norm(dim=-1)

    def __call__(self, h: torch.Tensor, /) -> torch.Tensor:
        self._check(h)
        out = h.clone()
        out[..., list(self.dims)] = 0.0
        return out


@dataclass(frozen=True)
class InterventionConfig:
    """An intervention and the module paths whose outputs it replaces (e.g. ``('bottleneck',)``)."""

    apply: Intervention
    layers: tuple[str, ...]

    def __post_init__(self) -> None:
        layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
        if not layers or not all(isinstance(name, str) for name in layers):
            raise ValueError(f"layers must be a non-empty sequence of module paths, got {self.layers!r}")
        object.__setattr__(self, "layers", layers)


def _module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ValueError(f"model has no module named {path!r}") from None


def infer(
    model: nn.Module,
    x: torch.Tensor | npt.ArrayLike,
    /,
    *,
    interventions: Iterable[InterventionConfig] = (),
    capture: str | None = "bottleneck",
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` on colours ``x`` ``[..., 3]`` with interventions hooked in (§9.1).

    Eval mode (so outputs are clamped), no gradients, batches of ``batch_size`` in order. Each
    intervention replaces its layers' outputs, chained in list order; the capture hook is registered
    last, so captured latents are post-intervention. Hooks are removed and every module's training
    flag is restored afterwards, even on error.

    Args:
        model: any module mapping ``[B, 3]`` to ``[B, C]``.
        x: colours; converted to the model's parameter dtype and device.
        interventions: applied at inference only.
        capture: module path whose output is returned as latents; None captures nothing.

    Returns:
        ``y`` with shape ``x.shape[:-1] + (C,)`` and ``latents`` ``[N, K]`` (N = number of colours;
        ``[N, 0]`` when ``capture`` is None or N = 0).
    """
    configs = tuple(interventions)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    params = list(model.parameters())
    dtype = params[0].dtype if params and params[0].is_floating_point() else torch.float32
    device = params[0].device if params else torch.device("cpu")
    xt = torch.as_tensor(x).to(dtype=dtype, device=device)
    if xt.ndim == 0 or xt.shape[-1] != 3:
        raise ValueError(f"x must have shape [..., 3], got {tuple(xt.shape)}")
    flat = xt.reshape(-1, 3)  # (N, 3)

    targets = [(cfg.apply, _module(model, layer)) for cfg in configs for layer in cfg.layers]
    capture_module = _module(model, capture) if capture is not None else None
    captured: list[torch.Tensor] = []
    flags = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for apply, module in targets:
            handles.append(module.register_forward_hook(lambda _m, _i, out, f=apply: f(out)))
        if capture_module is not None:
            handles.append(capture_module.register_forward_hook(lambda _m, _i, out: captured.append(out.detach())))
        model.eval()
        with torch.no_grad():
            ys = [model(flat[i : i + batch_size]) for i in range(0, flat.shape[0], batch_size)]
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in flags:
            module.training = flag

    if not ys:
        return xt.new_empty(xt.shape), xt.new_empty((0, 0))
    y = torch.cat(ys)  # (N, C)
    latents = torch.cat(captured) if captured else y.new_empty((y.shape[0], 0))  # (N, K)
    return y.reshape(*xt.shape[:-1], y.shape[-1]), latents
