"""Colour spaces, colour attributes and the similarity-to-red measure (science.md §3.1–3.4, §9.3, §9.5).

Everything here is plain numpy in float64: the scoring grids, the HSV similarity and the named-colour
table are computed exactly once per evaluation and must not inherit the model's float32 rounding
(§14.4). Arrays of colours have a trailing axis of length 3 (``[..., 3]``); functions broadcast over
the leading axes and never modify their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is made: `excolor train` and Ray trials need none

__all__ = [
    "RED_HSV",
    "ColorCube",
    "arange_cyclic",
    "blueness",
    "coordinate_grid",
    "greenness",
    "hsv_similarity",
    "hsv_to_rgb",
    "named_colors",
    "redness",
    "rgb_grid",
    "rgb_to_hsv",
    "vibrancy",
]

FloatArray = npt.NDArray[np.float64]

RED_HSV: tuple[float, float, float] = (0.0, 1.0, 1.0)
"""The anchor colour of Ex 2.9.1 (pure red) in HSV."""

_HUE_NAMES: dict[int, tuple[str, ...]] = {
    12: ("red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "purple", "magenta", "pink"),
    6: ("red", "yellow", "green", "cyan", "blue", "magenta"),
    3: ("red", "green", "blue"),
}
_GRAY_NAMES: dict[int, tuple[str, ...]] = {
    5: ("black", "dark gray", "gray", "light gray", "white"),
    3: ("black", "gray", "white"),
    2: ("black", "white"),
}


def _as_colors(c: npt.ArrayLike, name: str = "colors") -> FloatArray:
    """float64 view/copy of ``c`` checked to end in a length-3 axis."""
    arr = np.asarray(c, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [..., 3], got {arr.shape}")
    return arr


def _keep_axis(index: Any) -> Any:
    """An integer index as a length-1 slice, so slicing keeps the axis; anything else unchanged."""
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        i = int(index)
        return slice(i, i + 1 if i != -1 else None)
    return index


def coordinate_grid(*axes: npt.ArrayLike) -> FloatArray:
    """Every combination of the axis values, stacked on a new last axis.

    Matrix ("ij") indexing, so C-order flattening gives flat index ``(i0*n1 + i1)*n2 + i2`` (§3.1).

    >>> coordinate_grid([0, 1], [0, 1, 2]).shape
    (2, 3, 2)
    """
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in axes]
    if not arrays:
        raise ValueError("coordinate_grid needs at least one axis")
    return np.stack(np.meshgrid(*arrays, indexing="ij"), axis=-1)  # (n0, ..., n_{d-1}, d)


def rgb_grid(n: int, /) -> FloatArray:
    """The ``n x n x n`` RGB grid over linspace(0, 1, n), flattened in C order to ``(n**3, 3)``.

    n = 8 is the scoring grid of §9.8 (corners included); n = 20 the latent cube of §9.4.

    >>> rgb_grid(2)[[0, 1, 4]].tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if n < 1:
        raise ValueError(f"rgb_grid needs n >= 1, got {n}")
    c = np.linspace(0.0, 1.0, n)
    return coordinate_grid(c, c, c).reshape(-1, 3)  # (n³, 3)


def rgb_to_hsv(rgb: npt.ArrayLike, /) -> FloatArray:
    """RGB in [0, 1] to HSV with hue in [0, 1), defined as in §14.4 (skimage-compatible).

    V = max; S = (max - min)/V (0 when V = 0); H = 0 for greys, otherwise the sextant formula of
    whichever channel is the maximum, where on ties the later channel (g over r, b over both) wins.

    >>> rgb_to_hsv([1.0, 1.0, 0.0]).tolist()
    [0.16666666666666666, 1.0, 1.0]
    """
    c = _as_colors(rgb, "rgb")
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    v = c.max(axis=-1)
    delta = v - c.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(v > 0, delta / np.where(v > 0, v, 1.0), 0.0)
        safe = np.where(delta > 0, delta, 1.0)
        h = (g - b) / safe
        h = np.where(g == v, 2.0 + (b - r) / safe, h)
        h = np.where(b == v, 4.0 + (r - g) / safe, h)
    h = np.where(delta > 0, np.mod(h / 6.0, 1.0), 0.0)
    # NOTE(colors): mod of a tiny negative hue rounds to exactly 1.0; fold it back into [0, 1).
    h = np.where(h >= 1.0, 0.0, h)
    return np.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: npt.ArrayLike, /) -> FloatArray:
    """HSV (hue taken mod 1) to RGB by the standard sextant construction.

    >>> hsv_to_rgb([1 / 12, 1.0, 1.0]).tolist()
    [1.0, 0.5, 0.0]
    """
    c = _as_colors(hsv, "hsv")
    h, s, v = np.mod(c[..., 0], 1.0), c[..., 1], c[..., 2]
    h6 = h * 6.0
    sextant = np.floor(h6)
    f = h6 - sextant
    i = sextant.astype(np.int64) % 6
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def redness(rgb: npt.ArrayLike, /) -> FloatArray:
    """r·(1 − g/2 − b/2): 1 only for pure red, 0 whenever r = 0 (§3.4)."""
    c = _as_colors(rgb, "rgb")
    return c[..., 0] * (1.0 - c[..., 1] / 2.0 - c[..., 2] / 2.0)


def greenness(rgb: npt.ArrayLike, /) -> FloatArray:
    """g·(1 − r/2 − b/2) (§3.4)."""
    c = _as_colors(rgb, "rgb")
    return c[..., 1] * (1.0 - c[..., 0] / 2.0 - c[..., 2] / 2.0)


def blueness(rgb: npt.ArrayLike, /) -> FloatArray:
    """b·(1 − r/2 − g/2) (§3.4)."""
    c = _as_colors(rgb, "rgb")
    return c[..., 2] * (1.0 - c[..., 0] / 2.0 - c[..., 1] / 2.0)


def vibrancy(rgb: npt.ArrayLike, /) -> FloatArray:
    """S·V of the colour: 1 for pure hues, 0 for greys and black (§3.4)."""
    hsv = rgb_to_hsv(rgb)
    return hsv[..., 1] * hsv[..., 2]


def hsv_similarity(
    c1: npt.ArrayLike,
    c2: npt.ArrayLike,
    /,
    *,
    hemi: bool = True,
    mode: Literal["angular", "cosine"] = "angular",
    weight_vibrancy: bool = True,
) -> FloatArray:
    """Perceptual similarity in [0, 1] of two HSV colours (broadcast over ``[..., 3]``), §9.5.

    Hue only counts in proportion to the pair's mean vibrancy (S·V), so greys are judged by S and V
    alone; any difference in S or V scales the result down linearly.

    Args:
        c1, c2: HSV colours with hue in [0, 1).
        hemi: hue similarity falls to 0 at 90° (True) or only at 180° (False).
        mode: ``'angular'`` (linear in the hue angle) or ``'cosine'`` (cosine of the angle).
        weight_vibrancy: weight hue by the mean vibrancy (True) or always fully (False).

    >>> round(float(hsv_similarity([1 / 12, 1.0, 1.0], RED_HSV)), 4)
    0.6667
    """
    if mode not in ("angular", "cosine"):
        raise ValueError(f"mode must be 'angular' or 'cosine', got {mode!r}")
    a = _as_colors(c1, "c1")
    b = _as_colors(c2, "c2")
    h1, s1, v1 = a[..., 0], a[..., 1], a[..., 2]
    h2, s2, v2 = b[..., 0], b[..., 1], b[..., 2]
    dh = np.mod(np.abs(h1 - h2), 1.0)
    angle = 360.0 * np.minimum(dh, 1.0 - dh)  # hue distance in degrees, 0..180
    if mode == "cosine":
        cos = np.cos(np.deg2rad(angle))
        hue_sim = np.maximum(0.0, cos) if hemi else 0.5 + cos / 2.0
    else:
        hue_sim = np.maximum(0.0, (90.0 - angle) / 90.0) if hemi else (180.0 - angle) / 180.0
    weight = (s1 * v1 + s2 * v2) / 2.0 if weight_vibrancy else np.ones_like(hue_sim)
    effective = weight * hue_sim + (1.0 - weight)
    return effective * (1.0 - np.abs(s1 - s2)) * (1.0 - np.abs(v1 - v2))


def arange_cyclic(
    lower: float = 0.0,
    upper: float | None = None,
    *,
    step_size: float = 1 / 12,
    period: float = 1.0,
    inclusive: bool = False,
) -> FloatArray:
    """Evenly spaced values on a circle from ``lower`` towards ``upper``, wrapped into [0, period) (§3.3).

    With ``upper=None`` one full turn is covered; an ``upper`` below ``lower`` wraps past the period.

    >>> arange_cyclic(step_size=0.25).tolist()
    [0.0, 0.25, 0.5, 0.75]
    """
    if step_size <= 0 or period <= 0:
        raise ValueError(f"step_size and period must be > 0, got {step_size}, {period}")
    lo = lower % period
    hi = lo + period if upper is None else upper % period
    if lo > hi:
        hi += period
    if inclusive:
        hi += step_size / 2
    return np.mod(np.arange(lo, hi, step_size, dtype=np.float64), period)


@dataclass(frozen=True, eq=False)
class ColorCube:
    """A 3-D grid of colours carrying named per-cell variables (§3.2).

    ``vars['color']`` is RGB ``[a, b, c, 3]``; ``vars['bias']`` the sampling weight ``[a, b, c]``. Every
    variable's leading three axes follow ``space`` (e.g. ``'hsv'`` = hue, saturation, value axes);
    methods return new cubes and leave this one untouched.
    """

    vars: Mapping[str, np.ndarray]
    coordinates: tuple[np.ndarray, np.ndarray, np.ndarray]
    space: str
    canonical_space: str

    def __post_init__(self) -> None:
        if sorted(self.space) != sorted(self.canonical_space):
            raise ValueError(f"space {self.space!r} is not a permutation of {self.canonical_space!r}")
        if len(self.coordinates) != 3:
            raise ValueError(f"a ColorCube needs 3 coordinate axes, got {len(self.coordinates)}")
        for required in ("color", "bias"):
            if required not in self.vars:
                raise ValueError(f"ColorCube needs a {required!r} variable")
        color = self.vars["color"]
        if color.ndim != 4 or color.shape[-1] != 3:
            raise ValueError(f"'color' must have shape [a, b, c, 3], got {color.shape}")
        for name, arr in self.vars.items():
            if arr.shape[:3] != self.shape:
                raise ValueError(f"variable {name!r} has shape {arr.shape}, cube is {self.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Lengths of the three coordinate axes."""
        a, b, c = (len(x) for x in self.coordinates)
        return (a, b, c)

    @property
    def rgb_grid(self) -> np.ndarray:
        """RGB colours ``[a, b, c, 3]``."""
        return self.vars["color"]

    @property
    def bias(self) -> np.ndarray:
        """Sampling weights ``[a, b, c]``."""
        return self.vars["bias"]

    @classmethod
    def from_hsv(cls, h: npt.ArrayLike, s: npt.ArrayLike, v: npt.ArrayLike) -> ColorCube:
        """HSV grid (hue wrapped, S and V clipped) whose bias favours vivid cells bilinearly in S, V.

        Bias w = (1−v)/(n_s·n_h) + (1−s)·v/n_h + s·v, so grey and dark cells, which are repeated
        once per hue, are not over-sampled.
        """
        hh, ss, vv = (np.asarray(x, dtype=np.float64).reshape(-1) for x in (h, s, v))
        grid = coordinate_grid(np.mod(hh, 1.0), np.clip(ss, 0.0, 1.0), np.clip(vv, 0.0, 1.0))  # (H, S, V, 3)
        n_h, n_s = max(1, len(hh)), max(1, len(ss))
        sg, vg = grid[..., 1], grid[..., 2]
        bias = (1.0 - vg) / (n_s * n_h) + (1.0 - sg) * vg / n_h + sg * vg  # (H, S, V)
        return cls({"color": hsv_to_rgb(grid), "bias": bias}, (hh, ss, vv), "hsv", "hsv")

    @classmethod
    def from_rgb(cls, r: npt.ArrayLike, g: npt.ArrayLike, b: npt.ArrayLike) -> ColorCube:
        """RGB grid with uniform bias."""
        rr, gg, bb = (np.asarray(x, dtype=np.float64).reshape(-1) for x in (r, g, b))
        grid = coordinate_grid(rr, gg, bb)  # (R, G, B, 3)
        return cls({"color": grid, "bias": np.ones(grid.shape[:3])}, (rr, gg, bb), "rgb", "rgb")

    def __getitem__(self, key: str | tuple[Any, Any, Any]) -> Any:
        """``cube['name']`` → that variable; ``cube[i, j, k]`` → a sub-cube sliced alike on all variables.

        Integer indices keep their axis (length 1) so that the result is still a cube.
        """
        if isinstance(key, str):
            return self.vars[key]
        if not isinstance(key, tuple) or len(key) != 3:
            raise TypeError("index a ColorCube by a variable name or by a tuple of three indices")
        index = [_keep_axis(i) for i in key]
        sliced = dict(self.vars)
        coords = list(self.coordinates)
        for axis, idx in enumerate(index):
            lead = (slice(None),) * axis
            sliced = {name: arr[(*lead, idx)] for name, arr in sliced.items()}
            coords[axis] = coords[axis][idx]
        return ColorCube(sliced, (coords[0], coords[1], coords[2]), self.space, self.canonical_space)

    def assign(
        self, name: str | None = None, array: npt.ArrayLike | None = None, /, **arrays: npt.ArrayLike
    ) -> ColorCube:
        """A new cube with variables added or replaced: ``assign('MSE', mse)`` or ``assign(MSE=mse)``."""
        if name is not None:
            if array is None:
                raise TypeError("assign(name, array) needs an array")
            arrays = {name: array, **arrays}
        new_vars = dict(self.vars)
        new_vars.update({k: np.asarray(v) for k, v in arrays.items()})
        return ColorCube(new_vars, self.coordinates, self.space, self.canonical_space)

    def permute(self, space: str) -> ColorCube:
        """A new cube with the three axes reordered, e.g. ``'svh'``; trailing variable axes stay last."""
        if sorted(space) != sorted(self.space) or len(set(space)) != 3:
            raise ValueError(f"cannot permute a {self.space!r} cube to {space!r}")
        order = [self.space.index(ch) for ch in space]
        new_vars = {name: np.transpose(arr, (*order, *range(3, arr.ndim))) for name, arr in self.vars.items()}
        c = self.coordinates
        return ColorCube(new_vars, (c[order[0]], c[order[1]], c[order[2]]), space, self.canonical_space)


def named_colors(n_hues: int = 12, n_grays: int = 5) -> pd.DataFrame:
    """The named evaluation colours (§9.3): pure hues at S = V = 1, then greys at H = S = 0.

    Returns a DataFrame with columns ``name``, ``hsv`` and ``rgb`` (tuples of floats), hues first in
    order of hue angle from red, then greys from black to white.

    Args:
        n_hues: 12, 6 or 3.
        n_grays: 5, 3 or 2.

    >>> named_colors(3, 2)['name'].tolist()
    ['red', 'green', 'blue', 'black', 'white']
    """
    import pandas as pd

    if n_hues not in _HUE_NAMES:
        raise ValueError(f"n_hues must be one of {sorted(_HUE_NAMES)}, got {n_hues}")
    if n_grays not in _GRAY_NAMES:
        raise ValueError(f"n_grays must be one of {sorted(_GRAY_NAMES)}, got {n_grays}")
    hsv = [(k / n_hues, 1.0, 1.0) for k in range(n_hues)]
    hsv += [(0.0, 0.0, k / (n_grays - 1)) for k in range(n_grays)]
    rgb = hsv_to_rgb(np.array(hsv))  # (n_hues + n_grays, 3)
    return pd.DataFrame(
        {
            "name": list(_HUE_NAMES[n_hues] + _GRAY_NAMES[n_grays]),
            "hsv": hsv,
            "rgb": [tuple(float(x) for x in row) for row in rgb],
        }
    )
