"""The population trainer: equivalence with lone models and with a plain autograd loop,
save/restore, divergence handling, metrics (§4.4, §6.2, §12, §14.1, §14.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from excolor.dopesheet import Dopesheet, reference_dopesheet
from excolor.experiments import ex_2_9_1
from excolor.plain import train_plain
from excolor.train import PopulationTrainer, train

# Training is chaotic after step ≈ 500 (§6.9): per-model equality is tested over the first 300.
EQUIV_STEPS = 300


@pytest.fixture(scope="module")
def experiment():
    return ex_2_9_1(hidden=16)


def _params(trainer: PopulationTrainer, i: int) -> torch.Tensor:
    return trainer.population.flat[i].clone()


def test_population_member_equals_lone_model_with_own_weights(experiment) -> None:
    """Model i of a population equals the same model trained alone, with its own schedule, over
    the whole 1501-step run (bitwise: same code, same kernels), and so do its metrics."""
    ref = reference_dopesheet()
    sheets = [ref, ref.scaled({"anchor": 3.0, "separate": 0.5}), ref.scaled({"anti-subspace": 0.0, "lr": 0.5})]
    seeds = [7, 7, 21]
    pop = train(experiment, seeds, dopesheets=sheets)
    for i, (seed, sheet) in enumerate(zip(seeds, sheets)):
        lone = train(experiment, seed, dopesheets=[sheet])
        assert lone.population.size == 1
        assert torch.equal(pop.population.flat[i], lone.population.flat[0])
        for key in ("score", "val_recon", "val_anchor", "labels/n/red", "max_train_recon"):
            assert pop.metrics[key][i] == lone.metrics[key][0], key
    # Same seed, different schedule: the models really differ.
    assert (pop.population.flat[0] - pop.population.flat[1]).abs().max() > 1e-3


def test_results_do_not_depend_on_thread_count(experiment) -> None:
    """Per-model results are independent of how many torch threads train the population."""
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            t = PopulationTrainer(experiment, [3, 9])
            t.run(until=EQUIV_STEPS)
            runs.append(t.population.flat.clone())
    finally:
        torch.set_num_threads(before)
    assert torch.equal(runs[0], runs[1])


def test_population_equals_plain_autograd_loop(experiment) -> None:
    """The hand-written backward + flat Adam equal nn.Module + autograd + torch.optim.Adam."""
    pop = PopulationTrainer(experiment, [3, 4])
    pop.run(until=EQUIV_STEPS)
    for i, seed in enumerate([3, 4]):
        plain = train_plain(experiment, seed, steps=EQUIV_STEPS)
        expected = torch.nn.utils.parameters_to_vector(plain.parameters()).detach()
        torch.testing.assert_close(_params(pop, i), expected, rtol=1e-4, atol=1e-5)


def test_save_restore_resumes_identically(experiment, tmp_path) -> None:
    straight = PopulationTrainer(experiment, [0, 1, 2])
    straight.run(until=450)
    first = PopulationTrainer(experiment, [0, 1, 2])
    first.run(until=150)
    first.save(str(tmp_path / "ckpt.pt"))
    resumed = PopulationTrainer(experiment, [0, 1, 2])
    resumed.load(str(tmp_path / "ckpt.pt"))
    assert resumed.step == 150
    resumed.run(until=450)
    assert torch.equal(straight.population.flat, resumed.population.flat)
    assert torch.equal(straight.exp_avg_sq, resumed.exp_avg_sq)
    assert len(resumed.history) == len(straight.history) == 3
    for a, b in zip(straight.history, resumed.history):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_rejects_other_seeds(experiment, tmp_path) -> None:
    t = PopulationTrainer(experiment, [0, 1])
    t.save(str(tmp_path / "c.pt"))
    with pytest.raises(ValueError, match="seeds"):
        PopulationTrainer(experiment, [0, 2]).load(str(tmp_path / "c.pt"))


def test_diverging_model_is_flagged_and_does_not_poison_others(experiment) -> None:
    ref = reference_dopesheet()
    bad = ref.scaled({"lr": 1e37})  # overflows within a few steps
    pop = PopulationTrainer(experiment, [5, 5], dopesheets=[ref, bad])
    pop.run(until=EQUIV_STEPS)
    lone = PopulationTrainer(experiment, [5])
    lone.run(until=EQUIV_STEPS)
    assert bool(pop.alive[0]) and not bool(pop.alive[1])
    assert 0 <= int(pop.diverged_step[1]) < EQUIV_STEPS
    assert bool(torch.isfinite(pop.population.flat).all())  # frozen at its last finite state
    torch.testing.assert_close(_params(pop, 0), _params(lone, 0), rtol=1e-4, atol=1e-5)
    metrics = {k: v for k, v in pop.validate().items()}
    assert math.isfinite(float(metrics["val_recon"][0])) and math.isnan(float(metrics["val_recon"][1]))


def _short(experiment, steps: int):
    return experiment.with_dopesheet(reference_dopesheet().stretched(steps))


def test_final_metrics_names_and_shapes(experiment) -> None:
    result = train(_short(experiment, 301), [0, 1, 2])
    m = result.metrics
    for key in [
        "seed",
        "score",
        "ablated_r",
        "val_recon",
        "val_loss",
        "val_anchor",
        "val_anti-anchor",
        "red_angle_deg",
        "labels/n/red",
        "labels/n_total",
        "max_train_recon",
        "collapsed",
        "diverged",
        "diverged_step",
        "runtime_s",
    ]:
        assert key in m and len(m[key]) == 3, key
    assert "val_separate" not in m and "val_anti-subspace" not in m  # train-only terms (§4.5)
    assert (m["labels/n_total"] == 301 * 64).all()
    assert np.isfinite(m["score"]).all() and ((m["score"] >= 0) & (m["score"] <= 1)).all()
    assert np.allclose(m["score"], m["ablated_r"] ** 2)
    assert len(result.history) == 10 and int(result.history[-1]["step"]) == 300


def test_final_metrics_without_the_cube_leave_only_the_cube_out(experiment) -> None:
    """A search skips the loss cube (``cube=False``); everything else it reports is unchanged."""
    from excolor.methods import cube_metric_names

    trainer = PopulationTrainer(_short(experiment, 31), [0, 1], engine="kernel")
    trainer.run()
    full, lean = trainer.final_metrics(), trainer.final_metrics(cube=False)
    cube = cube_metric_names(experiment.evaluation.interventions)
    assert set(cube) <= set(full) and not set(cube) & set(lean)
    assert set(lean) == set(full) - set(cube)
    for key in lean:
        if key != "runtime_s":
            np.testing.assert_array_equal(lean[key], full[key], err_msg=key)


def test_validation_anchor_is_batch_weighted(experiment) -> None:
    """val_anchor = (31/351)(1 − cos(h_red, e0)) (§4.4, §12 pitfall 12)."""
    t = PopulationTrainer(experiment, [0, 1])
    t.run(until=150)
    v = t.validate()
    x = t.val_set.colors
    h = t.population.forward(x).h[:, 347]  # pure red
    expected = (31 / 351) * (1 - h[:, 0] / (h.norm(dim=-1) + 1e-8))
    torch.testing.assert_close(v["val_anchor"], expected.double(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(v["red_angle_deg"], torch.rad2deg(torch.arccos(h[:, 0].clamp(-1, 1))).double())


def test_label_count_only_while_anchor_active(experiment) -> None:
    """labels/n/red counts red labels of the batches where the anchor weight is non-zero (§6.4)."""
    t = PopulationTrainer(experiment, [0])
    t.run()
    total = 0
    for b in range(t.length):
        if t.schedule[min(b, t.length - 2), 0, t.props.index("anchor")] != 0:
            total += int(t.batches.batch(t.train_set, b)[1]["red"][0].sum())
    assert int(t.label_counts["red"][0]) == total
    assert t.schedule[0, 0, t.props.index("anchor")] == 0  # step 0: weight 0 (not counted)


def test_zero_weight_terms_are_skipped(experiment) -> None:
    """A weight of exactly 0 is not computed or logged (§12 pitfall 3)."""
    t = PopulationTrainer(experiment, [0])
    t.run(until=1)  # step 0: anchor and anti-anchor weights are 0
    assert "train_anchor" not in t.last_train and "train_anti-anchor" not in t.last_train
    assert "train_separate" in t.last_train and "train_anti-subspace" in t.last_train


def test_missing_regularizer_column_has_full_weight(experiment) -> None:
    """A regularizer absent from the dopesheet gets weight 1.0 (§12 pitfall 3)."""
    sheet = Dopesheet.parse("STEP,lr,anchor\n0,1e-8,0\n+10,0.01,\n100,0.01,0.1\n")
    t = PopulationTrainer(experiment, [0], dopesheets=[sheet])
    assert t.schedule[5, 0, t.props.index("separate")].item() == 1.0
    assert t.schedule[5, 0, t.props.index("lr")].item() == pytest.approx(sheet.values_at(5)["lr"])


def test_schedule_index_is_min_b_and_l_minus_2(experiment) -> None:
    """Batch b uses timeline step min(b, L−2): the last two batches share step 1499 (§6.2)."""
    t = PopulationTrainer(experiment, [0])
    assert t.schedule.shape[0] == 1500
    assert t.schedule[1499, 0, 0].item() == pytest.approx(0.0500012, rel=1e-5)
