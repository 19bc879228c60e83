"""The kernel engine's scoring: every model's eval-mode errors on shared colours, compiled per model.

Scoring a finished population is not small: the loss cube (§9.4, 86,400 colours) under three
methods costs a third of a training per model, and on the torch path it took longer than the
kernel's training itself (`python benchmarks/train_engines.py`). Here each model runs in turn on
cache-sized runs of colours with the training kernel's own Linear (``excolor.kernel``) and a
cheaper GELU of the same accuracy (no derivative is needed), and the encoder runs once for all
methods: the baseline, ablations and latent maps differ only after the pre-norm latent ``z``.
Latent maps (interventions) stay torch callables, applied to the whole block of unit latents
between the two compiled halves.

The result is ``Population.color_errors``'s to float tolerance (same formulas, other rounding)
and, model by model, the same in any population and with any thread count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from numba import njit

from excolor.devices import on_threads
from excolor.kernel import _FM, _linear, _train_models, layer_offsets
from excolor.population import Population

__all__ = ["cached", "color_errors"]

_RUN = 256  # colours per pass through a model: its activations (hidden × 256 floats) stay in L1/L2

# NOTE(excolor): scoring needs GELU's Φ but not its derivative, so it skips the training kernel's
# erf (Abramowitz & Stegun 7.1.26, which needs an exp and a division) for an exp-free rational
# erf(a/√2) = a·P(a²)/Q(a²) on |a| ≤ 4√2 (beyond it Φ rounds to 0 or 1 in float32). The
# coefficients are this project's own least-squares fit, reweighted toward the minimax error. Its
# GELU is within 2.2e-7·max(1, |a|) of the exact one in float32, the A&S form's within 1.7e-7
# (tests/excolor_tests/test_kernel_forward.py); the loss cube scores ~25 % faster.
_ERF_EDGE = np.float32(4.0 * 2**0.5)
_P0, _P1, _P2, _P3, _P4, _P5 = (
    np.float32(c) for c in (7.978844e-01, 6.938272e-02, 9.451682e-03, 3.538553e-04, 1.272941e-05, 4.363818e-08)
)
_Q1, _Q2, _Q3, _Q4, _Q5 = (
    np.float32(c) for c in (2.536239e-01, 2.911858e-02, 1.930497e-03, 7.601867e-05, 1.171267e-06)
)


@njit(fastmath=_FM, error_model="numpy", cache=True)
def _gelu(a: np.float32) -> np.float32:
    """The exact GELU a·Φ(a) of an eval forward, Φ by the rational erf above."""
    c = min(max(a, -_ERF_EDGE), _ERF_EDGE)
    t = c * c
    p = ((((_P5 * t + _P4) * t + _P3) * t + _P2) * t + _P1) * t + _P0
    q = ((((_Q5 * t + _Q4) * t + _Q3) * t + _Q2) * t + _Q1) * t + np.float32(1.0)
    erf = min(c * p / q, np.float32(1.0))
    return a * (np.float32(0.5) * (np.float32(1.0) + erf))


@njit(fastmath=_FM, error_model="numpy", cache=True)
def _layers(
    row: np.ndarray, shapes: np.ndarray, offsets: np.ndarray, j0: int, j1: int, a: np.ndarray, out: np.ndarray, b: int
) -> None:
    """Linears j0..j1-1 of one model on the b colours in ``a`` (features × colours), a GELU after each
    but the last; the last one's output is left in ``out``. ``a`` is overwritten."""
    for j in range(j0, j1):
        n_out, n_in = shapes[j, 0], shapes[j, 1]
        _linear(row, offsets[j], n_out, n_in, a, out, b)
        if j < j1 - 1:
            for q in range(n_out):
                for i in range(b):
                    v = out[q, i]
                    a[q, i] = _gelu(v)


@njit(fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def _encode(
    lo: int, hi: int, flat: np.ndarray, shapes: np.ndarray, offsets: np.ndarray, x: np.ndarray, z: np.ndarray
) -> None:
    """z[s] (K, N) = the pre-norm latent of colours x (3, N) for models lo..hi-1."""
    n_enc = shapes.shape[0] // 2
    n = x.shape[1]
    a = np.empty((shapes.max(), _RUN), np.float32)  # activations, features × colours (widest layer)
    out = np.empty_like(a)
    for s in range(lo, hi):
        row = flat[s]
        for c0 in range(0, n, _RUN):
            b = min(_RUN, n - c0)
            for c in range(3):
                for i in range(b):
                    a[c, i] = x[c, c0 + i]
            _layers(row, shapes, offsets, 0, n_enc, a, out, b)
            for q in range(z.shape[1]):
                for i in range(b):
                    z[s, q, c0 + i] = out[q, i]


@njit(fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def _latent(z: np.ndarray, keep: np.ndarray, normalized: bool, c0: int, b: int, s: int, a: np.ndarray) -> None:
    """a[:, :b] = the latent of colours c0..c0+b-1 of model s: z with ablated coordinates zeroed
    (``keep`` 0), then scaled to unit norm for a normalised model, as ``Population.forward`` does."""
    k = z.shape[1]
    for q in range(k):
        for i in range(b):
            a[q, i] = z[s, q, c0 + i] * keep[q]
    if normalized:
        for i in range(b):
            acc = np.float32(0.0)
            for q in range(k):
                acc += a[q, i] * a[q, i]
            scale = np.float32(1.0) / max(np.float32(np.sqrt(acc)), np.float32(1e-12))
            for q in range(k):
                a[q, i] = a[q, i] * scale


@njit(fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def _unit_latents(lo: int, hi: int, z: np.ndarray, keep: np.ndarray, normalized: bool, h: np.ndarray) -> None:
    """h[s] (N, K): the latents ``_latent`` gives, for a latent map to act on (models lo..hi-1)."""
    k, n = z.shape[1], z.shape[2]
    a = np.empty((k, _RUN), np.float32)
    for s in range(lo, hi):
        for c0 in range(0, n, _RUN):
            b = min(_RUN, n - c0)
            _latent(z, keep, normalized, c0, b, s, a)
            for i in range(b):
                for q in range(k):
                    h[s, c0 + i, q] = a[q, i]


@njit(fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def _decode_errors(
    lo: int,
    hi: int,
    flat: np.ndarray,
    shapes: np.ndarray,
    offsets: np.ndarray,
    normalized: bool,
    latent: np.ndarray,
    from_z: bool,
    keep: np.ndarray,
    x: np.ndarray,
    mse: np.ndarray,
) -> None:
    """mse[s] (N,) = mean over channels of (clamp(decoder(h), 0, 1) − x)² for models lo..hi-1, where
    h is ``latent`` (S, N, K) itself or, ``from_z``, the latent ``_latent`` makes of ``latent`` (S, K, N)."""
    n_lin = shapes.shape[0]
    n_enc = n_lin // 2
    n = x.shape[1]
    k = latent.shape[1] if from_z else latent.shape[2]
    a = np.empty((shapes.max(), _RUN), np.float32)  # activations, features × colours (widest layer)
    out = np.empty_like(a)
    for s in range(lo, hi):
        row = flat[s]
        for c0 in range(0, n, _RUN):
            b = min(_RUN, n - c0)
            if from_z:
                _latent(latent, keep, normalized, c0, b, s, a)
            else:
                for i in range(b):
                    for q in range(k):
                        a[q, i] = latent[s, c0 + i, q]
            _layers(row, shapes, offsets, n_enc, n_lin, a, out, b)
            for i in range(b):
                acc = np.float32(0.0)
                for c in range(3):
                    v = out[c, i]
                    if not normalized:
                        v = np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
                    v = min(max(v, np.float32(0.0)), np.float32(1.0))
                    e = v - x[c, c0 + i]
                    acc += e * e
                mse[s, c0 + i] = acc / np.float32(3.0)


def color_errors(
    population: Population,
    x: torch.Tensor,
    methods: Sequence[tuple[Sequence[int], Callable[[torch.Tensor], torch.Tensor] | None]],
    *,
    max_values: int = 1 << 21,
    threads: int | None = None,
) -> list[torch.Tensor]:
    """Per-colour MSE (S, N) of every model on colours ``x`` (N, 3), one tensor per method.

    A method is ``(ablate, latent_map)`` as in ``Population.forward``: ``ablate`` zeroes pre-norm
    latent coordinates before the normalisation, ``latent_map`` replaces the unit latent. Models go
    through in blocks of about ``max_values`` (model, colour) pairs, which bounds memory.
    """
    if population.flat.device.type != "cpu":
        raise ValueError(f"the kernel scores populations on the CPU, not {population.flat.device}")
    threads = torch.get_num_threads() if threads is None else threads
    shapes = np.asarray(population.shapes, dtype=np.int64)
    offsets = layer_offsets(shapes)
    flat = population.flat.detach().numpy()
    xs = np.ascontiguousarray(x.detach().cpu().numpy().T, dtype=np.float32)  # (3, N)
    s, n, k = population.size, xs.shape[1], population.k_bottleneck
    outs = [torch.empty(s, n, dtype=torch.float32) for _ in methods]
    block = max(1, max_values // max(1, n))
    for start in range(0, s, block):
        stop = min(s, start + block)
        part = np.ascontiguousarray(flat[start:stop])
        z = np.empty((stop - start, k, n), np.float32)
        on_threads(_encode, stop - start, threads, part, shapes, offsets, xs, z)
        for out, (ablate, latent_map) in zip(outs, methods):
            keep = np.ones(k, np.float32)
            keep[list(ablate)] = 0.0
            latent, from_z = z, True
            if latent_map is not None:
                h = np.empty((stop - start, n, k), np.float32)
                on_threads(_unit_latents, stop - start, threads, z, keep, population.normalized, h)
                mapped = latent_map(torch.from_numpy(h))  # (s', N, K)
                latent, from_z = np.ascontiguousarray(mapped.numpy(), dtype=np.float32), False
            mse = out[start:stop].numpy()
            on_threads(_decode_errors, stop - start, threads, part, shapes, offsets, population.normalized, latent,
                   from_z, keep, xs, mse)  # fmt: skip
    return outs


def cached() -> bool:
    """Whether this machine holds the kernel engine's compiled code (training and scoring) for the
    current source. False means the first use compiles (about a minute on 2 cores); callers say so,
    since nothing else moves meanwhile. Reads Numba's cache index; False when it cannot tell."""
    functions = [_train_models, _encode, _decode_errors, _unit_latents]
    try:
        return all(bool(f._cache._cache_file._load_index()) for f in functions)  # type: ignore[attr-defined]
    except Exception:  # Numba's cache internals moved, or the cache is unreadable: assume a compile
        return False
