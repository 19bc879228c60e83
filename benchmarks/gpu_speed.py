"""Population training on a CUDA GPU: model-trainings per second at large S, beside the CPU (issue #7).

    python benchmarks/gpu_speed.py                                 # S = 1000, 8000, 64000, 1501 steps
    python benchmarks/gpu_speed.py --sizes 1000,8000 --steps 300   # quicker
    python benchmarks/gpu_speed.py --device cpu --sizes 16,32 --steps 20 --cpu-steps 20   # no GPU

Ex 2.9.1 at H = 16 with the full reference loss, as in benchmarks/speed.py. Each population trains the
whole schedule on the device; building it (S nn.Modules made on the host, then copied) is timed apart.
The CPU figure is the same code measured in the same run: --cpu-size models timed over the first
--cpu-steps steps and extrapolated per step to the whole schedule, since a full CPU run at these sizes
would take hours. The FLOP columns use excolor.devices.training_flops (matmuls, the Separate term,
Adam) against the GPU's FP32 peak, looked up by device name or given with --peak-tflops. Without a GPU
it times the given sizes on the CPU, so it still runs (and says so).
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import dataclass

import torch

from excolor.config import Experiment
from excolor.devices import DEVICES_HELP, resolve_device, training_flops
from excolor.dopesheet import reference_dopesheet
from excolor.experiments import ex_2_9_1
from excolor.train import PopulationTrainer

GPU_SIZES = "1000,8000,64000"
CPU_SIZES = "16,64"  # when no GPU is found: the point is that it runs, not the numbers

# FP32 (non-tensor-core) peaks from NVIDIA's data sheets: (name must contain all, must contain none, peak, label)
_FP32_PEAKS: tuple[tuple[tuple[str, ...], tuple[str, ...], float, str], ...] = (
    (("H100", "PCIE"), (), 51e12, "H100 PCIe"),
    (("H100",), ("NVL", "PCIE"), 67e12, "H100 SXM"),
    (("H200",), ("NVL", "GH200"), 67e12, "H200 SXM"),
    (("A100",), (), 19.5e12, "A100"),
)


def fp32_peak(device_name: str) -> tuple[float, str] | None:
    """(FP32 FLOP/s, which part) for a GPU known by its torch device name, else None."""
    name = device_name.upper()
    for needed, excluded, peak, label in _FP32_PEAKS:
        if all(w in name for w in needed) and not any(w in name for w in excluded):
            return peak, label
    return None


def _experiment(steps: int) -> Experiment:
    sheet = reference_dopesheet()
    return ex_2_9_1(hidden=16, dopesheet=sheet if steps == sheet.length else sheet.stretched(steps))


def flops_per_training(experiment: Experiment) -> tuple[float, int]:
    """(FLOPs of one model-training, steps with Separate on): a zero weight skips the term."""
    sheet, m = experiment.dopesheet, experiment.model
    length = sheet.length
    on = length
    if "separate" in sheet.props:
        rows = [min(b, length - 2) for b in range(length)]  # batch b reads schedule step min(b, L - 2)
        on = int((sheet.table(["separate"], rows)[:, 0] != 0).sum())
    size = (m.k_bottleneck, m.hidden, m.n_nonlinear, experiment.batch_size)
    total = training_flops(*size, steps=on, separate=True) + training_flops(*size, steps=length - on, separate=False)
    return total, on


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    build_s: float
    train_s: float
    steps: int
    peak_bytes: int | None


def measure(experiment: Experiment, size: int, device: torch.device, until: int | None = None) -> Timing:
    """Build a population of ``size`` models on ``device`` and train it (up to step ``until``)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    trainer = PopulationTrainer(experiment, list(range(size)), device=device)
    _sync(device)
    built = time.perf_counter()
    trainer.run(until=until)
    _sync(device)
    done = time.perf_counter()
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return Timing(built - start, done - built, trainer.step, peak)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", help=f"population sizes (default {GPU_SIZES} on a GPU, {CPU_SIZES} without)")
    parser.add_argument("--steps", type=int, default=1501, help="schedule length (default: the full 1501)")
    parser.add_argument("--device", default="auto", help=DEVICES_HELP)
    parser.add_argument("--cpu-size", type=int, default=256, help="models in the CPU reference run")
    parser.add_argument("--cpu-steps", type=int, default=150, help="steps timed in the CPU reference run")
    parser.add_argument("--peak-tflops", type=float, help="the device's FP32 peak, when its name is not known")
    parser.add_argument("--cpu-threads", type=int, help="torch threads on the CPU (default: torch's own choice)")
    args = parser.parse_args()
    if args.cpu_threads is not None:
        torch.set_num_threads(args.cpu_threads)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    on_gpu = device.type == "cuda"
    sizes = [int(s) for s in (args.sizes or (GPU_SIZES if on_gpu else CPU_SIZES)).split(",")]
    experiment = _experiment(args.steps)
    flops, separate_on = flops_per_training(experiment)

    print(
        f"Ex 2.9.1, H = 16, full reference loss, {args.steps}-step trainings; torch {torch.__version__}, "
        f"CPU threads: {torch.get_num_threads()}"
    )
    if on_gpu:
        name = torch.cuda.get_device_name(device)
        print(
            f"device {device}: {name}, CUDA {torch.version.cuda}, "
            f"float32 matmul precision {torch.get_float32_matmul_precision()!r}"
        )
    else:
        name = "CPU"
        found = "a CUDA GPU is there but was not asked for" if torch.cuda.is_available() else "no CUDA GPU found"
        print(
            f"{found} (--device {args.device}; torch's CUDA build: {torch.version.cuda or 'none'}): "
            "timing the populations on the CPU instead"
        )
    if args.peak_tflops is not None:
        peak: tuple[float, str] | None = (args.peak_tflops * 1e12, "from --peak-tflops")
    elif on_gpu:
        known = fp32_peak(name)
        peak = None if known is None else (known[0], f"{known[1]}, looked up by device name")
    else:
        peak = None
    if peak is None:
        print("FP32 peak: unknown for this device; pass --peak-tflops for the '% of peak' column")
    else:
        print(f"FP32 peak: {peak[0] / 1e12:.1f} TFLOP/s ({peak[1]})")
    print(
        f"FLOPs per model-training: {flops:.3g} (excolor.devices.training_flops; Separate on "
        f"{separate_on} of {args.steps} steps)"
    )

    for dev in {torch.device("cpu"), device}:  # warm-up: allocator, BLAS, CUDA context and cuBLAS handles
        PopulationTrainer(_experiment(20), list(range(4)), device=dev).run()
    _sync(device)

    cpu_steps = min(args.cpu_steps, args.steps)
    ref = measure(experiment, args.cpu_size, torch.device("cpu"), until=cpu_steps)
    cpu_rate = args.cpu_size / (ref.train_s / ref.steps * args.steps)
    _free(torch.device("cpu"))
    print(
        f"CPU reference: S = {args.cpu_size}, first {ref.steps} of {args.steps} steps timed "
        f"({ref.train_s / ref.steps * 1e3:.2f} ms/step) and extrapolated per step to the whole schedule: "
        f"{cpu_rate:.2f} trainings/s"
    )

    print(
        f"\n{'S':>7} {'build s':>8} {'train s':>8} {'ms/step':>8} {'trainings/s':>12} {'x CPU':>8} "
        f"{'GFLOP/s':>9} {'% peak':>7} {'GiB':>6}"
    )
    for size in sizes:
        try:
            t = measure(experiment, size, device)
        except torch.cuda.OutOfMemoryError as err:
            first = str(err).split("\n")[0]
            print(f"{size:>7} skipped: out of GPU memory ({first})")
            del err
            _free(device)
            continue
        rate = size / t.train_s
        achieved = rate * flops
        share = f"{100 * achieved / peak[0]:6.2f}%" if peak is not None else f"{'n/a':>7}"
        mem = f"{t.peak_bytes / 2**30:6.2f}" if t.peak_bytes is not None else f"{'-':>6}"
        print(
            f"{size:>7} {t.build_s:8.2f} {t.train_s:8.2f} {t.train_s / t.steps * 1e3:8.2f} {rate:12.1f} "
            f"{rate / cpu_rate:8.1f} {achieved / 1e9:9.1f} {share} {mem}"
        )
        _free(device)
    print(
        "\nbuild s: constructing the population (seeded nn.Modules on the host, then to the device); not in the "
        "rates. trainings/s: whole schedules per second, validation included. x CPU: against the CPU reference."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
