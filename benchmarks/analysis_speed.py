"""How fast ``analysis`` answers: Pareto front + hypervolume of many points, and loading a big study.

    PYTHONPATH=. python benchmarks/analysis_speed.py              # both, default sizes
    PYTHONPATH=. python benchmarks/analysis_speed.py --points 100000 --trials 1000

Targets (issue #5): front + hypervolume of 1e5 points x 3 objectives in <= 100 ms; loading a
study of 1,000 trials in <= 5 s. The study is synthetic, written into a temporary folder in the
layout ``tune`` produces (study.json, per trial params.json, an 11-line result.json, seeds.csv,
dopesheet.csv, and an Optuna journal with one trial per Ray trial), then read by ``load_study``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.pareto import front_mask, hypervolume
from analysis.results import load_study

MAXIMISE = [True, False, False]  # score up, two errors down: the shape of a real study's objectives


def bench_front(n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    cases = {
        "uniform random": rng.random((n, 3)),
        # every point non-dominated: the worst case for the hypervolume
        "all on one front": _sphere(rng, n),
    }
    for name, points in cases.items():
        times, size, hv = [], 0, 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            mask = front_mask(points, maximise=MAXIMISE)
            hv = hypervolume(points, maximise=MAXIMISE)
            times.append(time.perf_counter() - t0)
            size = int(mask.sum())
        print(
            f"front + hypervolume, {n:,} points x 3 ({name}): median {1e3 * statistics.median(times):.1f} ms, "
            f"best {1e3 * min(times):.1f} ms over {repeats} runs (front {size:,}, hypervolume {hv:.4f})"
        )


def _sphere(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on the positive octant of the unit sphere, oriented so all are mutually non-dominated."""
    v = np.abs(rng.normal(size=(n, 3)))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v[:, 0] = 1.0 - v[:, 0]  # maximised column: larger is better, so flip it
    return v


def _result_line(i: int, step: int, final: bool, rng: np.random.Generator) -> dict[str, object]:
    line: dict[str, object] = {}
    for key in (
        "score",
        "ablated_r",
        "val_recon",
        "val_loss",
        "val_anchor",
        "val_anti-anchor",
        "red_angle_deg",
        "max_train_recon",
    ):
        for stat in ("mean", "std", "q10"):
            line[f"{key}_{stat}"] = float(rng.random())
    line.update(
        diverged_frac=0.0,
        collapsed_frac=0.0,
        step=step,
        final=final,
        timestamp=1_800_000_000 + i,
        checkpoint_dir_name=f"checkpoint_{step // 150:06d}",
        should_checkpoint=True,
        done=False,
        training_iteration=step // 150,
        trial_id=f"{i:08x}",
        date="2027-01-15_08-00-00",
        time_this_iter_s=0.1,
        time_total_s=2.0,
        pid=1234,
        hostname="node",
        node_ip="10.0.0.1",
        time_since_restore=2.0,
        iterations_since_restore=step // 150,
        node_id="ab" * 28,
        config={"lr_peak": 0.1 + i * 1e-5, "anchor_peak": 0.1, "hidden": 16},
    )
    if final:
        line["per_seed"] = {
            "seed": [0.0, 1.0, 2.0, 3.0],
            "score": [0.5] * 4,
            "ablated_r": [0.7] * 4,
            "val_recon": [1e-4] * 4,
            "val_anchor": [1e-3] * 4,
        }
    return line


def write_synthetic_study(root: Path, trials: int) -> Path:
    """A finished search study of ``trials`` trials (4 seeds each), written file by file."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from excolor.dopesheet import reference_dopesheet

    study = root / "big"
    study.mkdir()
    record = {
        "format": "excolor.study/1",
        "kind": "search",
        "name": "big",
        "storage": str(root),
        "seeds": [0, 1, 2, 3],
        "seeds_per_trial": 4,
        "hidden": 16,
        "steps": None,
        "stream": "hash",
        "trials": trials,
        "objectives": ["score", "recon"],
        "sampler": "tpe",
        "sampler_seed": 0,
        "scales": [],
        "space": None,
        "space_file": None,
    }
    (study / "study.json").write_text(json.dumps(record))
    sheet = reference_dopesheet().to_csv()
    rng = np.random.default_rng(1)
    header = (
        "seed,score,ablated_r,val_recon,val_loss,val_anchor,val_anti-anchor,red_angle_deg,labels/n/red,"
        "labels/n_total,max_train_recon,collapsed,diverged,diverged_step,runtime_s\n"
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(study / "optuna.journal")))
    opt = optuna.create_study(study_name="big", storage=storage, directions=["maximize", "minimize"])
    dists = {
        "lr_peak": FloatDistribution(0.01, 0.3, log=True),
        "anchor_peak": FloatDistribution(0.01, 1.0, log=True),
        "hidden": CategoricalDistribution([10, 16]),
    }
    for i in range(trials):
        params = {"lr_peak": 0.1 + i * 1e-5, "anchor_peak": 0.1, "hidden": 16}
        folder = study / f"train_trial_{i:08x}_{i + 1}_lr_peak={params['lr_peak']:.4f}_2027-01-15_08-00-00"
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps(params, indent=2))
        lines = [_result_line(i, 150 * (k + 1), k == 10, rng) for k in range(11)]
        (folder / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
        rows = "".join(
            f"{s},{rng.random()},0.7,1e-4,1e-4,1e-3,0.0,10.0,80,96064,0.4,False,False,-1,3.8\n" for s in range(4)
        )
        (folder / "seeds.csv").write_text(header + rows)
        (folder / "dopesheet.csv").write_text(sheet)
        final = {k: v for k, v in lines[-1].items() if isinstance(v, float)}
        opt.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=[final["score_mean"], final["val_recon_mean"]]
            )
        )
    return study


def bench_load(trials: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_synthetic_study(Path(tmp), trials)
        print(f"(wrote a synthetic study of {trials:,} trials in {time.perf_counter() - t0:.1f} s)")
        # A fresh process, as `excolor pareto` would be: imports (pandas, optuna) included.
        code = (
            "import time; t = time.perf_counter(); from analysis.results import load_study; "
            f"load_study({str(path)!r}); print(time.perf_counter() - t)"
        )
        cold = float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            study = load_study(path)
            times.append(time.perf_counter() - t0)
        assert study.counts()["done"] == trials and len(study.seeds) == 4 * trials
        assert study.trials["optuna_number"].notna().all()
        print(
            f"load_study, {trials:,} trials ({len(study.seeds):,} seed rows, Optuna journal joined): "
            f"{cold:.2f} s in a fresh process (imports included), {min(times):.2f} s warm"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bench_front(args.points, args.repeats)
    bench_load(args.trials)


if __name__ == "__main__":
    main()
