"""Seed racing in a cohort search: more seeds for the configurations the front is unsure of.

After every configuration of the search is told, ``CohortSearcher`` asks this planner for rounds
of race blocks: each round bootstraps the finished configurations' seeds (``analysis.racing``),
takes those whose front membership is uncertain, most uncertain first, and trains each on its next
block of race seeds -- as cohorts, like any configuration -- until none is uncertain or the seed
budget (``--race-seeds``, model trainings in all) is spent. A block's results are recorded in
``trials/<number>/race-<k>/``; the configuration's values in reports and fronts are then over all
its seeds. Optuna keeps the values it was told on the search seeds: the sampler learned from them,
and a finished Optuna trial cannot change.

Everything is planned from the records on disk, so a rerun after a killed driver goes on where the
race stood: finished blocks are kept and counted against the budget, unfinished ones trained again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.objectives import Constraint, Objective
from analysis.racing import front_probability, race_seeds, uncertain
from analysis.record import RESULT_FILE, race_record_dirs, read_json_lines, trial_record_dir
from analysis.results import trial_seeds

__all__ = ["RacePlanner", "RaceRound", "race_summary"]


@dataclass(frozen=True)
class RaceRound:
    """One round of the race: the front probabilities it was planned from and the blocks it trains."""

    probability: dict[int, float]
    members: list[dict[str, Any]]


def _finished_blocks(trial_dir: Path) -> int:
    """How many race blocks of a configuration have ended (their final line written)."""
    n = 0
    for d in race_record_dirs(trial_dir):
        _, last, _, _ = read_json_lines(d / RESULT_FILE)
        n += bool(last and last.get("final") is True)
    return n


class RacePlanner:
    """Plans the race of one study from its records.

    Args:
        study_dir: the study directory.
        budget: model trainings the race may spend in all (``--race-seeds``); 0 turns racing off.
        block: seeds per race block (the study's seed count: every block as large as the search's).
        objectives: the study's objectives.
        constraints: the study's constraints (a configuration breaking one is off the front).
        seed: seeds the bootstrap (with the number of finished blocks: a rerun plans the same round).
    """

    def __init__(
        self,
        *,
        study_dir: Path,
        budget: int,
        block: int,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        seed: int = 0,
    ) -> None:
        self._dir = study_dir
        self.budget = max(0, int(budget))
        self.block = max(1, int(block))
        self._objectives = list(objectives)
        self._constraints = list(constraints)
        self._seed = int(seed)
        self._handed: set[tuple[int, int]] = set()  # (number, block) given to Ray trials in this run
        self.rounds: list[RaceRound] = []

    def _done(self, numbers: Sequence[int]) -> dict[int, int]:
        return {n: _finished_blocks(trial_record_dir(self._dir, n)) for n in numbers}

    def _spent(self, done: Mapping[int, int]) -> int:
        """Model trainings spent: finished blocks (``done``: per configuration) and those handed out in this run."""
        blocks = {(n, k) for n, d in done.items() for k in range(1, d + 1)} | self._handed
        return len(blocks) * self.block

    def plan(self, params: Mapping[int, Mapping[str, Any]]) -> RaceRound | None:
        """The next round for the finished configurations ``params`` (number -> parameters); None when done.

        Done means: racing is off, the budget cannot pay for one more block, or no configuration's
        front membership is uncertain.
        """
        numbers = sorted(params)
        done = self._done(numbers)
        left = self.budget - self._spent(done)
        if left < self.block:
            return None
        per_seed = {}
        for n in numbers:
            seeds = trial_seeds(trial_record_dir(self._dir, n))
            if seeds is not None and len(seeds.get("seed", ())):
                per_seed[n] = seeds
        rng = np.random.default_rng([self._seed, sum(done.values())])
        probability = front_probability(per_seed, self._objectives, constraints=self._constraints, rng=rng)
        # a block handed out in this run that did not finish (its Ray trial failed) is not tried again
        racing = [n for n in uncertain(probability) if (n, done[n] + 1) not in self._handed]
        racing = racing[: left // self.block]
        if not racing:
            return None
        members = []
        for n in racing:
            block = done[n] + 1
            self._handed.add((n, block))
            members.append(
                {"number": n, "params": dict(params[n]), "seeds": race_seeds(block, self.block), "race": block}
            )
        plan = RaceRound(probability, members)
        self.rounds.append(plan)
        return plan


def race_summary(study_dir: Path, rounds: Sequence[RaceRound], budget: int) -> str:
    """One paragraph: what racing did in this run and whether it changed the best configuration.

    The best configuration is the best feasible one by the study's first objective, on the search
    seeds (what Optuna was told) and on all seeds (what the records now hold).
    """
    from analysis.racing import best_before_and_after
    from analysis.results import load_study

    study = load_study(study_dir)
    done = study.done()
    if done.empty:
        return "seed racing: nothing finished to race"
    blocks = int(done["race_blocks"].fillna(0).sum())
    n_raced = int((done["race_blocks"].fillna(0) > 0).sum())
    block = len(study.record.get("seeds") or ()) or 1
    parts = [
        f"seed racing: {len(rounds)} round(s) in this run; {n_raced} configuration(s) raced on {blocks} block(s) of "
        f"{block} seeds in all ({blocks * block} of {budget} trainings spent)"
    ]
    before, after = best_before_and_after(study)
    if before is not None and after is not None:
        first = study.objectives[0]
        row = done.set_index("trial_id").loc[after]
        sem = row.get("score_sem") if first.column == "score_mean" else None
        spread = f" ± {sem:.3f}" if isinstance(sem, float) and math.isfinite(sem) else ""
        verdict = "unchanged by racing" if before == after else f"racing changed it from {before}"
        parts.append(
            f"best {first.column}: {after} ({float(row[first.column]):.4g}{spread} on {int(row['n_seeds'])} seeds), "
            f"{verdict}"
        )
    if budget - blocks * block >= block:
        parts.append("no configuration's place on the front is uncertain any more")
    return "; ".join(parts)
