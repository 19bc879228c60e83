"""What ``excolor pareto DIR`` and ``excolor report DIR`` do; ``tune.cli`` parses the arguments and calls these.

Both print their results on stdout and return an exit status. Bad input raises ``AnalysisError``
(one line, no traceback, for the caller to print); a study with nothing finished yet is not an
error: it gets an honest empty answer.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.report import format_table, front_table, write_report
from analysis.results import STATES, load_study
from analysis.tables import front_summary

__all__ = ["pareto_command", "report_command"]


def _csv_path(study_dir: Path, out: Path | None) -> Path:
    if out is None:
        return study_dir / "report" / "pareto.csv"
    out = out.expanduser()
    return out / "pareto.csv" if out.is_dir() or out.suffix == "" else out


def pareto_command(directory: Path, objectives: list[str] | None, out: Path | None) -> int:
    """Print the study's Pareto front as a table and write it as CSV.

    Args:
        directory: the study directory.
        objectives: objective names valid for the study's experiment (``score``, ``recon``,
            ``score-q10`` or a validating regularizer: ``anchor`` in Ex 2.9.1, ``reg-anchor`` in
            Ex 2.8, ...); None for the study's own.
        out: the CSV file, or a directory to put ``pareto.csv`` in; default ``STUDY/report/pareto.csv``.

    Returns:
        0.

    Raises:
        AnalysisError: not a study, an objective the study's experiment does not know (the
            message lists the known ones), or an unwritable output.
    """
    study = load_study(directory)
    summary = front_summary(study, objectives)
    counts = study.counts()
    states = ", ".join(f"{counts[s]} {s}" for s in STATES)
    print(f"study {study.name!r} ({study.kind}, experiment {study.experiment.name}) in {study.directory}: {states}")
    labels = ", ".join(o.label for o in summary.objectives)
    table = front_table(summary)
    if summary.done.empty:
        print(f"Pareto front ({labels}): no finished trials yet, the front is empty")
    else:
        print(
            f"Pareto front ({labels}): {len(summary.front)} of {len(summary.done)} done trials; "
            f"hypervolume {summary.hypervolume:.4f} (normalised objectives, reference 1.1)"
        )
        shown = format_table(table)
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(shown.to_string(index=False))
    if summary.invalid:
        print(f"left out for a NaN or infinite objective: {', '.join(summary.invalid)}")
    hand = summary.hand()
    for _, row in hand.iterrows():
        where = "on the front" if row["on_front"] else f"dominated by {row['dominated_by']} trial(s)"
        print(f"hand schedule {row['trial_id']}: Pareto rank {row['pareto_rank']} ({where})")
    path = _csv_path(study.directory, out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    except OSError as err:
        raise AnalysisError(f"cannot write {path}: {err.strerror or err}") from None
    print(f"wrote {path}")
    return 0


def report_command(directory: Path, out: Path | None) -> int:
    """Write the study's report (report.md, report.html, best_model_table.tex, pareto.csv) and print where.

    Args:
        directory: the study directory.
        out: the output directory; default ``STUDY/report/``.

    Returns:
        0.

    Raises:
        AnalysisError: not a study, or an unwritable output directory.
    """
    paths = write_report(directory, out)
    print(f"wrote {paths.markdown}")
    print(f"wrote {paths.html}")
    print(f"wrote {paths.pareto_csv}")
    if paths.latex is not None:
        print(f"wrote {paths.latex}")
    else:
        print("no best_model_table.tex: no finished trial with a checkpoint to evaluate")
    return 0
