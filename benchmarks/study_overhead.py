"""Ray Tune's overhead: the same work as an excolor study and as direct training, in one run.

    python benchmarks/study_overhead.py                      # demo study and a 16 x 60 sweep
    python benchmarks/study_overhead.py --only demo

Direct training runs the same populations (same seeds, same schedule length, 1 thread each) in two
worker processes, the parallelism the study gets from Ray on a 2-core machine. Two overheads:

- end to end: (study wall − direct wall) / study wall, the study wall including the CLI's imports,
  starting Ray, starting its worker processes and shutting Ray down (a fixed cost per command);
- trial phase: (first trial start → last trial end, from the trials' own results) against the direct
  workers' training time: what Ray adds while trials run (scheduling, reporting, checkpoints, sampler).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _direct_worker(groups: list[list[int]]) -> float:
    import torch

    from excolor.experiments import ex_2_9_1
    from excolor.train import PopulationTrainer

    torch.set_num_threads(1)
    start = time.perf_counter()
    for seeds in groups:
        t = PopulationTrainer(ex_2_9_1(), seeds)
        t.run()
        t.final_metrics()
    return time.perf_counter() - start


def direct(trials: int, seeds_per_trial: int, same_seeds: bool) -> tuple[float, float]:
    """(wall time including process start, the slower worker's training time)."""
    groups = [
        list(range(seeds_per_trial)) if same_seeds else list(range(i * seeds_per_trial, (i + 1) * seeds_per_trial))
        for i in range(trials)
    ]
    halves = [groups[0::2], groups[1::2]]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(2) as pool:
        training = max(pool.map(_direct_worker, halves))
    return time.perf_counter() - start, training


def study(args: list[str]) -> tuple[float, float]:
    """(wall time of the whole command, first trial start -> last trial end)."""
    storage = tempfile.mkdtemp(prefix="excolor-overhead-")
    try:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tune.cli", *args, "--name", "bench", "--storage", storage, "--wandb", "disabled"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        starts, ends = [], []
        for result in Path(storage, "bench").glob("*/result.json"):
            last = json.loads([ln for ln in result.read_text().splitlines() if ln.strip()][-1])
            starts.append(last["timestamp"] - last["time_total_s"])
            ends.append(last["timestamp"])
        return wall, max(ends) - min(starts)
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def compare(label: str, study_args: list[str], trials: int, seeds_per_trial: int, same_seeds: bool) -> None:
    direct(2, 2, True)  # warm the page cache and imports
    d_wall, d_train = direct(trials, seeds_per_trial, same_seeds)
    s_wall, s_trials = study(study_args)
    print(f"{label}:")
    print(
        f"  end to end:  study {s_wall:6.1f} s vs direct {d_wall:6.1f} s -> overhead "
        f"{(s_wall - d_wall) / s_wall:5.1%} of the study's wall time ({s_wall - d_wall:.1f} s, mostly Ray's fixed "
        "start/stop)"
    )
    print(
        f"  trial phase: study {s_trials:6.1f} s vs direct training {d_train:6.1f} s -> overhead "
        f"{(s_trials - d_train) / s_trials:5.1%}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["demo", "sweep"])
    args = parser.parse_args()
    if args.only in (None, "demo"):
        compare("demo search, 12 trials x 8 seeds", ["search", "--trials", "12", "--seeds", "0-7"], 12, 8, True)
    if args.only in (None, "sweep"):
        compare("sweep, 16 trials x 60 seeds", ["sweep", "--seeds", "0-959", "--seeds-per-trial", "60"], 16, 60, False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
