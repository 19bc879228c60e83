"""What limits a study's scale apart from training: Optuna's suggest time and journal contention.

    python benchmarks/sampler_cost.py

1. Suggest time (ask + the default space's 10 parameters, 2 objectives) after n finished trials,
   for TPE (multivariate, as `excolor search` uses it) and NSGA-II, on a JournalStorage file.
2. Journal contention: P processes doing ask/tell on one journal file at once; tells per second.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tune.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _fake_values(params: dict) -> tuple[float, float]:
    x = np.array([float(v) for v in params.values()])
    return float(np.tanh(x.sum())), float(np.exp(-x.mean()))


def suggest_time(sampler_name: str, sizes: list[int]) -> dict[int, float]:
    space = SearchSpace.default().distributions()
    path = Path(tempfile.mkdtemp()) / "j.journal"
    sampler = (
        optuna.samplers.TPESampler(seed=0, multivariate=True)
        if sampler_name == "tpe"
        else optuna.samplers.NSGAIISampler(seed=0)
    )
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=sampler, storage=JournalStorage(JournalFileBackend(str(path)))
    )
    out, done = {}, 0
    for n in sizes:
        while done < n:
            t = study.ask(space)
            study.tell(t, _fake_values(t.params))
            done += 1
        start = time.perf_counter()
        for _ in range(5):
            t = study.ask(space)
            study.tell(t, _fake_values(t.params))
        done += 5
        out[n] = (time.perf_counter() - start) / 5
    return out


def _worker(args: tuple[str, int]) -> None:
    path, n = args
    study = optuna.load_study(
        study_name="c", storage=JournalStorage(JournalFileBackend(path)), sampler=optuna.samplers.RandomSampler()
    )
    space = SearchSpace.default().distributions()
    for _ in range(n):
        t = study.ask(space)
        study.tell(t, _fake_values(t.params))


def journal_throughput(processes: int, per_process: int = 100) -> float:
    path = str(Path(tempfile.mkdtemp()) / "c.journal")
    optuna.create_study(
        study_name="c", directions=["maximize", "minimize"], storage=JournalStorage(JournalFileBackend(path))
    )
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(_worker, [(path, per_process)] * processes)
    return processes * per_process / (time.perf_counter() - start)


def main() -> int:
    sizes = [100, 500, 1000]
    print("suggest + tell time per trial (default space, 2 objectives, journal file):")
    for name in ("tpe", "nsga2"):
        t = suggest_time(name, sizes)
        print(f"  {name:6s} " + "  ".join(f"after {n:5d}: {t[n] * 1e3:8.1f} ms" for n in sizes), flush=True)
    print("journal file shared by P processes doing ask/tell (random sampler):")
    for p in (1, 2, 4):
        print(f"  P = {p}: {journal_throughput(p):7.0f} trials/s in total", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
