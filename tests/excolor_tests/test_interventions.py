"""Tests for excolor.interventions: falloffs, mappers, suppression, repulsion and hooked inference (§8, §9.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from excolor.colors import rgb_grid
from excolor.interventions import (
    AxisAlignedSuppression,
    BezierMapper,
    BoundedFalloff,
    FastBezierMapper,
    InterventionConfig,
    LinearMapper,
    Repulsion,
    Suppression,
    infer,
)
from excolor.model import CNColorMLP, build_model

X = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], dtype=torch.float64)
E0 = torch.tensor([1, 0, 0, 0, 0])  # int64, as the notebooks pass it


@pytest.mark.parametrize(
    ("falloff", "expected"),
    [
        (BoundedFalloff(0, 1, 2), [0, 0.01, 0.0625, 0.25, 0.5625, 0.81, 1]),
        (BoundedFalloff(math.cos(math.pi / 2), 1, 0), [0, 1, 1, 1, 1, 1, 1]),
        (BoundedFalloff(0.5, 0.8, 1), [0, 0, 0, 0, 0.4, 0.64, 0.8]),
        (BoundedFalloff(1.0, 0.3), X.tolist()),  # a > 1 - eps: identity
    ],
)
def test_bounded_falloff_rows(falloff: BoundedFalloff, expected: list[float]) -> None:
    assert falloff(X).tolist() == pytest.approx(expected, abs=1e-12)
    assert falloff(X.float()).dtype == torch.float32


@pytest.mark.parametrize(
    "factory",
    [
        lambda: BoundedFalloff(-0.1, 1),
        lambda: BoundedFalloff(0.2, 1.1),
        lambda: BoundedFalloff(0.2, 1, -1),
        lambda: LinearMapper(0.5, 0.5),
        lambda: LinearMapper(1.0, 1.0),
        lambda: LinearMapper(0.0, 0.0),
        lambda: BezierMapper(0.6, 0.5),
        lambda: BezierMapper(0.0, 0.5, control_distance=0.0),
        lambda: FastBezierMapper(0.0, 0.5, lookup_resolution=1),
        lambda: Suppression(torch.zeros(2, 2), BoundedFalloff(0, 1)),
        lambda: Repulsion([1.0, float("nan")], LinearMapper(0, 0.5)),
        lambda: AxisAlignedSuppression(()),
        lambda: AxisAlignedSuppression((-1,)),
        lambda: InterventionConfig(AxisAlignedSuppression((0,)), ()),
    ],
)
def test_constructors_validate(factory: object) -> None:
    with pytest.raises(ValueError):
        factory()  # type: ignore[operator]


def test_linear_mapper() -> None:
    f = LinearMapper(0.2, 0.6)
    assert f(torch.tensor([0.1, 0.2, 0.5, 1.0], dtype=torch.float64)).tolist() == pytest.approx([0.1, 0.2, 0.35, 0.6])


@pytest.mark.parametrize("cls", [BezierMapper, FastBezierMapper])
def test_bezier_mapper_rows(cls: type[BezierMapper]) -> None:
    f = cls(0, 0.5)  # b = cos 60°
    expected = np.array([[0, 0], [0.3536, 0.3536], [0.6464, 0.5], [1, 0.5]])
    np.testing.assert_allclose(f.control_points, expected, atol=1e-4)
    assert f(X).tolist() == pytest.approx([0, 0.0959, 0.2229, 0.3826, 0.4729, 0.4959, 0.5], abs=5e-5)
    assert f(X.float()).dtype == torch.float32


def test_bezier_mappers_agree_with_general_slopes() -> None:
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    newton = BezierMapper(0.2, 0.7, start_slope=2.0, end_slope=0.5, control_distance=0.5)(x)
    table = FastBezierMapper(0.2, 0.7, start_slope=2.0, end_slope=0.5, control_distance=0.5)(x)
    torch.testing.assert_close(newton, table, atol=1e-4, rtol=0)
    assert newton[x <= 0.2].tolist() == x[x <= 0.2].tolist()  # identity up to a
    assert float(newton[-1]) == pytest.approx(0.7)
    assert BezierMapper(0.0, 0.5, start_slope=1.0, end_slope=1.0).control_points[1].tolist() == pytest.approx(
        [0.5 / math.sqrt(2), 0.25 / math.sqrt(2)]
    )  # parallel tangents: corner at ((a+1)/2, (a+b)/2)


def _rows(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_suppression_rows() -> None:
    hard = Suppression(E0, BoundedFalloff(math.cos(math.pi / 2), 1, 0))
    h = _rows([0.6, 0.8, 0, 0, 0], [-0.6, 0.8, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0.6, 0.8, 0, 0])
    before = h.clone()
    out = hard(h)
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, _rows([0, 0.8, 0, 0, 0], [-0.6, 0.8, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0.6, 0.8, 0, 0])
    )
    torch.testing.assert_close(h, before)  # input untouched
    soft = Suppression(E0, BoundedFalloff(0, 1, 2))
    torch.testing.assert_close(soft(h[:1]), _rows([0.384, 0.8, 0, 0, 0]))
    with pytest.raises(ValueError, match="width"):
        hard(torch.zeros(2, 4))


def test_repulsion_rows() -> None:
    rep = Repulsion(E0, FastBezierMapper(0, 0.5))
    h = torch.tensor([[0.6, 0.8, 0, 0, 0], [-0.6, 0.8, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=torch.float64)
    out = rep(h)
    assert out[0].tolist() == pytest.approx([0.4270, 0.9043, 0, 0, 0], abs=5e-5)
    torch.testing.assert_close(out[1:], h[1:])  # non-positive alignment: unchanged


def test_repulsion_of_a_row_parallel_to_the_concept_uses_the_generator() -> None:
    h = torch.tensor([[1.0, 0, 0, 0, 0]], dtype=torch.float64)
    outs = [Repulsion(E0, LinearMapper(0, 0.5), generator=torch.Generator().manual_seed(3))(h) for _ in range(2)]
    torch.testing.assert_close(outs[0], outs[1])
    out = outs[0][0]
    assert float(out[0]) == pytest.approx(0.5)  # LinearMapper(0, 0.5)(1) = 0.5
    assert float(out.norm()) == pytest.approx(1.0)
    other = Repulsion(E0, LinearMapper(0, 0.5), generator=torch.Generator().manual_seed(4))(h)
    assert not torch.allclose(other, outs[0])


def test_axis_aligned_suppression() -> None:
    aas = AxisAlignedSuppression((2, 0))
    h = _rows([1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5])
    torch.testing.assert_close(aas(h), _rows([0, 2, 0, 4], [0, 0.5, 0, 0.5]))
    torch.testing.assert_close(aas.distance(h), torch.tensor([math.sqrt(10), math.sqrt(0.5)]))
    assert h[0, 0] == 1
    with pytest.raises(IndexError):
        AxisAlignedSuppression((4,))(h)


def test_intervention_config_normalises_layers() -> None:
    cfg = InterventionConfig(AxisAlignedSuppression((0,)), "bottleneck")  # type: ignore[arg-type]
    assert cfg.layers == ("bottleneck",)
    assert InterventionConfig(cfg.apply, ["a", "b"]).layers == ("a", "b")  # type: ignore[arg-type]


@pytest.fixture
def model() -> CNColorMLP:
    return build_model(1)


def test_infer_matches_plain_forward_and_captures_latents(model: CNColorMLP) -> None:
    x = torch.as_tensor(rgb_grid(6), dtype=torch.float32).reshape(6, 36, 3)  # 216 colours: 4 batches
    y, latents = infer(model, x)
    assert y.shape == (6, 36, 3) and latents.shape == (216, 5)
    with torch.no_grad():
        flat = x.reshape(-1, 3)
        expected_h = model.bottleneck(model.encoder(flat))
        expected_y = model.decoder(expected_h).clamp(0, 1)
    torch.testing.assert_close(latents, expected_h)
    torch.testing.assert_close(y.reshape(-1, 3), expected_y)
    assert model.training  # restored
    assert y.dtype == torch.float32


def test_infer_accepts_numpy_float64(model: CNColorMLP) -> None:
    y, _ = infer(model, rgb_grid(3))
    assert y.dtype == torch.float32 and y.shape == (27, 3)
    y, latents = infer(model, rgb_grid(3), capture=None)
    assert latents.shape == (27, 0)


def test_infer_applies_interventions_before_capture(model: CNColorMLP) -> None:
    x = torch.as_tensor(rgb_grid(5), dtype=torch.float32)
    sup = Suppression(E0, BoundedFalloff(math.cos(math.pi / 2), 1, 0))
    y, latents = infer(model, x, interventions=[InterventionConfig(sup, ("bottleneck",))])
    _, clean = infer(model, x)
    torch.testing.assert_close(latents, sup(clean))
    assert float(latents[:, 0].max()) <= 1e-7
    with torch.no_grad():
        torch.testing.assert_close(y, model.decoder(latents).clamp(0, 1))


def test_infer_chains_interventions_in_list_order(model: CNColorMLP) -> None:
    x = torch.as_tensor(rgb_grid(3), dtype=torch.float32)
    double = InterventionConfig(lambda h: 2 * h, ("bottleneck",))
    shift = InterventionConfig(lambda h: h + 1, ("bottleneck",))
    _, clean = infer(model, x)
    _, a = infer(model, x, interventions=[double, shift])
    _, b = infer(model, x, interventions=[shift, double])
    torch.testing.assert_close(a, 2 * clean + 1)
    torch.testing.assert_close(b, 2 * (clean + 1))


def test_infer_cleans_up_after_an_error(model: CNColorMLP) -> None:
    model.train()
    model.decoder.eval()  # mixed flags are restored module by module

    def boom(h: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        infer(model, torch.rand(10, 3), interventions=[InterventionConfig(boom, ("encoder",))])
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training and model.encoder.training and not model.decoder.training
    with pytest.raises(ValueError, match="no module"):
        infer(model, torch.rand(10, 3), capture="nowhere")
    with pytest.raises(ValueError, match="no module"):
        infer(model, torch.rand(10, 3), interventions=[InterventionConfig(boom, ("nowhere",))])
    assert all(not m._forward_hooks for m in model.modules())


def test_infer_empty_input(model: CNColorMLP) -> None:
    y, latents = infer(model, torch.zeros(0, 3))
    assert y.shape == (0, 3) and latents.shape[0] == 0
