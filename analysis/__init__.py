"""Results of excolor studies: the study record, tables, Pareto fronts, plots and reports (no running Ray needed).

``analysis`` sits between the science and the runner (``excolor <- analysis <- tune``): ``tune``
writes study records through ``record`` and reads objectives from ``objectives``.

- ``errors``      ``AnalysisError``, the one error for bad input (a ValueError; one line)
- ``record``      the study record: file names, format id, the trial-state rule, study.json read/write
- ``objectives``  objective names -> columns and directions, per experiment; constraints
- ``aggregate``   per-seed results -> trial-level values (mean, std, q10, cvar10, fail rate)
- ``validation``  held-out validations (``excolor validate``): records and the paired comparison
- ``racing``      seed racing: front probability by bootstrap over seeds, race seeds, raced-value tables
- ``results``     a study directory -> ``Study`` (its experiment, trials, per-seed rows, Optuna trials);
                  several side by side
- ``pareto``      fronts, ranks, hypervolume (history), seed attainment (moocore); the §9.10 original rule
- ``tables``      the study-level answers: front summary, hand schedule, §9.10 columns, best model choice
- ``models``      checkpoints -> trained models of the experiment's kind and shape -> named-colour table
                  and error-vs-similarity data
- ``plots``       matplotlib figures (PNG, no pyplot)
- ``figures``     one model's figures: colour slices, latent views, per-colour errors
- ``report``      report.md, self-contained report.html, best_model_table.tex, pareto.csv
- ``train_report`` the report of an ``excolor train`` output directory
- ``cli``         what ``excolor status``, ``pareto`` and ``report`` run

The package's names are imported on first use (``analysis.load_study`` imports ``results``): pandas,
moocore and matplotlib are paid for only by the commands that need them, not by a trial process or
``excolor train``. Loading a study reads its experiment record, which imports ``excolor`` (and torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from analysis.errors import AnalysisError
    from analysis.objectives import ALL_OBJECTIVES, Objective, experiment_objectives, resolve_objectives
    from analysis.pareto import (
        domination_counts,
        front_mask,
        hypervolume,
        hypervolume_history,
        invalid_mask,
        normalise,
        original_best,
        original_front,
        original_minimize,
        pareto_ranks,
        seed_attainment,
    )
    from analysis.racing import front_probability, racing_table
    from analysis.report import ReportPaths, write_report
    from analysis.results import Study, StudyCollection, load_studies, load_study, trial_seeds
    from analysis.validation import Validation, heldout_table, read_validations

# Each public name and the module it lives in; imported on first use, so a command that needs one
# module (``excolor train`` reads only ``errors``) does not pay for pandas, moocore and matplotlib.
_EXPORTS = {
    "AnalysisError": "errors",
    "ALL_OBJECTIVES": "objectives",
    "Objective": "objectives",
    "experiment_objectives": "objectives",
    "resolve_objectives": "objectives",
    "domination_counts": "pareto",
    "front_mask": "pareto",
    "hypervolume": "pareto",
    "hypervolume_history": "pareto",
    "invalid_mask": "pareto",
    "normalise": "pareto",
    "original_best": "pareto",
    "original_front": "pareto",
    "original_minimize": "pareto",
    "pareto_ranks": "pareto",
    "seed_attainment": "pareto",
    "front_probability": "racing",
    "racing_table": "racing",
    "Study": "results",
    "StudyCollection": "results",
    "load_studies": "results",
    "load_study": "results",
    "trial_seeds": "results",
    "Validation": "validation",
    "heldout_table": "validation",
    "read_validations": "validation",
    "ReportPaths": "report",
    "write_report": "report",
}

__all__ = [
    "ALL_OBJECTIVES",
    "AnalysisError",
    "Objective",
    "ReportPaths",
    "Study",
    "StudyCollection",
    "Validation",
    "domination_counts",
    "experiment_objectives",
    "front_mask",
    "front_probability",
    "heldout_table",
    "hypervolume",
    "hypervolume_history",
    "invalid_mask",
    "load_studies",
    "load_study",
    "normalise",
    "original_best",
    "original_front",
    "original_minimize",
    "pareto_ranks",
    "racing_table",
    "read_validations",
    "resolve_objectives",
    "seed_attainment",
    "trial_seeds",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"analysis.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
