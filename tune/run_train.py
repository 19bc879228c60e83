"""``excolor train``: train one population per chunk of seeds, write the results, print a summary."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tune.errors import UsageError, writable_directory

if TYPE_CHECKING:
    from excolor.config import Experiment

__all__ = ["kernel_compile_due", "metrics_csv", "run_train", "summarize_scores"]

RESULT_FILES = ("metrics.csv", "models.pt", "experiment.yaml", "experiment.json", "dopesheet.csv")


def _prepare_out(out: Path, force: bool) -> Path:
    resolved = out.expanduser().resolve()
    existing = [f for f in RESULT_FILES if (resolved / f).exists()] if resolved.is_dir() else []
    if existing and not force:
        raise UsageError(f"--out {resolved} already holds results ({', '.join(existing)}); pass --force to overwrite")
    return writable_directory(resolved, "--out")


def _atomic_write(path: Path, write: object) -> None:
    """Write through a temporary file in the same directory, then rename: never half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)  # type: ignore[operator]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def metrics_csv(metrics: dict[str, np.ndarray]) -> str:
    """The metrics as CSV text, one row per model: the file pandas' ``DataFrame(metrics).to_csv(index=False)``
    writes (numpy's shortest round-trip text per value, NaN empty), without importing pandas (~0.5 s
    of every ``excolor train``)."""
    columns = [np.asarray(v) for v in metrics.values()]
    cells = [np.where(np.isnan(v), "", v.astype(str)) if v.dtype.kind == "f" else v.astype(str) for v in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(metrics))
    writer.writerows(zip(*cells))
    return buffer.getvalue()


def summarize_scores(metrics: dict[str, np.ndarray], *, grid: int = 8, power: float = 3.0) -> str:
    """The score distribution as a short text table, collapsed and diverged runs counted (§14.2)."""
    score = metrics["score"]
    ok = np.isfinite(score)
    n, n_ok = len(score), int(ok.sum())
    lines = [
        f"models: {n}   diverged: {int(metrics['diverged'].sum())}   collapsed (final val_recon > 0.01): "
        f"{int(metrics['collapsed'].sum())}"
    ]
    if n_ok:
        s = score[ok]
        q = np.quantile(s, [0.05, 0.25, 0.5, 0.75, 0.95])
        lines.append(
            f"score (ablated r², {grid}³ grid, sim^{power:g}): mean {s.mean():.4f}  "
            f"std {s.std(ddof=1) if n_ok > 1 else 0:.4f}  "
            f"min {s.min():.4f}  max {s.max():.4f}"
        )
        lines.append("quantiles  5%: {:.4f}  25%: {:.4f}  50%: {:.4f}  75%: {:.4f}  95%: {:.4f}".format(*q))
        lines.append(
            f"share < 0.5: {(s < 0.5).mean():.1%}   share >= 0.968: {(s >= 0.968).mean():.1%}   "
            f"negative ablated r: {int((metrics['ablated_r'][ok] < 0).sum())}"
        )
    return "\n".join(lines)


def _top_table(metrics: dict[str, np.ndarray], k: int = 5) -> str:
    order = np.argsort(-np.nan_to_num(metrics["score"], nan=-np.inf))[:k]
    cols = ["seed", "score", "ablated_r", "val_recon"]
    cols += [c for c in metrics if c.startswith("val_") and c not in ("val_recon", "val_loss")]
    cols += ["red_angle_deg"] + [c for c in metrics if c.startswith("labels/n/")][:1]
    width = max(15, *(len(c) for c in cols))
    header = "  ".join(f"{c:>{width}}" for c in cols)
    rows = []
    for i in order:
        cells = []
        for c in cols:
            v = metrics[c][i]
            is_int = c == "seed" or c.startswith("labels/n/")
            cells.append(f"{int(v):>{width}d}" if is_int else f"{float(v):>{width}.4f}")
        rows.append("  ".join(cells))
    return "\n".join([header, *rows])


def kernel_compile_due(engine: str, experiment: Experiment, device: Any) -> bool:
    """Whether training ``experiment`` here will first compile the CPU kernel (a silent minute, worth a line)."""
    import warnings

    from excolor.train import resolve_engine

    with warnings.catch_warnings():  # the trainer warns about an inapplicable kernel itself
        warnings.simplefilter("ignore")
        if resolve_engine(engine, experiment, device)[0] != "kernel":
            return False
    from excolor.kernel_forward import cached

    return not cached()


def run_train(
    *,
    experiment: Experiment,
    device: str = "cpu",
    engine: str = "torch",
    seeds: Sequence[int],
    out: Path,
    force: bool,
    population: int | None,
    threads: int | None,
    quiet: bool,
) -> int:
    """Train ``experiment`` (overrides already applied) on ``seeds`` and write the results to ``out``."""
    import torch
    from tqdm import tqdm

    from excolor.devices import resolve_device
    from excolor.experiments import to_dict, to_yaml
    from excolor.train import PopulationTrainer

    torch_device = resolve_device(device)
    if "lr" not in experiment.dopesheet.props:
        print(
            f"excolor train: warning: {experiment.dopesheet.source} has no 'lr' column; lr stays at 1e-8 "
            "(the original's default)",
            file=sys.stderr,
        )
    out = _prepare_out(out, force)
    if threads is not None:
        torch.set_num_threads(threads)

    if population is None:
        from excolor.devices import population_size

        m = experiment.model
        population = population_size(
            len(seeds),
            torch_device,
            k_bottleneck=m.k_bottleneck,
            hidden=m.hidden,
            n_nonlinear=m.n_nonlinear,
            batch_size=experiment.batch_size,
        )
    chunks = [list(seeds[i : i + population]) for i in range(0, len(seeds), population)]
    if kernel_compile_due(engine, experiment, torch_device):
        print("excolor train: compiling the fused CPU kernel for this machine (once; about a minute)", file=sys.stderr)
    total = experiment.dopesheet.length * len(chunks)
    tables, states, engines = [], {}, set()
    with tqdm(total=total, unit="step", disable=quiet, desc=f"training {len(seeds)} models", leave=False) as bar:
        for chunk in chunks:
            trainer = PopulationTrainer(experiment, chunk, device=torch_device, engine=engine)
            engines.add(trainer.engine + (f" ({trainer.engine_note})" if trainer.engine_note else ""))
            trainer.run(progress=bar.update)
            tables.append(trainer.final_metrics())
            for i, seed in enumerate(chunk):
                states[str(seed)] = trainer.population.flat[i].cpu().clone()
    metrics_all = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}

    model_file = {
        "format": "excolor.models/1",
        "model": dict(to_dict(experiment)["model"]),
        "seeds": [int(s) for s in seeds],
        "parameters": torch.stack([states[str(s)] for s in seeds]),
    }
    _atomic_write(out / "models.pt", lambda p: torch.save(model_file, p))
    _atomic_write(out / "experiment.yaml", lambda p: Path(p).write_text(to_yaml(experiment)))
    _atomic_write(out / "experiment.json", lambda p: Path(p).write_text(json.dumps(to_dict(experiment), indent=2)))
    _atomic_write(out / "dopesheet.csv", lambda p: Path(p).write_text(experiment.dopesheet.to_csv()))
    _atomic_write(out / "metrics.csv", lambda p: Path(p).write_text(metrics_csv(metrics_all), encoding="utf-8"))

    m = experiment.model
    print(
        f"{experiment.name}: {m.kind} K = {m.k_bottleneck}, H = {m.hidden}, N = {m.n_nonlinear}, "
        f"{experiment.dopesheet.length} steps, stream '{experiment.stream}', device {torch_device}, "
        f"engine {', '.join(sorted(engines))}"
    )
    ev = experiment.evaluation
    print(summarize_scores(metrics_all, grid=ev.score_grid, power=ev.score_power))
    print()
    print(_top_table(metrics_all))
    print(f"\nwrote {out}/metrics.csv, models.pt, experiment.yaml (re-runnable), experiment.json, dopesheet.csv")
    return 0
