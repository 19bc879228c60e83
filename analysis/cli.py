"""What ``excolor status``, ``pareto`` and ``report`` do; ``tune.cli`` parses the arguments and calls these.

Both print their results on stdout and return an exit status. Bad input raises ``AnalysisError``
(one line, no traceback, for the caller to print); a study with nothing finished yet is not an
error: it gets an honest empty answer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.record import STATES
from analysis.report import format_number, format_table, front_table, write_report
from analysis.results import Study, load_study
from analysis.tables import front_summary

__all__ = ["fitted", "pareto_command", "report_command", "status_command", "status_text"]


def _csv_path(study_dir: Path, out: Path | None) -> Path:
    if out is None:
        return study_dir / "report" / "pareto.csv"
    out = out.expanduser()
    return out / "pareto.csv" if out.is_dir() or out.suffix == "" else out


def fitted(shown: pd.DataFrame, /, *, width: int | None = None) -> str:
    """A text table cut into blocks of columns that fit the terminal, each led by the first column.

    >>> frame = pd.DataFrame({"trial_id": ["0001"], "a" * 30: ["1"], "b" * 30: ["2"]})
    >>> print(fitted(frame, width=40))
    trial_id aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        0001                              1
    <BLANKLINE>
    trial_id bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
        0001                              2
    """
    width = width or shutil.get_terminal_size((100, 24)).columns
    if shown.shape[1] <= 1:
        return shown.to_string(index=False)
    key, rest = shown.columns[0], list(shown.columns[1:])
    cell = {c: max(len(str(c)), *(len(str(v)) for v in shown[c])) + 1 for c in shown.columns}
    blocks: list[list[str]] = [[]]
    used = cell[key]
    for c in rest:
        if blocks[-1] and used + cell[c] > width:
            blocks.append([])
            used = cell[key]
        blocks[-1].append(c)
        used += cell[c]
    return "\n\n".join(shown[[key, *block]].to_string(index=False) for block in blocks)


_STATUS_COLUMNS = ("score_mean", "score_sem", "score_q10", "val_recon_mean")
_STATUS_TAIL = ("diverged_frac", "collapsed_frac", "n_seeds")


def status_text(study: Study, /) -> str:
    """Trials by state, Optuna's count, the best mean score and the front over the study's objectives.

    The front is ``front_summary``'s (moocore), the same as ``excolor pareto``'s, and numbers are
    shown to 4 significant digits (a val_recon of 4.7e-05 reads as such, not as 0.0000).
    """
    record = study.record
    counts = study.counts()
    requested = record.get("trials") if study.kind == "search" else None
    lines = [
        f"study {study.name!r} ({study.kind}, experiment {study.experiment.name}) in {study.directory}",
        "trials: "
        + ", ".join(f"{counts[s]} {s}" for s in STATES)
        + (f" (of {requested} requested)" if requested else ""),
    ]
    if study.optuna is not None:
        states = study.optuna["state"].str.lower().value_counts()
        lines.append("optuna: " + ", ".join(f"{k} {int(v)}" for k, v in sorted(states.items())))
    summary = front_summary(study)
    done = summary.done
    if len(done) and done["score_mean"].notna().any():
        best = done.loc[done["score_mean"].idxmax()]
        lines.append(f"best mean score: {format_number(best['score_mean'])} ({best['trial_id']})")
    labels = " / ".join(o.label for o in summary.objectives)
    lines.append(f"Pareto front ({labels}): {len(summary.front)} trials")
    if summary.front.empty:
        lines.append("(no finished trials yet)")
    else:
        columns = [*_STATUS_COLUMNS, *(c for c in summary.columns if c not in _STATUS_COLUMNS), *_STATUS_TAIL]
        table = summary.front[["trial_id", *(c for c in columns if c in summary.front.columns)]]
        lines.append(fitted(format_table(table)))
    if summary.invalid:
        lines.append(f"left out for a NaN or infinite objective: {', '.join(summary.invalid)}")
    if summary.infeasible:
        shown = ", ".join(str(c) for c in study.constraints)
        lines.append(f"left out for breaking {shown}: {', '.join(summary.infeasible)}")
    for _, row in study.trials[study.trials["state"] == "failed"].iterrows():
        lines.append(f"failed {row['trial_id']}: {row['error']}")
    return "\n".join(lines)


def status_command(directory: Path) -> int:
    """Print ``status_text`` of the study in ``directory``; AnalysisError if it is not a study."""
    print(status_text(load_study(directory)))
    return 0


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
        print(fitted(format_table(table)))
    if summary.invalid:
        print(f"left out for a NaN or infinite objective: {', '.join(summary.invalid)}")
    if summary.infeasible:
        shown = ", ".join(str(c) for c in study.constraints)
        print(f"left out for breaking {shown}: {', '.join(summary.infeasible)}")
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


def report_command(directory: Path, out: Path | None, *, seed: int | None = None, trial: str | None = None) -> int:
    """Write the report of a study or of an ``excolor train`` output directory, and print where.

    Args:
        directory: a study directory, or the ``--out`` directory of ``excolor train``.
        out: the output directory; default ``DIRECTORY/report/``.
        seed: render this seed's model in full (colour slices, latent views, per-colour table).
        trial: a study's trial to take that model from (default: the best model's).

    Returns:
        0.

    Raises:
        AnalysisError: neither a study nor a train output, an unknown trial or seed, or an
            unwritable output directory.
    """
    from analysis.record import STUDY_FILE
    from analysis.train_report import write_train_report

    if not (Path(directory) / STUDY_FILE).exists() and (Path(directory) / "metrics.csv").exists():
        if trial is not None:
            raise AnalysisError(f"{directory} is an `excolor train` output, not a study: it has no trials (--trial)")
        paths = write_train_report(directory, out, seed=seed)
    else:
        paths = write_report(directory, out, seed=seed, trial=trial)
    for path in (paths.markdown, paths.html, paths.pareto_csv, paths.latex):
        if path is not None and Path(path).exists():
            print(f"wrote {path}")
    if paths.latex is None:
        print("no best_model_table.tex: no finished trial with a checkpoint to evaluate")
    return 0
