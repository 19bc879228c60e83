"""Tiny fake study directories, written file by file as ``tune`` lays them out (no Ray needed).

Without ``experiment`` a study is one made before experiments were recorded (Ex 2.9.1, no
``"experiment"`` in study.json, no experiment.yaml); with one (a preset name or an ``Experiment``),
study.json records it, each trial folder gets its experiment.yaml, the per-seed columns are named
after its validating regularizers, interventions and labels, and checkpoints have its model's shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SEED_COLUMNS = [
    "seed",
    "score",
    "ablated_r",
    "val_recon",
    "val_loss",
    "val_anchor",
    "val_anti-anchor",
    "red_angle_deg",
    "labels/n/red",
    "labels/n_total",
    "max_train_recon",
    "collapsed",
    "diverged",
    "diverged_step",
    "runtime_s",
]
AGGREGATED = ["score", "ablated_r", "val_recon", "val_loss", "val_anchor", "val_anti-anchor", "red_angle_deg"]


@dataclass(frozen=True)
class _Layout:
    """The per-seed columns of a study: the outcome's two regularizer values go to ``regs``."""

    regs: tuple[str, ...] = ("val_anchor", "val_anti-anchor")
    extra: tuple[str, ...] = ()  # intervention r columns
    labels: tuple[str, ...] = ("red",)

    @property
    def columns(self) -> list[str]:
        fixed = ["seed", "score", "ablated_r", *self.extra, "val_recon", "val_loss", *self.regs, "red_angle_deg"]
        rest = [c for c in SEED_COLUMNS if c not in fixed and not c.startswith("labels/n/") and c not in AGGREGATED]
        return fixed + [f"labels/n/{x}" for x in self.labels] + rest

    @property
    def aggregated(self) -> list[str]:
        return ["score", "ablated_r", *self.extra, "val_recon", "val_loss", *self.regs, "red_angle_deg"]


def _layout(experiment: Any) -> _Layout:
    if experiment is None:
        return _Layout()
    regs = tuple(f"val_{r.name}" for r in experiment.regularizers if r.validates)
    extra = tuple(f"{i}_r" for i in experiment.evaluation.intervention_names)
    return _Layout(regs, extra, tuple(experiment.data.labels))


@dataclass
class FakeTrial:
    """One trial: its state, configuration and per-seed outcome (score, val_recon, val_anchor, val_anti-anchor)."""

    state: str = "done"  # done | failed | running | pending
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    scale: dict[str, float] | None = None  # sweeps
    params: dict[str, Any] | None = None  # searches
    outcome: list[tuple[float, float, float, float]] | None = None  # per seed
    checkpoint: bool = False
    finished: float = 1_800_000_000.0
    hidden: int | None = None  # with an experiment: the trial's hidden width (experiment.yaml, checkpoint)
    experiment_yaml: bool = True  # with an experiment: write the trial's experiment.yaml


def _per_seed(trial: FakeTrial, layout: _Layout = _Layout()) -> dict[str, list[Any]]:
    rows = trial.outcome or [(0.5 + 0.1 * i, 1e-4 * (i + 1), 1e-3, 1e-4) for i in range(len(trial.seeds))]
    cols: dict[str, list[Any]] = {c: [] for c in layout.columns}
    for seed, (score, recon, anchor, anti) in zip(trial.seeds, rows):
        values = {
            "seed": seed,
            "score": score,
            "ablated_r": float(np.sqrt(max(score, 0.0))),
            "val_recon": recon,
            "val_loss": recon,
            "red_angle_deg": 10.0,
            "labels/n_total": 3840,
            "max_train_recon": 0.4,
            "collapsed": False,
            "diverged": False,
            "diverged_step": -1,
            "runtime_s": 0.5,
        }
        values |= dict(zip(layout.regs, (anchor, anti)))
        values |= {c: 0.25 for c in layout.extra} | {f"labels/n/{x}": 7 for x in layout.labels}
        for c in layout.columns:
            cols[c].append(values.get(c, 0.0))
    return cols


def _aggregate(cols: dict[str, list[Any]], layout: _Layout = _Layout()) -> dict[str, float]:
    out = {}
    for key in layout.aggregated:
        v = np.asarray(cols[key], dtype=float)
        out[f"{key}_mean"] = float(v.mean())
        out[f"{key}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out[f"{key}_q10"] = float(np.quantile(v, 0.1))
    return out | {"diverged_frac": 0.0, "collapsed_frac": 0.0}


def write_study(
    root: Path,
    name: str,
    trials: list[FakeTrial],
    *,
    kind: str = "sweep",
    objectives: tuple[str, ...] = ("score", "recon"),
    steps: int = 40,
    journal: bool = False,
    experiment: Any = None,
) -> Path:
    """Write STUDY = root/name with study.json and one folder per trial; returns STUDY.

    ``experiment``: None (an Ex 2.9.1 study made before experiments were recorded), a preset name
    or an ``excolor.config.Experiment``.
    """
    from excolor.dopesheet import reference_dopesheet
    from excolor.experiments import preset, to_dict, to_yaml

    if isinstance(experiment, str):
        experiment = preset(experiment)
    layout = _layout(experiment)
    study = root / name
    study.mkdir(parents=True)
    seeds = sorted({s for t in trials for s in t.seeds}) or [0, 1]
    record = {
        "format": "excolor.study/1",
        "kind": kind,
        "name": name,
        "storage": str(root),
        "seeds": seeds,
        "seeds_per_trial": len(trials[0].seeds) if trials else 2,
        "hidden": 16 if experiment is None else experiment.model.hidden,
        "steps": steps,
        "stream": "hash",
        "trials": len(trials) if kind == "search" else None,
        "objectives": list(objectives),
        "sampler": "tpe",
        "sampler_seed": 0,
        "scales": [],
        "space": None,
        "space_file": None,
    }
    if experiment is not None:
        record["experiment"] = to_dict(experiment)
    (study / "study.json").write_text(json.dumps(record))
    base_sheet = reference_dopesheet() if experiment is None else experiment.dopesheet
    sheet = base_sheet.stretched(steps).to_csv()
    for i, trial in enumerate(trials):
        folder = study / f"train_trial_{i:05x}_{i:05d}_{i}_x_2030-01-01_00-00-00"
        folder.mkdir()
        config: dict[str, Any] = dict(trial.params or {}) if kind == "search" else {"seeds": trial.seeds}
        if trial.scale is not None:
            config["scale"] = trial.scale
        (folder / "params.json").write_text(json.dumps(config))
        if trial.state == "pending":
            continue
        (folder / "dopesheet.csv").write_text(sheet)
        model = None
        if experiment is not None:
            resolved = experiment.with_dopesheet(base_sheet.stretched(steps))
            if trial.hidden is not None:
                resolved = resolved.with_model(hidden=trial.hidden)
            model = resolved.model
            if trial.experiment_yaml:
                (folder / "experiment.yaml").write_text(to_yaml(resolved))
        cols = _per_seed(trial, layout)
        base = {"trial_id": f"t{i}", "config": config, "time_this_iter_s": 0.1}
        lines = [
            {**_aggregate(cols, layout), **base, "step": steps // 2, "final": False, "timestamp": trial.finished - 1}
        ]
        if trial.state == "done":
            per_seed = {k: [float(x) for x in cols[k]] for k in ("seed", "score", "val_recon")}
            lines.append(
                {
                    **_aggregate(cols, layout),
                    **base,
                    "step": steps,
                    "final": True,
                    "timestamp": trial.finished,
                    "time_total_s": 1.0,
                    "per_seed": per_seed,
                }
            )
            header = ",".join(layout.columns)
            body = [",".join(str(cols[c][j]) for c in layout.columns) for j in range(len(trial.seeds))]
            (folder / "seeds.csv").write_text("\n".join([header, *body]) + "\n")
        if trial.state == "failed":
            (folder / "error.txt").write_text("Traceback ...\nTrialDiverged: all 2 seeds diverged (test)\n")
        (folder / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
        if trial.checkpoint:
            _write_checkpoint(folder / "checkpoint_000001", trial.seeds, steps, model)
    if journal:
        _write_journal(study, name, trials, objectives)
    return study


def _write_checkpoint(folder: Path, seeds: list[int], step: int, model: Any = None) -> None:
    """An untrained population (``build_model`` per seed) of the given ``ModelConfig`` (Ex 2.9.1, H = 16 if None)."""
    import torch

    from excolor.population import Population

    folder.mkdir()
    if model is None:
        population = Population.from_seeds(seeds, hidden=16)
    else:
        population = Population.from_seeds(
            seeds,
            k_bottleneck=model.k_bottleneck,
            hidden=model.hidden,
            n_nonlinear=model.n_nonlinear,
            kind=model.kind,
        )
    torch.save({"params": population.flat, "seeds": list(seeds), "step": step}, folder / "population.pt")


def _write_journal(study: Path, name: str, trials: list[FakeTrial], objectives: tuple[str, ...]) -> None:
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from analysis.objectives import objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(study / "optuna.journal")))
    directions = [
        optuna.study.StudyDirection.MAXIMIZE if objective(o).maximise else optuna.study.StudyDirection.MINIMIZE
        for o in objectives
    ]
    opt = optuna.create_study(study_name=name, storage=storage, directions=directions)
    column = {"score": 1, "recon": 2, "anchor": 3, "anti-anchor": 4}
    for trial in trials:
        params = dict(trial.params or {})
        dists: dict[str, BaseDistribution] = {
            k: CategoricalDistribution([10, 16]) if k == "hidden" else FloatDistribution(1e-6, 10.0, log=True)
            for k in params
        }
        cols = _per_seed(trial)
        agg = _aggregate(cols)
        state = {"done": "COMPLETE", "failed": "FAIL", "running": "RUNNING", "pending": "WAITING"}[trial.state]
        values = None
        if trial.state == "done":
            values = [
                agg[
                    ["score_mean", "score_mean", "val_recon_mean", "val_anchor_mean", "val_anti-anchor_mean"][
                        column.get(o, 0)
                    ]
                ]
                for o in objectives
            ]
        opt.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=values, state=optuna.trial.TrialState[state]
            )
        )
