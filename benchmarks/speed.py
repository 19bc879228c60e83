"""The population trainer's two engines (torch, kernel) and a plain one-model PyTorch loop, side by side.

    python benchmarks/speed.py            # full 1501-step runs, several minutes on 2 cores
    python benchmarks/speed.py --steps 300   # quicker, same ratios within noise

All train Ex 2.9.1 with the full reference loss (separate, anchor, anti-anchor, anti-subspace)
at H = 16 on the same batches. Throughput is model-trainings per second (one training = the
whole schedule); ratios compare runs at equal thread counts, the torch and kernel engines of one
population size measured back to back (best of ``--repeat``), so that a shared machine's load
hits both alike. The share of the FP32 peak is ``excolor.devices.training_flops`` × rate over
``--peak`` GFLOP/s per core (an input: the issue's estimate for these cores is 83–120). Also
measured: two single-thread processes of S/2 models each, the way two 1-CPU Ray trials share a
2-core node.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from excolor.devices import training_flops
from excolor.dopesheet import reference_dopesheet
from excolor.experiments import ex_2_9_1
from excolor.plain import train_plain
from excolor.train import PopulationTrainer


def _experiment(steps: int):
    sheet = reference_dopesheet()
    return ex_2_9_1(hidden=16, dopesheet=sheet if steps == sheet.length else sheet.stretched(steps))


def population_rate(size: int, steps: int, threads: int, engine: str = "torch") -> float:
    """Trainings per second of one population of ``size`` models (construction included)."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    trainer = PopulationTrainer(_experiment(steps), list(range(size)), engine=engine)
    trainer.run()
    return size / (time.perf_counter() - start)


def plain_rate(steps: int, threads: int, models: int = 1) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    for seed in range(models):
        train_plain(_experiment(steps), seed)
    return models / (time.perf_counter() - start)


def _worker(args: tuple[int, int, int, str]) -> float:
    size, steps, offset, engine = args
    torch.set_num_threads(1)
    start = time.perf_counter()
    PopulationTrainer(_experiment(steps), list(range(offset, offset + size)), engine=engine).run()
    return time.perf_counter() - start


def two_process_rate(size: int, steps: int, engine: str = "torch") -> float:
    """Two 1-thread processes of size/2 models each, started together."""
    half = size // 2
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_worker, [(2, steps, 0, engine), (2, steps, 2, engine)])  # warm up imports in both workers
        start = time.perf_counter()
        pool.map(_worker, [(half, steps, 0, engine), (half, steps, half, engine)])
        return 2 * half / (time.perf_counter() - start)


def pair_rates(size: int, steps: int, threads: int, repeat: int) -> tuple[float, float]:
    """(torch, kernel) trainings/s of one population, measured back to back, best of ``repeat``."""
    best = [0.0, 0.0]
    for _ in range(repeat):
        for i, engine in enumerate(("torch", "kernel")):
            best[i] = max(best[i], population_rate(size, steps, threads, engine))
    return best[0], best[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1501, help="schedule length (default: the full 1501)")
    parser.add_argument("--sizes", default="1,16,64,256", help="population sizes")
    parser.add_argument("--repeat", type=int, default=2, help="runs per engine and size (best counts)")
    parser.add_argument("--peak", type=float, default=83.0, help="FP32 peak GFLOP/s of one core (an input)")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure")
    parser.add_argument("--no-processes", action="store_true", help="skip the two-process runs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    scale = args.steps / 1501  # report per full 1501-step training
    flops = training_flops(5, 16, 2, batch_size=64, steps=1501)  # one full training
    print(
        f"Ex 2.9.1, H = 16, full reference loss, {args.steps} steps per training "
        f"(rates scaled to 1501-step trainings); torch {torch.__version__}; "
        f"{flops / 1e9:.2f} GFLOP per training, peak {args.peak:g} GFLOP/s per core (assumed)"
    )
    population_rate(4, 20, 2)  # warm-up: imports, allocator, MKL
    population_rate(4, 20, 2, "kernel")  # warm-up: the kernel's compiled code (cached after the first run)
    results: dict[tuple[int, int], tuple[float, float]] = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        base = plain_rate(args.steps, threads) * scale
        peak = args.peak * 1e9 * threads
        print(f"\n{threads} thread(s): plain nn.Module + autograd + torch.optim.Adam loop: {base:7.2f} trainings/s")
        print("            torch engine             kernel engine                    kernel/torch")
        for size in sizes:
            rate_t, rate_k = (r * scale for r in pair_rates(size, args.steps, threads, args.repeat))
            results[(size, threads)] = (rate_t, rate_k)
            print(
                f"  S = {size:4d}: {rate_t:7.2f}/s ({100 * rate_t * flops / peak:4.1f}% peak)   "
                f"{rate_k:7.2f}/s ({100 * rate_k * flops / peak:4.1f}% peak, {rate_k / base:6.1f}x plain)   "
                f"{rate_k / rate_t:5.2f}x"
            )
    print("\nissue 19 targets (kernel/torch): ", end="")
    for size, threads, target in ((256, 2, 2.5), (16, 1, 4.0)):
        if (size, threads) in results:
            rate_t, rate_k = results[(size, threads)]
            print(f"S = {size}, {threads} thread(s): {rate_k / rate_t:.2f}x (target {target}x)   ", end="")
    print()
    if not args.no_processes:
        big = max(sizes)
        for engine in ("torch", "kernel"):
            rate = two_process_rate(big, args.steps, engine) * scale
            print(f"2 processes x 1 thread, S = {big // 2} each, {engine} engine: {rate:7.2f} trainings/s in total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
