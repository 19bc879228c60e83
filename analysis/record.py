"""The study record: what a study directory holds, and the one rule for a trial's state.

``tune`` writes studies through this module and ``analysis`` reads them through it, so the file
names, the format id and the state rule have one owner. A study directory::

    STORAGE/NAME/
      study.json            what was asked for (kind, settings, objectives, space, the resolved
                            experiment) -- written first, checked on every resume
      optuna.journal        searches: the Optuna study (append-only; optuna-dashboard can watch it)
      trials/0007/          cohort searches (``"layout": "cohort"``): one directory per configuration,
                            named by its Optuna trial number, whichever Ray trial trained it:
                            params.json, result.json (one JSON line per validation), seeds.csv
                            (per-seed finals), dopesheet.csv, experiment.yaml, population.pt (its
                            trained models), error.txt (if all its seeds diverged)
      trials/0007/race-1/   seed racing (``--race-seeds``): the configuration on race block 1's seeds,
                            the same files; the configuration's values are over all its finished blocks
      validation/1000-1063/ ``excolor validate``: validation.json (seeds, trials, the hand schedule's
                            trial) and one record directory per validated trial, as in trials/
      train_*/              one directory per Ray trial (Ray's own: params.json, result.json,
                            progress.csv, checkpoint_*/); in sweeps and older searches also the
                            configuration's record, with the same files as above
      tuner.pkl, experiment_state-*.json, searcher-state-*   Ray Tune's own state (pickles: never
                            opened by analysis; cohort searches never restore from them)

A trial's state follows one rule (``trial_state``): the last complete line of result.json has
``"final": true`` -> ``done``; else error.txt exists -> ``failed``; else some line was reported ->
``running`` (or interrupted); else ``pending``. It looks only at files, so a running, interrupted
or copied study reads the same way.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from excolor.limits import RECORD_LIMIT
from excolor.readers import JsonError, UnreadableText, load_json_file, read_bytes

__all__ = [
    "COHORT_LAYOUT",
    "DOPESHEET_FILE",
    "ERROR_FILE",
    "EXPERIMENT_FILE",
    "JOURNAL_FILE",
    "PARAMS_FILE",
    "POPULATION_FILE",
    "RACE_PREFIX",
    "RESULT_FILE",
    "SEEDS_FILE",
    "STATES",
    "STUDY_FILE",
    "STUDY_FORMAT",
    "TRIALS_DIR",
    "VALIDATION_DIR",
    "VALIDATION_FILE",
    "is_cohort_study",
    "race_record_dir",
    "race_record_dirs",
    "read_json_lines",
    "read_reports",
    "read_study_record",
    "trial_directories",
    "trial_record_dir",
    "trial_state",
    "write_study_record",
]

STUDY_FILE = "study.json"
STUDY_FORMAT = "excolor.study/1"
JOURNAL_FILE = "optuna.journal"
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
SEEDS_FILE = "seeds.csv"
DOPESHEET_FILE = "dopesheet.csv"
EXPERIMENT_FILE = "experiment.yaml"
POPULATION_FILE = "population.pt"
TRIALS_DIR = "trials"
VALIDATION_DIR = "validation"
VALIDATION_FILE = "validation.json"
COHORT_LAYOUT = "cohort"
RACE_PREFIX = "race-"
STATES = ("done", "running", "failed", "pending")
KINDS = ("sweep", "search")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _integers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_FIELD_SHAPES = (
    ("name", lambda v: isinstance(v, str), "a string"),
    ("objectives", _strings, "a list of objective names"),
    ("constraints", _strings, "a list of constraints such as 'recon<=2e-05'"),
    ("seeds", _integers, "a list of seeds"),
    ("trials", _count, "a number of trials"),
    ("steps", _count, "a number of steps"),
    ("experiment", lambda v: isinstance(v, dict), "an experiment (a JSON object)"),
    ("space", lambda v: isinstance(v, dict), "a search space description (a JSON object)"),
)
"""study.json fields read by analysis and tune, with the shape each must have (null allowed)."""


def trial_state(last: Mapping[str, Any] | None, *, failed: bool) -> str:
    """The state of a trial from its last report and whether it left an error.txt.

    >>> trial_state({"final": True}, failed=True), trial_state({"step": 150}, failed=False)
    ('done', 'running')
    >>> trial_state({"final": "yes"}, failed=True), trial_state(None, failed=False)
    ('failed', 'pending')
    """
    if last and last.get("final") is True:
        return "done"
    if failed:
        return "failed"
    return "running" if last else "pending"


def read_study_record(directory: Path) -> dict[str, Any]:
    """``study.json`` of ``directory``, checked for form; AnalysisError (one line) otherwise."""
    if not directory.exists():
        raise AnalysisError(f"{directory} does not exist")
    if not directory.is_dir():
        raise AnalysisError(f"{directory} is not a directory (expected a study directory)")
    path = directory / STUDY_FILE
    if not path.is_file():
        raise AnalysisError(f"{directory} is not an excolor study (no {STUDY_FILE})")
    try:  # bounded: size, nesting depth, digits; NaN refused
        record = load_json_file(path, expect=dict)
    except (JsonError, UnreadableText) as err:
        raise AnalysisError(f"{path} is unreadable: {err}") from None
    if record.get("format") != STUDY_FORMAT:
        raise AnalysisError(f"{path} has format {record.get('format')!r}; this excolor reads {STUDY_FORMAT!r}")
    if record.get("kind") not in KINDS:
        raise AnalysisError(f"{path} has kind {record.get('kind')!r}; expected 'sweep' or 'search'")
    for key, ok, expected in _FIELD_SHAPES:
        if key in record and record[key] is not None and not ok(record[key]):
            raise AnalysisError(f"{path}: field {key!r} is {str(record[key])[:60]!r}; expected {expected}")
    return record


def write_study_record(directory: Path, record: Mapping[str, Any]) -> None:
    """Write ``study.json`` atomically (a temporary file renamed): never half a record."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STUDY_FILE
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{STUDY_FILE}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({**record, "format": STUDY_FORMAT}, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_lines(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int, int]:
    """(first report, last report, number of reports, unreadable lines) of a result.json.

    Only the first and last complete lines are decoded: a 1,000-trial study loads in well under a
    second. A line being written when the copy was taken is skipped and counted.
    """
    lines = _report_lines(path)
    bad = 0
    last = None
    for line in reversed(lines):
        last = _decode_report(line)
        if last is not None:
            break
        bad += 1
    first = None
    for line in lines:
        first = _decode_report(line)
        if first is not None:
            break
    return first, last, len(lines) - bad, bad


def read_reports(path: Path) -> list[dict[str, Any]]:
    """Every complete report of a result.json, in order (unreadable lines skipped); [] without one."""
    return [r for r in map(_decode_report, _report_lines(path)) if r is not None]


def _report_lines(path: Path) -> list[bytes]:
    """The non-blank lines of a result.json, read within ``RECORD_LIMIT``; [] if it cannot be read."""
    try:
        return [ln for ln in read_bytes(path, limit=RECORD_LIMIT).splitlines() if ln.strip()]
    except (OSError, UnreadableText):
        return []


def _decode_report(line: bytes) -> dict[str, Any] | None:
    """One report line as a dict; None for a partial, malformed or non-object line."""
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def is_cohort_study(record: Mapping[str, Any]) -> bool:
    """A study whose configurations are recorded one per directory in ``trials/`` (cohort searches).

    Older studies (and sweeps) record one configuration per Ray trial directory.
    """
    return record.get("layout") == COHORT_LAYOUT


def trial_record_dir(directory: Path, number: int) -> Path:
    """Where configuration ``number`` (its Optuna trial number) of a cohort study is recorded.

    >>> trial_record_dir(Path("runs/demo"), 7).as_posix()
    'runs/demo/trials/0007'
    """
    return directory / TRIALS_DIR / f"{number:04d}"


def race_record_dir(directory: Path, number: int, block: int) -> Path:
    """Where configuration ``number``'s race block ``block`` (1, 2, ...) is recorded.

    >>> race_record_dir(Path("runs/demo"), 7, 2).as_posix()
    'runs/demo/trials/0007/race-2'
    """
    return trial_record_dir(directory, number) / f"{RACE_PREFIX}{block}"


def race_record_dirs(trial_dir: Path) -> list[Path]:
    """A configuration's race-block directories, in block order (any state)."""
    found = []
    for p in trial_dir.glob(f"{RACE_PREFIX}*") if trial_dir.is_dir() else ():
        suffix = p.name[len(RACE_PREFIX) :]
        if p.is_dir() and suffix.isdigit() and suffix == str(int(suffix)):
            found.append((int(suffix), p))
    return [p for _, p in sorted(found)]


def trial_directories(directory: Path) -> list[Path]:
    """The study's trial directories (those with a params.json), sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_dir() and (p / PARAMS_FILE).exists())
