"""A study directory as tidy pandas tables, read from plain files: no Ray, nothing unpickled, nothing written.

What a study stores is the record (style.md §12); every table here is derived from it:

- ``study.json``                 what was asked for (kind, seeds, objectives, search space) and the
                                 resolved experiment (``"experiment"``; absent before experiments
                                 were data: those studies ran Ex 2.9.1 at study.json's ``hidden``)
- ``<trial>/params.json``        the trial's configuration
- ``<trial>/experiment.yaml``    the trial's resolved experiment (its schedule, its hidden width)
- ``<trial>/result.json``        one JSON line per report; the last one says where the trial is
- ``<trial>/error.txt``          present when the trial failed; its last line is the reason
- ``<trial>/seeds.csv``          the final per-seed table
- ``optuna.journal``             searches: Optuna's append-only log (trial numbers, states, times)

File names, the format id and the trial-state rule belong to ``analysis.record`` (``tune``
writes through it). The rule only looks at files, so a study that is still running, was
interrupted, or was copied to another machine reads the same way. Ray's own files (``tuner.pkl``,
``*.pkl``) are never opened: they are pickles, i.e. code.

Reading the experiment record imports ``excolor`` (and with it torch, ~1.5 s once per process): the
objectives, the §9.10 rule and the model shape all depend on the experiment.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.aggregate import aggregate
from analysis.errors import AnalysisError
from analysis.objectives import (
    DEFAULT_OBJECTIVES,
    Constraint,
    Objective,
    experiment_objectives,
    parse_constraint,
    resolve_objectives,
)
from analysis.record import (
    ERROR_FILE,
    EXPERIMENT_FILE,
    JOURNAL_FILE,
    PARAMS_FILE,
    POPULATION_FILE,
    RESULT_FILE,
    SEEDS_FILE,
    STATES,
    STUDY_FILE,
    STUDY_FORMAT,
    TRIALS_DIR,
    is_cohort_study,
    race_record_dirs,
    read_json_lines,
    read_reports,
    read_study_record,
    trial_state,
)

if TYPE_CHECKING:
    from excolor.config import Experiment
    from excolor.dopesheet import Dopesheet

__all__ = ["STATES", "STUDY_FORMAT", "Study", "StudyCollection", "load_studies", "load_study", "trial_seeds"]


# Columns every trials table has, even an empty one, in this order (metrics and config follow).
_TRIAL_COLUMNS = [
    "study",
    "trial_id",
    "number",
    "directory",
    "state",
    "error",
    "hand",
    "n_seeds",
    "seeds",
    "race_blocks",
    "reports",
    "finished_at",
    "started_at",
    "completion_order",
    "optuna_number",
    "optuna_state",
    "optuna_complete",
]  # then the objective columns of the study's experiment
_SEED_KEYS = ["study", "trial_id", "state", "hand"]
# result.json keys that are Ray bookkeeping or have their own column.
_SKIP_KEYS = {"done", "should_checkpoint", "pid", "final", "trial_id", "config", "per_seed", "time_this_iter_s"}
_TRIAL_NAME = re.compile(r"^train_trial_([0-9a-f]+)_(\d+)")


@dataclass(frozen=True)
class Study:
    """One study, loaded.

    Attributes:
        directory: the study directory (absolute).
        record: ``study.json`` as a dict.
        experiment: the study's resolved experiment (``excolor.config.Experiment``): study.json's
            ``"experiment"``, or the Ex 2.9.1 preset for studies made before experiments were
            recorded; the model's hidden width is study.json's ``hidden``. A search may vary the
            schedule and the hidden width per trial: see ``trial_experiment``.
        trials: one row per trial: ``study``, ``trial_id``, ``number`` (Ray's trial counter),
            ``directory`` (the trial folder's name), ``state`` (one of ``STATES``), ``error``,
            ``hand`` (is the hand schedule), ``n_seeds``, ``seeds`` (all the seeds its values rest on),
            ``race_blocks`` (seed-racing blocks among them, cohort searches), ``reports`` (result lines),
            ``finished_at`` / ``started_at`` (UTC, from Ray's report timestamps), ``completion_order``
            (0, 1, ... over done trials; NaN otherwise), ``optuna_number`` / ``optuna_state``
            (searches), the column of every objective the experiment knows (``score_mean``,
            ``val_recon_mean``, ``val_<regularizer>_mean``, ``score_q10``; NaN when unreported), then
            the last report's other metrics (``val_recon_q10``, ``suppression_r_mean``, ...,
            ``time_total_s``, ``step``) and the configuration as ``config/<name>`` columns.
        seeds: one row per done trial × seed: ``study``, ``trial_id``, ``state``, ``hand``, the
            columns of the trial's seeds.csv (``seed``, ``score``, ``val_recon``, ...) and its
            ``config/*`` columns.
        optuna: searches: one row per Optuna trial (``number``, ``state``, ``value/<objective>``,
            ``param/<name>``, ``datetime_start``, ``datetime_complete``, ``fixed``); None for
            sweeps or when the journal cannot be read (see ``notes``).
        notes: what could not be read, in words (a half-written line, an unreadable journal).
    """

    directory: Path
    record: Mapping[str, Any]
    trials: pd.DataFrame
    seeds: pd.DataFrame
    optuna: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())
    experiment: Experiment = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def name(self) -> str:
        return str(self.record.get("name") or self.directory.name)

    @property
    def kind(self) -> str:
        return str(self.record.get("kind"))

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """The study's objectives from study.json (``score``, ``recon`` unless it says otherwise)."""
        return resolve_objectives(self.record.get("objectives") or DEFAULT_OBJECTIVES, self.experiment)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        """The study's constraints from study.json (e.g. ``recon<=2e-05``); infeasible trials are off every front."""
        raw = self.record.get("constraints") or ()
        if not isinstance(raw, (list, tuple)) or not all(isinstance(c, str) for c in raw):
            raise AnalysisError(f"{self.directory / STUDY_FILE} has constraints {raw!r}; expected a list of strings")
        return tuple(parse_constraint(c, self.experiment) for c in raw)

    @property
    def known_objectives(self) -> tuple[Objective, ...]:
        """Every objective the study's experiment knows (score, recon, validating regularizers, seed-robust ones)."""
        return experiment_objectives(self.experiment)

    @property
    def validating(self) -> tuple[str, ...]:
        """Names of the experiment's validating regularizers: each has a per-seed ``val_<name>`` column."""
        return tuple(r.name for r in self.experiment.regularizers if r.validates)

    @property
    def labels(self) -> tuple[str, ...]:
        """The experiment's data labels (``red``, ``vibrant``, ...): per-seed ``labels/n/<label>`` columns."""
        return tuple(self.experiment.data.labels)

    def trial_experiment(self, trial_id: str) -> Experiment:
        """The trial's resolved experiment: its experiment.yaml; else the study's with the trial's ``hidden``.

        Raises:
            AnalysisError: an unreadable or malformed experiment.yaml (naming the file).
        """
        from excolor.experiments import ExperimentError, parse_experiment

        path = self.trial_path(trial_id) / EXPERIMENT_FILE
        if path.is_file():
            try:
                return parse_experiment(path.read_text(encoding="utf-8"), source=str(path), root=path.parent)
            except (OSError, UnicodeDecodeError) as err:
                raise AnalysisError(f"{path} is unreadable: {err}") from None
            except (ExperimentError, ValueError, TypeError) as err:  # ExperimentError names file and field
                raise AnalysisError(f"{path} is not a valid experiment: {err}") from None
        rows = self.trials.loc[self.trials["trial_id"] == trial_id]
        hidden = rows["config/hidden"].iloc[0] if "config/hidden" in rows.columns and len(rows) else None
        if isinstance(hidden, (int, float, np.integer, np.floating)) and not pd.isna(hidden) and int(hidden) >= 1:
            return self.experiment.with_model(hidden=int(hidden))
        return self.experiment

    def counts(self) -> dict[str, int]:
        """Trials by state, every state present (zeros included)."""
        found = self.trials["state"].value_counts()
        return {s: int(found.get(s, 0)) for s in STATES}

    def done(self) -> pd.DataFrame:
        """The done trials, in completion order."""
        done = self.trials[self.trials["state"] == "done"]
        return done.sort_values("completion_order", kind="stable")

    def trial_path(self, trial_id: str) -> Path:
        rows = self.trials.loc[self.trials["trial_id"] == trial_id, "directory"]
        if rows.empty:
            raise AnalysisError(f"no trial {trial_id!r} in {self.directory}")
        return self.directory / str(rows.iloc[0])

    def dopesheet(self, trial_id: str) -> Dopesheet | None:
        """The trial's effective schedule (its dopesheet.csv), None if absent or unreadable."""
        from excolor.dopesheet import Dopesheet, DopesheetError

        path = self.trial_path(trial_id) / "dopesheet.csv"
        try:
            return Dopesheet.read(path) if path.is_file() else None
        except DopesheetError:
            return None

    def hand_dopesheet(self) -> Dopesheet:
        """The hand schedule at this study's length.

        The hand trial's own dopesheet.csv when there is one; otherwise the search space's base
        sheet from study.json (or the experiment's own sheet), stretched to ``steps`` as ``tune`` does.
        """
        from excolor.dopesheet import Dopesheet, DopesheetError

        for trial_id in self.trials.loc[self.trials["hand"].astype(bool), "trial_id"]:
            sheet = self.dopesheet(str(trial_id))
            if sheet is not None:
                return sheet
        space = self.record.get("space")
        sheet = self.experiment.dopesheet
        if isinstance(space, Mapping) and isinstance(space.get("base"), Mapping) and space["base"].get("csv"):
            with contextlib.suppress(DopesheetError):  # an unparsable base: the shipped sheet instead
                sheet = Dopesheet.parse(str(space["base"]["csv"]), source="study.json space base")
        steps = self.record.get("steps")
        if isinstance(steps, int) and steps >= 2 and steps != sheet.length:
            sheet = sheet.stretched(steps)
        return sheet

    def history(self, trial_id: str) -> pd.DataFrame:
        """The trial's reports during training: one row per validation, ``step`` and the values reported."""
        rows = [
            {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for r in read_reports(self.trial_path(trial_id) / RESULT_FILE)
            if not r.get("final") and isinstance(r.get("step"), (int, float))
        ]
        return pd.DataFrame(rows).sort_values("step", kind="stable").reset_index(drop=True) if rows else pd.DataFrame()

    def checkpoint(self, trial_id: str, seed: int | None = None) -> Path | None:
        """The trial's trained models: its ``population.pt`` (cohort studies) or latest
        ``checkpoint_*/population.pt``; None if it kept none.

        With ``seed``, the file that holds that seed's model: a raced seed's is in its race block's
        ``population.pt`` (``trials/NNNN/race-K/``).
        """
        if seed is not None:
            for d in race_record_dirs(self.trial_path(trial_id)):
                params = _read_json_object(d / PARAMS_FILE) or {}
                if seed in (params.get("seeds") or ()) and (d / POPULATION_FILE).is_file():
                    return d / POPULATION_FILE
        own = self.trial_path(trial_id) / POPULATION_FILE
        if own.is_file():
            return own
        best: tuple[int, Path] | None = None
        for d in self.trial_path(trial_id).glob("checkpoint_*"):
            path = d / "population.pt"
            suffix = d.name.removeprefix("checkpoint_")
            if suffix.isdigit() and path.is_file() and (best is None or int(suffix) > best[0]):
                best = (int(suffix), path)
        return None if best is None else best[1]


@dataclass(frozen=True)
class StudyCollection:
    """Several studies side by side: their tables concatenated, told apart by the ``study`` column."""

    studies: tuple[Study, ...]
    trials: pd.DataFrame
    seeds: pd.DataFrame


# --------------------------------------------------------------------------------- reading files


def _read_experiment(record_path: Path, record: Mapping[str, Any]) -> Experiment:
    """study.json's resolved experiment; Ex 2.9.1 for a study made before experiments were recorded.

    study.json's ``hidden`` (``--hidden``, applied to every trial) overrides the model's width.
    """
    from excolor.experiments import ExperimentError, from_dict, preset

    raw = record.get("experiment")
    try:
        experiment = preset("ex-2.9.1") if raw is None else from_dict(raw, root=record_path.parent)
    except ExperimentError as err:  # names the field at fault
        where = f"experiment.{err.field}" if err.field else "experiment"
        raise AnalysisError(f"{record_path} records a malformed experiment: {where}: {err.reason}") from None
    except (ValueError, TypeError) as err:
        raise AnalysisError(f"{record_path} records a malformed experiment: {err}") from None
    hidden = record.get("hidden")
    valid = isinstance(hidden, int) and not isinstance(hidden, bool) and hidden >= 1
    if raw is not None and hidden is not None and not valid:
        raise AnalysisError(f"{record_path} has hidden {hidden!r}; expected a positive integer or null")
    if valid and hidden != experiment.model.hidden:
        experiment = experiment.with_model(hidden=hidden)
    return experiment


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "failed (error.txt unreadable)"
    return lines[-1] if lines else "failed (empty error.txt)"


def _flatten(config: Mapping[str, Any], prefix: str = "config/") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = tuple(value)
        else:
            out[f"{prefix}{key}"] = value
    return out


def _seed_rows(trial_dir: Path, last: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """seeds.csv as columns of strings; the final report's ``per_seed`` when the CSV is missing."""
    path = trial_dir / SEEDS_FILE
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [r for r in reader if len(r) == len(header or ())]
    except (OSError, UnicodeDecodeError, csv.Error):
        header, rows = None, []
    if header and rows:
        return {name: [r[j] for r in rows] for j, name in enumerate(header)}
    per_seed = last.get("per_seed")
    if isinstance(per_seed, Mapping) and per_seed.get("seed"):
        n = len(per_seed["seed"])
        cols = {k: [str(x) for x in v] for k, v in per_seed.items() if isinstance(v, list) and len(v) == n}
        if "seed" in cols:
            cols["seed"] = [str(int(float(s))) for s in cols["seed"]]
        return cols
    return None


def _finished_races(trial_dir: Path) -> list[dict[str, list[str]]]:
    """The per-seed columns of a configuration's finished race blocks (``trials/NNNN/race-K``)."""
    blocks = []
    for d in race_record_dirs(trial_dir):
        _, last, _, _ = read_json_lines(d / RESULT_FILE)
        cols = _seed_rows(d, last) if last and last.get("final") is True else None
        if cols:
            blocks.append(cols)
    return blocks


def _concat_columns(parts: Sequence[Mapping[str, list[str]]]) -> dict[str, list[str]]:
    """Seed columns of several blocks, one after another (a column a block lacks is blank there)."""
    names: list[str] = []
    for part in parts:
        names += [c for c in part if c not in names]
    out: dict[str, list[str]] = {c: [] for c in names}
    for part in parts:
        n = len(next(iter(part.values())))
        for c in names:
            out[c] += part.get(c, [""] * n)
    return out


def _seed_arrays(cols: Mapping[str, list[str]]) -> dict[str, np.ndarray]:
    """Seed columns (strings from CSV) as typed arrays, ready for ``analysis.aggregate``."""
    return {
        c: _typed(pd.Series(v).replace("", np.nan) if c != "seed" else pd.Series(v)).to_numpy() for c, v in cols.items()
    }


def trial_seeds(trial_dir: Path) -> dict[str, np.ndarray] | None:
    """A finished configuration's per-seed results over all its seeds: its own and its finished race blocks.

    None while the configuration has no final per-seed table.
    """
    _, last, _, _ = read_json_lines(trial_dir / RESULT_FILE)
    own = _seed_rows(trial_dir, last) if last and last.get("final") is True else None
    if own is None:
        return None
    return _seed_arrays(_concat_columns([own, *_finished_races(trial_dir)]))


def _raced(row: dict[str, Any], own: dict[str, list[str]], races: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """The row's values re-aggregated over its own and its race blocks' seeds; returns all seed columns."""
    cols = _concat_columns([own, *races])
    arrays = _seed_arrays(cols)
    diverged = np.asarray(arrays.get("diverged", np.zeros(len(arrays["seed"]))), dtype=bool)
    row.update(aggregate({k: v for k, v in arrays.items() if k not in ("seed", "diverged")}, diverged=diverged))
    row["seeds"] = tuple(int(s) for s in arrays["seed"])
    row["n_seeds"] = len(row["seeds"])
    row["race_blocks"] = len(races)
    return cols


def _typed(column: pd.Series) -> pd.Series:
    """Strings from CSV -> bool, int or float where every value allows it."""
    values = set(column.unique())
    if values <= {"True", "False"}:
        return column == "True"
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def _utc(seconds: Any) -> pd.Timestamp | None:
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds):
        return pd.Timestamp(float(seconds), unit="s", tz="UTC")
    return None


# --------------------------------------------------------------------------------- trials


def _read_trial(trial_dir: Path, study: str, record: Mapping[str, Any]) -> tuple[dict[str, Any], Any, list[str]]:
    notes: list[str] = []
    params = _read_json_object(trial_dir / PARAMS_FILE)
    first, last, reports, bad = read_json_lines(trial_dir / RESULT_FILE)
    if bad:
        notes.append(f"{trial_dir.name}/result.json: {bad} unreadable line(s) skipped")
    if params is None:
        params = dict(last.get("config") or {}) if last else {}
        if (trial_dir / PARAMS_FILE).exists():
            notes.append(f"{trial_dir.name}/params.json is unreadable; config taken from result.json")
    last = last or {}
    error = _last_line(trial_dir / ERROR_FILE) if (trial_dir / ERROR_FILE).exists() else None
    state = trial_state(last, failed=error is not None)

    match = _TRIAL_NAME.match(trial_dir.name)
    trial_id = str(last.get("trial_id") or (match.group(1) if match else trial_dir.name))
    if "seeds" in params and isinstance(params["seeds"], list):
        seeds = tuple(int(s) for s in params["seeds"])
    else:  # a search: every trial trains the study's first seed group
        k = int(record.get("seeds_per_trial") or len(record.get("seeds") or ()))
        seeds = tuple(int(s) for s in (record.get("seeds") or ())[:k])
    started = None
    if first:
        t0 = first.get("timestamp")
        dt = first.get("time_this_iter_s")
        if isinstance(t0, (int, float)) and isinstance(dt, (int, float)):
            started = _utc(t0 - dt)
    row: dict[str, Any] = {
        "study": study,
        "trial_id": trial_id,
        "number": int(match.group(2)) if match else -1,
        "directory": trial_dir.name,
        "state": state,
        "error": error,
        "n_seeds": len(seeds),
        "seeds": seeds,
        "race_blocks": 0,
        "reports": reports,
        "finished_at": _utc(last.get("timestamp")) if state == "done" else None,
        "started_at": started,
    }
    for key, value in last.items():
        if key not in _SKIP_KEYS and key not in row and (value is None or isinstance(value, (int, float, str))):
            row[key] = value
    row.update(_flatten({k: v for k, v in params.items() if k != "seeds"}))
    seed_cols = _seed_rows(trial_dir, last) if state == "done" else None
    races = _finished_races(trial_dir) if seed_cols else []
    if seed_cols and races:  # seed racing: the values rest on every seed the configuration was trained on
        seed_cols = _raced(row, seed_cols, races)
    return row, seed_cols, notes


def _unflatten_config(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``config/*`` columns of a row as the trial's parameters (``config/scale/anchor`` -> ``scale``)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith("config/"):
            *parents, leaf = key.removeprefix("config/").split("/")
            node = out
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
    return out


def _params_key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable key equal for parameter dicts that agree to 12 significant digits."""
    out = []
    for k, v in sorted(params.items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((k, float(f"{float(v):.12g}")))
        else:
            out.append((k, v))
    return tuple(out)


def _described_reference(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The hand schedule as a point of the search space, from study.json's description of the space."""
    space = record.get("space")
    if not isinstance(space, Mapping):
        return None
    out: dict[str, Any] = {}
    for entry in [*(space.get("values") or []), *(space.get("times") or [])]:
        if isinstance(entry, Mapping) and "name" in entry and "reference" in entry:
            out[str(entry["name"])] = entry["reference"]
    hidden = space.get("hidden")
    if isinstance(hidden, Mapping) and "reference" in hidden:
        out["hidden"] = hidden["reference"]
    return out or None


def _matching(params: list[dict[str, Any]], reference: Mapping[str, Any] | None) -> list[bool]:
    if reference is None:
        return [False] * len(params)
    key = _params_key(reference)
    return [_params_key({k: v for k, v in p.items() if k != "seeds"}) == key for p in params]


def _mark_hand(
    trials: pd.DataFrame, params: list[dict[str, Any]], record: Mapping[str, Any], experiment: Experiment
) -> pd.Series:
    """Which trials run the hand schedule.

    Sweeps: every scale multiplier is 1 (or there is none). Searches: the parameters equal the
    space's reference point as study.json describes it; failing that, Optuna's trial 0 (tune always
    enqueues the reference point first). Both are read from the record, never rebuilt from code.
    """
    if record.get("kind") == "sweep":
        hand = []
        for p in params:
            scale = p.get("scale") or {}
            ok = isinstance(scale, Mapping) and all(
                isinstance(v, (int, float)) and float(v) == 1.0 for v in scale.values()
            )
            hand.append(ok)
        return pd.Series(hand, index=trials.index, dtype=bool)
    found = _matching(params, _described_reference(record))
    if not any(found):
        found = (trials["optuna_number"] == 0).fillna(False).astype(bool).tolist()
    return pd.Series(found, index=trials.index, dtype=bool)


# --------------------------------------------------------------------------------- Optuna


def _read_optuna(directory: Path, record: Mapping[str, Any]) -> tuple[pd.DataFrame | None, str | None]:
    path = directory / JOURNAL_FILE
    if not path.is_file():
        return None, (
            "no optuna.journal: trial states from Ray's files only" if record.get("kind") == "search" else None
        )
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = JournalStorage(JournalFileBackend(str(path)))
        names = [s.study_name for s in storage.get_all_studies()]
        name = record.get("name") if record.get("name") in names else (names[0] if len(names) == 1 else None)
        if name is None:
            return None, f"optuna.journal holds studies {names}, none named {record.get('name')!r}"
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except Exception as err:  # any failure of a foreign file format: the Ray files still tell the story
        return None, f"optuna.journal unreadable ({type(err).__name__}: {err}); trial states from Ray's files only"
    objectives = list(record.get("objectives") or [])
    rows = []
    for t in trials:
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete,
            "fixed": "fixed_params" in t.system_attrs,
        }
        values = t.values or []
        names_ = objectives if len(objectives) == len(values) else [str(i) for i in range(len(values))]
        row.update({f"value/{n}": v for n, v in zip(names_, values)})
        row.update({f"param/{k}": v for k, v in t.params.items()})
        row["_key"] = _params_key(t.params)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["number", "state", "datetime_start", "datetime_complete"])
    return frame, None


def _join_optuna(trials: pd.DataFrame, params: list[dict[str, Any]], optuna_frame: pd.DataFrame) -> None:
    """Give each Ray trial its Optuna trial, matched by parameters (each Optuna trial used once)."""
    if "_key" not in optuna_frame.columns:
        return
    free: dict[Any, list[int]] = {}
    for pos, key in enumerate(optuna_frame["_key"]):
        free.setdefault(key, []).append(pos)
    numbers: list[Any] = []
    states: list[Any] = []
    completes: list[Any] = []
    for p in params:
        slots = free.get(_params_key({k: v for k, v in p.items() if k != "seeds"}))
        if slots:
            row = optuna_frame.iloc[slots.pop(0)]
            numbers.append(int(row["number"]))
            states.append(row["state"])
            completes.append(row["datetime_complete"])
        else:
            numbers.append(None)
            states.append(None)
            completes.append(None)
    trials["optuna_number"] = pd.array(numbers, dtype="Int64")
    trials["optuna_state"] = states
    trials["optuna_complete"] = pd.to_datetime(pd.Series(completes, index=trials.index, dtype=object))


def _join_optuna_by_number(trials: pd.DataFrame, optuna_frame: pd.DataFrame) -> None:
    """Cohort studies: each configuration's directory is named by its Optuna trial number."""
    by_number = optuna_frame.set_index("number")
    numbers = trials["number"].astype(int)
    known = numbers.isin(by_number.index)
    trials["optuna_number"] = pd.array([int(n) if k else None for n, k in zip(numbers, known)], dtype="Int64")
    trials["optuna_state"] = [by_number.at[n, "state"] if k else None for n, k in zip(numbers, known)]
    completes = [by_number.at[n, "datetime_complete"] if k else None for n, k in zip(numbers, known)]
    trials["optuna_complete"] = pd.to_datetime(pd.Series(completes, index=trials.index, dtype=object))


def _completion_order(trials: pd.DataFrame) -> pd.Series:
    """0, 1, ... over done trials in the order they finished; NaN for the others.

    Optuna's completion times (microseconds) when every done trial has one, else Ray's report
    timestamps (whole seconds) with Ray's trial counter breaking ties.
    """
    done = trials[trials["state"] == "done"]
    use_optuna = "optuna_complete" in done.columns and len(done) > 0 and done["optuna_complete"].notna().all()
    keys = ["optuna_complete", "number"] if use_optuna else ["finished_at", "number"]
    order = done.sort_values(keys, kind="stable").index
    out = pd.Series(np.nan, index=trials.index)
    out.loc[order] = np.arange(len(order), dtype=np.float64)
    return out


# --------------------------------------------------------------------------------- public API


def load_study(directory: str | Path, /) -> Study:
    """Read a study directory (finished, interrupted, running, or copied elsewhere) into tables.

    Args:
        directory: ``STORAGE/NAME``, the folder holding study.json.

    Returns:
        A ``Study``; an empty study has empty tables with the standard columns.

    Raises:
        AnalysisError: the directory is missing, is not a study, or its study.json is unreadable or
            records a malformed experiment.
    """
    path = Path(directory).expanduser().resolve()
    record = read_study_record(path)
    experiment = _read_experiment(path / STUDY_FILE, record)
    study = str(record.get("name") or path.name)
    notes: list[str] = []
    loaded = []
    cohort = is_cohort_study(record)
    records = path / TRIALS_DIR if cohort else path  # one directory per configuration
    for trial_dir in sorted(records.iterdir()) if records.is_dir() else []:
        if cohort and not trial_dir.name.isdigit():
            continue
        if trial_dir.is_dir() and ((trial_dir / PARAMS_FILE).is_file() or (trial_dir / RESULT_FILE).is_file()):
            row, seed_cols, trial_notes = _read_trial(trial_dir, study, record)
            if cohort:  # named by its Optuna trial number
                row["number"] = int(trial_dir.name)
                row["directory"] = f"{TRIALS_DIR}/{trial_dir.name}"
                row["trial_id"] = trial_dir.name
            notes += trial_notes
            loaded.append((row, seed_cols))
    loaded.sort(key=lambda item: (item[0]["number"], item[0]["trial_id"]))
    seen: set[str] = set()
    for row, _ in loaded:  # two folders claiming one trial id (a hand-made copy): keep both, told apart
        if row["trial_id"] in seen:
            row["trial_id"] = f"{row['trial_id']}@{row['directory']}"
        seen.add(row["trial_id"])
    rows = [row for row, _ in loaded]
    seed_parts = [(row["trial_id"], cols) for row, cols in loaded if cols is not None]
    params = [_unflatten_config(row) for row in rows]

    trials = pd.DataFrame(rows)
    columns = _TRIAL_COLUMNS + [o.column for o in experiment_objectives(experiment)]
    for column in columns:
        if column not in trials.columns:
            trials[column] = pd.Series(np.nan if column in columns[len(_TRIAL_COLUMNS) :] else None, index=trials.index)

    optuna_frame, note = _read_optuna(path, record)
    if note:
        notes.append(note)
    trials["optuna_number"] = pd.array([None] * len(trials), dtype="Int64")
    if optuna_frame is not None and len(trials):
        if cohort:
            _join_optuna_by_number(trials, optuna_frame)
        else:
            _join_optuna(trials, params, optuna_frame)
    trials["hand"] = _mark_hand(trials, params, record, experiment) if len(trials) else pd.Series(dtype=bool)
    trials["completion_order"] = _completion_order(trials) if len(trials) else pd.Series(dtype=float)
    ordered = columns + [c for c in trials.columns if c not in columns]
    trials = trials[ordered]
    if optuna_frame is not None and "_key" in optuna_frame.columns:
        optuna_frame = optuna_frame.drop(columns="_key")
    seeds = _seeds_table(trials, seed_parts)
    return Study(path, record, trials, seeds, optuna_frame, tuple(notes), experiment)


def _seeds_table(trials: pd.DataFrame, parts: Sequence[tuple[str, dict[str, list[str]]]]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*_SEED_KEYS, "seed"])
    data = _concat_columns(
        [{"trial_id": [trial_id] * len(next(iter(cols.values()))), **cols} for trial_id, cols in parts]
    )
    columns = [c for c in data if c != "trial_id"]
    per_seed = pd.DataFrame(data)
    for c in columns:
        per_seed[c] = _typed(per_seed[c].replace("", np.nan) if c != "seed" else per_seed[c])
    config = [c for c in trials.columns if c.startswith("config/")]
    keys = trials[[*_SEED_KEYS, *config]]
    table = keys.merge(per_seed, on="trial_id", how="inner", validate="one_to_many")
    return table.reset_index(drop=True)


def load_studies(directories: Iterable[str | Path], /) -> StudyCollection:
    """Several studies side by side: one ``trials`` and one ``seeds`` table with a ``study`` column.

    Studies that share a name (two copies of one study, say) are labelled by their directory
    instead, so that rows stay distinguishable.

    Raises:
        AnalysisError: as ``load_study``, for the first directory that is not a readable study, or
            when no directory is given.
    """
    studies = [load_study(d) for d in directories]
    if not studies:
        raise AnalysisError("no study directories given")
    names = [s.name for s in studies]
    trials, seeds = [], []
    for s in studies:
        label = s.name if names.count(s.name) == 1 else str(s.directory)
        trials.append(s.trials.assign(study=label))
        seeds.append(s.seeds.assign(study=label))
    return StudyCollection(
        tuple(studies),
        pd.concat(trials, ignore_index=True, sort=False),
        pd.concat(seeds, ignore_index=True, sort=False),
    )
