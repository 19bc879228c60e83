"""Reproduce the published Ex 2.9.1 and Ex 2.10.1 numbers (science.md §10.1, §10.2, §10.4) — a benchmark.

    python benchmarks/reproduce.py                 # all three sweeps
    python benchmarks/reproduce.py --only 2.10.1   # one of h16, h10, 2.10.1

1. Seeds 0–59, H = 16, the reference schedule: score = ablated r² on the 8³ grid (power 3).
   Reference (60 seeds on Modal): mean 0.857, std 0.154, min 0.062, max 0.985.
   Acceptance: mean within ± 0.04 of 0.857, std in [0.10, 0.22].
2. Seeds 0–99, H = 10: ablated r on the 20³ RGB cube (power 3), suppression r (power 2).
   Reference (100 seeds, local): ablated r 0.931 ± 0.034, suppression r 0.956 ± 0.024.
   Acceptance: mean ablated r within ± 0.02 of 0.931.
3. Ex 2.10.1 (the ex-2.10.1 preset: 2.9.1 without anti-anchor), seeds 0–59, H = 16: the score.
   Reference (the upstream notebook, 60 runs): mean 0.8503, std 0.1413, min 0.0376, max 0.9769;
   9 non-dominated runs (front over val_recon and val_anchor, with the score maximised as in §9.10).
   Acceptance: mean within ± 0.04 of 0.8503, std in [0.09, 0.21].

Per-seed values are not comparable across machines (training is chaotic after step ≈ 500, §6.9);
the distributions are.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from excolor.evaluate import population_correlations
from excolor.experiments import ex_2_9_1, preset
from excolor.train import ENGINES, PopulationTrainer

EX_2_10_1 = {"mean": 0.8503, "std": 0.1413, "min": 0.0376, "max": 0.9769, "front": 9, "n": 60}
"""The upstream Ex 2.10.1 notebook's 60-run result (science.md §10.4)."""


def _describe(values: np.ndarray) -> str:
    v = values[np.isfinite(values)]
    return (
        f"mean {v.mean():.4f}  std {v.std(ddof=1):.4f}  min {v.min():.4f}  median {np.median(v):.4f}  "
        f"max {v.max():.4f}  (n = {len(v)})"
    )


def sweep_h16(seeds: range, engine: str = "torch") -> bool:
    start = time.perf_counter()
    trainer = PopulationTrainer(ex_2_9_1(hidden=16), list(seeds), engine=engine)
    trainer.run()
    m = trainer.final_metrics()
    wall = time.perf_counter() - start
    score = m["score"]
    ok = abs(np.nanmean(score) - 0.857) <= 0.04 and 0.10 <= np.nanstd(score, ddof=1) <= 0.22
    print(f"H = 16, seeds {seeds.start}-{seeds.stop - 1}: {wall:.1f} s wall")
    print(f"  score          {_describe(score)}")
    print("  reference      mean 0.8570  std 0.1541  min 0.0615  max 0.9848  (n = 60)")
    print(f"  labels/n/red   {_describe(m['labels/n/red'].astype(float))}  (reference mean 83.6, std 8.0)")
    print(
        f"  collapsed {int(m['collapsed'].sum())}, diverged {int(m['diverged'].sum())}, "
        f"negative ablated r {int((m['ablated_r'] < 0).sum())}"
    )
    print(f"  -> {'PASS' if ok else 'FAIL'}: mean within 0.857 ± 0.04 and std in [0.10, 0.22]")
    return ok


def sweep_h10(seeds: range, engine: str = "torch") -> bool:
    start = time.perf_counter()
    trainer = PopulationTrainer(ex_2_9_1(hidden=10), list(seeds), engine=engine)
    trainer.run()
    corr = population_correlations(trainer.population, n=20)
    wall = time.perf_counter() - start
    ok = abs(np.nanmean(corr["ablated_r"]) - 0.931) <= 0.02
    print(f"H = 10, seeds {seeds.start}-{seeds.stop - 1}: {wall:.1f} s wall")
    print(f"  ablated r      {_describe(corr['ablated_r'])}")
    print("  reference      mean 0.9314  std 0.0338  min 0.8181  max 0.9798  (n = 100)")
    print(f"  suppression r  {_describe(corr['suppression_r'])}")
    print("  reference      mean 0.9563  std 0.0244  min 0.8615  max 0.9918  (n = 100)")
    print(f"  -> {'PASS' if ok else 'FAIL'}: mean ablated r within 0.931 ± 0.02")
    return bool(ok)


def _front_size(m: dict[str, np.ndarray], minimize: list[str], maximize: list[str]) -> int:
    """How many runs no other run dominates (§9.10's rule: ties and NaN rows kept)."""
    import pandas as pd

    from analysis.pareto import original_front

    return len(original_front(pd.DataFrame({k: m[k] for k in [*minimize, *maximize]}), minimize, maximize))


def sweep_ex_2_10_1(seeds: range, engine: str = "torch") -> bool:
    start = time.perf_counter()
    trainer = PopulationTrainer(preset("ex-2.10.1"), list(seeds), engine=engine)
    trainer.run()
    m = trainer.final_metrics()
    wall = time.perf_counter() - start
    score = m["score"]
    ref = EX_2_10_1
    ok = abs(np.nanmean(score) - ref["mean"]) <= 0.04 and 0.09 <= np.nanstd(score, ddof=1) <= 0.21
    print(f"Ex 2.10.1, H = 16, seeds {seeds.start}-{seeds.stop - 1}: {wall:.1f} s wall")
    print(f"  score          {_describe(score)}")
    print(
        f"  reference      mean {ref['mean']:.4f}  std {ref['std']:.4f}  min {ref['min']:.4f}  "
        f"max {ref['max']:.4f}  (n = {ref['n']})"
    )
    front = _front_size(m, ["val_recon", "val_anchor"], ["score"])
    print(
        f"  non-dominated  {front} of {len(score)} (val_recon, val_anchor minimised, score maximised); "
        f"without the score: {_front_size(m, ['val_recon', 'val_anchor'], [])}; reference {ref['front']} of {ref['n']}"
    )
    print(f"  suppression r  {_describe(m['suppression_r'])}")
    print(f"  ablated max MSE (loss cube) {_describe(m['ablated_max_mse'])}")
    print(
        f"  collapsed {int(m['collapsed'].sum())}, diverged {int(m['diverged'].sum())}, "
        f"negative ablated r {int((m['ablated_r'] < 0).sum())}"
    )
    print(f"  -> {'PASS' if ok else 'FAIL'}: mean within {ref['mean']} ± 0.04 and std in [0.09, 0.21]")
    return bool(ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["h16", "h10", "2.10.1"], help="run one of the three sweeps")
    parser.add_argument("--engine", choices=ENGINES, default="torch", help="training engine (default torch)")
    args = parser.parse_args()
    results = []
    if args.only in (None, "h16"):
        results.append(sweep_h16(range(60), args.engine))
    if args.only in (None, "h10"):
        results.append(sweep_h10(range(100), args.engine))
    if args.only in (None, "2.10.1"):
        results.append(sweep_ex_2_10_1(range(60), args.engine))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
