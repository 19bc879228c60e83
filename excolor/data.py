"""Training and validation colour sets, and per-model batch sampling (science.md §3.5–3.7, §14.1).

Ex 2.9.1 trains on the 8×8×8 RGB corner grid (512 colours), drawn uniformly *with replacement*
in batches of 64, each colour labelled ``red`` with probability redness⁸·0.08; it validates on
the 7³ cell-centre grid plus the 8 cube corners (351 colours) with an exact ``red`` label on
pure red only.

Sampling is a pure function of (seed, step): the 64 indices and the 64 label uniforms of step t
for seed s come from a counter-based integer hash. A population draws all its batches for a step
in one op, CPU and GPU draw identical batches, and a checkpoint needs no RNG state (§14.1).

Letters used in shape comments: S models, B batch size, N colours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from excolor.colors import redness

__all__ = [
    "MAX_SEED",
    "ColorSet",
    "HashSampler",
    "color_grid",
    "training_colors",
    "validation_colors",
]

MAX_SEED = 2**32 - 1
_MASK32 = 0xFFFFFFFF
# Odd 32-bit constants of a well-mixing avalanche hash (two multiply-xorshift rounds).
_MUL1, _MUL2 = 0x7FEB352D, 0x846CA68B
_STEP_MUL, _SLOT_MUL = 0x9E3779B9, 0x632BE5AB
_INDEX_STREAM, _LABEL_STREAM, _CHANNEL_MUL = 0x1B873593, 0x68E31DA4, 0x27D4EB2F


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """Avalanche hash of 32-bit values held in int64 (masking keeps ``>>`` logical)."""
    x = x ^ (x >> 16)
    x = (x * _MUL1) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _MUL2) & _MASK32
    return x ^ (x >> 16)


@dataclass(frozen=True)
class ColorSet:
    """Colours with per-colour label values.

    ``labels[name]`` holds a probability for stochastic labels (drawn afresh at each use) or
    the label value itself for exact labels.
    """

    colors: torch.Tensor  # (N, 3) float32 RGB in [0, 1]
    labels: Mapping[str, torch.Tensor]  # name -> (N,) float32
    stochastic: bool

    def __len__(self) -> int:
        return int(self.colors.shape[0])

    def to(self, device: torch.device | str) -> ColorSet:
        return ColorSet(self.colors.to(device), {k: v.to(device) for k, v in self.labels.items()}, self.stochastic)


def color_grid(subs: int, sample_at: str = "cell-corners", *, add_corners: bool | None = None) -> np.ndarray:
    """RGB grid of §3.5 as (N, 3) float64, C-order (blue fastest).

    ``cell-corners``: linspace(0, 1, subs) per axis (subs³ colours). ``cell-centers``:
    linspace(1/(2 subs), 1 − 1/(2 subs), subs − 1) per axis, then (by default) the 8 cube corners.
    """
    if sample_at == "cell-corners":
        axis = np.linspace(0.0, 1.0, subs)
        corners = False if add_corners is None else add_corners
    elif sample_at == "cell-centers":
        axis = np.linspace(1 / (2 * subs), 1 - 1 / (2 * subs), subs - 1)
        corners = True if add_corners is None else add_corners
    else:
        raise ValueError(f"sample_at must be 'cell-corners' or 'cell-centers', got {sample_at!r}")
    grids = [g.reshape(-1) for g in np.meshgrid(axis, axis, axis, indexing="ij")]
    rgb = np.stack(grids, axis=-1)
    if corners:
        c = [g.reshape(-1) for g in np.meshgrid([0.0, 1.0], [0.0, 1.0], [0.0, 1.0], indexing="ij")]
        rgb = np.concatenate([rgb, np.stack(c, axis=-1)])
    return rgb


def _label_values(rgb: np.ndarray, rules: Mapping[str, Callable[[np.ndarray], np.ndarray]]) -> dict[str, torch.Tensor]:
    # Computed in float64 on the numpy grid, then stored as float32, as the original's dataset did.
    return {
        name: torch.as_tensor(np.asarray(rule(rgb), dtype=np.float64), dtype=torch.float32)
        for name, rule in rules.items()
    }


def training_colors(subs: int = 8) -> ColorSet:
    """The Ex 2.9.1 training set: corner grid, stochastic red with p = redness⁸·0.08."""
    rgb = color_grid(subs, "cell-corners")
    labels = _label_values(rgb, {"red": lambda c: redness(c) ** 8 * 0.08})
    return ColorSet(torch.as_tensor(rgb, dtype=torch.float32), labels, stochastic=True)


def validation_colors(subs: int = 8) -> ColorSet:
    """The Ex 2.9.1 validation set: cell centres + corners, exact red label on (1, 0, 0) only."""
    rgb = color_grid(subs, "cell-centers")
    labels = _label_values(rgb, {"red": lambda c: redness(c) == 1})
    return ColorSet(torch.as_tensor(rgb, dtype=torch.float32), labels, stochastic=False)


class HashSampler:
    """Stateless per-model batch draws: indices and label uniforms as a function of (seed, step).

    >>> s = HashSampler([0, 1], n_colors=512, batch_size=4)
    >>> bool((s.indices(7) == s.indices(7)).all())
    True
    """

    def __init__(
        self, seeds: Sequence[int], *, n_colors: int, batch_size: int, device: torch.device | str = "cpu"
    ) -> None:
        seeds_t = torch.as_tensor(list(seeds), dtype=torch.int64, device=device)
        if seeds_t.ndim != 1 or len(seeds_t) == 0:
            raise ValueError("HashSampler needs a non-empty list of seeds")
        if bool(((seeds_t < 0) | (seeds_t > MAX_SEED)).any()):
            raise ValueError(f"seeds must lie in 0..{MAX_SEED}")
        if not 0 < n_colors <= 2**31 or batch_size < 1:
            raise ValueError(f"bad sampler sizes: n_colors={n_colors}, batch_size={batch_size}")
        self.n_colors = n_colors
        self.batch_size = batch_size
        self._slots = torch.arange(batch_size, dtype=torch.int64, device=device) * _SLOT_MUL  # (B,)
        self._index_keys = _mix32(seeds_t ^ _INDEX_STREAM).unsqueeze(-1)  # (S, 1)
        self._label_keys = _mix32(seeds_t ^ _LABEL_STREAM).unsqueeze(-1)  # (S, 1)

    def _hash(self, keys: torch.Tensor, step: int) -> torch.Tensor:
        per_step = _mix32((keys + (step * _STEP_MUL & _MASK32)) & _MASK32)  # (S, 1)
        return _mix32((per_step + self._slots) & _MASK32)  # (S, B)

    def indices(self, step: int) -> torch.Tensor:
        """(S, B) int64 colour indices, uniform over ``n_colors`` (multiply-shift, no modulo bias)."""
        return (self._hash(self._index_keys, step) * self.n_colors) >> 32

    def uniforms(self, step: int, channel: int = 0) -> torch.Tensor:
        """(S, B) float32 uniforms in [0, 1) with 24 random bits (exact in float32).

        Each label draws from its own ``channel`` so that two stochastic labels are independent.
        """
        keys = self._label_keys if channel == 0 else _mix32(self._label_keys ^ (channel * _CHANNEL_MUL & _MASK32))
        return (self._hash(keys, step) >> 8).to(torch.float32) * (2.0**-24)

    def batch(self, colors: ColorSet, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Colours (S, B, 3) and labels {name: (S, B) float32} of one training step."""
        idx = self.indices(step)  # (S, B)
        x = colors.colors[idx]  # (S, B, 3)
        if colors.stochastic:
            labels = {
                k: (self.uniforms(step, channel) < p[idx]).to(torch.float32)
                for channel, (k, p) in enumerate(colors.labels.items())
            }
        else:
            labels = {k: v[idx] for k, v in colors.labels.items()}
        return x, labels
