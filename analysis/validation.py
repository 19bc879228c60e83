"""Held-out validation: a study's chosen configurations re-trained on new seeds, and what that says.

A search ranks configurations on its own seeds, so its winners are partly lucky ones. ``excolor
validate`` re-trains the chosen trials (and the hand schedule) on seeds the search never saw and
records them in ``STUDY/validation/<seeds>/`` (``analysis.record``). This module reads those
records and answers: each trial's search and held-out means with their standard errors and seed
counts, the paired difference to the hand schedule on the same held-out seeds with a 95 %
interval, and the Pareto ranks on held-out seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.aggregate import FAIL_SCORE, aggregate
from analysis.errors import AnalysisError
from analysis.pareto import pareto_ranks
from analysis.record import SEEDS_FILE, VALIDATION_DIR, VALIDATION_FILE
from analysis.results import Study

__all__ = ["HELDOUT_COLUMNS", "Validation", "heldout_table", "read_validations", "seeds_label", "validation_dir"]

HELDOUT_COLUMNS = (
    "trial_id",
    "hand",
    "search_score",
    "search_sem",
    "search_seeds",
    "heldout_score",
    "heldout_sem",
    "heldout_seeds",
    "heldout_below_0.5",
    "heldout_collapsed",
    "heldout_recon",
    "vs_hand",
    "vs_hand_low",
    "vs_hand_high",
    "heldout_rank",
)
"""The columns of ``heldout_table`` that ``excolor validate`` and the report show, in order."""


def seeds_label(seeds: Sequence[int]) -> str:
    """Seeds as ranges, a directory name: ``[1000, ..., 1063]`` -> ``'1000-1063'``.

    >>> seeds_label([1, 2, 3, 7, 9, 10])
    '1-3_7_9-10'
    """
    parts: list[str] = []
    ordered = sorted(set(int(s) for s in seeds))
    start = prev = ordered[0]
    for s in [*ordered[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        if s is not None:
            start = prev = s
    return "_".join(parts)


def validation_dir(study_dir: Path, seeds: Sequence[int]) -> Path:
    """Where a validation of ``study_dir`` on ``seeds`` is recorded."""
    return study_dir / VALIDATION_DIR / seeds_label(seeds)


@dataclass(frozen=True)
class Validation:
    """One held-out validation of a study, as recorded.

    Attributes:
        directory: ``STUDY/validation/<seeds>``.
        seeds: the held-out seeds.
        trials: the validated trial ids, the hand schedule's included.
        hand: the hand schedule's trial id (None if the study has none).
        per_seed: one row per trial x held-out seed: ``trial_id``, ``seed``, ``score``, ``val_recon``, ...
    """

    directory: Path
    seeds: tuple[int, ...]
    trials: tuple[str, ...]
    hand: str | None
    per_seed: pd.DataFrame

    @property
    def label(self) -> str:
        return self.directory.name


def read_validations(study_dir: Path) -> list[Validation]:
    """Every validation recorded in the study, complete trials only (a running one shows what is done)."""
    root = study_dir / VALIDATION_DIR
    out = []
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        path = directory / VALIDATION_FILE
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            seeds = tuple(int(s) for s in meta["seeds"])
            trials = tuple(str(t) for t in meta["trials"])
            hand = meta.get("hand")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise AnalysisError(f"{path} is not a validation record: {err}") from None
        frames = []
        for trial_id in trials:
            seeds_csv = directory / trial_id / SEEDS_FILE
            if seeds_csv.is_file():
                frames.append(pd.read_csv(seeds_csv).assign(trial_id=trial_id))
        per_seed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["trial_id", "seed"])
        out.append(Validation(directory, seeds, trials, str(hand) if hand is not None else None, per_seed))
    return out


def _paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of a - b over paired seeds and its 95 % t-interval (NaN for fewer than 2 pairs)."""
    from scipy import stats

    d = a - b
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan, math.nan, math.nan)
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def heldout_table(study: Study, validation: Validation) -> pd.DataFrame:
    """Search vs held-out results of every validated trial, best held-out score first.

    Columns: ``trial_id``, ``hand``, ``search_score``, ``search_sem``, ``search_seeds``,
    ``heldout_score``, ``heldout_sem``, ``heldout_seeds``, ``heldout_below_0.5`` (share of seeds
    scoring < 0.5), ``heldout_collapsed``, ``heldout_recon``, ``vs_hand`` with ``vs_hand_low`` /
    ``vs_hand_high`` (the paired difference of the score to the hand schedule on the same held-out
    seeds, 95 % t-interval), ``heldout_rank`` (Pareto rank over the study's objectives recomputed
    on the held-out seeds; 0 = front), and each objective's held-out column (``heldout/<column>``).
    """
    rows: list[dict[str, Any]] = []
    per_seed = validation.per_seed
    hand_scores = None
    if validation.hand is not None:
        hand_rows = per_seed[per_seed["trial_id"] == validation.hand].set_index("seed")
        hand_scores = hand_rows.get("score")
    by_id = study.trials.set_index("trial_id")
    for trial_id in validation.trials:
        mine = per_seed[per_seed["trial_id"] == trial_id]
        if mine.empty:
            continue
        arrays = {c: mine[c].to_numpy() for c in mine.columns if c not in ("trial_id",)}
        diverged = np.asarray(mine["diverged"], dtype=bool) if "diverged" in mine else np.zeros(len(mine), bool)
        agg = aggregate(
            {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items() if k != "seed"}, diverged=diverged
        )
        score = np.where(diverged, 0.0, mine["score"].to_numpy(dtype=np.float64))
        row: dict[str, Any] = {"trial_id": trial_id, "hand": trial_id == validation.hand}
        row["vs_hand"] = row["vs_hand_low"] = row["vs_hand_high"] = math.nan
        if trial_id in by_id.index:
            search = by_id.loc[trial_id]
            row["search_score"] = search.get("score_mean")
            n = int(search.get("n_seeds") or 0)
            std = search.get("score_std")
            row["search_sem"] = float(std) / math.sqrt(n) if n and std == std else math.nan
            row["search_seeds"] = n
        row.update(
            {
                "heldout_score": agg["score_mean"],
                "heldout_sem": agg["score_sem"],
                "heldout_seeds": len(mine),
                "heldout_below_0.5": float(np.mean(score < FAIL_SCORE)),
                "heldout_collapsed": agg.get("collapsed_frac", math.nan),
                "heldout_recon": agg.get("val_recon_mean", math.nan),
            }
        )
        if hand_scores is not None and trial_id != validation.hand:
            paired = mine.set_index("seed")["score"].to_frame("a").join(hand_scores.rename("b"), how="inner")
            paired = paired.fillna(0.0)  # a diverged seed scores 0 (analysis.aggregate)
            row["vs_hand"], row["vs_hand_low"], row["vs_hand_high"] = _paired_difference(
                paired["a"].to_numpy(dtype=np.float64), paired["b"].to_numpy(dtype=np.float64)
            )
        for o in study.objectives:
            row[f"heldout/{o.column}"] = agg.get(o.column, math.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    columns = [f"heldout/{o.column}" for o in study.objectives]
    points = table[columns].to_numpy(dtype=np.float64)
    table["heldout_rank"] = pareto_ranks(points, maximise=[o.maximise for o in study.objectives])
    return table.sort_values("heldout_score", ascending=False, kind="stable").reset_index(drop=True)
