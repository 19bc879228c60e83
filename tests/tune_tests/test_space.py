from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

from excolor.dopesheet import Dopesheet, reference_dopesheet
from tune.space import HIDDEN, SearchSpace, SpaceError, TimeParam, ValueParam

BASE_STEPS = (0, 10, 248, 750, 1425, 1500)
DEFAULT_REFERENCE = {
    "lr_warmup": 0.01,
    "lr_peak": 0.1,
    "separate_peak": 0.01,
    "anchor_peak": 0.1,
    "anti_anchor_peak": 0.05,
    "anti_subspace_start": 0.25,
    "anti_subspace_mid": 0.003,
    "ramp_end": 238 / 740,
    "fade_start": 0.9,
    "hidden": 16,
}

# A small valid space; error cases below edit a deep copy of it.
MINIMAL: dict[str, Any] = {
    "base": "ex-2.9.1",
    "values": [
        {"name": "anchor_peak", "prop": "anchor", "steps": [248, 750], "low": 0.01, "high": 1.0},
        {"name": "lr_peak", "prop": "lr", "steps": [750, 1425], "low": 0.01, "high": 0.3},
    ],
    "times": [
        {"name": "ramp_end", "step": 248, "low": 0.05, "high": 0.95},
        {"name": "fade_start", "step": 1425, "low": 0.5, "high": 0.98},
    ],
    "model": {"hidden": [10, 16]},
}

# Every movable row of the base, with fractions reaching almost to the neighbours.
ALL_ROWS = {
    "base": "ex-2.9.1",
    "values": [
        {"name": "lr_warmup", "prop": "lr", "steps": [10], "low": 0.0001, "high": 1.0},
        {"name": "anchor_peak", "prop": "anchor", "steps": [248, 750], "low": 0.0001, "high": 10.0},
    ],
    "times": [{"name": f"t{s}", "step": s, "low": 1e-9, "high": 1 - 1e-9} for s in (10, 248, 750, 1425)],
}


def _space(doc: dict[str, Any], **kwargs: Any) -> SearchSpace:
    return SearchSpace.parse(yaml.safe_dump(doc, sort_keys=False), **kwargs)


def _edited(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL with the field at ``path`` (``values.0.high``) set to ``value`` (or deleted if ...)."""
    doc = copy.deepcopy(MINIMAL)
    *parents, leaf = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(leaf)] = value
    elif value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


def _row_steps(sheet: Dopesheet) -> list[int]:
    steps = {k.step for t in sheet.tracks for k in t.keyframes} | {s for s, _ in sheet.phases}
    return sorted(steps | {sheet.length - 1})


def _keyframes(sheet: Dopesheet) -> dict[tuple[str, int], float]:
    return {(t.name, k.step): k.value for t in sheet.tracks for k in t.keyframes}


# ------------------------------------------------------------------------------- loading


def test_default_loads_the_shipped_file() -> None:
    space = SearchSpace.default()
    assert space.source == "<default>"
    assert space.base == reference_dopesheet()
    assert space.hidden == (10, 16)
    assert space.names == tuple(DEFAULT_REFERENCE)
    assert _row_steps(space.base) == list(BASE_STEPS)


def test_read_equals_default_and_resolves_base_relative_to_the_file(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[2] / "tune" / "presets" / "search-space.yaml"
    assert SearchSpace.read(shipped) == dataclasses.replace(SearchSpace.default(), source=str(shipped))
    (tmp_path / "sheets").mkdir()
    reference_dopesheet().write(tmp_path / "sheets" / "mine.csv")
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({**MINIMAL, "base": "sheets/mine.csv"}), encoding="utf-8")
    space = SearchSpace.read(tmp_path / "space.yaml")
    assert space.base == reference_dopesheet()
    assert space.source == str(tmp_path / "space.yaml")


def test_read_missing_file_is_a_space_error(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="cannot read the file") as info:
        SearchSpace.read(tmp_path / "nope.yaml")
    assert info.value.field == ""


def test_space_error_is_one_line_and_pickles() -> None:
    err = SpaceError("expected a number > low (0.5), got 0.1", source="search-space.yaml", field="values[2].high")
    assert str(err) == "search-space.yaml, values[2].high: expected a number > low (0.5), got 0.1"
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.source, again.field, again.reason, str(again)) == (err.source, err.field, err.reason, str(err))


def test_space_pickles_and_describes_as_json() -> None:
    space = SearchSpace.default()
    assert pickle.loads(pickle.dumps(space)) == space
    record = json.loads(json.dumps(space.describe()))
    assert record["source"] == "<default>"
    assert Dopesheet.parse(record["base"]["csv"]) == space.base
    assert [v["name"] for v in record["values"]] + [t["name"] for t in record["times"]] == list(space.names[:-1])
    assert {v["name"]: v["reference"] for v in record["values"] + record["times"]} == {
        k: v for k, v in space.reference_params().items() if k != HIDDEN
    }
    assert record["hidden"] == {"choices": [10, 16], "reference": 16}


# ------------------------------------------------------------------------------- reference point


def test_reference_params_are_the_hand_schedule() -> None:
    space = SearchSpace.default()
    ref = space.reference_params()
    assert ref == DEFAULT_REFERENCE
    sheet, hidden = space.apply(ref)
    assert sheet.tracks == space.base.tracks
    assert sheet == space.base
    assert hidden == 16


@pytest.mark.parametrize(("choices", "expected"), [([10, 16], 16), ([16, 10], 16), ([12, 10], 12), ([8], 8)])
def test_reference_hidden_is_16_when_offered_else_the_first(choices: list[int], expected: int) -> None:
    space = _space(_edited("model.hidden", choices))
    assert space.reference_params()[HIDDEN] == expected
    assert space.apply(space.reference_params())[1] == expected


def test_reference_round_trips_for_every_movable_row() -> None:
    space = _space(ALL_ROWS)
    sheet, hidden = space.apply(space.reference_params())
    assert sheet.tracks == space.base.tracks
    assert hidden is None


def test_reference_params_are_accepted_by_optuna() -> None:
    space = SearchSpace.default()
    trial = optuna.trial.create_trial(params=space.reference_params(), distributions=space.distributions(), value=0.0)
    assert trial.params == space.reference_params()


# ------------------------------------------------------------------------------- apply


@pytest.mark.parametrize("name", list(DEFAULT_REFERENCE)[:7])
def test_a_value_param_changes_exactly_its_tied_keyframes(name: str) -> None:
    space = SearchSpace.default()
    (param,) = [v for v in space.values if v.name == name]
    params = {**space.reference_params(), name: param.high}
    sheet, _ = space.apply(params)
    before, after = _keyframes(space.base), _keyframes(sheet)
    assert before.keys() == after.keys()
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {(param.prop, s) for s in param.steps}
    assert all(after[key] == param.high for key in changed)


def test_a_time_param_moves_every_keyframe_of_its_row() -> None:
    space = SearchSpace.default()
    sheet, _ = space.apply({**space.reference_params(), "ramp_end": 0.5})
    new_step = round(10 + 0.5 * (750 - 10))  # 380
    before, after = _keyframes(space.base), _keyframes(sheet)
    expected = {(p, new_step if s == 248 else s): v for (p, s), v in before.items()}
    assert after == expected
    assert {p for p, s in after if s == new_step} == {"separate", "anchor", "anti-anchor"}
    assert sheet.track("lr") == space.base.track("lr")
    assert sheet.length == space.base.length
    assert _row_steps(sheet) == [0, 10, new_step, 750, 1425, 1500]


def test_rows_move_in_step_order_against_already_moved_neighbours() -> None:
    space = _space(ALL_ROWS)
    params = {**space.reference_params(), "t10": 0.5, "t248": 0.5, "t750": 0.5, "t1425": 0.5}
    sheet, _ = space.apply(params)
    s10 = round(0 + 0.5 * 248)  # 124
    s248 = round(s10 + 0.5 * (750 - s10))  # 437
    s750 = round(s248 + 0.5 * (1425 - s248))  # 931
    s1425 = round(s750 + 0.5 * (1500 - s750))  # 1216 (round half to even of 1215.5)
    assert _row_steps(sheet) == [0, s10, s248, s750, s1425, 1500]


@pytest.mark.parametrize(("f", "expected"), [(1e-9, 11), (1e-4, 11), (1 - 1e-9, 749), (1 - 1e-4, 749)])
def test_a_moved_row_is_clamped_next_to_its_neighbours(f: float, expected: int) -> None:
    space = _space(ALL_ROWS)
    sheet, _ = space.apply({**space.reference_params(), "t248": f})
    assert _row_steps(sheet)[2] == expected


def test_rows_squeezed_together_keep_positive_gaps() -> None:
    space = _space(ALL_ROWS)
    low = {"t10": 1e-9, "t248": 1e-9, "t750": 1e-9, "t1425": 1e-9}
    high = {"t10": 1 - 1e-9, "t248": 1 - 1e-9, "t750": 1 - 1e-9, "t1425": 1 - 1e-9}
    assert _row_steps(space.apply({**space.reference_params(), **low})[0]) == [0, 1, 2, 3, 4, 1500]
    # Moving in step order, each row first goes to just below its unmoved upper neighbour.
    assert _row_steps(space.apply({**space.reference_params(), **high})[0]) == [0, 247, 749, 1424, 1499, 1500]


def test_phases_and_actions_move_with_their_row() -> None:
    csv = "STEP,PHASE,ACTION,lr\n0,Warm,,0.01\n100,Main,log,0.1\n200,,,0.05\n"
    space = SearchSpace(Dopesheet.parse(csv), times=(TimeParam("main_start", 100, 0.1, 0.9),))
    assert space.reference_params() == {"main_start": 0.5}
    sheet, _ = space.apply({"main_start": 0.25})
    assert sheet.phases == ((0, "Warm"), (50, "Main"))
    assert sheet.actions == ((50, ("log",)),)
    assert sheet.track("lr").steps.tolist() == [0, 50, 200]


def test_distributions_match_the_space() -> None:
    space = SearchSpace.default()
    dists = space.distributions()
    assert list(dists) == list(space.names)
    for v in space.values:
        assert dists[v.name] == optuna.distributions.FloatDistribution(v.low, v.high, log=True)
    for t in space.times:
        assert dists[t.name] == optuna.distributions.FloatDistribution(t.low, t.high)
    assert dists[HIDDEN] == optuna.distributions.CategoricalDistribution((10, 16))
    assert dists["lr_peak"].low == 0.01 and dists["lr_peak"].high == 0.3  # type: ignore[attr-defined]


def test_hidden_choice_is_returned_and_absent_without_model() -> None:
    space = SearchSpace.default()
    assert space.apply({**space.reference_params(), HIDDEN: 10})[1] == 10
    no_model = {k: v for k, v in MINIMAL.items() if k != "model"}
    plain = _space(no_model)
    assert plain.hidden is None
    assert HIDDEN not in plain.distributions()
    assert plain.apply(plain.reference_params())[1] is None
    with pytest.raises(ValueError, match="unknown search parameter 'hidden'"):
        plain.apply({**plain.reference_params(), HIDDEN: 16})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"anchor_peak": None}, "missing search parameter 'anchor_peak'"),
        ({"extra": 1.0}, "unknown search parameter 'extra'"),
        ({"anchor_peak": 1.5}, "'anchor_peak' = 1.5 is outside its range"),
        ({"anchor_peak": 0.001}, "'anchor_peak' = 0.001 is outside its range"),
        ({"ramp_end": 0.99}, "'ramp_end' = 0.99 is outside"),
        ({"ramp_end": "0.5"}, "'ramp_end' must be a finite number"),
        ({"lr_peak": True}, "'lr_peak' must be a finite number"),
        ({"lr_peak": math.nan}, "'lr_peak' must be a finite number"),
        ({HIDDEN: 12}, "'hidden' must be one of"),
        ({HIDDEN: True}, "'hidden' must be one of"),
    ],
)
def test_apply_rejects_bad_params_naming_them(change: dict[str, Any], match: str) -> None:
    space = _space(MINIMAL)
    params = {**space.reference_params(), **change}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(ValueError, match=match):
        space.apply(params)


def test_random_params_always_give_a_valid_ordered_dopesheet() -> None:
    rng = np.random.default_rng(0)
    space = _space(ALL_ROWS)
    dists = space.distributions()
    for _ in range(300):
        params: dict[str, Any] = {}
        for name, dist in dists.items():
            assert isinstance(dist, optuna.distributions.FloatDistribution)
            if dist.log:
                params[name] = float(np.exp(rng.uniform(np.log(dist.low), np.log(dist.high))))
            else:
                # Half the draws near the ends, where clamping matters.
                u = rng.uniform(dist.low, dist.high) if rng.random() < 0.5 else rng.choice([dist.low, dist.high])
                params[name] = float(u)
        sheet, _ = space.apply(params)
        assert Dopesheet.parse(sheet.to_csv()) == sheet
        rows = _row_steps(sheet)
        assert len(rows) == len(BASE_STEPS)
        assert all(b > a for a, b in zip(rows, rows[1:]))
        assert sheet.length == space.base.length
        assert sheet.track("anchor").keyframes[1].value == params["anchor_peak"]


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("", "", "empty file"),
        ("# only a comment\n", "", "empty file"),
        ("- base\n- values\n", "", "expected a mapping with keys base, values, times, model, got a list"),
        ("base: ex-2.9.1\n", "", "no parameters"),
        (
            "base: ex-2.9.1\nvalues:\n  - {name: a, prop: lr, steps: [750], low: '1e-4', high: 0.3}\n",
            "values[0].low",
            "quoted numbers are text",
        ),
    ],
)
def test_whole_file_errors(text: str, field: str, reason: str) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.parse(text, source="space.yaml")
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith("space.yaml")


def test_yaml_syntax_error_gives_the_line() -> None:
    text = "base: ex-2.9.1\nvalues:\n  - name: a\n    prop: [lr\n"
    with pytest.raises(SpaceError, match="invalid YAML") as info:
        SearchSpace.parse(text, source="space.yaml")
    assert info.value.line == 5
    assert str(info.value).startswith("space.yaml, line 5: invalid YAML")


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        # keys
        ("valuez", [], "valuez", "unknown key 'valuez'; expected one of: base, values, times, model"),
        ("values.0.hgih", 1.0, "values[0].hgih", "expected one of: name, prop, steps, low, high"),
        ("times.0.fraction", 0.5, "times[0].fraction", "expected one of: name, step, low, high"),
        ("model.width", 16, "model.width", "unknown key 'width'; expected one of: hidden"),
        ("base", ..., "base", "missing required key"),
        ("values.0.high", ..., "values[0].high", "missing required key"),
        ("values.0.name", ..., "values[0].name", "missing required key"),
        ("times.0.step", ..., "times[0].step", "missing required key"),
        # shapes and types
        ("values", {"name": "a"}, "values", "expected a list of entries"),
        ("values.0", "anchor", "values[0]", "expected a mapping"),
        ("model", [16], "model", "expected a mapping"),
        ("values.0.low", "0.1", "values[0].low", "got the string '0.1'"),
        ("values.0.low", "low", "values[0].low", "expected a number, got the string 'low'"),
        ("values.0.high", True, "values[0].high", "expected a number, got the boolean true"),
        ("times.0.low", None, "times[0].low", "expected a number, got nothing"),
        ("values.0.high", math.inf, "values[0].high", "expected a finite number"),
        ("times.0.high", math.nan, "times[0].high", "expected a finite number"),
        ("values.0.steps", 248, "values[0].steps", "non-empty list of base steps"),
        ("values.0.steps", [], "values[0].steps", "non-empty list of base steps"),
        ("values.0.steps", [248, 750.0], "values[0].steps[1]", "expected an integer step, got 750.0"),
        ("times.0.step", True, "times[0].step", "expected an integer step, got the boolean true"),
        ("values.0.prop", 3, "values[0].prop", "expected a non-empty string"),
        ("values.0.name", 7, "values[0].name", "expected a non-empty string"),
        ("values.0.name", "anchor peak", "values[0].name", "expected a name of letters"),
        ("times.0.name", "hidden", "times[0].name", "reserved for the model width"),
        # ranges
        ("values.0.high", 0.005, "values[0].high", "expected a number > low (0.01), got 0.005"),
        ("values.0.high", 0.01, "values[0].high", "expected a number > low (0.01), got 0.01"),
        ("values.0.low", 0, "values[0].low", "expected a number > 0 (values are searched on a log scale)"),
        ("values.0.low", -0.1, "values[0].low", "> 0"),
        ("times.0.low", 0, "times[0].low", "strictly between 0 and 1"),
        ("times.0.low", 1.2, "times[0].low", "strictly between 0 and 1"),
        ("times.0.high", 1.0, "times[0].high", "expected a fraction > low (0.05) and < 1"),
        ("times.0.high", 0.01, "times[0].high", "expected a fraction > low (0.05)"),
        # names and the base sheet
        ("times.1.name", "anchor_peak", "times[1].name", "'anchor_peak' (also values[0].name)"),
        ("values.1.name", "anchor_peak", "values[1].name", "duplicate parameter name"),
        ("values.0.prop", "anchr", "values[0].prop", "'anchr' is not a column of the base dopesheet; columns: lr,"),
        ("values.0.steps", [248, 749], "values[0].steps[1]", "749 is not a keyframe step of the base dopesheet"),
        ("values.0.steps", [248, 248], "values[0].steps[1]", "already searched by values[0]"),
        ("values.0.steps", [0, 248], "values[0].steps", "tied keyframes differ in the base: anchor is 0.0 at step 0"),
        ("values.0.low", 0.2, "values[0].low", "base value of anchor at step 248 (0.1) is below low (0.2)"),
        ("values.0.high", 0.05, "values[0].high", "base value of anchor at step 248 (0.1) is above high (0.05)"),
        ("values.1.steps", [0], "values[1].low", "base value of lr at step 0 (1e-08) is below low (0.01)"),
        ("times.0.step", 0, "times[0].step", "step 0 is the first row and cannot move"),
        ("times.0.step", 1500, "times[0].step", "step 1500 is the last step"),
        ("times.0.step", 249, "times[0].step", "249 is not a keyframe step of the base dopesheet"),
        ("times.1.step", 248, "times[1].step", "step 248 is already moved by times[0] ('ramp_end')"),
        ("times.0.low", 0.5, "times[0].low", "the base step 248 lies at fraction 0.321622 between 10 and 750, below"),
        ("times.1.high", 0.85, "times[1].high", "fraction 0.9 between 750 and 1500, above high (0.85)"),
        # model
        ("model.hidden", 16, "model.hidden", "expected a non-empty list of positive integers"),
        ("model.hidden", [], "model.hidden", "expected a non-empty list of positive integers"),
        ("model.hidden", [10, 0], "model.hidden[1]", "expected a positive integer, got 0"),
        ("model.hidden", [True], "model.hidden[0]", "expected a positive integer, got the boolean true"),
        ("model.hidden", ["16"], "model.hidden[0]", "got the string '16'"),
        ("model.hidden", [16, 10, 16], "model.hidden[2]", "16 is listed twice"),
        # base
        ("base", "ex-2.9.2", "base", "or the path of a readable dopesheet CSV; no file"),
        (
            "base",
            291,
            "base",
            "(ex-2.9.1, ex-2.9.1-tuned, ex-2.10.1, ex-2.8, ex-2.4, ex-2.1) or the path of a dopesheet CSV, got 291",
        ),
    ],
)
def test_field_errors(path: str, value: Any, field: str, reason: str) -> None:
    with pytest.raises(SpaceError) as info:
        _space(_edited(path, value), source="space.yaml")
    assert info.value.field == field
    assert reason in info.value.reason, info.value.reason
    assert str(info.value) == f"space.yaml, {field}: {info.value.reason}"
    assert "\n" not in str(info.value)


def test_value_param_on_a_row_where_its_prop_has_no_keyframe() -> None:
    doc = _edited("values.0.prop", "anti-anchor")
    with pytest.raises(SpaceError) as info:
        _space(doc)
    assert info.value.field == "values[0].steps[1]"
    assert "'anti-anchor' has no keyframe at step 750; its keyframes are at 0, 248, 1425" in info.value.reason


def test_a_keyframe_searched_twice_is_rejected() -> None:
    doc = copy.deepcopy(MINIMAL)
    doc["values"].append({"name": "anchor_mid", "prop": "anchor", "steps": [750], "low": 0.01, "high": 1.0})
    with pytest.raises(SpaceError) as info:
        _space(doc)
    assert info.value.field == "values[2].steps[0]"
    assert "keyframe anchor@750 is already searched by values[0] ('anchor_peak')" in info.value.reason


def test_base_csv_errors_keep_the_dopesheet_message(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("STEP,lr\n0,1e-8\n10,-1\n", encoding="utf-8")
    with pytest.raises(SpaceError) as info:
        _space(_edited("base", "bad.csv"), source="space.yaml", root=tmp_path)
    assert info.value.field == "base"
    assert "malformed dopesheet" in info.value.reason
    assert "bad.csv, line 3, column 'lr': lr must be > 0" in info.value.reason


def test_a_base_without_the_searched_steps_is_rejected(tmp_path: Path) -> None:
    reference_dopesheet().stretched(751).write(tmp_path / "short.csv")
    with pytest.raises(SpaceError) as info:
        _space(_edited("base", "short.csv"), root=tmp_path)
    assert info.value.field == "values[0].steps[0]"


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace(reference_dopesheet(), values=(ValueParam("a", "lr", (750,), 0.2, 0.3),), source="code")
    assert (info.value.source, info.value.field) == ("code", "values[0].low")


def test_direct_construction_rejects_empty_steps() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace(reference_dopesheet(), values=(ValueParam("a", "lr", (), 0.01, 0.3),))
    assert info.value.field == "values[0].steps"


def test_exponent_floats_are_numbers() -> None:
    """Unquoted 1e-4 / 1.0e35 are floats (YAML 1.2), not PyYAML's YAML 1.1 strings."""
    space = SearchSpace.parse(
        "base: ex-2.9.1\nvalues:\n  - {name: a, prop: lr, steps: [750, 1425], low: 1e-3, high: 3.0E-1}\n"
    )
    assert (space.values[0].low, space.values[0].high) == (1e-3, 0.3)


TUNED_0282 = {  # ex-2.9.1-tuned.yaml's header: trial 0282 of the 300-configuration search
    "lr_warmup": 0.0039883507003782995,
    "lr_peak": 0.11316469102903633,
    "separate_peak": 0.07631471403738745,
    "anchor_peak": 0.09942147733033002,
    "anti_anchor_peak": 0.010608742643624044,
    "anti_subspace_start": 0.08206785568031384,
    "anti_subspace_mid": 0.0004368490233101359,
    "ramp_end": 0.7807366211435601,
    "fade_start": 0.6293408200918068,
    "hidden": 16,
}


def test_the_tuned_preset_is_the_validated_point_of_the_shipped_space() -> None:
    """ex-2.9.1-tuned is ex-2.9.1 with trial 0282's schedule: the space's point, at every step."""
    from excolor.experiments import preset, to_dict

    tuned, hand = preset("ex-2.9.1-tuned"), preset("ex-2.9.1")
    sheet, hidden = SearchSpace.default().apply(TUNED_0282)
    assert hidden == tuned.model.hidden == 16
    assert sheet.length == tuned.dopesheet.length
    for name in ["lr", "separate", "anchor", "anti-anchor", "anti-subspace"]:
        steps = np.arange(sheet.length + 1)
        assert np.array_equal(sheet.track(name).value_at(steps), tuned.dopesheet.track(name).value_at(steps)), name
    same = {k: v for k, v in to_dict(tuned).items() if k not in ("name", "description", "dopesheet")}
    assert same == {k: v for k, v in to_dict(hand).items() if k not in ("name", "description", "dopesheet")}
