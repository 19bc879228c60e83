"""Seed racing: which configurations' places on the front the seeds cannot settle yet.

A configuration's objectives are aggregates over the seeds it was trained on (``analysis.aggregate``);
with 16 seeds the mean score of a schedule is uncertain by about ±0.02, as large as the gaps between
the configurations near a front. Racing trains those configurations on more seeds, in blocks of the
study's seed count, until the front settles or a seed budget is spent (``excolor search --race-seeds``).

Whether a configuration's front membership is settled is judged by a bootstrap over seeds: each
round resamples every configuration's seeds with replacement, recomputes its objectives with the
same aggregation a trial reports, and draws the front (constraints included). A configuration on the
front in at least ``1 - settle`` of the rounds is settled on it; in at most ``settle`` of them, off it;
anything between is uncertain and raced next. Configurations far behind the front (outside the first
``depth`` non-dominated layers of the point estimates) keep their point estimates in every round: they
cannot reach the front, and leaving them out keeps a 1,000-configuration study's bootstrap quick.

Race seeds are common to all configurations (block ``k`` is the same seeds for every configuration
raced ``k`` times, so comparisons are paired) and far from the seeds anyone types: block ``k`` of size
``S`` is ``RACE_SEED_BASE + (k - 1) * S`` onwards.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from analysis.aggregate import aggregate
from analysis.objectives import Constraint, Objective, feasible
from analysis.pareto import front_mask, pareto_ranks

if TYPE_CHECKING:
    from analysis.results import Study

K = TypeVar("K", bound=Hashable)

__all__ = [
    "RACE_SEED_BASE",
    "best_before_and_after",
    "front_probability",
    "race_seeds",
    "racing_table",
    "uncertain",
]

RACE_SEED_BASE = 1_000_000
"""The first race seed: racing never trains a seed a researcher is likely to hold out."""


def race_seeds(block: int, size: int) -> list[int]:
    """The seeds of race block ``block`` (1, 2, ...) of ``size`` seeds, the same for every configuration.

    >>> race_seeds(1, 4), race_seeds(2, 4)
    ([1000000, 1000001, 1000002, 1000003], [1000004, 1000005, 1000006, 1000007])
    """
    if block < 1 or size < 1:
        raise ValueError(f"race block {block} of {size} seeds: both must be >= 1")
    start = RACE_SEED_BASE + (block - 1) * size
    return list(range(start, start + size))


def _objective_values(
    per_seed: Mapping[str, np.ndarray], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> np.ndarray:
    """One configuration's objective vector (NaN where a constraint is broken: never on a front)."""
    diverged = np.asarray(per_seed.get("diverged", np.zeros(len(per_seed["seed"]))), dtype=bool)
    values = aggregate({k: v for k, v in per_seed.items() if k not in ("seed", "diverged")}, diverged=diverged)
    if constraints and not feasible(values, constraints):
        return np.full(len(objectives), np.nan)
    return np.array([values.get(o.column, np.nan) for o in objectives], dtype=np.float64)


def front_probability(
    per_seed: Mapping[K, Mapping[str, np.ndarray]],
    objectives: Sequence[Objective],
    *,
    constraints: Sequence[Constraint] = (),
    rounds: int = 200,
    depth: int = 3,
    rng: np.random.Generator,
) -> dict[K, float]:
    """The share of bootstrap rounds in which each configuration is on the front.

    Args:
        per_seed: per configuration, its per-seed columns (``seed``, ``score``, ``val_recon``,
            ``diverged``, ... as in ``seeds.csv``), all of one length per configuration.
        objectives: the study's objectives.
        constraints: the study's constraints; a configuration breaking one is off the front.
        rounds: bootstrap rounds.
        depth: configurations outside the first ``depth`` non-dominated layers are not resampled.
        rng: the random generator (seeded by the caller: a rerun plans the same race).

    Returns:
        Per configuration, a probability in [0, 1]; 0.0 for those not resampled.
    """
    keys = list(per_seed)
    if not keys:
        return {}
    maximise = [o.maximise for o in objectives]
    points = np.stack([_objective_values(per_seed[k], objectives, constraints) for k in keys])
    ranks = pareto_ranks(points, maximise=maximise)
    near = [i for i, r in enumerate(ranks) if 0 <= r < depth]
    hits = np.zeros(len(keys))
    for _ in range(rounds):
        resampled = points.copy()
        for i in near:
            columns = per_seed[keys[i]]
            n = len(columns["seed"])
            pick = rng.integers(0, n, size=n)
            resampled[i] = _objective_values(
                {c: np.asarray(v)[pick] for c, v in columns.items()}, objectives, constraints
            )
        hits += front_mask(resampled, maximise=maximise)
    return {k: float(hits[i] / rounds) for i, k in enumerate(keys)}


def uncertain(probability: Mapping[K, float], *, settle: float = 0.1) -> list[K]:
    """Configurations whose front membership is unsettled, the most uncertain (nearest 1/2) first.

    >>> uncertain({"a": 1.0, "b": 0.45, "c": 0.05, "d": 0.8})
    ['b', 'd']
    """
    if not 0.0 < settle < 0.5:
        raise ValueError(f"settle must be in (0, 0.5), got {settle}")
    open_ = [k for k, p in probability.items() if settle < p < 1.0 - settle]
    return sorted(open_, key=lambda k: abs(probability[k] - 0.5))


def _best(values: Mapping[str, float], maximise: bool) -> str | None:
    finite = {k: v for k, v in values.items() if np.isfinite(v)}
    if not finite:
        return None
    return (max if maximise else min)(finite, key=lambda k: finite[k])


def racing_table(study: Study) -> pd.DataFrame:
    """The study's raced configurations: each objective on the search seeds (as Optuna was told) and on all seeds.

    Columns: ``trial_id``, ``race_blocks``, ``n_seeds``, ``search_<column>`` and ``<column>`` per
    objective, ``score_sem``. Empty when nothing was raced.
    """
    done = study.done()
    if "race_blocks" not in done or not (done["race_blocks"].fillna(0) > 0).any() or study.optuna is None:
        return pd.DataFrame()
    raced = done[done["race_blocks"].fillna(0) > 0]
    told = study.optuna.set_index("number")
    out = pd.DataFrame(
        {"trial_id": raced["trial_id"], "race_blocks": raced["race_blocks"], "n_seeds": raced["n_seeds"]}
    )
    for o in study.objectives:
        column = f"value/{o.name}"
        search = [told[column].get(int(n), np.nan) if column in told else np.nan for n in raced["number"]]
        out[f"search_{o.column}"] = search
        out[o.column] = raced[o.column].to_numpy()
    if "score_sem" in raced:
        out["score_sem"] = raced["score_sem"].to_numpy()
    return out.reset_index(drop=True)


def best_before_and_after(study: Study) -> tuple[str | None, str | None]:
    """The best feasible configuration by the first objective on the search seeds, and on all seeds."""
    done = study.done()
    if done.empty or study.optuna is None:
        return None, None
    first = study.objectives[0]
    ok = [feasible(r, study.constraints) for r in done.to_dict("records")]
    done = done[ok]
    told = study.optuna[study.optuna["state"] == "COMPLETE"].set_index("number")
    column = f"value/{first.name}"
    search = {
        str(t): float(told[column].get(int(n), np.nan)) if column in told else np.nan
        for t, n in zip(done["trial_id"], done["number"])
    }
    everything = {str(t): float(v) for t, v in zip(done["trial_id"], done[first.column])}
    return _best(search, first.maximise), _best(everything, first.maximise)
