"""Running a study: build or restore the Tune run of a ``StudySpec`` and fit it.

Running the same command again restores the study with ``Tuner.restore`` (searcher included) and
finishes it: no duplicate trials, the requested trial count exactly.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import TYPE_CHECKING, Any

from tune.callbacks import study_callbacks
from tune.searcher import fail_orphaned_trials, make_searcher
from tune.session import init_ray, prepare_environment, shutdown_embedded_ray
from tune.spec import StudySpec, check_existing, write_record
from tune.trainable import TrialSettings, train_trial

if TYPE_CHECKING:
    from excolor.config import Experiment
    from tune.space import SearchSpace

__all__ = ["run_study"]


def _tuner(spec: StudySpec, trainable: Any, restore: bool, space: SearchSpace | None) -> Any:
    from ray import tune

    if restore:
        return tune.Tuner.restore(str(spec.directory), trainable=trainable, resume_unfinished=True, resume_errored=True)
    run_config = tune.RunConfig(
        name=spec.name,
        storage_path=spec.storage,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=study_callbacks(spec),
        verbose=0,
        sync_config=tune.SyncConfig(sync_artifacts=True),
    )
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
    from ray import tune

    exists = check_existing(spec)
    restore = exists and tune.Tuner.can_restore(str(spec.directory))
    embedded_session = init_ray(address)  # before writing anything: an unreachable cluster leaves no trace
    if not exists:
        write_record(spec)
    settings = TrialSettings(
        experiment=experiment,
        steps=spec.steps,
        space=space,
        threads=spec.cpus_per_trial,
        seeds=tuple(spec.seed_groups()[0]) if spec.kind == "search" else None,
        checkpoint_every_s=spec.checkpoint_every_s,
        device=spec.device,
    )
    resources: dict[str, float] = {"cpu": spec.cpus_per_trial}
    if spec.gpus_per_trial:
        resources["gpu"] = spec.gpus_per_trial
    trainable = tune.with_resources(tune.with_parameters(train_trial, settings=settings), resources)
    tuner = _tuner(spec, trainable, restore, space)
    if progress:
        print(f"{'resuming' if restore else 'starting'} {spec.kind} {spec.name!r} in {spec.directory}", file=sys.stderr)
    start = time.perf_counter()
    try:
        results = tuner.fit()
    finally:
        if embedded_session is not None:
            shutdown_embedded_ray(embedded_session)
    if spec.kind == "search":
        orphans = fail_orphaned_trials(spec.directory, spec.name)
        if orphans and progress:
            print(
                f"marked {orphans} Optuna trial(s) FAIL: suggested to a driver that was killed before it "
                "started them (they were never trained)",
                file=sys.stderr,
            )
    if progress:
        print(
            f"{spec.kind} {spec.name!r}: {len(results)} trials in {time.perf_counter() - start:.1f} s", file=sys.stderr
        )
    return results
