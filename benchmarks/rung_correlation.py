"""How well a cohort search's intermediate validations predict its final objectives (halving's premise).

Successive halving drops configurations at a *rung* (a validation step) on the strength of their
metrics there. That only works if the rung's ranking agrees with the final one. This reads a
finished cohort search (every configuration's ``trials/NNNN/result.json`` holds one line per
validation) and prints, for each objective and each validation step, the Spearman rank correlation
between the configurations' values there and their final values, and how many of the final best
quarter are already in the best quarter at that step.

    python benchmarks/rung_correlation.py runs/my-search

A multi-objective front needs every objective predicted: a rung is only usable for dropping
configurations where all objectives' correlations are high.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from analysis.errors import AnalysisError
from analysis.record import RESULT_FILE, read_reports
from analysis.results import load_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a cohort search's directory")
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study)
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    columns = [o.column for o in study.objectives]
    finals, rungs = [], []
    for directory in study.done()["directory"]:
        reports = read_reports(study.directory / str(directory) / RESULT_FILE)
        last = reports[-1] if reports else None
        if not last or last.get("final") is not True:
            continue
        at = {int(r["step"]): r for r in reports if not r.get("final") and all(c in r for c in columns)}
        finals.append(last)
        rungs.append(at)
    if len(finals) < 8:
        print(f"error: {args.study} has {len(finals)} finished configurations; need at least 8", file=sys.stderr)
        return 2
    steps = sorted(set.intersection(*[set(r) for r in rungs]))
    length = max(int(f.get("step", 0)) for f in finals)
    k = max(1, len(finals) // 4)
    every = steps[0] if steps else "?"
    print(f"{study.name}: {len(finals)} configurations, validations every {every} of {length} steps")
    print(f"{'step':>6} {'of run':>7}  " + "  ".join(f"{c + ' rho':>20} {'top-1/4':>7}" for c in columns))
    for step in steps:
        cells = []
        for o in study.objectives:
            final = np.array([float(f[o.column]) for f in finals])
            rung = np.array([float(r[step][o.column]) for r in rungs])
            rho = float(spearmanr(rung, final).statistic)
            sign = -1.0 if o.maximise else 1.0
            best_final = set(np.argsort(sign * final)[:k].tolist())
            best_rung = set(np.argsort(sign * rung)[:k].tolist())
            cells.append(f"{rho:>20.3f} {len(best_final & best_rung) / k:>7.2f}")
        print(f"{step:>6} {step / length:>7.0%}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
