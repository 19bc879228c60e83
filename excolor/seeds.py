"""Seed lists as users write them: ``0-59``, ``3``, ``0,4,8``, ``0-9,20-29``.

One rule for every place seeds are written (``--seeds``, an experiment file's ``seeds:``), so that
a bad list is refused where it was written, with the same bounds (``excolor.limits``): seeds in
0..2³²−1, at most ``MAX_SEEDS`` of them. The reason in a ``ValueError`` names no source; the
caller prefixes ``--seeds:`` or the file and field.
"""

from __future__ import annotations

import re

from excolor.limits import MAX_SEED, MAX_SEEDS

__all__ = ["count_seeds", "parse_seeds"]

_PART = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")
_SEED_DIGITS = len(str(MAX_SEED))


def _ranges(text: str) -> list[tuple[int, int]]:
    """The ``(first, last)`` ranges of ``text``, checked; ``ValueError`` with the reason."""
    if not isinstance(text, str):
        raise ValueError(f"expected seeds like 0-59 or 0,4,8, got {type(text).__name__}")
    shown = text if len(text) <= 60 else text[:57] + "..."
    ranges = []
    for part in text.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise ValueError(f"expected N, N-M or a comma-separated list of those (like 0-59 or 0,4,8), got {shown!r}")
        lo_text, hi_text = match.group(1), match.group(2) or match.group(1)
        where = repr(part.strip()) if len(part) <= 40 else f"{part.strip()[:24]!r}... ({len(part):,} characters)"
        if max(len(lo_text.lstrip("0")), len(hi_text.lstrip("0"))) > _SEED_DIGITS:
            raise ValueError(f"{where}: seeds are at most {MAX_SEED}")
        lo, hi = int(lo_text), int(hi_text)
        if hi > MAX_SEED:
            raise ValueError(f"{where}: seeds are at most {MAX_SEED}")
        if hi < lo:
            raise ValueError(f"{where}: a range N-M needs N <= M")
        ranges.append((lo, hi))
    return ranges


def count_seeds(text: str) -> int:
    """How many distinct seeds ``text`` names, checked without listing them.

    Raises:
        ValueError: A malformed list, a seed above 2³²−1, a reversed range, or more than
            ``MAX_SEEDS`` seeds; the reason in one line.

    >>> count_seeds("0-59"), count_seeds("0-9, 5-14")
    (60, 15)
    """
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(_ranges(text)):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    n = sum(hi - lo + 1 for lo, hi in merged)
    if n > MAX_SEEDS:
        raise ValueError(f"{n:,} seeds; at most {MAX_SEEDS:,} are allowed")
    return n


def parse_seeds(text: str) -> list[int]:
    """'0-59', '3', '0,4,8', '0-9,20-29' -> sorted distinct seeds; ``ValueError`` as ``count_seeds``.

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    >>> parse_seeds("0-99999999999")
    Traceback (most recent call last):
    ValueError: '0-99999999999': seeds are at most 4294967295
    """
    count_seeds(text)
    seeds: set[int] = set()
    for lo, hi in _ranges(text):
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)
