"""The two batch streams (§14.1): the published runs' own stream (§6.8) reproduced exactly, and
equivalence / resume tests that respect chaos (§6.9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excolor.data import OriginalStream, make_stream, training_colors
from excolor.dopesheet import reference_dopesheet
from excolor.experiments import ex_2_9_1
from excolor.plain import train_plain
from excolor.train import PopulationTrainer, train

EQUIV_STEPS = 300


def _original(seeds: list[int]) -> OriginalStream:
    return OriginalStream(
        seeds, n_colors=512, batch_size=64, batches_per_epoch=8, val_every=150, model_shape=(5, 16, 2)
    )


def test_original_stream_reproduces_reference_label_counts() -> None:
    """labels/n/red of the 60 reference runs (§10.1), exactly: counted over the batches whose
    anchor weight is non-zero (steps 1…1424)."""
    anchor = reference_dopesheet().table(["anchor"], np.minimum(np.arange(1501), 1499))[:, 0]
    colors, stream = training_colors(8), _original(list(range(60)))
    counts = np.zeros(60, dtype=np.int64)
    for b in range(1501):
        _, labels = stream.batch(colors, b)
        if anchor[b] != 0:
            counts += labels["red"].sum(-1).to(torch.int64).numpy()
    assert counts.mean() == pytest.approx(83.6167, abs=5e-5)
    assert counts.std(ddof=1) == pytest.approx(8.0087, abs=5e-5)
    assert (counts.min(), counts.max()) == (68, 98)
    assert counts[[33, 45, 15, 28, 9]].tolist() == [75, 95, 85, 94, 94]


@pytest.mark.parametrize("engine", ["torch", "kernel"])
def test_original_stream_reproduces_reference_runs(engine: str) -> None:
    """Seeds 33, 45 and 9 (non-chaotic, §10.1/§10.5) reproduce the published score to ± 0.01 and
    val_anchor to 4 decimals, on either engine; the trainer's own label count matches too."""
    m = train(ex_2_9_1(hidden=16, stream="original"), [33, 45, 9], engine=engine).metrics
    assert m["score"] == pytest.approx([0.9848, 0.9758, 0.9680], abs=0.01)
    assert np.round(m["val_anchor"], 4).tolist() == [0.0033, 0.0006, 0.0002]
    assert m["labels/n/red"].tolist() == [75, 95, 94]


def test_original_stream_is_per_model() -> None:
    """A model's draws do not depend on the other models of its population."""
    colors = training_colors(8)
    a, b = _original([3, 7]), _original([7])
    for step in range(20):
        xa, la = a.batch(colors, step)
        xb, lb = b.batch(colors, step)
        assert torch.equal(xa[1], xb[0]) and torch.equal(la["red"][1], lb["red"][0])


def test_original_stream_is_sequential() -> None:
    stream = _original([0])
    stream.batch(training_colors(8), 0)
    with pytest.raises(RuntimeError, match="sequential"):
        stream.batch(training_colors(8), 5)


def test_population_equals_plain_loop_on_original_stream() -> None:
    experiment = ex_2_9_1(stream="original")
    pop = PopulationTrainer(experiment, [33, 9])
    pop.run(until=EQUIV_STEPS)
    for i, seed in enumerate([33, 9]):
        plain = train_plain(experiment, seed, steps=EQUIV_STEPS)
        expected = torch.nn.utils.parameters_to_vector(plain.parameters()).detach()
        torch.testing.assert_close(pop.population.flat[i], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stop", [150, 301])  # a validation boundary, and mid-epoch
def test_original_stream_resumes_exactly(stop: int, tmp_path) -> None:
    experiment = ex_2_9_1(stream="original")
    straight = PopulationTrainer(experiment, [1, 2])
    straight.run(until=600)
    first = PopulationTrainer(experiment, [1, 2])
    first.run(until=stop)
    first.save(str(tmp_path / "ckpt.pt"))
    resumed = PopulationTrainer(experiment, [1, 2])
    resumed.load(str(tmp_path / "ckpt.pt"))
    resumed.run(until=600)
    assert torch.equal(straight.population.flat, resumed.population.flat)
    assert torch.equal(straight.label_counts["red"], resumed.label_counts["red"])


def test_checkpoint_stream_mismatch_is_an_error(tmp_path) -> None:
    hashed = PopulationTrainer(ex_2_9_1(), [0, 1])
    hashed.save(str(tmp_path / "c.pt"))
    with pytest.raises(ValueError, match="stream"):
        PopulationTrainer(ex_2_9_1(stream="original"), [0, 1]).load(str(tmp_path / "c.pt"))


def test_streams_differ_but_agree_in_distribution() -> None:
    colors = training_colors(8)
    kw = {"n_colors": 512, "batch_size": 64, "val_every": 150, "model_shape": (5, 16, 2)}
    h, o = make_stream("hash", range(200), **kw), make_stream("original", range(200), **kw)
    xh = torch.cat([h.batch(colors, b)[0] for b in range(40)])
    xo = torch.cat([o.batch(colors, b)[0] for b in range(40)])
    assert not torch.equal(xh, xo)
    assert xh.mean().item() == pytest.approx(xo.mean().item(), abs=0.01)


def test_unknown_stream_is_rejected() -> None:
    with pytest.raises(ValueError, match="stream"):
        ex_2_9_1(stream="numpy")
