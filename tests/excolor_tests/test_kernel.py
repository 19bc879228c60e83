"""The fused CPU kernel engine (excolor.kernel) against the torch engine and the autograd oracle:
every preset, both streams, resume, divergence, lone ≡ population, and the torch fallback."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from excolor.dopesheet import reference_dopesheet
from excolor.experiments import PRESETS, ex_2_9_1, preset
from excolor.kernel import KERNEL_TERMS, _hash_batch, _separate_row, _separate_row_general, hash_keys, unsupported
from excolor.plain import train_plain
from excolor.regularizers import Anchor, RegularizerConfig
from excolor.train import PopulationTrainer, resolve_engine, train

STEPS = 150  # one validation interval of a 1501-step schedule
EQUIV_STEPS = 300  # as test_train: training is chaotic after step ≈ 500 (§6.9)


@pytest.fixture(scope="module")
def experiment():
    return ex_2_9_1(hidden=16)


def _pair(experiment, seeds, steps, **kw):
    """A torch and a kernel trainer of the same models, each run ``steps`` optimizer steps."""
    out = []
    for engine in ("torch", "kernel"):
        t = PopulationTrainer(experiment, seeds, engine=engine, **kw)
        assert t.engine == engine
        t.run(until=steps)
        out.append(t)
    return out


@pytest.mark.parametrize("name", PRESETS)
def test_kernel_equals_torch_trainer_on_every_preset(name: str) -> None:
    """Parameters, Adam moments, run statistics and validation metrics agree to float tolerance
    over the first validation interval (150 steps for a 1501-step schedule)."""
    exp = preset(name)
    assert unsupported(exp) == []
    ref, ker = _pair(exp, [0, 1], exp.dopesheet.length // 10)
    torch.testing.assert_close(ker.population.flat, ref.population.flat, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ker.exp_avg, ref.exp_avg, rtol=1e-3, atol=1e-6)
    assert torch.equal(ker.alive, ref.alive) and bool(ker.alive.all())
    assert {k: v.tolist() for k, v in ker.label_counts.items()} == {k: v.tolist() for k, v in ref.label_counts.items()}
    assert set(ker.last_train) == set(ref.last_train)
    for key, value in ref.last_train.items():
        torch.testing.assert_close(ker.last_train[key], value, rtol=1e-3, atol=1e-5, equal_nan=True, msg=key)
    torch.testing.assert_close(ker.max_train_recon, ref.max_train_recon, rtol=1e-3, atol=1e-6)
    assert len(ker.history) == len(ref.history) == 1
    for key, value in ref.history[0].items():
        torch.testing.assert_close(ker.history[0][key], value, rtol=1e-3, atol=1e-5, equal_nan=True, msg=key)


@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("k", [0, 1, 2, 9, 99, 128, 255])
def test_fused_separate_row_equals_the_general_row_bitwise(shift: bool, k: int) -> None:
    """Separate's row with its power chain in registers (integer exponents below 256) gives the
    general row's C^k, row sums and masked counts bit for bit: masked self-pairs (C = 1), entries
    under the floor, negative cosines and values whose high powers underflow included."""
    rng = np.random.default_rng(k)
    dot = rng.uniform(-1.0, 1.0, 64).astype(np.float32)
    dot[:4] = [1.0, 1.0 - 1e-6, -1.0, 0.0]
    dot[4:8] = rng.uniform(0.99, 1.0, 4)
    floor = np.float32(1e-36 ** (1.0 / (k + 1)))
    close_at = np.float32(math.nextafter(1.0 - (1e-8 + 1e-5) / (2 if shift else 1), -math.inf))
    outs = []
    for fused in (True, False):
        bl, ps, count = np.full(64, np.nan, np.float32), np.full(64, 0.25, np.float32), np.ones(64, np.float32)
        if fused:
            _separate_row(dot.copy(), bl, ps, count, shift, floor, close_at, k)
        else:
            _separate_row_general(dot.copy(), np.empty(64, np.float32), bl, ps, count, shift, floor, close_at, float(k))
        outs.append((bl, ps, count))
    for got, want in zip(*outs):
        np.testing.assert_array_equal(got, want)
    assert outs[0][2].max() > 1  # some entries were masked


def test_kernel_equals_plain_autograd_loop(experiment) -> None:
    """The oracle test of test_train, with the kernel: same tolerance over 300 steps."""
    pop = PopulationTrainer(experiment, [3, 4], engine="kernel")
    pop.run(until=EQUIV_STEPS)
    for i, seed in enumerate([3]):
        plain = train_plain(experiment, seed, steps=EQUIV_STEPS)
        expected = torch.nn.utils.parameters_to_vector(plain.parameters()).detach()
        torch.testing.assert_close(pop.population.flat[i], expected, rtol=1e-4, atol=1e-5)


def test_kernel_original_stream_equals_torch(experiment) -> None:
    """The original stream's batches are drawn in Python and handed to the kernel."""
    exp = ex_2_9_1(hidden=16, stream="original")
    ref, ker = _pair(exp, [33, 45], STEPS)
    torch.testing.assert_close(ker.population.flat, ref.population.flat, rtol=1e-4, atol=1e-5)
    assert {k: v.tolist() for k, v in ker.label_counts.items()} == {k: v.tolist() for k, v in ref.label_counts.items()}


@pytest.mark.parametrize("name", ["ex-2.9.1", "ex-2.8"])  # uniform; bias-weighted sampler
def test_kernel_hash_batches_equal_the_sampler(name: str) -> None:
    """The kernel's in-loop hash draws are HashSampler.batch's, bitwise."""
    t = PopulationTrainer(preset(name), [0, 7, 2**32 - 1], engine="kernel")
    runner = t._kernel
    b = t.experiment.batch_size
    for step in (0, 1, 149, 1000):
        x_ref, labels_ref = t.batches.batch(t.train_set, step)
        for s in range(3):
            x = np.empty((3, b), np.float32)
            lab = np.empty((len(t.label_names), b), np.float32)
            _hash_batch(runner.keys, s, step, runner.colors, runner.cdf, runner.probs, x, lab)
            assert np.array_equal(x.T, x_ref[s].numpy())
            for q, name_ in enumerate(t.label_names):
                assert np.array_equal(lab[q], labels_ref[name_][s].numpy())
    assert hash_keys([5], 1).shape == (1, 2)


def test_kernel_lone_model_equals_population_member(experiment) -> None:
    """Model i of a population equals the same model trained alone, bitwise, over a whole run."""
    exp = experiment.with_dopesheet(reference_dopesheet().stretched(151))
    ref = exp.dopesheet
    sheets = [ref, ref.scaled({"anchor": 3.0, "separate": 0.5}), ref.scaled({"anti-subspace": 0.0, "lr": 0.5})]
    seeds = [7, 7, 21]
    pop = train(exp, seeds, dopesheets=sheets, engine="kernel")
    for i, (seed, sheet) in list(enumerate(zip(seeds, sheets)))[1:]:
        lone = train(exp, seed, dopesheets=[sheet], engine="kernel")
        assert torch.equal(pop.population.flat[i], lone.population.flat[0])
        for key in ("score", "val_recon", "val_anchor", "labels/n/red", "max_train_recon"):
            assert pop.metrics[key][i] == lone.metrics[key][0], key
    assert (pop.population.flat[0] - pop.population.flat[1]).abs().max() > 1e-3


def test_kernel_results_do_not_depend_on_thread_count(experiment) -> None:
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            t = PopulationTrainer(experiment, [3, 9, 11], engine="kernel")
            t.run(until=STEPS)
            runs.append(t.population.flat.clone())
    finally:
        torch.set_num_threads(before)
    assert torch.equal(runs[0], runs[1])


def test_kernel_single_steps_equal_a_chunk(experiment) -> None:
    """train_step() (one kernel call per step) equals run() (one call per validation interval)."""
    a = PopulationTrainer(experiment, [1, 2], engine="kernel")
    a.run(until=20)
    b = PopulationTrainer(experiment, [1, 2], engine="kernel")
    for _ in range(20):
        b.train_step()
    assert b.step == 20
    assert torch.equal(a.population.flat, b.population.flat)
    assert torch.equal(a.exp_avg_sq, b.exp_avg_sq)


def test_kernel_save_restore_resumes_identically(experiment, tmp_path) -> None:
    straight = PopulationTrainer(experiment, [0, 1, 2], engine="kernel")
    straight.run(until=300)
    first = PopulationTrainer(experiment, [0, 1, 2], engine="kernel")
    first.run(until=150)
    first.save(str(tmp_path / "ckpt.pt"))
    resumed = PopulationTrainer(experiment, [0, 1, 2], engine="kernel")
    resumed.load(str(tmp_path / "ckpt.pt"))
    resumed.run(until=300)
    assert torch.equal(straight.population.flat, resumed.population.flat)
    assert torch.equal(straight.exp_avg, resumed.exp_avg)
    assert torch.equal(straight.exp_avg_sq, resumed.exp_avg_sq)
    assert torch.equal(straight.max_train_recon, resumed.max_train_recon)
    assert all(torch.equal(straight.label_counts[k], resumed.label_counts[k]) for k in straight.label_counts)
    assert len(resumed.history) == len(straight.history) == 2
    for a, b in zip(straight.history, resumed.history):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_kernel_resumes_a_torch_checkpoint(experiment, tmp_path) -> None:
    """Checkpoints are engine-independent: a torch run continued by the kernel stays close."""
    t = PopulationTrainer(experiment, [0, 1])
    t.run(until=150)
    t.save(str(tmp_path / "c.pt"))
    k = PopulationTrainer(experiment, [0, 1], engine="kernel")
    k.load(str(tmp_path / "c.pt"))
    k.run(until=180)
    t.run(until=180)
    torch.testing.assert_close(k.population.flat, t.population.flat, rtol=1e-4, atol=1e-5)


def test_kernel_diverging_model_is_flagged_and_does_not_poison_others(experiment) -> None:
    ref = reference_dopesheet()
    bad = ref.scaled({"lr": 1e37})  # overflows within a few steps
    pop = PopulationTrainer(experiment, [5, 5], dopesheets=[ref, bad], engine="kernel")
    pop.run(until=STEPS)
    torch_pop = PopulationTrainer(experiment, [5, 5], dopesheets=[ref, bad])
    torch_pop.run(until=30)  # diverges within a few steps
    lone = PopulationTrainer(experiment, [5], engine="kernel")
    lone.run(until=STEPS)
    assert bool(pop.alive[0]) and not bool(pop.alive[1])
    assert int(pop.diverged_step[1]) == int(torch_pop.diverged_step[1])  # the same step as the torch engine
    assert 0 <= int(pop.diverged_step[1]) < 30 and int(pop.diverged_step[0]) == -1
    assert bool(torch.isfinite(pop.population.flat).all())  # frozen at its last finite state
    assert torch.equal(pop.population.flat[0], lone.population.flat[0])  # bitwise: nothing leaks across models
    metrics = pop.validate()
    assert math.isfinite(float(metrics["val_recon"][0])) and math.isnan(float(metrics["val_recon"][1]))


class _Cube(Anchor):
    """A term the kernel does not know (a subclass with its own formula)."""

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, object]:
        diff = h - self.point.to(h)
        return (diff**4).sum(-1), diff

    def vjp(self, ctx: object, g: torch.Tensor) -> torch.Tensor:
        assert isinstance(ctx, torch.Tensor)
        return 4.0 * ctx**3 * g.unsqueeze(-1)


def test_unknown_term_falls_back_to_the_torch_engine(experiment) -> None:
    """A training term outside KERNEL_TERMS: 'kernel' warns and trains with torch, 'auto' silently."""
    extra = RegularizerConfig("cube", _Cube([1.0, 0, 0, 0, 0]))
    exp = dataclasses.replace(experiment, regularizers=(*experiment.regularizers, extra))
    assert unsupported(exp) == ["regularizer 'cube' (_Cube)"]
    assert "_Cube" not in KERNEL_TERMS
    with pytest.warns(UserWarning, match="does not compute regularizer 'cube'"):
        t = PopulationTrainer(exp, [0, 1], engine="kernel")
    assert t.engine == "torch" and "cube" in t.engine_note and t._kernel is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = PopulationTrainer(exp, [0, 1], engine="auto")
    assert auto.engine == "torch"
    t.run(until=3)
    assert "train_cube" in t.last_train
    # validation-only terms need no kernel support
    val_only = RegularizerConfig("cube", _Cube([1.0, 0, 0, 0, 0]), phases=frozenset({"validate"}))
    assert unsupported(dataclasses.replace(experiment, regularizers=(*experiment.regularizers, val_only))) == []


def test_engine_choice(experiment) -> None:
    assert resolve_engine("auto", experiment, torch.device("cpu")) == ("kernel", "")
    assert resolve_engine("torch", experiment, torch.device("cpu")) == ("torch", "")
    engine, note = resolve_engine("auto", experiment, torch.device("cuda"))
    assert engine == "torch" and "CPU" in note
    with pytest.raises(ValueError, match="unknown engine"):
        PopulationTrainer(experiment, [0], engine="numba")
