"""Read a study directory without Ray: trial states, best score, Pareto front (``excolor status``).

Works while the study runs, after it ended, and on a copy synced from another machine: it reads
only ``study.json``, each trial's ``params.json`` / ``result.json`` / ``error.txt`` and, for
searches, the Optuna journal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tune.errors import UsageError

__all__ = ["StudyStatus", "TrialRecord", "format_front", "pareto_mask", "read_status"]


@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    directory: Path
    state: str  # 'done' | 'running' | 'failed' | 'pending'
    params: dict[str, Any]
    last: dict[str, Any]  # last reported result (empty if none)
    error: str | None


@dataclass(frozen=True)
class StudyStatus:
    directory: Path
    record: dict[str, Any]
    trials: list[TrialRecord]
    optuna_states: dict[str, int] | None

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)


def _last_json_line(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return {}
    for line in reversed(lines):  # a line being written may be incomplete
        try:
            value = json.loads(line)
            if isinstance(value, dict):
                return value
        except json.JSONDecodeError:
            continue
    return {}


def read_status(directory: str | Path) -> StudyStatus:
    path = Path(directory).expanduser().resolve()
    record_path = path / "study.json"
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory")
    if not record_path.exists():
        raise UsageError(f"{path} is not an excolor study (no study.json)")
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{record_path} is unreadable: {err}") from None
    trials = []
    for d in sorted(p for p in path.iterdir() if p.is_dir() and (p / "params.json").exists()):
        try:
            params = json.loads((d / "params.json").read_text())
        except (OSError, json.JSONDecodeError):
            params = {}
        last = _last_json_line(d / "result.json")
        error = None
        if (d / "error.txt").exists():
            error = (d / "error.txt").read_text(errors="replace").strip().splitlines()[-1:] or ["failed"]
            error = error[0]
        state = "done" if last.get("final") else "failed" if error else "running" if last else "pending"
        trials.append(TrialRecord(last.get("trial_id", d.name), d, state, params, last, error))
    states = None
    journal = path / "optuna.journal"
    if journal.exists():
        states = _optuna_states(journal, record.get("name", ""))
    return StudyStatus(path, record, trials, states)


def _optuna_states(journal: Path, name: str) -> dict[str, int] | None:
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))
    except Exception:  # a journal being written or from another Optuna: status still works without it
        return None
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def pareto_mask(points: np.ndarray, /, *, maximise: list[bool]) -> np.ndarray:
    """Non-dominated rows of (n, k) finite points; exact ties all stay on the front (moocore)."""
    import moocore

    return np.asarray(moocore.is_nondominated(points, maximise=maximise, keep_weakly=True), dtype=bool)


FRONT_COLUMNS = ("score_mean", "score_q10", "val_recon_mean", "diverged_frac", "collapsed_frac")
"""Always shown; the study's other objective columns (e.g. ``val_anchor_mean``) come before the fractions."""


def front(status: StudyStatus, objectives: list[tuple[str, str]]) -> list[TrialRecord]:
    done = [t for t in status.trials if t.state == "done" and all(m in t.last for m, _ in objectives)]
    if not done:
        return []
    points = np.array([[float(t.last[m]) for m, _ in objectives] for t in done])
    mask = pareto_mask(points, maximise=[mode == "max" for _, mode in objectives])
    chosen = [t for t, k in zip(done, mask) if k]
    return sorted(chosen, key=lambda t: -float(t.last.get("score_mean", 0.0)))


def format_front(trials: list[TrialRecord], *, label: str = "trial", extra: Sequence[str] = ()) -> str:
    if not trials:
        return "(no finished trials yet)"
    columns = [*FRONT_COLUMNS[:3], *(c for c in extra if c not in FRONT_COLUMNS), *FRONT_COLUMNS[3:]]
    width = max(15, *(len(c) for c in columns))
    header = f"{label:>28}  " + "  ".join(f"{c:>{width}}" for c in columns)
    rows = [header]
    for t in trials:
        cells = "  ".join(f"{float(t.last.get(c, float('nan'))):>{width}.4f}" for c in columns)
        rows.append(f"{t.trial_id[-28:]:>28}  {cells}")
    return "\n".join(rows)


def summary(status: StudyStatus, objectives: list[tuple[str, str]]) -> str:
    r = status.record
    expected = r.get("trials") if r.get("kind") == "search" else None
    lines = [
        f"study {r.get('name')!r} ({r.get('kind')}) in {status.directory}",
        f"trials: {status.count('done')} done, {status.count('running')} running, {status.count('failed')} failed, "
        f"{status.count('pending')} pending" + (f" (of {expected} requested)" if expected else ""),
    ]
    if status.optuna_states is not None:
        lines.append("optuna: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(status.optuna_states.items())))
    done = [t for t in status.trials if t.state == "done"]
    if done:
        best = max(done, key=lambda t: float(t.last.get("score_mean", -1.0)))
        lines.append(f"best mean score: {float(best.last['score_mean']):.4f} ({best.trial_id})")
    pf = front(status, objectives)
    lines.append(f"Pareto front ({' / '.join(f'{mode} {m}' for m, mode in objectives)}): {len(pf)} trials")
    lines.append(format_front(pf, extra=[m for m, _ in objectives]))
    for t in status.trials:
        if t.state == "failed":
            lines.append(f"failed {t.trial_id}: {t.error}")
    return "\n".join(lines)
