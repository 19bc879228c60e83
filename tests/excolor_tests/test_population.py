"""The stacked population: same init as lone models, same forward, backward equal to autograd."""

from __future__ import annotations

import pytest
import torch

from excolor.model import CNColorMLP, build_model
from excolor.population import Population


@pytest.mark.parametrize(
    ("kind", "k", "hidden", "n"), [("CNColorMLP", 5, 16, 2), ("CNColorMLP", 5, 10, 1), ("ColorMLP", 4, 16, 3)]
)
def test_init_equals_lone_models_bitwise(kind: str, k: int, hidden: int, n: int) -> None:
    """Drawn without modules (``initial_parameters``), yet bitwise what ``build_model`` builds."""
    seeds = [4, 9, 123456789]
    pop = Population.from_seeds(seeds, k_bottleneck=k, hidden=hidden, n_nonlinear=n, kind=kind)
    assert pop.kind == kind
    for i, seed in enumerate(seeds):
        lone = build_model(seed, k, hidden, n, kind=kind)
        assert torch.equal(torch.nn.utils.parameters_to_vector(lone.parameters()), pop.flat[i])
        assert all(torch.equal(a, b) for a, b in zip(lone.state_dict().values(), pop.module(i).state_dict().values()))


def test_init_rejects_an_empty_layer() -> None:
    with pytest.raises(ValueError, match="hidden, n_nonlinear >= 1"):
        Population.from_seeds([0], hidden=0)


def test_forward_matches_module() -> None:
    pop = Population.from_seeds([0, 1, 2], hidden=10)
    x = torch.rand(3, 64, 3, generator=torch.Generator().manual_seed(0))
    acts = pop.forward(x)
    for i in range(3):
        m = pop.module(i).train()
        torch.testing.assert_close(acts.y[i], m(x[i]), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(acts.h[i], m.bottleneck(m.encoder(x[i])), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(pop.predict(x)[i], m.eval()(x[i]), rtol=1e-6, atol=1e-6)


def test_shared_input_equals_broadcast_input() -> None:
    pop = Population.from_seeds([0, 1])
    x = torch.rand(20, 3)
    torch.testing.assert_close(pop.predict(x), pop.predict(x.expand(2, -1, -1)))


def test_backward_matches_autograd() -> None:
    for n_nonlinear in (1, 2, 3):
        models = [build_model(s, 5, 7, n_nonlinear).double() for s in (0, 1)]
        pop = Population.from_modules(models)
        pop.flat = pop.flat.double()
        g = torch.Generator().manual_seed(n_nonlinear)
        x = torch.rand(2, 32, 3, generator=g, dtype=torch.float64)
        dy = torch.randn(2, 32, 3, generator=g, dtype=torch.float64)
        dh = torch.randn(2, 32, 5, generator=g, dtype=torch.float64)
        dz = torch.randn(2, 32, 5, generator=g, dtype=torch.float64)
        grad = torch.zeros_like(pop.flat)
        pop.backward(pop.forward(x), dy, grad, dh=dh, dz=dz)
        for i, m in enumerate(models):
            m.train()
            z = m.encoder(x[i])
            h = m.bottleneck(z)
            y = m.decoder(h)
            objective = (y * dy[i]).sum() + (h * dh[i]).sum() + (z * dz[i]).sum()
            expected = torch.autograd.grad(objective, list(m.parameters()))
            torch.testing.assert_close(grad[i], torch.cat([e.reshape(-1) for e in expected]), rtol=1e-10, atol=1e-12)


def test_ablate_in_forward_equals_surgery() -> None:
    from excolor.surgery import ablate

    pop = Population.from_seeds([5])
    x = torch.rand(100, 3)
    lone: CNColorMLP = ablate(pop.module(0), "bottleneck", [0])
    torch.testing.assert_close(pop.predict(x, ablate=[0])[0], lone.eval()(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("max_values", [2 * 512, 3 * 512, 1 << 21])
def test_color_errors_in_blocks_equal_the_whole_population(max_values: int) -> None:
    """Evaluating a block of models at a time (memory) changes no bit, and no block is a lone model."""
    from excolor.colors import rgb_grid

    pop = Population.from_seeds(range(7))
    x = torch.as_tensor(rgb_grid(8), dtype=torch.float32)
    whole = ((pop.predict(x, ablate=[0]) - x) ** 2).mean(-1)
    assert torch.equal(pop.color_errors(x, ablate=[0], max_values=max_values), whole)
