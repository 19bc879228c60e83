"""CPU/GPU equivalence of the population trainer (issue #7): same seeds, same batches, same models.

The hash stream is integer arithmetic, so both devices must draw the very same batches, bit for bit.
The float arithmetic is not bitwise the same (cuBLAS sums in another order, CUDA's erf and norms
round differently), so parameters and metrics are compared to a tolerance. The tolerance was set on
the CPU by perturbing the reference run at rounding level (float64 Linears, or relative noise of
1e-7 on every parameter after every step): after 300 steps the chosen seeds stay within ~3e-5 of
their weight scale even under 1e-6 noise, while some other seeds (2, 42, 51, ...) have already
turned chaotic by then (§6.9), which is why they are not used here.

Skipped without a CUDA GPU; the whole module runs in well under a minute on one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from excolor.config import Experiment
from excolor.data import HashSampler
from excolor.devices import resolve_device
from excolor.dopesheet import reference_dopesheet
from excolor.experiments import ex_2_9_1
from excolor.train import PopulationTrainer, train

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine: CPU/GPU equivalence needs one (issue #7)"
)

SEEDS = (4, 9, 11, 29, 34, 35, 52, 61)  # stable over 300 steps under rounding-level noise (see above)
STEPS = 300  # training is chaotic after step ~500 (§6.9); per-model agreement is tested before that
EARLY = 10
EARLY_RTOL = 1e-5  # measured ~4e-7 after 10 steps with float64 Linears
PARAM_RTOL = 1e-4  # measured ~3e-6 (float64 Linears) to ~3e-5 (1e-6 noise) after 300 steps
METRIC_TOL = {"rtol": 1e-3, "atol": 1e-6}  # losses ~1e-3..1e-1, measured differences ~1e-8
ANGLE_ATOL_DEG = 1e-2  # measured ~2e-4°


def _trainer(experiment: Experiment, device: torch.device | str, seeds: Sequence[int] = SEEDS) -> PopulationTrainer:
    return PopulationTrainer(experiment, list(seeds), device=device)


def _assert_params_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, what: str) -> None:
    """Per model: max |Δ| <= rtol · max |expected|, i.e. relative to that model's own scale."""
    a, e = actual.detach().cpu(), expected.detach().cpu()
    assert a.shape == e.shape, what
    err = (a - e).abs().amax(dim=1) / e.abs().amax(dim=1).clamp(min=1e-30)
    worst = int(err.argmax())
    assert bool(torch.isfinite(err).all()) and float(err[worst]) <= rtol, (
        f"{what}: row {worst} differs by {float(err[worst]):.2e} of its scale (tolerance {rtol:g})"
    )


def _assert_metric_close(actual: torch.Tensor | np.ndarray, expected: torch.Tensor | np.ndarray, key: str) -> None:
    a, e = torch.as_tensor(actual).cpu().double(), torch.as_tensor(expected).cpu().double()
    tol = {"rtol": 0.0, "atol": ANGLE_ATOL_DEG} if key.endswith("angle_deg") else METRIC_TOL
    torch.testing.assert_close(a, e, equal_nan=True, msg=lambda m: f"{key}: {m}", **tol)


@pytest.fixture(scope="module", autouse=True)
def full_fp32_matmuls() -> Iterator[None]:
    """TF32 matmuls would put the GPU ~1e-3 off by design; the trainer is compared in full FP32."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


@pytest.fixture(scope="module")
def gpu() -> torch.device:
    return resolve_device("cuda")


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return ex_2_9_1(hidden=16, dopesheet=reference_dopesheet())


@pytest.fixture(scope="module")
def trained(experiment: Experiment, gpu: torch.device) -> dict[str, tuple[PopulationTrainer, torch.Tensor]]:
    """The same population trained STEPS steps on each device, with its parameters after EARLY steps."""
    runs = {}
    for name, device in (("cpu", torch.device("cpu")), ("gpu", gpu)):
        t = _trainer(experiment, device)
        t.run(until=EARLY)
        early = t.population.flat.cpu().clone()
        t.run(until=STEPS)
        runs[name] = (t, early)
    return runs


# ------------------------------------------------------------------------------ batches


def test_gpu_trainer_keeps_its_state_on_the_gpu(trained) -> None:
    t = trained["gpu"][0]
    tensors = {
        "params": t.population.flat,
        "grad": t.grad,
        "exp_avg": t.exp_avg,
        "exp_avg_sq": t.exp_avg_sq,
        "schedule": t.schedule,
        "alive": t.alive,
        "diverged_step": t.diverged_step,
        "max_train_recon": t.max_train_recon,
        "train colours": t.train_set.colors,
        "validation colours": t.val_set.colors,
        **{f"label_counts/{k}": v for k, v in t.label_counts.items()},
        **{f"last_train/{k}": v for k, v in t.last_train.items()},
        **{f"history/{k}": v for h in t.history for k, v in h.items() if k != "step"},
    }
    elsewhere = sorted(name for name, v in tensors.items() if v.device.type != "cuda")
    assert not elsewhere, f"not on the GPU: {elsewhere}"


@pytest.mark.parametrize("step", [0, 1, 149, 150, 299, 1499, 1500, 123_456, 2**31 - 1, 10**12])
def test_sampled_batches_are_bit_identical(trained, step: int) -> None:
    cpu, gpu = trained["cpu"][0], trained["gpu"][0]
    assert torch.equal(gpu.batches.indices(step).cpu(), cpu.batches.indices(step))
    assert torch.equal(gpu.batches.uniforms(step).cpu(), cpu.batches.uniforms(step))
    assert torch.equal(gpu.batches.uniforms(step, channel=3).cpu(), cpu.batches.uniforms(step, channel=3))
    x_gpu, labels_gpu = gpu.batches.batch(gpu.train_set, step)
    x_cpu, labels_cpu = cpu.batches.batch(cpu.train_set, step)
    assert torch.equal(x_gpu.cpu(), x_cpu)
    assert labels_gpu.keys() == labels_cpu.keys()
    for k in labels_cpu:
        assert torch.equal(labels_gpu[k].cpu(), labels_cpu[k]), k


def test_bias_weighted_draws_are_bit_identical(gpu: torch.device) -> None:
    """Inverse-CDF draws over arbitrary float64 weights: the CDF must not depend on the device."""
    weights = torch.rand(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.01
    seeds = list(range(64))
    on_cpu = HashSampler(seeds, n_colors=500, batch_size=64, weights=weights)
    on_gpu = HashSampler(seeds, n_colors=500, batch_size=64, weights=weights, device=gpu)
    mismatched = [s for s in range(0, 3000, 3) if not torch.equal(on_gpu.indices(s).cpu(), on_cpu.indices(s))]
    assert not mismatched, f"bias-weighted indices differ at steps {mismatched[:10]}"


def test_original_stream_gives_the_same_batches_on_the_gpu(gpu: torch.device) -> None:
    """The 'original' stream draws on the CPU per model; on a GPU trainer it must still match."""
    exp = ex_2_9_1(hidden=16, dopesheet=reference_dopesheet().stretched(40), stream="original")
    cpu, on_gpu = _trainer(exp, "cpu", SEEDS[:3]), _trainer(exp, gpu, SEEDS[:3])
    for step in range(20):  # sequential: 2½ epochs of 8 batches
        x_cpu, labels_cpu = cpu.batches.batch(cpu.train_set, step)
        x_gpu, labels_gpu = on_gpu.batches.batch(on_gpu.train_set, step)
        assert x_gpu.device.type == "cuda"
        assert torch.equal(x_gpu.cpu(), x_cpu), step
        assert all(torch.equal(labels_gpu[k].cpu(), v) for k, v in labels_cpu.items()), step
    cpu, on_gpu = _trainer(exp, "cpu", SEEDS[:3]), _trainer(exp, gpu, SEEDS[:3])
    cpu.run()
    on_gpu.run()
    _assert_params_close(on_gpu.population.flat, cpu.population.flat, PARAM_RTOL, "original stream, 40 steps")


# ------------------------------------------------------------------------------ training


def test_parameters_agree_after_10_and_300_steps(trained) -> None:
    (cpu, cpu_early), (gpu, gpu_early) = trained["cpu"], trained["gpu"]
    assert cpu.step == gpu.step == STEPS
    _assert_params_close(gpu_early, cpu_early, EARLY_RTOL, f"parameters after {EARLY} steps")
    _assert_params_close(gpu.population.flat, cpu.population.flat, PARAM_RTOL, f"parameters after {STEPS} steps")
    _assert_params_close(gpu.exp_avg, cpu.exp_avg, 1e-2, "Adam first moments")
    _assert_params_close(gpu.exp_avg_sq, cpu.exp_avg_sq, 1e-2, "Adam second moments")


def test_run_statistics_agree(trained) -> None:
    """Counts come from the identical batches, so they match exactly; no model diverges on either."""
    cpu, gpu = trained["cpu"][0], trained["gpu"][0]
    assert bool(gpu.alive.all()) and bool(cpu.alive.all())
    assert torch.equal(gpu.diverged_step.cpu(), cpu.diverged_step)
    assert gpu.label_counts.keys() == cpu.label_counts.keys()
    for k, v in cpu.label_counts.items():
        assert torch.equal(gpu.label_counts[k].cpu(), v), k
    _assert_metric_close(gpu.max_train_recon, cpu.max_train_recon, "max_train_recon")
    assert gpu.last_train.keys() == cpu.last_train.keys()
    for k, v in cpu.last_train.items():
        _assert_metric_close(gpu.last_train[k], v, k)


def test_validation_history_agrees(trained) -> None:
    cpu, gpu = trained["cpu"][0], trained["gpu"][0]
    assert [int(h["step"]) for h in gpu.history] == [int(h["step"]) for h in cpu.history] == [150, 300]
    for h_gpu, h_cpu in zip(gpu.history, cpu.history):
        assert h_gpu.keys() == h_cpu.keys()
        for k in h_cpu:
            if k != "step":
                _assert_metric_close(h_gpu[k], h_cpu[k], f"{k} at step {int(h_cpu['step'])}")
    now_gpu, now_cpu = gpu.validate(), cpu.validate()
    for k in now_cpu:
        _assert_metric_close(now_gpu[k], now_cpu[k], k)


def test_final_metrics_agree(trained) -> None:
    """Scores and intervention correlations are computed on the device, then in numpy on the host."""
    m_cpu, m_gpu = trained["cpu"][0].final_metrics(), trained["gpu"][0].final_metrics()
    assert m_gpu.keys() == m_cpu.keys()
    for k, v in m_cpu.items():
        if k == "runtime_s":
            continue
        if v.dtype.kind in "biu":  # seeds, counts, flags, steps
            np.testing.assert_array_equal(m_gpu[k], v, err_msg=k)
        else:
            _assert_metric_close(m_gpu[k], v, k)


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_saved_on_gpu_resumes_on_cpu(experiment: Experiment, gpu: torch.device, trained, tmp_path: Path):
    """A GPU checkpoint loads on the CPU bit for bit and goes on as the uninterrupted GPU run does; loaded
    back on the GPU it goes on exactly as that run (same device, same kernels)."""
    uninterrupted = trained["gpu"][0]
    src = _trainer(experiment, gpu)
    src.run(until=STEPS // 2)
    path = tmp_path / "population.pt"
    src.save(str(path))

    cpu = _trainer(experiment, "cpu")
    cpu.load(str(path))
    saved, loaded = src.state_dict(), cpu.state_dict()
    assert loaded.keys() == saved.keys()
    for key, value in saved.items():
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cpu", f"checkpoint field {key} is not on the CPU"
            assert torch.equal(loaded[key], value), key
        elif key in ("label_counts", "last_train"):
            assert loaded[key].keys() == value.keys(), key
            for k, v in value.items():
                torch.testing.assert_close(loaded[key][k], v, rtol=0, atol=0, equal_nan=True)
        elif key == "history":
            assert len(loaded[key]) == len(value)
            for h_loaded, h_saved in zip(loaded[key], value):
                for k, v in h_saved.items():
                    torch.testing.assert_close(h_loaded[k], v, rtol=0, atol=0, equal_nan=True)
        else:
            assert loaded[key] == value, key

    again = _trainer(experiment, gpu)
    again.load(str(path))
    again.run(until=STEPS)
    assert torch.equal(again.population.flat, uninterrupted.population.flat), "GPU resume is not bitwise"
    assert torch.equal(again.exp_avg_sq, uninterrupted.exp_avg_sq)

    cpu.run(until=STEPS)
    assert cpu.step == STEPS and len(cpu.history) == 2
    _assert_params_close(cpu.population.flat, uninterrupted.population.flat, PARAM_RTOL, "CPU resume of a GPU run")
    for k, v in uninterrupted.label_counts.items():
        assert torch.equal(cpu.label_counts[k], v.cpu()), k
    for k, v in uninterrupted.history[-1].items():
        if k != "step":
            _assert_metric_close(cpu.history[-1][k], v, k)


def test_lone_model_trains_on_the_gpu() -> None:
    """S = 1 (trained beside its twin) through ``train``, end to end, with a short schedule."""
    exp = ex_2_9_1(hidden=16, dopesheet=reference_dopesheet().stretched(60))
    on_cpu, on_gpu = train(exp, SEEDS[0]), train(exp, SEEDS[0], device=resolve_device("cuda"))
    assert on_gpu.population.size == 1 and on_gpu.population.flat.device.type == "cuda"
    _assert_params_close(on_gpu.population.flat, on_cpu.population.flat, PARAM_RTOL, "lone model")
    for k, v in on_cpu.metrics.items():
        if k != "runtime_s" and v.dtype.kind not in "biu":
            _assert_metric_close(on_gpu.metrics[k], v, k)
