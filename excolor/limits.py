"""Every bound on user input in one place: file sizes, nesting depth, digits, sizes and counts.

The readers of hand-written files (experiment and search-space YAML, dopesheet CSV) and of study
records (JSON) share these limits, so that a hostile or mistaken file ends in one line naming the
file and the field instead of a ``MemoryError``, a ``RecursionError`` or an allocation of terabytes.

Two kinds of limit:

* **Fixed caps**, generous beside any real use (the shipped experiments train 1,501-3,001 steps of
  models with H = 16 on batches of 64): they keep every later computation, including the memory
  estimate itself, cheap.
* **Memory**: what an experiment's models, batches and validation grids need, estimated with
  :func:`excolor.devices.model_bytes`, must fit in :func:`memory_limit`.

Each ``check_*`` function raises ``ValueError`` with a reason that does not name its source
(``--steps``, a field of a file); the caller adds that, as the strict readers do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_COLORS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_GRID",
    "MAX_K_BOTTLENECK",
    "MAX_K_CODEC",
    "MAX_NAME",
    "MAX_NODES",
    "MAX_N_NONLINEAR",
    "MAX_POWER",
    "MAX_SEED",
    "MAX_SEEDS",
    "MAX_STEPS",
    "MEMORY_FLOOR",
    "RECORD_LIMIT",
    "SIZE_FIELDS",
    "TEXT_LIMIT",
    "LimitError",
    "check_memory",
    "check_steps",
    "describe_number",
    "experiment_bytes",
    "experiment_sizes",
    "experiment_sizes_default",
    "format_bytes",
    "memory_limit",
    "tensor_file_limit",
]

# ------------------------------------------------------------------------------------- files

TEXT_LIMIT = 1 << 20
"""Bytes of a hand-written file (experiment, dopesheet, search space): 1 MiB, ~300× the largest preset."""

RECORD_LIMIT = 64 << 20
"""Bytes of a study record excolor wrote itself (``study.json``, a trial's ``result.json``): 64 MiB."""

MAX_DEPTH = 64
"""Nesting depth of YAML and JSON documents (the files excolor reads nest 4 levels at most)."""

MAX_NODES = 10_000
"""Values (scalars, lists, mappings) in one YAML document: the presets have ~100, and PyYAML's pure-Python
reader needs ~0.2 ms per value, so a 1 MiB flow list of 450,000 numbers would take minutes."""

MAX_DIGITS = 100
"""Digits of an integer in YAML or JSON (Python refuses to convert more than 4,300 itself)."""

MAX_NAME = 100
"""Characters of a name that ends up in file names, column and metric names (an experiment, a
regularizer, a label, a study): file systems refuse names of more than 255 bytes."""

# ------------------------------------------------------------------------------------- sizes

MAX_STEPS = 1_000_000
"""Steps of a schedule (a dopesheet's length, ``--steps``): ~660× Ex 2.9.1's 1,501. The trainer keeps
per-step tables (weights, Adam bias corrections, which terms run) for the whole schedule."""

MAX_SEED = 2**32 - 1
"""The largest seed (seeds name random streams of 32 bits)."""

MAX_SEEDS = 10_000_000
"""Seeds in one run or study (each is a trained model)."""

MAX_K_BOTTLENECK = 1024
"""Latent width K."""

MAX_K_CODEC = 65_536
"""Hidden width H (a population of two H = 65,536 models already needs ~0.5 TB)."""

MAX_N_NONLINEAR = 256
"""GELU blocks N per side (the experiments use 1 or 2)."""

MAX_BATCH_SIZE = 1 << 20
"""Colours per training batch (the Separate term is B × B per model)."""

MAX_GRID = 200
"""Points per axis of a training, validation or score grid (200³ = 8 million colours)."""

MAX_COLORS = 10_000_000
"""Colours of a training set (an hsv-cube's hues × saturations × values)."""

MAX_POWER = 1000.0
"""Largest exponent of a label rule, the Separate term or the score (the presets use 3-100): beyond
it x^p underflows to 0 for all but x = 1, and the term or label is silently inert."""

MEMORY_FLOOR = 256 << 30
"""Memory an experiment may assume at least (256 GiB: more than one GPU or a usual host has), see
:func:`memory_limit`."""

SIZE_FIELDS: dict[str, tuple[int, int]] = {
    "model.k_bottleneck": (MAX_K_BOTTLENECK, 5),
    "model.hidden": (MAX_K_CODEC, 16),
    "model.n_nonlinear": (MAX_N_NONLINEAR, 2),
    "data.batch_size": (MAX_BATCH_SIZE, 64),
    "data.validation_grid": (MAX_GRID, 8),
    "evaluation.score_grid": (MAX_GRID, 8),
}
"""Experiment-file fields that set memory: field -> (fixed cap, default)."""

_INTERVENTION_COLORS = 20**3  # the 20³ cube interventions are measured on


class LimitError(ValueError):
    """A size beyond a limit: ``field`` (an experiment-file field, e.g. ``model.hidden``) and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (LimitError, (self.field, self.reason))


def memory_limit() -> int:
    """Bytes an experiment may need: the larger of ``MEMORY_FLOOR`` and this machine's RAM.

    A file is read where a study is driven, which need not be where it trains (a GPU node), so the
    limit is what no machine excolor targets can exceed, not what this one has free.
    """
    return max(MEMORY_FLOOR, _physical_memory())


def tensor_file_limit() -> int:
    """Bytes a tensor file (a checkpoint, a population) may unpack to: half this machine's RAM.

    Unlike an experiment, a tensor file is loaded where it is read, and its tensors are then copied
    (to float32, contiguous), so it must fit here twice. The entries of torch's zip format may be
    compressed: a file of kilobytes can unpack to gigabytes, so the unpacked size is what counts.
    """
    ram = _physical_memory()
    return ram // 2 if ram > 0 else MEMORY_FLOOR


def _physical_memory() -> int:
    """This machine's RAM in bytes; 0 where the system does not say (not POSIX)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def format_bytes(n: float) -> str:
    """``n`` bytes in words: ``'1.3 MiB'``, ``'2.1e+04 TiB'``.

    >>> format_bytes(1367808), format_bytes(3 << 40)
    ('1.3 MiB', '3.0 TiB')
    """
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 1e4 else f"{value:.1e} {unit}"
    return f"{int(n)} B"


def experiment_bytes(
    k_bottleneck: int,
    hidden: int,
    n_nonlinear: int,
    *,
    batch_size: int,
    validation_grid: int,
    score_grid: int,
) -> int:
    """Peak memory of the smallest population of an experiment: two models (a lone model trains
    beside a copy of itself), each as estimated by :func:`excolor.devices.model_bytes` for its
    largest forward pass: the validation set, the score grid or the 20³ intervention cube.

    Call it with sizes already within the fixed caps (the estimate is exact integer arithmetic).

    >>> format_bytes(experiment_bytes(5, 16, 2, batch_size=64, validation_grid=8, score_grid=8))
    '40.0 MiB'
    """
    from excolor.devices import model_bytes

    n_val = max((validation_grid - 1) ** 3 + 8, score_grid**3, _INTERVENTION_COLORS)
    return 2 * model_bytes(k_bottleneck, hidden, n_nonlinear, batch_size=batch_size, n_val=n_val)


def describe_number(n: int) -> str:
    """``n`` for an error message; one of more than ``MAX_DIGITS`` digits by its size only (Python
    refuses to print integers of more than 4,300 digits).

    >>> describe_number(12), describe_number(10**5000)
    ('12', 'an integer of about 5,001 digits')
    """
    if n.bit_length() <= 3 * MAX_DIGITS:  # 2^300 has 91 digits
        return str(n)
    return f"an integer of about {int(n.bit_length() * 0.30103) + 1:,} digits"


def experiment_sizes(experiment: Any) -> dict[str, int]:
    """The ``SIZE_FIELDS`` of an ``excolor.config.Experiment`` (for :func:`check_memory` after a ``--hidden`` override).

    Typed loosely on purpose: this module of bounds is a leaf that every reader imports, below ``config``.
    """
    m, d, e = experiment.model, experiment.data, experiment.evaluation
    return {
        "model.k_bottleneck": m.k_bottleneck,
        "model.hidden": m.hidden,
        "model.n_nonlinear": m.n_nonlinear,
        "data.batch_size": d.batch_size,
        "data.validation_grid": d.validation_grid,
        "evaluation.score_grid": e.score_grid,
    }


def check_memory(sizes: Mapping[str, int]) -> None:
    """Refuse sizes beyond their fixed caps, or whose :func:`experiment_bytes` exceeds
    :func:`memory_limit`, with ``LimitError`` naming the field (for memory, the one whose default
    would save the most) and the estimate.

    Args:
        sizes: A value for every key of ``SIZE_FIELDS`` (see :func:`experiment_sizes`).

    >>> check_memory({**experiment_sizes_default(), "model.hidden": 65_536})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    excolor.limits.LimitError: model.hidden: 65,536 makes two models need about ... GiB (...), more than the ... limit
    """
    for field, (cap, _) in SIZE_FIELDS.items():
        if sizes[field] > cap:
            raise LimitError(
                field, f"at most {cap:,} is supported (excolor.limits), got {describe_number(sizes[field])}"
            )

    def estimate(s: Mapping[str, int]) -> int:
        return experiment_bytes(
            s["model.k_bottleneck"],
            s["model.hidden"],
            s["model.n_nonlinear"],
            batch_size=s["data.batch_size"],
            validation_grid=s["data.validation_grid"],
            score_grid=s["evaluation.score_grid"],
        )

    need, limit = estimate(sizes), memory_limit()
    if need <= limit:
        return
    field = min(SIZE_FIELDS, key=lambda f: estimate({**sizes, f: min(sizes[f], SIZE_FIELDS[f][1])}))
    raise LimitError(
        field,
        f"{sizes[field]:,} makes two models need about {format_bytes(need)} "
        f"(excolor.devices.model_bytes, x2 safety), more than the {format_bytes(limit)} limit",
    )


def experiment_sizes_default() -> dict[str, int]:
    """The default of every ``SIZE_FIELDS`` entry (Ex 2.9.1's sizes)."""
    return {field: default for field, (_, default) in SIZE_FIELDS.items()}


def check_steps(n: object) -> int:
    """``n`` as a number of schedule steps (``--steps N``), or ``ValueError`` saying the bounds.

    >>> check_steps(3001)
    3001
    >>> check_steps(10**12)
    Traceback (most recent call last):
    ValueError: expected a number of steps in 2..1,000,000, got 1000000000000
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_STEPS:
        shown = describe_number(n) if isinstance(n, int) and not isinstance(n, bool) else repr(n)[:40]
        raise ValueError(f"expected a number of steps in 2..{MAX_STEPS:,}, got {shown}")
    return n
