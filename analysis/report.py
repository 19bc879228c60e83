"""A study's report: report.md (+ PNGs), a self-contained report.html, best_model_table.tex, pareto.csv.

The report is assembled once as a list of blocks (headings, paragraphs, bullet lists, tables,
figures) and rendered twice: Markdown that links ``figures/*.png`` beside it, and HTML with every
image embedded as base64, so the one file can be mailed or opened on a machine without the study.

Contents: the study summary (the experiment: name, description, model, validating regularizers,
interventions; kind, trials by state, seeds, steps, objectives), failed trials and their reasons,
the Pareto front over the study's objectives with ranks, hypervolume and seed attainment, the hand
schedule's place, the plots, the §9.10 original-rule front (val_recon and the experiment's
validating regularizers minimised, score maximised) for sweeps of the hand schedule only, and the
per-seed distributions (box plots of score, val_recon, each validating regularizer, each
intervention's r and the loss-cube errors per trial), and one model's full set, rebuilt with its
trial's experiment: the named-colour table (science.md §10.1 layout), error-vs-similarity
correlations, the loss-cube errors per method, colour slices, latent views and the stacked figure.
The model is the best one (see ``analysis.tables.best_model_choice``) or the one chosen with
``seed``/``trial``. A study with no finished trial gets an honest short report.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.models import cube_metrics, evaluate_model, load_population
from analysis.pareto import DEFAULT_REFERENCE
from analysis.results import STATES, Study, load_study
from analysis.tables import (
    BestModel,
    FrontSummary,
    all_hand_sweep,
    best_model_choice,
    front_summary,
    objective_columns,
    study_original_rule,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REFERENCE_FRONT", "ReportPaths", "format_number", "format_table", "front_table", "write_report"]

REFERENCE_FRONT = (22, 60)
"""The Ex 2.9.1 notebook's §9.10 front: 22 of its 60 seeds (science.md §10.1)."""

_MAX_SCHEDULES = 8  # front trials drawn over the hand schedule; more is unreadable
_MAX_FAILED = 20
_MAX_BOXES = 24  # trials drawn in the per-seed distributions
_CUBE_STATS = ("max_mse", "median_mse")  # excolor.methods.CUBE_STATS


@dataclass(frozen=True)
class ReportPaths:
    """Where ``write_report`` put things. ``latex`` is None when no model could be evaluated."""

    directory: Path
    markdown: Path
    html: Path
    pareto_csv: Path
    latex: Path | None
    figures: tuple[Path, ...]


# --------------------------------------------------------------------------------- a tiny document


@dataclass
class _Table:
    frame: pd.DataFrame  # cells already formatted as strings
    swatches: list[str] | None = None  # one hex colour per row, shown as a first column in HTML


@dataclass
class _Figure:
    name: str
    png: bytes
    caption: str


@dataclass
class _Document:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, frame: pd.DataFrame, swatches: list[str] | None = None) -> None:
        self.blocks.append(("table", _Table(frame, swatches)))

    def figure(self, name: str, fig: Figure, caption: str) -> None:
        from analysis import plots  # matplotlib, paid only when a report is made

        self.blocks.append(("figure", _Figure(name, plots.png_bytes(fig), caption)))

    def figures(self) -> list[_Figure]:
        return [b for kind, b in self.blocks if kind == "figure"]

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, block in self.blocks:
            if kind == "heading":
                out += [f"{'#' * block[0]} {block[1]}", ""]
            elif kind == "para":
                out += [block, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in block] + [""]
            elif kind == "table":
                out += [_markdown_table(block.frame), ""]
            elif kind == "figure":
                out += [f"![{block.caption}](figures/{block.name}.png)", "", f"*{block.caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, block in self.blocks:
            if kind == "heading":
                body.append(f"<h{block[0]}>{html.escape(block[1])}</h{block[0]}>")
            elif kind == "para":
                body.append(f"<p>{html.escape(block)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block) + "</ul>")
            elif kind == "table":
                body.append(_html_table(block))
            elif kind == "figure":
                data = base64.b64encode(block.png).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
                )
        return _HTML_PAGE.format(title=html.escape(self.title), body="\n".join(body))


_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f2f2f2; }} td:first-child, th:first-child {{ text-align: left; }}
td.swatch {{ width: 1.6em; border: 1px solid #888; }}
div.wide {{ overflow-x: auto; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }} figcaption {{ font-size: 0.85em; color: #555; }}
</style></head>
<body>
{body}
</body></html>
"""


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _html_table(table: _Table) -> str:
    frame = table.frame
    # long column names may wrap after their underscores, so that tables fit the page
    head = ("<th></th>" if table.swatches else "") + "".join(
        f"<th>{html.escape(str(c)).replace('_', '_<wbr>')}</th>" for c in frame.columns
    )
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        swatch = f'<td class="swatch" style="background:{table.swatches[i]}"></td>' if table.swatches else ""
        rows.append("<tr>" + swatch + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


# --------------------------------------------------------------------------------- formatting


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers to ``digits`` significant digits; missing values as an en dash."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{float(value):.{digits}g}"
    if isinstance(value, tuple):
        return _seed_ranges(value)
    return str(value)


format_number = _fmt


def _fixed(value: float, decimals: int = 9) -> str:
    """§10.1's fixed-point style with a true minus sign."""
    text = f"{value:.{decimals}f}"
    if text.startswith("-"):
        return text[1:] if float(text) == 0 else "−" + text[1:]
    return text


def _seed_ranges(seeds: Sequence[Any]) -> str:
    """(0, 1, 2, 5) -> '0–2, 5'."""
    values = sorted(int(s) for s in seeds)
    if not values:
        return "–"
    parts, start, prev = [], values[0], values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}–{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(float(c) * 255):02x}" for c in rgb)


# --------------------------------------------------------------------------------- tables


def _varying_config(frame: pd.DataFrame, limit: int = 10) -> list[str]:
    out = []
    for c in frame.columns:
        if str(c).startswith("config/") and frame[c].map(repr).nunique() > 1:
            out.append(c)
    return out[:limit]


def _intervention_columns(columns: Sequence[str], suffix: str = "") -> list[str]:
    """``<intervention>_r<suffix>`` columns present among ``columns`` (suppression_r, repulsion_r, ...):
    every ``*_r<suffix>`` but the score's own ``ablated_r`` and the ``val_*`` metrics."""
    end = f"_r{suffix}"
    return [
        c
        for c in columns
        if isinstance(c, str) and c.endswith(end) and c[: -len(end)] not in ("ablated", "") and not c.startswith("val_")
    ]


def _cube_columns(columns: Sequence[str], suffix: str = "") -> list[str]:
    """``<method>_max_mse<suffix>`` / ``<method>_median_mse<suffix>`` columns present, in order."""
    return [c for c in columns if isinstance(c, str) and any(c.endswith(f"_{s}{suffix}") for s in _CUBE_STATS)]


def front_table(summary: FrontSummary, /, *, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The front (or ``rows``) as a plain table: identity, objectives, robustness, varying config.

    Columns: ``trial_id``, ``hand``, ``pareto_rank``, the objective columns, ``score_sem`` (the mean
    score's standard error, when reported), ``score_std``, ``diverged_frac``, ``seed_attainment``,
    ``n_seeds``, the intervention correlations when the study measured them (``suppression_r_mean``,
    ``repulsion_r_mean``), then the ``config/*`` columns that differ between done trials. Values are
    raw (unformatted), for CSV.
    """
    frame = summary.front if rows is None else rows
    columns = ["trial_id", "hand", "pareto_rank", *summary.columns]
    columns += [
        c for c in ("score_sem", "score_std", "diverged_frac", "seed_attainment", "n_seeds") if c not in columns
    ]
    columns += _intervention_columns(list(frame.columns), "_mean")
    columns += _varying_config(summary.done)
    columns = [c for c in dict.fromkeys(columns) if c in frame.columns]
    return frame[columns].reset_index(drop=True)


def format_table(frame: pd.DataFrame, /) -> pd.DataFrame:
    """Every cell as display text (4 significant digits, '–' for missing), ``config/`` dropped from names."""
    out = frame.copy().astype(object)
    for c in out.columns:
        out[c] = [_fmt(v) for v in frame[c]]
    out.columns = [str(c).removeprefix("config/") for c in out.columns]
    return out


# --------------------------------------------------------------------------------- sections


def _experiment_items(study: Study) -> list[str]:
    """The experiment in words: name and description, model, validating regularizers, evaluation."""
    e = study.experiment
    m = e.model
    recorded = "" if "experiment" in study.record else " (study.json records none: a study made before experiments)"
    latent = "unit latent (bottleneck)" if m.kind == "CNColorMLP" else "raw latent (encoder output), sigmoid output"
    regs = [f"{r.name} ({type(r.term).__name__}{', validates' if r.validates else ''})" for r in e.regularizers]
    ev = e.evaluation
    from analysis.models import anchor_name

    items = [
        f"experiment: {e.name}{recorded}" + (f" — {e.description}" if e.description else ""),
        f"model: {m.kind}, K = {m.k_bottleneck} latent, H = {m.hidden} hidden, N = {m.n_nonlinear} GELU "
        f"block(s) per side; {latent}",
        "regularizers: " + ", ".join(regs),
        f"evaluation: concept axis {ev.concept_dim}, ablated/pruned dims {list(ev.concept_dims)}, anchor "
        f"{anchor_name(ev.anchor_hsv)}, score power {_fmt(ev.score_power)} on the {ev.score_grid}³ grid; "
        f"interventions: {'; '.join(i.describe() for i in ev.interventions) or 'none'}",
        "data: " + e.data.colors + f" ({e.data.weighting} weighting), labels: {', '.join(e.data.labels) or 'none'}",
    ]
    return items


def _summary_section(doc: _Document, study: Study) -> None:
    r = study.record
    counts = study.counts()
    requested = r.get("trials") if study.kind == "search" else None
    states = ", ".join(f"{counts[s]} {s}" for s in STATES) + (f" (of {requested} requested)" if requested else "")
    steps = r.get("steps")
    seeds = r.get("seeds") or ()
    full = f"{study.experiment.dopesheet.length} (the full {study.experiment.name} schedule)"
    items = [
        *_experiment_items(study),
        f"kind: {study.kind}",
        f"directory: {study.directory}",
        f"trials: {len(study.trials)} — {states}",
        f"seeds: {len(seeds)} ({_seed_ranges(seeds)}), {r.get('seeds_per_trial')} per trial",
        f"steps: {steps if steps else full}",
        f"hidden width: {r.get('hidden') or study.experiment.model.hidden}"
        + (" (searched per trial)" if study.kind == "search" else ""),
        "objectives: " + ", ".join(f"{o.name} ({o.label})" for o in study.objectives),
    ]
    if study.kind == "search":
        items.append(f"Optuna sampler: {r.get('sampler')} (seed {r.get('sampler_seed')})")
    if r.get("scales"):
        items.append("scales: " + "; ".join(f"{n} × {', '.join(_fmt(v) for v in vals)}" for n, vals in r["scales"]))
    if study.optuna is not None and len(study.optuna):
        found = study.optuna["state"].value_counts()
        items.append("Optuna journal: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(found.items())))
    doc.heading("Study")
    doc.bullets(items)
    for note in study.notes:
        doc.para(f"Note: {note}")
    failed = study.trials[study.trials["state"] == "failed"]
    if len(failed):
        doc.heading("Failed trials", 3)
        shown = failed.head(_MAX_FAILED)
        doc.table(pd.DataFrame({"trial": shown["trial_id"], "reason": shown["error"].fillna("failed")}))
        if len(failed) > _MAX_FAILED:
            doc.para(f"… and {len(failed) - _MAX_FAILED} more failed trials.")


def _validation_section(doc: _Document, study: Study) -> None:
    """Search vs held-out results of every ``excolor validate`` run recorded in the study."""
    from analysis.validation import HELDOUT_COLUMNS, heldout_table, read_validations

    validations = read_validations(study.directory)
    if not validations:
        return
    doc.heading("Held-out validation")
    doc.para(
        "The chosen trials and the hand schedule re-trained on seeds the search never saw (excolor validate). "
        "search_/heldout_: mean score, its standard error and the seed count; vs_hand: the paired score "
        "difference to the hand schedule on the same held-out seeds with its 95 % interval (low, high); "
        "heldout_rank: the Pareto rank over the study's objectives recomputed on the held-out seeds."
    )
    for validation in validations:
        table = heldout_table(study, validation)
        if table.empty:
            continue
        doc.heading(f"Seeds {validation.label} ({len(validation.seeds)} seeds)", level=3)
        doc.table(format_table(table[[c for c in HELDOUT_COLUMNS if c in table.columns]]))


def _racing_section(doc: _Document, study: Study) -> None:
    """Seed racing: the raced configurations on the search seeds and on all their seeds."""
    from analysis.racing import best_before_and_after, racing_table

    table = racing_table(study)
    if table.empty:
        return
    before, after = best_before_and_after(study)
    first = study.objectives[0]
    doc.heading("Seed racing")
    verdict = (
        f"The best {first.column} is {after} on all seeds, as on the search seeds."
        if before == after
        else f"Racing changed the best {first.column}: {before} on the search seeds, {after} on all seeds."
    )
    doc.para(
        "Configurations whose place on the front the search seeds left uncertain (a bootstrap over seeds) "
        "were trained on more seeds, in blocks common to all of them (excolor search --race-seeds). "
        "search_: the values Optuna was told (search seeds only); the others rest on all n_seeds. " + verdict
    )
    doc.table(format_table(table))


def _pareto_section(doc: _Document, study: Study, summary: FrontSummary) -> None:
    doc.heading("Pareto front")
    n = len(summary.done)
    objectives = ", ".join(o.label for o in summary.objectives)
    doc.para(f"Front over {objectives}: {len(summary.front)} of {n} done trials are non-dominated.")
    if summary.infeasible:
        broken = ", ".join(str(c) for c in study.constraints)
        doc.para(f"Left out of the front for breaking {broken}: {', '.join(summary.infeasible)}.")
    if summary.invalid:
        doc.para(
            f"Left out of the front for a NaN or infinite objective: {', '.join(summary.invalid)} "
            "(the moocore-based front excludes such rows; the §9.10 rule would keep them)."
        )
    bounds = "; ".join(
        f"{o.column} in [{_fmt(lo)}, {_fmt(hi)}]"
        for o, lo, hi in zip(summary.objectives, summary.bounds[0], summary.bounds[1])
    )
    doc.para(
        f"Hypervolume: {summary.hypervolume:.4f} (objectives normalised to [0, 1] per objective, 0 = best "
        f"and 1 = worst of the done trials: {bounds}; reference point {DEFAULT_REFERENCE} in every normalised "
        f"objective, so the largest possible value is {DEFAULT_REFERENCE ** len(summary.objectives):.4g})."
    )
    table = front_table(summary)
    config = [c for c in table.columns if c.startswith("config/")]
    doc.table(format_table(table.drop(columns=config)))
    if config:  # a second table, so that each fits the page (pareto.csv has both side by side)
        doc.para("The front's configurations (the settings that vary between done trials):")
        named = table[["trial_id", *config]].rename(columns=lambda c: c.removeprefix("config/"))
        doc.table(format_table(named))
    doc.para(
        "pareto_rank: 0 = non-dominated, 1 = non-dominated once rank 0 is removed, …; seed_attainment: the "
        "fraction of the trial's seeds on which it is non-dominated among all trials trained on that seed."
    )
    hand = summary.hand()
    if hand.empty:
        doc.para("Hand schedule: no finished hand-schedule trial in this study.")
    else:
        for _, row in hand.iterrows():
            place = "on the front" if row["on_front"] else f"dominated by {row['dominated_by']} of {n} trials"
            doc.para(
                f"Hand schedule (trial {row['trial_id']}): Pareto rank {row['pareto_rank']} ({place}); "
                + ", ".join(f"{c} {_fmt(row[c])}" for c in summary.columns)
                + f"; seed attainment {_fmt(row['seed_attainment'])}."
            )


def _plots_section(doc: _Document, study: Study, summary: FrontSummary) -> None:
    from analysis import plots  # matplotlib, paid only when a report is made

    done = summary.done
    if done.empty:
        return
    doc.heading("Plots")
    doc.figure(
        "score_vs_recon",
        plots.score_recon_figure(
            done["val_recon_mean"].to_numpy(dtype=float),
            done["score_mean"].to_numpy(dtype=float),
            front=done["on_front"].to_numpy(),
            hand=done["hand"].astype(bool).to_numpy(),
            join=[o.name for o in summary.objectives] in (["score", "recon"], ["recon", "score"]),
        ),
        "Mean score vs mean reconstruction error per trial; red: Pareto front over the study's objectives, "
        "star: hand schedule.",
    )
    columns = [c for c in objective_columns(study) if c in done.columns and done[c].notna().any()]
    minimised = {o.column for o in study.known_objectives if not o.maximise}
    if len(columns) >= 2:
        doc.figure(
            "objectives_matrix",
            plots.scatter_matrix_figure(
                done[columns].to_numpy(dtype=float),
                names=columns,
                front=done["on_front"].to_numpy(),
                hand=done["hand"].astype(bool).to_numpy(),
                errors=[c in minimised for c in columns],
            ),
            "All objectives pairwise (front over the study's objectives in red); errors spanning decades on log axes.",
        )
    doc.figure(
        "hypervolume_history",
        plots.hypervolume_figure(summary.history),
        "Hypervolume of the trials finished so far, in completion order (same normalisation as above).",
    )
    sheets = {}
    for _, row in summary.front.sort_values("score_mean", ascending=False).head(_MAX_SCHEDULES).iterrows():
        sheet = study.dopesheet(str(row["trial_id"]))
        if sheet is not None:
            sheets[f"{row['trial_id']} ({_fmt(row['score_mean'], 3)})"] = sheet
    doc.figure(
        "schedules",
        plots.schedules_figure(study.hand_dopesheet(), sheets=sheets),
        f"Schedules of the front's trials (up to {_MAX_SCHEDULES}, by mean score) over the hand schedule "
        "(broad grey band).",
    )
    curves = {str(t): study.history(str(t)) for t in done["trial_id"]}
    columns = [o.column for o in summary.objectives if any(o.column in c for c in curves.values())]
    if columns:
        front_ids = summary.front.sort_values("score_mean", ascending=False)["trial_id"].astype(str)
        doc.figure(
            "learning_curves",
            plots.learning_curves_figure(
                curves, columns=columns, highlight=list(front_ids.head(_MAX_SCHEDULES)), errors=sorted(minimised)
            ),
            f"The study's objectives at every validation during training, one line per trial: the front's "
            f"(up to {_MAX_SCHEDULES}) in colour, the others grey.",
        )


def _all_trials_section(doc: _Document, study: Study, summary: FrontSummary) -> None:
    """Every done trial, best Pareto rank first: the front table's columns without the configuration."""
    done = summary.done
    if done.empty:
        return
    doc.heading("All trials")
    counts = study.counts()
    doc.para(
        f"{len(done)} done trials by Pareto rank, then by {summary.objectives[0].column} "
        f"({counts['failed']} failed and {counts['running']} running not shown); pareto.csv has the front "
        "with every column."
    )
    first = summary.objectives[0]
    ranked = done.sort_values(["pareto_rank", first.column], ascending=[True, not first.maximise], kind="stable")
    table = front_table(summary, rows=ranked)
    doc.table(format_table(table.drop(columns=[c for c in table.columns if c.startswith("config/")])))


def _seed_metric_columns(study: Study, columns: Sequence[str]) -> list[str]:
    """Per-seed columns worth showing, present in ``columns``: score, ablated r, val_recon, the validating
    regularizers' val_*, intervention r, labels/n/<label>."""
    wanted = [
        "score",
        "ablated_r",
        "val_recon",
        *(f"val_{name}" for name in study.validating),
        *(f"{name}_r" for name in study.experiment.evaluation.intervention_names),
        *_intervention_columns(columns),
        *(f"labels/n/{label}" for label in study.labels),
    ]
    return [c for c in dict.fromkeys(wanted) if c in columns]


def _original_rule_section(doc: _Document, study: Study) -> None:
    from analysis import plots  # matplotlib, paid only when a report is made

    seeds = study.seeds
    doc.heading("Original selection rule (§9.10) over all seeds")
    try:
        rule = study_original_rule(study)
    except AnalysisError as err:
        doc.para(f"Not applicable: {err}")
        return
    n, m = len(rule.front), len(rule.rows)
    best = rule.best
    reference = (
        f" (the reference notebook found {REFERENCE_FRONT[0]} of {REFERENCE_FRONT[1]})"
        if study.experiment.name == "ex-2.9.1"
        else f" (the reference notebook's {REFERENCE_FRONT[0]} of {REFERENCE_FRONT[1]} is for ex-2.9.1)"
    )
    doc.para(
        f"front size under the original rule: {n} of {m} seeds{reference}. "
        f"Minimise {', '.join(rule.minimize)}; maximise {', '.join(rule.maximize)}; ties and NaN rows kept."
    )
    if rule.missing:
        doc.para(f"Not in the per-seed results, so left out of the rule: {', '.join(rule.missing)}.")
    nan_rows = int(rule.rows[rule.columns].isna().any(axis=1).sum())
    if nan_rows:
        doc.para(f"{nan_rows} seed(s) have a NaN objective and are on this front by the rule's construction.")
    doc.para(f"Best seed (largest score on that front): seed {int(best['seed'])}, score {best['score']:.4f}.")
    shown = [c for c in _seed_metric_columns(study, list(seeds.columns)) if c != "ablated_r"]
    columns = [*shown, *(c for c in ("val_loss", "runtime_s") if c in seeds.columns)]
    stats = seeds[columns].astype(float).agg(["min", "max", "mean", "std"])
    doc.table(pd.concat([pd.Series(stats.index, name="stat"), stats.reset_index(drop=True).map(_fmt)], axis=1))
    top = seeds.sort_values("score", ascending=False, kind="stable").head(5)
    top_cols = ["seed", *columns]
    frame = top[top_cols].copy().astype(object)
    for c in top_cols:
        frame[c] = [_fmt(v) for v in top[c]]
    frame.insert(1, "on front", ["yes" if i in rule.front.index else "" for i in top.index])
    doc.para("Top five seeds by score:")
    doc.table(frame)
    doc.figure(
        "seeds_score_vs_recon",
        plots.score_recon_figure(
            seeds["val_recon"].to_numpy(dtype=float),
            seeds["score"].to_numpy(dtype=float),
            front=seeds.index.isin(rule.front.index),
            join=False,  # a front over four objectives: not a curve in this plane
            xlabel="val_recon",
            ylabel="score",
            title="Per seed: score vs reconstruction (§9.10 front)",
        ),
        f"One point per seed; red: the §9.10 front over ({', '.join([*rule.minimize, *rule.maximize])}).",
    )


def _color_table(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """§10.1's layout: colour, baseline MSE, then the increase in MSE per method (9 decimals)."""
    frame = pd.DataFrame({"colour": table["name"], "baseline": [_fixed(v) for v in table["baseline"]]})
    for column in table.columns:
        if isinstance(column, str) and column.endswith("-delta"):
            frame[f"Δ {column.removesuffix('-delta')}"] = [_fixed(v) for v in table[column]]
    return frame, [_hex(rgb) for rgb in table["rgb"]]


def _trial_model(study: Study, trial_id: str, trial: pd.Series) -> tuple[Any, int | None, str]:
    """(the trial's experiment, the expected hidden width or None to infer it, where the shape came from)."""
    if (study.trial_path(trial_id) / "experiment.yaml").is_file():
        experiment = study.trial_experiment(trial_id)
        return experiment, experiment.model.hidden, "from the trial's experiment.yaml"
    hidden = trial.get("config/hidden")
    if isinstance(hidden, (int, float, np.integer, np.floating)) and not pd.isna(hidden):
        return study.trial_experiment(trial_id), int(hidden), "the trial's searched hidden width"
    return study.experiment, None, f"{study.experiment.name}'s K and N, H read off the parameter count"


def _chosen_model(study: Study, summary: FrontSummary, *, seed: int | None, trial: str | None) -> BestModel | None:
    """The model to show: the best one, or the one ``seed``/``trial`` pick.

    ``trial`` alone: that trial's seed with the largest score. ``seed`` alone: that seed in the
    best model's trial when it holds it, else in the done trial with the largest mean score that does.
    """
    best = best_model_choice(study, summary)
    if seed is None and trial is None:
        return best
    seeds = study.seeds
    if seeds.empty:
        raise AnalysisError("the study has no per-seed results (seeds.csv): there is no model to choose")
    if trial is not None:
        rows = seeds[seeds["trial_id"].astype(str) == str(trial)]
        if rows.empty:
            known = ", ".join(dict.fromkeys(seeds["trial_id"].astype(str)))
            raise AnalysisError(f"no per-seed results for trial {trial!r}; trials with results: {known}")
    else:
        holding = seeds[seeds["seed"] == seed]
        if holding.empty:
            raise AnalysisError(f"no trial trained seed {seed}; seeds: {_seed_ranges(tuple(seeds['seed']))}")
        if best is not None and best.trial_id in set(holding["trial_id"].astype(str)):
            trial = best.trial_id
        else:
            means = summary.done.set_index("trial_id")["score_mean"]
            ids = list(dict.fromkeys(holding["trial_id"].astype(str)))
            trial = max(ids, key=lambda t: (float(np.nan_to_num(means.get(t, np.nan), nan=-np.inf)), -ids.index(t)))
        rows = seeds[seeds["trial_id"].astype(str) == trial]
    if seed is not None:
        picked = rows[rows["seed"] == seed]
        if picked.empty:
            raise AnalysisError(
                f"trial {trial} did not train seed {seed}; its seeds: {_seed_ranges(tuple(rows['seed']))}"
            )
        reason = f"chosen: trial {trial}, seed {seed}"
    else:
        picked = rows.loc[[pd.to_numeric(rows["score"], errors="coerce").fillna(-np.inf).idxmax()]]
        reason = f"chosen: trial {trial}; its seed with the largest score"
    row = picked.iloc[0]
    return BestModel(str(row["trial_id"]), int(row["seed"]), reason, row)


def _best_model_section(
    doc: _Document, study: Study, choice: BestModel | None, out: Path, *, heading: str = "Best model"
) -> Path | None:
    doc.heading(heading)
    if choice is None:
        doc.para("No per-seed results (seeds.csv) among the done trials: no model to show.")
        return None
    row = choice.seed_row
    metrics = ", ".join(f"{c} {_fmt(row[c])}" for c in _seed_metric_columns(study, list(row.index)))
    doc.para(f"Trial {choice.trial_id}, seed {choice.seed} ({choice.reason}): {metrics}.")
    path = study.checkpoint(choice.trial_id, seed=choice.seed)
    if path is None:
        doc.para("This trial kept no checkpoint: the colour table and scatter plots need the trained model.")
        return None
    trial = study.trials[study.trials["trial_id"] == choice.trial_id].iloc[0]
    try:
        experiment, hidden, source = _trial_model(study, choice.trial_id, trial)
        checkpoint = load_population(path, hidden=hidden, model=experiment.model)
        if choice.seed not in checkpoint.seeds:
            raise AnalysisError(f"checkpoint {path} holds seeds {checkpoint.seeds}, not seed {choice.seed}")
    except AnalysisError as err:
        doc.para(f"The model could not be rebuilt: {err}")
        return None
    p = checkpoint.population
    doc.para(
        f"Model: {p.kind}, K = {p.k_bottleneck}, H = {p.hidden}, N = {p.n_nonlinear} ({source}); "
        f"evaluated on latent axis {experiment.evaluation.concept_dim}."
    )
    final_step = trial["step"] if "step" in trial.index and not pd.isna(trial["step"]) else None
    if checkpoint.step is not None and final_step is not None and int(checkpoint.step) != int(final_step):
        doc.para(f"Note: the latest checkpoint is at step {checkpoint.step}, the final report at {trial['step']}.")
    model = checkpoint.population.module(checkpoint.seeds.index(choice.seed))
    header = f"% excolor analysis: study {study.name}, trial {choice.trial_id}, seed {choice.seed}\n"
    return model_set(
        doc, model, experiment, label=f"trial {choice.trial_id}, seed {choice.seed}", out=out, latex_header=header
    )


def model_set(doc: _Document, model: Any, experiment: Any, *, label: str, out: Path, latex_header: str) -> Path:
    """One model's full set into ``doc``: named-colour table and bars, correlations and scatter plots,
    loss-cube errors, colour slices and their errors, latent views, the stacked figure; and
    ``best_model_table.tex`` in ``out``. Returns the LaTeX path."""
    from analysis import figures, plots  # matplotlib, paid only when a report is made

    ev = experiment.evaluation
    evaluation = evaluate_model(model, evaluation=ev)
    frame, swatches = _color_table(evaluation.table)
    named = [i for i in ev.intervention_names if i != "suppression"]
    doc.para(
        "Per named colour (12 hues, 5 greys): baseline MSE and the increase in MSE after each method "
        f"(ablating or pruning latent dims {list(ev.concept_dims)}, or suppressing axis {ev.concept_dim}"
        + (f"; {', '.join(named)}" if named else "")
        + "), as in science.md §10.1."
    )
    doc.table(frame, swatches)
    doc.figure(
        "color_errors",
        plots.color_error_figure(evaluation.table, title=f"Per-colour error, {label}"),
        "Reconstruction error per named colour: baseline and after each method.",
    )
    corr = evaluation.correlations
    doc.table(
        pd.DataFrame(
            {
                "method": corr["plan"],
                "similarity power": [_fmt(v) for v in corr["power"]],
                "r": [f"{v:+.4f}" for v in corr["r"]],
                "R²": [f"{v:.4f}" for v in corr["r2"]],
                "p": [_fmt(v) for v in corr["p"]],
            }
        )
    )
    doc.figure(
        "error_vs_similarity",
        plots.similarity_figure(evaluation, title=f"{label} (20³ RGB cube)"),
        f"Per-colour error vs similarity to {evaluation.anchor} on the 20³ RGB cube, with Pearson r and R².",
    )
    cube = figures.cube_errors(model, evaluation=ev)
    doc.para(
        "Loss-cube errors (§9.4's 150×24×24 HSV cube, hue extended 1/12 past both ends): max and median "
        "per-colour MSE after each method (the notebooks' quoted figures, e.g. Ex 2.8 ablated max 0.74)."
    )
    doc.table(
        pd.DataFrame(
            {
                "method": cube["method"],
                "max MSE": [_fmt(v) for v in cube["max_mse"]],
                "median MSE": [_fmt(v) for v in cube["median_mse"]],
            }
        )
    )
    slices = figures.color_slices(model, evaluation=ev)
    doc.figure(
        "color_slices",
        figures.color_slices_figure(slices, title=f"Colour slices, {label}"),
        "Predicted colours over the HSV grid (value up, hue across; one panel per saturation): the input, "
        "then the baseline and each method.",
    )
    doc.figure(
        "color_slice_errors",
        figures.slice_errors_figure(slices, title=f"Per-colour error over the slices, {label}"),
        "Per-colour MSE over the same grid, one colour scale for all methods.",
    )
    colors = experiment.data.training_set().colors.numpy()
    try:
        views = figures.latent_views(model, colors=colors, evaluation=ev)
        doc.figure(
            "latent_views",
            figures.latent_views_figure(views, title=f"Latents of the training colours, {label}"),
            "The training colours' latents in their own colours on pairs of latent axes (the concept axis "
            "against the two that vary most); arrow: the concept axis; red lines: where each intervention "
            "acts (dashed: its start; dotted: a repulsion's largest alignment). Rows after the baseline show "
            "the latents after each intervention.",
        )
        doc.figure(
            "stacked",
            figures.stacked_figure(views, slices, title=label),
            "The paper-style figure: the baseline latents over each method's colour slices.",
        )
    except AnalysisError as err:
        doc.para(f"No latent view: {err}.")
    from excolor.evaluate import named_color_latex

    latex = out / "best_model_table.tex"
    latex.write_text(latex_header + named_color_latex(evaluation.table), encoding="utf-8")
    doc.para(f"LaTeX table: {latex.name}.")
    return latex


def _trial_order(study: Study, summary: FrontSummary) -> list[str]:
    """Trials for the distributions: hand schedule, then the front by mean score, then the rest."""
    done = summary.done.copy()
    done["_key"] = list(zip(~done["hand"].astype(bool), ~done["on_front"].astype(bool), -done["score_mean"].fillna(-1)))
    ordered = [str(t) for t in done.sort_values("_key", kind="stable")["trial_id"]]
    with_seeds = set(study.seeds["trial_id"].astype(str))
    return [t for t in ordered if t in with_seeds][:_MAX_BOXES]


def distribution_columns(experiment: Any, columns: Sequence[str]) -> list[str]:
    """Per-seed metrics worth a box plot: score, val_recon, each validating regularizer, each
    intervention's r, the loss-cube errors; those present in ``columns``."""
    wanted = [
        "score",
        "val_recon",
        *(f"val_{r.name}" for r in experiment.regularizers if r.validates),
        *_intervention_columns(columns),
        *_cube_columns(columns),
    ]
    return [c for c in dict.fromkeys(wanted) if c in columns]


def _distribution_section(doc: _Document, study: Study, summary: FrontSummary) -> None:
    from analysis import figures  # matplotlib, paid only when a report is made

    seeds = study.seeds
    if seeds.empty:
        return
    doc.heading("Distributions across seeds")
    order = _trial_order(study, summary)
    hand = {str(t): "black" for t in summary.done.loc[summary.done["hand"].astype(bool), "trial_id"]}
    frame = seeds.assign(trial_id=seeds["trial_id"].astype(str))
    frame, scored_now = _with_cube_metrics(doc, study, frame, order)
    columns = distribution_columns(study.experiment, list(frame.columns))
    try:
        fig = figures.distribution_figure(frame, columns=columns, group="trial_id", order=order, highlight=hand)
    except AnalysisError as err:
        doc.para(f"No distributions: {err}.")
        return
    more = f" (the first {_MAX_BOXES} of {summary.done.shape[0]})" if len(summary.done) > _MAX_BOXES else ""
    doc.figure(
        "seed_distributions",
        fig,
        f"Per trial{more}: a box of its seeds (red line: median) with every seed as a point; hand schedule "
        "in black, then the front by mean score.",
    )
    cube = _cube_columns(list(frame.columns))
    if cube:
        stats = frame[frame["trial_id"].isin(order)].groupby("trial_id", sort=False)[cube].median()
        stats = stats.reindex([t for t in order if t in stats.index])
        table = pd.DataFrame({"trial": stats.index})
        for c in cube:
            table[c.replace("_mse", "").replace("_", " ")] = [_fmt(v, 3) for v in stats[c]]
        when = (
            f" ({'trial ' + scored_now[0] if len(scored_now) == 1 else f'{len(scored_now)} trials'} scored for this "
            "report from the stored models: trained without --cube-metrics)"
            if scored_now
            else ""
        )
        doc.para(
            f"Loss-cube errors per trial: the median over its seeds of each seed's max and median per-colour MSE{when}."
        )
        doc.table(table)


def _with_cube_metrics(
    doc: _Document, study: Study, frame: pd.DataFrame, order: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with the loss-cube errors of the trials in ``order`` that were trained without them (a
    search without ``--cube-metrics``), scored now (``analysis.models.cube_metrics``); and those trials."""
    cube = _cube_columns(list(frame.columns))
    shown = frame[frame["trial_id"].isin(order)]
    known = set(shown.loc[shown[cube].notna().any(axis=1), "trial_id"]) if cube else set()
    missing = [t for t in order if t not in known]
    if not missing:
        return frame, []
    frames = []
    for trial_id in missing:  # trial by trial: one unreadable model file costs only its own trial's values
        try:
            frames.append(cube_metrics(study, [trial_id]))
        except AnalysisError as err:
            doc.para(f"No loss-cube errors for trial {trial_id}: {err}.")
    frames = [f for f in frames if not f.empty]
    if not frames:
        return frame, []
    scored = pd.concat(frames, ignore_index=True)
    scored = scored.assign(trial_id=scored["trial_id"].astype(str), seed=scored["seed"].astype(frame["seed"].dtype))
    merged = frame.merge(scored, on=["trial_id", "seed"], how="left", suffixes=("", "/scored"))
    for c in [c for c in scored.columns if c not in ("trial_id", "seed")]:
        if f"{c}/scored" in merged.columns:  # a study with both: keep what training wrote
            merged[c] = merged[c].fillna(merged.pop(f"{c}/scored"))
    return merged, sorted(set(scored["trial_id"]), key=list(order).index)


# --------------------------------------------------------------------------------- entry point


def _output_dir(study: Study, out_dir: str | Path | None) -> Path:
    out = Path(out_dir).expanduser() if out_dir is not None else study.directory / "report"
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AnalysisError(
            f"cannot write the report to {out}: {err.strerror or err}; choose another output directory"
        ) from None
    return out.resolve()


def write_report(
    study_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    seed: int | None = None,
    trial: str | None = None,
) -> ReportPaths:
    """Write report.md, report.html, pareto.csv and (when a model is found) best_model_table.tex.

    Args:
        study_dir: the study directory.
        out_dir: where to write (created); default ``STUDY/report/``.
        seed: show this seed's model instead of the best one (in ``trial``, or in the best model's
            trial when it holds the seed, else in the best trial by mean score that does).
        trial: show a model of this trial (its seed with the largest score unless ``seed`` is given).

    Returns:
        The paths written.

    Raises:
        AnalysisError: not a study, the output directory cannot be written, or ``seed``/``trial``
            name no trained model.
    """
    study = load_study(study_dir)
    summary = front_summary(study)
    chosen = _chosen_model(study, summary, seed=seed, trial=trial) if not summary.done.empty else None
    if (seed is not None or trial is not None) and chosen is None:
        raise AnalysisError("the study has no finished trial: there is no model to choose")
    out = _output_dir(study, out_dir)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = _Document(f"Study report: {study.name}")
    doc.para(f"Generated {stamp} by excolor analysis from the files in {study.directory} (no Ray needed).")
    _summary_section(doc, study)
    latex = None
    if summary.done.empty:
        doc.heading("Pareto front")
        counts = study.counts()
        doc.para(
            f"No finished trials yet ({counts['running']} running, {counts['failed']} failed, "
            f"{counts['pending']} pending): there is nothing to rank, plot or evaluate."
        )
    else:
        _pareto_section(doc, study, summary)
        _plots_section(doc, study, summary)
        if all_hand_sweep(study):
            _original_rule_section(doc, study)
        _distribution_section(doc, study, summary)
        _all_trials_section(doc, study, summary)
        _racing_section(doc, study)
        _validation_section(doc, study)
        heading = "Best model" if seed is None and trial is None else "Chosen model"
        latex = _best_model_section(doc, study, chosen, out, heading=heading)
    try:
        front_table(summary).to_csv(out / "pareto.csv", index=False)
        figures = []
        for figure in doc.figures():
            path = out / "figures" / f"{figure.name}.png"
            path.write_bytes(figure.png)
            figures.append(path)
        markdown = out / "report.md"
        markdown.write_text(doc.markdown(), encoding="utf-8")
        page = out / "report.html"
        page.write_text(doc.html(), encoding="utf-8")
    except OSError as err:
        raise AnalysisError(f"cannot write the report to {out}: {err.strerror or err}") from None
    return ReportPaths(out, markdown, page, out / "pareto.csv", latex, tuple(figures))
