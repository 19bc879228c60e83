"""Cohort searches: C configurations x S seeds per Ray trial, the Optuna journal as the record."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from analysis.aggregate import aggregate
from analysis.cli import status_text
from analysis.models import cube_metrics
from analysis.objectives import objective
from analysis.racing import best_before_and_after, race_seeds, racing_table
from analysis.record import race_record_dir, trial_record_dir
from analysis.results import load_study
from excolor.experiments import load_experiment
from excolor.train import train
from tune.cli import main
from tune.cohort_searcher import CohortSearcher
from tune.race import RacePlanner
from tune.runner import default_cohort
from tune.searcher import make_sampler
from tune.space import SearchSpace

QUICK = ["--steps", "40", "--wandb", "disabled"]


def _journal(study: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(study / "optuna.journal"))))


def _search(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return ["search", "--name", name, "--storage", str(tmp_path), "--seeds", "0-2", *QUICK, *extra]


def test_a_cohort_search_records_one_optuna_trial_per_configuration(ray_session, tmp_path: Path, capsys) -> None:
    assert main(_search(tmp_path, "co", "--trials", "5", "--cohort", "3", "--cube-metrics")) == 0
    out = capsys.readouterr()
    study_dir = tmp_path / "co"
    study = _journal(study_dir, "co")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    assert study.metric_names == ["score", "recon"]  # optuna-dashboard shows names, not "Objective 0"
    reference = SearchSpace.default().reference_params()
    assert study.trials[0].params == pytest.approx(reference)  # the hand schedule is trial 0
    ray_trials = {t.user_attrs["ray_trial"] for t in study.trials}
    assert len(ray_trials) == 2  # 5 configurations in cohorts of 3: two Ray trials
    for t in study.trials:
        assert t.user_attrs["record_dir"] == f"trials/{t.number:04d}"
        assert t.user_attrs["per_seed"]["seed"] == [0, 1, 2]
        assert np.mean(t.user_attrs["per_seed"]["score"]) == pytest.approx(t.values[0])
    record = json.loads((study_dir / "study.json").read_text())
    assert record["layout"] == "cohort" and isinstance(record["sampler_seed"], int)
    assert "trial 0000" in out.err and "4 configurations" not in out.err
    loaded = load_study(study_dir)
    assert loaded.trials["trial_id"].tolist() == ["0000", "0001", "0002", "0003", "0004"]
    assert loaded.counts()["done"] == 5 and loaded.trials["hand"].tolist() == [True] + [False] * 4
    assert loaded.trials["optuna_number"].tolist() == [0, 1, 2, 3, 4]
    assert sorted(loaded.seeds["seed"].unique()) == [0, 1, 2] and len(loaded.seeds) == 15
    assert loaded.seeds["ablated_max_mse"].notna().all()  # --cube-metrics: scored as they finished
    assert "Pareto front" in status_text(loaded)


@pytest.mark.parametrize("engine", ["torch", "kernel"])
def test_cohort_members_equal_the_same_configurations_trained_alone(ray_session, tmp_path: Path, engine: str) -> None:
    """A cohort is one population; each configuration's models equal their training alone.

    The kernel trains and scores model by model: its scores are bitwise at every width, and so is
    everything at H = 16. NOTE(excolor): the torch engine's batched ops (its training, and both
    engines' validation) are bitwise at H = 16; at H = 10 a model at an odd row of the population was
    measured to differ from its lone run after one step by ~7e-9 (not at even rows, not at H = 8, 12
    or 16; the cause, likely a SIMD path chosen by memory alignment, is not isolated), which 40
    steps grow to ~1e-6, and a schedule's dynamics can grow further (measured over 24 sampler seeds:
    up to 2e-5 in score). The sampler seed is fixed so the test trains the same schedules every run:
    seed 22 samples three H = 10 configurations beside an H = 16 one, and their torch rows differ
    from their lone runs (by up to ~4e-6).
    """
    search = _search(tmp_path, "eq", "--trials", "4", "--cohort", "4", "--engine", engine, "--sampler-seed", "22")
    assert main(search) == 0
    study = load_study(tmp_path / "eq")
    assert "ablated_max_mse" not in study.seeds.columns  # a search leaves the loss cube to its report
    scored = cube_metrics(study, [f"{n:04d}" for n in range(4)])  # ... which scores the stored models
    for number in range(4):
        directory = trial_record_dir(tmp_path / "eq", number)
        experiment = load_experiment(directory / "experiment.yaml")
        alone = train(experiment, [0, 1, 2], engine=engine).metrics
        recorded = pd.read_csv(directory / "seeds.csv")
        assert recorded["seed"].tolist() == [0, 1, 2]
        cube = scored[scored["trial_id"] == f"{number:04d}"]
        assert cube["seed"].tolist() == [0, 1, 2]
        if experiment.model.hidden == 16:
            np.testing.assert_array_equal(recorded["val_recon"].to_numpy(), alone["val_recon"].astype(np.float64))
            np.testing.assert_array_equal(recorded["score"].to_numpy(), alone["score"])
            for key in ("baseline_max_mse", "ablated_median_mse", "suppression_max_mse"):
                np.testing.assert_array_equal(cube[key].to_numpy(), alone[key], err_msg=key)
        elif engine == "kernel":
            np.testing.assert_array_equal(recorded["score"].to_numpy(), alone["score"])
            np.testing.assert_allclose(recorded["val_recon"].to_numpy(), alone["val_recon"], rtol=1e-6)
        else:
            np.testing.assert_allclose(recorded["val_recon"].to_numpy(), alone["val_recon"], rtol=1e-3)
            np.testing.assert_allclose(recorded["score"].to_numpy(), alone["score"], atol=1e-4)
        if experiment.model.hidden != 16:
            np.testing.assert_allclose(cube["ablated_max_mse"].to_numpy(), alone["ablated_max_mse"], rtol=1e-3)
    if engine == "kernel":  # the report's loss-cube table: scored for it where training did not write it
        from analysis.report import write_report

        first = trial_record_dir(tmp_path / "eq", 0) / "seeds.csv"  # as if trained with --cube-metrics
        seeds = pd.read_csv(first)
        for key in alone:
            if key.endswith(("_max_mse", "_median_mse")):
                seeds[key] = 9.25
        seeds.to_csv(first, index=False)
        text = write_report(tmp_path / "eq").markdown.read_text()
        assert "Loss-cube errors per trial" in text and "(3 trials scored for this report" in text
        table = text.split("Loss-cube errors per trial")[1]
        row = next(line for line in table.splitlines() if line.startswith("| 0000 |"))
        assert row.count("9.25") == 6  # what training wrote is kept
        from analysis.record import POPULATION_FILE

        (trial_record_dir(tmp_path / "eq", 3) / POPULATION_FILE).write_bytes(b"not a checkpoint")
        text = write_report(tmp_path / "eq").markdown.read_text()  # one unreadable model: the rest still scored
        assert "(2 trials scored for this report" in text
        assert "No loss-cube errors for trial 0003: cannot read checkpoint" in text
        assert "No loss-cube errors for trial 0001" not in text


def test_a_cohort_retried_after_a_finished_group_trains_the_next_group_afresh(ray_session, tmp_path: Path) -> None:
    """A checkpoint taken as a group (one width) finishes names the next group, which a retry starts afresh.

    NOTE(excolor): it once also held the finished group's trainer, which the next group's population
    cannot load, so every retry failed and the cohort's configurations ended FAIL (seen when a node was
    lost just after a cohort's first width finished, in test_local_cluster_search_survives_a_lost_worker_node).
    """
    from ray import tune as ray_tune

    from excolor.experiments import preset
    from tune.cohort import train_cohort
    from tune.trainable import TrialSettings

    space = SearchSpace.default()
    hand = space.reference_params()
    members = [{"number": 0, "params": hand}, {"number": 1, "params": {**hand, "hidden": 10}}]  # two groups
    settings = TrialSettings(
        experiment=preset(),
        steps=40,
        space=space,
        seeds=(0, 1),
        checkpoint_every_s=0.0,  # a checkpoint with every report, the first group's end included
        engine="kernel",
        study_dir=str(tmp_path / "s"),
    )
    marker = tmp_path / "failed-once"

    def cohort_lost_after_its_first_group(config: dict) -> None:
        import ray.tune

        report = ray.tune.report

        def report_then_fail(row: dict, *args: object, **kwargs: object) -> None:
            report(row, *args, **kwargs)
            if row.get("group") == 1 and "best_score_mean" not in row and not marker.exists():
                marker.touch()
                raise RuntimeError("lost just after the first group's checkpoint")

        ray.tune.report = report_then_fail
        try:
            train_cohort(config, settings)
        finally:
            ray.tune.report = report

    tuner = ray_tune.Tuner(
        cohort_lost_after_its_first_group,
        param_space={"cohort": members},
        run_config=ray_tune.RunConfig(
            storage_path=str(tmp_path / "ray"), failure_config=ray_tune.FailureConfig(max_failures=1), verbose=0
        ),
    )
    result = tuner.fit()[0]
    assert marker.exists() and result.error is None
    finished = json.loads(result.metrics["results"])
    assert sorted(finished) == ["0", "1"] and not any(v["diverged"] for v in finished.values())
    seeds = pd.read_csv(trial_record_dir(tmp_path / "s", 1) / "seeds.csv")
    assert seeds["seed"].tolist() == [0, 1]


def test_rerun_extends_a_search_and_refuses_other_objectives_or_seeds(ray_session, tmp_path: Path, capsys) -> None:
    assert main(_search(tmp_path, "ex", "--trials", "2", "--cohort", "2")) == 0
    first = {t.number: t.datetime_complete for t in _journal(tmp_path / "ex", "ex").trials}
    capsys.readouterr()
    assert main(_search(tmp_path, "ex", "--trials", "2")) == 0  # finished: nothing trained, no Ray
    assert "all trained" in capsys.readouterr().err
    assert main(_search(tmp_path, "ex", "--trials", "4", "--cohort", "1")) == 0
    study = _journal(tmp_path / "ex", "ex")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert {t.number: t.datetime_complete for t in study.trials if t.number < 2} == first  # not retrained
    assert json.loads((tmp_path / "ex" / "study.json").read_text())["trials"] == 4
    capsys.readouterr()
    assert main(_search(tmp_path, "ex", "--trials", "4", "--objective", "score")) == 2
    assert "objectives" in capsys.readouterr().err
    assert main(_search(tmp_path, "ex", "--trials", "4", "--sampler-seed", "12345")) == 2
    assert "sampler_seed" in capsys.readouterr().err


def test_two_studies_draw_different_sampler_seeds(tmp_path: Path) -> None:
    from dataclasses import replace

    from tune.spec import StudySpec, write_record

    spec = StudySpec(kind="search", name="a", storage=str(tmp_path), seeds=(0,), seeds_per_trial=1, sampler_seed=None)
    seeds = {write_record(replace(spec, name=n)).sampler_seed for n in ("a", "b", "c")}
    assert len(seeds) == 3 and all(isinstance(s, int) for s in seeds)


def _searcher(tmp_path: Path, trials: int, cohort: int = 2, race: RacePlanner | None = None) -> CohortSearcher:
    return CohortSearcher(
        study_dir=tmp_path,
        study_name="r",
        space=SearchSpace.default(),
        objectives=[objective("score"), objective("recon")],
        sampler=make_sampler("random", 0),
        trials=trials,
        cohort=cohort,
        race=race,
    )


def _final_record(tmp_path: Path, number: int, score: float) -> None:
    d = trial_record_dir(tmp_path, number)
    d.mkdir(parents=True)
    line = {"score_mean": score, "val_recon_mean": 1e-5, "final": True, "ray_trial": "gone", "step": 40}
    (d / "result.json").write_text(json.dumps({"step": 20, "final": False}) + "\n" + json.dumps(line) + "\n")


def test_a_rerun_reconciles_with_the_journal(tmp_path: Path) -> None:
    """A killed driver left trials RUNNING: finished ones are told from their records, the rest retrained."""
    first = _searcher(tmp_path, trials=5)
    cohorts = [first.suggest("a"), first.suggest("b"), first.suggest("c")]
    assert [[m["number"] for m in c["cohort"]] for c in cohorts] == [[0, 1], [2, 3], [4]]
    assert first.suggest("d") == "FINISHED"
    told = {"diverged": False, "values": {"score_mean": 0.9, "val_recon_mean": 1e-5}}
    first.on_trial_complete("a", {"results": json.dumps({"0": told})})  # member 1 not in the result: left RUNNING
    first.on_trial_complete("c", None, error=True)  # failed after its retries
    # The driver dies: trial 2 finished and wrote its record but Optuna was never told; 1 and 3 were in flight.
    _final_record(tmp_path, 2, 0.7)
    second = _searcher(tmp_path, trials=5)
    assert (second.recovered, second.retraining, second.to_ask) == (1, 2, 0)
    states = {t.number: t.state for t in _journal(tmp_path, "r").trials}
    assert states == {
        0: TrialState.COMPLETE,
        1: TrialState.RUNNING,
        2: TrialState.COMPLETE,
        3: TrialState.RUNNING,
        4: TrialState.FAIL,
    }
    assert _journal(tmp_path, "r").trials[2].values == [0.7, 1e-5]
    cohort = second.suggest("e")["cohort"]
    assert [m["number"] for m in cohort] == [1, 3]  # under their own numbers and parameters
    assert cohort[0]["params"] == _journal(tmp_path, "r").trials[1].params
    assert second.suggest("f") == "FINISHED"
    assert len(_journal(tmp_path, "r").trials) == 5  # exactly the requested count, whatever happened
    third = _searcher(tmp_path, trials=7)  # extended: the two unfinished and two more to ask
    assert (third.retraining, third.to_ask) == (2, 2)


def test_a_trial_half_asked_by_a_killed_driver_is_trained_under_its_own_number(tmp_path: Path) -> None:
    """SIGKILL inside ``ask`` leaves a RUNNING trial with some parameters: the rest are sampled, none lost."""
    first = _searcher(tmp_path, trials=3)
    first.suggest("a")  # trials 0 and 1
    study = _journal(tmp_path, "r")
    half = study.ask()
    half.suggest_float("lr_peak", 0.01, 1.0, log=True)  # the driver died before the others were written
    second = _searcher(tmp_path, trials=3)
    assert (second.retraining, second.to_ask) == (3, 0)
    members = [m for c in (second.suggest("b"), second.suggest("c")) for m in c["cohort"]]
    assert [m["number"] for m in members] == [0, 1, 2]
    params = members[2]["params"]
    assert set(params) == set(SearchSpace.default().distributions())
    assert params["lr_peak"] == half.params["lr_peak"]
    assert _journal(tmp_path, "r").trials[2].params == params  # the journal holds what is trained
    assert len(_journal(tmp_path, "r").trials) == 3


def _told(directory: Path, scores: list[float], seeds: list[int]) -> dict:
    """A finished configuration's (or race block's) record and what its cohort reports for it."""
    per_seed = {
        "seed": np.array(seeds),
        "score": np.array(scores),
        "val_recon": np.full(len(seeds), 1e-5),
        "collapsed": np.zeros(len(seeds), dtype=bool),
        "diverged": np.zeros(len(seeds), dtype=bool),
    }
    values = aggregate(
        {k: v for k, v in per_seed.items() if k not in ("seed", "diverged")}, diverged=per_seed["diverged"]
    )
    directory.mkdir(parents=True)
    pd.DataFrame(per_seed).to_csv(directory / "seeds.csv", index=False)
    (directory / "result.json").write_text(json.dumps({**values, "step": 40, "final": True}) + "\n")
    return {"diverged": False, "values": values}


def test_racing_trains_the_uncertain_configurations_on_common_race_seeds(tmp_path: Path) -> None:
    def searcher(budget: int) -> CohortSearcher:
        planner = RacePlanner(
            study_dir=tmp_path, budget=budget, block=3, objectives=[objective("score"), objective("recon")]
        )
        return _searcher(tmp_path, trials=4, cohort=4, race=planner)

    first = searcher(budget=12)  # four race blocks of 3 seeds
    assert [m["number"] for m in first.suggest("a")["cohort"]] == [0, 1, 2, 3]
    assert first.suggest("wait") is None  # racing waits for the search's configurations
    scores = {0: [0.7, 0.8, 0.9], 1: [0.9, 0.8, 0.7], 2: [0.2, 0.3, 0.2], 3: [0.1, 0.2, 0.1]}  # 0, 1: twins
    told = {str(n): _told(trial_record_dir(tmp_path, n), s, [0, 1, 2]) for n, s in scores.items()}
    first.on_trial_complete("a", {"results": json.dumps(told)})
    race = first.suggest("b")["cohort"]
    assert sorted(m["number"] for m in race) == [0, 1]  # the twins: the front cannot tell them apart
    assert all(m["race"] == 1 and m["seeds"] == race_seeds(1, 3) for m in race)
    assert race[0]["params"] == _journal(tmp_path, "r").trials[race[0]["number"]].params
    assert first.suggest("c") is None  # the next round waits for this one
    for m in race:
        _told(race_record_dir(tmp_path, m["number"], 1), [0.8, 0.75, 0.85], race_seeds(1, 3))
    first.on_trial_complete("b", {"results": json.dumps({})})
    # The driver dies here. A rerun plans from the records: two blocks spent, two left, the twins still close.
    second = searcher(budget=12)
    assert second.pending == 0 and second.race_work()
    race = second.suggest("d")["cohort"]
    assert sorted(m["number"] for m in race) == [0, 1] and {m["race"] for m in race} == {2}
    for m in race:
        _told(race_record_dir(tmp_path, m["number"], 2), [0.8, 0.8, 0.8], race_seeds(2, 3))
    second.on_trial_complete("d", {})
    assert second.suggest("e") == "FINISHED"  # the budget is spent
    assert not searcher(budget=12).race_work() and searcher(budget=18).race_work()  # a larger budget races on
    assert [t.state for t in _journal(tmp_path, "r").trials] == [TrialState.COMPLETE] * 4  # Optuna untouched


def test_a_raced_search_records_its_blocks_and_values_configurations_over_all_seeds(
    ray_session, tmp_path: Path, capsys
) -> None:
    args = _search(tmp_path, "race", "--trials", "4", "--cohort", "4", "--race-seeds", "6")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "seed racing:" in err
    study_dir = tmp_path / "race"
    assert [t.state for t in _journal(study_dir, "race").trials] == [TrialState.COMPLETE] * 4
    loaded = load_study(study_dir)
    blocks = 0
    for number in range(4):
        raced = sorted(trial_record_dir(study_dir, number).glob("race-*"))
        blocks += len(raced)
        for k, block in enumerate(raced, start=1):
            assert block.name == f"race-{k}"
            assert pd.read_csv(block / "seeds.csv")["seed"].tolist() == race_seeds(k, 3)
        row = loaded.trials.set_index("trial_id").loc[f"{number:04d}"]
        seeds = loaded.seeds[loaded.seeds["trial_id"] == f"{number:04d}"]
        assert row["n_seeds"] == 3 * (1 + len(raced)) == len(seeds)
        assert row["score_mean"] == pytest.approx(seeds["score"].mean())
    assert 1 <= blocks <= 2  # 3 seeds at 40 steps leave the front unsure; 6 trainings pay for two blocks
    table = racing_table(loaded)
    told = {t.number: t.values for t in _journal(study_dir, "race").trials}
    assert len(table) == len([n for n in range(4) if list(trial_record_dir(study_dir, n).glob("race-*"))])
    for row in table.to_dict("records"):
        assert row["search_score_mean"] == pytest.approx(told[int(row["trial_id"])][0])  # what Optuna was told
    before, after = best_before_and_after(loaded)
    assert before == f"{max(told, key=lambda n: told[n][0]):04d}"
    assert after == loaded.done().sort_values("score_mean")["trial_id"].iloc[-1]
    assert f"best score_mean: {after}" in err
    capsys.readouterr()
    assert main(args) == 0  # nothing left to race: no Ray trial, the same records
    assert "0 to train" not in capsys.readouterr().err
    assert sum(len(list(trial_record_dir(study_dir, n).glob("race-*"))) for n in range(4)) == blocks
    first_race_seed = race_seeds(1, 3)[0]
    assert main(["validate", str(study_dir), "--seeds", f"{first_race_seed}-{first_race_seed + 3}"]) == 2
    assert "held-out seeds must be seeds the search never trained on" in capsys.readouterr().err


def test_default_cohorts_fill_the_slots_and_cap_the_population() -> None:
    assert default_cohort(12, 8, slots=2, device="cpu") == 6
    assert default_cohort(1000, 16, slots=2, device="cpu") == 16
    assert default_cohort(3, 1000, slots=8, device="cpu") == 1
    assert default_cohort(0, 8, slots=2, device="cpu") == 1
    assert default_cohort(80, 16, slots=2, device="cpu") == 14  # 6 cohorts in 3 full rounds, not 5 of 16


@pytest.mark.parametrize("slots", [1, 2, 3, 8])
def test_default_cohorts_need_no_more_rounds_than_the_population_cap(slots: int) -> None:
    """Smaller cohorts fill the slots, never at the cost of a round: ``slots`` trials at a time take
    as many rounds as cohorts of the full cap would."""
    for pending in range(1, 300, 7):
        for seeds in (1, 8, 16, 100):
            cap = max(1, 256 // seeds)
            size = default_cohort(pending, seeds, slots=slots, device="cpu")
            assert 1 <= size <= cap
            cohorts = math.ceil(pending / size)
            assert math.ceil(cohorts / slots) == math.ceil(math.ceil(pending / cap) / slots)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGKILL, -9), (signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_cohort_search_resumes_with_the_exact_count(tmp_path: Path, signum: int, status: int) -> None:
    """The driver is stopped after the first configurations finished; the rerun trains only the rest.

    SIGTERM and SIGINT end in a clean stop with status 143 / 130; SIGKILL leaves Optuna trials RUNNING.
    The torch engine keeps the cohorts seconds apart, so the stop lands mid-study.
    """
    search = _search(tmp_path, "kill", "--trials", "8", "--cohort", "2", "--engine", "torch")
    args = [sys.executable, "-m", "tune.cli", *search]
    args[args.index("40")] = "300"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    records = tmp_path / "kill" / "trials"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        finals = [p for p in records.glob("*/result.json") if '"final": true' in p.read_text()]
        if len(finals) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == status
    before = {p.parent.name: p.stat().st_mtime_ns for p in records.glob("*/seeds.csv")}
    assert before, "no configuration finished before the kill"
    assert len(before) < 8, "every configuration finished before the stop: the test needs a slower study"
    rerun = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    study = _journal(tmp_path / "kill", "kill")
    reasons = {t.number: t.user_attrs.get("fail_reason") for t in study.trials if t.state != TrialState.COMPLETE}
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8, (reasons, rerun.stderr[-3000:])
    after = {p.parent.name: p.stat().st_mtime_ns for p in records.glob("*/seeds.csv")}
    assert all(after[k] == v for k, v in before.items())  # finished configurations were not retrained
    assert len(after) == 8


def test_constraints_reach_the_sampler_and_keep_infeasible_trials_off_the_front(
    ray_session, tmp_path: Path, capsys
) -> None:
    args = _search(tmp_path, "cons", "--trials", "3", "--cohort", "3", "--constraint", "recon<=1e-12")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(args) == 0
    assert not [w for w in seen if "constraints_func" in str(w.message)]  # deprecated in Optuna 5: not used
    out = capsys.readouterr().out
    study = _journal(tmp_path / "cons", "cons")
    for t in study.trials:
        assert t.user_attrs["feasible"] is False
        assert t.constraints == {"recon<=1e-12": pytest.approx(t.values[1] - 1e-12)}  # what the samplers read
    loaded = load_study(tmp_path / "cons")
    assert [str(c) for c in loaded.constraints] == ["recon<=1e-12"]
    assert "Pareto front (max score_mean / min val_recon_mean): 0 trials" in out
    assert "left out for breaking recon<=1e-12: 0000, 0001, 0002" in out
    capsys.readouterr()
    assert main([*args[:-1], "recon<=1e-3"]) == 2  # other constraints: another study
    assert "constraints" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("recon<2e-5", "expected NAME<=VALUE"),
        ("nope<=1", "unknown objective 'nope'"),
        ("recon<=x", "'x' is not a number"),
        ("recon<=nan", "must be finite"),
    ],
)
def test_a_bad_constraint_is_one_line(tmp_path: Path, capsys, text: str, message: str) -> None:
    assert main(["search", "--name", "bad", "--storage", str(tmp_path), "--constraint", text]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


def test_validate_retrains_the_best_trials_and_the_hand_schedule_on_held_out_seeds(
    ray_session, tmp_path: Path, capsys
) -> None:
    assert main(_search(tmp_path, "val", "--trials", "3", "--cohort", "3")) == 0
    capsys.readouterr()
    study_dir = tmp_path / "val"
    assert main(["validate", str(study_dir), "--seeds", "10-13", "--top", "1"]) == 0
    out = capsys.readouterr().out
    record = json.loads((study_dir / "validation" / "10-13" / "validation.json").read_text())
    assert record["seeds"] == [10, 11, 12, 13] and record["hand"] == "0000"
    assert record["trials"][0] == "0000" and len(record["trials"]) in (1, 2)  # the best may be the hand schedule
    from analysis.validation import heldout_table, read_validations

    (validation,) = read_validations(study_dir)
    assert sorted(validation.per_seed["seed"].unique()) == [10, 11, 12, 13]
    table = heldout_table(load_study(study_dir), validation)
    assert set(table["trial_id"]) == set(record["trials"])
    assert (table["heldout_seeds"] == 4).all() and (table["search_seeds"] == 3).all()
    hand = table[table["hand"]].iloc[0]
    assert np.isnan(hand["vs_hand"])  # no difference of the hand schedule to itself
    hand_experiment = load_experiment(trial_record_dir(study_dir, 0) / "experiment.yaml")
    alone = train(hand_experiment, [10, 11, 12, 13], engine="kernel").metrics  # the CLI trained with auto
    assert hand["heldout_score"] == pytest.approx(float(np.mean(alone["score"])), rel=1e-9)
    assert "held-out validation of 'val'" in out
    # a rerun trains nothing new
    assert main(["validate", str(study_dir), "--seeds", "10-13", "--top", "1"]) == 0
    assert "0 to train" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "1-5"], "overlap the study's own seeds (0-2) at 1-2"),
        (["--seeds", "50-51", "--trial", "9999"], "--trial 9999: no such trial"),
    ],
)
def test_validate_refuses_overlapping_seeds_and_unknown_trials(tmp_path: Path, capsys, args, message) -> None:
    from tests.analysis_tests._studies import FakeTrial, write_study

    study = write_study(tmp_path, "st", [FakeTrial(seeds=[0, 1, 2])])
    assert main(["validate", str(study), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_validate_a_missing_study_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path / "nope"), "--seeds", "10-11"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1


def test_a_second_driver_on_a_study_is_refused(tmp_path: Path, capsys) -> None:
    from tune.spec import StudySpec, study_lock

    spec = StudySpec(kind="search", name="locked", storage=str(tmp_path), seeds=(0,), seeds_per_trial=1)
    with study_lock(spec):
        assert main(_search(tmp_path, "locked", "--trials", "2")) == 2
        err = capsys.readouterr().err
        assert "is being run by excolor (pid" in err and err.count("\n") == 1
    assert not (tmp_path / "locked" / "study.json").exists()
    with study_lock(spec):  # released: the next command takes it
        pass


def test_an_unreachable_cluster_is_refused_quickly(tmp_path: Path, capsys) -> None:
    started = time.monotonic()
    assert main(_search(tmp_path, "far", "--address", "127.0.0.1:1")) == 2
    assert time.monotonic() - started < 60
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err and err.count("\n") == 1
    assert not (tmp_path / "far" / "study.json").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--name", "x" * 300, "at most 100 bytes"),
        ("--sampler-seed", "-1", "--sampler-seed: expected an integer in 0..4294967295"),
    ],
)
def test_bad_study_flags_are_one_line_before_anything_is_written(tmp_path: Path, capsys, flag, value, message) -> None:
    args = ["search", "--name", "ok", "--storage", str(tmp_path), flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_the_report_shows_held_out_results_beside_the_search(tmp_path: Path) -> None:
    """A recorded validation (written here by hand, as excolor validate writes it) gets its report section."""
    from analysis.report import write_report
    from tests.analysis_tests._studies import FakeTrial, write_study

    study = write_study(tmp_path, "rep", [FakeTrial(seeds=[0, 1]), FakeTrial(seeds=[0, 1])])
    loaded = load_study(study)
    ids = loaded.trials["trial_id"].tolist()
    hand = loaded.trials.loc[loaded.trials["hand"], "trial_id"].tolist()
    directory = study / "validation" / "10-12"
    for trial_id, base in zip(ids, (0.8, 0.9)):
        (directory / trial_id).mkdir(parents=True)
        pd.DataFrame(
            {
                "seed": [10, 11, 12],
                "score": [base, base + 0.01, base - 0.01],
                "val_recon": [1e-5] * 3,
                "collapsed": [False] * 3,
                "diverged": [False] * 3,
            }
        ).to_csv(directory / trial_id / "seeds.csv", index=False)
    record = {"seeds": [10, 11, 12], "trials": ids, "hand": hand[0] if hand else ids[0]}
    (directory / "validation.json").write_text(json.dumps(record))
    text = write_report(study).markdown.read_text()
    assert "## Held-out validation" in text and "### Seeds 10-12 (3 seeds)" in text
    assert "heldout_score" in text and "vs_hand_low" in text


def test_a_rerun_draws_new_configurations_not_the_first_runs_again(tmp_path: Path) -> None:
    """Reseeded from the journal's length: an extended or resumed search asks configurations it never asked."""
    from dataclasses import replace

    from excolor.experiments import preset, to_dict
    from tune.runner import _cohort_searcher
    from tune.spec import StudySpec

    spec = StudySpec(
        kind="search",
        name="d",
        storage=str(tmp_path),
        seeds=(0,),
        seeds_per_trial=1,
        trials=3,
        sampler="random",
        sampler_seed=5,
        experiment=to_dict(preset()),
        layout="cohort",
    )
    spec.directory.mkdir()
    first = _cohort_searcher(spec, preset(), SearchSpace.default())
    first.cohort = 3
    asked = [m["params"] for m in first.suggest("a")["cohort"]]
    second = _cohort_searcher(replace(spec, trials=5), preset(), SearchSpace.default())
    second.cohort = 5
    more = [m["params"] for m in second.suggest("b")["cohort"]]
    assert more[:3] == asked  # the unfinished three, under their own parameters
    assert all(new != old for new in more[3:] for old in asked[1:])
