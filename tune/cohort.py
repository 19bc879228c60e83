"""The cohort trainable: one Ray trial trains C configurations x S seeds as one population.

A search's Ray trial carries a *cohort*: a list of Optuna trials (number and parameters). Each
configuration gets its own dopesheet (and width: configurations of one width share a population,
widths train one after another). After every validation the trial reports cohort-level figures
and, for every configuration, the per-seed aggregates of the original metrics, written as that
configuration's record in ``STUDY/trials/<number>/`` (``analysis.record``): whichever Ray trial
trains configuration 7, its results live in ``trials/0007/``. The final report carries every
member's objective values, which ``tune.cohort_searcher`` tells Optuna.

Only finite numbers reach Tune and Optuna: a configuration whose seeds all diverge is reported as
diverged (Optuna FAIL) and the others go on; in a partly diverged configuration each diverged seed
counts at the worst value of every metric (``tune.trainable.aggregate``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.aggregate import aggregate
from analysis.record import (
    DOPESHEET_FILE,
    ERROR_FILE,
    EXPERIMENT_FILE,
    PARAMS_FILE,
    POPULATION_FILE,
    RACE_PREFIX,
    RESULT_FILE,
    SEEDS_FILE,
    TRIALS_DIR,
)
from tune.trainable import CHECKPOINT_FILE, TrialSettings, trial_experiment

if TYPE_CHECKING:
    from excolor.config import Experiment

__all__ = ["Member", "members_of", "train_cohort"]

_OBJECTIVE_SEED_KEYS = ("seed", "score", "ablated_r", "val_recon", "collapsed", "diverged")


@dataclass(frozen=True)
class Member:
    """One configuration of a cohort: its record's name, its parameters and resolved experiment.

    A search's member is Optuna trial ``number``, recorded in ``trials/<number>``; a validation's
    is a trial of the study, recorded under ``validation/<label>/<trial id>`` with its experiment.
    """

    record: str
    params: dict[str, Any]
    experiment: Experiment
    number: int | None = None
    seeds: tuple[int, ...] | None = None  # a race block's own seeds; None: the study's

    @property
    def key(self) -> str:
        """Its entry in the final report: the Optuna number a search tells, else the record's name."""
        return str(self.number) if self.number is not None and self.record == f"{self.number:04d}" else self.record


def members_of(settings: TrialSettings, config: Mapping[str, Any]) -> list[Member]:
    """The cohort's configurations with their experiments, in the order given."""
    from excolor.experiments import parse_experiment

    out = []
    for m in config["cohort"]:
        if "experiment" in m:  # a validation: the trial's own resolved experiment, as recorded
            experiment = parse_experiment(str(m["experiment"]), source=f"trial {m['record']} experiment")
            out.append(Member(str(m["record"]), {}, experiment))
        else:
            number = int(m["number"])
            record = f"{number:04d}" if m.get("race") is None else f"{number:04d}/{RACE_PREFIX}{int(m['race'])}"
            seeds = tuple(int(s) for s in m["seeds"]) if m.get("seeds") is not None else None
            experiment = trial_experiment(settings, m["params"])
            out.append(Member(record, dict(m["params"]), experiment, number, seeds))
    return out


def _groups(members: Sequence[Member]) -> list[list[Member]]:
    """Members by model shape (a population has one shape), in first-seen order."""
    groups: dict[tuple[int, ...], list[Member]] = {}
    for m in members:
        shape = m.experiment.model
        groups.setdefault((shape.k_bottleneck, shape.hidden, shape.n_nonlinear), []).append(m)
    return list(groups.values())


def _write_json_line(path: Path, row: Mapping[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _keep_lines_until(path: Path, step: int) -> None:
    """Drop report lines past ``step`` (a retry resumes from an earlier checkpoint)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and not row.get("final") and int(row.get("step", 0)) <= step:
            kept.append(line)
    path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def _start_record(directory: Path, member: Member, seeds: Sequence[int], step: int) -> None:
    """A configuration's record directory, fresh (or cut back to ``step`` when resuming)."""
    from excolor.experiments import to_yaml

    directory.mkdir(parents=True, exist_ok=True)
    if step == 0:
        for name in (RESULT_FILE, SEEDS_FILE, POPULATION_FILE):
            (directory / name).unlink(missing_ok=True)
    else:
        _keep_lines_until(directory / RESULT_FILE, step)
    (directory / PARAMS_FILE).write_text(json.dumps({**member.params, "seeds": list(seeds)}), encoding="utf-8")
    (directory / DOPESHEET_FILE).write_text(member.experiment.dopesheet.to_csv(), encoding="utf-8")
    (directory / EXPERIMENT_FILE).write_text(to_yaml(member.experiment), encoding="utf-8")


def _member_rows(group: Sequence[Member], seeds: Sequence[int]) -> list[slice]:
    """Each member's rows of its group's population: its seeds, one model each, members one after another."""
    out, start = [], 0
    for m in group:
        n = len(m.seeds if m.seeds is not None else seeds)
        out.append(slice(start, start + n))
        start += n
    return out


def train_cohort(config: dict[str, Any], settings: TrialSettings) -> None:
    """Tune function trainable of a cohort (``tune.with_parameters(train_cohort, settings=...)``)."""
    import torch
    from ray import tune

    from excolor.devices import resolve_device
    from excolor.readers import load_tensors
    from excolor.train import PopulationTrainer

    torch.set_num_threads(max(1, settings.threads))
    assert settings.study_dir is not None and settings.seeds is not None, "a cohort needs its study and seeds"
    seeds = [int(s) for s in settings.seeds]
    members = members_of(settings, config)
    groups = _groups(members)
    import ray

    node_id = ray.get_runtime_context().get_node_id()  # where each report came from (lost-node tests, logs)
    context = tune.get_context()
    ray_trial = context.get_trial_id()
    ray_dir = Path(context.get_trial_dir()).name
    records = Path(settings.study_dir) / (settings.records or TRIALS_DIR)
    device = resolve_device(settings.device)

    # Resume: the group in progress and the finished members' results travel in the checkpoint.
    group_index, state, finished = 0, None, {}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            saved = load_tensors(os.path.join(d, CHECKPOINT_FILE))
        group_index, state, finished = int(saved["group"]), saved["trainer"], dict(saved["finished"])

    last_checkpoint = [time.monotonic()]
    cohort_start = time.perf_counter()

    def report(
        metrics: dict[str, Any], trainer: PopulationTrainer | None, *, final: bool = False, group_done: bool = False
    ) -> None:
        """Report a row, with a checkpoint when one is due: the group to train and, mid-group, its
        trainer's state. ``group_done``: ``group_index`` is already the next group, which a resume
        starts afresh (the finished group's state does not fit its population)."""
        row = {**metrics, "final": final, "members_done": len(finished), "members": len(members), "node_id": node_id}
        if final:  # what the searcher tells Optuna, one entry per configuration (JSON: Tune flattens dicts)
            row["results"] = json.dumps(finished)
        due = time.monotonic() - last_checkpoint[0] >= settings.checkpoint_every_s
        if trainer is None or not (final or due):
            tune.report(row)
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(
                {"group": group_index, "trainer": None if group_done else trainer.state_dict(), "finished": finished},
                os.path.join(d, CHECKPOINT_FILE),
            )
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))
        last_checkpoint[0] = time.monotonic()

    while group_index < len(groups):
        group = groups[group_index]
        base = group[0].experiment
        own = [list(m.seeds) if m.seeds is not None else seeds for m in group]
        sheets = [m.experiment.dopesheet for m, s in zip(group, own) for _ in s]
        population_seeds = [s for block in own for s in block]
        trainer = PopulationTrainer(base, population_seeds, dopesheets=sheets, device=device, engine=settings.engine)
        member_rows = _member_rows(group, seeds)
        if state is not None:
            trainer.load_state_dict(state)
            state = None
        dirs = [records / m.record for m in group]
        for d, m, s in zip(dirs, group, own):
            _start_record(d, m, s, trainer.step)

        def on_validation(
            step: int,
            metrics: dict[str, np.ndarray],
            *,
            group: list[Member] = group,
            trainer: PopulationTrainer = trainer,
            dirs: list[Path] = dirs,
            index: int = group_index,
            member_rows: list[slice] = member_rows,
        ) -> None:
            alive = trainer.alive[: trainer.n_models].cpu().numpy()
            score, r = (v[: trainer.n_models] for v in trainer.ablation_scores())
            per_model = {**metrics, "score": score, "ablated_r": r}
            best = -1.0
            for m, d, rows in zip(group, dirs, member_rows):
                diverged = ~alive[rows]
                if diverged.all():
                    continue
                agg = aggregate({k: v[rows] for k, v in per_model.items()}, diverged=diverged)
                best = max(best, agg["score_mean"])
                _write_json_line(
                    d / RESULT_FILE,
                    {
                        **agg,
                        "step": step,
                        "final": False,
                        "trial_id": m.record,
                        "ray_trial": ray_trial,
                        "timestamp": int(time.time()),
                    },
                )
            report({"step": step, "group": index, "best_score_mean": best}, trainer)

        trainer.run(report=on_validation)
        final = trainer.final_metrics(cube=settings.cube)
        for m, d, rows in zip(group, dirs, member_rows):
            per_seed = {k: np.asarray(v)[rows] for k, v in final.items()}
            finished[m.key] = _finish_member(m, d, per_seed, trainer, rows, ray_trial, ray_dir, cohort_start)
        group_index += 1
        report({"step": trainer.step, "group": group_index}, trainer, final=group_index == len(groups), group_done=True)


def _finish_member(
    member: Member,
    directory: Path,
    per_seed: dict[str, np.ndarray],
    trainer: Any,
    rows: slice,
    ray_trial: str,
    ray_dir: str,
    start: float,
) -> dict[str, Any]:
    """Write the member's final record (seeds.csv, its models, the final line); return what Optuna is told."""
    import pandas as pd
    import torch

    diverged = np.asarray(per_seed["diverged"], dtype=bool)
    pd.DataFrame(per_seed).to_csv(directory / SEEDS_FILE, index=False)
    torch.save(
        {
            "format": "excolor.models/1",
            "seeds": [int(s) for s in per_seed["seed"]],
            "step": int(trainer.step),
            "params": trainer.population.flat[rows].cpu().clone(),
        },
        directory / POPULATION_FILE,
    )
    identity = {
        "trial_id": member.record,
        "ray_trial": ray_trial,
        "ray_trial_dir": ray_dir,
        "time_total_s": time.perf_counter() - start,
        "timestamp": int(time.time()),
    }
    if diverged.all():
        steps = np.asarray(per_seed["diverged_step"])
        reason = (
            f"all {len(diverged)} seeds diverged (non-finite loss or gradient; first at step {int(steps.min())}, "
            f"last at step {int(steps.max())}): the schedule's lr or weights are too large"
        )
        (directory / ERROR_FILE).write_text(reason + "\n", encoding="utf-8")
        _write_json_line(directory / RESULT_FILE, {**identity, "step": int(trainer.step), "final": False})
        return {"diverged": True, "reason": reason, **identity}
    (directory / ERROR_FILE).unlink(missing_ok=True)
    agg = aggregate(per_seed, diverged=diverged)
    keys = [k for k in _OBJECTIVE_SEED_KEYS if k in per_seed] + [k for k in per_seed if k.startswith("val_")]
    seed_values = {k: [float(x) for x in per_seed[k]] for k in keys}
    _write_json_line(directory / RESULT_FILE, {**agg, **identity, "step": int(trainer.step), "final": True})
    return {"diverged": False, "values": agg, "per_seed": seed_values, **identity}
