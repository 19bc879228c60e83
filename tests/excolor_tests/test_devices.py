"""Device resolution and the FLOP count of one model-training (issue #7); runs without a GPU.

CUDA's presence is faked by monkeypatching ``torch.cuda.is_available`` and ``device_count``, so both
branches of 'auto' and the out-of-range checks are covered on a CPU-only machine.
"""

from __future__ import annotations

import doctest

import pytest
import torch

import excolor.devices
from excolor.devices import DEVICES_HELP, resolve_device, training_flops
from excolor.model import build_model, parameter_count


def _fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_doctests() -> None:
    assert doctest.testmod(excolor.devices, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.parametrize("spec", ["cpu", "CPU", " cpu ", torch.device("cpu")])
def test_cpu_always_resolves(spec: str | torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 0)
    assert resolve_device(spec) == torch.device("cpu")


def test_auto_is_cpu_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_is_cuda_with_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda")


def test_cuda_indices_within_range(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 2)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_a_gpu_says_so(spec: str | torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match="torch sees no CUDA GPU") as info:
        resolve_device(spec)
    message = str(info.value)
    assert torch.__version__ in message and "--device cpu or auto" in message
    assert "\n" not in message


def test_cuda_index_out_of_range_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 2)
    with pytest.raises(ValueError, match=r"'cuda:2'.*sees 2 CUDA GPUs \(cuda:0, cuda:1\)"):
        resolve_device("cuda:2")
    _fake_gpus(monkeypatch, 1)
    with pytest.raises(ValueError, match=r"sees 1 CUDA GPU \(cuda:0\)"):
        resolve_device(torch.device("cuda", 3))


@pytest.mark.parametrize("spec", ["gpu", "", "cuda:", "cuda:-1", "cuda:x", "cuda0", "mps", torch.device("meta")])
def test_unknown_values_name_the_allowed_ones(spec: str | torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpus(monkeypatch, 1)
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N"):
        resolve_device(spec)


def test_non_string_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"string or torch\.device"):
        resolve_device(0)  # type: ignore[arg-type]


def test_help_names_every_choice() -> None:
    for word in ("auto", "cpu", "cuda", "cuda:N"):
        assert word in DEVICES_HELP


# ------------------------------------------------------------------------------ training_flops

REF = {"k_bottleneck": 5, "hidden": 16, "n_nonlinear": 2, "batch_size": 64}


def test_flops_positive_and_linear_in_steps() -> None:
    one = training_flops(**REF, steps=1)
    assert one > 0
    assert training_flops(**REF, steps=0) == 0
    assert training_flops(**REF, steps=1501) == pytest.approx(1501 * one, rel=1e-12)


def test_separate_adds_the_quadratic_part() -> None:
    """Without Separate the count is linear in B up to Adam's batch-independent share; with it,
    the B² terms make doubling B cost more than double."""
    adam = 10 * parameter_count(build_model(0, 5, 16, 2))
    plain = {b: training_flops(**{**REF, "batch_size": b}, steps=1, separate=False) - adam for b in (64, 128)}
    assert plain[128] == pytest.approx(2 * plain[64], rel=1e-12)
    full = {b: training_flops(**{**REF, "batch_size": b}, steps=1) - adam for b in (64, 128)}
    assert full[128] > 2.5 * full[64]
    assert full[64] > plain[64]


def test_flops_hand_count_for_the_reference_model() -> None:
    """Ex 2.9.1 at H = 16: 768 multiply-adds per sample per forward, 840 parameters."""
    b, k = 64, 5
    mlp = 2 * b * 768 * 2 + 2 * b * (768 - 3 * 16)
    sep = 2 * b * b * k * 3 + 13 * b * b
    assert training_flops(**REF, steps=1) == mlp + sep + 10 * 840
    assert training_flops(**REF, steps=1, separate=False) == mlp + 10 * 840


def test_flops_grow_with_model_size() -> None:
    small = training_flops(**REF, steps=10)
    assert training_flops(**{**REF, "hidden": 32}, steps=10) > small
    assert training_flops(**{**REF, "n_nonlinear": 3}, steps=10) > small


def test_flops_reject_bad_sizes() -> None:
    with pytest.raises(ValueError):
        training_flops(**{**REF, "batch_size": 0}, steps=1)
    with pytest.raises(ValueError):
        training_flops(**REF, steps=-1)


def test_population_size_follows_the_device_and_its_memory() -> None:
    from excolor.devices import CPU_POPULATION, model_bytes, population_size

    shape = {"k_bottleneck": 5, "hidden": 16, "n_nonlinear": 2}
    assert population_size(10_000, torch.device("cpu"), **shape) == CPU_POPULATION
    assert population_size(7, torch.device("cpu"), **shape) == 7
    per_model = model_bytes(5, 16, 2)
    gpu = torch.device("cuda")
    assert population_size(100, gpu, free_bytes=2 * 1000 * per_model, **shape) == 100  # all fit
    assert population_size(10_000, gpu, free_bytes=2 * 1000 * per_model, **shape) == 1000  # half the memory
    assert population_size(10**6, gpu, free_bytes=10**15, **shape) == 65536  # capped
    assert population_size(10, gpu, free_bytes=0, **shape) == 2  # never a lone model by choice
    assert model_bytes(5, 16, 2) > model_bytes(4, 16, 1)
