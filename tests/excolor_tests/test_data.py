"""Colour sets (§3.5, §3.7, §13) and the stateless hash sampler (§14.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excolor.data import HashSampler, color_grid, training_colors, validation_colors


def test_dataset_sizes_and_red_index() -> None:
    assert color_grid(8, "cell-corners").shape == (512, 3)
    val = validation_colors(8)
    assert len(val) == 351
    assert val.colors[347].tolist() == [1.0, 0.0, 0.0]
    assert torch.nonzero(val.labels["red"]).flatten().tolist() == [347]


def test_center_grid_is_literal_not_midpoints() -> None:
    axis = np.unique(color_grid(8, "cell-centers", add_corners=False)[:, 0])
    assert axis.tolist() == pytest.approx([0.0625, 0.2083333, 0.3541667, 0.5, 0.6458333, 0.7916667, 0.9375])


def test_training_red_probabilities() -> None:
    p = training_colors(8).labels["red"].double()
    assert p.max().item() == pytest.approx(0.08)
    assert int((p > 0.001).sum()) == 42
    assert p.mean().item() == pytest.approx(0.000899, abs=5e-7)


def test_sampler_is_a_pure_function_of_seed_and_step() -> None:
    a = HashSampler([3, 7, 11], n_colors=512, batch_size=64)
    b = HashSampler([11, 3], n_colors=512, batch_size=64)
    assert torch.equal(a.indices(5)[2], b.indices(5)[0])  # model 11 draws the same alone or in company
    assert torch.equal(a.uniforms(5)[0], b.uniforms(5)[1])
    assert not torch.equal(a.indices(5), a.indices(6))
    assert not torch.equal(a.indices(5)[0], a.indices(5)[1])


def test_sampler_distribution_is_uniform() -> None:
    s = HashSampler(list(range(64)), n_colors=512, batch_size=64)
    idx = torch.cat([s.indices(t).flatten() for t in range(50)])
    counts = torch.bincount(idx, minlength=512).double()
    assert idx.min() >= 0 and idx.max() < 512
    expected = len(idx) / 512
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 512 + 6 * (2 * 511) ** 0.5  # 6 sigma above the mean of chi²(511)
    u = torch.cat([s.uniforms(t).flatten() for t in range(50)])
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.005


def test_independent_label_channels() -> None:
    s = HashSampler([1], n_colors=512, batch_size=4096)
    u0, u1 = s.uniforms(0, 0).flatten(), s.uniforms(0, 1).flatten()
    assert abs(float(torch.corrcoef(torch.stack([u0, u1]))[0, 1])) < 0.05


def test_expected_red_label_rate() -> None:
    colors = training_colors(8)
    s = HashSampler(list(range(200)), n_colors=512, batch_size=64)
    n = sum(int(s.batch(colors, t)[1]["red"].sum()) for t in range(1, 1425))
    assert n / 200 == pytest.approx(81.9, abs=1.5)  # §14.4: 81.9 ± 9.0 per run, so ± 0.64 for the mean


@pytest.mark.parametrize("seeds", [[], [-1], [2**32]])
def test_sampler_rejects_bad_seeds(seeds: list[int]) -> None:
    with pytest.raises(ValueError):
        HashSampler(seeds, n_colors=512, batch_size=64)
