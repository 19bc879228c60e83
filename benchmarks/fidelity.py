"""1000-seed fidelity bands for both batch streams (science.md §10.5, §14.1) — a benchmark.

    python benchmarks/fidelity.py                 # seeds 0–999, both streams, ~2–3 minutes
    python benchmarks/fidelity.py --seeds 200     # quicker, wider error bars

H = 16, the reference schedule. For each stream it prints the score distribution beside the bands
a faithful port lands in over 1000 seeds: mean 0.84–0.85 (accept 0.83–0.86), median 0.894–0.896
(accept 0.88–0.91), 5–6 % of runs below 0.5, 1.2–2.2 % collapsed (final val_recon > 0.01; accept
0.5–3 %), 2.6–3.1 % of runs >= 0.968, max 0.985–0.989; and the wall time, against the original's
cost of about 90 s of one cloud CPU per run (§10.3).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from excolor.experiments import ex_2_9_1
from excolor.train import ENGINES, PopulationTrainer

BANDS = {  # statistic: (low, high) acceptance band over 1000 seeds
    "mean": (0.83, 0.86),
    "median": (0.88, 0.91),
    "collapsed": (0.005, 0.03),
}


def run_stream(stream: str, seeds: list[int], chunk: int, engine: str = "torch") -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    tables = []
    for i in range(0, len(seeds), chunk):
        trainer = PopulationTrainer(ex_2_9_1(hidden=16, stream=stream), seeds[i : i + chunk], engine=engine)
        trainer.run()
        tables.append(trainer.final_metrics())
    wall = time.perf_counter() - start
    m = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    score = m["score"]
    finite = score[np.isfinite(score)]
    stats = {
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "below_0.5": float((finite < 0.5).mean()),
        "collapsed": float(m["collapsed"].mean()),
        "at_least_0.968": float((finite >= 0.968).mean()),
        "max": float(finite.max()),
        "diverged": float(m["diverged"].mean()),
        "negative_r": float((m["ablated_r"] < 0).mean()),
    }
    return stats, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1000, help="number of seeds from 0 (default 1000)")
    parser.add_argument("--chunk", type=int, default=256, help="models per population")
    parser.add_argument("--streams", default="hash,original")
    parser.add_argument("--engine", choices=ENGINES, default="torch", help="training engine (default torch)")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    print(f"Ex 2.9.1, H = 16, seeds 0-{args.seeds - 1}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = (
        f"{'stream':>9} {'mean':>7} {'median':>7} {'<0.5':>6} {'collapsed':>9} {'>=0.968':>8} {'max':>7} {'wall s':>7}"
    )
    print(header)
    print(f"{'§10.5':>9} {'.84-.85':>7} {'.894-6':>7} {'5-6%':>6} {'1.2-2.2%':>9} {'2.6-3.1%':>8} {'.985-9':>7}")
    verdicts = []
    for stream in args.streams.split(","):
        s, wall = run_stream(stream, seeds, args.chunk, args.engine)
        print(
            f"{stream:>9} {s['mean']:7.4f} {s['median']:7.4f} {s['below_0.5']:6.1%} {s['collapsed']:9.1%} "
            f"{s['at_least_0.968']:8.1%} {s['max']:7.4f} {wall:7.1f}"
        )
        ok = all(lo <= s[k] <= hi for k, (lo, hi) in BANDS.items())
        verdicts.append(ok)
        per_model = wall / len(seeds)
        print(
            f"{'':>9} {'inside' if ok else 'OUTSIDE'} the acceptance bands; {per_model * 1e3:.0f} ms of this "
            f"2-core machine per model vs ~90 s of one cloud CPU per run originally (~{90 / per_model:.0f}x); "
            f"diverged {s['diverged']:.1%}, negative ablated r {s['negative_r']:.1%}"
        )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
