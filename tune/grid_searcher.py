"""A Tune ``Searcher`` that hands a sweep's grid out as cohorts; the records are the sweep's record.

A sweep's configurations are fixed by its ``study.json``: every combination of ``--scale``
multipliers, each on every seed group. Configuration ``number`` (its place in that grid) is
recorded in ``trials/<number>/`` like a search's, whichever Ray trial trained it. A rerun reads
the records first: finished configurations (a final line) and failed ones (``error.txt``) are kept,
every other one is trained (again) -- no Ray state is restored, no pickle is opened.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from analysis.record import ERROR_FILE, RESULT_FILE, read_json_lines, trial_record_dir, trial_state
from tune.cohort_searcher import CohortHandout
from tune.errors import storage_nearly_full

__all__ = ["GridSearcher", "sweep_grid"]


def sweep_grid(
    scales: Sequence[tuple[str, Sequence[float]]], seed_groups: Sequence[Sequence[int]]
) -> list[dict[str, Any]]:
    """The sweep's configurations in their recorded order: each scale combination on each seed group.

    >>> [(m["number"], m["params"], m["seeds"]) for m in sweep_grid((("anchor", (1.0, 2.0)),), [[0, 1]])]
    [(0, {'scale': {'anchor': 1.0}}, [0, 1]), (1, {'scale': {'anchor': 2.0}}, [0, 1])]
    """
    names = [n for n, _ in scales]
    combos = [dict(zip(names, c)) for c in itertools.product(*[v for _, v in scales])] or [{}]
    grid: list[dict[str, Any]] = []
    for combo, group in itertools.product(combos, seed_groups):
        params = {"scale": {k: float(v) for k, v in combo.items()}} if combo else {}
        grid.append({"number": len(grid), "params": params, "seeds": [int(s) for s in group]})
    return grid


class GridSearcher(CohortHandout):
    """Cohorts of a sweep's unfinished configurations, in grid order.

    Args:
        study_dir: the study directory.
        grid: ``sweep_grid(...)`` of the study.
        cohort: configurations per Ray trial.
    """

    def __init__(self, *, study_dir: Path, grid: Sequence[dict[str, Any]], cohort: int = 1) -> None:
        super().__init__(cohort)
        self._dir = study_dir
        self._live: dict[str, list[int]] = {}
        self._todo: list[dict[str, Any]] = []
        self.retraining = 0
        self.recovered = 0  # (searches tell Optuna from records; a sweep's records are all there is)
        self.race_over = True
        for member in grid:
            directory = trial_record_dir(study_dir, int(member["number"]))
            _, last, _, _ = read_json_lines(directory / RESULT_FILE)
            state = trial_state(last or {}, failed=(directory / ERROR_FILE).is_file())
            if state in ("done", "failed"):
                continue
            self.retraining += directory.exists()
            self._todo.append(dict(member))

    @property
    def pending(self) -> int:
        """Configurations not yet handed to a Ray trial."""
        return len(self._todo)

    @property
    def live(self) -> int:
        """Configurations handed to Ray trials that have not ended."""
        return sum(len(v) for v in self._live.values())

    def race_work(self) -> bool:
        return False  # a sweep has no racing

    race_queued = 0

    @property
    def race_rounds(self) -> list[Any]:
        return []

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if not self._todo:
            return Searcher.FINISHED
        members, self._todo = self._todo[: self._cohort], self._todo[self._cohort :]
        self._live[trial_id] = [int(m["number"]) for m in members]
        return {"cohort": members}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        numbers = self._live.pop(trial_id, [])
        if error and storage_nearly_full(self._dir):
            self.storage_full = True  # not the configurations' fault: trained again on a rerun
            self._todo = []
            return
        if not error:
            return  # its records say how each configuration ended; an interrupted one is trained on a rerun
        for number in numbers:  # failed after its retries (FailureConfig): recorded as failed, not retrained
            directory = trial_record_dir(self._dir, number)
            _, last, _, _ = read_json_lines(directory / RESULT_FILE)
            if not (last and last.get("final") is True):
                directory.mkdir(parents=True, exist_ok=True)
                (directory / ERROR_FILE).write_text(
                    f"its Ray trial {trial_id} failed after its retries; see that trial's error.txt\n", encoding="utf-8"
                )

    def save(self, checkpoint_path: str) -> None:
        """Only bookkeeping (plain JSON): the records, not this file, are the record of the sweep."""
        Path(checkpoint_path).write_text(json.dumps({"live": self._live}), encoding="utf-8")

    def restore(self, checkpoint_path: str) -> None:
        """Not used by excolor (a rerun reads the records instead); kept for Tune's API."""
        state = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        self._live = {str(k): [int(n) for n in v] for k, v in state["live"].items()}
