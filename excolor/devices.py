"""Where a population trains, and how much arithmetic one model-training is (issue #7).

``resolve_device`` turns a ``--device`` value into a ``torch.device`` up front, so that asking for
a GPU that torch cannot see fails with one sentence instead of a CUDA error deep inside the trainer.
``training_flops`` counts the FP32 arithmetic of one model-training, so that a measured rate can be
put beside a GPU's FLOP bound (``benchmarks/gpu_speed.py``). ``on_threads`` shares a population's
models among CPU threads (the kernel engine's training and scoring, the loss-cube statistics).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from excolor.model import layer_shapes

__all__ = [
    "CPU_POPULATION",
    "DEVICES",
    "DEVICES_HELP",
    "model_bytes",
    "on_threads",
    "population_size",
    "resolve_device",
    "training_flops",
]

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
"""Device values ``resolve_device`` accepts (N is a GPU index as torch numbers them)."""

DEVICES_HELP = (
    "where to train: auto (a CUDA GPU if torch sees one, else the CPU), cpu, cuda (the current GPU) "
    "or cuda:N (GPU N as torch numbers them, after CUDA_VISIBLE_DEVICES)"
)
"""``--device`` help text for command lines."""

_CUDA_INDEX = re.compile(r"cuda:(\d+)")
_ADAM_FLOPS_PER_PARAM = 10  # lerp, mul + addcmul, sqrt, divide, add eps, divide, scale, subtract


CPU_POPULATION = 256
"""Models per population on the CPU: larger gains nothing there (benchmarks/speed.py)."""

_MAX_POPULATION = 65536


def model_bytes(k_bottleneck: int, hidden: int, n_nonlinear: int, *, batch_size: int = 64, n_val: int = 351) -> int:
    """Peak device memory one model of a population needs, estimated with a safety factor of 2.

    Parameters, gradients and Adam moments (4 · P floats); one training step's activations and their
    gradients (≈ 6 per hidden unit per colour); the Separate term's B × B similarity chain (≈ 6 tensors);
    a validation forward over ``n_val`` colours (≈ 4 per hidden unit per colour).

    >>> model_bytes(5, 16, 2)
    1367808
    """
    params = sum(o * i + o for o, i in layer_shapes(k_bottleneck, hidden, n_nonlinear))
    units = 2 * n_nonlinear * hidden + 2 * k_bottleneck + 6  # activations per colour
    floats = 4 * params + batch_size * 6 * units + 6 * batch_size**2 + n_val * 4 * units
    return 2 * 4 * floats


def population_size(
    n_models: int,
    device: torch.device,
    *,
    k_bottleneck: int,
    hidden: int,
    n_nonlinear: int,
    batch_size: int = 64,
    free_bytes: int | None = None,
) -> int:
    """How many of ``n_models`` to train at once on ``device``.

    CPU: ``CPU_POPULATION``. GPU: all of them if they fit in half the free memory (``free_bytes``,
    default ``torch.cuda.mem_get_info``), else as many as fit, at most 65,536 and at least 2.
    """
    if device.type != "cuda":
        return max(1, min(n_models, CPU_POPULATION))
    if free_bytes is None:
        free_bytes = int(torch.cuda.mem_get_info(device)[0])
    fit = (free_bytes // 2) // model_bytes(k_bottleneck, hidden, n_nonlinear, batch_size=batch_size)
    return max(1, min(n_models, _MAX_POPULATION, max(2, int(fit))))


def _torch_build() -> str:
    """The torch build in words, for error messages: a CPU-only wheel explains a missing GPU."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__}, a CPU-only build"
    return f"torch {torch.__version__} built for CUDA {torch.version.cuda}"


def resolve_device(spec: str | torch.device) -> torch.device:
    """The torch device for ``spec`` ('auto', 'cpu', 'cuda', 'cuda:N' or a ``torch.device``).

    'auto' is the current CUDA GPU when torch sees one and the CPU otherwise. A GPU that torch cannot
    see, or any other value, raises ``ValueError`` naming the value and the allowed ones.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(spec, torch.device):
        if spec.type == "cpu":
            return torch.device("cpu")
        if spec.type != "cuda":
            raise ValueError(f"device {str(spec)!r} is not supported; use one of {', '.join(DEVICES)}")
        text = str(spec)
    elif isinstance(spec, str):
        text = spec.strip().lower()
    else:
        raise ValueError(f"device must be a string or torch.device, got {spec!r}; use one of {', '.join(DEVICES)}")
    if text == "cpu":
        return torch.device("cpu")
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    match = _CUDA_INDEX.fullmatch(text)
    if text != "cuda" and match is None:
        raise ValueError(f"unknown device {spec!r}; use one of {', '.join(DEVICES)}")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {text!r} was requested but torch sees no CUDA GPU ({_torch_build()}); use --device cpu or auto"
        )
    if match is None:
        return torch.device("cuda")
    index, count = int(match.group(1)), torch.cuda.device_count()
    if index >= count:
        valid = ", ".join(f"cuda:{i}" for i in range(count))
        raise ValueError(
            f"device {text!r} was requested but torch sees {count} CUDA GPU{'s' if count != 1 else ''} "
            f"({valid}); use one of auto, cpu, cuda, {valid}"
        )
    return torch.device("cuda", index)


def _power_chain_products(power: float) -> int:
    """Multiplies that build C^(p−1) by binary exponentiation, as ``Separate._pow`` does (a
    non-integer p is one ``pow``, counted as 1)."""
    if power != int(power):
        return 1
    k = int(power) - 1
    if k <= 0:
        return 0
    return (k.bit_length() - 1) + (bin(k).count("1") - 1)  # squarings + products into the result


def training_flops(
    k_bottleneck: int,
    hidden: int,
    n_nonlinear: int,
    batch_size: int,
    steps: int,
    separate: bool = True,
    *,
    power: float = 100.0,
) -> float:
    """FP32 FLOPs of one model-training: ``steps`` optimizer steps of one model on batches of B.

    Counted per step (B batch, H = ``hidden``, K = ``k_bottleneck``, N = ``n_nonlinear``, a
    multiply-add is 2 FLOPs):

    * MLP matmuls: with M = Σ in·out over the 2(N + 1) Linears (3→H, N − 1 × H→H, H→K, then the
      mirror image), the forward is 2·B·M, the weight gradients another 2·B·M and the input
      gradients 2·B·(M − 3H), since the first Linear's input (the colours) needs none.
    * Separate (``separate``), on the K-channel unit latent: the B×B cosine matrix e·eᵀ (2·B²·K), its
      backward [e, g·e]ᵀ·C^(p−1) (2·B²·2K), and per B×B entry 2 (the (1 + cos)/2 shift), the
      multiplies of C^(p−1) by repeated squaring (9 for p = 100: 6 squarings, 3 products), 1 for
      C^(p−1)·C and 1 for the row sum: 13 per entry at p = 100.
    * Adam: 10 per parameter.

    Left out as small beside these: biases, GELU and its derivative, the latent norm, the B×K
    terms (anchor, anti-anchor, anti-subspace), the masking comparisons of Separate and validation
    (forward passes over 351 colours every L/10 steps, under 1% of the total). A schedule that turns
    Separate off on some steps is counted by calling this twice (``separate`` True and False).

    >>> training_flops(5, 16, 2, batch_size=64, steps=1501)  # Ex 2.9.1, H = 16: ~7.1e8
    710417296.0
    """
    if min(k_bottleneck, hidden, n_nonlinear, batch_size) < 1 or steps < 0:
        raise ValueError("training_flops needs positive model sizes and batch size, and steps >= 0")
    k, b = k_bottleneck, batch_size
    shapes = layer_shapes(k_bottleneck, hidden, n_nonlinear)  # (out, in) of every Linear
    macs = sum(o * i for o, i in shapes)  # per sample, forward
    params = sum(o * i + o for o, i in shapes)
    first = shapes[0][0] * shapes[0][1]  # the first Linear computes no input gradient
    mlp = 2 * b * macs + 2 * b * macs + 2 * b * (macs - first)
    sep = 0
    if separate:
        per_entry = 2 + _power_chain_products(power) + 1 + 1
        sep = 2 * b * b * k + 2 * b * b * 2 * k + per_entry * b * b
    adam = _ADAM_FLOPS_PER_PARAM * params
    return float(steps * (mlp + sep + adam))


def on_threads(fn: Callable[..., None], s: int, threads: int, *args: object) -> None:
    """``fn(lo, hi, *args)`` on contiguous shares of s models, one thread each (``fn`` releases the GIL)."""
    n = max(1, min(threads, s))
    bounds = [s * i // n for i in range(n + 1)]
    if n == 1:
        fn(0, s, *args)
        return
    with ThreadPoolExecutor(n) as pool:
        for job in [pool.submit(fn, lo, hi, *args) for lo, hi in zip(bounds[:-1], bounds[1:])]:
            job.result()
