"""The same study on 1 and on 2 local worker nodes (1 CPU each), measured in one run.

    python benchmarks/scaling.py                 # 16 trials x 8 seeds, full schedule
    python benchmarks/scaling.py --trials 8 --steps 600

Each run starts a fresh local cluster with `excolor cluster up` (a head with no trial CPUs plus the
worker nodes), runs `excolor search --address ...` against it, and stops it with `excolor cluster down`.
Prints trials per minute for each and the speed-up; wall times exclude cluster start/stop but include
the driver connecting to Ray.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time


def _cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "tune.cli", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def run(workers: int, trials: int, seeds: str, steps: int | None, port: int) -> float:
    _cli("cluster", "up", "--workers", str(workers), "--port", str(port))
    storage = tempfile.mkdtemp(prefix="excolor-scaling-")
    try:
        extra = ["--steps", str(steps)] if steps else []
        start = time.perf_counter()
        _cli(
            "search",
            "--name",
            "bench",
            "--storage",
            storage,
            "--trials",
            str(trials),
            "--seeds",
            seeds,
            "--wandb",
            "disabled",
            "--address",
            f"127.0.0.1:{port}",
            *extra,
        )
        return time.perf_counter() - start
    finally:
        _cli("cluster", "down", "--port", str(port))
        shutil.rmtree(storage, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", default="0-7")
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    walls = {}
    for workers in (1, 2):
        walls[workers] = run(workers, args.trials, args.seeds, args.steps, 6420 + workers)
        print(
            f"{workers} worker node(s) x 1 CPU: {walls[workers]:6.1f} s  "
            f"{args.trials / walls[workers] * 60:6.1f} trials/min",
            flush=True,
        )
    print(
        f"speed-up 2 vs 1 nodes: {walls[1] / walls[2]:.2f}x ({args.trials} trials x seeds {args.seeds}, "
        f"{args.steps or 1501} steps)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
