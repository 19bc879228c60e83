"""What defines a study: ``StudySpec``, saved as its record (``study.json``) and checked on every rerun.

A rerun of the same command resumes the study; a different command under the same name is
refused with the settings that differ. The record's format and file names belong to
``analysis.record``; this module decides what a study *is*.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.errors import AnalysisError
from analysis.objectives import DEFAULT_OBJECTIVES
from analysis.record import STUDY_FILE, STUDY_FORMAT, read_study_record, write_study_record
from tune.errors import UsageError

if TYPE_CHECKING:
    pass

__all__ = ["LOCK_FILE", "SAMPLERS", "StudySpec", "check_existing", "check_restorable", "study_lock", "write_record"]

SAMPLERS = ("tpe", "nsga2", "gp", "random")
"""Optuna samplers a search can use (``--sampler``)."""

# Settings that may change between runs of one study: a resumed study may move to another
# machine or device, log differently or run more trials at once. A cohort search may also grow
# (--trials, --race-seeds) and train in other cohort sizes: the journal and the records, not the
# Ray run, are its record.
_MAY_CHANGE = {
    "space",
    "wandb",
    "max_concurrent",
    "checkpoint_every_s",
    "device",
    "engine",
    "gpus_per_trial",
    "cube_metrics",
}
_MAY_CHANGE_IN_COHORT_SEARCH = {"trials", "cohort", "max_failures", "cpus_per_trial", "race_seeds"}


@dataclass(frozen=True)
class StudySpec:
    """Everything that defines a study; saved as ``study.json`` and checked on resume.

    ``hidden`` and ``stream`` repeat the resolved experiment's values so that records made before
    experiments were recorded still compare on resume.
    """

    kind: str  # 'sweep' | 'search'
    name: str
    storage: str  # absolute path
    seeds: tuple[int, ...]
    seeds_per_trial: int
    hidden: int | None = None
    steps: int | None = None  # every trial's schedule stretched to this many steps
    stream: str | None = None
    trials: int | None = None  # search
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES  # search
    sampler: str = "tpe"
    sampler_seed: int | None = 0  # None: drawn once when the study is made, then recorded
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
    engine: str = "torch"  # excolor.train.ENGINES: how, not what (results agree to float tolerance)
    gpus_per_trial: float = 0.0
    constraints: tuple[str, ...] = ()  # search: bounds on objectives, e.g. 'recon<=2e-05'
    layout: str | None = None  # 'cohort': configurations recorded in trials/<number>/ (analysis.record)
    cohort: int | None = None  # configurations per Ray trial (None: sized to the cluster)
    race_seeds: int = 0  # cohort search: seed racing's budget in model trainings (tune.race)
    cube_metrics: bool = True  # score every seed on the loss cube as it finishes (a search: off by default)

    @property
    def directory(self) -> Path:
        return Path(self.storage) / self.name

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "format": STUDY_FORMAT}

    def seed_groups(self) -> list[list[int]]:
        k = self.seeds_per_trial
        return [list(self.seeds[i : i + k]) for i in range(0, len(self.seeds), k)]

    def total_trials(self) -> int:
        """Trials the study asks for: a search's ``trials``; a sweep's grid size x seed groups."""
        if self.kind == "search":
            return int(self.trials or 0)
        n = len(self.seed_groups())
        for _, values in self.scales:
            n *= len(values)
        return n


def check_existing(spec: StudySpec) -> StudySpec | None:
    """The spec to run if the study exists (resume), None if it is new; UsageError if it differs.

    A rerun inherits what the first run decided: the drawn sampler seed, and the layout of a
    search made before cohorts (one configuration per Ray trial, resumed the old way).
    """
    directory = spec.directory
    if not (directory / STUDY_FILE).exists():
        if directory.exists() and any(p.name != LOCK_FILE for p in directory.iterdir()):
            raise UsageError(f"{directory} exists and is not an excolor study (no {STUDY_FILE}); use another --name")
        return None
    try:
        old = read_study_record(directory)
    except AnalysisError as err:
        raise UsageError(f"{err}; refusing to touch this directory") from None
    if spec.sampler_seed is None:
        spec = replace(spec, sampler_seed=old.get("sampler_seed"))
    if old.get("layout") != spec.layout:  # a search made before cohorts: finished as it was made
        spec = replace(spec, layout=old.get("layout"), cohort=old.get("cohort"))
    record = spec.record()
    from excolor.experiments import ExperimentError, from_dict, preset, to_dict

    if "experiment" not in old:  # a study made before experiment files: it ran the Ex 2.9.1 preset
        ran = preset().with_model(hidden=int(old.get("hidden") or 16))
        old["experiment"] = to_dict(replace(ran, stream=old.get("stream") or "hash"))
    else:  # read as today's files are (older field names such as model.k_codec included)
        try:
            old["experiment"] = to_dict(from_dict(old["experiment"], source=f"{directory / STUDY_FILE} experiment"))
        except ExperimentError as err:
            raise UsageError(f"{err}; refusing to touch this directory") from None
    for key in ("layout", "cohort"):  # records made before cohorts
        old.setdefault(key, None)
    old.setdefault("constraints", [])
    ignored = _MAY_CHANGE | (_MAY_CHANGE_IN_COHORT_SEARCH if spec.layout == "cohort" else set())
    diffs = [k for k in record if k not in ignored and json.dumps(old.get(k)) != json.dumps(record[k])]
    if diffs:
        shown = ", ".join(_difference(k, old.get(k), record[k]) for k in diffs[:4])
        raise UsageError(
            f"{directory} already holds a different study ({shown}); use another --name, or rerun "
            "the original command to resume it"
        )
    return spec


def _difference(key: str, old: Any, new: Any) -> str:
    if key == "experiment" and isinstance(old, dict) and isinstance(new, dict):
        fields = [k for k in new if json.dumps(old.get(k)) != json.dumps(new[k])]
        return f"experiment: {old.get('name')!r} -> {new.get('name')!r} (differs in {', '.join(fields)})"
    return f"{key}: {old!r} -> {new!r}"


_RAY_STATE = ("tuner.pkl", "trainable.pkl", "experiment_state-*.json", "searcher-state-*.pkl", "*.pkl")


def check_restorable(directory: Path) -> None:
    """Refuse to let Ray unpickle a study's state unless the study and its state files are the user's own.

    Only studies made before cohorts resume through ``Tuner.restore``, which unpickles ``tuner.pkl``
    and the searcher's state: running code from the directory. A directory that another user owns,
    or whose state files another user could have written, is refused (the trust boundary, README).
    """
    uid = os.getuid()
    paths = [directory] + sorted({p for pattern in _RAY_STATE for p in directory.glob(pattern)})
    for path in paths:
        st = path.lstat()
        if path.is_symlink() or st.st_uid != uid or st.st_mode & 0o022:
            why = (
                "is a symbolic link"
                if path.is_symlink()
                else f"belongs to uid {st.st_uid}, not you ({uid})"
                if st.st_uid != uid
                else "is writable by other users"
            )
            raise UsageError(
                f"{path} {why}: resuming this study (made before cohorts) would unpickle Ray's state from it, "
                "and excolor resumes only from files that are yours alone; read it with `excolor status` "
                "or `excolor report` (they never unpickle), or start a new study"
            )


LOCK_FILE = ".excolor.lock"
"""Held (``flock``) by the one command that runs the study; the kernel drops it when that process dies."""


@contextlib.contextmanager
def study_lock(spec: StudySpec) -> Iterator[None]:
    """One driver per study: a second ``excolor search|sweep`` on the same study is refused at once.

    The lock is an advisory ``flock`` on ``STUDY/.excolor.lock``: a driver that dies (SIGKILL
    included) releases it, so a stale lock cannot block a rerun.
    """
    spec.directory.mkdir(parents=True, exist_ok=True)
    path = spec.directory / LOCK_FILE
    with path.open("a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UsageError(
                f"{spec.directory} is being run by {holder}; one command runs a study at a time "
                "(wait for it, or stop it and rerun)"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"excolor (pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_record(spec: StudySpec) -> StudySpec:
    """Write the study's record (``study.json``), the first file of every study; returns the spec as recorded.

    A search without ``--sampler-seed`` draws its seed here, once: two studies do not retrace each other.
    """
    if spec.kind == "search" and spec.sampler_seed is None:
        spec = replace(spec, sampler_seed=secrets.randbelow(2**31))
    write_study_record(spec.directory, spec.record())
    return spec
