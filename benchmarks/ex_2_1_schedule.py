"""What Ex 2.1's real schedule changes: the original run's dopesheet vs the reconstruction it replaced.

    PYTHONPATH=. python benchmarks/ex_2_1_schedule.py                 # seeds 0-15, full schedules
    PYTHONPATH=. python benchmarks/ex_2_1_schedule.py --seeds 0-1     # quick smoke run

Until issue 17 the ex-2.1 preset shipped a reconstruction in the style of 2.4 and 2.8 (lr up to 0.1,
every weight 0 from step 1900). The shipped dopesheet is now the one the original run used
(science.md §10.4: lr peaks at 0.01 and ends at 0.005; no weight reaches 0; reg-polar 6e-3 from the
start, 2e-4 at step 1500). Both train the same seeds with the same experiment otherwise (ablating
and pruning the 2-D hue plane, dims 0 and 1), and the script prints, per schedule, the distribution
across seeds of the score, val_recon, val_reg-polar, and the loss-cube errors (max and median
per-colour MSE, baseline, ablated, suppression).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from excolor.dopesheet import Dopesheet
from excolor.experiments import preset
from excolor.train import PopulationTrainer

RECONSTRUCTION = """\
STEP,PHASE,ACTION,lr,reg-polar,reg-separate,reg-planar,reg-norm-v,reg-norm
0,Train,,1e-8,0.01,0.01,0.01,0.01,0.01
+10,,,0.01,,,,,
+0.5,,,,0.01,,,,
1000,,,0.1,0.05,0.01,0.1,0.1,0.1
+0.9,,,,0,0,0,0,0
2000,,,0.05,0,0,0,0,0
"""
"""The ex-2.1 preset's dopesheet before issue 17 (a reconstruction, not the original run's)."""

METRICS = (
    "score",
    "ablated_r",
    "val_recon",
    "val_reg-polar",
    "baseline_max_mse",
    "baseline_median_mse",
    "ablated_max_mse",
    "ablated_median_mse",
    "suppression_max_mse",
    "suppression_median_mse",
)


def parse_seeds(text: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    return list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]


def run(name: str, sheet: Dopesheet, seeds: list[int]) -> dict[str, np.ndarray]:
    experiment = preset("ex-2.1").with_dopesheet(sheet)
    start = time.perf_counter()
    trainer = PopulationTrainer(experiment, seeds)
    trainer.run()
    metrics = trainer.final_metrics()
    print(f"{name}: {time.perf_counter() - start:.1f} s wall, {sheet.length} steps", flush=True)
    return metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-15"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    outcomes = {
        "original": run("original", preset("ex-2.1").dopesheet, args.seeds),
        "reconstruction": run("reconstruction", Dopesheet.parse(RECONSTRUCTION, source="reconstruction"), args.seeds),
    }
    print(f"\nex-2.1, seeds {args.seeds[0]}-{args.seeds[-1]}: median [min, max] across seeds")
    print(f"{'metric':<24}" + "".join(f"{n:>34}" for n in outcomes))
    for key in METRICS:
        cells = []
        for m in outcomes.values():
            v = m[key][np.isfinite(m[key])] if key in m else np.array([])
            cells.append(f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]" if v.size else "–")
        print(f"{key:<24}" + "".join(f"{c:>34}" for c in cells))
    for name, m in outcomes.items():
        print(f"{name}: collapsed {int(m['collapsed'].sum())}, diverged {int(m['diverged'].sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
