"""Regularizer contract suite (every term) and the §13 / §4.3 vectors."""

from __future__ import annotations

import math

import pytest
import torch

from excolor.regularizers import (
    Anchor,
    AngularAnchor,
    AntiAnchor,
    AxisAlignedSubspace,
    Planarity,
    Regularizer,
    RegularizerConfig,
    Separate,
    Unitarity,
    reduction_weights,
)

TERMS: dict[str, Regularizer] = {
    "anchor": Anchor([1.0, 0.0, 0.0, 0.5, 0.0]),
    "angular-anchor": AngularAnchor([1.0, 0.0, 0.0, 0.0, 0.0]),
    "anti-anchor-hemi": AntiAnchor([-1.0, 0.0, 0.0, 0.0, 0.0]),
    "anti-anchor-full": AntiAnchor([0.0, 1.0, 0.0, 0.0, 0.0], hemi=False),
    "separate-100": Separate(power=100.0, shift=True),
    "separate-3-noshift": Separate(power=3.0, shift=False),
    "separate-channels": Separate([0, 2, 3], power=2.0),
    "separate-fractional": Separate(power=2.5),
    "subspace": AxisAlignedSubspace((0, 1)),
    "anti-subspace": AxisAlignedSubspace((0,), invert=True),
    "planarity": Planarity(),
    "unitarity": Unitarity(),
}


@pytest.fixture
def activations() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 16, 5, generator=g, dtype=torch.float64)
    h[:, :12] = torch.nn.functional.normalize(h[:, :12], dim=-1)  # mostly unit rows, as at the bottleneck
    h[:, 12] = h[:, 11]  # an exact duplicate (Separate masks it)
    return h


@pytest.mark.parametrize("name", sorted(TERMS))
class TestContract:
    def test_shape_and_finite(self, name: str, activations: torch.Tensor) -> None:
        loss, _ = TERMS[name].forward(activations)
        assert loss.shape == activations.shape[:-1]
        assert bool(torch.isfinite(loss).all())

    def test_vjp_matches_autograd(self, name: str, activations: torch.Tensor) -> None:
        term = TERMS[name]
        h = activations.clone().requires_grad_(True)
        g = torch.rand(h.shape[:-1], generator=torch.Generator().manual_seed(1), dtype=h.dtype)
        loss, ctx = term.forward(h)
        (expected,) = torch.autograd.grad((loss * g).sum(), h)
        got = term.vjp(ctx, g)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)

    def test_zero_upstream_gives_zero_gradient(self, name: str, activations: torch.Tensor) -> None:
        term = TERMS[name]
        _, ctx = term.forward(activations)
        assert bool((term.vjp(ctx, torch.zeros(activations.shape[:-1], dtype=activations.dtype)) == 0).all())


def _rows(*rows: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).unsqueeze(0)


def test_angular_anchor_vectors() -> None:
    assert AngularAnchor((1.0, 0.0))(_rows((1, 0), (-1, 0), (0, 1)))[0].tolist() == pytest.approx([0, 2, 1], abs=1e-7)


def test_anti_anchor_vectors() -> None:
    rows = _rows((0, 1), (0, -1), (1, 0))
    assert AntiAnchor((0.0, 1.0))(rows)[0].tolist() == pytest.approx([1, 0, 0], abs=1e-7)
    assert AntiAnchor((0.0, 1.0), hemi=False)(rows)[0].tolist() == pytest.approx([1, 0, 0.5], abs=1e-7)


def test_separate_vectors() -> None:
    assert Separate(power=1.0, shift=True)(_rows((1, 0), (0, 1)))[0].tolist() == pytest.approx([1.0, 1.0])
    same = torch.ones(1, 64, 5, dtype=torch.float64) / math.sqrt(5)
    # Every entry is masked (self or duplicate), shifted to 0.5: 64 * 0.5**100 each (§12 pitfall 5).
    assert Separate(power=100.0)(same)[0].tolist() == pytest.approx([64 * 0.5**100] * 64, rel=1e-12)


def test_axis_aligned_subspace_vectors() -> None:
    h = torch.arange(1.0, 6.0, dtype=torch.float64).view(1, 1, 5)
    assert AxisAlignedSubspace((0, 1))(h).item() == pytest.approx(9 + 16 + 25)
    assert AxisAlignedSubspace((0,), invert=True)(h).item() == pytest.approx(1.0)
    assert Planarity()(h).item() == pytest.approx(50.0)


@pytest.mark.parametrize("dims", [(), (1, 1), (-1,)])
def test_axis_aligned_subspace_rejects_bad_dims(dims: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="dims"):
        AxisAlignedSubspace(dims)


def test_unitarity_vector() -> None:
    assert Unitarity()(_rows((3.0, 4.0)))[0].tolist() == pytest.approx([16.0])


class TestReduction:
    """§4.3 and pitfall 4: label-affine reduction."""

    def test_plain_mean_without_affinities(self) -> None:
        c = reduction_weights(None, {}, torch.Size((2, 4)))
        assert c is not None and bool((c == 0.25).all())

    def test_weighted_mean_over_positive_samples(self) -> None:
        labels = {"red": torch.tensor([[1.0, 0.0, 1.0, 0.0]])}
        c = reduction_weights({"red": 1.0}, labels, torch.Size((1, 4)))
        assert c is not None
        assert c[0].tolist() == pytest.approx([0.5, 0.0, 0.5, 0.0], rel=1e-7)

    def test_no_positive_label_gives_zero_term(self) -> None:
        c = reduction_weights({"red": 1.0}, {"red": torch.zeros(1, 4)}, torch.Size((1, 4)))
        assert c is not None and bool((c == 0).all())

    def test_missing_label_skips_term(self) -> None:
        assert reduction_weights({"red": 1.0}, {"blue": torch.ones(1, 4)}, torch.Size((1, 4))) is None

    def test_affinity_sum_is_clamped(self) -> None:
        labels = {"red": torch.tensor([[1.0, 1.0]]), "vibrant": torch.tensor([[1.0, 0.0]])}
        c = reduction_weights({"red": 1.0, "vibrant": 1.0}, labels, torch.Size((1, 2)))
        assert c is not None and c[0].tolist() == pytest.approx([0.5, 0.5], rel=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "lr"}, "invalid regularizer name"),
        ({"name": "a:b"}, "invalid regularizer name"),
        ({"layer": "decoder.0"}, "layer must be one of"),
        ({"phases": frozenset({"test"})}, "phases"),
    ],
)
def test_regularizer_config_validation(kwargs: dict, match: str) -> None:
    args = {"name": "anchor", "term": Unitarity(), **kwargs}
    with pytest.raises(ValueError, match=match):
        RegularizerConfig(**args)
