"""Population trainer vs a plain one-model PyTorch loop, measured side by side in one run.

    python benchmarks/speed.py            # full 1501-step runs, ~3 minutes on 2 cores
    python benchmarks/speed.py --steps 300   # quicker, same ratios within noise

Both train Ex 2.9.1 with the full reference loss (separate, anchor, anti-anchor, anti-subspace)
at H = 16 on the same batches. Throughput is model-trainings per second (one training = the
whole schedule); ratios compare runs at equal torch thread counts. Also measured: two
single-thread processes of S/2 models each, the way two 1-CPU Ray trials share a 2-core node.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from excolor.dopesheet import reference_dopesheet
from excolor.experiments import ex_2_9_1
from excolor.plain import train_plain
from excolor.train import PopulationTrainer


def _experiment(steps: int):
    sheet = reference_dopesheet()
    return ex_2_9_1(hidden=16, dopesheet=sheet if steps == sheet.length else sheet.stretched(steps))


def population_rate(size: int, steps: int, threads: int) -> float:
    """Trainings per second of one population of ``size`` models (construction included)."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    trainer = PopulationTrainer(_experiment(steps), list(range(size)))
    trainer.run()
    return size / (time.perf_counter() - start)


def plain_rate(steps: int, threads: int, models: int = 1) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    for seed in range(models):
        train_plain(_experiment(steps), seed)
    return models / (time.perf_counter() - start)


def _worker(args: tuple[int, int, int]) -> float:
    size, steps, offset = args
    torch.set_num_threads(1)
    start = time.perf_counter()
    PopulationTrainer(_experiment(steps), list(range(offset, offset + size))).run()
    return time.perf_counter() - start


def two_process_rate(size: int, steps: int) -> float:
    """Two 1-thread processes of size/2 models each, started together."""
    half = size // 2
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_worker, [(2, steps, 0), (2, steps, 2)])  # warm up imports in both workers
        start = time.perf_counter()
        pool.map(_worker, [(half, steps, 0), (half, steps, half)])
        return 2 * half / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1501, help="schedule length (default: the full 1501)")
    parser.add_argument("--sizes", default="1,16,64,256", help="population sizes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    scale = args.steps / 1501  # report per full 1501-step training
    print(
        f"Ex 2.9.1, H = 16, full reference loss, {args.steps} steps per training "
        f"(rates scaled to 1501-step trainings); torch {torch.__version__}"
    )
    population_rate(4, 20, 2)  # warm-up: imports, allocator, MKL
    for threads in (1, 2):
        base = plain_rate(args.steps, threads) * scale
        print(f"\n{threads} thread(s): plain nn.Module + autograd + torch.optim.Adam loop: {base:7.2f} trainings/s")
        for size in sizes:
            rate = population_rate(size, args.steps, threads) * scale
            print(f"  population S = {size:4d}: {rate:7.2f} trainings/s   {rate / base:7.1f}x the plain loop")
    big = max(sizes)
    rate = two_process_rate(big, args.steps) * scale
    print(f"\n2 processes x 1 thread, S = {big // 2} each: {rate:7.2f} trainings/s in total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
