from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from excolor.dopesheet import (
    Dopesheet,
    DopesheetError,
    Keyframe,
    Track,
    reference_dopesheet,
)

REFERENCE_CSV = Path(__file__).resolve().parents[1] / "data" / "ex-2.9.1-dopesheet.csv"
PROPS = ("lr", "separate", "anchor", "anti-anchor", "anti-subspace")
REGULARIZERS = ("separate", "anchor", "anti-anchor", "anti-subspace")

# science.md §5.3: realised values of the original Timeline, 6 significant digits.
# step: (lr, separate, anchor, anti-anchor, anti-subspace)
REALISED = {
    0: (1e-08, 0.01, 0, 0, 0.25),
    1: (8.56099e-05, 0.01, 6.5165e-08, 3.25825e-08, 0.25),
    5: (0.005, 0.01, 7.94928e-06, 3.97464e-06, 0.249999),
    10: (0.01, 0.01, 6.16595e-05, 3.08297e-05, 0.249994),
    50: (0.0101309, 0.01, 0.00591662, 0.00295831, 0.249339),
    100: (0.0113381, 0.01, 0.0323029, 0.0161515, 0.245254),
    124: (0.012577, 0.01, 0.05, 0.025, 0.241422),
    200: (0.0199693, 0.01, 0.0946915, 0.0473458, 0.219898),
    248: (0.0273552, 0.01, 0.1, 0.05, 0.199132),
    300: (0.0373174, 0.00991487, 0.1, 0.0499597, 0.171592),
    400: (0.0595519, 0.0084989, 0.1, 0.0491209, 0.111108),
    500: (0.0805065, 0.00546638, 0.1, 0.0465337, 0.0548395),
    600: (0.0945985, 0.00245352, 0.1, 0.0419077, 0.0173062),
    700: (0.0997498, 0.00107617, 0.1, 0.0354888, 0.00366062),
    750: (0.1, 0.001, 0.1, 0.0317913, 0.003),
    800: (0.1, 0.000996374, 0.0996374, 0.0278998, 0.00298912),
    900: (0.1, 0.000923589, 0.0923589, 0.0199812, 0.00277077),
    1000: (0.1, 0.000732384, 0.0732384, 0.0126316, 0.00219715),
    1100: (0.1, 0.00046531, 0.046531, 0.0066482, 0.00139593),
    1200: (0.1, 0.000209877, 0.0209877, 0.00256792, 0.00062963),
    1300: (0.1, 4.71726e-05, 0.00471726, 0.000507565, 0.000141518),
    1400: (0.1, 4.80246e-07, 4.80246e-05, 4.64002e-06, 1.44074e-06),
    1424: (0.1, 3.24432e-11, 3.24432e-09, 3.06258e-10, 9.73295e-11),
    1425: (0.1, 0, 0, 0, 0),
    1450: (0.0895062, 0, 0, 0, 0),
    1462: (0.0756249, 0, 0, 0, 0),
    1499: (0.0500012, 0, 0, 0, 0),
    1500: (0.05, 0, 0, 0, 0),
}

KEYFRAMES = {
    "lr": [(0, 1e-8), (10, 0.01), (750, 0.1), (1425, 0.1), (1500, 0.05)],
    "separate": [(248, 0.01), (750, 0.001), (1425, 0.0)],
    "anchor": [(0, 0.0), (248, 0.1), (750, 0.1), (1425, 0.0)],
    "anti-anchor": [(0, 0.0), (248, 0.05), (1425, 0.0)],
    "anti-subspace": [(0, 0.25), (750, 0.003), (1425, 0.0)],
}

EX_2_4 = """\
STEP,PHASE,ACTION,lr,reg-separate,reg-anchor,reg-unit,reg-planar
0,Train,,1e-8,0.01,0.01,0.01,0.01
+10,,,0.01,,,,
+0.1,,,,,,,
+0.5,,,,0.01,,,
+0.7,,,,,,,
1000,,,0.1,0.01,0.04,0.1,0.1
+0.9,,,,0,0,0,0
3000,,,0.05,0,0,0,0
"""

EX_2_8 = """\
STEP,PHASE,ACTION,lr,reg-separate,reg-anchor,reg-anti-anchor,reg-unit
0,Train,,1e-8,0.01,0.02,0.01,0.01
+10,,,0.01,,,,
+0.5,,,,0.01,,,
1000,,,0.1,0.01,0.05,0.1,0.1
+0.9,,,,0,0,0,0
3000,,,0.05,0,0,0,0
"""

EX_2_10_1 = """\
STEP,PHASE,ACTION,lr,separate,anchor,anti-subspace
0,Train,,1e-8,,0,0.25
+10,,,0.01,,,
+0.33,,,,0.01,0.1,
+0.66,,,,,,
750,,,0.1,0.001,0.12,0.005
+0.5,,,,,,
+0.9,,,0.1,0,0,0
1500,,,0.05,,,
"""

WITH_MARKERS = """\
STEP,PHASE,ACTION,lr:log:linear,w::step,v:log
0,Warmup,"start, log",1e-4,0,1
+10,Train,,1e-2,,
+0.5,,checkpoint,,1.5,
100,Cool,"eval,save",1e-3,2,1e-3
"""

ALL_SHEETS = {
    "2.4": EX_2_4,
    "2.8": EX_2_8,
    "2.9.1": REFERENCE_CSV.read_text(),
    "2.10.1": EX_2_10_1,
    "markers": WITH_MARKERS,
}


@pytest.fixture(scope="module")
def ref() -> Dopesheet:
    return reference_dopesheet()


def _steps(ds: Dopesheet) -> list[int]:
    marked = {k.step for t in ds.tracks for k in t.keyframes}
    return sorted(marked | {s for s, _ in ds.phases} | {s for s, _ in ds.actions})


# ------------------------------------------------------------------- the 2.9.1 reference


def test_preset_is_byte_identical_copy() -> None:
    preset = Path(__file__).parents[2] / "excolor" / "presets" / "ex-2.9.1-dopesheet.csv"
    assert preset.read_bytes() == REFERENCE_CSV.read_bytes()


def test_reference_resolves(ref: Dopesheet) -> None:
    assert _steps(ref) == [0, 10, 248, 750, 1425, 1500]
    assert ref.length == 1501
    assert ref.props == PROPS
    assert ref.phases == ((0, "Train"),)
    assert ref.actions == ()


def test_reference_equals_read_of_shared_file(ref: Dopesheet) -> None:
    assert Dopesheet.read(REFERENCE_CSV) == ref


@pytest.mark.parametrize("prop", PROPS)
def test_reference_keyframes(ref: Dopesheet, prop: str) -> None:
    track = ref.track(prop)
    assert [(k.step, k.value) for k in track.keyframes] == KEYFRAMES[prop]
    assert (track.space, track.interpolator) == ("linear", "minjerk")


def test_reference_realised_values(ref: Dopesheet) -> None:
    steps = np.array(sorted(REALISED))
    expected = np.array([REALISED[s] for s in steps], dtype=np.float64)
    got = ref.table(PROPS, steps)
    assert got.shape == (len(steps), len(PROPS))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("step", sorted(REALISED))
def test_values_at_matches_table(ref: Dopesheet, step: int) -> None:
    values = ref.values_at(step)
    assert list(values) == list(PROPS)
    np.testing.assert_allclose(list(values.values()), REALISED[step], rtol=1e-5, atol=1e-12)
    np.testing.assert_array_equal(ref.table(steps=np.array([step]))[0], list(values.values()))


def test_default_table_covers_every_step(ref: Dopesheet) -> None:
    table = ref.table()
    assert table.shape == (1501, 5)
    assert np.all(np.isfinite(table))
    assert np.all(table[:, 0] > 0)
    np.testing.assert_array_equal(table[:, 2], ref.table(["anchor"])[:, 0])


def test_initial_values_held_before_first_key(ref: Dopesheet) -> None:
    assert ref.initial_values() == {
        "lr": 1e-8,
        "separate": 0.01,
        "anchor": 0.0,
        "anti-anchor": 0.0,
        "anti-subspace": 0.25,
    }
    separate = ref.track("separate")
    np.testing.assert_array_equal(separate.value_at(np.arange(249)), 0.01)


def test_value_at_keyframe_is_exact(ref: Dopesheet) -> None:
    for track in ref.tracks:
        for key in track.keyframes:
            assert track.value_at(key.step) == key.value


def test_value_at_shapes(ref: Dopesheet) -> None:
    track = ref.track("lr")
    assert isinstance(track.value_at(5), float)
    grid = np.arange(12).reshape(3, 4)
    out = track.value_at(grid)
    assert isinstance(out, np.ndarray) and out.shape == (3, 4)
    assert track.value_at(-7) == 1e-8
    assert track.value_at(10**6) == 0.05


def test_check_properties(ref: Dopesheet) -> None:
    ref.check_properties(REGULARIZERS)
    with pytest.raises(DopesheetError) as info:
        ref.check_properties(["separate", "anchor", "anti-subspace"])
    err = info.value
    assert (err.row, err.column) == (1, "anti-anchor")
    assert "unknown property 'anti-anchor'" in err.reason
    assert "'lr', 'anchor', 'anti-subspace', 'separate'" in err.reason
    assert str(err).startswith(f"{ref.source}, line 1, column 'anti-anchor': ")


def test_track_lookup_error(ref: Dopesheet) -> None:
    with pytest.raises(KeyError, match="nope"):
        ref.track("nope")


def test_to_csv_of_reference(ref: Dopesheet) -> None:
    assert ref.to_csv() == (
        "STEP,PHASE,ACTION,lr,separate,anchor,anti-anchor,anti-subspace\n"
        "0,Train,,1e-08,,0,0,0.25\n"
        "10,,,0.01,,,,\n"
        "248,,,,0.01,0.1,0.05,\n"
        "750,,,0.1,0.001,0.1,,0.003\n"
        "1425,,,0.1,0,0,0,0\n"
        "1500,,,0.05,,,,\n"
    )


# ------------------------------------------------------------------- other sheets


@pytest.mark.parametrize(
    ("text", "length", "steps"),
    [
        (EX_2_4, 3001, [0, 10, 500, 1000, 2800, 3000]),
        (EX_2_8, 3001, [0, 10, 500, 1000, 2800, 3000]),
        (EX_2_10_1, 1501, [0, 10, 248, 750, 1425, 1500]),
    ],
    ids=["2.4", "2.8", "2.10.1"],
)
def test_other_experiments_parse(text: str, length: int, steps: list[int]) -> None:
    ds = Dopesheet.parse(text)
    assert ds.length == length
    assert _steps(ds) == steps  # all-empty placeholder rows key nothing


@pytest.mark.parametrize("name", sorted(ALL_SHEETS))
def test_round_trip(name: str, tmp_path: Path) -> None:
    ds = Dopesheet.parse(ALL_SHEETS[name])
    again = Dopesheet.parse(ds.to_csv())
    assert again == ds
    assert again.to_csv() == ds.to_csv()
    path = tmp_path / "sheet.csv"
    ds.write(path)
    assert Dopesheet.read(path) == ds
    assert Dopesheet.read(path).source == str(path)


def test_round_trip_keeps_trailing_empty_row() -> None:
    ds = Dopesheet.parse("STEP,lr\n0,0.1\n+0.5,\n20,\n")
    assert ds.length == 21
    assert ds.to_csv() == "STEP,PHASE,ACTION,lr\n0,,,0.1\n20,,,\n"
    assert Dopesheet.parse(ds.to_csv()) == ds


def test_round_trip_exact_floats() -> None:
    values = [0.1 + 0.2, 1 / 3, 1.2e-38, 123456789.0, 3.4e38, 2.5e16]  # float32's normal range
    text = "STEP,w\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values))
    ds = Dopesheet.parse(text)
    assert [k.value for k in ds.track("w").keyframes] == values
    assert Dopesheet.parse(ds.to_csv()) == ds


def test_phases_actions_and_suffixes() -> None:
    ds = Dopesheet.parse(WITH_MARKERS)
    assert ds.phases == ((0, "Warmup"), (10, "Train"), (100, "Cool"))
    assert ds.actions == (
        (0, ("start", "log")),
        (50, ("checkpoint",)),
        (100, ("eval", "save")),
    )
    assert [(t.name, t.space, t.interpolator) for t in ds.tracks] == [
        ("lr", "log", "linear"),
        ("w", "linear", "step-end"),
        ("v", "log", "minjerk"),
    ]
    header = ds.to_csv().splitlines()[0]
    assert header == "STEP,PHASE,ACTION,lr:log:linear,w::step-end,v:log"


def test_whitespace_and_bom_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffSTEP , lr :log\n 0 , 1e-3 \n\n 10,1e-2\n\n\n".encode())
    ds = Dopesheet.read(path)
    assert ds.track("lr").keyframes == (Keyframe(0, 1e-3), Keyframe(10, 1e-2))
    assert ds.track("lr").space == "log"


# ------------------------------------------------------------------- STEP resolution


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["0", "+10", "100"], [0, 10, 100]),
        (["0", "-10", "100"], [0, 90, 100]),
        (["0", "+0.25", "100"], [0, 25, 100]),
        (["0", "-0.25", "100"], [0, 75, 100]),
        (["0", "+.5", "5"], [0, 2, 5]),  # round half to even: 2.5 -> 2
        (["0", "+.5", "7"], [0, 4, 7]),  # 3.5 -> 4
        (
            ["0", "+10", "+0.5", "100"],
            [0, 10, 50, 100],
        ),  # anchors only, never relative rows
        (["-3", "5"], [2, 5]),
        (["0", "+20", "10"], [0, 10, 20]),  # overshoot past the next anchor is sorted
    ],
)
def test_step_resolution(rows: list[str], expected: list[int]) -> None:
    text = "STEP,w\n" + "".join(f"{r},{i}\n" for i, r in enumerate(rows))
    ds = Dopesheet.parse(text)
    assert [k.step for k in ds.track("w").keyframes] == expected
    assert ds.length == expected[-1] + 1


# ------------------------------------------------------------------- interpolation


def test_minjerk_shape() -> None:
    ds = Dopesheet.parse("STEP,w\n0,0\n4,1\n")
    np.testing.assert_allclose(ds.table()[:, 0], [0, 0.103515625, 0.5, 0.896484375, 1], rtol=0, atol=1e-15)


def test_linear_interpolation() -> None:
    ds = Dopesheet.parse("STEP,w::linear\n0,1\n10,3\n20,2\n")
    np.testing.assert_allclose(ds.track("w").value_at(np.array([0, 5, 10, 15, 20, 25])), [1, 2, 3, 2.5, 2, 2])


@pytest.mark.parametrize("name", ["step", "step-end"])
def test_step_end_interpolation(name: str) -> None:
    ds = Dopesheet.parse(f"STEP,w::{name}\n0,1\n10,3\n20,2\n")
    track = ds.track("w")
    assert track.interpolator == "step-end"
    got = track.value_at(np.array([0, 9, 10, 19, 20, 30]))
    np.testing.assert_array_equal(got, [1, 1, 3, 3, 2, 2])


def test_log_space_linear_interpolation() -> None:
    ds = Dopesheet.parse("STEP,lr:log:linear\n0,1e-4\n10,1e-2\n")
    got = ds.track("lr").value_at(np.array([0, 5, 10]))
    np.testing.assert_allclose(got, [1e-4, 1e-3, 1e-2], rtol=1e-12)
    assert got[0] == 1e-4 and got[2] == 1e-2


def test_log_space_minjerk_and_exact_keys() -> None:
    ds = Dopesheet.parse("STEP,lr:log\n0,0.3\n4,0.7\n")
    track = ds.track("lr")
    s = 0.103515625
    expected = np.exp(np.log(0.3) + (np.log(0.7) - np.log(0.3)) * s)
    assert track.value_at(1) == pytest.approx(expected, rel=1e-14)
    assert track.value_at(0) == 0.3 and track.value_at(4) == 0.7


def test_single_keyframe_is_constant() -> None:
    track = Dopesheet.parse("STEP,w\n5,0.5\n").track("w")
    np.testing.assert_array_equal(track.value_at(np.arange(10)), 0.5)


def test_track_validates_itself() -> None:
    with pytest.raises(ValueError, match="strictly increase"):
        Track("w", "linear", "minjerk", (Keyframe(3, 1.0), Keyframe(3, 2.0)))
    with pytest.raises(ValueError, match="no keyframes"):
        Track("w", "linear", "minjerk", ())


# ------------------------------------------------------------------- scaled / stretched


def test_scaled(ref: Dopesheet) -> None:
    ds = ref.scaled({"anchor": 2.0, "lr": 0.5})
    assert [k.value for k in ds.track("anchor").keyframes] == [0.0, 0.2, 0.2, 0.0]
    assert [k.value for k in ds.track("lr").keyframes] == [
        5e-9,
        0.005,
        0.05,
        0.05,
        0.025,
    ]
    assert ds.track("separate") == ref.track("separate")
    assert ds.length == ref.length and ds.phases == ref.phases
    assert ref.scaled({}) == ref
    assert Dopesheet.parse(ds.to_csv()) == ds
    np.testing.assert_allclose(ds.table(["anchor"])[:, 0], 2 * ref.table(["anchor"])[:, 0])


@pytest.mark.parametrize(
    ("factors", "error"),
    [
        ({"anchor": -1.0}, ValueError),
        ({"anchor": float("nan")}, ValueError),
        ({"anchor": float("inf")}, ValueError),
        ({"lr": 0.0}, ValueError),
        ({"nope": 1.0}, KeyError),
    ],
)
def test_scaled_rejects(ref: Dopesheet, factors: dict[str, float], error: type[Exception]) -> None:
    with pytest.raises(error):
        ref.scaled(factors)


def test_scaled_zero_weight_is_allowed(ref: Dopesheet) -> None:
    assert np.all(ref.scaled({"anchor": 0.0}).table(["anchor"]) == 0)


def test_stretched(ref: Dopesheet) -> None:
    ds = ref.stretched(3001)
    assert ds.length == 3001
    assert [k.step for k in ds.track("lr").keyframes] == [0, 20, 1500, 2850, 3000]
    assert [k.step for k in ds.track("separate").keyframes] == [496, 1500, 2850]
    assert ds.phases == ((0, "Train"),)
    assert ref.stretched(ref.length) == ref
    assert Dopesheet.parse(ds.to_csv()) == ds


def test_stretched_collisions_keep_later() -> None:
    ds = Dopesheet.parse("STEP,PHASE,ACTION,w\n0,A,x,1\n1,B,y,2\n9,,,3\n")
    short = ds.stretched(3)
    assert short.track("w").keyframes == (Keyframe(0, 2.0), Keyframe(2, 3.0))
    assert short.phases == ((0, "B"),)
    assert short.actions == ((0, ("x", "y")),)
    assert short.length == 3


@pytest.mark.parametrize(
    ("n", "error"),
    [(1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError)],
)
def test_stretched_rejects(ref: Dopesheet, n: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        ref.stretched(n)  # type: ignore[arg-type]


# ------------------------------------------------------------------- errors


H = "STEP,PHASE,ACTION,lr,w,v:log\n"
OK = "0,Train,,0.1,0,1\n"

# (id, text, row, column, substring of reason)
ERROR_CASES = [
    ("empty", "", None, None, "empty file"),
    ("blank-only", "\n  \n\n", None, None, "empty file"),
    ("header-only", H, 1, None, "no data rows"),
    ("no-header", "0,Train,,1e-8\n10,,,0.01\n", 1, None, "missing STEP column"),
    ("missing-step", "PHASE,lr\nTrain,0.1\n", 1, None, "missing STEP column"),
    ("header-not-line-1", "\n" + H + OK, 1, None, "header must be on line 1"),
    (
        "duplicate-column",
        "STEP,lr,w,w:log\n0,1,1,1\n",
        1,
        "w:log",
        "duplicate column 'w'",
    ),
    (
        "duplicate-reserved",
        "STEP,STEP,lr\n0,0,1\n",
        1,
        "STEP",
        "duplicate column 'STEP'",
    ),
    ("empty-column-name", "STEP,lr,\n0,1,\n", 1, None, "column 3 has an empty name"),
    ("empty-prop-name", "STEP,lr,:log\n0,1,1\n", 1, ":log", "empty name"),
    (
        "unknown-space",
        "STEP,lr:cubic\n0,1\n",
        1,
        "lr:cubic",
        "unknown space 'cubic'; expected one of: linear, log",
    ),
    (
        "unknown-interpolator",
        "STEP,w::smooth\n0,1\n",
        1,
        "w::smooth",
        "unknown interpolator 'smooth'; expected one of: minjerk, linear, step, step-end",
    ),
    (
        "too-many-colons",
        "STEP,w:log:linear:x\n0,1\n",
        1,
        "w:log:linear:x",
        "prop:space:interpolator",
    ),
    ("no-property-columns", "STEP,PHASE\n0,Train\n", 1, None, "no property columns"),
    ("property-without-values", H + "0,Train,,0.1,,1\n", 1, "w", "has no values"),
    (
        "too-many-cells",
        H + OK + "10,,,0.2,0,1,7\n",
        3,
        None,
        "expected 6 cells like the header, got 7",
    ),
    ("too-few-cells", H + OK + "10,,,0.2\n", 3, None, "got 4"),
    (
        "bad-step-word",
        H + OK + "ten,,,0.2,,\n",
        3,
        "STEP",
        "expected a STEP like N, +N, -N, +F or -F",
    ),
    ("bad-step-empty", H + OK + ",,,0.2,,\n", 3, "STEP", "got ''"),
    ("bad-step-float", H + OK + "1.5,,,0.2,,\n", 3, "STEP", "expected a STEP like"),
    ("bad-step-plus-zero", H + OK + "+0,,,0.2,,\n", 3, "STEP", "expected a STEP like"),
    (
        "bad-step-leading-zero",
        H + OK + "010,,,0.2,,\n",
        3,
        "STEP",
        "expected a STEP like",
    ),
    (
        "bad-step-fraction-ge-1",
        H + OK + "+1.5,,,0.2,,\n20,,,0.1,,\n",
        3,
        "STEP",
        "expected a STEP like",
    ),
    (
        "bad-step-exponent",
        H + OK + "+1e-1,,,0.2,,\n20,,,0.1,,\n",
        3,
        "STEP",
        "expected a STEP like",
    ),
    (
        "fraction-zero",
        H + OK + "+0.0,,,0.2,,\n20,,,0.1,,\n",
        3,
        "STEP",
        "strictly between 0 and 1",
    ),
    (
        "absolute-decreasing",
        H + OK + "10,,,0.2,,\n5,,,0.3,,\n",
        4,
        "STEP",
        "not greater than 10 on line 3",
    ),
    (
        "absolute-repeated",
        H + OK + "0,,,0.2,,\n",
        3,
        "STEP",
        "must increase down the file",
    ),
    (
        "plus-n-no-anchor-above",
        H + "+5,Train,,0.1,0,1\n10,,,0.2,,\n",
        2,
        "STEP",
        "needs an absolute STEP row above",
    ),
    (
        "minus-n-no-anchor-below",
        H + OK + "-5,,,0.2,,\n",
        3,
        "STEP",
        "needs an absolute STEP row below",
    ),
    (
        "fraction-no-anchor-below",
        H + OK + "+0.5,,,0.2,,\n",
        3,
        "STEP",
        "both above and below",
    ),
    (
        "fraction-no-anchor-above",
        H + "-0.5,Train,,0.1,0,1\n10,,,0.2,,\n",
        2,
        "STEP",
        "both above and below",
    ),
    (
        "resolves-below-zero",
        H + "-5,Train,,0.1,0,1\n3,,,0.2,,\n",
        2,
        "STEP",
        "resolves to -2; steps must be >= 0",
    ),
    (
        "same-step-offset",
        H + OK + "+10,,,0.2,,\n10,,,0.3,,\n",
        4,
        "STEP",
        "the same step as line 3",
    ),
    (
        "same-step-fractions",
        H + OK + "+0.5,,,0.2,,\n-0.5,,,0.3,,\n10,,,0.4,,\n",
        4,
        "STEP",
        "resolves to 5",
    ),
    ("not-a-number", H + OK + "10,,,abc,,\n", 3, "lr", "expected a number, got 'abc'"),
    ("underscore-number", H + OK + "10,,,1_0,,\n", 3, "lr", "plain decimal number"),
    ("nan", H + OK + "10,,,0.1,nan,\n", 3, "w", "expected a finite number, got 'nan'"),
    ("inf", H + OK + "10,,,0.1,,inf\n", 3, "v", "finite"),
    ("minus-inf", H + OK + "10,,,0.1,-inf,\n", 3, "w", "finite"),
    ("overflow", H + OK + "10,,,0.1,1e999,\n", 3, "w", "finite"),
    ("lr-zero", H + OK + "10,,,0,,\n", 3, "lr", "lr must be > 0"),
    ("lr-negative", H + OK + "10,,,-0.1,,\n", 3, "lr", "lr must be > 0"),
    ("log-zero", H + OK + "10,,,0.1,,0\n", 3, "v", "log-space property must be > 0"),
    (
        "weight-negative",
        H + OK + "10,,,0.1,-0.5,\n",
        3,
        "w",
        "regularizer weights must be >= 0, got '-0.5'",
    ),
    (
        "empty-action-name",
        H + OK + '10,,"a,,b",0.1,,\n',
        3,
        "ACTION",
        "empty action name",
    ),
    ("bad-quoting", H + OK + '10,"a"b,,0.1,,\n', 3, None, "malformed CSV"),
    # A quoted cell spanning lines 3-4 shifts later line numbers; errors must follow the file.
    (
        "line-after-multiline-cell",
        H + OK + '10,"two\nlines",,0.1,,\n20,,,x,,\n',
        5,
        "lr",
        "got 'x'",
    ),
    ("line-after-blank-line", H + OK + "\n\n20,,,x,,\n", 5, "lr", "got 'x'"),
]


@pytest.mark.parametrize(
    ("text", "row", "column", "reason"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors(tmp_path: Path, text: str, row: int | None, column: str | None, reason: str) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(DopesheetError) as info:
        Dopesheet.read(path)
    err = info.value
    assert (err.row, err.column) == (row, column)
    assert reason in err.reason
    assert err.source == str(path)
    message = str(err)
    assert message.startswith(str(path))
    assert reason in message and "\n" not in message
    if row is not None:
        assert f", line {row}" in message
    if column is not None:
        assert f", column {column!r}" in message
    # The same text parsed from a string says '<string>' instead of the path.
    with pytest.raises(DopesheetError, match=r"^<string>"):
        Dopesheet.parse(text)


def test_error_message_format(tmp_path: Path) -> None:
    path = tmp_path / "ex.csv"
    path.write_text("STEP,lr\n0,0.1\n+10,0.2\n20,abc\n")
    with pytest.raises(DopesheetError) as info:
        Dopesheet.read(path)
    assert str(info.value) == f"{path}, line 4, column 'lr': expected a number, got 'abc'"
    assert isinstance(info.value, ValueError)


def test_error_pickles() -> None:
    err = DopesheetError("bad", source="a.csv", row=3, column="lr")
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, again.source, again.row, again.column) == (
        "bad",
        "a.csv",
        3,
        "lr",
    )
    assert str(again) == "a.csv, line 3, column 'lr': bad"


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8"])
def test_unreadable_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "sheet.csv"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"STEP,lr\n0,0.1\xff\n")
    with pytest.raises(DopesheetError) as info:
        Dopesheet.read(path)
    err = info.value
    assert (err.source, err.row, err.column) == (str(path), None, None)
    expected = {
        "missing": "cannot read the file",
        "directory": "cannot read the file",
        "not-utf8": "not UTF-8",
    }
    assert expected[kind] in err.reason
    assert str(err).startswith(f"{path}: ")


def test_values_at_agrees_bitwise_with_table(ref: Dopesheet) -> None:
    table = ref.table()
    rows = np.array([list(ref.values_at(s).values()) for s in range(ref.length)])
    np.testing.assert_array_equal(rows, table)
