"""Search spaces over dopesheets: which keyframe values and times Optuna may change.

A study searches *edits of one hand-written schedule* rather than free schedules: each
parameter either sets the value of some keyframes (on a log scale) or slides one row of the
sheet between its neighbours. The hand schedule is therefore one point of the space
(:meth:`SearchSpace.reference_params`), which a study can enqueue as its first trial and
compare every other trial against.

The space is a small YAML file users copy and edit (the shipped default is
``tune/presets/search-space.yaml``)::

    base: ex-2.9.1            # 'ex-2.9.1' or a path to a dopesheet CSV
    values:                   # keyframe values, log scale
      - {name: anchor_peak, prop: anchor, steps: [248, 750], low: 0.01, high: 1.0}
    times:                    # row at `step` moves to round(prev + f·(next − prev))
      - {name: ramp_end, step: 248, low: 0.05, high: 0.95}
    model:
      hidden: [10, 16]        # optional categorical hidden width

Every mistake raises :class:`SpaceError` naming the file and the field (``values[2].high``),
because the file is hand-edited input and a traceback would not say what to fix.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from excolor import _yaml
from excolor._yaml import YamlSyntaxError
from excolor._yaml import integer as _integer_step
from excolor._yaml import kind as _kind
from excolor._yaml import listing as _listing
from excolor._yaml import mapping as _mapping
from excolor._yaml import number as _number
from excolor._yaml import sequence as _list
from excolor._yaml import text as _text
from excolor.dopesheet import Dopesheet, DopesheetError, Keyframe, Track, reference_dopesheet

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = [
    "HIDDEN",
    "REFERENCE_BASE",
    "SearchSpace",
    "SpaceError",
    "TimeParam",
    "ValueParam",
]

REFERENCE_BASE = "ex-2.9.1"
"""The ``base`` name of the shipped Experiment 2.9.1 dopesheet."""

HIDDEN = "hidden"
"""Optuna parameter name of the hidden width; reserved, so no keyframe parameter may use it."""

# The experiment's default hidden width (excolor.config.ex_2_9_1(hidden=16), science.md §2.4).
_REFERENCE_HIDDEN = 16
_DEFAULT_SOURCE = "<default>"

_TOP_KEYS = ("base", "values", "times", "model")
_VALUE_KEYS = ("name", "prop", "steps", "low", "high")
_TIME_KEYS = ("name", "step", "low", "high")
_MODEL_KEYS = ("hidden",)

# Names end up as Optuna parameter names and as Ray result columns ("config/<name>").
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class SpaceError(ValueError):
    """A search-space file is malformed; says which file and field, and what was expected.

    Args:
        reason: What is wrong and what was expected.
        source: The file, ``'<default>'`` for the shipped space, or ``'<string>'``.
        field: Path of the offending field, e.g. ``values[2].high``; ``''`` for the whole file.
        line: 1-based line, known only for YAML syntax errors.
    """

    def __init__(self, reason: str, *, source: str = "<string>", field: str = "", line: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.field = field
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self._format()

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes would be lost by default pickling (errors cross Ray workers).
        return (_rebuild_error, (self.reason, self.source, self.field, self.line))


def _rebuild_error(reason: str, source: str, field: str, line: int | None) -> SpaceError:
    return SpaceError(reason, source=source, field=field, line=line)


# fail(field, reason) -> the error to raise; bound to the source being read.
_Fail = Callable[[str, str], SpaceError]


@dataclass(frozen=True)
class ValueParam:
    """One searched keyframe value, shared by the keyframes of ``prop`` at ``steps`` (base steps).

    Searched log-uniformly in ``[low, high]`` with ``low > 0``, so ``lr > 0`` and weights >= 0
    hold for every sample.
    """

    name: str
    prop: str
    steps: tuple[int, ...]
    low: float
    high: float


@dataclass(frozen=True)
class TimeParam:
    """One searched row time: the base row at ``step`` moves to fraction ``f`` between its neighbours.

    ``f`` is searched uniformly in ``[low, high]`` with ``0 < low < high < 1``.
    """

    name: str
    step: int
    low: float
    high: float


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space over edits of the ``base`` dopesheet.

    Build one with :meth:`read`, :meth:`parse` or :meth:`default`; direct construction is
    validated too (against ``base``).

    Args:
        base: The dopesheet the space edits; steps in ``values`` and ``times`` are its steps.
        values: Keyframe-value parameters, in file order.
        times: Row-time parameters, in file order.
        hidden: Choices of the hidden width H, or None to keep the experiment's.
        source: Where the space came from, for errors and the study record.
    """

    base: Dopesheet
    values: tuple[ValueParam, ...] = ()
    times: tuple[TimeParam, ...] = ()
    hidden: tuple[int, ...] | None = None
    source: str = "<string>"

    def __post_init__(self) -> None:
        _check_space(self)

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SearchSpace:
        """Read and validate a space file; a relative ``base`` path is relative to the file."""
        source = str(path)
        try:
            text = _yaml.read_text(path)
        except _yaml.UnreadableText as e:
            raise SpaceError(str(e), source=source) from None
        return cls.parse(text, source=source, root=Path(path).parent)

    @classmethod
    def parse(cls, text: str, source: str = "<string>", *, root: str | os.PathLike[str] | None = None) -> SearchSpace:
        """Parse and validate space YAML; ``root`` resolves a relative ``base`` path (default: CWD).

        >>> space = SearchSpace.parse(
        ...     "base: ex-2.9.1\\nvalues: [{name: lr_peak, prop: lr, steps: [750], low: 0.01, high: 1.0}]"
        ... )
        >>> space.reference_params()
        {'lr_peak': 0.1}
        """
        return _parse(text, source, Path(root) if root is not None else Path.cwd())

    @classmethod
    def default(cls) -> SearchSpace:
        """The shipped space, ``tune/presets/search-space.yaml``."""
        resource = files("tune") / "presets" / "search-space.yaml"
        return cls.parse(resource.read_text(encoding="utf-8"), source=_DEFAULT_SOURCE)

    @classmethod
    def for_experiment(cls, experiment: Any) -> SearchSpace:
        """The default space of an experiment: the shipped hand-written space for the Ex 2.9.1 reference
        schedule, else the space derived from the experiment's dopesheet (``from_dopesheet``)."""
        sheet = experiment.dopesheet
        if experiment.name == REFERENCE_BASE and sheet.to_csv() == reference_dopesheet().to_csv():
            return cls.default()
        return cls.from_dopesheet(sheet, source=f"<derived from {experiment.name}'s dopesheet>")

    @classmethod
    def from_dopesheet(cls, sheet: Dopesheet, *, source: str = "<derived>") -> SearchSpace:
        """A space over every keyframe value and row time of ``sheet``, so any experiment is searchable.

        Values: each run of consecutive keyframes of a property holding the same value > 1e-6 (a
        plateau) is one parameter ``<prop>_<step>``, searched log-uniformly in [v/10, 10 v] (lr:
        [v/10, 3 v]); zero weights and lr's 1e-8 warm-up floor stay fixed. Times: each row between
        the first and the last is one parameter ``t_<step>``, its fraction between its neighbours
        searched in [min(0.05, f/2), max(0.95, (1 + f)/2)], f being its place in the base.
        """
        values = []
        for track in sheet.tracks:
            keys = sorted(track.keyframes, key=lambda k: k.step)
            i = 0
            while i < len(keys):
                j = i
                while j + 1 < len(keys) and keys[j + 1].value == keys[i].value:
                    j += 1
                v = keys[i].value
                if v > 1e-6:
                    high = v * 3 if track.name == "lr" else v * 10
                    name = _param_name(f"{track.name}_{keys[i].step}")
                    values.append(ValueParam(name, track.name, tuple(k.step for k in keys[i : j + 1]), v / 10, high))
                i = j + 1
        rows = _row_steps(sheet)
        times = []
        for step in rows[1:-1]:
            f = _fraction_of(rows, step)
            times.append(TimeParam(_param_name(f"t_{step}"), step, min(0.05, f / 2), max(0.95, (1 + f) / 2)))
        return cls(sheet, tuple(values), tuple(times), None, source)

    # ----------------------------------------------------------------------------- Optuna

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in distribution order: values, times, then ``hidden`` if searched."""
        extra = (HIDDEN,) if self.hidden is not None else ()
        return tuple(p.name for p in self.values) + tuple(p.name for p in self.times) + extra

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions: log-uniform values, uniform time fractions, categorical ``hidden``."""
        # NOTE(space): optuna imported here so that `excolor train` never pays for it.
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        out: dict[str, BaseDistribution] = {}
        for v in self.values:
            out[v.name] = FloatDistribution(v.low, v.high, log=True)
        for t in self.times:
            out[t.name] = FloatDistribution(t.low, t.high)
        if self.hidden is not None:
            out[HIDDEN] = CategoricalDistribution(self.hidden)
        return out

    def reference_params(self) -> dict[str, Any]:
        """Parameters that reproduce ``base`` exactly: the hand schedule as a point of the space.

        ``hidden`` is the experiment's 16 if offered, else the first choice.
        """
        out: dict[str, Any] = {}
        for v in self.values:
            out[v.name] = _key_value(self.base.track(v.prop), v.steps[0])
        rows = _row_steps(self.base)
        for t in self.times:
            out[t.name] = _fraction_of(rows, t.step)
        if self.hidden is not None:
            out[HIDDEN] = _REFERENCE_HIDDEN if _REFERENCE_HIDDEN in self.hidden else self.hidden[0]
        return out

    def apply(self, params: Mapping[str, Any]) -> tuple[Dopesheet, int | None]:
        """The dopesheet (and hidden width, None if not searched) that ``params`` select.

        Values are set first (by base step), then the listed rows move in increasing step
        order, each to ``round(prev + f·(next − prev))`` clamped to ``[prev + 1, next − 1]``,
        where prev/next are the neighbouring row steps of the partly moved sheet. Every
        keyframe, phase and action on a row moves with it, so the order of rows never changes.

        Raises:
            ValueError: A parameter is missing, unknown, not a number or out of its range.
        """
        self._check_params(params)
        new_value = {(v.prop, s): float(params[v.name]) for v in self.values for s in v.steps}

        rows = _row_steps(self.base)
        moved = list(rows)
        for t in sorted(self.times, key=lambda t: t.step):
            i = rows.index(t.step)
            prev, nxt = moved[i - 1], moved[i + 1]
            step = round(prev + float(params[t.name]) * (nxt - prev))
            moved[i] = min(max(step, prev + 1), nxt - 1)
        where = dict(zip(rows, moved))

        tracks = tuple(
            Track(
                track.name,
                track.space,
                track.interpolator,
                tuple(Keyframe(where[k.step], new_value.get((track.name, k.step), k.value)) for k in track.keyframes),
            )
            for track in self.base.tracks
        )
        phases = tuple((where[s], name) for s, name in self.base.phases)
        actions = tuple((where[s], names) for s, names in self.base.actions)
        sheet = Dopesheet(tracks, phases, actions, self.base.length, self.base.source)
        hidden = int(params[HIDDEN]) if self.hidden is not None else None
        return sheet, hidden

    def _check_params(self, params: Mapping[str, Any]) -> None:
        missing = [n for n in self.names if n not in params]
        unknown = sorted(str(n) for n in params if n not in self.names)
        if missing:
            raise ValueError(f"missing search parameter {missing[0]!r}; the space has {list(self.names)}")
        if unknown:
            raise ValueError(f"unknown search parameter {unknown[0]!r}; the space has {list(self.names)}")
        bounds = [(v.name, v.low, v.high) for v in self.values] + [(t.name, t.low, t.high) for t in self.times]
        for name, low, high in bounds:
            x = params[name]
            if isinstance(x, bool) or not isinstance(x, Real) or not math.isfinite(float(x)):
                raise ValueError(f"search parameter {name!r} must be a finite number, got {x!r}")
            if not low <= float(x) <= high:
                raise ValueError(f"search parameter {name!r} = {x!r} is outside its range [{low!r}, {high!r}]")
        if self.hidden is not None:
            h = params[HIDDEN]
            if isinstance(h, bool) or not isinstance(h, Integral) or int(h) not in self.hidden:
                raise ValueError(f"search parameter {HIDDEN!r} must be one of {list(self.hidden)}, got {h!r}")

    # ----------------------------------------------------------------------------- record

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for the study record: the full base sheet, ranges and reference point."""
        ref = self.reference_params()
        return {
            "source": self.source,
            "base": {"source": self.base.source, "csv": self.base.to_csv()},
            "values": [
                {
                    "name": v.name,
                    "prop": v.prop,
                    "steps": list(v.steps),
                    "low": v.low,
                    "high": v.high,
                    "log": True,
                    "reference": ref[v.name],
                }
                for v in self.values
            ],
            "times": [
                {"name": t.name, "step": t.step, "low": t.low, "high": t.high, "reference": ref[t.name]}
                for t in self.times
            ],
            "hidden": None if self.hidden is None else {"choices": list(self.hidden), "reference": ref[HIDDEN]},
        }


# ------------------------------------------------------------------------------- geometry


def _param_name(text_: str) -> str:
    """A valid parameter name from a property name and a step."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", text_)
    return name if name[:1].isalpha() and name != HIDDEN else f"p_{name}"


def _row_steps(sheet: Dopesheet) -> list[int]:
    """Sorted steps that hold any keyframe, phase or action, plus the last step (as in to_csv)."""
    steps = {k.step for t in sheet.tracks for k in t.keyframes}
    steps.update(s for s, _ in sheet.phases)
    steps.update(s for s, _ in sheet.actions)
    steps.add(sheet.length - 1)
    return sorted(steps)


def _fraction_of(rows: list[int], step: int) -> float:
    """Where ``step`` lies between its neighbouring rows, as a fraction in (0, 1)."""
    i = rows.index(step)
    prev, nxt = rows[i - 1], rows[i + 1]
    return (step - prev) / (nxt - prev)


def _key_value(track: Track, step: int) -> float:
    """Value of ``track``'s keyframe at ``step`` (which must exist)."""
    return next(k.value for k in track.keyframes if k.step == step)


# ------------------------------------------------------------------------------- parsing


def _parse(text: str, source: str, root: Path) -> SearchSpace:
    def fail(field: str, reason: str) -> SpaceError:
        return SpaceError(reason, source=source, field=field)

    try:
        doc = _yaml.load(text)
    except YamlSyntaxError as e:
        raise SpaceError(e.reason, source=source, line=e.line) from None
    if doc is None:
        raise fail("", f"empty file; expected a mapping with keys {_listing(_TOP_KEYS)}")
    top = _mapping(doc, "", _TOP_KEYS, ("base",), fail)
    base = _base(top["base"], root, fail)
    values = tuple(
        _value_param(_mapping(entry, f"values[{i}]", _VALUE_KEYS, _VALUE_KEYS, fail), f"values[{i}]", fail)
        for i, entry in enumerate(_list(top.get("values"), "values", fail))
    )
    times = tuple(
        _time_param(_mapping(entry, f"times[{i}]", _TIME_KEYS, _TIME_KEYS, fail), f"times[{i}]", fail)
        for i, entry in enumerate(_list(top.get("times"), "times", fail))
    )
    hidden = None
    if top.get("model") is not None:
        model = _mapping(top["model"], "model", _MODEL_KEYS, (), fail)
        if "hidden" in model:
            hidden = _hidden(model["hidden"], "model.hidden", fail)
    return SearchSpace(base, values, times, hidden, source)


def _base(raw: object, root: Path, fail: _Fail) -> Dopesheet:
    from excolor.experiments import PRESETS, preset

    expected = f"expected a preset name ({_listing(PRESETS)}) or the path of"
    if not isinstance(raw, str) or not raw.strip():
        raise fail("base", f"{expected} a dopesheet CSV, got {_kind(raw)}")
    if raw == REFERENCE_BASE:
        return reference_dopesheet()
    if raw in PRESETS and not (root / raw).is_file():
        return preset(raw).dopesheet
    path = root / Path(raw).expanduser()
    if not path.is_file():
        raise fail("base", f"{expected} a readable dopesheet CSV; no file {str(path)!r}")
    try:
        return Dopesheet.read(path)
    except DopesheetError as e:
        raise fail("base", f"malformed dopesheet: {e}") from None
    except OSError as e:
        raise fail("base", f"cannot read {str(path)!r}: {e.strerror or e}") from None


def _value_param(entry: dict[str, Any], field: str, fail: _Fail) -> ValueParam:
    steps_raw = entry["steps"]
    if not isinstance(steps_raw, list) or not steps_raw:
        raise fail(f"{field}.steps", f"expected a non-empty list of base steps like [248, 750], got {_kind(steps_raw)}")
    steps = tuple(
        _integer_step(s, f"{field}.steps[{j}]", fail, what="an integer step") for j, s in enumerate(steps_raw)
    )
    return ValueParam(
        _name(entry["name"], f"{field}.name", fail),
        _text(entry["prop"], f"{field}.prop", fail),
        steps,
        _number(entry["low"], f"{field}.low", fail),
        _number(entry["high"], f"{field}.high", fail),
    )


def _time_param(entry: dict[str, Any], field: str, fail: _Fail) -> TimeParam:
    return TimeParam(
        _name(entry["name"], f"{field}.name", fail),
        _integer_step(entry["step"], f"{field}.step", fail, what="an integer step"),
        _number(entry["low"], f"{field}.low", fail),
        _number(entry["high"], f"{field}.high", fail),
    )


def _hidden(raw: object, field: str, fail: _Fail) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail(field, f"expected a non-empty list of positive integers like [10, 16], got {_kind(raw)}")
    out: list[int] = []
    for j, h in enumerate(raw):
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise fail(f"{field}[{j}]", f"expected a positive integer, got {_kind(h)}")
        if h in out:
            raise fail(f"{field}[{j}]", f"{h} is listed twice")
        out.append(h)
    return tuple(out)


def _name(raw: object, field: str, fail: _Fail) -> str:
    name = _text(raw, field, fail)
    if not _NAME.fullmatch(name):
        raise fail(field, f"expected a name of letters, digits, '_' and '-' starting with a letter, got {name!r}")
    if name == HIDDEN:
        raise fail(field, f"{HIDDEN!r} is reserved for the model width (model.hidden)")
    return name


# ------------------------------------------------------------------------------- checks


def _check_space(space: SearchSpace) -> None:
    """Every rule that needs the base sheet or spans entries; errors name the field."""

    def fail(field: str, reason: str) -> SpaceError:
        return SpaceError(reason, source=space.source, field=field)

    base = space.base
    rows = _row_steps(base)
    named = [(f"values[{i}].name", v.name) for i, v in enumerate(space.values)]
    named += [(f"times[{i}].name", t.name) for i, t in enumerate(space.times)]
    first: dict[str, str] = {}
    for field, name in named:
        if name in first:
            raise fail(field, f"duplicate parameter name {name!r} (also {first[name]})")
        first[name] = field
    if not space.values and not space.times and space.hidden is None:
        raise fail("", "the space has no parameters; add entries under values, times or model.hidden")

    keyed: dict[tuple[str, int], str] = {}
    for i, v in enumerate(space.values):
        f = f"values[{i}]"
        if not v.low > 0:
            raise fail(f"{f}.low", f"expected a number > 0 (values are searched on a log scale), got {v.low!r}")
        if not v.high > v.low:
            raise fail(f"{f}.high", f"expected a number > low ({v.low!r}), got {v.high!r}")
        if v.prop not in base.props:
            raise fail(
                f"{f}.prop", f"{v.prop!r} is not a column of the base dopesheet; columns: {_listing(base.props)}"
            )
        if not v.steps:
            raise fail(f"{f}.steps", "expected a non-empty list of base steps like [248, 750]")
        track = base.track(v.prop)
        track_steps = [k.step for k in track.keyframes]
        for j, s in enumerate(v.steps):
            if s not in rows:
                raise fail(
                    f"{f}.steps[{j}]", f"{s} is not a keyframe step of the base dopesheet; its steps: {_listing(rows)}"
                )
            if s not in track_steps:
                raise fail(
                    f"{f}.steps[{j}]",
                    f"{v.prop!r} has no keyframe at step {s}; its keyframes are at {_listing(track_steps)}",
                )
            if (v.prop, s) in keyed:
                raise fail(f"{f}.steps[{j}]", f"keyframe {v.prop}@{s} is already searched by {keyed[v.prop, s]}")
            keyed[v.prop, s] = f"{f} ({v.name!r})"
        base_values = [_key_value(track, s) for s in v.steps]
        for s, x in zip(v.steps, base_values):
            if x != base_values[0]:
                raise fail(
                    f"{f}.steps",
                    f"tied keyframes differ in the base: {v.prop} is {base_values[0]!r} at step {v.steps[0]} "
                    f"but {x!r} at step {s}; tie only keyframes with equal values",
                )
        ref = base_values[0]
        if ref < v.low:
            raise fail(
                f"{f}.low", f"the base value of {v.prop} at step {v.steps[0]} ({ref!r}) is below low ({v.low!r})"
            )
        if ref > v.high:
            raise fail(
                f"{f}.high", f"the base value of {v.prop} at step {v.steps[0]} ({ref!r}) is above high ({v.high!r})"
            )

    moved: dict[int, str] = {}
    for i, t in enumerate(space.times):
        f = f"times[{i}]"
        if not 0.0 < t.low < 1.0:
            raise fail(f"{f}.low", f"expected a fraction strictly between 0 and 1, got {t.low!r}")
        if not t.low < t.high < 1.0:
            raise fail(f"{f}.high", f"expected a fraction > low ({t.low!r}) and < 1, got {t.high!r}")
        if t.step not in rows:
            raise fail(
                f"{f}.step", f"{t.step} is not a keyframe step of the base dopesheet; its steps: {_listing(rows)}"
            )
        if t.step == rows[0]:
            raise fail(f"{f}.step", f"step {t.step} is the first row and cannot move")
        if t.step == rows[-1]:
            raise fail(f"{f}.step", f"step {t.step} is the last step (it fixes the run length) and cannot move")
        if t.step in moved:
            raise fail(f"{f}.step", f"step {t.step} is already moved by {moved[t.step]}")
        moved[t.step] = f"{f} ({t.name!r})"
        ref = _fraction_of(rows, t.step)
        i_row = rows.index(t.step)
        between = f"the base step {t.step} lies at fraction {ref:.6g} between {rows[i_row - 1]} and {rows[i_row + 1]}"
        if ref < t.low:
            raise fail(f"{f}.low", f"{between}, below low ({t.low!r})")
        if ref > t.high:
            raise fail(f"{f}.high", f"{between}, above high ({t.high!r})")

    if space.hidden is not None and (
        not space.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in space.hidden)
    ):
        raise fail("model.hidden", f"expected a non-empty list of positive integers, got {list(space.hidden)}")
