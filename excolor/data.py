"""Training and validation colour sets, and per-model batch sampling (science.md §3.5–3.8, §14.1).

Ex 2.9.1 trains on the 8×8×8 RGB corner grid (512 colours), drawn uniformly *with replacement*
in batches of 64, each colour labelled ``red`` with probability redness⁸·0.08; it validates on
the 7³ cell-centre grid plus the 8 cube corners (351 colours) with an exact ``red`` label on
pure red only.

Two batch streams (§14.1). ``hash`` (default): sampling is a pure function of (seed, step); the 64
indices and the 64 label uniforms of step t for seed s come from a counter-based integer hash. A
population draws all its batches for a step in one op, CPU and GPU draw identical batches, and a
checkpoint needs no RNG state. ``original``: the published runs' own stream (§6.8), rebuilt per model
on the CPU, for per-seed comparison with the reference notebooks.

Letters used in shape comments: S models, B batch size, N colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from excolor.colors import ColorCube, arange_cyclic, blueness, greenness, redness, vibrancy
from excolor.limits import MAX_BATCH_SIZE, MAX_COLORS, MAX_GRID

__all__ = [
    "COLOR_SETS",
    "LABEL_ATTRIBUTES",
    "MAX_SEED",
    "WEIGHTINGS",
    "ColorSet",
    "HashSampler",
    "LabelRule",
    "OriginalStream",
    "TrainingData",
    "color_grid",
    "make_stream",
    "training_colors",
    "validation_colors",
]

LABEL_ATTRIBUTES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "redness": redness,
    "greenness": greenness,
    "blueness": blueness,
    "vibrancy": vibrancy,
    "desaturation": lambda c: 1.0 - vibrancy(c),
}
"""Colour attributes a label can follow (§3.4, §3.8); each maps RGB ``[..., 3]`` to [0, 1]."""

COLOR_SETS = ("rgb-grid", "hsv-cube")
"""Training colour sets: the RGB corner grid of Ex 2.9.1, the legacy HSV cube of Ex 2.1–2.8 (§3.8)."""

WEIGHTINGS = ("uniform", "bias")
"""How training colours are drawn (with replacement): uniformly, or in proportion to the cube's bias."""

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
    weights: torch.Tensor | None = None  # (N,) float64 sampling weights; None = uniform

    def __len__(self) -> int:
        return int(self.colors.shape[0])

    def to(self, device: torch.device | str) -> ColorSet:
        weights = None if self.weights is None else self.weights.to(device)
        labels = {k: v.to(device) for k, v in self.labels.items()}
        return ColorSet(self.colors.to(device), labels, self.stochastic, weights)


@dataclass(frozen=True)
class LabelRule:
    """A stochastic label: P(label | colour) = attribute(colour)^power · scale (§3.7, §3.8).

    Validation uses exact labels instead: 1 where the attribute is exactly 1 (pure red for
    ``redness``), 0 elsewhere, as the Ex 2.9.1 validation set does.

    >>> LabelRule("redness", 8, 0.08).probability(np.array([[1.0, 0.0, 0.0]])).tolist()
    [0.08]
    """

    attribute: str
    power: float
    scale: float

    def __post_init__(self) -> None:
        if self.attribute not in LABEL_ATTRIBUTES:
            raise ValueError(
                f"unknown label attribute {self.attribute!r}; expected one of {', '.join(LABEL_ATTRIBUTES)}"
            )
        if not (math.isfinite(self.power) and self.power > 0):
            raise ValueError(f"label power must be a finite number > 0, got {self.power!r}")
        if not 0 <= self.scale <= 1:
            raise ValueError(f"label scale must lie in [0, 1] (it is a probability), got {self.scale!r}")

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        return LABEL_ATTRIBUTES[self.attribute](rgb) ** self.power * self.scale

    def exact(self, rgb: np.ndarray) -> np.ndarray:
        return (LABEL_ATTRIBUTES[self.attribute](rgb) == 1).astype(np.float64)


RED_LABEL = LabelRule("redness", 8.0, 0.08)
"""Ex 2.9.1's only label (§3.7)."""


@dataclass(frozen=True)
class TrainingData:
    """What a model trains on: the colour set, how it is drawn, and its stochastic labels.

    Args:
        colors: ``rgb-grid`` (``subdivisions``³ corner grid) or ``hsv-cube`` (``hsv_shape`` =
            hues × saturations × values, hue step 360°/hues, §3.8).
        weighting: ``uniform`` or ``bias`` (the HSV cube's weights, compensating repeated greys).
        labels: label name -> rule; the names are what regularizers' label affinities refer to.
        batch_size: colours per training batch.
        validation_grid: the validation set is its cell centres plus the 8 corners (§3.5).
    """

    colors: str = "rgb-grid"
    subdivisions: int = 8
    hsv_shape: tuple[int, int, int] = (36, 10, 10)
    weighting: str = "uniform"
    labels: Mapping[str, LabelRule] = field(default_factory=lambda: {"red": RED_LABEL})
    batch_size: int = 64
    validation_grid: int = 8

    def __post_init__(self) -> None:
        if self.colors not in COLOR_SETS:
            raise ValueError(f"unknown colour set {self.colors!r}; expected one of {', '.join(COLOR_SETS)}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {self.weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
        if self.subdivisions < 2 or self.validation_grid < 2 or self.batch_size < 1:
            raise ValueError("subdivisions >= 2, validation_grid >= 2 and batch_size >= 1 are required")
        if len(self.hsv_shape) != 3 or min(self.hsv_shape) < 1:
            raise ValueError(f"hsv_shape must be three positive sizes, got {self.hsv_shape!r}")
        caps = {"batch_size": MAX_BATCH_SIZE, "subdivisions": MAX_GRID, "validation_grid": MAX_GRID}
        for name, cap in caps.items():  # checked before anything of that size is allocated
            if getattr(self, name) > cap:
                raise ValueError(f"{name} must be at most {cap:,} (excolor.limits), got {getattr(self, name):,}")
        if math.prod(self.hsv_shape) > MAX_COLORS:
            raise ValueError(f"hsv_shape {list(self.hsv_shape)} has more than {MAX_COLORS:,} colours (excolor.limits)")

    def training_set(self) -> ColorSet:
        """The training colours with their label probabilities (and sampling weights)."""
        if self.colors == "rgb-grid":
            rgb = color_grid(self.subdivisions, "cell-corners")
            bias = np.ones(len(rgb))
        else:
            n_h, n_s, n_v = self.hsv_shape
            cube = ColorCube.from_hsv(
                arange_cyclic(step_size=1.0 / n_h), np.linspace(0.0, 1.0, n_s), np.linspace(0.0, 1.0, n_v)
            )
            rgb, bias = cube.rgb_grid.reshape(-1, 3), cube.bias.reshape(-1)
        labels = _label_values(rgb, {k: r.probability for k, r in self.labels.items()})
        weights = torch.as_tensor(bias, dtype=torch.float64) if self.weighting == "bias" else None
        return ColorSet(torch.as_tensor(rgb, dtype=torch.float32), labels, stochastic=True, weights=weights)

    def validation_set(self) -> ColorSet:
        """Cell centres + corners of the validation grid, exact labels (§3.7)."""
        rgb = color_grid(self.validation_grid, "cell-centers")
        labels = _label_values(rgb, {k: r.exact for k, r in self.labels.items()})
        return ColorSet(torch.as_tensor(rgb, dtype=torch.float32), labels, stochastic=False)


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
    return TrainingData(subdivisions=subs).training_set()


def validation_colors(subs: int = 8) -> ColorSet:
    """The Ex 2.9.1 validation set: cell centres + corners, exact red label on (1, 0, 0) only."""
    return TrainingData(validation_grid=subs).validation_set()


class HashSampler:
    """Stateless per-model batch draws: indices and label uniforms as a function of (seed, step).

    >>> s = HashSampler([0, 1], n_colors=512, batch_size=4)
    >>> bool((s.indices(7) == s.indices(7)).all())
    True
    """

    def __init__(
        self,
        seeds: Sequence[int],
        *,
        n_colors: int,
        batch_size: int,
        weights: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
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
        self._cdf: torch.Tensor | None = None
        if weights is not None:
            w = torch.as_tensor(weights, dtype=torch.float64).cpu().flatten()
            if len(w) != n_colors or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
                raise ValueError(f"sampling weights must be {n_colors} finite values >= 0 with a positive sum")
            # (N,) float64, summed on the CPU so that every device draws from the very same table
            self._cdf = (torch.cumsum(w, 0) / w.sum()).to(device)

    def _hash(self, keys: torch.Tensor, step: int) -> torch.Tensor:
        per_step = _mix32((keys + (step * _STEP_MUL & _MASK32)) & _MASK32)  # (S, 1)
        return _mix32((per_step + self._slots) & _MASK32)  # (S, B)

    def indices(self, step: int) -> torch.Tensor:
        """(S, B) int64 colour indices: uniform over ``n_colors`` (multiply-shift, no modulo bias), or
        drawn in proportion to ``weights`` (inverse CDF of a 32-bit uniform)."""
        bits = self._hash(self._index_keys, step)
        if self._cdf is None:
            return (bits * self.n_colors) >> 32
        u = (bits.to(torch.float64) + 0.5) * 2.0**-32  # in (0, 1)
        return torch.searchsorted(self._cdf, u).clamp_(max=self.n_colors - 1)

    def uniforms(self, step: int, channel: int = 0) -> torch.Tensor:
        """(S, B) float32 uniforms in [0, 1) with 24 random bits (exact in float32).

        Each label draws from its own ``channel`` so that two stochastic labels are independent.
        """
        keys = self._label_keys if channel == 0 else _mix32(self._label_keys ^ (channel * _CHANNEL_MUL & _MASK32))
        return (self._hash(keys, step) >> 8).to(torch.float32) * (2.0**-24)

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        """Nothing: draws are a pure function of (seed, step)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        if state:
            raise ValueError("the hash stream has no state; this checkpoint was made with another stream")

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


def _draw_int64(generator: torch.Generator) -> int:
    """One draw of ``torch.empty((), dtype=int64).random_()``: a DataLoader's base seed or a
    RandomSampler's seed in the original pipeline."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


class OriginalStream:
    """The per-seed batch and label stream of the published Ex 2.9.1 runs (science.md §6.8).

    Rebuilt in plain torch, one CPU generator per model: after ``manual_seed(seed)`` and building
    the model, each 8-batch epoch draws the DataLoader's base seed and the RandomSampler's seed from
    the global generator; the epoch's 512 indices are 16 ``randint(n, (32,))`` draws from a
    generator seeded with the sampler seed; batch i's labels come from worker ``i mod 4``, whose
    generator is seeded with ``base + w`` and yields one ``rand(B)`` per batch it handles; after
    every validation, creating the validation iterator draws one more int64.

    Stateful: batches must be requested in order. ``state_dict`` captures it at any step.
    """

    WORKERS = 4

    def __init__(
        self,
        seeds: Sequence[int],
        *,
        n_colors: int,
        batch_size: int,
        batches_per_epoch: int,
        val_every: int,
        model_shape: tuple[int, int, int],
    ) -> None:
        from excolor.model import CNColorMLP

        if not seeds:
            raise ValueError("OriginalStream needs a non-empty list of seeds")
        if n_colors % 32 or batches_per_epoch * batch_size != n_colors:
            raise ValueError("the original stream needs n_colors = batches_per_epoch · batch_size, a multiple of 32")
        self.n_colors, self.batch_size, self.batches_per_epoch = n_colors, batch_size, batches_per_epoch
        self.val_every = val_every
        self.generators: list[torch.Generator] = []
        with torch.random.fork_rng(devices=[]):
            for seed in seeds:
                torch.manual_seed(seed)
                CNColorMLP(*model_shape)  # consumes exactly what building the model consumed (§6.1)
                g = torch.Generator()
                g.set_state(torch.get_rng_state())
                self.generators.append(g)
        s = len(seeds)
        self.next_step = 0
        self._indices = torch.zeros(s, n_colors, dtype=torch.int64)  # this epoch's indices
        self._uniforms = torch.zeros(s, batches_per_epoch, batch_size)  # this epoch's label uniforms

    def _start_epoch(self) -> None:
        per_worker = -(-self.batches_per_epoch // self.WORKERS)
        for m, g in enumerate(self.generators):
            base = _draw_int64(g)
            sampler = torch.Generator()
            sampler.manual_seed(_draw_int64(g))
            self._indices[m] = torch.cat(
                [
                    torch.randint(self.n_colors, (32,), dtype=torch.int64, generator=sampler)
                    for _ in range(self.n_colors // 32)
                ]
            )
            for w in range(self.WORKERS):
                worker = torch.Generator()
                worker.manual_seed(base + w)
                for j in range(per_worker):
                    i = w + self.WORKERS * j
                    if i < self.batches_per_epoch:
                        self._uniforms[m, i] = torch.rand(self.batch_size, generator=worker)

    def _advance_to(self, step: int) -> None:
        if step != self.next_step:
            raise RuntimeError(f"the original stream is sequential: expected step {self.next_step}, got {step}")
        if step > 0 and step % self.val_every == 0:
            for g in self.generators:  # the validation iterator's base seed
                _draw_int64(g)
        if step % self.batches_per_epoch == 0:
            self._start_epoch()
        self.next_step = step + 1

    def batch(self, colors: ColorSet, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Colours (S, B, 3) and labels {name: (S, B)} of training step ``step`` (in order)."""
        self._advance_to(step)
        i = step % self.batches_per_epoch
        idx = self._indices[:, i * self.batch_size : (i + 1) * self.batch_size].to(colors.colors.device)  # (S, B)
        x = colors.colors[idx]
        if colors.stochastic:
            if len(colors.labels) != 1:
                raise ValueError("the original stream reproduces single-label experiments only")
            u = self._uniforms[:, i].to(colors.colors.device)
            labels = {k: (u < p[idx]).to(torch.float32) for k, p in colors.labels.items()}
        else:
            labels = {k: v[idx] for k, v in colors.labels.items()}
        return x, labels

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        return {
            "next_step": self.next_step,
            "generators": torch.stack([g.get_state() for g in self.generators]),
            "indices": self._indices.clone(),
            "uniforms": self._uniforms.clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        gens = state["generators"]
        assert isinstance(gens, torch.Tensor)
        if gens.shape[0] != len(self.generators):
            raise ValueError("stream state has a different number of models")
        for g, st in zip(self.generators, gens):
            g.set_state(st.clone())
        self._indices.copy_(state["indices"])  # type: ignore[arg-type]
        self._uniforms.copy_(state["uniforms"])  # type: ignore[arg-type]
        self.next_step = int(state["next_step"])


def make_stream(
    kind: str,
    seeds: Sequence[int],
    *,
    n_colors: int,
    batch_size: int,
    val_every: int,
    model_shape: tuple[int, int, int],
    weights: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> HashSampler | OriginalStream:
    """The batch stream named ``kind`` ('hash' or 'original') for these seeds."""
    if kind == "hash":
        return HashSampler(seeds, n_colors=n_colors, batch_size=batch_size, weights=weights, device=device)
    if kind == "original":
        if weights is not None:
            raise ValueError("the original stream draws uniformly; it cannot use a bias-weighted sampler")
        return OriginalStream(
            seeds,
            n_colors=n_colors,
            batch_size=batch_size,
            batches_per_epoch=n_colors // batch_size,
            val_every=val_every,
            model_shape=model_shape,
        )
    raise ValueError(f"unknown stream {kind!r}; expected 'hash' or 'original'")
