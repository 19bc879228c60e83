"""Experiments as data: the shipped presets, training them, the legacy paths against the autograd
oracle, the legacy HSV data, Separate without shift, and experiment-file errors.

science.md §2.3 (ColorMLP), §3.8 (legacy data), §4.2 (terms), §4.6 (older regularizer sets), §5.4
(older dopesheets).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
import tomllib
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from excolor.colors import hsv_to_rgb
from excolor.data import LABEL_ATTRIBUTES, HashSampler, LabelRule, TrainingData
from excolor.dopesheet import Dopesheet, reference_dopesheet
from excolor.experiments import (
    PRESETS,
    REGULARIZER_KINDS,
    ExperimentError,
    ex_2_9_1,
    from_dict,
    load_experiment,
    parse_experiment,
    preset,
    preset_summaries,
    to_dict,
    to_yaml,
)
from excolor.plain import train_plain
from excolor.regularizers import (
    Anchor,
    AngularAnchor,
    AntiAnchor,
    AxisAlignedSubspace,
    Planarity,
    Separate,
    Unitarity,
)
from excolor.train import PopulationTrainer

REPO = Path(__file__).resolve().parents[2]
PRESET_DIR = REPO / "excolor" / "presets"
BOTH = {"train", "validate"}
TRAIN = {"train"}


@pytest.fixture(autouse=True)
def _one_thread():
    """Train on one thread: the models are tiny, results do not depend on the thread count
    (test_train), and two threads spin-wait ~10x slower when other processes share the two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _preset_csv(name: str) -> str:
    return (files("excolor") / "presets" / f"{name}-dopesheet.csv").read_text(encoding="utf-8")


# =============================================================================== 1. presets


def test_preset_list() -> None:
    """The six shipped experiments, the default (Ex 2.9.1) first, each with a YAML and a CSV."""
    assert PRESETS == ("ex-2.9.1", "ex-2.9.1-tuned", "ex-2.10.1", "ex-2.8", "ex-2.4", "ex-2.1")
    for name in PRESETS:
        assert (PRESET_DIR / f"{name}.yaml").is_file()
        assert (PRESET_DIR / f"{name}-dopesheet.csv").is_file()


def test_presets_ship_with_the_package() -> None:
    """``preset()`` reads ``excolor/presets/<name>.yaml`` as package data: a wheel must carry every
    file of that folder, YAML included, or no preset loads outside an editable checkout."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"].get("package-data", {}).get("excolor", [])
    shipped = sorted(p.name for p in PRESET_DIR.iterdir() if p.is_file())
    missing = [n for n in shipped if not any(fnmatch.fnmatch(f"presets/{n}", g) for g in globs)]
    assert not missing, f"pyproject.toml package-data for excolor ({globs}) leaves out {missing}"


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads(name: str) -> None:
    """A preset loads by name through ``preset`` and ``load_experiment`` alike."""
    e = preset(name)
    assert e.name == name
    assert to_dict(load_experiment(name)) == to_dict(e)
    assert e.description and "\n" not in e.description
    assert e.seeds == "0-59"
    assert e.stream == "hash"


def test_preset_summaries_are_one_line_each() -> None:
    """``excolor experiments`` prints one line per preset, in PRESETS order."""
    summaries = preset_summaries()
    assert [n for n, _ in summaries] == list(PRESETS)
    width = max(len(n) for n in PRESETS)
    lines = "\n".join(f"{n:<{width}}  {d}" for n, d in summaries).splitlines()
    assert len(lines) == len(PRESETS)
    for (name, description), line in zip(summaries, lines):
        assert description.strip() == description and description
        assert line.startswith(name) and line.endswith(description)


@pytest.mark.parametrize("name", PRESETS)
def test_to_yaml_round_trip(name: str, tmp_path: Path) -> None:
    """``to_yaml`` writes a file that reads back to the same experiment (string, dict, file)."""
    e = preset(name)
    text = to_yaml(e)
    assert to_dict(parse_experiment(text)) == to_dict(e)
    assert to_dict(from_dict(to_dict(e))) == to_dict(e)
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    again = load_experiment(path)
    assert to_dict(again) == to_dict(e)
    assert again.dopesheet == e.dopesheet  # the inline dopesheet is exact


def test_default_preset_is_the_science_of_ex_2_9_1() -> None:
    """The shipped preset holds §4.5's terms, §2's model and the reference schedule; ex_2_9_1() is that preset."""
    from excolor.config import Experiment, ModelConfig
    from excolor.regularizers import AngularAnchor, AntiAnchor, AxisAlignedSubspace, RegularizerConfig, Separate

    e = preset("ex-2.9.1")
    both = frozenset({"train", "validate"})
    regularizers = (
        RegularizerConfig("separate", Separate(power=100.0, shift=True)),
        RegularizerConfig("anchor", AngularAnchor([1.0, 0, 0, 0, 0]), label_affinities={"red": 1.0}, phases=both),
        RegularizerConfig("anti-anchor", AntiAnchor([-1.0, 0, 0, 0, 0], hemi=True), phases=both),
        RegularizerConfig("anti-subspace", AxisAlignedSubspace((0,), invert=True)),
    )
    science = Experiment(
        name="ex-2.9.1",
        dopesheet=reference_dopesheet(),
        regularizers=regularizers,
        model=ModelConfig(k_bottleneck=5, hidden=16, n_nonlinear=2),
        description=e.description,
        evaluation=e.evaluation,
    )
    assert to_dict(e) == to_dict(science)
    assert e.dopesheet == reference_dopesheet()
    assert [i.name for i in e.evaluation.interventions] == ["suppression"] and e.stream == "hash"
    assert to_dict(ex_2_9_1(hidden=10)) == to_dict(e.with_model(hidden=10))


# The step each dopesheet row resolves to (science.md §5.3, §5.4), placeholder rows included.
PRESET_ROWS = {
    "ex-2.9.1": (1501, [0, 10, 248, 750, 1425, 1500]),
    "ex-2.9.1-tuned": (1501, [0, 10, 588, 750, 1222, 1500]),  # the search moved the ramp end and fade start
    "ex-2.10.1": (1501, [0, 10, 248, 495, 750, 1125, 1425, 1500]),
    "ex-2.8": (3001, [0, 10, 500, 1000, 2800, 3000]),
    "ex-2.4": (3001, [0, 10, 100, 500, 700, 1000, 2800, 3000]),
    "ex-2.1": (2001, [0, 10, 100, 500, 700, 1000, 1500, 2000]),
}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_dopesheet_rows_resolve_to_science_steps(name: str) -> None:
    """Every row of the shipped CSV (even an all-empty placeholder row, which keys nothing) lands on
    the §5.4 step: each row is marked with an action, whose step the parser reports."""
    length, rows = PRESET_ROWS[name]
    text = _preset_csv(name)
    assert preset(name).dopesheet == Dopesheet.parse(text)
    records = list(csv.reader(io.StringIO(text)))
    action = records[0].index("ACTION")
    for i, row in enumerate(records[1:]):
        row[action] = f"row{i}"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    marked = Dopesheet.parse(out.getvalue())
    assert marked.length == length == preset(name).dopesheet.length
    assert [s for s, _ in marked.actions] == rows
    assert [names for _, names in marked.actions] == [(f"row{i}",) for i in range(len(rows))]


SCIENCE_SHEETS = {
    "ex-2.4": """\
STEP,PHASE,ACTION,lr,reg-separate,reg-anchor,reg-unit,reg-planar
0,Train,,1e-8,0.01,0.01,0.01,0.01
+10,,,0.01,,,,
+0.1,,,,,,,
+0.5,,,,0.01,,,
+0.7,,,,,,,
1000,,,0.1,0.01,0.04,0.1,0.1
+0.9,,,,0,0,0,0
3000,,,0.05,0,0,0,0
""",
    "ex-2.8": """\
STEP,PHASE,ACTION,lr,reg-separate,reg-anchor,reg-anti-anchor,reg-unit
0,Train,,1e-8,0.01,0.02,0.01,0.01
+10,,,0.01,,,,
+0.5,,,,0.01,,,
1000,,,0.1,0.01,0.05,0.1,0.1
+0.9,,,,0,0,0,0
3000,,,0.05,0,0,0,0
""",
    "ex-2.10.1": """\
STEP,PHASE,ACTION,lr,separate,anchor,anti-subspace
0,Train,,1e-8,,0,0.25
+10,,,0.01,,,
+0.33,,,,0.01,0.1,
+0.66,,,,,,
750,,,0.1,0.001,0.12,0.005
+0.5,,,,,,
+0.9,,,0.1,0,0,0
1500,,,0.05,,,
""",
}


@pytest.mark.parametrize("name", sorted(SCIENCE_SHEETS))
def test_preset_dopesheets_are_the_science_sheets(name: str) -> None:
    """The shipped schedules are §5.4's verbatim data."""
    ds = preset(name).dopesheet
    assert ds == Dopesheet.parse(SCIENCE_SHEETS[name])
    assert ds.values_at(1000 if ds.length == 3001 else 750)["lr"] == pytest.approx(0.1)


def test_ex_2_8_keyframes() -> None:
    """Ex 2.8's tracks, resolved (§5.4): the ramps end at 1000, everything is off from 2800."""
    ds = preset("ex-2.8").dopesheet
    keys = {t.name: [(k.step, k.value) for k in t.keyframes] for t in ds.tracks}
    assert keys["lr"] == [(0, 1e-8), (10, 0.01), (1000, 0.1), (3000, 0.05)]
    assert keys["reg-separate"] == [(0, 0.01), (500, 0.01), (1000, 0.01), (2800, 0.0), (3000, 0.0)]
    assert keys["reg-anchor"] == [(0, 0.02), (1000, 0.05), (2800, 0.0), (3000, 0.0)]
    assert keys["reg-anti-anchor"] == [(0, 0.01), (1000, 0.1), (2800, 0.0), (3000, 0.0)]
    assert keys["reg-unit"] == [(0, 0.01), (1000, 0.1), (2800, 0.0), (3000, 0.0)]


# (name, class, layer, label affinities, concept, options, phases), in loss order (§4.5, §4.6).
PRESET_TERMS = {
    "ex-2.9.1": [
        ("separate", Separate, "bottleneck", None, None, {"power": 100.0, "shift": True}, TRAIN),
        ("anchor", AngularAnchor, "bottleneck", {"red": 1.0}, [1, 0, 0, 0, 0], {}, BOTH),
        ("anti-anchor", AntiAnchor, "bottleneck", None, [-1, 0, 0, 0, 0], {"hemi": True}, BOTH),
        ("anti-subspace", AxisAlignedSubspace, "bottleneck", None, None, {"dims": [0], "invert": True}, TRAIN),
    ],
    "ex-2.9.1-tuned": [
        ("separate", Separate, "bottleneck", None, None, {"power": 100.0, "shift": True}, TRAIN),
        ("anchor", AngularAnchor, "bottleneck", {"red": 1.0}, [1, 0, 0, 0, 0], {}, BOTH),
        ("anti-anchor", AntiAnchor, "bottleneck", None, [-1, 0, 0, 0, 0], {"hemi": True}, BOTH),
        ("anti-subspace", AxisAlignedSubspace, "bottleneck", None, None, {"dims": [0], "invert": True}, TRAIN),
    ],
    "ex-2.10.1": [
        ("separate", Separate, "bottleneck", None, None, {"power": 100.0, "shift": True}, TRAIN),
        ("anchor", AngularAnchor, "bottleneck", {"red": 1.0}, [1, 0, 0, 0, 0], {}, BOTH),
        ("anti-subspace", AxisAlignedSubspace, "bottleneck", None, None, {"dims": [0], "invert": True}, TRAIN),
    ],
    "ex-2.8": [
        ("reg-unit", Unitarity, "encoder", None, None, {}, TRAIN),
        ("reg-anchor", AngularAnchor, "bottleneck", {"red": 1.0}, [1, 0, 0, 0], {}, BOTH),
        ("reg-separate", Separate, "bottleneck", None, None, {"power": 100.0, "shift": True}, TRAIN),
        ("reg-anti-anchor", AntiAnchor, "bottleneck", None, [-1, 0, 0, 0], {"hemi": True}, BOTH),
    ],
    "ex-2.4": [
        ("reg-unit", Unitarity, "encoder", None, None, {}, TRAIN),
        ("reg-anchor", Anchor, "bottleneck", {"red": 1.0}, [1, 0, 0, 0], {}, BOTH),
        ("reg-separate", Separate, "bottleneck", None, None, {"power": 100.0, "shift": True}, TRAIN),
        ("reg-planar", Planarity, "bottleneck", {"vibrant": 1.0}, None, {"dims": [0, 1]}, TRAIN),
    ],
    "ex-2.1": [
        ("reg-polar", Anchor, "encoder", {"red": 1.0}, [1, 0, 0, 0], {}, BOTH),
        ("reg-separate", Separate, "encoder", None, None, {"power": 10.0, "shift": False}, TRAIN),
        ("reg-planar", Planarity, "encoder", {"vibrant": 1.0}, None, {"dims": [0, 1]}, TRAIN),
        ("reg-norm-v", Unitarity, "encoder", {"vibrant": 1.0}, None, {}, TRAIN),
        ("reg-norm", Unitarity, "encoder", None, None, {}, TRAIN),
    ],
}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_regularizers_are_the_science_sets(name: str) -> None:
    """Kinds, layers, labels, concept vectors and options of each preset's terms (§4.5, §4.6)."""
    e = preset(name)
    got = [
        (
            r.name,
            type(r.term),
            r.layer,
            None if r.label_affinities is None else dict(r.label_affinities),
            r.term.concept,
            r.term.options(),
            set(r.phases),
        )
        for r in e.regularizers
    ]
    assert got == PRESET_TERMS[name]
    assert set(e.dopesheet.props) == {"lr"} | {r.name for r in e.regularizers}


HSV_LABELS = {
    "red": LabelRule("redness", 10, 0.5),
    "vibrant": LabelRule("vibrancy", 100, 0.5),
    "desaturated": LabelRule("desaturation", 10, 0.5),
}

# (model kind, (K, H, N), colour set, sampler, label names, interventions)
PRESET_SHAPES = {
    "ex-2.9.1": ("CNColorMLP", (5, 16, 2), "rgb-grid", "uniform", ["red"], ("suppression",)),
    "ex-2.9.1-tuned": ("CNColorMLP", (5, 16, 2), "rgb-grid", "uniform", ["red"], ("suppression",)),
    "ex-2.10.1": ("CNColorMLP", (5, 16, 2), "rgb-grid", "uniform", ["red"], ("suppression",)),
    "ex-2.8": ("CNColorMLP", (4, 16, 1), "hsv-cube", "bias", ["red", "vibrant", "desaturated"], ("suppression",)),
    "ex-2.4": ("CNColorMLP", (4, 16, 1), "hsv-cube", "bias", ["red", "vibrant"], ("suppression", "repulsion")),
    "ex-2.1": ("ColorMLP", (4, 16, 1), "hsv-cube", "bias", ["red", "vibrant"], ()),
}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_model_data_and_evaluation(name: str) -> None:
    """Model kind and shape, colour set, sampler and label rules (§2.3, §3.7, §3.8)."""
    kind, shape, colors, sampler, labels, interventions = PRESET_SHAPES[name]
    e = preset(name)
    assert (e.model.kind, e.model.shape) == (kind, shape)
    assert e.model.layers == (("encoder",) if kind == "ColorMLP" else ("encoder", "bottleneck"))
    assert (e.data.colors, e.data.weighting, e.data.batch_size) == (colors, sampler, 64)
    assert list(e.data.labels) == labels
    if colors == "hsv-cube":
        assert e.data.hsv_shape == (36, 10, 10)
        assert dict(e.data.labels) == {k: HSV_LABELS[k] for k in labels}
    else:
        assert e.data.subdivisions == 8
        assert dict(e.data.labels) == {"red": LabelRule("redness", 8, 0.08)}
    ev = e.evaluation
    assert (ev.concept_dim, tuple(ev.anchor_hsv), ev.score_power, ev.score_grid) == (0, (0, 1, 1), 3, 8)
    assert ev.intervention_names == interventions


# =============================================================================== 2. end to end

SHORT = 60


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_and_scores(name: str) -> None:
    """Each preset trains on a 60-step stretch of its schedule and reports every metric its terms,
    labels and interventions call for."""
    e = preset(name)
    e = e.with_dopesheet(e.dopesheet.stretched(SHORT))
    seeds = [0, 1]
    t = PopulationTrainer(e, seeds)
    t.run()
    assert t.done and t.step == SHORT
    m = t.final_metrics()
    assert list(m["seed"]) == seeds
    assert not m["diverged"].any()
    assert np.isfinite(m["score"]).all() and ((m["score"] >= 0) & (m["score"] <= 1)).all()
    assert np.allclose(m["score"], m["ablated_r"] ** 2)
    assert np.isfinite(m["val_recon"]).all()
    assert (m["labels/n_total"] == SHORT * e.batch_size).all()
    used = {k for r in e.regularizers if r.trains for k in (r.label_affinities or {})}
    assert used <= set(e.data.labels)
    # every label of the data is counted (also those no regularizer uses, e.g. ex-2.8's vibrant)
    assert {k.removeprefix("labels/n/") for k in m if k.startswith("labels/n/")} == set(e.data.labels)
    for label in e.data.labels:
        counts = m[f"labels/n/{label}"]
        assert counts.shape == (2,) and (counts >= 0).all() and (counts <= SHORT * e.batch_size).all()
    for r in e.regularizers:
        key = f"val_{r.name}"
        if r.validates:
            assert key in m and np.isfinite(m[key]).all() and (m[key] >= 0).all(), key
        else:
            assert key not in m, key
    names = e.evaluation.intervention_names
    assert {k for k in m if k.endswith("_r") and not k.startswith("val_")} == {"ablated_r", *(f"{i}_r" for i in names)}
    for iv in names:  # each of its own interventions, named after it
        key = f"{iv}_r"
        assert np.isfinite(m[key]).all() and (np.abs(m[key]) <= 1).all(), key
    for method in ("baseline", "ablated", *names):  # the loss cube's errors (§10.4)
        mx, md = m[f"{method}_max_mse"], m[f"{method}_median_mse"]
        assert np.isfinite(mx).all() and (md >= 0).all() and (md <= mx).all() and (mx <= 1).all(), method
    assert len(t.history) == 10


# =============================================================================== 3. oracle

ORACLE_STEPS = 150


@pytest.mark.parametrize("name", ["ex-2.1", "ex-2.4", "ex-2.8", "ex-2.10.1"])
def test_population_equals_plain_autograd_loop_on_legacy_paths(name: str) -> None:
    """The hand-written backward equals nn.Module + autograd + torch.optim.Adam on the legacy paths:
    ColorMLP (sigmoid, no norm) with Separate(10, shift=False), Anchor and Unitarity on the encoder
    (Ex 2.1); Planarity on vibrant and a Euclidean Anchor at the bottleneck (Ex 2.4); Unitarity on the
    pre-norm latent beside bottleneck terms (Ex 2.8); the 2.9.1 terms without anti-anchor (Ex 2.10.1)."""
    e = preset(name)
    seeds = [0, 1]
    pop = PopulationTrainer(e, seeds)
    start = pop.population.flat.clone()
    pop.run(until=ORACLE_STEPS)
    # The label-affine terms really ran (labels were drawn while their weights were non-zero).
    for label in {k for r in e.regularizers for k in (r.label_affinities or {})}:
        assert (pop.label_counts[label][:2] > 0).all(), label
    assert (pop.population.flat[:2] - start[:2]).abs().max() > 1e-2
    for i, seed in enumerate(seeds):
        plain = train_plain(e, seed, steps=ORACLE_STEPS)
        assert type(plain).__name__ == e.model.kind
        expected = torch.nn.utils.parameters_to_vector(plain.parameters()).detach()
        torch.testing.assert_close(pop.population.flat[i], expected, rtol=1e-4, atol=1e-5)


# =============================================================================== 4. data


def _hsv_cube() -> TrainingData:
    return TrainingData(colors="hsv-cube", weighting="bias", labels=dict(HSV_LABELS))


def _grid_sv() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h, s, v) of each of the 3600 cube cells in training-set order (hue slowest, value fastest)."""
    h, s, v = np.meshgrid(np.arange(36) / 36, np.linspace(0, 1, 10), np.linspace(0, 1, 10), indexing="ij")
    return h.reshape(-1), s.reshape(-1), v.reshape(-1)


def test_hsv_cube_training_set() -> None:
    """36 hues x 10 saturations x 10 values = 3600 colours, bias w(s, v) as in §3.2 (§3.8)."""
    ts = _hsv_cube().training_set()
    assert len(ts) == 3600 and ts.colors.shape == (3600, 3)
    h, s, v = _grid_sv()
    rgb = hsv_to_rgb(np.stack([h, s, v], axis=-1))
    np.testing.assert_allclose(ts.colors.double().numpy(), rgb, atol=1e-6)
    expected = (1 - v) / 360 + (1 - s) * v / 36 + s * v
    assert ts.weights is not None and ts.weights.dtype == torch.float64
    np.testing.assert_allclose(ts.weights.numpy(), expected, rtol=1e-12)
    assert float(ts.weights.min()) == pytest.approx(1 / 360)  # black
    assert float(ts.weights.max()) == pytest.approx(1.0)  # vibrant S = V = 1
    assert TrainingData(colors="hsv-cube").training_set().weights is None  # uniform sampler
    assert len(_hsv_cube().validation_set()) == 351  # validation stays on the RGB grid


def _chi2(counts: np.ndarray, p: np.ndarray) -> float:
    expected = p * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def test_bias_sampler_frequencies_follow_the_weights() -> None:
    """200 seeds x 64 colours x 5 steps, grouped by (S, V) cell (summed over hues): the draw
    frequencies match the bias weights, and uniform draws would be rejected by the same check."""
    ts = _hsv_cube().training_set()
    w = ts.weights.numpy()
    groups = np.arange(3600) % 100  # (s, v) cell of each colour
    p = np.bincount(groups, weights=w, minlength=100) / w.sum()
    limit = 99 + 6 * math.sqrt(2 * 99)  # 6 sigma above the mean of chi²(99)

    def grouped(sampler: HashSampler) -> np.ndarray:
        idx = torch.cat([sampler.indices(t).flatten() for t in range(5)]).numpy()
        assert idx.min() >= 0 and idx.max() < 3600
        return np.bincount(groups[idx], minlength=100).astype(np.float64)

    weighted = HashSampler(range(200), n_colors=3600, batch_size=64, weights=ts.weights)
    uniform = HashSampler(range(200), n_colors=3600, batch_size=64)
    assert _chi2(grouped(weighted), p) < limit
    assert _chi2(grouped(uniform), p) > 10 * limit  # the check has teeth
    # Hues are equally likely (the weights do not depend on hue).
    idx = torch.cat([weighted.indices(t).flatten() for t in range(5)]).numpy()
    assert _chi2(np.bincount(idx // 100, minlength=36).astype(np.float64), np.full(36, 1 / 36)) < 35 + 6 * math.sqrt(70)


def test_bias_sampler_never_draws_zero_weight_colours() -> None:
    """Inverse-CDF draws skip zero-weight colours, the first and the last included."""
    w = torch.zeros(3600, dtype=torch.float64)
    w[1::2] = 1.0
    w[0] = 0.0
    w[-1] = 0.0
    s = HashSampler(range(50), n_colors=3600, batch_size=64, weights=w)
    idx = torch.cat([s.indices(t).flatten() for t in range(5)])
    assert bool((idx % 2 == 1).all()) and int(idx.max()) < 3599


def test_bias_sampler_is_a_pure_function_of_seed_and_step() -> None:
    """Weighted draws depend only on (seed, step): not on the company or the call order."""
    w = _hsv_cube().training_set().weights
    a = HashSampler([3, 7, 11], n_colors=3600, batch_size=64, weights=w)
    b = HashSampler([11, 3], n_colors=3600, batch_size=64, weights=w.clone())
    later = a.indices(9)
    assert torch.equal(a.indices(5)[2], b.indices(5)[0])
    assert torch.equal(a.indices(5)[0], b.indices(5)[1])
    assert torch.equal(a.indices(9), later)
    assert not torch.equal(a.indices(5), a.indices(6))
    assert not torch.equal(a.indices(5)[0], a.indices(5)[1])
    assert a.state_dict() == {}


@pytest.mark.parametrize(
    "weights",
    [
        torch.ones(3599, dtype=torch.float64),
        torch.cat([torch.ones(3599), torch.tensor([-1.0])]),
        torch.cat([torch.ones(3599), torch.tensor([math.nan])]),
        torch.cat([torch.ones(3599), torch.tensor([math.inf])]),
        torch.zeros(3600),
    ],
    ids=["wrong-length", "negative", "nan", "inf", "all-zero"],
)
def test_bias_sampler_rejects_bad_weights(weights: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="weights"):
        HashSampler([0], n_colors=3600, batch_size=64, weights=weights)


def test_label_rule_probabilities() -> None:
    """P = attribute^power · scale (§3.8): redness¹⁰·0.5 is 0.5 at pure red."""
    red = LabelRule("redness", 10, 0.5)
    rgb = np.array([[1.0, 0.0, 0.0], [1.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(red.probability(rgb), [0.5, 0.5**10 * 0.5, 0.0, (0.5 * 0.5) ** 10 * 0.5])
    vibrant = LabelRule("vibrancy", 100, 0.5)
    np.testing.assert_allclose(vibrant.probability(rgb), [0.5, 0.5**100 * 0.5, 0.5, 0.0])
    desaturated = LabelRule("desaturation", 10, 0.5)
    np.testing.assert_allclose(desaturated.probability(rgb), [0.0, 0.5**10 * 0.5, 0.0, 0.5])
    # The training set stores these probabilities.
    ts = _hsv_cube().training_set()
    assert float(ts.labels["red"].max()) == pytest.approx(0.5)
    assert ts.stochastic


def test_label_rule_exact_labels() -> None:
    """Exact labels are 1 only where the attribute is exactly 1: vibrancy only where S·V = 1,
    desaturation only on greys (S·V = 0)."""
    ts = _hsv_cube().training_set()
    rgb = ts.colors.double().numpy()
    _, s, v = _grid_sv()
    vibrant = LabelRule("vibrancy", 100, 0.5).exact(rgb)
    assert set(np.unique(vibrant)) <= {0.0, 1.0}
    np.testing.assert_array_equal(vibrant == 1, (s == 1) & (v == 1))
    assert int(vibrant.sum()) == 36
    desaturated = LabelRule("desaturation", 10, 0.5).exact(rgb)
    np.testing.assert_array_equal(desaturated == 1, (s == 0) | (v == 0))
    # On the RGB validation grid: desaturated exactly on the greys (r = g = b), red on pure red.
    val = TrainingData(labels=dict(HSV_LABELS)).validation_set()
    c = val.colors.numpy()
    greys = (c[:, 0] == c[:, 1]) & (c[:, 1] == c[:, 2])
    np.testing.assert_array_equal(val.labels["desaturated"].numpy() == 1, greys)
    assert int(val.labels["desaturated"].sum()) == int(greys.sum()) == 7 + 2
    assert torch.nonzero(val.labels["red"]).flatten().tolist() == [347]


@pytest.mark.parametrize(
    ("attribute", "power", "scale", "match"),
    [
        ("pinkness", 10, 0.5, "redness, greenness, blueness, vibrancy, desaturation"),
        ("redness", 0, 0.5, "power"),
        ("redness", -1, 0.5, "power"),
        ("redness", math.nan, 0.5, "power"),
        ("redness", math.inf, 0.5, "power"),
        ("redness", 10, 1.5, "scale"),
        ("redness", 10, -0.1, "scale"),
        ("redness", 10, math.nan, "scale"),
    ],
)
def test_label_rule_validation(attribute: str, power: float, scale: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LabelRule(attribute, power, scale)


def test_label_attributes() -> None:
    assert set(LABEL_ATTRIBUTES) == {"redness", "greenness", "blueness", "vibrancy", "desaturation"}


# =============================================================================== 5. Separate


def _separate_literal(h: torch.Tensor, power: float) -> torch.Tensor:
    """§4.2 without shift: e = unit(h), C = e eᵀ, isclose(C, 1) -> 0, loss_i = Σ_j C_ij^p."""
    e = h / (torch.linalg.vector_norm(h, dim=-1, keepdim=True) + 1e-8)
    c = e @ e.transpose(-1, -2)
    c = torch.where(torch.isclose(c, torch.ones_like(c), rtol=1e-5, atol=1e-8), torch.zeros_like(c), c)
    return (c**power).sum(-1)


def _separate_batch(dtype: torch.dtype) -> torch.Tensor:
    """Random latents with opposite pairs (cos = −1), near-opposite ones, duplicates and scale."""
    g = torch.Generator().manual_seed(7)
    h = torch.randn(2, 24, 4, generator=g, dtype=torch.float64)
    h[:, 1] = -h[:, 0]  # exactly opposite
    h[:, 3] = -3.0 * h[:, 2]  # opposite, another length
    h[:, 5] = -h[:, 4] + 0.05 * torch.randn(2, 4, generator=g, dtype=torch.float64)  # strongly negative
    h[:, 7] = h[:, 6]  # duplicate: masked
    h[:, 9] = 0.1 * h[:, 8]  # same direction: masked
    h[:, 11] = h[:, 10] + 0.05 * torch.randn(2, 4, generator=g, dtype=torch.float64)  # near, not masked
    h[:, 12:16] *= 5.0
    return h.to(dtype)


def test_separate_batch_has_strongly_negative_cosines() -> None:
    h = _separate_batch(torch.float64)
    e = torch.nn.functional.normalize(h, dim=-1)
    c = e @ e.transpose(-1, -2)
    assert float(c.min()) < -0.99 and int((c < -0.5).sum()) > 20


@pytest.mark.parametrize("power", [10.0, 2.0, 3.0])
def test_separate_without_shift_is_the_literal_formula(power: float) -> None:
    """Separate(power, shift=False) = Σ_j C_ij^p with C = cos: an even power counts negative cosines
    as positive, an odd one as negative; self-pairs and duplicates contribute nothing."""
    h = _separate_batch(torch.float64)
    expected = _separate_literal(h, power)
    got, _ = Separate(power=power, shift=False).forward(h)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    if power % 2 == 0:
        assert bool((got > 0).all())
        # Row 0's opposite partner alone contributes (−1)^p = 1.
        assert float(got[0, 0]) > 1.0 - 1e-9
    # float32 (the trainer's dtype) agrees with the float64 formula to rounding.
    got32, _ = Separate(power=power, shift=False).forward(h.float())
    torch.testing.assert_close(got32.double(), expected, rtol=1e-4, atol=1e-5)


def test_separate_power_10_counts_opposites() -> None:
    """Two opposite vectors: C = −1 off the diagonal, so each row's loss is 1 (not 0 or −1)."""
    h = torch.tensor([[[1.0, 2.0, 0.0, 0.0], [-2.0, -4.0, 0.0, 0.0]]])
    loss, _ = Separate(power=10, shift=False).forward(h)
    torch.testing.assert_close(loss, torch.ones(1, 2))


@pytest.mark.parametrize("power", [10.0, 3.0])
def test_separate_without_shift_vjp_matches_autograd_of_the_literal_formula(power: float) -> None:
    """The hand-written gradient equals autograd of the literal formula."""
    h = _separate_batch(torch.float64)
    g = torch.rand(h.shape[:-1], generator=torch.Generator().manual_seed(3), dtype=h.dtype)
    hg = h.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((_separate_literal(hg, power) * g).sum(), hg)
    term = Separate(power=power, shift=False)
    _, ctx = term.forward(h)
    got = term.vjp(ctx, g)
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)
    assert float(expected.abs().max()) > 1e-3  # not a vacuous comparison


# =============================================================================== 6. file errors

BASE = """\
name: mine
model: {kind: CNColorMLP, k_bottleneck: 5, hidden: 8, n_nonlinear: 1}
data:
  colors: rgb-grid
  labels:
    red: {attribute: redness, power: 8, scale: 0.08}
regularizers:
  - {name: anchor, kind: AngularAnchor, concept: [1, 0, 0, 0, 0], labels: {red: 1.0}, phases: [train, validate]}
  - {name: separate, kind: Separate, options: {power: 100, shift: true}}
dopesheet: |
  STEP,lr,anchor
  0,1e-8,0
  10,0.01,0.1
evaluation: {concept_dim: 0, interventions: [suppression]}
"""

LEGACY = BASE.replace("kind: CNColorMLP", "kind: ColorMLP")


def _parse(text: str) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, source="mine.yaml")
    return info.value


def test_base_file_is_valid() -> None:
    """The file the error cases start from is itself valid."""
    e = parse_experiment(BASE, source="mine.yaml")
    assert e.name == "mine" and [r.name for r in e.regularizers] == ["anchor", "separate"]
    assert e.dopesheet.length == 11 and e.evaluation.intervention_names == ("suppression",)
    assert parse_experiment(LEGACY).model.kind == "ColorMLP"


KINDS = ", ".join(REGULARIZER_KINDS)

# (id, text, field, substrings of str(error))
ERRORS = [
    (
        "top-level-typo",
        BASE.replace("regularizers:", "regularisers:"),
        "regularisers",
        ["unknown key 'regularisers'", "regularizers", "dopesheet", "evaluation"],
    ),
    (
        "unknown-kind",
        BASE.replace("kind: AngularAnchor", "kind: AngularAnchr"),
        "regularizers[0].kind",
        ["AngularAnchr", KINDS],
    ),
    (
        "unknown-regularizer-label",
        BASE.replace("labels: {red: 1.0}", "labels: {blue: 1.0}"),
        "regularizers[0].labels.blue",
        ["'blue'", "red"],
    ),
    (
        "unknown-layer",
        BASE.replace("phases: [train, validate]}", "layer: decoder}"),
        "regularizers[0].layer",
        ["'decoder'", "encoder, bottleneck"],
    ),
    (
        "bottleneck-on-ColorMLP",
        LEGACY.replace("phases: [train, validate]}", "layer: bottleneck}"),
        "regularizers[0].layer",
        ["ColorMLP", "'bottleneck'", "encoder"],
    ),
    (
        "concept-length",
        BASE.replace("[1, 0, 0, 0, 0]", "[1, 0, 0, 0]"),
        "regularizers[0].concept",
        ["5 numbers"],
    ),
    (
        "string-for-number",
        BASE.replace("power: 8", "power: high"),
        "data.labels.red.power",
        ["expected a number", "'high'"],
    ),
    (
        "quoted-number",
        BASE.replace("scale: 0.08", 'scale: "0.5"'),
        "data.labels.red.scale",
        ["expected a number", "'0.5'", "quoted"],
    ),
    (
        "quoted-affinity",
        BASE.replace("labels: {red: 1.0}", "labels: {red: '1.0'}"),
        "regularizers[0].labels.red",
        ["expected a number", "quoted"],
    ),
    (
        "bool-for-int",
        BASE.replace("k_bottleneck: 5", "k_bottleneck: true"),
        "model.k_bottleneck",
        ["positive integer", "boolean true"],
    ),
    (
        "float-for-int",
        BASE.replace("hidden: 8", "hidden: 8.0"),
        "model.hidden",
        ["positive integer", "8.0"],
    ),
    (
        "bool-in-concept",
        BASE.replace("[1, 0, 0, 0, 0]", "[1, 0, true, 0, 0]"),
        "regularizers[0].concept[2]",
        ["expected a number", "boolean true"],
    ),
    (
        "unknown-option",
        BASE.replace("shift: true}", "shift: true, hemi: true}"),
        "regularizers[1].options.hemi",
        ["unknown key 'hemi'", "power, shift, channels"],
    ),
    (
        "non-bool-option",
        BASE.replace("shift: true", "shift: 1"),
        "regularizers[1].options.shift",
        ["true or false"],
    ),
    (
        "unknown-model-kind",
        BASE.replace("kind: CNColorMLP", "kind: CNColourMLP"),
        "model.kind",
        ["CNColourMLP", "CNColorMLP, ColorMLP"],
    ),
    (
        "unknown-label-attribute",
        BASE.replace("attribute: redness", "attribute: pinkness"),
        "data.labels.red.attribute",
        ["'pinkness'", "redness, greenness, blueness, vibrancy, desaturation"],
    ),
    (
        "label-scale-above-1",
        BASE.replace("scale: 0.08", "scale: 1.5"),
        "data.labels.red.scale",
        ["[0, 1]", "1.5"],
    ),
    (
        "missing-dopesheet",
        BASE.split("dopesheet:")[0],
        "dopesheet",
        ["missing required key", "dopesheet"],
    ),
    (
        "dopesheet-column-names-no-regularizer",
        BASE.replace("STEP,lr,anchor", "STEP,lr,anchr"),
        "dopesheet",
        ["'anchr'", "anchor", "separate"],
    ),
    (
        "malformed-dopesheet",
        BASE.replace("0,1e-8,0", "0,1e-8,x"),
        "dopesheet",
        ["line 2", "'anchor'", "expected a number"],
    ),
    (
        "original-stream-on-hsv-cube",
        "stream: original\n" + BASE.replace("colors: rgb-grid", "colors: hsv-cube"),
        "stream",
        ["'original'", "rgb-grid", "hash"],
    ),
    (
        "unknown-stream",
        "stream: orignal\n" + BASE,
        "stream",
        ["'orignal'", "hash, original"],
    ),
    (
        "unknown-intervention",
        BASE.replace("[suppression]", "[supression]"),
        "evaluation.interventions[0]",
        ["'supression'", "suppression, repulsion"],
    ),
    (
        "concept-dim-outside-latent",
        BASE.replace("concept_dim: 0", "concept_dim: 5"),
        "evaluation.concept_dim",
        ["0..4", "5"],
    ),
    (
        "unknown-colour-set",
        BASE.replace("colors: rgb-grid", "colors: hsv"),
        "data.colors",
        ["'hsv'", "rgb-grid, hsv-cube"],
    ),
    (
        "bias-on-rgb-grid",
        BASE.replace("colors: rgb-grid", "colors: rgb-grid\n  weighting: bias"),
        "data.weighting",
        ["hsv-cube", "uniform"],
    ),
    (
        "unknown-phase",
        BASE.replace("phases: [train, validate]", "phases: [training]"),
        "regularizers[0].phases",
        ["train", "validate"],
    ),
    (
        "duplicate-regularizer-name",
        BASE.replace("name: separate", "name: anchor"),
        "regularizers[1].name",
        ["duplicate", "'anchor'"],
    ),
    (
        "separate-power-below-1",
        BASE.replace("power: 100", "power: 0.5"),
        "regularizers[1].options.power",
        [">= 1", "0.5"],
    ),
    (
        "subspace-dim-outside-latent",
        BASE.replace(
            "kind: Separate, options: {power: 100, shift: true}", "kind: AxisAlignedSubspace, options: {dims: [5]}"
        ),
        "regularizers[1].options.dims[0]",
        ["0..4", "5"],
    ),
    (
        "concept-on-a-term-without-one",
        BASE.replace("kind: Separate,", "kind: Separate, concept: [1, 0, 0, 0, 0],"),
        "regularizers[1].concept",
        ["Separate takes no concept vector"],
    ),
]


@pytest.mark.parametrize(("text", "field", "fragments"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_experiment_file_errors(text: str, field: str, fragments: list[str]) -> None:
    """One ExperimentError that names the file, the field and what was expected."""
    err = _parse(text)
    assert isinstance(err, ValueError)
    assert err.field == field
    message = str(err)
    assert message.startswith("mine.yaml")
    if field:
        assert f", {field}: " in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_option_on_a_kind_without_options() -> None:
    """An option on a kind that takes none (Unitarity) says so, instead of an empty list of choices."""
    err = _parse(BASE.replace("kind: Separate, options: {power: 100, shift: true}", "kind: Unitarity, options: {x: 1}"))
    assert err.field == "regularizers[1].options.x"
    assert "'x'" in str(err)
    assert not str(err).rstrip().endswith(":"), str(err)


def test_malformed_yaml_names_the_line() -> None:
    err = _parse(BASE.replace("colors: rgb-grid", "colors: [rgb-grid"))
    assert err.line == 5
    assert str(err).startswith("mine.yaml, line 5: invalid YAML")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    err = _parse(text)
    assert "empty file" in str(err) and "regularizers" in str(err)


def test_file_that_is_not_a_mapping() -> None:
    err = _parse("- name: mine\n- dopesheet: x\n")
    assert "expected a mapping" in str(err) and "got a list" in str(err)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (BASE.replace("model: {kind: CNColorMLP, k_bottleneck: 5, hidden: 8, n_nonlinear: 1}", "model: []"), "model"),
        (BASE.replace("evaluation: {concept_dim: 0, interventions: [suppression]}", "evaluation: []"), "evaluation"),
        (BASE.replace("options: {power: 100, shift: true}", "options: []"), "regularizers[1].options"),
    ],
    ids=["model", "evaluation", "options"],
)
def test_wrong_type_for_a_section_is_rejected(text: str, field: str) -> None:
    """A section that is not a mapping is a mistake even when it is empty: ``options: []`` must not
    silently give Separate its default power 1."""
    err = _parse(text)
    assert err.field == field
    assert "expected a mapping" in str(err) and "got a list" in str(err)


def test_duplicate_keys_are_rejected() -> None:
    """A key written twice (here a second ``labels`` block) must not silently drop the first."""
    first = "    red: {attribute: redness, power: 8, scale: 0.08}\n"
    second = "  labels:\n    red: {attribute: redness, power: 2, scale: 1}\n"
    err = _parse(BASE.replace(first, first + second))
    assert err.line == 7
    assert "duplicate" in str(err) and "'labels'" in str(err)


def test_unknown_preset_lists_the_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for call in (lambda: load_experiment("no-such-preset"), lambda: preset("no-such-preset")):
        with pytest.raises(ExperimentError) as info:
            call()
        message = str(info.value)
        assert "no-such-preset" in message
        for name in PRESETS:
            assert name in message


def test_dopesheet_path_that_does_not_exist(tmp_path: Path) -> None:
    text = BASE.split("dopesheet:")[0] + "dopesheet: missing.csv\n"
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, source="mine.yaml", root=tmp_path)
    assert info.value.field == "dopesheet"
    assert str(tmp_path / "missing.csv") in str(info.value)


SHEET = "STEP,lr,anchor\n0,1e-8,0\n20,0.01,0.1\n"


def test_relative_dopesheet_resolves_against_the_experiment_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dopesheet: sched.csv`` is read beside the experiment file, not in the working directory."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "sched.csv").write_text(SHEET, encoding="utf-8")
    (folder / "mine.yaml").write_text(BASE.split("dopesheet:")[0] + "dopesheet: sched.csv\n", encoding="utf-8")
    (tmp_path / "sched.csv").write_text("STEP,lr\n0,1e-8\n99,0.5\n", encoding="utf-8")  # a decoy in the CWD
    monkeypatch.chdir(tmp_path)
    e = load_experiment("experiments/mine.yaml")
    assert e.dopesheet == Dopesheet.parse(SHEET)
    assert e.dopesheet.length == 21
    # parse_experiment resolves against root, and without one against the working directory.
    text = BASE.split("dopesheet:")[0] + "dopesheet: sched.csv\n"
    assert parse_experiment(text, root=folder).dopesheet.length == 21
    assert parse_experiment(text).dopesheet.length == 100
    # A subfolder path works too.
    (folder / "sheets").mkdir()
    (folder / "sheets" / "s.csv").write_text(SHEET, encoding="utf-8")
    (folder / "sub.yaml").write_text(BASE.split("dopesheet:")[0] + "dopesheet: sheets/s.csv\n", encoding="utf-8")
    assert load_experiment(folder / "sub.yaml").dopesheet.length == 21


def test_inline_csv_dopesheet() -> None:
    """A YAML block scalar holds the CSV itself."""
    e = parse_experiment(BASE)
    assert e.dopesheet == Dopesheet.parse("STEP,lr,anchor\n0,1e-8,0\n10,0.01,0.1\n")
    assert e.dopesheet.values_at(10) == {"lr": 0.01, "anchor": 0.1}


def test_dopesheet_by_preset_name() -> None:
    """``dopesheet: ex-2.10.1`` uses that preset's schedule (when no such file exists)."""
    text = BASE.split("dopesheet:")[0]
    text += "  - {name: anti-subspace, kind: AxisAlignedSubspace, options: {dims: [0], invert: true}}\n"
    text += "dopesheet: ex-2.10.1\n"
    e = parse_experiment(text, root=Path("/nonexistent"))
    assert e.dopesheet == preset("ex-2.10.1").dopesheet


def test_experiment_error_names_the_file_for_load_experiment(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("kind: AngularAnchor", "kind: AngularAnchr"), encoding="utf-8")
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}, regularizers[0].kind: ")


def test_written_experiment_runs_again(tmp_path: Path) -> None:
    """A user file, resolved and written with ``to_yaml``, loads back to the same experiment."""
    e = parse_experiment(BASE)
    path = tmp_path / "experiment.yaml"
    path.write_text(to_yaml(e), encoding="utf-8")
    assert to_dict(load_experiment(path)) == to_dict(e)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("name: anchor,", "name: 'my anchor',", "regularizers[0].name", ["letters, digits", "'my anchor'"]),
        ("colors: rgb-grid", "colors: rgb-grid\n  subdivisions: 1000", "data.subdivisions", ["at most 200"]),
        ("colors: rgb-grid", "colors: hsv-cube\n  hsv_shape: [1000, 1000, 100]", "data.hsv_shape", ["10,000,000"]),
    ],
)
def test_names_and_sizes_are_bounded(old: str, new: str, field: str, words: list[str]) -> None:
    """A regularizer name becomes a dopesheet column and a metric; a grid size becomes memory."""
    assert old in BASE
    err = _parse(BASE.replace(old, new, 1))
    assert err.field == field
    assert all(w in str(err) for w in words), str(err)


def test_description_is_one_line() -> None:
    e = parse_experiment(BASE.replace("name: mine", "name: mine\ndescription: >\n  two\n  lines"), source="m")
    assert e.description == "two lines"


def test_old_field_names_still_read() -> None:
    """Files and study records written before excolor named each thing once (k_codec, data.sampler)."""
    from excolor.experiments import ExperimentError

    new = to_dict(preset("ex-2.8"))
    old = {**new, "model": dict(new["model"]), "data": dict(new["data"])}
    old["model"]["k_codec"] = old["model"].pop("hidden")
    old["data"]["sampler"] = old["data"].pop("weighting")
    assert to_dict(from_dict(old)) == new
    both = {**old, "model": {**old["model"], "hidden": 16}}
    with pytest.raises(ExperimentError, match=r"model.k_codec.*old name of 'hidden'"):
        from_dict(both)
