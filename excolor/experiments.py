"""Experiments as data: the shipped presets and user-written experiment files (YAML).

An experiment file says everything a run needs besides its seeds' outcomes: the model, the data
(colour set, sampler, label rules), the regularizer set, the dopesheet and the evaluation. The
presets in ``excolor/presets/`` are such files (Ex 2.9.1 is the default); the resolved experiment
is written beside every result as ``experiment.yaml`` and can be run again as it is::

    name: my-experiment
    description: one line for `excolor experiments`
    seeds: 0-59                    # used when a command gives no --seeds
    model: {kind: CNColorMLP, k_bottleneck: 5, hidden: 16, n_nonlinear: 2}
    data:
      colors: rgb-grid             # rgb-grid (subdivisions³ corners) | hsv-cube (hsv_shape)
      subdivisions: 8
      weighting: uniform           # uniform | bias (the HSV cube's weights)
      batch_size: 64
      labels:                      # P(label) = attribute^power · scale
        red: {attribute: redness, power: 8, scale: 0.08}
    regularizers:
      - {name: anchor, kind: AngularAnchor, concept: [1, 0, 0, 0, 0], labels: {red: 1.0},
         phases: [train, validate]}
      - {name: separate, kind: Separate, options: {power: 100, shift: true}}
    dopesheet: my-schedule.csv     # a path relative to this file, a preset name, or inline CSV
    evaluation: {concept_dim: 0, anchor_hsv: [0, 1, 1], score_power: 3, score_grid: 8,
                 interventions: [suppression]}

Every mistake raises one :class:`ExperimentError` naming the file and the field
(``regularizers[1].kind``) and the allowed values: the file is hand-written input. Sizes are bounded
before anything is allocated (``excolor.limits``: the file's size, nesting, digits, model and batch
sizes, grids, seeds, and the memory two models need); concept vectors must be usable directions and
label strengths lie in [-1, 1] (``excolor.regularizers.check_concept``, ``check_affinities``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from excolor import _yaml, limits
from excolor._yaml import Fail, YamlSyntaxError, kind, listing, mapping, number, sequence, text
from excolor.colors import RED_HSV
from excolor.config import STREAMS, Evaluation, Experiment, ModelConfig
from excolor.data import COLOR_SETS, LABEL_ATTRIBUTES, WEIGHTINGS, LabelRule, TrainingData
from excolor.dopesheet import Dopesheet, DopesheetError
from excolor.methods import REGISTERED, InterventionSpec, as_intervention
from excolor.model import MODEL_KINDS
from excolor.regularizers import (
    LAYERS,
    MIN_AFFINITY,
    Anchor,
    AngularAnchor,
    AntiAnchor,
    AxisAlignedSubspace,
    Planarity,
    Regularizer,
    RegularizerConfig,
    Separate,
    Unitarity,
    check_concept,
)
from excolor.seeds import count_seeds

__all__ = [
    "DEFAULT_EXPERIMENT",
    "PRESETS",
    "REGULARIZER_KINDS",
    "ExperimentError",
    "ex_2_9_1",
    "from_dict",
    "load_experiment",
    "parse_experiment",
    "preset",
    "preset_summaries",
    "to_dict",
    "to_yaml",
]

PRESETS = ("ex-2.9.1", "ex-2.9.1-tuned", "ex-2.10.1", "ex-2.8", "ex-2.4", "ex-2.1")
"""Shipped experiments (science.md §4.5, §4.6, §5.4), the default first; ``ex-2.9.1-tuned`` is
Ex 2.9.1 with the schedule excolor's own search and held-out validation chose (its file says how)."""

DEFAULT_EXPERIMENT = PRESETS[0]

FORMAT = "excolor.experiment/1"


@dataclass(frozen=True)
class _Kind:
    """How one regularizer kind is built: its class, whether it takes a concept vector, its options."""

    cls: type[Regularizer]
    concept: bool
    options: Mapping[str, str]  # option -> what it must be ('bool', 'number', 'dims')
    required: tuple[str, ...] = ()


REGULARIZER_KINDS: dict[str, _Kind] = {
    "Anchor": _Kind(Anchor, True, {}),
    "AngularAnchor": _Kind(AngularAnchor, True, {}),
    "AntiAnchor": _Kind(AntiAnchor, True, {"hemi": "bool"}),
    "Separate": _Kind(Separate, False, {"power": "number", "shift": "bool", "channels": "dims"}),
    "AxisAlignedSubspace": _Kind(AxisAlignedSubspace, False, {"dims": "dims", "invert": "bool"}, ("dims",)),
    "Planarity": _Kind(Planarity, False, {"dims": "dims"}),
    "Unitarity": _Kind(Unitarity, False, {}),
}
"""Regularizer kinds an experiment file may name (§4.2), with their options."""

_TOP_KEYS: tuple[str, ...] = ("format", "name", "description", "seeds", "model", "data", "regularizers")
_TOP_KEYS += ("dopesheet", "evaluation", "stream")
_MODEL_KEYS = ("kind", "k_bottleneck", "hidden", "n_nonlinear", "k_codec")  # k_codec: the old name of hidden
_OLD_NAMES = {"model": {"k_codec": "hidden"}, "data": {"sampler": "weighting"}}
"""Field names of files and study records written before excolor named each thing once: still read."""
_DATA_KEYS = ("colors", "subdivisions", "hsv_shape", "weighting", "batch_size", "validation_grid", "labels", "sampler")
_LABEL_KEYS = ("attribute", "power", "scale")
_REG_KEYS = ("name", "kind", "concept", "labels", "layer", "phases", "options")
_EVAL_KEYS = ("concept_dim", "concept_dims", "anchor_hsv", "score_power", "score_grid", "interventions")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_TERM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_MAX_COLORS = limits.MAX_COLORS
_MAX_GRID = limits.MAX_GRID


class ExperimentError(ValueError):
    """An experiment file is malformed: which file and field, and what was expected."""

    def __init__(self, reason: str, *, source: str = "<string>", field: str = "", line: int | None = None) -> None:
        self.reason, self.source, self.field, self.line = reason, source, field, line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source + (f", line {self.line}" if self.line is not None else "")
        return f"{where}{', ' + self.field if self.field else ''}: {self.reason}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_error, (self.reason, self.source, self.field, self.line))


def _rebuild_error(reason: str, source: str, field: str, line: int | None) -> ExperimentError:
    return ExperimentError(reason, source=source, field=field, line=line)


# ------------------------------------------------------------------------------------- presets


def _preset_path(name: str) -> Any:
    return files("excolor") / "presets" / f"{name}.yaml"


def preset(name: str = DEFAULT_EXPERIMENT) -> Experiment:
    """A shipped experiment by name (``excolor experiments`` lists them)."""
    if name not in PRESETS:
        raise ExperimentError(f"unknown preset; the presets are {listing(PRESETS)}", source=repr(name))
    text_ = _preset_path(name).read_text(encoding="utf-8")
    return parse_experiment(text_, source=f"preset {name}", root=None)


def ex_2_9_1(*, hidden: int = 16, dopesheet: Dopesheet | None = None, stream: str = "hash") -> Experiment:
    """Experiment 2.9.1 (the shipped preset): red on axis 0 of a 5-D unit latent, N = 2, H = 16 by default.

    Args:
        hidden: the hidden width (16 as in the 60-seed reference, 10 as in the 100-seed one; §2.4).
        dopesheet: a schedule replacing the reference one.
        stream: the batch/label stream (§14.1).
    """
    experiment = preset("ex-2.9.1")
    if dopesheet is not None:
        experiment = experiment.with_dopesheet(dopesheet)
    if stream != experiment.stream:
        experiment = replace(experiment, stream=stream)
    return experiment.with_model(hidden=hidden) if hidden != experiment.model.hidden else experiment


def preset_summaries() -> list[tuple[str, str]]:
    """(name, description) of every preset, in ``PRESETS`` order."""
    return [(name, preset(name).description) for name in PRESETS]


def load_experiment(spec: str | os.PathLike[str]) -> Experiment:
    """A preset name or the path of an experiment file."""
    if isinstance(spec, str) and spec in PRESETS:
        return preset(spec)
    path = Path(spec).expanduser()
    source = str(spec)
    if not path.exists():
        raise ExperimentError(
            f"no such preset or file; presets: {listing(PRESETS)} (or the path of an experiment YAML file)",
            source=source,
        )
    try:
        text_ = _yaml.read_text(path)
    except _yaml.UnreadableText as e:
        raise ExperimentError(str(e), source=source) from None
    return parse_experiment(text_, source=source, root=path.parent)


# ------------------------------------------------------------------------------------- parsing


def parse_experiment(text_: str, *, source: str = "<string>", root: str | os.PathLike[str] | None = None) -> Experiment:
    """Parse and validate experiment YAML; ``root`` resolves a relative dopesheet path (default: CWD)."""
    try:
        doc = _yaml.load(text_)
    except YamlSyntaxError as e:
        raise ExperimentError(e.reason, source=source, line=e.line) from None
    return from_dict(doc, source=source, root=root)


def from_dict(doc: object, *, source: str = "<dict>", root: str | os.PathLike[str] | None = None) -> Experiment:
    """An ``Experiment`` from plain data in the experiment-file schema (``to_dict``'s inverse)."""

    def fail(field: str, reason: str) -> ExperimentError:
        return ExperimentError(reason, source=source, field=field)

    if doc is None:
        raise fail("", "empty file; expected a mapping with keys " + listing(_TOP_KEYS))
    top = mapping(doc, "", _TOP_KEYS, ("name", "regularizers", "dopesheet"), fail)
    if "format" in top and top["format"] != FORMAT:
        raise fail("format", f"expected {FORMAT!r} (or leave it out), got {kind(top['format'])}")
    name = text(top["name"], "name", fail)
    _short(name, "name", fail)
    if not _NAME.fullmatch(name):
        raise fail("name", f"expected letters, digits and '_.+-' (it names result files), got {name!r}")
    description = top.get("description") or ""
    if not isinstance(description, str):
        raise fail("description", f"expected one line of text, got {kind(description)}")
    description = " ".join(description.split())  # one line, whatever the YAML folding
    seeds = top.get("seeds", "0-59")
    seeds = str(seeds) if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not isinstance(seeds, str):
        raise fail("seeds", f"expected seeds like 0-59 or 0,4,8, got {kind(seeds)}")
    try:  # the rule of --seeds, so that a bad list is refused here and not blamed on --seeds later
        count_seeds(seeds)
    except ValueError as e:
        raise fail("seeds", str(e)) from None
    stream = top.get("stream", "hash")
    if stream not in STREAMS:
        raise fail("stream", f"expected one of {listing(STREAMS)}, got {kind(stream)}")

    model = _model(_section(top, "model"), fail)
    data = _data(_section(top, "data"), fail)
    regularizers = tuple(
        _regularizer(entry, f"regularizers[{i}]", model, data, fail)
        for i, entry in enumerate(sequence(top["regularizers"], "regularizers", fail))
    )
    if not regularizers:
        raise fail("regularizers", "expected at least one regularizer")
    names = [r.name for r in regularizers]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise fail(f"regularizers[{i}].name", f"duplicate regularizer name {n!r}")
    evaluation = _evaluation(_section(top, "evaluation"), model, fail)
    _check_memory(model, data, evaluation, fail)
    if stream == "original" and (data.colors != "rgb-grid" or data.weighting != "uniform" or len(data.labels) != 1):
        raise fail(
            "stream",
            "'original' reproduces the published Ex 2.9.1-style runs only (an rgb-grid, the uniform sampler, one "
            "label); use 'hash'",
        )
    sheet = _dopesheet(top["dopesheet"], Path(root) if root is not None else Path.cwd(), fail)
    try:
        sheet.check_properties(names)
    except DopesheetError as e:
        raise fail("dopesheet", f"{e.reason} (the regularizers are {listing(names)})") from None
    try:
        return Experiment(
            name=name,
            dopesheet=sheet,
            regularizers=regularizers,
            model=model,
            data=data,
            evaluation=evaluation,
            stream=stream,
            description=description.strip(),
            seeds=seeds.strip(),
        )
    except ValueError as e:  # cross-field rules (layer/label/stream); the message names the field
        raise fail("", str(e)) from None


def _section(parent: dict[str, Any], key: str) -> object:
    """A sub-mapping; absent or empty (null) means all defaults, anything else is checked as a mapping."""
    value = parent.get(key)
    return {} if value is None else value


def _renamed(section: str, m: dict[str, Any], fail: Fail) -> dict[str, Any]:
    """A section with its old field names read as the current ones (both at once is an error)."""
    out = dict(m)
    for old, new in _OLD_NAMES[section].items():
        if old in out:
            if new in out:
                raise fail(f"{section}.{old}", f"'{old}' is the old name of '{new}'; give only '{new}'")
            out[new] = out.pop(old)
    return out


def _model(raw: object, fail: Fail) -> ModelConfig:
    m = _renamed("model", mapping(raw, "model", _MODEL_KEYS, (), fail), fail)
    kind_ = m.get("kind", "CNColorMLP")
    if kind_ not in MODEL_KINDS:
        raise fail("model.kind", f"expected one of {listing(MODEL_KINDS)}, got {kind(kind_)}")
    defaults = {"k_bottleneck": 5, "hidden": 16, "n_nonlinear": 2 if kind_ == "CNColorMLP" else 1}
    sizes = {k: _positive(m.get(k, v), f"model.{k}", fail) for k, v in defaults.items()}
    return ModelConfig(kind=kind_, **sizes)


def _positive(raw: object, field: str, fail: Fail) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise fail(field, f"expected a positive integer, got {kind(raw)}")
    cap = limits.SIZE_FIELDS.get(field, (None, 0))[0]
    if cap is not None and raw > cap:
        raise fail(field, f"at most {cap:,} is supported (excolor.limits), got {limits.describe_number(raw)}")
    return raw


def _short(name: str, field: str, fail: Fail) -> None:
    if len(name) > limits.MAX_NAME:
        raise fail(field, f"a name of at most {limits.MAX_NAME} characters is supported, got {len(name):,}")


def _check_memory(model: ModelConfig, data: TrainingData, evaluation: Evaluation, fail: Fail) -> None:
    """Refuse sizes whose two models cannot fit in memory (``excolor.limits.check_memory``)."""
    sizes = {
        "model.k_bottleneck": model.k_bottleneck,
        "model.hidden": model.hidden,
        "model.n_nonlinear": model.n_nonlinear,
        "data.batch_size": data.batch_size,
        "data.validation_grid": data.validation_grid,
        "evaluation.score_grid": evaluation.score_grid,
    }
    try:
        limits.check_memory(sizes)
    except limits.LimitError as e:
        raise fail(e.field, e.reason) from None


def _data(raw: object, fail: Fail) -> TrainingData:
    d = _renamed("data", mapping(raw, "data", _DATA_KEYS, (), fail), fail)
    colors = d.get("colors", "rgb-grid")
    if colors not in COLOR_SETS:
        raise fail("data.colors", f"expected one of {listing(COLOR_SETS)}, got {kind(colors)}")
    weighting = d.get("weighting", "uniform")
    if weighting not in WEIGHTINGS:
        raise fail("data.weighting", f"expected one of {listing(WEIGHTINGS)}, got {kind(weighting)}")
    if weighting == "bias" and colors != "hsv-cube":
        raise fail("data.weighting", "'bias' weights come with the hsv-cube colour set; use 'uniform' for an rgb-grid")
    if colors == "rgb-grid" and "hsv_shape" in d:
        raise fail("data.hsv_shape", "only an hsv-cube has an hsv_shape; an rgb-grid takes subdivisions")
    if colors == "hsv-cube" and "subdivisions" in d:
        raise fail("data.subdivisions", "only an rgb-grid has subdivisions; an hsv-cube takes hsv_shape")
    shape = d.get("hsv_shape", [36, 10, 10])
    if not isinstance(shape, list) or len(shape) != 3:
        raise fail("data.hsv_shape", f"expected [hues, saturations, values] like [36, 10, 10], got {kind(shape)}")
    hsv_shape = tuple(_positive(v, f"data.hsv_shape[{i}]", fail) for i, v in enumerate(shape))
    if hsv_shape[0] * hsv_shape[1] * hsv_shape[2] > _MAX_COLORS:
        raise fail("data.hsv_shape", f"at most {_MAX_COLORS:,} colours are supported, got {list(hsv_shape)}")
    subdivisions = _positive(d.get("subdivisions", 8), "data.subdivisions", fail)
    validation_grid = _positive(d.get("validation_grid", 8), "data.validation_grid", fail)
    for field, value in (("subdivisions", subdivisions), ("validation_grid", validation_grid)):
        if value > _MAX_GRID:
            raise fail(f"data.{field}", f"at most {_MAX_GRID} points per axis are supported, got {value}")
    for field, value in (("subdivisions", subdivisions), ("validation_grid", validation_grid)):
        if value < 2:
            raise fail(f"data.{field}", f"expected at least 2 points per axis, got {value}")
    labels_raw = d.get("labels", {"red": {"attribute": "redness", "power": 8, "scale": 0.08}})
    if not isinstance(labels_raw, dict):
        raise fail(
            "data.labels", f"expected a mapping of label name -> {{attribute, power, scale}}, got {kind(labels_raw)}"
        )
    labels = {}
    for label, rule in labels_raw.items():
        f = f"data.labels.{label}"
        if not isinstance(label, str) or not _NAME.fullmatch(label):
            raise fail(f, "label names are letters, digits and '_.+-'")
        _short(label, f, fail)
        r = mapping(rule, f, _LABEL_KEYS, _LABEL_KEYS, fail)
        if r["attribute"] not in LABEL_ATTRIBUTES:
            raise fail(f"{f}.attribute", f"expected one of {listing(LABEL_ATTRIBUTES)}, got {kind(r['attribute'])}")
        power = number(r["power"], f"{f}.power", fail)
        if not 0 < power <= limits.MAX_POWER:
            raise fail(f"{f}.power", f"expected a number > 0 and at most {limits.MAX_POWER:g}, got {power!r}")
        scale = number(r["scale"], f"{f}.scale", fail)
        if not 0 <= scale <= 1:
            raise fail(f"{f}.scale", f"expected a probability in [0, 1], got {scale!r}")
        if 0 < scale < 1e-9:
            raise fail(f"{f}.scale", f"{scale!r} labels no colour in practice; expected 0 or at least 1e-9")
        labels[label] = LabelRule(r["attribute"], power, scale)
    return TrainingData(
        colors=colors,
        subdivisions=subdivisions,
        hsv_shape=hsv_shape,  # type: ignore[arg-type]
        weighting=weighting,
        labels=labels,
        batch_size=_positive(d.get("batch_size", 64), "data.batch_size", fail),
        validation_grid=validation_grid,
    )


def _dims(raw: object, field: str, width: int, fail: Fail) -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise fail(field, f"expected a non-empty list of latent dimensions like [0, 1], got {kind(raw)}")
    out = []
    for j, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < width:
            raise fail(f"{field}[{j}]", f"expected a latent dimension in 0..{width - 1}, got {kind(v)}")
        if v in out:
            raise fail(f"{field}[{j}]", f"dimension {v} is listed twice")
        out.append(v)
    return out


def _regularizer(raw: object, field: str, model: ModelConfig, data: TrainingData, fail: Fail) -> RegularizerConfig:
    r = mapping(raw, field, _REG_KEYS, ("name", "kind"), fail)
    name = text(r["name"], f"{field}.name", fail)
    _short(name, f"{field}.name", fail)
    if not _TERM_NAME.fullmatch(name):
        raise fail(
            f"{field}.name",
            f"expected a name of letters, digits, '_', '-' and '.' starting with a letter (it is a dopesheet "
            f"column and a metric name), got {name!r}",
        )
    if name in {"lr", "STEP", "PHASE", "ACTION"} or ":" in name or "," in name:
        raise fail(f"{field}.name", f"{name!r} cannot name a regularizer (it is a dopesheet keyword or has ':' or ',')")
    kind_name = r["kind"]
    if kind_name not in REGULARIZER_KINDS:
        raise fail(
            f"{field}.kind", f"unknown regularizer kind {kind(kind_name)}; expected one of {listing(REGULARIZER_KINDS)}"
        )
    spec = REGULARIZER_KINDS[kind_name]
    width = model.k_bottleneck
    args: list[Any] = []
    if spec.concept:
        if "concept" not in r:
            raise fail(f"{field}.concept", f"{kind_name} needs a concept vector of {width} numbers, e.g. [1, 0, ...]")
        concept = r["concept"]
        if not isinstance(concept, list) or len(concept) != width:
            raise fail(
                f"{field}.concept", f"expected a list of {width} numbers (the latent width), got {kind(concept)}"
            )
        vector = [number(v, f"{field}.concept[{j}]", fail) for j, v in enumerate(concept)]
        try:
            check_concept(vector, direction=kind_name != "Anchor")
        except ValueError as e:
            raise fail(f"{field}.concept", str(e)) from None
        args.append(vector)
    elif "concept" in r:
        raise fail(f"{field}.concept", f"{kind_name} takes no concept vector")
    options_raw = _section(r, "options")
    if not spec.options and isinstance(options_raw, dict) and options_raw:
        key = next(iter(options_raw))
        raise fail(f"{field}.options.{key}", f"unknown option {key!r}: {kind_name} takes no options")
    options = mapping(options_raw, f"{field}.options", tuple(spec.options), spec.required, fail)
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        f = f"{field}.options.{key}"
        what = spec.options[key]
        if what == "bool":
            if not isinstance(value, bool):
                raise fail(f, f"expected true or false, got {kind(value)}")
            kwargs[key] = value
        elif what == "number":
            kwargs[key] = number(value, f, fail)
            if key == "power" and not 1 <= kwargs[key] <= limits.MAX_POWER:
                raise fail(f, f"expected a power >= 1 and at most {limits.MAX_POWER:g}, got {kwargs[key]!r}")
        else:
            kwargs[key] = _dims(value, f, width, fail)
    layer = r.get("layer", model.layers[-1])
    if layer not in LAYERS:
        raise fail(f"{field}.layer", f"expected one of {listing(model.layers)}, got {kind(layer)}")
    if layer not in model.layers:
        raise fail(f"{field}.layer", f"a {model.kind} has no layer {layer!r}; expected one of {listing(model.layers)}")
    affinities = None
    if r.get("labels") is not None:
        labels = r["labels"]
        if not isinstance(labels, dict) or not labels:
            raise fail(
                f"{field}.labels", f"expected a mapping of label -> strength like {{red: 1.0}}, got {kind(labels)}"
            )
        affinities = {}
        for label, strength in labels.items():
            if label not in data.labels:
                raise fail(
                    f"{field}.labels.{label}",
                    f"unknown label {label!r}; the data defines {listing(data.labels) or '(no labels)'}",
                )
            affinities[label] = number(strength, f"{field}.labels.{label}", fail)
            if not -1 <= affinities[label] <= 1 or abs(affinities[label]) < MIN_AFFINITY:
                raise fail(
                    f"{field}.labels.{label}",
                    f"expected a strength in [-1, 1] of magnitude at least {MIN_AFFINITY:g} (a sample's weight is "
                    f"clamp(sum of label x strength, 0, 1)), got {strength!r}",
                )
        if max(affinities.values()) <= 0:
            raise fail(f"{field}.labels", "no strength is positive, so the term would apply to no sample")
    phases_raw = r.get("phases", ["train"])
    phases_raw = [phases_raw] if isinstance(phases_raw, str) else phases_raw
    if not isinstance(phases_raw, list) or not phases_raw or any(p not in ("train", "validate") for p in phases_raw):
        raise fail(
            f"{field}.phases", f"expected a non-empty list of train and/or validate, got {kind(r.get('phases'))}"
        )
    try:
        term = spec.cls(*args, **kwargs)
    except ValueError as e:
        raise fail(field, str(e)) from None
    return RegularizerConfig(name, term, label_affinities=affinities, layer=layer, phases=frozenset(phases_raw))


def _evaluation(raw: object, model: ModelConfig, fail: Fail) -> Evaluation:
    e = mapping(raw, "evaluation", _EVAL_KEYS, (), fail)
    concept_dim = e.get("concept_dim", 0)
    if isinstance(concept_dim, bool) or not isinstance(concept_dim, int) or not 0 <= concept_dim < model.k_bottleneck:
        raise fail(
            "evaluation.concept_dim",
            f"expected a latent dimension in 0..{model.k_bottleneck - 1}, got {kind(concept_dim)}",
        )
    anchor = e.get("anchor_hsv", list(RED_HSV))
    if not isinstance(anchor, list) or len(anchor) != 3:
        raise fail(
            "evaluation.anchor_hsv", f"expected [hue, saturation, value] in [0, 1] like [0, 1, 1], got {kind(anchor)}"
        )
    hsv = tuple(number(v, f"evaluation.anchor_hsv[{j}]", fail) for j, v in enumerate(anchor))
    if not all(0 <= v <= 1 for v in hsv):
        raise fail("evaluation.anchor_hsv", f"expected numbers in [0, 1], got {list(hsv)}")
    power = number(e.get("score_power", 3.0), "evaluation.score_power", fail)
    if not 0 < power <= limits.MAX_POWER:
        raise fail("evaluation.score_power", f"expected a number > 0 and at most {limits.MAX_POWER:g}, got {power!r}")
    grid = _positive(e.get("score_grid", 8), "evaluation.score_grid", fail)
    if grid > _MAX_GRID:
        raise fail("evaluation.score_grid", f"at most {_MAX_GRID} points per axis are supported, got {grid}")
    if grid < 2:
        raise fail("evaluation.score_grid", f"expected at least 2 points per axis, got {grid}")
    interventions = e.get("interventions", [])
    if not isinstance(interventions, list):
        raise fail(
            "evaluation.interventions",
            f"expected a list of names ({listing(REGISTERED)}) or mappings {{name, kind, falloff | mapper, power}}, "
            f"got {kind(interventions)}",
        )
    specs: list[InterventionSpec] = []
    for j, entry in enumerate(interventions):
        f = f"evaluation.interventions[{j}]"
        if isinstance(entry, str) and entry not in REGISTERED:
            raise fail(f, f"expected one of {listing(REGISTERED)} or a mapping, got {kind(entry)}")
        try:
            spec = as_intervention(entry)
        except (ValueError, TypeError) as err:
            raise fail(f, str(err)) from None
        if spec.name in [s.name for s in specs]:
            if spec == next(s for s in specs if s.name == spec.name):
                continue  # a repeated name is harmless (older files were read as a set)
            raise fail(f, f"duplicate intervention name {spec.name!r}")
        specs.append(spec)
    dims = tuple(_dims(e.get("concept_dims", [concept_dim]), "evaluation.concept_dims", model.k_bottleneck, fail))
    if len(dims) >= model.k_bottleneck:
        raise fail("evaluation.concept_dims", f"must leave at least one of the {model.k_bottleneck} latent dimensions")
    return Evaluation(concept_dim, hsv, power, grid, tuple(specs), dims)  # type: ignore[arg-type]


def _dopesheet(raw: object, root: Path, fail: Fail) -> Dopesheet:
    if not isinstance(raw, str) or not raw.strip():
        raise fail(
            "dopesheet",
            f"expected the path of a dopesheet CSV, a preset name ({listing(PRESETS)}) or inline CSV text, "
            f"got {kind(raw)}",
        )
    try:
        if "\n" in raw.strip():  # inline CSV (a YAML block scalar)
            return Dopesheet.parse(raw, source="dopesheet (inline)")
        path = root / Path(raw).expanduser()
        if not path.exists() and raw in PRESETS:
            return _preset_dopesheet(raw)
        if not path.exists():
            raise fail("dopesheet", f"no file {str(path)!r}; expected a dopesheet CSV, a preset name or inline CSV")
        return Dopesheet.read(path)
    except DopesheetError as e:
        raise fail("dopesheet", f"malformed dopesheet: {e}") from None
    except OSError as e:
        raise fail("dopesheet", f"cannot read it: {e.strerror or e}") from None


def _preset_dopesheet(name: str) -> Dopesheet:
    """The dopesheet of a preset (the ``dopesheet`` entry of its YAML)."""
    resource = files("excolor") / "presets" / f"{name}-dopesheet.csv"
    return Dopesheet.parse(resource.read_text(encoding="utf-8"), source=f"{name}-dopesheet.csv")


# ------------------------------------------------------------------------------------- writing


def to_dict(experiment: Experiment) -> dict[str, Any]:
    """Plain data in the experiment-file schema, dopesheet inline: what ``experiment.yaml`` holds."""
    m, d, e = experiment.model, experiment.data, experiment.evaluation
    data: dict[str, Any] = {"colors": d.colors}
    if d.colors == "rgb-grid":
        data["subdivisions"] = d.subdivisions
    else:
        data["hsv_shape"] = list(d.hsv_shape)
    data.update(
        weighting=d.weighting,
        batch_size=d.batch_size,
        validation_grid=d.validation_grid,
        labels={k: {"attribute": r.attribute, "power": r.power, "scale": r.scale} for k, r in d.labels.items()},
    )
    regs = []
    for r in experiment.regularizers:
        entry: dict[str, Any] = {"name": r.name, "kind": type(r.term).__name__}
        if r.term.concept is not None:
            entry["concept"] = r.term.concept
        if r.label_affinities is not None:
            entry["labels"] = dict(r.label_affinities)
        entry["layer"] = r.layer
        entry["phases"] = [p for p in ("train", "validate") if p in r.phases]
        if r.term.options():
            entry["options"] = r.term.options()
        regs.append(entry)
    return {
        "format": FORMAT,
        "name": experiment.name,
        "description": experiment.description,
        "seeds": experiment.seeds,
        "stream": experiment.stream,
        "model": {"kind": m.kind, "k_bottleneck": m.k_bottleneck, "hidden": m.hidden, "n_nonlinear": m.n_nonlinear},
        "data": data,
        "regularizers": regs,
        "dopesheet": experiment.dopesheet.to_csv(),
        "evaluation": {
            "concept_dim": e.concept_dim,
            "anchor_hsv": [float(v) for v in e.anchor_hsv],
            "score_power": e.score_power,
            "score_grid": e.score_grid,
            "interventions": [i.name if REGISTERED.get(i.name) == i else i.to_dict() for i in e.interventions],
            "concept_dims": list(e.concept_dims),
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the inline dopesheet) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, (int, float, str)) and not (isinstance(v, str) and "\n" in v) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _map(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.Node:
    """Small mappings of scalars (a label rule, affinities, options) on one line."""
    flow = len(value) <= 3 and all(isinstance(v, (int, float, str, bool)) for v in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(dict, _map)


def to_yaml(experiment: Experiment) -> str:
    """The resolved experiment as an experiment file (``load_experiment`` reads it back)."""
    header = f"# excolor experiment {experiment.name!r}: resolved, dopesheet inline; run it with --experiment FILE\n"
    return header + yaml.dump(to_dict(experiment), Dumper=_Dumper, sort_keys=False, width=100)
