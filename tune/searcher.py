"""The Optuna side of a search: sampler, the Tune searcher over the journal, and journal repair.

The Optuna journal in the study directory is the record of a search: one Optuna trial per
configuration, the hand schedule first. optuna-dashboard can watch it while the search runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from analysis.objectives import objective
from analysis.record import JOURNAL_FILE

if TYPE_CHECKING:
    from pathlib import Path

    from tune.space import SearchSpace
    from tune.spec import StudySpec

__all__ = [
    "fail_orphaned_trials",
    "journal_storage",
    "journal_trials",
    "make_sampler",
    "make_searcher",
    "run_seed",
]


def make_sampler(name: str, seed: int) -> Any:
    """The Optuna sampler ``name`` ('tpe', 'nsga2', 'gp' or 'random'), seeded.

    Constraints reach the samplers as each told trial's own (``Trial.set_constraint``); tpe, nsga2
    and gp use them, random ignores them.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _drop_cut_line(path: Path) -> None:
    """Cut a journal back to its last complete line.

    A write that a full disk (or a kill) cut off leaves a last line without its newline; Optuna
    skips it while it is last, but the next append would glue onto it and make the whole journal
    unreadable. The cut line never took effect, so dropping it loses nothing.
    """
    try:
        with path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            keep = 0
            step = 1 << 16
            end = size
            while end > 0 and not keep:  # the last newline, read backwards in blocks
                begin = max(0, end - step)
                f.seek(begin)
                block = f.read(end - begin)
                at = block.rfind(b"\n")
                keep = begin + at + 1 if at >= 0 else 0
                end = begin
            f.truncate(keep)
    except FileNotFoundError:
        return


def journal_storage(directory: Path) -> Any:
    """Optuna's journal storage on the study's ``optuna.journal`` (a cut-off last line dropped first)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    _drop_cut_line(directory / JOURNAL_FILE)
    return JournalStorage(JournalFileBackend(str(directory / JOURNAL_FILE)))


def journal_trials(directory: Path, name: str) -> int:
    """How many trials the study ``name`` holds in the directory's journal (0 without one)."""
    if not (directory / JOURNAL_FILE).is_file():
        return 0
    storage = journal_storage(directory)
    for study in storage.get_all_studies():
        if study.study_name == name:
            return len(storage.get_all_trials(study._study_id, deepcopy=False))
    return 0


def run_seed(sampler_seed: int, asked: int) -> int:
    """The sampler's seed for a run that finds ``asked`` trials in the journal.

    The first run uses the recorded seed. A rerun must not draw the first run's random parameters
    again (an extension or a resumed search would repeat its configurations): it seeds from the
    recorded seed and the journal's length, so each run is reproducible and draws anew.

    >>> run_seed(7, 0), run_seed(7, 12) != run_seed(7, 0), run_seed(7, 12) == run_seed(7, 12)
    (7, True, True)
    """
    if asked == 0:
        return sampler_seed
    return (sampler_seed * 1_000_003 + asked * 7_919 + 1) % 2**32


def make_searcher(spec: StudySpec, space: SearchSpace) -> Any:
    """Ray's multi-objective ``OptunaSearch`` over the journal, the hand schedule enqueued first.

    NOTE(excolor): metric and mode lists go on the searcher only; a single metric on TuneConfig
    would silently make the study single-objective (architecture.md).
    """
    from ray.tune.search.optuna import OptunaSearch

    objectives = [objective(name) for name in spec.objectives]
    return OptunaSearch(
        space=space.distributions(),
        metric=[o.column for o in objectives],
        mode=[o.mode for o in objectives],
        points_to_evaluate=[space.reference_params()],  # every study is measured against the hand schedule
        sampler=make_sampler(spec.sampler, int(spec.sampler_seed or 0)),
        study_name=spec.name,
        storage=journal_storage(spec.directory),
    )


def fail_orphaned_trials(directory: Path, name: str) -> int:
    """Mark Optuna trials still RUNNING after the Tune run ended as FAIL; returns how many.

    NOTE(excolor): a driver killed between OptunaSearch's ``ask`` and Tune's next experiment-state
    snapshot leaves a suggested trial RUNNING in the journal; the restored searcher does not know it,
    so nothing would ever finish it. Once ``fit`` returns no trial of this study runs, so any RUNNING
    one is such an orphan (one study is driven by one command at a time).
    """
    import optuna
    from optuna.trial import TrialState

    if not (directory / JOURNAL_FILE).exists():
        return 0
    study = optuna.load_study(study_name=name, storage=journal_storage(directory))
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in orphans:
        study.tell(t.number, state=TrialState.FAIL)
    return len(orphans)
