"""Cohort searches against plain training of the same models, side by side in one run.

    python benchmarks/cohort_search.py                       # the demo: 12 configurations x 8 seeds
    python benchmarks/cohort_search.py --configs 64 --seeds 16
    python benchmarks/cohort_search.py --engine torch           # the batched torch trainer throughout
    python benchmarks/cohort_search.py --configs 1000 --seeds 16 --search-only   # the search alone, timed

Three timings of the same amount of training, each a fresh process where a user would start one:

1. ``excolor train --seeds 0-(C*S-1)``: C*S models of the hand schedule, one population, end to end;
2. ``excolor search --trials C --seeds 0-(S-1)`` (embedded Ray, W&B as given), end to end, and its
   Tune run alone (the "N Ray trials in X s" line);
3. the search's own C configurations (their recorded experiments) trained directly as populations,
   one per hidden width, in this process: what the search's Tune run would cost without Ray (the
   same work: no loss cube, as a search without ``--cube-metrics``; ``excolor train`` scores it).

It prints the ratios the cohort-search issue asks about: search / train end to end, Tune run /
direct, and models per second of each. ``--search-only`` runs the search alone (2.), for scales where
the two other timings would take as long again each (the issue's 1,000 × 16 search in 15 minutes).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return wall, done.stdout + done.stderr


def _direct(study: Path, seeds: list[int], engine: str) -> float:
    """Train the study's configurations as populations (one per width), as the cohort trainable does."""
    from excolor.experiments import load_experiment
    from excolor.train import PopulationTrainer

    experiments = [load_experiment(d / "experiment.yaml") for d in sorted((study / "trials").iterdir())]
    groups: dict[int, list] = {}
    for e in experiments:
        groups.setdefault(e.model.hidden, []).append(e)
    start = time.perf_counter()
    for group in groups.values():
        sheets = [e.dopesheet for e in group for _ in seeds]
        trainer = PopulationTrainer(group[0], seeds * len(group), dopesheets=sheets, engine=engine)
        trainer.run()
        trainer.final_metrics(cube=False)  # as a search's cohort (no --cube-metrics) finishes
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--wandb", default="offline", choices=["offline", "disabled"])
    parser.add_argument("--engine", default="auto", choices=["torch", "kernel", "auto"], help="for all three")
    parser.add_argument(
        "--sampler-seed",
        type=int,
        default=0,
        help="the search's sampler seed (fixed, so runs train the same configurations; their cost varies with them)",
    )
    parser.add_argument("--search-only", action="store_true", help="time the search alone (no train, no direct)")
    args = parser.parse_args()
    c, s = args.configs, args.seeds
    models = c * s
    excolor = [sys.executable, "-m", "tune.cli"]
    work = Path(tempfile.mkdtemp(prefix="excolor-cohort-bench-"))
    try:
        train_wall = (
            math.nan
            if args.search_only
            else _run(
                [
                    *excolor,
                    "train",
                    "--seeds",
                    f"0-{models - 1}",
                    "--quiet",
                    "--out",
                    str(work / "t"),
                    "--engine",
                    args.engine,
                ]
            )[0]
        )
        search_wall, out = _run(
            [
                *excolor,
                "search",
                "--name",
                "b",
                "--storage",
                str(work),
                "--trials",
                str(c),
                "--seeds",
                f"0-{s - 1}",
                "--wandb",
                args.wandb,
                "--engine",
                args.engine,
                "--sampler-seed",
                str(args.sampler_seed),
            ]
        )
        fit = re.search(r"(\d+) Ray trials in ([0-9.]+) s", out)
        if fit is None:
            sys.exit(f"no Tune timing in the search's output:\n{out[-2000:]}")
        ray_trials, fit_s = int(fit.group(1)), float(fit.group(2))
        direct_s = math.nan if args.search_only else _direct(work / "b", list(range(s)), args.engine)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{c} configurations x {s} seeds = {models} models (1501 steps), W&B {args.wandb}, "
        f"engine {args.engine}, {ray_trials} Ray trials"
    )
    if not args.search_only:
        rate = models / train_wall
        print(f"excolor train of {models} models, end to end:     {train_wall:7.1f} s   {rate:6.1f} models/s")
    print(f"excolor search, end to end:                 {search_wall:7.1f} s   {models / search_wall:6.1f} models/s")
    print(f"  its Tune run (tuner.fit):                 {fit_s:7.1f} s   {models / fit_s:6.1f} models/s")
    if args.search_only:
        return
    print(f"the same configurations trained directly:   {direct_s:7.1f} s   {models / direct_s:6.1f} models/s")
    print(f"search / train end to end: {search_wall / train_wall:.2f}x   (issue target <= 2.5x)")
    print(f"Tune run / direct:         {fit_s / direct_s:.2f}x   (issue target <= 1.5x)")
    print(
        f"search throughput / train: {train_wall / search_wall:.0%} end to end, {direct_s / fit_s:.0%} in the Tune run"
    )


if __name__ == "__main__":
    main()
