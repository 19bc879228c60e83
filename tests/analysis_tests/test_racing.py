"""Seed racing's statistics and records: front probabilities by bootstrap, values over all seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.aggregate import aggregate
from analysis.objectives import objective, parse_constraint
from analysis.racing import RACE_SEED_BASE, front_probability, race_seeds, uncertain
from analysis.record import race_record_dir, race_record_dirs, trial_record_dir
from analysis.results import load_study, trial_seeds

SCORE_RECON = [objective("score"), objective("recon")]


def _seeds(score: np.ndarray, recon: np.ndarray, first_seed: int = 0) -> dict[str, np.ndarray]:
    n = len(score)
    return {
        "seed": np.arange(first_seed, first_seed + n),
        "score": np.asarray(score, dtype=float),
        "val_recon": np.asarray(recon, dtype=float),
        "collapsed": np.zeros(n, dtype=bool),
        "diverged": np.zeros(n, dtype=bool),
    }


def test_race_seeds_are_common_blocks_far_from_typed_seeds() -> None:
    assert race_seeds(1, 3) == [RACE_SEED_BASE, RACE_SEED_BASE + 1, RACE_SEED_BASE + 2]
    assert race_seeds(3, 2) == [RACE_SEED_BASE + 4, RACE_SEED_BASE + 5]
    with pytest.raises(ValueError, match="block 0"):
        race_seeds(0, 4)


def test_front_probability_settles_clear_cases_and_flags_close_ones() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.05, size=16)
    recon = np.full(16, 1e-5)
    per_seed = {
        "clear winner": _seeds(0.95 + noise * 0.01, recon * 0.5),  # best in both objectives, tight
        "clear loser": _seeds(0.50 + noise * 0.01, recon * 2.0),
        "twin a": _seeds(0.80 + noise, recon * 0.4),  # on the front only while its noisy score beats its twin's
        "twin b": _seeds(0.80 + noise[::-1], recon * 0.4),
    }
    p = front_probability(per_seed, SCORE_RECON, rng=np.random.default_rng(1), rounds=100)
    assert p["clear winner"] == 1.0 and p["clear loser"] == 0.0
    assert 0.1 < p["twin a"] < 0.9 and 0.1 < p["twin b"] < 0.9
    assert set(uncertain(p)) == {"twin a", "twin b"}
    again = front_probability(per_seed, SCORE_RECON, rng=np.random.default_rng(1), rounds=100)
    assert again == p  # seeded: a rerun plans the same race


def test_a_configuration_breaking_a_constraint_is_never_on_the_front() -> None:
    per_seed = {
        "tight": _seeds(np.full(8, 0.9), np.full(8, 1e-3)),  # the best score, but recon far above the bound
        "fine": _seeds(np.full(8, 0.7), np.full(8, 1e-5)),
    }
    bound = [parse_constraint("recon<=2e-5")]
    p = front_probability(per_seed, SCORE_RECON, constraints=bound, rng=np.random.default_rng(0), rounds=20)
    assert p == {"tight": 0.0, "fine": 1.0}


def test_uncertain_rejects_a_meaningless_threshold() -> None:
    with pytest.raises(ValueError, match="settle"):
        uncertain({"a": 0.5}, settle=0.5)


def _write_block(directory: Path, seeds: dict[str, np.ndarray], *, final: bool) -> None:
    directory.mkdir(parents=True)
    pd.DataFrame(seeds).to_csv(directory / "seeds.csv", index=False)
    line = {"step": 40, "final": final}
    if final:
        line.update(
            aggregate({k: v for k, v in seeds.items() if k not in ("seed", "diverged")}, diverged=seeds["diverged"])
        )
    (directory / "result.json").write_text(json.dumps(line) + "\n")
    (directory / "params.json").write_text(json.dumps({"seeds": seeds["seed"].tolist()}))


def test_a_raced_configuration_is_valued_over_all_its_finished_blocks(tmp_path: Path) -> None:
    study = tmp_path / "raced"
    study.mkdir()
    record = {"format": "excolor.study/1", "kind": "search", "name": "raced", "layout": "cohort", "seeds": [0, 1, 2]}
    (study / "study.json").write_text(json.dumps(record))
    own = _seeds(np.array([0.9, 0.2, 0.8]), np.full(3, 1e-5))
    race = _seeds(np.array([0.85, 0.86, 0.87]), np.full(3, 2e-5), first_seed=RACE_SEED_BASE)
    _write_block(trial_record_dir(study, 0), own, final=True)
    _write_block(race_record_dir(study, 0, 1), race, final=True)
    _write_block(race_record_dir(study, 0, 2), _seeds(np.zeros(3), np.ones(3), first_seed=7), final=False)
    assert [p.name for p in race_record_dirs(trial_record_dir(study, 0))] == ["race-1", "race-2"]

    merged = trial_seeds(trial_record_dir(study, 0))
    assert merged is not None and merged["seed"].tolist() == [0, 1, 2, *race_seeds(1, 3)]  # race-2 unfinished
    loaded = load_study(study)
    row = loaded.trials.iloc[0]
    assert row["n_seeds"] == 6 and row["race_blocks"] == 1
    assert row["score_mean"] == pytest.approx(np.mean([0.9, 0.2, 0.8, 0.85, 0.86, 0.87]))
    assert row["val_recon_mean"] == pytest.approx(1.5e-5)
    assert row["fail_rate"] == pytest.approx(1 / 6)
    assert len(loaded.seeds) == 6 and sorted(loaded.seeds["seed"])[-1] == RACE_SEED_BASE + 2
