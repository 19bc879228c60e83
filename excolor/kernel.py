"""A fused per-model CPU training kernel: each model's whole step in registers and L1 cache.

The torch trainer (``excolor.train``) runs one batched op per layer and per term over the whole
population; at these sizes (3→16→16→5→16→16→3, batch 64) the ops are too small to reach the
machine's arithmetic rate and their dispatch costs as much again (architecture.md). This module
runs, for each model in turn (threads share the models), a chunk of optimizer steps
(forward, every training regularizer, backward, divergence guard and Adam) inside one compiled
function. Python steps in between chunks for validation, exactly as the torch trainer does.

Science (§4–§6) is the torch trainer's, step for step: the same batches (drawn by the same
stream, in Python, one chunk at a time), the same label-affine reduction, the same Adam rule in
float32. Only rounding differs (summation order, fused multiply-adds), which is why the kernel is
tested against the torch trainer and the plain autograd loop to float tolerance, not bitwise.
Every model's arithmetic depends on its own data only, so a model trains bitwise alike alone, in
any population and with any thread count.

Letters in shape comments: S models, T steps in a chunk, B batch, P parameters per model,
R training regularizers, L labels, K latent width, F widest layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from excolor.config import Experiment
from excolor.data import (
    _CHANNEL_MUL,
    _INDEX_STREAM,
    _LABEL_STREAM,
    _MUL1,
    _MUL2,
    _SLOT_MUL,
    _STEP_MUL,
    HashSampler,
)
from excolor.devices import on_threads
from excolor.regularizers import (
    Anchor,
    AngularAnchor,
    AntiAnchor,
    AxisAlignedSubspace,
    RegularizerConfig,
    Separate,
    Unitarity,
)

__all__ = [
    "KERNEL_TERMS",
    "KernelPlan",
    "KernelRunner",
    "hash_keys",
    "kernel_plan",
    "layer_offsets",
    "train_chunk",
    "unsupported",
]

# Term codes of the kernel (one branch each in ``_term``).
_ANCHOR, _ANGULAR, _ANTI_HEMI, _ANTI_FULL, _SEPARATE, _SUBSPACE, _UNITARITY = range(7)

KERNEL_TERMS = ("Anchor", "AngularAnchor", "AntiAnchor", "AxisAlignedSubspace", "Planarity", "Separate", "Unitarity")
"""Regularizer classes the kernel computes; an experiment with any other term trains on the torch path."""

# NOTE(excolor): 'contract' lets LLVM fuse a*b + c into one FMA (rounding changes, never the
# science); no reassociation, no NaN/inf assumptions, so the divergence guard sees what torch sees.
# error_model='numpy': x/0 is inf or NaN, as in torch (Python's model would raise, and its checks
# keep LLVM from vectorizing any loop with a division).
_FM = {"contract"}
_jit = njit(fastmath=_FM, error_model="numpy", cache=True)
_UNIT_EPS = np.float32(1e-8)


@intrinsic
def _f32_from_bits(typingctx: object, bits: types.Integer) -> tuple[Any, Any]:
    """The float32 whose bit pattern is the int32 ``bits`` (to build 2^n in ``_exp_neg``)."""

    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list[ir.Value]) -> ir.Value:
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@dataclass(frozen=True)
class KernelPlan:
    """The experiment's training regularizers as arrays the kernel reads (R rows)."""

    kind: np.ndarray  # (R,) int64 term code
    layer: np.ndarray  # (R,) int64: 0 the pre-norm latent z ('encoder'), 1 the unit latent h ('bottleneck')
    vector: np.ndarray  # (R, K) float32: anchor point, unit direction or penalised-feature mask
    channels: np.ndarray  # (R, K) int64: Separate's channels (first n_channels used)
    n_channels: np.ndarray  # (R,) int64
    power: np.ndarray  # (R,) float64: Separate's p
    shift: np.ndarray  # (R,) bool: Separate's (1 + cos)/2
    floor: np.ndarray  # (R,) float32: Separate drops C below this (C^p under 1e-36)
    close: np.ndarray  # (R,) float32: Separate masks C above this (isclose(C, 1))
    affinity: np.ndarray  # (R, L) float32 label strengths
    has_affinity: np.ndarray  # (R,) bool: False = plain batch mean


def unsupported(experiment: Experiment) -> list[str]:
    """Why the kernel cannot train this experiment (empty when it can): terms it does not compute."""
    return [
        f"regularizer {r.name!r} ({type(r.term).__name__})"
        for r in experiment.regularizers
        if r.trains and _code(r) is None
    ]


def _code(reg: RegularizerConfig) -> int | None:
    term = reg.term
    kind = type(term)
    if kind is Anchor:
        return _ANCHOR
    if kind is AngularAnchor:
        return _ANGULAR
    if kind is AntiAnchor:
        return _ANTI_HEMI if getattr(term, "hemi", True) else _ANTI_FULL
    if kind is Separate:
        return _SEPARATE
    if isinstance(term, AxisAlignedSubspace) and type(term).vjp is AxisAlignedSubspace.vjp:
        return _SUBSPACE  # Planarity too
    if kind is Unitarity:
        return _UNITARITY
    return None


def kernel_plan(experiment: Experiment, k: int) -> KernelPlan:
    """Arrays for the kernel from the experiment's training regularizers (latent width ``k``)."""
    regs = [r for r in experiment.regularizers if r.trains]
    labels = list(experiment.data.labels)
    n = len(regs)
    plan = KernelPlan(
        kind=np.zeros(n, np.int64),
        layer=np.zeros(n, np.int64),
        vector=np.zeros((n, k), np.float32),
        channels=np.zeros((n, k), np.int64),
        n_channels=np.zeros(n, np.int64),
        power=np.ones(n, np.float64),
        shift=np.zeros(n, np.bool_),
        floor=np.zeros(n, np.float32),
        close=np.zeros(n, np.float32),
        affinity=np.zeros((n, max(1, len(labels))), np.float32),
        has_affinity=np.zeros(n, np.bool_),
    )
    for r, reg in enumerate(regs):
        code = _code(reg)
        if code is None:
            raise ValueError(f"the kernel does not compute regularizer {reg.name!r} ({type(reg.term).__name__})")
        term = reg.term
        plan.kind[r] = code
        plan.layer[r] = 0 if reg.layer == "encoder" else 1
        if code == _ANCHOR:
            plan.vector[r] = _fit(term.point.numpy(), k)  # type: ignore[attr-defined]
        elif code in (_ANGULAR, _ANTI_HEMI, _ANTI_FULL):
            plan.vector[r] = _fit(term.direction.numpy(), k)  # type: ignore[attr-defined]
        elif code == _SUBSPACE:
            assert isinstance(term, AxisAlignedSubspace)
            inside = np.zeros(k, np.bool_)
            inside[[d for d in term.dims if d < k]] = True
            plan.vector[r] = (inside if term.invert else ~inside).astype(np.float32)
        elif code == _SEPARATE:
            assert isinstance(term, Separate)
            ch = list(range(k)) if term.channels is None else list(term.channels)
            plan.channels[r, : len(ch)] = ch
            plan.n_channels[r] = len(ch)
            plan.power[r] = term.power
            plan.shift[r] = term.shift
            # The very thresholds Separate.forward compares float32 entries with (§12.5).
            threshold = 1.0 - (1e-8 + 1e-5) / 2 if term.shift else 1.0 - (1e-8 + 1e-5)
            plan.floor[r] = np.float32(1e-36 ** (1.0 / term.power))
            plan.close[r] = np.float32(math.nextafter(threshold, -math.inf))
        if reg.label_affinities is not None:
            plan.has_affinity[r] = True
            for name, strength in reg.label_affinities.items():
                plan.affinity[r, labels.index(name)] = strength
    return plan


def _fit(v: np.ndarray, k: int) -> np.ndarray:
    if len(v) != k:
        raise ValueError(f"concept vector of length {len(v)} for a {k}-D latent")
    return v.astype(np.float32)


# ------------------------------------------------------------------------------------- numerics


# NOTE(excolor): libm's erff/expf are scalar calls; these branch-free forms vectorize (~3x faster
# GELUs here). _erf is ATen's own vectorized float erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7),
# so the kernel's GELU follows torch's to rounding; _exp_neg is Cephes' expf (about 1 ulp).
@_jit
def _exp_neg(x: np.float32) -> np.float32:
    """e^x for x <= 0 (0 below -87, where float32 leaves its normal range)."""
    xc = x if x > np.float32(-87.0) else np.float32(-87.0)
    n = (xc * np.float32(1.44269504088896341) + np.float32(12582912.0)) - np.float32(12582912.0)  # round(x/ln 2)
    r = xc - n * np.float32(0.693359375)
    r = r - n * np.float32(-2.12194440e-4)
    y = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
    y = y * r + np.float32(8.3334519073e-3)
    y = y * r + np.float32(4.1665795894e-2)
    y = y * r + np.float32(1.6666665459e-1)
    y = y * r + np.float32(5.0000001201e-1)
    y = y * (r * r) + r + np.float32(1.0)
    scale: np.float32 = _f32_from_bits((np.int32(n) + np.int32(127)) * np.int32(1 << 23))  # type: ignore[call-arg]
    return y * scale if x > np.float32(-87.0) else np.float32(0.0)


@_jit
def _erf(x: np.float32) -> np.float32:
    a = x if x >= np.float32(0.0) else -x
    t = np.float32(1.0) / (np.float32(0.3275911) * a + np.float32(1.0))
    r = np.float32(1.061405429) * t + np.float32(-1.453152027)
    r = r * t + np.float32(1.421413741)
    r = r * t + np.float32(-0.284496736)
    r = r * t + np.float32(0.254829592)
    v = np.float32(1.0) - r * t * _exp_neg(-(x * x))
    return v if x >= np.float32(0.0) else -v


@_jit
def _gelu_parts(a: np.float32) -> tuple[np.float32, np.float32]:
    """(Φ(a), φ(a)) of the exact GELU a·Φ(a), in float32 as ATen computes them."""
    cdf = np.float32(0.5) * (np.float32(1.0) + _erf(a * np.float32(0.7071067811865476)))
    pdf = _exp_neg(np.float32(-0.5) * a * a) * np.float32(0.3989422804014327)
    return cdf, pdf


@njit(fastmath={"contract", "reassoc"}, error_model="numpy", cache=True)
def _dot(a: np.ndarray, b: np.ndarray) -> np.float32:
    """Σ a_i b_i over two (B,) rows. NOTE(excolor): reassociation lets LLVM sum in SIMD lanes
    (measured ~14x faster for the weight gradients); the order is fixed by the code, so a model's
    result is still the same in any population and with any thread count."""
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@njit(fastmath={"contract", "reassoc"}, error_model="numpy", cache=True)
def _sum(a: np.ndarray) -> np.float32:
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc += a[i]
    return acc


@_jit
def _row_pow(base: np.ndarray, out: np.ndarray, k: int) -> None:
    """out = base^k elementwise, by binary exponentiation in the order ``Separate._pow`` multiplies;
    ``base`` (B,) is overwritten. One vectorized pass per squaring or product."""
    if k == 0:
        out[:] = np.float32(1.0)
        return
    first = True
    while k:
        if k & 1:
            if first:
                out[:] = base
                first = False
            else:
                for j in range(out.shape[0]):
                    out[j] = out[j] * base[j]
        k >>= 1
        if k:
            for j in range(base.shape[0]):
                base[j] = base[j] * base[j]


@_jit
def _unit_vjp(
    a: np.ndarray, n: np.ndarray, de: np.ndarray, out: np.ndarray, chan: np.ndarray, n_ch: int, b: int
) -> None:
    """out[chan] += gradient w.r.t. a[chan] of ⟨de, a/(‖a‖ + 1e-8)⟩ (``regularizers._unit_vjp``).

    a, out (K, B); de (n_ch, B); n (B,) the norm of a[chan]."""
    for i in range(b):
        d = n[i] + _UNIT_EPS
        radial = np.float32(0.0)
        for q in range(n_ch):
            radial += a[chan[q], i] * de[q, i]
        radial = radial / (n[i] * d * d) if n[i] > 0 else np.float32(0.0)
        for q in range(n_ch):
            out[chan[q], i] += de[q, i] / d - radial * a[chan[q], i]


# Separate's power chain runs in registers for integer exponents p - 1 below 2^8 (every preset's:
# 99 and 9); other exponents take the general row below.
_FUSED_POWER_BITS = 8


@njit(fastmath=_FM, error_model="numpy", inline="always")
def _kept_cosine(dot: np.float32, shift: bool, floor: np.float32, close_at: np.float32) -> tuple[np.float32, bool]:
    """(C as Separate keeps it, whether it is masked) for one cosine: (1 + cos)/2 with ``shift``, 0
    below the floor (C^p under 1e-36), and masked (0, counted apart) where isclose(C, 1): self-pairs
    and duplicates."""
    if shift:
        c = np.float32(0.5) + np.float32(0.5) * dot
        c_low = c if c > floor else np.float32(0.0)
    else:
        c = dot
        c_low = c if (c if c >= 0 else -c) >= floor else np.float32(0.0)
    masked = bool(c_low > close_at)
    return (np.float32(0.0) if masked else c_low), masked


@_jit
def _separate_row(
    dot: np.ndarray,
    bl: np.ndarray,
    ps: np.ndarray,
    count: np.ndarray,
    shift: bool,
    floor: np.float32,
    close_at: np.float32,
    k: int,
) -> None:
    """One row of Separate's forward from the cosines ``dot`` (B,): the masked C into the power
    chain, C^k into ``bl``, ps += C^k·C and the masked count, in one vectorized pass.

    NOTE(excolor): the general row makes ~13 passes over the row (mask, then one per squaring or
    product); here each element's chain stays in registers (training ~13 % faster, measured in
    one process against the general row). The products are ``_row_pow``'s, in its order: a bit of
    k that is 0 multiplies by exactly 1, so the results are bitwise the general row's."""
    for j in range(dot.shape[0]):
        kept, masked = _kept_cosine(dot[j], shift, floor, close_at)
        count[j] += np.float32(1.0) if masked else np.float32(0.0)
        power = np.float32(1.0)
        base = kept  # |C| <= 1: its squares cannot overflow
        for bit in range(_FUSED_POWER_BITS):
            power = power * (base if (k >> bit) & 1 else np.float32(1.0))
            base = base * base
        bl[j] = power
        ps[j] += power * kept  # row sums, by symmetry


@_jit
def _separate_row_general(
    dot: np.ndarray,
    kept: np.ndarray,
    bl: np.ndarray,
    ps: np.ndarray,
    count: np.ndarray,
    shift: bool,
    floor: np.float32,
    close_at: np.float32,
    p1: float,
) -> None:
    """``_separate_row`` for any exponent p1 (``dot`` is overwritten; ``kept`` (B,) is scratch)."""
    b = dot.shape[0]
    for j in range(b):
        kept[j], masked = _kept_cosine(dot[j], shift, floor, close_at)
        count[j] += np.float32(1.0) if masked else np.float32(0.0)
    if p1 == int(p1):
        dot[:] = kept  # the power chain's base (dot is free now)
        _row_pow(dot, bl, int(p1))
    else:
        for j in range(b):
            bl[j] = np.float32(max(kept[j], np.float32(0.0)) ** p1)
    for j in range(b):
        ps[j] += bl[j] * kept[j]  # row sums, by symmetry


@_jit
def _separate(
    a: np.ndarray,
    g: np.ndarray,
    out: np.ndarray,
    ps: np.ndarray,
    chan: np.ndarray,
    n_ch: int,
    power: float,
    shift: bool,
    floor: np.float32,
    close_at: np.float32,
    e: np.ndarray,
    n: np.ndarray,
    below: np.ndarray,
    both: np.ndarray,
    rows: np.ndarray,
    grad_only: bool,
) -> None:
    """Separate (§4.2, §12.5): per-sample loss into ps (B,) or, with ``grad_only``, its gradient
    for per-sample weights g (B,) added into out (K, B). The masking and power chain are
    ``Separate.forward``'s; C is symmetric, so row i of C^(p-1) serves as column i and every
    inner loop runs over samples j (vectorized). below (B, B) keeps C^(p-1) for the backward;
    rows (4, B) is scratch."""
    b = a.shape[1]
    if not grad_only:
        for i in range(b):
            s2 = np.float32(0.0)
            for q in range(n_ch):
                v = a[chan[q], i]
                s2 += v * v
            n[i] = np.float32(math.sqrt(s2))
        for q in range(n_ch):
            for i in range(b):
                e[q, i] = a[chan[q], i] / (n[i] + _UNIT_EPS)
        p1 = power - 1.0
        integer = p1 == int(p1)
        constant = np.float32((0.5 if shift else 0.0) ** power)
        dot, kept, count = rows[0], rows[1], rows[2]
        ps[:] = np.float32(0.0)
        count[:] = np.float32(0.0)
        fused = integer and 0 <= p1 < 1 << _FUSED_POWER_BITS
        for i in range(b):
            dot[:] = np.float32(0.0)
            for q in range(n_ch):
                eqi = e[q, i]
                for j in range(b):
                    dot[j] += eqi * e[q, j]  # (B,) row i of cos
            if fused:
                _separate_row(dot, below[i], ps, count, shift, floor, close_at, int(p1))
            else:
                _separate_row_general(dot, kept, below[i], ps, count, shift, floor, close_at, p1)
        for j in range(b):
            ps[j] += count[j] * constant
        return
    # backward: de_k = p s [g_k (C^(p-1) e)_k + (C^(p-1) (g e))_k], s = 1/2 with shift
    scale = np.float32(power / 2.0 if shift else power)
    both[: 2 * n_ch] = np.float32(0.0)
    for i in range(b):
        bl = below[i]
        for q in range(n_ch):
            ei = e[q, i]
            gei = g[i] * ei
            for j in range(b):
                both[q, j] += bl[j] * ei
                both[n_ch + q, j] += bl[j] * gei
    for q in range(n_ch):
        for j in range(b):
            both[q, j] = (g[j] * both[q, j] + both[n_ch + q, j]) * scale  # de, in the first rows
    _unit_vjp(a, n, both, out, chan, n_ch, b)


@_jit
def _term(
    code: int,
    a: np.ndarray,
    vec: np.ndarray,
    ps: np.ndarray,
    b: int,
    k: int,
) -> None:
    """Per-sample loss ps (B,) of a non-Separate term on activations a (K, B)."""
    for i in range(b):
        if code == _ANCHOR:
            acc = np.float32(0.0)
            for q in range(k):
                d = a[q, i] - vec[q]
                acc += d * d
            ps[i] = acc
        elif code == _SUBSPACE:
            acc = np.float32(0.0)
            for q in range(k):
                m = a[q, i] * vec[q]
                acc += m * m
            ps[i] = acc
        elif code == _UNITARITY:
            acc = np.float32(0.0)
            for q in range(k):
                acc += a[q, i] * a[q, i]
            d = np.float32(math.sqrt(acc)) - np.float32(1.0)
            ps[i] = d * d
        else:  # angular, anti-anchor: cosine to a unit direction
            acc = np.float32(0.0)
            for q in range(k):
                acc += a[q, i] * a[q, i]
            n = np.float32(math.sqrt(acc))
            c = np.float32(0.0)
            for q in range(k):
                c += a[q, i] / (n + _UNIT_EPS) * vec[q]
            if code == _ANGULAR:
                ps[i] = np.float32(1.0) - c
            elif code == _ANTI_HEMI:
                ps[i] = max(c, np.float32(0.0))
            else:
                ps[i] = (c + np.float32(1.0)) / np.float32(2.0)


@_jit
def _term_vjp(
    code: int,
    a: np.ndarray,
    vec: np.ndarray,
    g: np.ndarray,
    out: np.ndarray,
    n: np.ndarray,
    de: np.ndarray,
    all_ch: np.ndarray,
    b: int,
    k: int,
) -> None:
    """out (K, B) += gradient of Σ_i g_i·loss_i w.r.t. a (K, B) for a non-Separate term."""
    if code == _ANCHOR or code == _SUBSPACE:  # noqa: SIM109 (a tuple test costs Numba more)
        for q in range(k):
            m = vec[q] if code == _SUBSPACE else np.float32(1.0)
            for i in range(b):
                diff = a[q, i] * m if code == _SUBSPACE else a[q, i] - vec[q]
                out[q, i] += np.float32(2.0) * diff * g[i]
        return
    for i in range(b):
        acc = np.float32(0.0)
        for q in range(k):
            acc += a[q, i] * a[q, i]
        n[i] = np.float32(math.sqrt(acc))
    if code == _UNITARITY:
        for i in range(b):
            scale = np.float32(2.0) * (n[i] - np.float32(1.0)) / n[i] if n[i] > 0 else np.float32(0.0)
            for q in range(k):
                out[q, i] += g[i] * scale * a[q, i]
        return
    for i in range(b):
        c = np.float32(0.0)
        if code != _ANGULAR:
            for q in range(k):
                c += a[q, i] / (n[i] + _UNIT_EPS) * vec[q]
        if code == _ANGULAR:
            dc = -g[i]
        elif code == _ANTI_HEMI:
            dc = g[i] if c >= 0 else np.float32(0.0)
        else:
            dc = g[i] / np.float32(2.0)
        for q in range(k):
            de[q, i] = dc * vec[q]
    _unit_vjp(a, n, de, out, all_ch, k, b)


# ------------------------------------------------------------------------------------- batches

_MASK32 = 0xFFFFFFFF


@njit(cache=True)
def _mix32(x: int) -> int:
    """``data._mix32`` on one value (int64 arithmetic wraps like torch's; the mask keeps 32 bits)."""
    x = x ^ (x >> 16)
    x = (x * _MUL1) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _MUL2) & _MASK32
    return x ^ (x >> 16)


@njit(cache=True)
def _hash_batch(
    keys: np.ndarray,
    s: int,
    step: int,
    colors: np.ndarray,
    cdf: np.ndarray,
    probs: np.ndarray,
    x: np.ndarray,
    lab: np.ndarray,
) -> None:
    """Model s's batch of ``step`` on the hash stream (``data.HashSampler.batch``), into x (3, B)
    and lab (L, B): keys (S, 1 + L) are its index key then one label key per label channel."""
    b = x.shape[1]
    n = colors.shape[0]
    n_labels = lab.shape[0]
    per_step = _mix32((keys[s, 0] + (step * _STEP_MUL & _MASK32)) & _MASK32)
    for i in range(b):
        bits = _mix32((per_step + i * _SLOT_MUL) & _MASK32)
        if cdf.shape[0] == 0:
            ci = (bits * n) >> 32
        else:  # inverse CDF of a 32-bit uniform; torch.searchsorted's left side
            u = (float(bits) + 0.5) * 2.0**-32
            ci = min(np.searchsorted(cdf, u), n - 1)
        for c in range(3):
            x[c, i] = colors[ci, c]
        for lab_i in range(n_labels):
            ls = _mix32((keys[s, 1 + lab_i] + (step * _STEP_MUL & _MASK32)) & _MASK32)
            ubits = _mix32((ls + i * _SLOT_MUL) & _MASK32) >> 8
            u32 = np.float32(ubits) * np.float32(2.0**-24)
            lab[lab_i, i] = np.float32(1.0) if u32 < probs[lab_i, ci] else np.float32(0.0)


def hash_keys(seeds: Sequence[int], n_labels: int) -> np.ndarray:
    """(S, 1 + L) int64 keys of the hash stream: each seed's index key, then its label keys."""
    out = np.empty((len(seeds), 1 + n_labels), np.int64)
    for m, seed in enumerate(seeds):
        index_key = _mix32_py(seed ^ _INDEX_STREAM)
        label_key = _mix32_py(seed ^ _LABEL_STREAM)
        out[m, 0] = index_key
        for channel in range(n_labels):
            out[m, 1 + channel] = (
                label_key if channel == 0 else _mix32_py(label_key ^ (channel * _CHANNEL_MUL & _MASK32))
            )
    return out


def _mix32_py(x: int) -> int:
    x = x ^ (x >> 16)
    x = (x * _MUL1) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _MUL2) & _MASK32
    return x ^ (x >> 16)


# ------------------------------------------------------------------------------------- one model


@_jit
def _linear(flat: np.ndarray, w_off: int, n_out: int, n_in: int, x: np.ndarray, out: np.ndarray, b: int) -> None:
    """out (n_out, B) = W x + bias for one model's row of parameters ``flat`` (P,)."""
    b_off = w_off + n_out * n_in
    for o in range(n_out):
        bias = flat[b_off + o]
        for i in range(b):
            out[o, i] = bias
        for c in range(n_in):
            w = flat[w_off + o * n_in + c]
            for i in range(b):
                out[o, i] += w * x[c, i]


@_jit
def _model_steps(
    s: int,
    flat: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    colors: np.ndarray,
    cdf: np.ndarray,
    probs: np.ndarray,
    keys: np.ndarray,
    given_x: np.ndarray,
    given_labels: np.ndarray,
    lr: np.ndarray,
    weights: np.ndarray,
    bias1: np.ndarray,
    bias2_sqrt: np.ndarray,
    step0: int,
    batch_size: int,
    shapes: np.ndarray,
    offsets: np.ndarray,
    normalized: bool,
    kind: np.ndarray,
    layer: np.ndarray,
    vector: np.ndarray,
    channels: np.ndarray,
    n_channels: np.ndarray,
    power: np.ndarray,
    shift: np.ndarray,
    floor: np.ndarray,
    close: np.ndarray,
    affinity: np.ndarray,
    has_affinity: np.ndarray,
    alive: np.ndarray,
    diverged_step: np.ndarray,
    label_counts: np.ndarray,
    max_recon: np.ndarray,
    last_terms: np.ndarray,
    last_recon: np.ndarray,
    last_loss: np.ndarray,
) -> None:
    """T optimizer steps of model s, in place on its parameters, moments and run statistics."""
    n_steps = lr.shape[0]
    b = batch_size
    hashed = given_x.shape[0] == 0
    n_lin = shapes.shape[0]
    n_enc = n_lin // 2
    n_regs = kind.shape[0]
    n_labels = probs.shape[0]
    p = flat.shape[1]
    k = shapes[n_enc - 1, 0]
    f = 3
    for j in range(n_lin):
        f = max(f, shapes[j, 0], shapes[j, 1])
    acts = np.empty((n_lin + 1, f, b), np.float32)  # acts[j]: input of Linear j; acts[n_lin]: output y
    pre = np.empty((n_lin, f, b), np.float32)  # pre-activation of Linear j (GELU layers, z)
    norm = np.empty(b, np.float32)
    d = np.empty((f, b), np.float32)
    d_in = np.empty((f, b), np.float32)
    dlat = np.zeros((2, k, b), np.float32)  # regularizer gradients on z and h
    ps = np.empty(b, np.float32)
    coef = np.empty(b, np.float32)
    g = np.empty(b, np.float32)
    n_tmp = np.empty(b, np.float32)
    e_tmp = np.empty((k, b), np.float32)
    below = np.empty((b, b), np.float32)
    both = np.empty((2 * k, b), np.float32)
    rows = np.empty((4, b), np.float32)
    gelu_cdf = np.empty((n_lin, f, b), np.float32)  # Φ and φ of each GELU layer's input, for the backward
    gelu_pdf = np.empty((n_lin, f, b), np.float32)
    all_ch = np.arange(k)
    grad = np.empty(p, np.float32)
    zeros = np.zeros(p, np.float32)
    lab = np.empty((max(1, n_labels), b), np.float32)
    row = flat[s]
    n_y = shapes[n_lin - 1, 0]
    for t in range(n_steps):
        step = step0 + t
        # 2. batch: colours (3, B) and labels (L, B) of this model's draw
        x = acts[0]
        if hashed:
            _hash_batch(keys, s, step, colors, cdf, probs, x, lab)
        else:
            for i in range(b):
                for c in range(3):
                    x[c, i] = given_x[t, s, i, c]
                for q in range(n_labels):
                    lab[q, i] = given_labels[t, q, s, i]
        # 3. forward (train mode: unclamped)
        for j in range(n_lin):
            n_out, n_in = shapes[j, 0], shapes[j, 1]
            _linear(row, offsets[j], n_out, n_in, acts[j], pre[j], b)
            if j == n_enc - 1:  # pre-norm latent z -> unit latent h
                for i in range(b):
                    acc = np.float32(0.0)
                    for q in range(n_out):
                        acc += pre[j, q, i] * pre[j, q, i]
                    norm[i] = np.float32(math.sqrt(acc))
                for q in range(n_out):
                    for i in range(b):
                        if normalized:
                            acts[j + 1, q, i] = pre[j, q, i] / max(norm[i], np.float32(1e-12))
                        else:
                            acts[j + 1, q, i] = pre[j, q, i]
            elif j == n_lin - 1:
                for q in range(n_out):
                    for i in range(b):
                        v = pre[j, q, i]
                        acts[j + 1, q, i] = v if normalized else np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
            else:
                for q in range(n_out):
                    for i in range(b):
                        v = pre[j, q, i]
                        phi, pdf = _gelu_parts(v)
                        gelu_cdf[j, q, i] = phi
                        gelu_pdf[j, q, i] = pdf
                        acts[j + 1, q, i] = v * phi
        y = acts[n_lin]
        for q in range(n_y):
            for i in range(b):
                d[q, i] = y[q, i] - x[q, i]  # error (3, B)
        err_sum = np.float32(0.0)
        for q in range(n_y):
            err_sum += _dot(d[q], d[q])
        recon = err_sum / np.float32(b * n_y)
        loss = recon
        # 4. regularizer terms, label-affine reduction (§4.3); a weight of exactly 0 skips a term
        dlat[:] = 0.0
        counted = False
        for r in range(n_regs):
            w = weights[t, s, r]
            if w == 0:
                continue
            a = pre[n_enc - 1] if layer[r] == 0 else acts[n_enc]
            if has_affinity[r]:
                total = np.float32(0.0)
                for i in range(b):
                    v = np.float32(0.0)
                    for q in range(n_labels):
                        v += lab[q, i] * affinity[r, q]
                    coef[i] = min(max(v, np.float32(0.0)), np.float32(1.0))
                    total += coef[i]
                for i in range(b):
                    coef[i] = coef[i] / (total + np.float32(1e-8))
                counted = True
            else:
                for i in range(b):
                    coef[i] = np.float32(1.0) / np.float32(b)
            if kind[r] == _SEPARATE:
                _separate(a, g, dlat[layer[r]], ps, channels[r], n_channels[r], power[r], shift[r],
                          floor[r], close[r], e_tmp, n_tmp, below, both, rows, False)  # fmt: skip
            else:
                _term(kind[r], a, vector[r], ps, b, k)
            term = _dot(coef, ps)
            for i in range(b):
                g[i] = coef[i] * w
            loss = loss + w * term
            last_terms[s, r] = term
            if kind[r] == _SEPARATE:
                _separate(a, g, dlat[layer[r]], ps, channels[r], n_channels[r], power[r], shift[r],
                          floor[r], close[r], e_tmp, n_tmp, below, both, rows, True)  # fmt: skip
            else:
                _term_vjp(kind[r], a, vector[r], g, dlat[layer[r]], n_tmp, e_tmp, all_ch, b, k)
        # 5. backward
        scale = np.float32(2.0) / np.float32(b * n_y)
        for q in range(n_y):
            for i in range(b):
                dy = (y[q, i] - x[q, i]) * scale
                d[q, i] = dy if normalized else dy * y[q, i] * (np.float32(1.0) - y[q, i])
        for j in range(n_lin - 1, -1, -1):
            n_out, n_in = shapes[j, 0], shapes[j, 1]
            w_off = offsets[j]
            b_off = w_off + n_out * n_in
            xin = acts[j]
            for o in range(n_out):
                grad[b_off + o] = _sum(d[o])
                for c in range(n_in):
                    grad[w_off + o * n_in + c] = _dot(d[o], xin[c])
            if j == 0:
                break
            for c in range(n_in):
                for i in range(b):
                    d_in[c, i] = np.float32(0.0)
            for o in range(n_out):
                for c in range(n_in):
                    w = row[w_off + o * n_in + c]
                    for i in range(b):
                        d_in[c, i] += w * d[o, i]
            if j == n_enc:  # decoder's first Linear reads the unit latent h
                h = acts[n_enc]
                for c in range(n_in):
                    for i in range(b):
                        d_in[c, i] += dlat[1, c, i]
                if normalized:  # L2Norm backward with the 1e-12 guard
                    for i in range(b):
                        radial = np.float32(0.0)
                        for c in range(n_in):
                            radial += h[c, i] * d_in[c, i]
                        nz = norm[i]
                        for c in range(n_in):
                            if nz > 1e-12:
                                d[c, i] = (d_in[c, i] - h[c, i] * radial) / nz
                            else:
                                d[c, i] = d_in[c, i] / np.float32(1e-12)
                else:
                    for c in range(n_in):
                        for i in range(b):
                            d[c, i] = d_in[c, i]
                for c in range(n_in):
                    for i in range(b):
                        d[c, i] += dlat[0, c, i]
            else:  # GELU backward: d_in · (Φ(a) + a φ(a))
                pa, phi, pdf = pre[j - 1], gelu_cdf[j - 1], gelu_pdf[j - 1]
                for c in range(n_in):
                    for i in range(b):
                        d[c, i] = d_in[c, i] * (phi[c, i] + pa[c, i] * pdf[c, i])
        # 6. divergence guard: a model whose loss or gradient is not finite is frozen
        ok = math.isfinite(loss) and _dot(grad, zeros) == 0  # 0·inf and 0·NaN are NaN
        live = alive[s] and ok
        if alive[s] and not ok:
            diverged_step[s] = step
        alive[s] = live
        # 7. Adam, PyTorch's update rule with a per-model lr
        step_size = np.float32(lr[t, s] / bias1[t]) if live else np.float32(0.0)
        b2 = np.float32(bias2_sqrt[t])
        for q in range(p):
            gq = grad[q] if live else np.float32(0.0)
            m1[s, q] = m1[s, q] + np.float32(0.1) * (gq - m1[s, q])
            m2[s, q] = m2[s, q] * np.float32(0.999) + np.float32(0.001) * gq * gq
            denom = np.float32(math.sqrt(m2[s, q])) / b2 + np.float32(1e-8)
            row[q] = row[q] - (m1[s, q] / denom) * step_size
        # bookkeeping, as the torch trainer keeps it
        if counted:
            for q in range(n_labels):
                tot = 0
                for i in range(b):
                    tot += int(lab[q, i])
                label_counts[q, s] += tot
        max_recon[s] = max(max_recon[s], float(recon) if live else 0.0)
        last_recon[s] = recon
        last_loss[s] = loss


@njit(fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def _train_models(
    lo: int,
    hi: int,
    flat: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    colors: np.ndarray,
    cdf: np.ndarray,
    probs: np.ndarray,
    keys: np.ndarray,
    given_x: np.ndarray,
    given_labels: np.ndarray,
    lr: np.ndarray,
    weights: np.ndarray,
    bias1: np.ndarray,
    bias2_sqrt: np.ndarray,
    step0: int,
    batch_size: int,
    shapes: np.ndarray,
    offsets: np.ndarray,
    normalized: bool,
    kind: np.ndarray,
    layer: np.ndarray,
    vector: np.ndarray,
    channels: np.ndarray,
    n_channels: np.ndarray,
    power: np.ndarray,
    shift: np.ndarray,
    floor: np.ndarray,
    close: np.ndarray,
    affinity: np.ndarray,
    has_affinity: np.ndarray,
    alive: np.ndarray,
    diverged_step: np.ndarray,
    label_counts: np.ndarray,
    max_recon: np.ndarray,
    last_terms: np.ndarray,
    last_recon: np.ndarray,
    last_loss: np.ndarray,
) -> None:
    """Models lo..hi-1, one after the other (a thread's share; the GIL is released)."""
    for s in range(lo, hi):
        _model_steps(s, flat, m1, m2, colors, cdf, probs, keys, given_x, given_labels, lr, weights, bias1,
                     bias2_sqrt, step0, batch_size, shapes, offsets, normalized, kind, layer, vector, channels,
                     n_channels, power, shift, floor, close, affinity, has_affinity, alive, diverged_step,
                     label_counts, max_recon, last_terms, last_recon, last_loss)  # fmt: skip


def layer_offsets(shapes: np.ndarray) -> np.ndarray:
    """Where each Linear's weight starts in a model's parameter row: (out, in) ``shapes`` -> (L,) int64."""
    offsets = np.zeros(len(shapes), np.int64)
    offsets[1:] = np.cumsum([o * i + o for o, i in shapes])[:-1]
    return offsets


def train_chunk(
    plan: KernelPlan,
    *,
    flat: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    colors: np.ndarray,
    cdf: np.ndarray,
    probs: np.ndarray,
    keys: np.ndarray,
    given_x: np.ndarray,
    given_labels: np.ndarray,
    lr: np.ndarray,
    weights: np.ndarray,
    bias1: np.ndarray,
    bias2_sqrt: np.ndarray,
    step0: int,
    batch_size: int,
    shapes: Sequence[tuple[int, int]],
    normalized: bool,
    alive: np.ndarray,
    diverged_step: np.ndarray,
    label_counts: np.ndarray,
    max_recon: np.ndarray,
    last_terms: np.ndarray,
    last_recon: np.ndarray,
    last_loss: np.ndarray,
    threads: int,
) -> None:
    """Train every model T steps, in place on all state arrays.

    Args:
        flat, exp_avg, exp_avg_sq: (S, P) float32 parameters and Adam moments.
        colors: (N, 3) float32 training colours; cdf (N,) float64 sampling CDF, or empty for uniform
            draws; probs (L, N) float32 label probabilities; keys (S, 1 + L) int64 hash-stream keys.
        given_x (T, S, B, 3), given_labels (T, L, S, B): float32 batches drawn in Python (the original
            stream); empty (0, ...) arrays to draw the hash stream inside the kernel.
        lr: (T, S) float64; weights (T, S, R) float32 regularizer weights of each step.
        bias1, bias2_sqrt: (T,) float64 Adam bias corrections of each step.
        step0: the optimizer step of the chunk's first step (recorded as the divergence step).
        alive (S,) bool, diverged_step (S,) int64, label_counts (L, S) int64, max_recon (S,)
        float64, last_terms (S, R), last_recon (S,), last_loss (S,) float32: run statistics.
        threads: threads, each training a contiguous share of the models (the GIL released).
    """
    shape_arr = np.asarray(shapes, dtype=np.int64)  # (2(N + 1), 2) (out, in)
    offsets = layer_offsets(shape_arr)
    args = (
        flat, exp_avg, exp_avg_sq, colors, cdf, probs, keys, given_x, given_labels, lr, weights, bias1, bias2_sqrt,
        step0, batch_size, shape_arr, offsets,
        normalized, plan.kind, plan.layer, plan.vector, plan.channels, plan.n_channels, plan.power, plan.shift,
        plan.floor, plan.close, plan.affinity, plan.has_affinity, alive, diverged_step, label_counts, max_recon,
        last_terms, last_recon, last_loss,
    )  # fmt: skip
    on_threads(_train_models, flat.shape[0], threads, *args)


# ------------------------------------------------------------------------------------- the trainer's side


class KernelRunner:
    """Runs a ``PopulationTrainer``'s optimizer steps with the kernel, on the trainer's own state.

    Parameters, moments, ``alive``, ``diverged_step`` and ``max_train_recon`` are updated in place
    through numpy views of the trainer's CPU tensors; label counts and the last training terms are
    copied in and out around each call, so checkpoints and metrics are the torch engine's.
    """

    # Steps per kernel call when the batches are drawn in Python (original stream): bounds memory.
    _MAX_GIVEN = 1 << 16  # steps × models

    def __init__(self, trainer: Any) -> None:  # an excolor.train.PopulationTrainer (train imports this module)
        self.trainer = trainer
        pop = trainer.population
        self.plan = kernel_plan(trainer.experiment, pop.k_bottleneck)
        self.shapes = list(pop.shapes)
        self.normalized = pop.normalized
        ts = trainer.train_set
        self.colors = np.ascontiguousarray(ts.colors.numpy(), dtype=np.float32)  # (N, 3)
        self.probs = np.ascontiguousarray(
            np.stack([ts.labels[k].numpy() for k in trainer.label_names]).reshape(len(trainer.label_names), -1),
            dtype=np.float32,
        )  # (L, N)
        sampler = trainer.batches
        self.hashed = isinstance(sampler, HashSampler) and ts.stochastic
        cdf = getattr(sampler, "_cdf", None)
        self.cdf = np.zeros(0, np.float64) if cdf is None else np.ascontiguousarray(cdf.numpy(), dtype=np.float64)
        seeds = trainer.seeds * 2 if trainer.n_models == 1 else trainer.seeds
        self.keys = hash_keys(seeds, len(trainer.label_names))  # (S, 1 + L)
        self.columns = [1 + trainer.train_index[r.name] for r in trainer.train_regs]  # in the schedule table

    def steps(self, n: int) -> None:
        """Train ``n`` optimizer steps of every model (no validation inside)."""
        tr = self.trainer
        s = tr.population.size
        chunk = n if self.hashed else max(1, min(n, self._MAX_GIVEN // s))
        done = 0
        while done < n:
            self._call(min(chunk, n - done))
            done += min(chunk, n - done)

    def _call(self, n: int) -> None:
        tr = self.trainer
        b0 = tr.step
        s = tr.population.size
        n_labels = len(tr.label_names)
        rows = np.minimum(np.arange(b0, b0 + n), tr.length - 2)
        values = tr.schedule[torch.as_tensor(rows)][:, tr.sheet_index].numpy()  # (T, S, 1 + R) float64
        lr = np.ascontiguousarray(values[..., 0])  # (T, S)
        weights = np.ascontiguousarray(values[..., self.columns], dtype=np.float32)  # (T, S, R)
        if self.hashed:
            given_x = np.zeros((0, 1, 1, 3), np.float32)
            given_labels = np.zeros((0, 1, 1, 1), np.float32)
        else:
            draws = [tr.batches.batch(tr.train_set, b) for b in range(b0, b0 + n)]
            given_x = np.ascontiguousarray(torch.stack([x for x, _ in draws]).numpy())  # (T, S, B, 3)
            given_labels = np.zeros((n, n_labels, s, tr.experiment.batch_size), np.float32)  # (T, L, S, B)
            for t, (_, labels) in enumerate(draws):
                for q, name in enumerate(tr.label_names):
                    given_labels[t, q] = labels[name].numpy()
        label_counts = np.zeros((n_labels, s), np.int64)
        for q, name in enumerate(tr.label_names):
            label_counts[q] = tr.label_counts[name].numpy()
        names = [f"train_{r.name}" for r in tr.train_regs]
        last_terms = np.full((s, len(names)), math.nan, np.float32)  # (S, R)
        for r, key in enumerate(names):
            if key in tr.last_train:
                last_terms[:, r] = tr.last_train[key].numpy()
        last_recon = np.full(s, math.nan, np.float32)
        last_loss = np.full(s, math.nan, np.float32)
        train_chunk(
            self.plan,
            flat=tr.population.flat.numpy(),
            exp_avg=tr.exp_avg.numpy(),
            exp_avg_sq=tr.exp_avg_sq.numpy(),
            colors=self.colors,
            cdf=self.cdf,
            probs=self.probs,
            keys=self.keys,
            given_x=given_x,
            given_labels=given_labels,
            lr=lr,
            weights=weights,
            bias1=tr.bias1[b0 : b0 + n].numpy(),
            bias2_sqrt=tr.bias2_sqrt[b0 : b0 + n].numpy(),
            step0=b0,
            batch_size=tr.experiment.batch_size,
            shapes=self.shapes,
            normalized=self.normalized,
            alive=tr.alive.numpy(),
            diverged_step=tr.diverged_step.numpy(),
            label_counts=label_counts,
            max_recon=tr.max_train_recon.numpy(),
            last_terms=last_terms,
            last_recon=last_recon,
            last_loss=last_loss,
            threads=torch.get_num_threads(),
        )
        for q, name in enumerate(tr.label_names):
            tr.label_counts[name] = torch.from_numpy(label_counts[q])
        ran = np.asarray(np.asarray([tr.active[row] for row in rows]).any(axis=0))  # terms any model computed
        for r, key in enumerate(names):
            if ran[self.columns[r] - 1] or key in tr.last_train:
                tr.last_train[key] = torch.from_numpy(last_terms[:, r].copy())
        tr.last_train["train_recon"] = torch.from_numpy(last_recon)
        tr.last_train["train_loss"] = torch.from_numpy(last_loss)
        tr.step = b0 + n
