"""Studies: a Ray Tune run of many trials, a sweep (grid) or a search (Optuna), with resume.

A study lives in ``STORAGE/NAME`` (``--storage`` and ``--name``); that directory is what
``excolor status``, ``pareto`` and ``report`` take. Layout::

    STORAGE/NAME/
      study.json            what was asked for (kind, settings, objectives, space) -- written first
      optuna.journal        the Optuna study (search only; optuna-dashboard can watch it)
      tuner.pkl, experiment_state-*.json, searcher-state-*.pkl   Ray Tune's own state (resume)
      train_trial_<id>.../   one directory per trial: params.json, result.json, progress.csv,
                            checkpoint_*/ (population state), dopesheet.csv, seeds.csv

Running the same command again restores the study with ``Tuner.restore`` (searcher included)
and finishes it: no duplicate trials, the requested trial count exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tune.errors import UsageError
from tune.trainable import TrialSettings, train_trial

__all__ = [
    "OBJECTIVES",
    "StudySpec",
    "known_objectives",
    "objective_metric",
    "objective_mode",
    "run_study",
    "study_dir",
]

OBJECTIVES: dict[str, str] = {
    "score": "max",  # mean ablation score over the trial's seeds
    "recon": "min",  # mean final val_recon
    "anchor": "min",  # mean val_anchor
    "anti-anchor": "min",  # mean val_anti-anchor
    "score-q10": "max",  # the 10 % quantile of the score: robustness across seeds
}
"""The Ex 2.9.1 objectives. In general an objective is ``score``, ``recon``, ``score-q10`` or the name
of one of the experiment's validating regularizers (minimised: its mean ``val_<name>``)."""
OBJECTIVE_METRIC = {
    "score": "score_mean",
    "recon": "val_recon_mean",
    "anchor": "val_anchor_mean",
    "anti-anchor": "val_anti-anchor_mean",
    "score-q10": "score_q10",
}
_FIXED_OBJECTIVES = ("score", "recon", "score-q10")


def objective_metric(name: str) -> str:
    """The trial-level result column an objective reads: ``score_mean``, ``val_<reg>_mean`` ..."""
    return OBJECTIVE_METRIC.get(name, f"val_{name}_mean")


def objective_mode(name: str) -> str:
    """'max' for scores, 'min' for errors and regularizer values."""
    return OBJECTIVES.get(name, "min")


def known_objectives(experiment: Any) -> tuple[str, ...]:
    """Objectives a study of ``experiment`` can optimise: the fixed three and its validating regularizers."""
    return _FIXED_OBJECTIVES + tuple(r.name for r in experiment.regularizers if r.validates)


SAMPLERS = ("tpe", "nsga2", "gp", "random")
STUDY_FILE = "study.json"


@dataclass(frozen=True)
class StudySpec:
    """Everything that defines a study; saved as ``study.json`` and checked on resume."""

    kind: str  # 'sweep' | 'search'
    name: str
    storage: str  # absolute path
    seeds: tuple[int, ...]
    seeds_per_trial: int
    hidden: int | None = None  # None: the experiment's
    steps: int | None = None
    stream: str | None = None  # None: the experiment's
    trials: int | None = None  # search
    objectives: tuple[str, ...] = ("score", "recon")  # search
    sampler: str = "tpe"
    sampler_seed: int = 0
    scales: tuple[tuple[str, tuple[float, ...]], ...] = ()  # sweep: regularizer -> multipliers
    space: dict[str, Any] | None = field(default=None, compare=False)  # search: description
    space_file: str | None = None
    wandb: str = "offline"
    cpus_per_trial: int = 1
    max_concurrent: int | None = None
    max_failures: int = 2
    checkpoint_every_s: float = 10.0
    experiment: dict[str, Any] | None = None  # the resolved experiment (excolor.experiments.to_dict)
    device: str = "cpu"
    gpus_per_trial: float = 0.0

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = "excolor.study/1"
        return d

    def seed_groups(self) -> list[list[int]]:
        k = self.seeds_per_trial
        return [list(self.seeds[i : i + k]) for i in range(0, len(self.seeds), k)]


def study_dir(spec: StudySpec) -> Path:
    return Path(spec.storage) / spec.name


def _existing_record(spec: StudySpec, directory: Path) -> bool:
    """Check that an existing study asks for the same thing; True if the study exists (resume)."""
    path = directory / STUDY_FILE
    if not path.exists():
        if directory.exists() and any(directory.iterdir()):
            raise UsageError(f"{directory} exists and is not an excolor study (no {STUDY_FILE}); use another --name")
        return False
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is unreadable ({err}); refusing to touch this directory") from None
    if not isinstance(old, dict):
        raise UsageError(f"{path} is not an excolor study record; refusing to touch this directory")
    record = spec.record()
    if "experiment" not in old:  # a study made before experiment files: it ran the Ex 2.9.1 preset
        from excolor.experiments import preset, to_dict

        ran = preset().with_model(k_codec=int(old.get("hidden") or 16))
        old["experiment"] = to_dict(replace(ran, stream=old.get("stream") or "hash"))
    # may change between runs (a resumed study may move to another machine or device)
    ignored = {"space", "wandb", "max_concurrent", "checkpoint_every_s", "device", "gpus_per_trial"}
    diffs = [k for k in record if k not in ignored and json.dumps(old.get(k)) != json.dumps(record[k])]
    if diffs:
        shown = ", ".join(_difference(k, old.get(k), record[k]) for k in diffs[:4])
        raise UsageError(
            f"{directory} already holds a different study ({shown}); use another --name, or rerun "
            "the original command to resume it"
        )
    return True


def _difference(key: str, old: Any, new: Any) -> str:
    if key == "experiment" and isinstance(old, dict) and isinstance(new, dict):
        fields = [k for k in new if json.dumps(old.get(k)) != json.dumps(new[k])]
        return f"experiment: {old.get('name')!r} -> {new.get('name')!r} (differs in {', '.join(fields)})"
    return f"{key}: {old!r} -> {new!r}"


def _write_record(spec: StudySpec, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STUDY_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(spec.record(), indent=2))
    os.replace(tmp, path)


def _prepare_environment(address: str | None, wandb_mode: str) -> None:
    """Environment for Ray and W&B, set before Ray is imported (Ray reads it at import time) and
    inherited by every trial process."""
    os.environ["WANDB_MODE"] = wandb_mode
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Checkpoints after every validation make Tune warn about frequent snapshots; they are cheap here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's C++ core prints warnings such as "_WandbLoggingActor ... max_restarts" as errors on the
    # terminal; its full logs stay in /tmp/ray/session_latest/logs. Set it yourself to see them.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if address and "RAY_AUTH_MODE" not in os.environ and _is_local_excolor_cluster(address):
        # `excolor cluster up` starts its nodes with token auth; a driver needs token mode too. Ray
        # reads the token from ~/.ray/auth_token; it is never printed. For other clusters, export the
        # same RAY_AUTH_MODE as the cluster (Ray's rule).
        os.environ["RAY_AUTH_MODE"] = "token"


def _is_local_excolor_cluster(address: str) -> bool:
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return False
    from tune.local_cluster import STATE_FILE, cluster_temp_dir

    return (cluster_temp_dir(int(port)) / STATE_FILE).exists()


def _init_ray(address: str | None) -> str | None:
    """Connect to or start Ray; returns the session directory when this call started an embedded Ray."""
    import ray

    if ray.is_initialized():
        return None
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"the Ray cluster at {address!r}" if address else "an embedded Ray"
        raise UsageError(f"cannot start or reach {where}: {err}") from None
    if address:
        return None
    return str(ray._private.worker._global_node.get_session_dir_path())


def _shutdown_embedded_ray(session_dir: str) -> None:
    """Stop the Ray this command started, and any of its processes that outlive it.

    NOTE(excolor): a W&B logging actor (Ray's WandbLoggerCallback) was seen to survive
    ``ray.shutdown()`` as an orphan, idle for good; a study command must not leave such processes
    behind, so whatever still runs inside this Ray session's directory is killed.
    """
    import ray

    ray.shutdown()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(session_dir) and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)


def _sampler(spec: StudySpec) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=spec.sampler_seed, multivariate=True)
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=spec.sampler_seed)
    if spec.sampler == "gp":
        return optuna.samplers.GPSampler(seed=spec.sampler_seed)
    return optuna.samplers.RandomSampler(seed=spec.sampler_seed)


def _progress_callback(total: int | None) -> Any:
    from ray import tune

    class _Progress(tune.Callback):  # type: ignore[misc]
        """One line per finished or failed trial, with the best mean score so far."""

        def __init__(self) -> None:
            self.finished = 0
            self.best = float("-inf")

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if not result.get("final"):
                return
            self.finished += 1
            score = float(result.get("score_mean", float("nan")))
            self.best = max(self.best, score)
            of = f"/{total}" if total else ""
            print(
                f"[{self.finished}{of}] {trial.trial_id}: score {score:.4f}  "
                f"recon {result.get('val_recon_mean', 0):.2e}  diverged {result.get('diverged_frac', 0):.0%}"
                f"   best {self.best:.4f}",
                file=sys.stderr,
                flush=True,
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"[failed] {trial.trial_id}: {trial.error_file or 'see its error.txt'}", file=sys.stderr, flush=True)

    return _Progress()


def _total_trials(spec: StudySpec) -> int | None:
    if spec.kind == "search":
        return spec.trials
    n = len(spec.seed_groups())
    for _, values in spec.scales:
        n *= len(values)
    return n


def _callbacks(spec: StudySpec, directory: Path) -> list[Any]:
    callbacks = [_progress_callback(_total_trials(spec))]
    if spec.wandb == "disabled":
        return callbacks
    from ray.air.integrations.wandb import WandbLoggerCallback

    os.environ.setdefault("WANDB_DIR", str(directory))
    return [*callbacks, WandbLoggerCallback(project="excolor", group=spec.name, mode=spec.wandb, log_config=True)]


def _tuner(spec: StudySpec, directory: Path, trainable: Any, restore: bool, space: Any) -> Any:
    from ray import tune

    if restore:
        return tune.Tuner.restore(str(directory), trainable=trainable, resume_unfinished=True, resume_errored=True)
    run_config = tune.RunConfig(
        name=spec.name,
        storage_path=spec.storage,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=_callbacks(spec, directory),
        verbose=0,
        sync_config=tune.SyncConfig(sync_artifacts=True),
    )
    if spec.kind == "sweep":
        grid: dict[str, Any] = {"seeds": tune.grid_search(spec.seed_groups())}
        if spec.scales:
            import itertools

            names = [n for n, _ in spec.scales]
            combos = [dict(zip(names, c)) for c in itertools.product(*[v for _, v in spec.scales])]
            grid["scale"] = tune.grid_search(combos)
        tune_config = tune.TuneConfig(max_concurrent_trials=spec.max_concurrent, reuse_actors=True)
        return tune.Tuner(trainable, param_space=grid, tune_config=tune_config, run_config=run_config)
    # search: multi-objective Optuna with a journal in the study directory
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray.tune.search.optuna import OptunaSearch

    storage = JournalStorage(JournalFileBackend(str(directory / "optuna.journal")))
    reference = space.reference_params()
    searcher = OptunaSearch(
        space=space.distributions(),
        metric=[objective_metric(o) for o in spec.objectives],
        mode=[objective_mode(o) for o in spec.objectives],
        points_to_evaluate=[reference],  # the hand schedule is trial 0: every study is measured against it
        sampler=_sampler(spec),
        study_name=spec.name,
        storage=storage,
    )
    tune_config = tune.TuneConfig(
        search_alg=searcher,
        num_samples=spec.trials,
        max_concurrent_trials=spec.max_concurrent,
        reuse_actors=True,
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def study_experiment(spec: StudySpec) -> Any:
    """The study's experiment (recorded in study.json; Ex 2.9.1 for studies made before experiments)."""
    from excolor.experiments import from_dict, preset

    return from_dict(spec.experiment, source="study.json experiment") if spec.experiment else preset()


def trainable_space(spec: StudySpec) -> Any:
    from tune.space import SearchSpace

    if spec.space_file:
        return SearchSpace.read(spec.space_file)
    return SearchSpace.for_experiment(study_experiment(spec))


def run_study(spec: StudySpec, *, address: str | None = None, progress: bool = True) -> Any:
    """Start or resume the study; returns Tune's ResultGrid."""
    _prepare_environment(address, spec.wandb)
    from ray import tune

    directory = study_dir(spec)
    exists = _existing_record(spec, directory)
    restore = exists and tune.Tuner.can_restore(str(directory))
    embedded_session = _init_ray(address)  # before writing anything: an unreachable cluster leaves no trace
    if not exists:
        _write_record(spec, directory)
    space = trainable_space(spec) if spec.kind == "search" else None  # read once, shared below
    settings = TrialSettings(
        experiment=spec.experiment,
        hidden=spec.hidden,
        steps=spec.steps,
        stream=spec.stream,
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
    tuner = _tuner(spec, directory, trainable, restore, space)
    if progress:
        print(f"{'resuming' if restore else 'starting'} {spec.kind} {spec.name!r} in {directory}", file=sys.stderr)
    start = time.perf_counter()
    try:
        results = tuner.fit()
    finally:
        if embedded_session is not None:
            _shutdown_embedded_ray(embedded_session)
    if spec.kind == "search":
        orphans = _fail_orphaned_trials(directory, spec.name)
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


def _fail_orphaned_trials(directory: Path, name: str) -> int:
    """Mark Optuna trials still RUNNING after the Tune run ended as FAIL; returns how many.

    NOTE(excolor): a driver killed between OptunaSearch's ``ask`` and Tune's next experiment-state
    snapshot leaves a suggested trial RUNNING in the journal; the restored searcher does not know it,
    so nothing would ever finish it. Once ``fit`` returns no trial of this study runs, so any RUNNING
    one is such an orphan (one study is driven by one command at a time).
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    journal = directory / "optuna.journal"
    if not journal.exists():
        return 0
    study = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in orphans:
        study.tell(t.number, state=TrialState.FAIL)
    return len(orphans)


def parse_scales(items: Sequence[str]) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """['anchor=0.5,1,2', 'separate=1,2'] -> (('anchor', (0.5, 1.0, 2.0)), ('separate', (1.0, 2.0)))."""
    out = []
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--scale: expected NAME=V1,V2,..., got {item!r}")
        try:
            nums = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise UsageError(f"--scale {name}: expected comma-separated numbers, got {values!r}") from None
        if not nums or any(not (v >= 0 and v < float("inf")) for v in nums):
            raise UsageError(f"--scale {name}: multipliers must be finite and >= 0, got {values!r}")
        out.append((name.strip(), nums))
    return tuple(out)
