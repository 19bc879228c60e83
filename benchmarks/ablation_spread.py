"""Where does ablating the red axis do its damage? Ex 2.8 (no anti-subspace) vs Ex 2.9.1, side by side.

    PYTHONPATH=. python benchmarks/ablation_spread.py                          # seeds 0-15, full schedules
    PYTHONPATH=. python benchmarks/ablation_spread.py --seeds 0-1 --steps 100  # quick smoke run

Trains the same seeds of both presets (Ex 2.8: 3001 steps; Ex 2.9.1: 1501 steps; ``--steps N``
stretches both schedules to N steps), then evaluates every model on the 240×48×48 HSV cube of
science.md §10.4 (hue arange_cyclic(step 1/240), S and V linspace(0, 1, 48); 552,960 colours) with
and without latent dim 0 ablated (eval mode, clamped outputs; per-colour MSE = mean over the 3
channels, §9.2). It prints:

- per-model max and median per-colour MSE, baseline and ablated: mean and quantiles across seeds,
  beside the single Ex 2.8 model of §10.4 (baseline max 0.00048, median 1.1e-05; ablated max 0.74,
  median 0.044, "damage spread to many colours");
- the pooled (all models × colours) per-colour ablated-MSE quantiles 50/90/99 % and max;
- the share of ablation damage, Σ(ablated − baseline MSE), on reddish colours (hsv_similarity to
  red > 0.5, hemi, angular) vs the rest, and the fraction of clearly non-red colours (similarity
  < 0.1) whose ablated MSE exceeds 0.01;
- the mean ablation score (r², 8³ RGB grid, §9.8), collapsed/diverged counts and wall time.

Ex 2.9.1's anti-subspace term should concentrate the damage on reds; Ex 2.8 should spread it.

The per-model max and median are a product feature now: every training reports
``<method>_max_mse`` / ``<method>_median_mse`` on §9.4's 150×24×24 loss cube
(``excolor.evaluate.population_cube_metrics``); this script keeps §10.4's larger cube and the
where-does-the-damage-fall analysis.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from excolor.colors import RED_HSV, ColorCube, arange_cyclic, hsv_similarity, rgb_to_hsv
from excolor.config import Experiment
from excolor.experiments import preset
from excolor.train import PopulationTrainer

EXPERIMENTS = ("ex-2.8", "ex-2.9.1")
ABLATED_DIM = 0
REDDISH, NOT_RED, BAD_MSE = 0.5, 0.1, 0.01
CHUNK = 32_768  # colours per forward pass (keeps the (S, N, H) activations small)

REFERENCE = {  # §10.4, Ex 2.8 (seed 004), one model
    "baseline max": 0.00048,
    "baseline median": 1.1e-05,
    "ablated max": 0.74,
    "ablated median": 0.044,
}


@dataclass
class Outcome:
    """One experiment's trained population, evaluated on the cube."""

    name: str
    steps: int
    base: np.ndarray  # (S, N) per-colour MSE, baseline
    ablated: np.ndarray  # (S, N) per-colour MSE, dim 0 ablated
    score: np.ndarray  # (S,)
    collapsed: int
    diverged: int
    train_s: float
    eval_s: float


def parse_seeds(text: str) -> list[int]:
    """'0-15', '3', '0,4,8-9' -> sorted unique seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        a = int(lo)
        b = int(hi) if sep else a
        if a < 0 or b < a:
            raise argparse.ArgumentTypeError(f"bad seed range {part!r}")
        seeds.update(range(a, b + 1))
    return sorted(seeds)


def hsv_cube() -> ColorCube:
    """The §10.4 evaluation cube: 240 hues × 48 saturations × 48 values."""
    return ColorCube.from_hsv(arange_cyclic(step_size=1 / 240), np.linspace(0, 1, 48), np.linspace(0, 1, 48))


def red_similarity(rgb: np.ndarray) -> np.ndarray:
    """hsv_similarity to pure red (hemi, angular) of each colour, (N,)."""
    return hsv_similarity(rgb_to_hsv(rgb), RED_HSV, hemi=True, mode="angular")


@torch.no_grad()
def per_color_mse(trainer: PopulationTrainer, rgb: np.ndarray, ablate: list[int]) -> np.ndarray:
    """(S, N) per-colour MSE of the trainer's real models on colours ``rgb`` (N, 3)."""
    pop, s = trainer.population, trainer.n_models
    x_all = torch.as_tensor(rgb, dtype=torch.float32)
    out = []
    for lo in range(0, len(x_all), CHUNK):
        x = x_all[lo : lo + CHUNK]
        y = pop.predict(x, ablate=ablate)[:s]
        out.append(((y - x) ** 2).mean(-1))
    return torch.cat(out, dim=1).double().numpy()


def run_experiment(name: str, seeds: list[int], steps: int | None, rgb: np.ndarray) -> Outcome:
    """Train ``seeds`` of preset ``name`` (schedule stretched to ``steps``) and evaluate on ``rgb``."""
    experiment: Experiment = preset(name)
    if steps is not None and steps != experiment.dopesheet.length:
        experiment = experiment.with_dopesheet(experiment.dopesheet.stretched(steps))
    start = time.perf_counter()
    trainer = PopulationTrainer(experiment, seeds)
    trainer.run()
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = trainer.final_metrics()
    base = per_color_mse(trainer, rgb, [])
    ablated = per_color_mse(trainer, rgb, [ABLATED_DIM])
    eval_s = time.perf_counter() - start
    return Outcome(
        name=name,
        steps=experiment.dopesheet.length,
        base=base,
        ablated=ablated,
        score=metrics["score"],
        collapsed=int(np.sum(metrics["collapsed"])),
        diverged=int(np.sum(metrics["diverged"])),
        train_s=train_s,
        eval_s=eval_s,
    )


def damage_stats(o: Outcome, sim: np.ndarray) -> dict[str, np.ndarray | float]:
    """Per-model shares of Σ(ablated − baseline) on reddish colours, pooled share, non-red failures."""
    damage = o.ablated - o.base  # (S, N)
    red, not_red = sim > REDDISH, sim < NOT_RED
    red_sum, total = damage[:, red].sum(1), damage.sum(1)
    return {
        "share": red_sum / total,
        "pooled_share": float(red_sum.sum() / total.sum()),
        "nonred_bad": (o.ablated[:, not_red] > BAD_MSE).mean(1),
    }


def _g(v: float) -> str:
    return f"{v:9.2g}" if np.isfinite(v) else f"{'nan':>9}"


def _dist(values: np.ndarray) -> str:
    """mean | min q25 q50 q75 max of a per-model statistic."""
    v = values[np.isfinite(values)]
    if not len(v):
        return "  (no finite values)"
    q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
    return _g(v.mean()) + " |" + "".join(_g(x) for x in q)


def report(outcomes: list[Outcome], sim: np.ndarray, seeds: list[int], n_colors: int) -> None:
    """Print the comparison tables."""
    width = max(len("experiment"), *(len(o.name) for o in outcomes))
    print(
        f"\nAblating latent dim {ABLATED_DIM}; seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} models per experiment); "
        f"240×48×48 HSV cube ({n_colors:,} colours); torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"\n{'experiment':<{width}}  steps  train s  eval s  collapsed  diverged  score mean (min-max)")
    for o in outcomes:
        sc = o.score[np.isfinite(o.score)]
        score = f"{sc.mean():.3f} ({sc.min():.3f}-{sc.max():.3f})" if len(sc) else "nan"
        print(
            f"{o.name:<{width}}  {o.steps:5d}  {o.train_s:7.1f}  {o.eval_s:6.1f}  "
            f"{o.collapsed:4d}/{len(o.score):<4d} {o.diverged:4d}/{len(o.score):<4d}  {score}"
        )

    print("\nPer-model per-colour MSE, across seeds")
    head = f"{'mean':>9} |" + "".join(f"{h:>9}" for h in ("min", "q25", "median", "q75", "max"))
    print(f"{'statistic':<16} {'experiment':<{width}} {head}   §10.4 Ex 2.8")
    for label, cond, reduce in (
        ("baseline max", "base", np.max),
        ("baseline median", "base", np.median),
        ("ablated max", "ablated", np.max),
        ("ablated median", "ablated", np.median),
    ):
        for i, o in enumerate(outcomes):
            per_model = reduce(getattr(o, cond), axis=1)
            ref = f"{REFERENCE[label]:>13.2g}" if o.name == "ex-2.8" else ""
            print(f"{label if i == 0 else '':<16} {o.name:<{width}} {_dist(per_model)} {ref}".rstrip())

    print("\nPooled per-colour ablated MSE (all models × colours)")
    print(f"{'experiment':<{width}} {'q50':>9}{'q90':>9}{'q99':>9}{'max':>9}")
    for o in outcomes:
        q = np.quantile(o.ablated, [0.5, 0.9, 0.99, 1.0])
        print(f"{o.name:<{width}} " + "".join(_g(x) for x in q))

    red_frac, nonred_frac = float((sim > REDDISH).mean()), float((sim < NOT_RED).mean())
    print(
        f"\nWhere the damage Σ(ablated − baseline MSE) falls: reddish = similarity to red > {REDDISH} "
        f"({red_frac:.1%} of colours), non-red = similarity < {NOT_RED} ({nonred_frac:.1%} of colours)"
    )
    print(
        f"{'experiment':<{width}}  {'on reddish, per model: mean (min-max)':<38} {'pooled':>7} {'on the rest':>12}"
        f"   non-red with ablated MSE > {BAD_MSE}: mean (min-max)"
    )
    for o in outcomes:
        d = damage_stats(o, sim)
        share, bad = np.asarray(d["share"]), np.asarray(d["nonred_bad"])
        pooled = float(d["pooled_share"])
        print(
            f"{o.name:<{width}}  {f'{share.mean():.1%} ({share.min():.1%}-{share.max():.1%})':<38} "
            f"{pooled:7.1%} {1 - pooled:12.1%}   {bad.mean():.1%} ({bad.min():.1%}-{bad.max():.1%})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-15"), help="e.g. 0-15 (default) or 0,3,7")
    parser.add_argument("--steps", type=int, default=None, help="stretch both schedules to N steps (default: full)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cube = hsv_cube()
    rgb = cube.rgb_grid.reshape(-1, 3)
    sim = red_similarity(rgb)
    outcomes = []
    for name in EXPERIMENTS:
        print(f"training {name} ...", flush=True)
        outcomes.append(run_experiment(name, args.seeds, args.steps, rgb))
    report(outcomes, sim, args.seeds, len(rgb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
