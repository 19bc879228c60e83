"""`excolor train` end to end on each engine, side by side in one run.

    python benchmarks/train_engines.py                       # --seeds 0-255, torch vs kernel
    python benchmarks/train_engines.py --seeds 64 --repeat 2

Each timing is a fresh `excolor train` process, as a user starts one: imports, the population,
1501 steps, scoring and the run's files. The kernel runs twice: with its compiled code cached (every
run after a machine's first) and with an empty cache (``NUMBA_CACHE_DIR``; the first run on a new
machine, or after the kernel's source changed), so the one-off compile is on record too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _train(seeds: int, engine: str, out: Path, env: dict[str, str]) -> float:
    args = [sys.executable, "-m", "tune.cli", "train", "--seeds", f"0-{seeds - 1}", "--engine", engine]
    args += ["--quiet", "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=256, help="models per run (seeds 0..N-1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine (best counts)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="excolor-train-bench-"))
    try:
        warm = dict(os.environ)
        cold_cache = work / "numba-cache"
        cold = {**warm, "NUMBA_CACHE_DIR": str(cold_cache)}
        _train(2, "kernel", work / "warm-up", warm)  # the cache beside the module is filled
        walls: dict[str, list[float]] = {"torch": [], "kernel": [], "kernel, empty cache": []}
        for _ in range(args.repeat):
            walls["torch"].append(_train(args.seeds, "torch", work / "t", warm))
            walls["kernel"].append(_train(args.seeds, "kernel", work / "k", warm))
            shutil.rmtree(cold_cache, ignore_errors=True)
            walls["kernel, empty cache"].append(_train(args.seeds, "kernel", work / "c", cold))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: min(v) for k, v in walls.items()}
    print(f"excolor train --seeds 0-{args.seeds - 1} (Ex 2.9.1, 1501 steps), end to end, best of {args.repeat}:")
    for name, wall in best.items():
        print(f"  {name:<20} {wall:7.1f} s   {args.seeds / wall:6.1f} trainings/s")
    print(f"kernel / torch: {best['torch'] / best['kernel']:.2f}x faster (issue target 2.5x)")
    print(f"with the one-off compile: {best['torch'] / best['kernel, empty cache']:.2f}x")


if __name__ == "__main__":
    main()
