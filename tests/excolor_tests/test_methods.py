"""Tests for excolor.methods (interventions as data), concept_dims and the loss-cube metrics (issue 17)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from excolor.colors import rgb_grid
from excolor.config import Evaluation
from excolor.dopesheet import Dopesheet
from excolor.evaluate import (
    LOSS_CUBE_SHAPE,
    ablation_score,
    loss_cube,
    model_plans,
    per_color_mse,
    plan_power,
    population_cube_metrics,
)
from excolor.experiments import PRESETS, from_dict, parse_experiment, preset, to_dict
from excolor.interventions import BezierMapper, BoundedFalloff, FastBezierMapper, LinearMapper, Repulsion, Suppression
from excolor.methods import (
    REGISTERED,
    Falloff,
    InterventionSpec,
    MapperSpec,
    as_intervention,
    cube_metric_names,
)
from excolor.model import CNColorMLP, ColorMLP
from excolor.population import Population
from excolor.surgery import ablate, prune

DATA = Path(__file__).resolve().parents[1] / "data"
X = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)


# =============================================================================== falloffs and mappers


@pytest.mark.parametrize(
    ("start", "end", "power"),
    [(0.0, 1.0, 2.0), (0.0, 1.0, 1.0), (0.3, 0.8, 0.5), (0.5, 1.0, 3.0), (math.cos(math.pi / 2), 1.0, 0.0)],
)
def test_falloff_matches_its_formula(start: float, end: float, power: float) -> None:
    """f(x) = end·((x − start)/(1 − start))^power for x > start, else 0 (§8.3)."""
    f = Falloff(start, end, power).build()
    got = f(X).numpy()
    x = X.numpy()
    expected = np.where(x > start, end * np.clip((x - start) / (1.0 - start), 0, None) ** power, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_ex_2_4_falloff_rows() -> None:
    """BoundedFalloff(0, 1, 2) at the §8.3 example alignments."""
    f = Falloff(0.0, 1.0, 2.0).build()
    x = torch.tensor([0, 0.1, 0.25, 0.5, 0.75, 0.9, 1], dtype=torch.float64)
    np.testing.assert_allclose(f(x).numpy(), [0, 0.01, 0.0625, 0.25, 0.5625, 0.81, 1], atol=1e-12)


def test_linear_mapper_spec_matches_its_formula() -> None:
    """a + (b − a)(x − a)/(1 − a) above a, identity below (§8.6)."""
    m = MapperSpec("linear", 0.2, 0.6).build()
    x = X.numpy()
    expected = np.where(x > 0.2, 0.2 + 0.4 * (x - 0.2) / 0.8, x)
    np.testing.assert_allclose(m(X).numpy(), expected, atol=1e-12)


def test_mapper_specs_build_their_kinds() -> None:
    assert isinstance(MapperSpec("fast-bezier", 0.0, 0.5).build(), FastBezierMapper)
    assert type(MapperSpec("bezier", 0.0, 0.5).build()) is BezierMapper
    assert isinstance(MapperSpec("linear", 0.0, 0.5).build(), LinearMapper)
    x = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(
        MapperSpec("fast-bezier", 0.0, 0.5).build()(x).numpy(),
        [0, 0.0959, 0.2229, 0.3826, 0.4729, 0.4959, 0.5],
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Falloff(-0.1, 1.0),
        lambda: Falloff(0.0, 1.5),
        lambda: Falloff(0.0, 1.0, -1.0),
        lambda: MapperSpec("cubic", 0.0, 0.5),
        lambda: MapperSpec("linear", 0.6, 0.5),
        lambda: InterventionSpec("x", "suppression"),
        lambda: InterventionSpec("x", "repulsion", falloff=Falloff(0, 1)),
        lambda: InterventionSpec("ablated", "suppression", falloff=Falloff(0, 1)),
        lambda: InterventionSpec("Bad Name", "suppression", falloff=Falloff(0, 1)),
        lambda: InterventionSpec("x", "rotation", falloff=Falloff(0, 1)),
    ],
)
def test_specs_validate(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_registered_interventions_are_the_ex_2_9_1_gate_and_the_ex_2_4_map() -> None:
    sup, rep = REGISTERED["suppression"], REGISTERED["repulsion"]
    assert sup.falloff == Falloff(math.cos(math.pi / 2), 1.0, 0.0) and sup.power == 2.0
    assert rep.mapper == MapperSpec("fast-bezier", 0.0, math.cos(math.pi / 3)) and rep.power == 3.0
    axis = torch.tensor([1.0, 0.0])
    built = sup.build(axis)
    assert isinstance(built, Suppression)
    # the hard gate removes the whole positive component (§8.3)
    assert built(torch.tensor([[0.6, 0.8], [-0.6, 0.8]])).tolist() == [
        [0.0, 0.800000011920929],
        [-0.6000000238418579, 0.800000011920929],
    ]
    assert isinstance(rep.build(axis), Repulsion)


def test_as_intervention_reads_names_and_mappings() -> None:
    assert as_intervention("suppression") is REGISTERED["suppression"]
    spec = as_intervention({"name": "soft", "kind": "suppression", "falloff": {"start": 0, "end": 1, "power": 2}})
    assert spec == InterventionSpec("soft", "suppression", falloff=Falloff(0.0, 1.0, 2.0), power=2.0)
    assert as_intervention(spec.to_dict()) == spec
    rep = as_intervention({"name": "rep", "kind": "repulsion", "mapper": {"kind": "linear", "start": 0, "end": 0.5}})
    assert rep.power == 3.0  # the kind's registered default
    for bad in ("supression", {"name": "x"}, {"name": "x", "kind": "suppression", "falloff": {"start": 0}}, 3):
        with pytest.raises(ValueError):
            as_intervention(bad)  # type: ignore[arg-type]


def test_cube_metric_names() -> None:
    assert cube_metric_names(["suppression", "repulsion"]) == [
        "baseline_max_mse",
        "baseline_median_mse",
        "ablated_max_mse",
        "ablated_median_mse",
        "suppression_max_mse",
        "suppression_median_mse",
        "repulsion_max_mse",
        "repulsion_median_mse",
    ]


# =============================================================================== experiment files


def test_evaluation_defaults_are_ex_2_9_1s() -> None:
    """Old experiment files (names only, no concept_dims) load with today's behaviour."""
    ev = Evaluation(interventions=("suppression",))  # type: ignore[arg-type]
    assert ev.interventions == (REGISTERED["suppression"],) and ev.intervention_names == ("suppression",)
    assert ev.concept_dims == (0,)
    assert Evaluation(concept_dim=2).concept_dims == (2,)
    assert preset("ex-2.9.1").evaluation.interventions == (REGISTERED["suppression"],)
    assert preset("ex-2.9.1").evaluation.concept_dims == (0,)


def test_ex_2_4_preset_carries_its_notebook_interventions() -> None:
    ev = preset("ex-2.4").evaluation
    sup, rep = ev.interventions
    assert (sup.name, sup.kind, sup.falloff) == ("suppression", "suppression", Falloff(0.0, 1.0, 2.0))
    assert (rep.name, rep.kind, rep.mapper) == ("repulsion", "repulsion", MapperSpec("fast-bezier", 0.0, 0.5))


def test_ex_2_1_preset_deletes_the_hue_plane() -> None:
    e = preset("ex-2.1")
    assert e.evaluation.concept_dims == (0, 1) and e.evaluation.concept_dim == 0


@pytest.mark.parametrize("name", PRESETS)
def test_presets_round_trip_with_their_interventions(name: str) -> None:
    e = preset(name)
    again = from_dict(to_dict(e))
    assert again.evaluation == e.evaluation


BASE = """
name: mine
model: {kind: CNColorMLP, k_bottleneck: 4, hidden: 8, n_nonlinear: 1}
regularizers:
  - {name: anchor, kind: AngularAnchor, concept: [1, 0, 0, 0], labels: {red: 1.0}}
dopesheet: |
  STEP,lr,anchor
  0,0.01,0.1
  10,0.01,0.1
"""


def test_experiment_file_with_intervention_mappings_and_concept_dims() -> None:
    text = (
        BASE
        + """evaluation:
  concept_dims: [0, 2]
  interventions:
    - suppression
    - {name: soft, kind: suppression, falloff: {start: 0, end: 1, power: 2}}
    - {name: away, kind: repulsion, mapper: {kind: bezier, start: 0.1, end: 0.4}, power: 2.5}
"""
    )
    ev = parse_experiment(text).evaluation
    assert ev.concept_dims == (0, 2) and ev.intervention_names == ("suppression", "soft", "away")
    assert ev.interventions[2] == InterventionSpec(
        "away", "repulsion", mapper=MapperSpec("bezier", 0.1, 0.4), power=2.5
    )


@pytest.mark.parametrize(
    ("evaluation", "field"),
    [
        ("{interventions: [{name: soft, kind: suppression}]}", "evaluation.interventions[0]"),
        ("{interventions: [{name: s, kind: suppression, falloff: {start: 2, end: 1}}]}", "evaluation.interventions[0]"),
        (
            "{interventions: [{name: s, kind: suppression, falloff: {start: 0, end: 1}, gate: 1}]}",
            "evaluation.interventions[0]",
        ),
        ("{concept_dims: [0, 4]}", "evaluation.concept_dims[1]"),
        ("{concept_dims: [0, 1, 2, 3]}", "evaluation.concept_dims"),
        ("{concept_dims: []}", "evaluation.concept_dims"),
    ],
)
def test_bad_interventions_and_dims_name_their_field(evaluation: str, field: str) -> None:
    from excolor.experiments import ExperimentError

    with pytest.raises(ExperimentError) as info:
        parse_experiment(BASE + "evaluation: " + evaluation + "\n", source="mine.yaml")
    assert info.value.field == field, str(info.value)


# =============================================================================== Ex 2.1's dopesheet


def test_ex_2_1_preset_dopesheet_is_the_original_schedule_at_every_step() -> None:
    shipped = preset("ex-2.1").dopesheet
    original = Dopesheet.read(DATA / "ex-2.1-dopesheet.csv")
    assert shipped.length == original.length == 2001
    assert set(shipped.props) == set(original.props)
    steps = np.arange(original.length)
    np.testing.assert_array_equal(shipped.table(original.props, steps), original.table(original.props, steps))


def test_ex_2_1_schedule_facts() -> None:
    """lr peaks at 0.01 and ends at 0.005; no weight reaches 0; reg-polar keys 6e-3 at 1000, 2e-4 at 1500."""
    sheet = preset("ex-2.1").dopesheet
    steps = np.arange(sheet.length)
    lr = sheet.track("lr").value_at(steps)
    assert math.isclose(float(np.max(lr)), 0.01) and math.isclose(float(lr[-1]), 0.005)
    for prop in sheet.props:
        assert float(np.min(sheet.track(prop).value_at(steps))) > 0, prop
    polar = sheet.track("reg-polar")
    assert math.isclose(float(polar.value_at(1000)), 6e-3) and math.isclose(float(polar.value_at(1500)), 2e-4)
    assert math.isclose(float(polar.value_at(0)), 6e-3)  # held at its first keyframe's value before it


# =============================================================================== subspace surgery


@pytest.mark.parametrize("dims", [(0,), (0, 1), (1, 3), (0, 2, 4)])
def test_multi_dimension_ablation_equals_pruning(dims: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    model = CNColorMLP(5, hidden=12, n_nonlinear=2)
    x = torch.as_tensor(rgb_grid(6), dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        a = ablate(model, "bottleneck", dims)(x)
        p = prune(model, "bottleneck", dims)(x)
        base = model(x)
    assert prune(model, "bottleneck", dims).decoder[0].in_features == 5 - len(dims)
    torch.testing.assert_close(a, p, atol=1e-6, rtol=0)
    assert float((a - base).abs().max()) > 1e-3  # the surgery did something


def test_multi_dimension_ablation_equals_pruning_on_colormlp() -> None:
    torch.manual_seed(4)
    model = ColorMLP(4)
    x = torch.as_tensor(rgb_grid(5), dtype=torch.float32)
    with torch.no_grad():
        a = ablate(model, "decoder", (0, 1))(x)
        p = prune(model, "decoder", (0, 1))(x)
    torch.testing.assert_close(a, p, atol=1e-6, rtol=0)


def test_population_ablation_of_a_subspace_matches_surgery() -> None:
    torch.manual_seed(5)
    models = [CNColorMLP(5, hidden=8, n_nonlinear=2) for _ in range(2)]
    pop = Population.from_modules(models)
    x = torch.as_tensor(rgb_grid(5), dtype=torch.float32)
    y = pop.predict(x, ablate=[0, 2])  # (S, N, 3)
    for i, m in enumerate(models):
        with torch.no_grad():
            expected = prune(m, "bottleneck", (0, 2)).eval()(x)
        torch.testing.assert_close(y[i], expected, atol=1e-6, rtol=0)


def test_score_follows_concept_dims() -> None:
    """ablation_score over dims (0, 1) is the correlation of the pruned-subspace errors."""
    torch.manual_seed(6)
    model = CNColorMLP(5, hidden=8, n_nonlinear=2)
    plans = {p.name: p for p in model_plans(model, concept_dims=(0, 1))}
    mse = per_color_mse(model, rgb_grid(8), plan=plans["pruned"])
    from excolor.evaluate import score_from_errors

    expected, _ = score_from_errors(mse[None], rgb=rgb_grid(8))
    score, _ = ablation_score(model, dims=(0, 1))
    assert math.isclose(score, float(expected[0]), rel_tol=1e-6)
    assert not math.isclose(score, ablation_score(model, dims=(0,))[0], rel_tol=1e-3)


def test_plan_power() -> None:
    soft = InterventionSpec("soft", "suppression", falloff=Falloff(0, 1, 2), power=1.5)
    assert plan_power("soft", [soft]) == 1.5 and plan_power("pruned", [soft]) == 3.0
    assert plan_power("repulsion") == 3.0 and plan_power("suppression") == 2.0


def test_model_plans_use_the_experiments_own_interventions() -> None:
    torch.manual_seed(7)
    model = CNColorMLP(4)
    soft = InterventionSpec("suppression", "suppression", falloff=Falloff(0, 1, 2))
    plans = model_plans(model, interventions=[soft, "repulsion"])
    assert [p.name for p in plans] == ["baseline", "ablated", "pruned", "suppression", "repulsion"]
    gate = plans[3].interventions[0].apply
    assert isinstance(gate, Suppression) and gate.falloff == BoundedFalloff(0.0, 1.0, 2.0)
    # without any, the Ex 2.9.1 gate (as always)
    assert [p.name for p in model_plans(model)] == ["baseline", "ablated", "pruned", "suppression"]


# =============================================================================== loss-cube metrics


def _constant_model(value: float) -> CNColorMLP:
    """A model whose output is ``value`` in every channel, whatever the input (weights 0, bias value)."""
    model = CNColorMLP(4, hidden=6, n_nonlinear=1)
    with torch.no_grad():
        last = model.decoder[-1]
        last.weight.zero_()
        last.bias.fill_(value)
    return model


def test_loss_cube_is_section_9_4s() -> None:
    cube = loss_cube()
    assert cube.shape == LOSS_CUBE_SHAPE
    assert np.isclose(cube.coordinates[0][0], -1 / 12) and np.isclose(cube.coordinates[0][-1], 1 + 1 / 12)


def test_cube_metrics_of_a_constant_model() -> None:
    """Output 0 everywhere: per-colour MSE = mean(rgb²); white (in the cube) gives the max, exactly 1."""
    pop = Population.from_modules([_constant_model(0.0), _constant_model(0.5)])
    m = population_cube_metrics(pop, interventions=["suppression", "repulsion"])
    assert list(m) == cube_metric_names(["suppression", "repulsion"])
    rgb = loss_cube().rgb_grid.reshape(-1, 3)
    for method in ("baseline", "ablated", "suppression", "repulsion"):  # nothing reaches the output
        assert m[f"{method}_max_mse"][0] == pytest.approx(1.0, abs=1e-6)
        assert m[f"{method}_median_mse"][0] == pytest.approx(float(np.median((rgb**2).mean(-1))), abs=1e-6)
        # output 0.5: the farthest colours are black and white, at 0.25
        assert m[f"{method}_max_mse"][1] == pytest.approx(0.25, abs=1e-6)
        assert m[f"{method}_median_mse"][1] == pytest.approx(float(np.median(((rgb - 0.5) ** 2).mean(-1))), abs=1e-6)


def test_cube_metrics_match_per_model_evaluation() -> None:
    """The population metrics equal per-model evaluation with real surgery and hooked interventions."""
    torch.manual_seed(8)
    models = [CNColorMLP(5, hidden=8, n_nonlinear=2) for _ in range(2)]
    pop = Population.from_modules(models)
    soft = InterventionSpec("soft", "suppression", falloff=Falloff(0, 1, 2))
    shape = (30, 6, 6)
    m = population_cube_metrics(pop, concept_dims=(0, 1), interventions=[soft], shape=shape)
    rgb = loss_cube(shape).rgb_grid.reshape(-1, 3)
    for i, model in enumerate(models):
        plans = {p.name: p for p in model_plans(model, concept_dims=(0, 1), interventions=[soft])}
        for name, plan in (("baseline", plans["baseline"]), ("ablated", plans["pruned"]), ("soft", plans["soft"])):
            mse = per_color_mse(model, rgb, plan=plan)
            assert m[f"{name}_max_mse"][i] == pytest.approx(float(mse.max()), rel=1e-5, abs=1e-7)
            assert m[f"{name}_median_mse"][i] == pytest.approx(float(np.median(mse)), rel=1e-5, abs=1e-7)
