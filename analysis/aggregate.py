"""Per-seed results -> trial-level values: how a configuration's seeds become its objectives.

A configuration is trained on many seeds; what a study optimises and a front compares are
aggregates over them: the mean, standard deviation and 10 % quantile of every metric
(``score_mean``, ``val_recon_q10``, ...), and for the score its standard error ``score_sem``, the
mean of its worst 10 % of seeds ``score_cvar10`` and ``fail_rate``, the share of seeds that scored
below 0.5, collapsed or diverged (science.md §14.2). The trainables report them and held-out
validations recompute them, with this one rule for diverged seeds: each counts as the worst
outcome of every metric (``DIVERGED_VALUE``), so only finite numbers ever reach Tune and Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["DIVERGED_VALUE", "FAIL_SCORE", "aggregate"]

DIVERGED_VALUE: dict[str, float] = {
    "score": 0.0,  # no ablation effect at all
    "ablated_r": 0.0,
    "val_recon": 1.0,  # the largest possible clamped squared error
    "val_loss": 1.0,
    "val_anchor": 2.0 * 31 / 351,  # red pointing away from its axis (batch-weighted, §4.4)
    "val_anti-anchor": 1.0,
    "red_angle_deg": 180.0,
    "max_train_recon": 1.0,
}
"""What a diverged seed counts as in the aggregates (worst value of each metric). Metrics not listed
here -- another experiment's ``val_<regularizer>`` -- count at the worst value any seed of the trial
reached, and an intervention's ``<name>_r`` at 0 (no correlation)."""

FAIL_SCORE = 0.5
"""A seed whose score is below this (or that collapsed or diverged) counts as failed in ``fail_rate``."""


def _aggregated(metrics: Mapping[str, np.ndarray]) -> list[str]:
    """The per-seed metrics that get mean/std/q10: the known ones, every val_*, every <intervention>_r."""
    extra = [k for k in metrics if k not in DIVERGED_VALUE and (k.startswith("val_") or k.endswith("_r"))]
    return [k for k in DIVERGED_VALUE if k in metrics] + extra


def _diverged_value(key: str, values: np.ndarray) -> float:
    if key in DIVERGED_VALUE:
        return DIVERGED_VALUE[key]
    if key.endswith("_r") and not key.startswith("val_"):
        return 0.0
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 1.0


def aggregate(metrics: Mapping[str, np.ndarray], /, *, diverged: np.ndarray) -> dict[str, float]:
    """Per-seed arrays -> finite scalars: ``<metric>_mean``, ``_std``, ``_q10`` for each metric, and more.

    >>> out = aggregate({"score": np.array([0.9, 0.2, np.nan])}, diverged=np.array([False, False, True]))
    >>> round(out["score_mean"], 4), out["score_cvar10"], round(out["fail_rate"], 4), round(out["diverged_frac"], 4)
    (0.3667, 0.0, 0.6667, 0.3333)
    """
    out: dict[str, float] = {}
    filled: dict[str, np.ndarray] = {}
    for key in _aggregated(metrics):
        values = np.asarray(metrics[key], dtype=np.float64).copy()
        bad = diverged | ~np.isfinite(values)
        values[bad] = _diverged_value(key, np.where(bad, np.nan, values))
        filled[key] = values
        out[f"{key}_mean"] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[f"{key}_q10"] = float(np.quantile(values, 0.1))
    out["diverged_frac"] = float(np.mean(diverged))
    collapsed = np.asarray(metrics.get("collapsed", np.zeros(len(diverged))), dtype=bool)
    if "collapsed" in metrics:
        out["collapsed_frac"] = float(np.mean(collapsed))
    if "score" in filled:  # seed-robust views of the score (science.md §14.2)
        score = filled["score"]
        worst = np.sort(score)[: max(1, math.ceil(0.1 * len(score)))]
        out["score_cvar10"] = float(worst.mean())
        out["score_sem"] = out["score_std"] / math.sqrt(len(score))
        out["fail_rate"] = float(np.mean((score < FAIL_SCORE) | collapsed | diverged))
    for key in metrics:
        if key.startswith("labels/n/") and key != "labels/n_total":
            out[f"{key}_mean"] = float(np.mean(metrics[key]))
    assert all(math.isfinite(v) for v in out.values()), out
    return out
