"""Dopesheets: keyframed hyperparameter schedules read from CSV.

A dopesheet is a CSV table whose rows are moments in training and whose property columns
(``lr`` and one column per regularizer weight) hold keyframes. Between keyframes a property
eases from one value to the next (minimum-jerk by default), so the schedule is a *pure
function of the step*: :meth:`Dopesheet.values_at` and :meth:`Dopesheet.table` replace the
original stateful ``Timeline`` and leave nothing to checkpoint.

Format (science.md §5.1, read strictly as §14.3 asks)::

    STEP,PHASE,ACTION,lr,separate,anchor:linear:step-end
    0,Train,,1e-8,,0
    +10,,,0.01,,
    +0.33,,,,0.01,0.1
    750,,,0.1,0.001,0.1

* ``STEP`` is an absolute step ``N`` (an *anchor*; anchors must increase down the file) or is
  relative to the nearest anchors in the file: ``+N`` (anchor above + N), ``-N`` (anchor below
  - N), ``+F`` / ``-F`` with 0 < F < 1 (a fraction of the way between the two bracketing
  anchors, rounded half-to-even). Relative rows never resolve against other relative rows.
* Property headers are ``prop[:space[:interpolator]]``; space is ``linear`` (default) or
  ``log``; the interpolator is ``minjerk`` (default), ``linear`` or ``step-end`` (alias
  ``step``). An empty cell means "no keyframe here".
* ``PHASE`` starts a named phase at that row; ``ACTION`` lists comma-separated event names.

Every malformed input raises :class:`DopesheetError` naming the file, line and column. Files are
read within ``excolor.limits.TEXT_LIMIT`` bytes and schedules span at most ``MAX_STEPS`` steps;
values are finite, and a non-zero one is a normal float32 (a weight of 1e-320 would be computed
with weight 0), at least the log floor 1e-10 in a ``log`` column.

How the trainer uses it (not enforced here): optimizer step ``b`` (0-based batch index) uses
schedule step ``min(b, length - 2)``, as the original did (science.md §14.4), and trains for
``length`` steps.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from importlib.resources import files
from itertools import pairwise
from pathlib import Path
from typing import Literal, cast

import numpy as np

from excolor.limits import MAX_STEPS, check_steps

__all__ = [
    "Dopesheet",
    "DopesheetError",
    "Interpolator",
    "Keyframe",
    "Space",
    "Track",
    "reference_dopesheet",
]

Space = Literal["linear", "log"]
Interpolator = Literal["minjerk", "linear", "step-end"]

SPACES: tuple[str, ...] = ("linear", "log")
INTERPOLATORS: tuple[str, ...] = ("minjerk", "linear", "step", "step-end")
RESERVED: tuple[str, ...] = ("STEP", "PHASE", "ACTION")
LR = "lr"

# Floor applied before taking logs, as in the original (science.md §5.2).
_LOG_FLOOR = 1e-10
# Schedule values reach the trainer's float32 losses: beyond these bounds a value is inf or 0 there.
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_STEP_DIGITS = len(str(MAX_STEPS))
_HEADER_LINE = 1

_ABSOLUTE = re.compile(r"(?:0|[1-9][0-9]*)")
_OFFSET = re.compile(r"([+-])([1-9][0-9]*)")
_FRACTION = re.compile(r"([+-])(0?\.[0-9]+)")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class DopesheetError(ValueError):
    """A dopesheet is malformed; says where (file, line, column) and what was expected.

    Dopesheets are hand-edited user input, so errors point at the cell to fix instead of
    surfacing a parser traceback.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str = "<string>",
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.source
        if self.row is not None:
            where += f", line {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self._format()

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes would be lost by the default pickling (e.g. across Ray workers).
        return (_rebuild_error, (self.reason, self.source, self.row, self.column))


def _rebuild_error(reason: str, source: str, row: int | None, column: str | None) -> DopesheetError:
    return DopesheetError(reason, source=source, row=row, column=column)


@dataclass(frozen=True)
class Keyframe:
    """A property's value pinned at one step."""

    step: int
    value: float


@dataclass(frozen=True)
class Track:
    """One property's schedule: its keyframes and how to move between them.

    Args:
        name: Property name without the ``:space:interpolator`` suffix.
        space: ``'log'`` interpolates ``ln(max(v, 1e-10))``; ``'linear'`` interpolates ``v``.
        interpolator: Easing between consecutive keyframes.
        keyframes: At least one keyframe, steps strictly increasing.
    """

    name: str
    space: Space
    interpolator: Interpolator
    keyframes: tuple[Keyframe, ...]

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"track {self.name!r}: unknown space {self.space!r}")
        if self.interpolator not in ("minjerk", "linear", "step-end"):
            raise ValueError(f"track {self.name!r}: unknown interpolator {self.interpolator!r}")
        if not self.keyframes:
            raise ValueError(f"track {self.name!r} has no keyframes")
        steps = [k.step for k in self.keyframes]
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError(f"track {self.name!r}: keyframe steps must strictly increase: {steps}")

    @property
    def steps(self) -> np.ndarray:
        """Keyframe steps, shape (K,) int64."""
        return np.array([k.step for k in self.keyframes], dtype=np.int64)

    @property
    def values(self) -> np.ndarray:
        """Keyframe values, shape (K,) float64."""
        return np.array([k.value for k in self.keyframes], dtype=np.float64)

    def value_at(self, step: int | np.ndarray) -> float | np.ndarray:
        """Value of the property at ``step`` (closed form of science.md §5.2).

        Before the first keyframe the first value holds; after the last, the last value.
        At a keyframe step the result is exactly that keyframe's value, also in log space.

        Args:
            step: A step or an array of steps (any shape).

        Returns:
            A float for a scalar step, else a float64 array shaped like ``step``.

        >>> t = Track('lr', 'linear', 'linear', (Keyframe(0, 0.0), Keyframe(10, 1.0)))
        >>> t.value_at(5), t.value_at(-3), t.value_at(99)
        (0.5, 0.0, 1.0)
        """
        t = np.asarray(step, dtype=np.float64)
        ks = self.steps.astype(np.float64)  # (K,)
        ys = self.values  # (K,)
        k_last = len(ks) - 1
        # Index of the last keyframe at or before t, clipped so segments are (k, k+1).
        k = np.searchsorted(ks, t, side="right") - 1
        before = k < 0
        after = k >= k_last
        k_seg = np.clip(k, 0, max(k_last - 1, 0))
        if k_last == 0:
            out = np.full(t.shape, ys[0])
        else:
            t0, t1 = ks[k_seg], ks[k_seg + 1]
            tau = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
            s = _ease(self.interpolator, tau)
            y0, y1 = ys[k_seg], ys[k_seg + 1]
            if self.space == "log":
                l0 = np.log(np.maximum(y0, _LOG_FLOOR))
                l1 = np.log(np.maximum(y1, _LOG_FLOOR))
                out = np.exp(l0 + (l1 - l0) * s)
            else:
                out = y0 + (y1 - y0) * s
            # Keep keyframe values exact (exp(log(y)) may differ from y in the last bit).
            out = np.where(s == 0.0, y0, out)
            out = np.where(s == 1.0, y1, out)
            out = np.where(before, ys[0], out)
            out = np.where(after, ys[k_last], out)
        if out.ndim == 0:
            return float(out)
        return out


def _ease(interpolator: str, tau: np.ndarray) -> np.ndarray:
    """Timing function s(tau) on [0, 1] with s(0) = 0 and s(1) = 1."""
    if interpolator == "minjerk":
        # Plain products, not `**`: numpy's vectorised pow can differ from its scalar pow in
        # the last bit, and values_at() must agree exactly with table().
        s: np.ndarray = tau * tau * tau * (10.0 + tau * (-15.0 + 6.0 * tau))
        return s
    if interpolator == "linear":
        return tau
    return np.where(tau >= 1.0, 1.0, 0.0)


@dataclass(frozen=True)
class Dopesheet:
    """A resolved, validated schedule: tracks plus phase and action markers.

    Build one with :meth:`read` or :meth:`parse`. Equality ignores ``source`` so that a
    sheet compares equal to its own :meth:`to_csv` round trip.

    Args:
        tracks: One track per property column, in file column order.
        phases: ``(start step, name)`` pairs in step order.
        actions: ``(step, names)`` pairs in step order.
        length: Number of schedule steps, ``max resolved step + 1``.
        source: Where the sheet came from, for error messages.
    """

    tracks: tuple[Track, ...]
    phases: tuple[tuple[int, str], ...] = ()
    actions: tuple[tuple[int, tuple[str, ...]], ...] = ()
    length: int = 1
    source: str = field(default="<string>", compare=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.tracks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate track names: {names}")
        last = max(
            [t.keyframes[-1].step for t in self.tracks]
            + [s for s, _ in self.phases]
            + [s for s, _ in self.actions]
            + [0]
        )
        if self.length < last + 1:
            raise ValueError(f"length {self.length} is shorter than the last marked step {last}")
        if self.length > MAX_STEPS:
            raise ValueError(f"length {self.length:,} is beyond the limit of {MAX_STEPS:,} steps (excolor.limits)")

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Dopesheet:
        """Read and validate a dopesheet CSV file (UTF-8, optional BOM)."""
        from excolor._yaml import UnreadableText, read_text

        source = os.fspath(path)
        try:
            text = read_text(source)
        except UnreadableText as e:
            raise DopesheetError(str(e), source=source) from None
        return cls.parse(text, source=source)

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> Dopesheet:
        """Parse and validate dopesheet CSV text; ``source`` names it in errors.

        >>> ds = Dopesheet.parse('STEP,lr\\n0,1e-8\\n+10,0.01\\n20,0.1\\n')
        >>> ds.length, ds.values_at(10)
        (21, {'lr': 0.01})
        """
        return _parse(text.removeprefix("\ufeff"), source)

    # ----------------------------------------------------------------------------- writing

    def to_csv(self) -> str:
        """The resolved sheet as CSV: absolute steps, one row per marked step."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*RESERVED, *(_header(t) for t in self.tracks)])
        phases = dict(self.phases)
        actions = dict(self.actions)
        keyed = [{k.step: k.value for k in t.keyframes} for t in self.tracks]
        steps = sorted({*phases, *actions, *(s for kv in keyed for s in kv), self.length - 1})
        for step in steps:
            cells = [
                str(step),
                phases.get(step, ""),
                ",".join(actions.get(step, ())),
                *(_format_value(kv[step]) if step in kv else "" for kv in keyed),
            ]
            writer.writerow(cells)
        return buf.getvalue()

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_csv` to ``path`` (UTF-8)."""
        Path(path).write_text(self.to_csv(), encoding="utf-8")

    # ----------------------------------------------------------------------------- queries

    @property
    def props(self) -> tuple[str, ...]:
        """Property names in file column order."""
        return tuple(t.name for t in self.tracks)

    def track(self, name: str) -> Track:
        """The track of property ``name``; KeyError naming the known props if absent."""
        for t in self.tracks:
            if t.name == name:
                return t
        raise KeyError(f"no property {name!r} in dopesheet {self.source}; have {list(self.props)}")

    def initial_values(self) -> dict[str, float]:
        """Each property's value at step 0 (its earliest keyframe's value)."""
        return {t.name: t.keyframes[0].value for t in self.tracks}

    def values_at(self, step: int) -> dict[str, float]:
        """Every property's value at ``step``."""
        return {t.name: cast(float, t.value_at(int(step))) for t in self.tracks}

    def table(self, props: Sequence[str] | None = None, steps: np.ndarray | None = None) -> np.ndarray:
        """Values of ``props`` (default: all) at ``steps`` (default: ``arange(length)``).

        Returns:
            float64 array of shape (len(steps), len(props)).
        """
        names = self.props if props is None else tuple(props)
        at = np.arange(self.length) if steps is None else np.asarray(steps).reshape(-1)
        out = np.empty((at.shape[0], len(names)), dtype=np.float64)  # (T, P)
        for j, name in enumerate(names):
            out[:, j] = self.track(name).value_at(at)
        return out

    # ----------------------------------------------------------------------------- checks

    def check_properties(self, allowed: Collection[str]) -> None:
        """Reject a property column that is neither ``lr`` nor one of ``allowed``.

        A misspelt regularizer column would otherwise leave that regularizer at full weight
        (science.md §14.3).
        """
        known = sorted(set(allowed))
        for t in self.tracks:
            if t.name != LR and t.name not in known:
                expected = ", ".join(repr(n) for n in [LR, *known])
                raise DopesheetError(
                    f"unknown property {t.name!r}; expected one of: {expected}",
                    source=self.source,
                    row=_HEADER_LINE,
                    column=t.name,
                )

    # ----------------------------------------------------------------------------- variants

    def scaled(self, factors: Mapping[str, float]) -> Dopesheet:
        """A copy with every keyframe value of the named tracks multiplied by its factor.

        Used for weight sweeps. Factors must be finite and >= 0 (> 0 for ``lr`` and
        log-space tracks, which must stay positive).
        """
        for name, f in factors.items():
            track = self.track(name)
            if not math.isfinite(f) or f < 0:
                raise ValueError(f"scale factor for {name!r} must be finite and >= 0, got {f!r}")
            if f == 0 and (name == LR or track.space == "log"):
                raise ValueError(f"scale factor for {name!r} must be > 0, got {f!r}")
        tracks = tuple(
            Track(
                t.name,
                t.space,
                t.interpolator,
                tuple(Keyframe(k.step, k.value * float(factors[t.name])) for k in t.keyframes),
            )
            if t.name in factors
            else t
            for t in self.tracks
        )
        return Dopesheet(tracks, self.phases, self.actions, self.length, self.source)

    def stretched(self, n_steps: int) -> Dopesheet:
        """A copy retimed to ``n_steps`` steps: step t maps to round(t·(n−1)/(length−1)).

        Keyframes of one track that land on the same step keep the later one; so do phases.
        Actions landing on one step are merged, so no event is lost.
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)):
            raise TypeError(f"n_steps must be an int, got {n_steps!r}")
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        try:
            check_steps(int(n_steps))
        except ValueError as e:
            raise ValueError(f"n_steps: {e}") from None
        if self.length < 2:
            raise ValueError("cannot stretch a dopesheet of length 1")
        n = int(n_steps)

        def remap(step: int) -> int:
            # Exact rational arithmetic: the last step lands on n - 1 exactly, ties to even.
            return round(Fraction(step * (n - 1), self.length - 1))

        tracks = []
        for t in self.tracks:
            by_step = {remap(k.step): k.value for k in t.keyframes}  # later keys overwrite
            keys = tuple(Keyframe(s, v) for s, v in sorted(by_step.items()))
            tracks.append(Track(t.name, t.space, t.interpolator, keys))
        phases = {remap(s): name for s, name in self.phases}
        actions: dict[int, tuple[str, ...]] = {}
        for s, names in self.actions:
            merged = actions.get(remap(s), ()) + names
            actions[remap(s)] = tuple(dict.fromkeys(merged))
        return Dopesheet(
            tuple(tracks),
            tuple(sorted(phases.items())),
            tuple(sorted(actions.items())),
            n,
            self.source,
        )


def reference_dopesheet() -> Dopesheet:
    """The hand-written Experiment 2.9.1 schedule (science.md §5.3), shipped with the package."""
    resource = files("excolor") / "presets" / "ex-2.9.1-dopesheet.csv"
    return Dopesheet.parse(resource.read_text(encoding="utf-8"), source=str(resource))


# --------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    space: Space
    interpolator: Interpolator


@dataclass(frozen=True)
class _Row:
    line: int
    cells: tuple[str, ...]


def _parse(text: str, source: str) -> Dopesheet:
    rows = _read_rows(text, source)
    if not rows:
        raise DopesheetError(
            "empty file; expected a header line such as 'STEP,PHASE,ACTION,lr'",
            source=source,
        )
    header, body = rows[0], rows[1:]
    if header.line != _HEADER_LINE:
        raise DopesheetError(
            "the header must be on line 1, not after blank lines",
            source=source,
            row=_HEADER_LINE,
        )
    columns, reserved = _parse_header(header, source)
    if not body:
        raise DopesheetError("no data rows after the header", source=source, row=header.line)
    for row in body:
        if len(row.cells) != len(header.cells):
            raise DopesheetError(
                f"expected {len(header.cells)} cells like the header, got {len(row.cells)}",
                source=source,
                row=row.line,
            )
    steps = _resolve_steps(body, reserved["STEP"], source)

    # Keyframes per column, in step order.
    order = sorted(range(len(body)), key=lambda i: steps[i])
    tracks = []
    for col in columns:
        keys = []
        for i in order:
            cell = body[i].cells[col.index]
            if cell:
                keys.append(Keyframe(steps[i], _parse_value(cell, col, body[i].line, source)))
        if not keys:
            raise DopesheetError(
                "property column has no values; key it at least once or remove it",
                source=source,
                row=header.line,
                column=col.name,
            )
        tracks.append(Track(col.name, col.space, col.interpolator, tuple(keys)))

    phases: list[tuple[int, str]] = []
    actions: list[tuple[int, tuple[str, ...]]] = []
    for i in order:
        row = body[i]
        if "PHASE" in reserved and row.cells[reserved["PHASE"]]:
            phases.append((steps[i], row.cells[reserved["PHASE"]]))
        if "ACTION" in reserved and row.cells[reserved["ACTION"]]:
            names = tuple(n.strip() for n in row.cells[reserved["ACTION"]].split(","))
            if not all(names):
                raise DopesheetError(
                    f"empty action name in {row.cells[reserved['ACTION']]!r}; expected comma-separated names",
                    source=source,
                    row=row.line,
                    column="ACTION",
                )
            actions.append((steps[i], names))

    return Dopesheet(tuple(tracks), tuple(phases), tuple(actions), max(steps) + 1, source)


def _read_rows(text: str, source: str) -> list[_Row]:
    """Non-blank CSV records with stripped cells and the file line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    start = 1
    try:
        for record in reader:
            cells = tuple(c.strip() for c in record)
            if len(cells) > 1 or (cells and cells[0]):
                rows.append(_Row(start, cells))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DopesheetError(f"malformed CSV: {e}", source=source, row=reader.line_num) from None
    return rows


def _parse_header(header: _Row, source: str) -> tuple[list[_Column], dict[str, int]]:
    """Property columns and the positions of the reserved columns."""
    line = header.line
    columns: list[_Column] = []
    reserved: dict[str, int] = {}
    seen: set[str] = set()
    if "STEP" not in header.cells:
        raise DopesheetError(
            "missing STEP column; the first line must be a header such as 'STEP,PHASE,ACTION,lr'",
            source=source,
            row=line,
        )
    for index, text in enumerate(header.cells):
        if not text:
            raise DopesheetError(f"column {index + 1} has an empty name", source=source, row=line)
        if text in RESERVED:
            name = text
            reserved[text] = index
        else:
            column = _parse_property_header(index, text, line, source)
            name = column.name
            columns.append(column)
        if name in seen:
            raise DopesheetError(
                f"duplicate column {name!r} (suffixes like ':log' do not make it distinct)",
                source=source,
                row=line,
                column=text,
            )
        seen.add(name)
    if not columns:
        raise DopesheetError(
            "no property columns; expected at least one (e.g. 'lr') besides STEP, PHASE and ACTION",
            source=source,
            row=line,
        )
    return columns, reserved


def _parse_property_header(index: int, text: str, line: int, source: str) -> _Column:
    parts = [p.strip() for p in text.split(":")]
    if len(parts) > 3:
        raise DopesheetError(
            "expected a header 'prop', 'prop:space' or 'prop:space:interpolator'",
            source=source,
            row=line,
            column=text,
        )
    name, space, interp = (parts + ["", ""])[:3]
    if not name:
        raise DopesheetError("property header has an empty name", source=source, row=line, column=text)
    space = space or "linear"
    interp = interp or "minjerk"
    if space not in SPACES:
        raise DopesheetError(
            f"unknown space {space!r}; expected one of: {', '.join(SPACES)}",
            source=source,
            row=line,
            column=text,
        )
    if interp not in INTERPOLATORS:
        raise DopesheetError(
            f"unknown interpolator {interp!r}; expected one of: {', '.join(INTERPOLATORS)}",
            source=source,
            row=line,
            column=text,
        )
    if interp == "step":
        interp = "step-end"
    return _Column(index, name, cast(Space, space), cast(Interpolator, interp))


def _resolve_steps(body: list[_Row], step_col: int, source: str) -> list[int]:
    """Absolute step of every row (§5.1 resolved strictly, §14.3)."""
    cells = [row.cells[step_col] for row in body]

    # Anchors first: absolute steps must strictly increase down the file.
    absolute: list[int | None] = []
    last: tuple[int, int] | None = None  # (step, line)
    for row, cell in zip(body, cells):
        _check_step_digits(cell, row.line, source)
        if _ABSOLUTE.fullmatch(cell):
            step = int(cell)
            if last is not None and step <= last[0]:
                raise DopesheetError(
                    f"absolute STEP {step} is not greater than {last[0]} on line {last[1]}; "
                    "absolute STEPs must increase down the file",
                    source=source,
                    row=row.line,
                    column="STEP",
                )
            last = (step, row.line)
            absolute.append(step)
        elif _OFFSET.fullmatch(cell) or _FRACTION.fullmatch(cell):
            absolute.append(None)
        else:
            raise DopesheetError(
                f"expected a STEP like N, +N, -N, +F or -F (0 < F < 1, e.g. '+0.33'), got {_shown(cell)}",
                source=source,
                row=row.line,
                column="STEP",
            )

    steps: list[int] = []
    first_line: dict[int, int] = {}
    for i, (row, cell) in enumerate(zip(body, cells)):
        anchor = absolute[i]
        if anchor is None:
            prev = next((s for s in reversed(absolute[:i]) if s is not None), None)
            nxt = next((s for s in absolute[i + 1 :] if s is not None), None)
            step = _resolve_relative(cell, prev, nxt, row.line, source)
        else:
            step = anchor
        if step < 0:
            raise DopesheetError(
                f"STEP {_shown(cell)} resolves to {step}; steps must be >= 0",
                source=source,
                row=row.line,
                column="STEP",
            )
        if step >= MAX_STEPS:
            raise DopesheetError(
                f"STEP {_shown(cell)} resolves to {step:,}; a schedule spans at most {MAX_STEPS:,} steps "
                f"(the last is {MAX_STEPS - 1:,}; excolor.limits)",
                source=source,
                row=row.line,
                column="STEP",
            )
        if step in first_line:
            raise DopesheetError(
                f"STEP {_shown(cell)} resolves to {step}, the same step as line {first_line[step]}",
                source=source,
                row=row.line,
                column="STEP",
            )
        first_line[step] = row.line
        steps.append(step)
    return steps


def _shown(cell: str) -> str:
    """A cell quoted for an error message, a long one cut short (the line stays readable)."""
    return repr(cell) if len(cell) <= 40 else f"{cell[:24]!r}... ({len(cell):,} characters)"


def _check_step_digits(cell: str, line: int, source: str) -> None:
    """Refuse a STEP of more digits than ``MAX_STEPS`` has before converting it (Python refuses to
    convert more than 4,300 digits, and a schedule of 10^12 steps cannot be trained)."""
    if not (_ABSOLUTE.fullmatch(cell) or _OFFSET.fullmatch(cell)):
        return
    if len(cell.lstrip("+-")) > _STEP_DIGITS:
        raise DopesheetError(
            f"STEP {_shown(cell)} is beyond the limit of {MAX_STEPS:,} steps (excolor.limits)",
            source=source,
            row=line,
            column="STEP",
        )


def _resolve_relative(cell: str, prev: int | None, nxt: int | None, line: int, source: str) -> int:
    def need(what: str) -> DopesheetError:
        return DopesheetError(
            f"relative STEP {_shown(cell)} needs {what}",
            source=source,
            row=line,
            column="STEP",
        )

    offset = _OFFSET.fullmatch(cell)
    if offset:
        n = int(offset.group(2))
        if offset.group(1) == "+":
            if prev is None:
                raise need("an absolute STEP row above it")
            return prev + n
        if nxt is None:
            raise need("an absolute STEP row below it")
        return nxt - n

    fraction = _FRACTION.fullmatch(cell)
    assert fraction is not None  # _resolve_steps only passes N, ±N or ±F
    f = float(fraction.group(2))
    if not 0.0 < f < 1.0:
        raise DopesheetError(
            f"fractional STEP {_shown(cell)} must lie strictly between 0 and 1",
            source=source,
            row=line,
            column="STEP",
        )
    if prev is None or nxt is None:
        raise need("absolute STEP rows both above and below it")
    if fraction.group(1) == "+":
        return round(prev + f * (nxt - prev))
    return round(nxt - f * (nxt - prev))


def _parse_value(cell: str, col: _Column, line: int, source: str) -> float:
    def fail(reason: str) -> DopesheetError:
        return DopesheetError(reason, source=source, row=line, column=col.name)

    if not _NUMBER.fullmatch(cell):
        try:
            literal = float(cell)
        except ValueError:
            raise fail(f"expected a number, got {_shown(cell)}") from None
        if not math.isfinite(literal):
            raise fail(f"expected a finite number, got {_shown(cell)}")
        raise fail(f"expected a plain decimal number, got {_shown(cell)}")
    value = float(cell) + 0.0  # + 0.0 folds -0.0 into 0.0
    shown = _shown(cell)
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise fail(f"expected a finite number, got {shown} (overflows float32, max {_FLOAT32_MAX:.3g})")
    if value != 0 and abs(value) < _FLOAT32_TINY:
        raise fail(
            f"{shown} is below the smallest normal float32 ({_FLOAT32_TINY:.3g}) and would act as 0; "
            "write 0 or a usable value"
        )
    if col.name == LR and value <= 0:
        raise fail(f"lr must be > 0 at every keyframe, got {_shown(cell)}")
    if col.space == "log" and value <= 0:
        raise fail(f"a log-space property must be > 0, got {shown}")
    if col.space == "log" and value < _LOG_FLOOR:
        raise fail(f"a log-space property must be >= {_LOG_FLOOR:g} (the floor applied before the log), got {shown}")
    if value < 0:
        raise fail(f"regularizer weights must be >= 0, got {_shown(cell)}")
    return value


def _header(track: Track) -> str:
    """Column header with only the non-default suffixes."""
    if track.interpolator != "minjerk":
        space = "" if track.space == "linear" else track.space
        return f"{track.name}:{space}:{track.interpolator}"
    if track.space != "linear":
        return f"{track.name}:{track.space}"
    return track.name


def _format_value(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (``repr``), without a bare '.0'."""
    return repr(float(value)).removesuffix(".0")
