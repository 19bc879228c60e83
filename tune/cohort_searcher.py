"""A Tune ``Searcher`` that asks Optuna for cohorts: C configurations per Ray trial, told back one by one.

The Optuna journal in the study directory is the record of the search: one Optuna trial per
configuration, the hand schedule first, whatever Ray trial trained it. Every run of a search
(the first, a rerun after a killed driver, an extension to more ``--trials``) reconciles with it
before asking anything:

- COMPLETE, PRUNED and FAIL trials are finished and never trained again;
- a RUNNING trial whose record in ``trials/<number>/`` is final (the driver died between the end of
  its Ray trial and telling Optuna) is told from that record, not retrained;
- any other RUNNING trial (its Ray trial was lost with the driver) is trained again, under its own
  number and parameters (those a driver killed inside ``ask`` left unset are sampled first);
- new configurations are asked until the journal holds exactly ``trials`` of them.

Ray Tune still places cohorts on the cluster, retries them from their checkpoints
(``FailureConfig``) and logs them; it never restores a search from its pickled state.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from analysis.objectives import Constraint, Objective, feasible
from analysis.record import ERROR_FILE, RESULT_FILE, read_json_lines, trial_record_dir
from tune.errors import storage_nearly_full
from tune.searcher import journal_storage

if TYPE_CHECKING:
    import optuna

    from tune.race import RacePlanner
    from tune.space import SearchSpace

__all__ = ["CohortHandout", "CohortSearcher", "cohort_results"]


class CohortHandout(Searcher):  # type: ignore[misc]
    """What every cohort searcher shares: the cohort size, and objectives that are the study's own."""

    def __init__(self, cohort: int) -> None:
        super().__init__(metric=None, mode=None)
        self._cohort = max(1, int(cohort))
        self.storage_full = False  # a Ray trial failed while the study's disk was full

    @property
    def cohort(self) -> int:
        """Configurations per Ray trial."""
        return self._cohort

    @cohort.setter
    def cohort(self, size: int) -> None:
        self._cohort = max(1, int(size))

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the objectives are the study's, given at construction


class CohortSearcher(CohortHandout):
    """Optuna ask/tell in batches behind Ray Tune's ``Searcher`` API.

    Args:
        study_dir: the study directory (journal and configuration records).
        study_name: the Optuna study's name.
        space: what is searched; its reference point (the hand schedule) is enqueued first.
        objectives: the study's objectives, in order.
        constraints: bounds on objectives; each told trial carries its violations as Optuna constraints.
        sampler: the Optuna sampler.
        trials: how many configurations the study holds in the end.
        cohort: configurations per Ray trial.
        race: seed racing once every configuration is told (``tune.race``); None: no racing.
    """

    def __init__(
        self,
        *,
        study_dir: Path,
        study_name: str,
        space: SearchSpace,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        sampler: optuna.samplers.BaseSampler,
        trials: int,
        cohort: int = 1,
        race: RacePlanner | None = None,
    ) -> None:
        import optuna

        super().__init__(cohort)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._dir = study_dir
        self._objectives = list(objectives)
        self._constraints = list(constraints)
        self._distributions = space.distributions()
        self._study = optuna.create_study(
            study_name=study_name,
            storage=journal_storage(study_dir),
            sampler=sampler,
            directions=["maximize" if o.maximise else "minimize" for o in objectives],
            load_if_exists=True,
        )
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._study.set_metric_names([o.name for o in objectives])  # optuna-dashboard shows the names
        self._live: dict[str, list[int]] = {}
        self._racing: dict[str, list[dict[str, Any]]] = {}  # race blocks in Ray trials that have not ended
        self._retrain: list[int] = []
        self._params: dict[int, dict[str, Any]] = {}  # of the trials to train again
        self.recovered = 0  # RUNNING trials told from their final records
        self.to_ask = 0
        self._race = race
        self._race_queue: list[dict[str, Any]] = []
        self.race_over = race is None or race.budget == 0  # no round left to plan
        self._reconcile(space, trials)

    # ------------------------------------------------------------------------------ the journal

    def _reconcile(self, space: SearchSpace, trials: int) -> None:
        from optuna.trial import TrialState

        existing = self._study.get_trials(deepcopy=False)
        if not existing:
            self._study.enqueue_trial(space.reference_params())  # every study is measured against it
            existing = self._study.get_trials(deepcopy=False)
        for t in existing:
            if t.state != TrialState.RUNNING:
                continue
            outcome = self._final_record(t.number)
            if outcome is None:
                self._retrain.append(t.number)
                self._params[t.number] = self._complete_ask(t)
            else:
                self._tell(t.number, outcome)
                self.recovered += 1
        asked = sum(t.state != TrialState.WAITING for t in existing)
        self.to_ask = max(0, trials - asked)
        self.retraining = len(self._retrain)

    def _complete_ask(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """The trial's parameters, those missing sampled now: a driver killed inside ``ask`` leaves some unset."""
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        missing = {n: d for n, d in self._distributions.items() if n not in trial.params}
        if not missing:
            return dict(trial.params)
        live = optuna.trial.Trial(self._study, trial._trial_id)  # a RUNNING trial takes more parameters
        for name, d in missing.items():
            if isinstance(d, FloatDistribution):
                live.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
            elif isinstance(d, IntDistribution):
                live.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
            elif isinstance(d, CategoricalDistribution):
                live.suggest_categorical(name, d.choices)
            else:  # pragma: no cover - the space makes only these three
                raise TypeError(f"unknown distribution {d!r} for {name!r}")
        return dict(self._study._storage.get_trial(trial._trial_id).params)

    @property
    def pending(self) -> int:
        """Configurations still to train in this run: those to train again and those to ask."""
        return len(self._retrain) + self.to_ask

    @property
    def live(self) -> int:
        """Configurations (and race blocks) handed to Ray trials that have not ended."""
        return sum(len(v) for v in self._live.values()) + sum(len(v) for v in self._racing.values())

    def _final_record(self, number: int) -> dict[str, Any] | None:
        """What configuration ``number``'s record says it ended with, if it ended."""
        directory = trial_record_dir(self._dir, number)
        _, last, _, _ = read_json_lines(directory / RESULT_FILE)
        if last and last.get("final") is True:
            values = {k: v for k, v in last.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if all(math.isfinite(values.get(o.column, math.nan)) for o in self._objectives):
                return {"diverged": False, "values": values, **_identity(last)}
        if (directory / ERROR_FILE).is_file() and last:
            reason = (directory / ERROR_FILE).read_text(encoding="utf-8", errors="replace").strip()
            return {"diverged": True, "reason": reason, **_identity(last)}
        return None

    def _trial_id(self, number: int) -> int:
        """The storage's id of Optuna trial ``number``."""
        return self._study._storage.get_trial_id_from_study_id_trial_number(self._study._study_id, number)

    def _set_attrs(self, number: int, attrs: Mapping[str, Any]) -> None:
        trial_id = self._trial_id(number)
        for key, value in attrs.items():
            self._study._storage.set_trial_user_attr(trial_id, key, value)

    def _tell(self, number: int, outcome: Mapping[str, Any] | None, *, why: str = "") -> None:
        from optuna.trial import TrialState

        if outcome is None:
            self._set_attrs(number, {"fail_reason": why or "its Ray trial failed"})
            self._study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            return
        attrs = {k: outcome[k] for k in ("ray_trial", "ray_trial_dir", "per_seed", "time_total_s") if k in outcome}
        attrs["record_dir"] = str(trial_record_dir(Path("."), number))
        if outcome.get("diverged"):
            self._set_attrs(number, {**attrs, "fail_reason": str(outcome.get("reason", "diverged"))})
            self._study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            return
        values = [float(outcome["values"][o.column]) for o in self._objectives]
        if self._constraints:
            measured = outcome["values"]
            attrs["feasible"] = feasible(measured, self._constraints)
            self._set_constraints(number, measured)
        self._set_attrs(number, attrs)
        self._study.tell(number, values, skip_if_finished=True)

    def _set_constraints(self, number: int, measured: Mapping[str, Any]) -> None:
        """The trial's violations (<= 0: kept) as Optuna's own trial constraints, named as on the
        command line (``recon<=2e-05``); the tpe, nsga2 and gp samplers read them."""
        from optuna.trial import Trial

        trial = Trial(self._study, self._trial_id(number))
        known = trial.constraints  # set before a killed driver could tell the trial
        for c in self._constraints:
            if str(c) not in known:
                trial.set_constraint(str(c), c.violation(float(measured.get(c.objective.column, math.inf))))

    # ------------------------------------------------------------------------------ seed racing

    def race_work(self) -> bool:
        """Whether racing has blocks to train now (plans the next round when none is queued)."""
        if self._race_queue:
            return True
        if self.race_over or self.pending or self.live or self._race is None:
            return False
        from optuna.trial import TrialState

        told = self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        plan = self._race.plan({t.number: t.params for t in told})
        if plan is None:
            self.race_over = True
            return False
        self._race_queue = list(plan.members)
        return True

    @property
    def race_queued(self) -> int:
        """Race blocks planned and not yet handed to a Ray trial."""
        return len(self._race_queue)

    @property
    def race_rounds(self) -> list[Any]:
        return [] if self._race is None else self._race.rounds

    # ------------------------------------------------------------------------------ Searcher API

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self.storage_full:
            return Searcher.FINISHED
        members: list[dict[str, Any]] = []
        while self._retrain and len(members) < self._cohort:
            number = self._retrain.pop(0)
            members.append({"number": number, "params": self._params.pop(number)})
        while self.to_ask > 0 and len(members) < self._cohort:
            trial = self._study.ask(self._distributions)
            self.to_ask -= 1
            members.append({"number": trial.number, "params": dict(trial.params)})
        if not members and self.race_work():
            members, self._race_queue = self._race_queue[: self._cohort], self._race_queue[self._cohort :]
        if not members:
            # racing plans its next round once everything handed out has ended
            return None if self.live and not self.race_over else Searcher.FINISHED
        for m in members:
            if m.get("race") is None:
                self._set_attrs(m["number"], {"ray_trial": trial_id})
        self._live[trial_id] = [m["number"] for m in members if m.get("race") is None]
        self._racing[trial_id] = [m for m in members if m.get("race") is not None]
        return {"cohort": members}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        numbers = self._live.pop(trial_id, [])
        self._racing.pop(trial_id, None)  # race blocks: their records are their result; Optuna was told
        if error and storage_nearly_full(self._dir):
            self.storage_full = True  # no FAIL for what a full disk stopped; nothing new is started
        results = cohort_results(result)
        for number in numbers:
            outcome = results.get(str(number)) or self._final_record(number)
            if outcome is not None:
                self._tell(number, outcome)
            elif error and self.storage_full:  # not the configuration's fault: trained again on a rerun
                continue
            elif error:  # failed after its retries (FailureConfig): nothing to resume from
                self._tell(number, None, why="its Ray trial failed; see that trial's error.txt")
            # else: stopped before it ended (an interrupted run): left RUNNING, trained again on a rerun

    def save(self, checkpoint_path: str) -> None:
        """Only bookkeeping (plain JSON): the journal, not this file, is the record of the search."""
        Path(checkpoint_path).write_text(json.dumps({"live": self._live, "to_ask": self.to_ask}), encoding="utf-8")

    def restore(self, checkpoint_path: str) -> None:
        """Not used by excolor (a rerun reconciles with the journal instead); kept for Tune's API."""
        state = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        self._live = {str(k): [int(n) for n in v] for k, v in state["live"].items()}
        self.to_ask = int(state["to_ask"])


def cohort_results(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The per-configuration outcomes of a cohort's final report (``tune.cohort``), by number."""
    raw = (result or {}).get("results")
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _identity(last: Mapping[str, Any]) -> dict[str, Any]:
    return {k: last[k] for k in ("ray_trial", "ray_trial_dir", "time_total_s") if k in last}
