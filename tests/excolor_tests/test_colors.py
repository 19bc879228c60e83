"""Tests for excolor.colors: grids, RGB/HSV, attributes, hsv_similarity, cubes, named colours (§3, §9.3, §9.5, §13)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from excolor.colors import (
    RED_HSV,
    ColorCube,
    arange_cyclic,
    blueness,
    coordinate_grid,
    greenness,
    hsv_similarity,
    hsv_to_rgb,
    named_colors,
    redness,
    rgb_grid,
    rgb_to_hsv,
    vibrancy,
)


def test_coordinate_grid_is_ij_and_c_order() -> None:
    g = coordinate_grid([0, 1], [10, 20, 30], [5, 6])
    assert g.shape == (2, 3, 2, 3)
    assert g.dtype == np.float64
    flat = g.reshape(-1, 3)
    i0, i1, i2 = 1, 2, 0
    assert flat[(i0 * 3 + i1) * 2 + i2].tolist() == [1, 30, 5]


def test_rgb_grid() -> None:
    g = rgb_grid(8)
    assert g.shape == (512, 3)
    assert g[0].tolist() == [0, 0, 0]
    assert g[1].tolist() == pytest.approx([0, 0, 1 / 7])
    assert g[-1].tolist() == [1, 1, 1]
    assert g[7 * 64].tolist() == [1, 0, 0]  # pure red = first of the r = 1 block
    assert rgb_grid(20).shape == (8000, 3)
    with pytest.raises(ValueError):
        rgb_grid(0)


@pytest.mark.parametrize(
    ("rgb", "hsv"),
    [
        ((0, 0, 0), (0, 0, 0)),  # black: S = 0 when V = 0, hue 0
        ((0.5, 0.5, 0.5), (0, 0, 0.5)),  # grey: hue 0
        ((1, 1, 1), (0, 0, 1)),
        ((1, 0, 0), (0, 1, 1)),
        ((1, 0.5, 0), (1 / 12, 1, 1)),
        ((1, 1, 0), (1 / 6, 1, 1)),  # r = g tie: the g case wins
        ((0, 1, 1), (0.5, 1, 1)),  # g = b tie: the b case wins
        ((1, 0, 1), (5 / 6, 1, 1)),  # r = b tie: the b case wins
        ((1, 0, 0.5), (11 / 12, 1, 1)),  # negative sextant wrapped mod 1
        ((0.5, 0.25, 0.25), (0, 0.5, 0.5)),
        ((0.2, 0.4, 0.3), (5 / 12, 0.5, 0.4)),
    ],
)
def test_rgb_to_hsv_vectors(rgb: tuple[float, ...], hsv: tuple[float, ...]) -> None:
    assert rgb_to_hsv(np.array(rgb, dtype=float)).tolist() == pytest.approx(hsv, abs=1e-12)


def test_rgb_to_hsv_matches_colorsys_and_keeps_hue_below_one() -> None:
    rgb = np.random.default_rng(0).random((200, 3))
    ours = rgb_to_hsv(rgb)
    ref = np.array([colorsys.rgb_to_hsv(*c) for c in rgb])
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    near_red = np.array([1.0, 0.3, 0.30000000000000004])  # tiny negative hue
    assert 0.0 <= rgb_to_hsv(near_red)[0] < 1.0


def test_rgb_to_hsv_batched_and_does_not_mutate() -> None:
    rgb = rgb_grid(4).reshape(4, 4, 4, 3)
    before = rgb.copy()
    assert rgb_to_hsv(rgb).shape == (4, 4, 4, 3)
    np.testing.assert_array_equal(rgb, before)
    with pytest.raises(ValueError):
        rgb_to_hsv(np.zeros((4, 2)))


@settings(max_examples=50, deadline=None)
@given(st.tuples(*[st.floats(0.0, 1.0)] * 3))
def test_hsv_round_trip(rgb: tuple[float, float, float]) -> None:
    assert hsv_to_rgb(rgb_to_hsv(np.array(rgb))).tolist() == pytest.approx(list(rgb), abs=1e-12)


def test_hsv_to_rgb_wraps_hue() -> None:
    assert hsv_to_rgb([1.0, 1.0, 1.0]).tolist() == pytest.approx([1, 0, 0])
    assert hsv_to_rgb([-1 / 3, 1.0, 1.0]).tolist() == pytest.approx([0, 0, 1])


def test_colour_attributes() -> None:
    c = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0.5, 0.5], [1, 0.5, 0.5]], dtype=float)
    assert redness(c).tolist() == pytest.approx([1, 0, 0, 0, 0, 0.5])
    assert greenness(c).tolist() == pytest.approx([0, 1, 0, 0, 0.375, 0.125])
    assert blueness(c).tolist() == pytest.approx([0, 0, 1, 0, 0.375, 0.125])
    assert vibrancy(c).tolist() == pytest.approx([1, 1, 1, 0, 0.5, 0.5])
    assert vibrancy(np.zeros(3)) == 0.0


HSV_INPUTS = [(1 / 12, 1, 1), (1 / 6, 1, 1), (0.25, 1, 1), (11 / 12, 1, 1), (0, 0, 1), (0, 0.5, 1), (0, 1, 0.5)]


@pytest.mark.parametrize(
    ("hemi", "mode", "expected"),
    [
        (True, "angular", [0.6667, 0.3333, 0.0, 0.6667, 0.0, 0.5, 0.5]),
        (False, "angular", [0.8333, 0.6667, 0.5, 0.8333, 0.0, 0.5, 0.5]),
        (True, "cosine", [0.8660, 0.5, 0.0, 0.8660, 0.0, 0.5, 0.5]),
    ],
)
def test_hsv_similarity_vectors(hemi: bool, mode: str, expected: list[float]) -> None:
    sim = hsv_similarity(np.array(HSV_INPUTS), RED_HSV, hemi=hemi, mode=mode)  # type: ignore[arg-type]
    assert sim.tolist() == pytest.approx(expected, abs=5e-5)


def test_hsv_similarity_options() -> None:
    assert hsv_similarity(RED_HSV, RED_HSV) == pytest.approx(1.0)
    # Without vibrancy weighting hue counts fully, even for a half-saturated colour.
    assert hsv_similarity((0.25, 0.5, 1), RED_HSV, weight_vibrancy=False) == pytest.approx(0.0)
    assert hsv_similarity((0.25, 0.5, 1), RED_HSV) == pytest.approx(0.5 * 0.25)
    assert hsv_similarity((0.5, 1, 1), RED_HSV, hemi=False, mode="cosine") == pytest.approx(0.0)
    with pytest.raises(ValueError, match="mode"):
        hsv_similarity(RED_HSV, RED_HSV, mode="euclid")  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "n_positive", "mean_cubed"), [(8, 483, 0.0412), (20, 7923, 0.0340)])
def test_similarity_on_scoring_grids(n: int, n_positive: int, mean_cubed: float) -> None:
    sim = hsv_similarity(rgb_to_hsv(rgb_grid(n)), RED_HSV, hemi=True, mode="angular")
    assert int((sim > 0).sum()) == n_positive
    assert float((sim**3).mean()) == pytest.approx(mean_cubed, abs=5e-5)


def test_arange_cyclic() -> None:
    np.testing.assert_allclose(arange_cyclic(), np.arange(12) / 12)
    assert len(arange_cyclic(step_size=10 / 360)) == 36
    np.testing.assert_allclose(arange_cyclic(0.75, 0.25, step_size=0.125), [0.75, 0.875, 0.0, 0.125])
    np.testing.assert_allclose(arange_cyclic(0.75, 0.25, step_size=0.25, inclusive=True), [0.75, 0.0, 0.25])
    np.testing.assert_allclose(arange_cyclic(-0.25, step_size=0.25), [0.75, 0.0, 0.25, 0.5])
    with pytest.raises(ValueError):
        arange_cyclic(step_size=0)


def test_color_cube_from_hsv_bias_and_colours() -> None:
    h, s, v = arange_cyclic(), np.linspace(0, 1, 4), np.linspace(0, 1, 5)
    cube = ColorCube.from_hsv(h, s, v)
    assert cube.shape == (12, 4, 5)
    assert cube.space == cube.canonical_space == "hsv"
    assert cube["color"].shape == (12, 4, 5, 3)
    assert cube.rgb_grid[0, -1, -1].tolist() == pytest.approx([1, 0, 0])
    assert cube.bias[3, -1, -1] == pytest.approx(1.0)  # vivid
    assert cube.bias[3, 0, -1] == pytest.approx(1 / 12)  # white
    assert cube.bias[3, 2, 0] == pytest.approx(1 / 48)  # black
    wrapped = ColorCube.from_hsv([-1 / 12, 13 / 12], [1.5], [1.0])
    np.testing.assert_allclose(wrapped.coordinates[0], [-1 / 12, 13 / 12])  # stored as given
    np.testing.assert_allclose(wrapped.rgb_grid[:, 0, 0], [[1, 0, 0.5], [1, 0.5, 0]], atol=1e-12)


def test_color_cube_rgb_index_assign_permute() -> None:
    c = np.linspace(0, 1, 3)
    cube = ColorCube.from_rgb(c, c, [0.0, 1.0])
    assert cube.shape == (3, 3, 2)
    np.testing.assert_array_equal(cube.bias, np.ones((3, 3, 2)))
    assert cube.rgb_grid[2, 1, 1].tolist() == [1.0, 0.5, 1.0]

    sub = cube[1, :, 1:]
    assert sub.shape == (1, 3, 1)
    assert sub.rgb_grid[0, 2, 0].tolist() == [0.5, 1.0, 1.0]

    mse = np.arange(18.0).reshape(3, 3, 2, 1)
    with_mse = cube.assign("MSE", mse)
    assert "MSE" not in cube.vars and with_mse["MSE"] is not None
    assert set(cube.assign(a=np.zeros((3, 3, 2)), b=np.ones((3, 3, 2))).vars) == {"color", "bias", "a", "b"}

    perm = with_mse.permute("brg")
    assert perm.shape == (2, 3, 3)
    assert perm["MSE"].shape == (2, 3, 3, 1)
    assert perm["MSE"][1, 2, 0, 0] == mse[2, 0, 1, 0]
    assert perm.canonical_space == "rgb"
    with pytest.raises(ValueError):
        cube.permute("hsv")
    with pytest.raises(ValueError):
        cube.assign(bad=np.zeros((2, 2, 2)))


NAMED = [
    ("red", (1, 0, 0)), ("orange", (1, 0.5, 0)), ("yellow", (1, 1, 0)), ("lime", (0.5, 1, 0)),
    ("green", (0, 1, 0)), ("teal", (0, 1, 0.5)), ("cyan", (0, 1, 1)), ("azure", (0, 0.5, 1)),
    ("blue", (0, 0, 1)), ("purple", (0.5, 0, 1)), ("magenta", (1, 0, 1)), ("pink", (1, 0, 0.5)),
    ("black", (0, 0, 0)), ("dark gray", (0.25, 0.25, 0.25)), ("gray", (0.5, 0.5, 0.5)),
    ("light gray", (0.75, 0.75, 0.75)), ("white", (1, 1, 1)),
]  # fmt: skip


def test_named_colors_table() -> None:
    df = named_colors()
    assert list(df.columns) == ["name", "hsv", "rgb"]
    assert df["name"].tolist() == [n for n, _ in NAMED]
    for (_, rgb), got in zip(NAMED, df["rgb"], strict=True):
        assert isinstance(got, tuple)
        assert got == pytest.approx(rgb, abs=1e-12)
    assert df["hsv"][3] == pytest.approx((0.25, 1.0, 1.0))
    assert df["hsv"][13] == (0.0, 0.0, 0.25)


def test_named_colors_options() -> None:
    assert named_colors(6, 3)["name"].tolist() == [
        "red",
        "yellow",
        "green",
        "cyan",
        "blue",
        "magenta",
        "black",
        "gray",
        "white",
    ]
    assert named_colors(3, 2)["name"].tolist() == ["red", "green", "blue", "black", "white"]
    assert named_colors(3, 2)["rgb"][2] == pytest.approx((0, 0, 1))
    with pytest.raises(ValueError, match="n_hues"):
        named_colors(4)
    with pytest.raises(ValueError, match="n_grays"):
        named_colors(12, 4)
