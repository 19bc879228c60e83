"""Running a study: build or restore the Tune run of a ``StudySpec`` and fit it.

Every study made now is a cohort study: its configurations are recorded in ``trials/<number>/``
and a rerun of the same command starts a fresh Tune run that trains only what the records (and a
search's Optuna journal) say is unfinished -- no duplicate configurations, exactly the requested
count, and no Ray state (pickles) opened. Studies made before cohorts still resume the old way,
with ``Tuner.restore``, and only from a directory that is the user's own (``check_restorable``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from analysis.objectives import objective, parse_constraint
from analysis.record import write_study_record
from tune.callbacks import study_callbacks
from tune.errors import Interrupted, StorageFull, is_storage_full, storage_nearly_full
from tune.searcher import fail_orphaned_trials, journal_trials, make_sampler, make_searcher, run_seed
from tune.session import check_resources, init_ray, prepare_environment, shutdown_embedded_ray
from tune.spec import StudySpec, check_existing, check_restorable, study_lock, write_record
from tune.trainable import TrialSettings, train_trial

if TYPE_CHECKING:
    from excolor.config import Experiment
    from tune.space import SearchSpace

__all__ = ["default_cohort", "run_study"]

_PENDING_VAR = "TUNE_MAX_PENDING_TRIALS_PG"
_USER_PENDING = os.environ.get(_PENDING_VAR)  # a user's own setting wins


def _run_config(spec: StudySpec, *, done: int = 0) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=spec.name,
        storage_path=spec.storage,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=study_callbacks(spec, done=done),
        verbose=0,
        sync_config=tune.SyncConfig(sync_artifacts=True),
    )


def _tuner(spec: StudySpec, trainable: Any, restore: bool, space: SearchSpace | None) -> Any:
    from ray import tune

    if restore:
        return tune.Tuner.restore(str(spec.directory), trainable=trainable, resume_unfinished=True, resume_errored=True)
    run_config = _run_config(spec)
    if spec.kind == "sweep":
        grid: dict[str, Any] = {"seeds": tune.grid_search(spec.seed_groups())}
        if spec.scales:
            names = [n for n, _ in spec.scales]
            combos = [dict(zip(names, c)) for c in itertools.product(*[v for _, v in spec.scales])]
            grid["scale"] = tune.grid_search(combos)
        tune_config = tune.TuneConfig(max_concurrent_trials=spec.max_concurrent, reuse_actors=True)
        return tune.Tuner(trainable, param_space=grid, tune_config=tune_config, run_config=run_config)
    assert space is not None, "a search needs its space"
    tune_config = tune.TuneConfig(
        search_alg=make_searcher(spec, space),
        num_samples=spec.total_trials(),
        max_concurrent_trials=spec.max_concurrent,
        reuse_actors=True,
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def default_cohort(pending: int, seeds: int, *, slots: int, device: str) -> int:
    """Configurations per Ray trial when ``--cohort`` is not given.

    Populations of up to ~256 models on a CPU (where trainings/s level off, benchmarks/speed.py),
    in a number of cohorts that is a multiple of the cluster's trial slots, so that no slot sits idle
    in the last round: 80 configurations × 16 seeds on 2 slots train as 6 cohorts of up to 14, in three
    rounds of two, not as 5 of 16 with the fifth alone (measured: benchmarks/cohort_search.py).

    >>> [default_cohort(c, s, slots=2, device="cpu") for c, s in [(12, 8), (80, 16), (1000, 16), (1, 16)]]
    [6, 14, 16, 1]
    """
    cap = max(1, (4096 if device.startswith("cuda") else 256) // max(1, seeds))
    slots = max(1, slots)
    cohorts = math.ceil(math.ceil(max(1, pending) / cap) / slots) * slots
    return max(1, min(cap, math.ceil(pending / cohorts)))


def _cohort_searcher(spec: StudySpec, experiment: Experiment, space: SearchSpace | None) -> Any:
    """The study's searcher, reconciled with the journal (searches) or the records (sweeps); no Ray needed yet."""
    from tune.cohort_searcher import CohortSearcher
    from tune.grid_searcher import GridSearcher, sweep_grid
    from tune.race import RacePlanner

    if spec.kind == "sweep":
        return GridSearcher(study_dir=spec.directory, grid=sweep_grid(spec.scales, spec.seed_groups()))
    assert space is not None, "a search needs its space"

    objectives = [objective(n) for n in spec.objectives]
    constraints = [parse_constraint(c, experiment) for c in spec.constraints]
    seed = run_seed(int(spec.sampler_seed or 0), journal_trials(spec.directory, spec.name))
    return CohortSearcher(
        study_dir=spec.directory,
        study_name=spec.name,
        space=space,
        objectives=objectives,
        constraints=constraints,
        sampler=make_sampler(spec.sampler, seed),
        trials=int(spec.trials or 0),
        race=RacePlanner(
            study_dir=spec.directory,
            budget=spec.race_seeds,
            block=len(spec.seeds),
            objectives=objectives,
            constraints=constraints,
            seed=int(spec.sampler_seed or 0),
        )
        if spec.race_seeds
        else None,
    )


def _cohort_tuner(spec: StudySpec, experiment: Experiment, space: SearchSpace | None, searcher: Any) -> Any:
    """A fresh Tune run of the cohort study (never a restore: the journal and the records are its record)."""
    import ray
    from ray import tune

    from tune.cohort import train_cohort

    slots = int(ray.cluster_resources().get("CPU", 1) // spec.cpus_per_trial)
    if spec.max_concurrent:
        slots = min(slots, spec.max_concurrent)
    seeds = spec.seeds_per_trial
    work = searcher.pending + searcher.race_queued  # (later race rounds train in cohorts of this size too)
    searcher.cohort = spec.cohort or default_cohort(work, seeds, slots=slots, device=spec.device)
    settings = TrialSettings(
        experiment=experiment,
        steps=spec.steps,
        space=space,
        threads=spec.cpus_per_trial,
        seeds=tuple(spec.seeds),
        checkpoint_every_s=spec.checkpoint_every_s,
        device=spec.device,
        engine=spec.engine,
        study_dir=str(spec.directory),
        cube=spec.cube_metrics,
    )
    trainable = tune.with_resources(tune.with_parameters(train_cohort, settings=settings), _resources(spec))
    # NOTE(excolor): Tune lets a custom searcher have one trial pending at a time, so the k-th trial
    # slot only starts once the (k-1)-th trial's actor is up (measured: the demo's second cohort began
    # 6 s after the first). Cohorts are ready-made, so every slot may have one pending; no concurrency
    # cap is set, which leaves an autoscaling cluster free to grow.
    os.environ[_PENDING_VAR] = _USER_PENDING or str(max(1, slots))
    tune_config = tune.TuneConfig(
        search_alg=searcher, num_samples=-1, max_concurrent_trials=spec.max_concurrent, reuse_actors=True
    )
    done = spec.total_trials() - searcher.pending
    return tune.Tuner(trainable, tune_config=tune_config, run_config=_run_config(spec, done=done))


def _resources(spec: StudySpec) -> dict[str, float]:
    resources: dict[str, float] = {"cpu": spec.cpus_per_trial}
    if spec.gpus_per_trial:
        resources["gpu"] = spec.gpus_per_trial
    return resources


def run_study(
    spec: StudySpec,
    experiment: Experiment,
    space: SearchSpace | None = None,
    *,
    address: str | None = None,
    progress: bool = True,
) -> Any:
    """Start or resume the study; returns Tune's ResultGrid.

    Args:
        spec: the study.
        experiment: its resolved experiment (``spec.experiment`` as an object).
        space: a search's space (read once, at the command-line edge); None for sweeps.
        address: a Ray cluster; None for an embedded Ray started and stopped here.
        progress: print start, per-trial and end lines on stderr.
    """
    prepare_environment(address, spec.wandb)
    check_existing(spec)  # a foreign directory or a different study is refused before anything is written
    with study_lock(spec):
        return _run_study(spec, experiment, space, address=address, progress=progress)


def _run_study(
    spec: StudySpec, experiment: Experiment, space: SearchSpace | None, *, address: str | None, progress: bool
) -> Any:
    existing = check_existing(spec)
    if existing is not None and existing.layout == "cohort":
        write_study_record(existing.directory, existing.record())  # a grown --trials, a new --cohort
        searcher = _cohort_searcher(existing, experiment, space)
        if searcher.pending == 0 and not searcher.race_work():  # nothing to train: no Ray at all
            if progress:
                _print_cohort_start(existing, searcher, True, address)
                _print_race(existing, searcher)
            return None
    elif existing is not None and (existing.directory / "tuner.pkl").exists():
        check_restorable(existing.directory)  # a study made before cohorts: Tuner.restore unpickles
    with _ray(address, spec):
        # the record is written once Ray is reached: an unreachable cluster leaves no trace
        spec = write_record(spec) if existing is None else existing
        if spec.layout == "cohort":
            searcher = _cohort_searcher(spec, experiment, space) if existing is None else searcher
            tuner = _cohort_tuner(spec, experiment, space, searcher)
            if progress:
                _print_cohort_start(spec, searcher, existing is not None, address)
                _print_compile_notice(spec, experiment, searcher)
        else:
            from ray import tune

            restore = existing is not None and tune.Tuner.can_restore(str(spec.directory))
            tuner = _legacy_tuner(spec, experiment, space, restore)
            if progress:
                print(
                    f"{'resuming' if restore else 'starting'} {spec.kind} {spec.name!r} in {spec.directory}",
                    file=sys.stderr,
                )
        start = time.perf_counter()
        try:
            results, stopped_by = _fit(tuner)
        except Exception as err:  # Tune itself fails on a full disk (its state, a trial's error file)
            if is_storage_full(err) or storage_nearly_full(spec.directory):
                raise StorageFull(_full_message(spec)) from None
            raise
        fit_s = time.perf_counter() - start  # the Tune run alone, not Ray's shutdown
    if spec.layout == "cohort" and searcher.storage_full:
        raise StorageFull(_full_message(spec))
    unfinished = spec.layout == "cohort" and (searcher.pending > 0 or searcher.live > 0 or not searcher.race_over)
    if stopped_by or unfinished:
        signum = stopped_by[0] if stopped_by else signal.SIGINT
        raise Interrupted(
            signum,
            f"{spec.kind} {spec.name!r} stopped on {signal.Signals(signum).name} after a clean stop; rerun the same "
            "command to resume it (finished configurations are kept, unfinished ones are trained again)",
        )
    if spec.kind == "search" and spec.layout != "cohort":
        orphans = fail_orphaned_trials(spec.directory, spec.name)
        if orphans and progress:
            print(
                f"marked {orphans} Optuna trial(s) FAIL: suggested to a driver that was killed before it "
                "started them (they were never trained)",
                file=sys.stderr,
            )
    if progress:
        print(
            f"{spec.kind} {spec.name!r}: {len(results)} Ray trials in {fit_s:.1f} s",
            file=sys.stderr,
        )
        if spec.layout == "cohort":
            _print_race(spec, searcher)
    return results


def _full_message(spec: StudySpec) -> str:
    try:
        free = f"{shutil.disk_usage(spec.directory).free / 2**20:.0f} MiB free"
    except OSError:
        free = "free space unknown"
    return (
        f"the storage of {spec.kind} {spec.name!r} ({spec.directory}) ran out of space ({free}); the run stopped "
        "cleanly: finished configurations are kept. Free some space and rerun the same command to train the rest"
    )


@contextlib.contextmanager
def _ray(address: str | None, spec: StudySpec) -> Iterator[None]:
    """The command's Ray: reached or started, checked to hold a trial, stopped at the end if started here."""
    session = init_ray(address)
    try:
        if session is not None:  # an embedded Ray is all there is; a cluster may still grow (autoscaler)
            check_resources(spec.cpus_per_trial, spec.gpus_per_trial)
        yield
    finally:
        if session is not None:
            shutdown_embedded_ray(session)


def _fit(tuner: Any) -> tuple[Any, list[int]]:
    """Tune's run, and the stop signals it saw."""
    with _graceful_stop() as stopped_by:
        results = tuner.fit()
    return results, stopped_by


@contextlib.contextmanager
def _graceful_stop() -> Iterator[list[int]]:
    """SIGTERM stops the Tune run as Ctrl-C does (Tune's graceful stop, through SIGUSR1); yields the signals seen.

    Ray Tune handles SIGINT itself (it ends the run and returns); SIGTERM would kill the driver
    mid-write. Tune's own "resume with Tuner.restore" advice is silenced (a rerun resumes), and so
    is its "Failed to fetch metrics" warning for a trial stopped before its first report (the
    records, not Tune's result files, say what a rerun trains).
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield seen
        return

    def on_term(signum: int, frame: Any) -> None:
        seen.append(signum)
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGTERM, on_term)
    loggers = [logging.getLogger(n) for n in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _print_cohort_start(spec: StudySpec, searcher: Any, resumed: bool, address: str | None) -> None:
    where = f"the Ray cluster at {address}" if address else "an embedded Ray"
    parts = [f"{'continuing' if resumed else 'starting'} {spec.kind} {spec.name!r} in {spec.directory}:"]
    cohorts = f", cohorts of {searcher.cohort}" if searcher.pending or searcher.race_queued else ""
    parts.append(f"{spec.total_trials()} configurations x {spec.seeds_per_trial} seeds{cohorts}")
    if searcher.recovered:
        parts.append(f"{searcher.recovered} finished configuration(s) recovered from their records")
    if searcher.retraining:
        parts.append(f"{searcher.retraining} unfinished configuration(s) trained again under their own numbers")
    parts.append(f"{searcher.pending} to train on {where}" if searcher.pending else "all trained")
    if searcher.race_queued:
        parts.append(
            f"seed racing: {searcher.race_queued} configuration(s) whose place on the front is uncertain get "
            f"{spec.seeds_per_trial} more seeds each on {where}"
        )
    print(" ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else ""), file=sys.stderr)


def _print_compile_notice(spec: StudySpec, experiment: Experiment, searcher: Any) -> None:
    """The first trials on a machine compile the CPU kernel: say so, since their progress waits a minute."""
    import torch

    from tune.run_train import kernel_compile_due

    work = searcher.pending or searcher.race_queued
    if work and spec.device == "cpu" and kernel_compile_due(spec.engine, experiment, torch.device("cpu")):
        print(
            "the first trials compile the fused CPU kernel (once per machine; about a minute) before training",
            file=sys.stderr,
        )


def _print_race(spec: StudySpec, searcher: Any) -> None:
    """What seed racing did in this run, and whether it changed the best configuration."""
    if not spec.race_seeds:
        return
    from tune.race import race_summary

    print(race_summary(spec.directory, searcher.race_rounds, spec.race_seeds), file=sys.stderr)


def _legacy_tuner(spec: StudySpec, experiment: Experiment, space: SearchSpace | None, restore: bool) -> Any:
    """Studies made before cohorts: one configuration per Ray trial, resumed with ``Tuner.restore``."""
    from ray import tune

    settings = TrialSettings(
        experiment=experiment,
        steps=spec.steps,
        space=space,
        threads=spec.cpus_per_trial,
        seeds=tuple(spec.seed_groups()[0]) if spec.kind == "search" else None,
        checkpoint_every_s=spec.checkpoint_every_s,
        device=spec.device,
        engine=spec.engine,
    )
    trainable = tune.with_resources(tune.with_parameters(train_trial, settings=settings), _resources(spec))
    return _tuner(spec, trainable, restore, space)
