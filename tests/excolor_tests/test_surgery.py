"""Tests for excolor.surgery: ablate and prune on CNColorMLP and on hand-built models (§7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from excolor.colors import rgb_grid
from excolor.model import CNColorMLP, build_model
from excolor.surgery import ablate, prune


@pytest.fixture
def model() -> CNColorMLP:
    torch.manual_seed(0)
    return CNColorMLP(5, hidden=16, n_nonlinear=2)


def _snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_ablate_zeroes_producer_rows_and_consumer_columns(model: CNColorMLP) -> None:
    before = _snapshot(model)
    out = ablate(model, "bottleneck", [0, 3])
    _assert_same_state(_snapshot(model), before)  # input untouched
    assert out is not model
    sd = out.state_dict()
    for d in (0, 3):
        assert torch.all(sd["encoder.4.weight"][d] == 0)
        assert sd["encoder.4.bias"][d] == 0
        assert torch.all(sd["decoder.0.weight"][:, d] == 0)
    keep = [1, 2, 4]
    torch.testing.assert_close(sd["encoder.4.weight"][keep], before["encoder.4.weight"][keep])
    torch.testing.assert_close(sd["encoder.4.bias"][keep], before["encoder.4.bias"][keep])
    torch.testing.assert_close(sd["decoder.0.weight"][:, keep], before["decoder.0.weight"][:, keep])
    torch.testing.assert_close(sd["decoder.0.bias"], before["decoder.0.bias"])  # consumer bias kept
    for k in before:
        if not k.startswith(("encoder.4", "decoder.0")):
            torch.testing.assert_close(sd[k], before[k], rtol=0, atol=0)
        assert sd[k].shape == before[k].shape


def test_prune_removes_dims_and_shrinks_shapes(model: CNColorMLP) -> None:
    before = _snapshot(model)
    out = prune(model, "bottleneck", [0])
    _assert_same_state(_snapshot(model), before)
    assert isinstance(out.encoder[4], nn.Linear) and isinstance(out.decoder[0], nn.Linear)
    sd = out.state_dict()
    assert sd["encoder.4.weight"].shape == (4, 16)
    assert sd["encoder.4.bias"].shape == (4,)
    assert sd["decoder.0.weight"].shape == (16, 4)
    assert sd["decoder.0.bias"].shape == (16,)
    torch.testing.assert_close(sd["encoder.4.weight"], before["encoder.4.weight"][1:])
    torch.testing.assert_close(sd["encoder.4.bias"], before["encoder.4.bias"][1:])
    torch.testing.assert_close(sd["decoder.0.weight"], before["decoder.0.weight"][:, 1:])
    torch.testing.assert_close(sd["decoder.0.bias"], before["decoder.0.bias"])
    assert model.encoder[4].weight.shape == (5, 16)
    assert all(p.requires_grad for p in out.parameters())


def test_prune_several_dims_is_order_and_duplicate_insensitive(model: CNColorMLP) -> None:
    a = prune(model, "bottleneck", [3, 1, 3])
    b = prune(model, "bottleneck", (1, 3))
    _assert_same_state(_snapshot(a), _snapshot(b))
    torch.testing.assert_close(a.get_parameter("encoder.4.weight"), model.get_parameter("encoder.4.weight")[[0, 2, 4]])


@pytest.mark.parametrize("seed", [0, 7])
def test_ablated_and_pruned_models_give_identical_outputs(seed: int) -> None:
    m = build_model(seed)
    x = torch.as_tensor(rgb_grid(20), dtype=torch.float32)
    abl, pru = ablate(m, "bottleneck", [0]), prune(m, "bottleneck", [0])
    with torch.no_grad():
        for training in (True, False):  # unclamped, then clamped outputs
            abl.train(training), pru.train(training)
            assert float((abl(x) - pru(x)).abs().max()) < 1e-6
        y_abl, y = abl.train()(x), m.train()(x)
    assert float((y_abl - y).abs().max()) > 1e-3  # the surgery did something


def test_empty_dims_return_an_unchanged_copy(model: CNColorMLP) -> None:
    for op in (ablate, prune):
        out = op(model, "bottleneck", [])
        assert out is not model
        _assert_same_state(_snapshot(out), _snapshot(model))


def test_training_flag_is_kept(model: CNColorMLP) -> None:
    model.eval()
    assert not prune(model, "bottleneck", [0]).training
    assert not prune(model, "bottleneck", [0]).encoder[4].training
    model.train()
    assert ablate(model, "bottleneck", [0]).training


@pytest.mark.parametrize("op", [ablate, prune])
@pytest.mark.parametrize("dims", [[5], [-1], [0, 9]])
def test_out_of_range_dims_raise_index_error(model: CNColorMLP, op: object, dims: list[int]) -> None:
    with pytest.raises(IndexError):
        op(model, "bottleneck", dims)  # type: ignore[operator]


def test_prune_everything_raises(model: CNColorMLP) -> None:
    with pytest.raises(ValueError, match="leaves nothing"):
        prune(model, "bottleneck", range(5))


def test_unknown_layer_raises(model: CNColorMLP) -> None:
    with pytest.raises(ValueError, match="no module"):
        ablate(model, "middle", [0])


class _Mismatched(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.mid = nn.Identity()
        self.b = nn.Linear(5, 2)


def test_mismatched_widths_raise(model: CNColorMLP) -> None:
    with pytest.raises(ValueError, match="writes 4 features"):
        ablate(_Mismatched(), "mid", [0])


def test_fallback_for_a_container_layer(model: CNColorMLP) -> None:
    # 'encoder' precedes all its Linears in named_modules order: the fallback finds width K = 5.
    _assert_same_state(_snapshot(prune(model, "encoder", [2])), _snapshot(prune(model, "bottleneck", [2])))
    _assert_same_state(_snapshot(ablate(model, "encoder", [2])), _snapshot(ablate(model, "bottleneck", [2])))


def test_ambiguous_fallback_raises() -> None:
    # Widths 4 and 6 are each written once and read once later on: no unique choice.
    seq = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 6), nn.Linear(6, 3))
    with pytest.raises(ValueError, match="ambiguous"):
        ablate(seq, "", [0])
