"""The kernel engine's scoring (excolor.kernel_forward) against ``Population.color_errors``, and the
kernel engine's final metrics against the torch engine's on the same trained models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excolor.colors import rgb_grid
from excolor.evaluate import concept_intervention, loss_cube, method_errors
from excolor.experiments import PRESETS, preset
from excolor.kernel_forward import color_errors
from excolor.population import Population
from excolor.train import PopulationTrainer


def _population(kind: str, hidden: int, n_nonlinear: int, seeds: list[int]) -> Population:
    pop = Population.from_seeds(seeds, hidden=hidden, n_nonlinear=n_nonlinear, kind=kind)
    # Wider weights than the initialisation: outputs leave [0, 1] (the clamp matters), GELUs bend.
    pop.flat.mul_(2.5)
    return pop


def _colors(n: int = 12) -> torch.Tensor:
    return torch.as_tensor(rgb_grid(n), dtype=torch.float32)


def _methods() -> list:
    axis = torch.zeros(5)
    axis[0] = 1.0
    suppression = concept_intervention("suppression", axis)
    return [((), None), ((0,), None), ((0, 2), None), ((), suppression), ((1,), suppression)]


@pytest.mark.parametrize(
    ("kind", "hidden", "n_nonlinear"), [("CNColorMLP", 16, 2), ("CNColorMLP", 10, 1), ("ColorMLP", 16, 3)]
)
def test_kernel_errors_equal_the_populations_own(kind: str, hidden: int, n_nonlinear: int) -> None:
    """Baseline, ablations, a latent map and both together, on both model kinds and other shapes."""
    pop, x = _population(kind, hidden, n_nonlinear, list(range(5))), _colors()
    got = color_errors(pop, x, _methods())
    for (ablate, latent_map), errors in zip(_methods(), got):
        want = pop.color_errors(x, ablate=ablate, latent_map=latent_map)
        assert errors.shape == want.shape
        torch.testing.assert_close(errors, want, rtol=1e-4, atol=1e-7)
    if kind == "CNColorMLP":  # a linear output: the clamp to [0, 1] was exercised
        clamped = pop.predict(x)
        assert bool(((clamped == 0) | (clamped == 1)).any())


def test_kernel_errors_of_a_model_do_not_depend_on_its_population_blocks_or_threads() -> None:
    pop, x = _population("CNColorMLP", 16, 2, list(range(7))), _colors()
    whole = color_errors(pop, x, _methods(), threads=2)
    blocked = color_errors(pop, x, _methods(), max_values=3 * x.shape[0], threads=1)  # blocks of 3 models
    lone = Population(pop.flat[4:5].clone(), k_bottleneck=5, hidden=16, n_nonlinear=2)
    alone = color_errors(lone, x, _methods())
    for a, b, c in zip(whole, blocked, alone):
        assert torch.equal(a, b)
        assert torch.equal(a[4:5], c)


def test_method_errors_chooses_the_path_by_engine() -> None:
    pop, x = _population("CNColorMLP", 16, 2, [0, 1]), _colors(6)
    torch_path = method_errors(pop, x, [((0,), None)], engine="torch")[0]
    assert np.array_equal(torch_path, pop.color_errors(x, ablate=[0]).double().numpy())
    kernel_path = method_errors(pop, x, [((0,), None)], engine="kernel")[0]
    np.testing.assert_allclose(kernel_path, torch_path, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", PRESETS)
def test_kernel_engine_scores_like_the_torch_engine(name: str) -> None:
    """Every final metric of the same models (score, interventions' r, loss-cube errors) agrees."""
    exp = preset(name)
    ker = PopulationTrainer(exp, [0, 1, 2], engine="kernel")
    ker.run(until=exp.dopesheet.length // 5)
    ref = PopulationTrainer(exp, [0, 1, 2], engine="torch")
    ref.population.flat.copy_(ker.population.flat)
    ref.step, ref.history = ker.step, ker.history
    ref.label_counts, ref.max_train_recon = ker.label_counts, ker.max_train_recon
    got, want = ker.final_metrics(), ref.final_metrics()
    assert set(got) == set(want)
    cube = [k for k in want if k.endswith(("_max_mse", "_median_mse", "_r")) or k == "score"]
    assert len(cube) >= 5, cube
    for key in cube:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-3, atol=1e-6, err_msg=key)


def test_the_loss_cube_is_scored_in_blocks() -> None:
    """The cube (86,400 colours) goes through in blocks of whole models: a 30-model population of
    the default block size gives each model what it gets alone."""
    pop = _population("CNColorMLP", 16, 2, list(range(30)))
    x = torch.as_tensor(loss_cube().rgb_grid.reshape(-1, 3), dtype=torch.float32)
    (errors,) = color_errors(pop, x, [((0,), None)])
    (alone,) = color_errors(
        Population(pop.flat[29:].clone(), k_bottleneck=5, hidden=16, n_nonlinear=2), x, [((0,), None)]
    )
    assert torch.equal(errors[29:], alone)


def test_the_scoring_gelu_is_as_accurate_as_the_training_kernels() -> None:
    """The exp-free rational erf of the scoring GELU against the exact GELU a·Φ(a), in float64, over
    the range where Φ is not yet 0 or 1 and beyond: within about two float32 roundings, as the A&S
    form the training kernel (and ATen) use."""
    from math import erf, sqrt

    from excolor.kernel import _gelu_parts
    from excolor.kernel_forward import _gelu

    a = np.concatenate([np.linspace(-12.0, 12.0, 48_001), [0.0, -0.0, 1e-30, -1e-30, 5.656, -5.657]]).astype(np.float32)
    exact = np.array([float(v) * 0.5 * (1.0 + erf(float(v) / sqrt(2.0))) for v in a])
    scoring = np.array([_gelu(v) for v in a], dtype=np.float64)
    training = np.array([v * _gelu_parts(v)[0] for v in a], dtype=np.float64)
    scale = np.maximum(1.0, np.abs(a))  # float32's spacing is 1.19e-7 at 1
    worst, worst_training = ((np.abs(v - exact) / scale).max() for v in (scoring, training))
    assert worst < 2.5e-7  # about two float32 roundings, like the training kernel's 1.7e-7
    assert worst_training < 2.5e-7
    assert np.isnan(_gelu(np.float32("nan")))
