"""``excolor validate``: re-train a study's chosen configurations on held-out seeds, through Ray.

The chosen trials (``--top K`` by the study's first objective, ``--front``, or ``--trial ID``) and
the hand schedule are trained on the new seeds as cohorts (``tune.cohort``), each from its own
recorded experiment, so the run is the same schedule and width the search measured. The results
are recorded in ``STUDY/validation/<seeds>/`` (``analysis.record``); a rerun trains only what is
missing. ``analysis.validation`` reads them back, for this command's table and for reports.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.record import RESULT_FILE, VALIDATION_DIR, VALIDATION_FILE, read_json_lines
from analysis.results import Study, load_study
from analysis.tables import front_summary
from analysis.validation import (
    HELDOUT_COLUMNS,
    Validation,
    heldout_table,
    read_validations,
    seeds_label,
    validation_dir,
)
from tune.errors import UsageError
from tune.runner import default_cohort
from tune.session import check_resources, init_ray, prepare_environment, shutdown_embedded_ray

__all__ = ["choose_trials", "heldout_text", "run_validation"]


def _ranges(seeds: Sequence[int]) -> str:
    return seeds_label(seeds).replace("_", ",")


def choose_trials(study: Study, *, top: int | None, front: bool, trials: Sequence[str]) -> list[str]:
    """The trial ids to validate: explicit ones, the front, or the top K by the first objective."""
    done = study.done()
    if trials:
        known = set(study.trials["trial_id"].astype(str))
        for t in trials:
            if t not in known:
                shown = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
                raise UsageError(f"--trial {t}: no such trial in {study.directory} (its trials: {shown})")
            if t not in set(done["trial_id"].astype(str)):
                raise UsageError(f"--trial {t}: that trial is not done; only finished trials can be validated")
        return list(dict.fromkeys(trials))
    summary = front_summary(study)
    if front:
        return [str(t) for t in summary.front["trial_id"]]
    first = study.objectives[0]
    ranked = summary.done[summary.done["feasible"].astype(bool)].dropna(subset=[first.column])
    ranked = ranked.sort_values(first.column, ascending=not first.maximise, kind="stable")
    return [str(t) for t in ranked["trial_id"].head(top or 5)]


def _finished(directory: Path, trial_id: str) -> bool:
    _, last, _, _ = read_json_lines(directory / trial_id / RESULT_FILE)
    return bool(last and last.get("final") is True)


def run_validation(
    study_dir: Path,
    seeds: Sequence[int],
    *,
    top: int | None = None,
    front: bool = False,
    trials: Sequence[str] = (),
    address: str | None = None,
    cpus_per_trial: int = 1,
    cohort: int | None = None,
    engine: str = "torch",
    progress: bool = True,
) -> Validation:
    """Validate the chosen trials of the study in ``study_dir`` on ``seeds``; returns the recorded validation."""
    try:
        study = load_study(study_dir)
    except AnalysisError as err:
        raise UsageError(str(err)) from None
    own = {int(s) for s in study.record.get("seeds") or ()}  # and the seeds racing trained on
    own |= {int(s) for s in study.seeds["seed"]} if "seed" in study.seeds else set()
    overlap = sorted(own & {int(s) for s in seeds})
    if overlap:
        raise UsageError(
            f"--seeds {_ranges(seeds)} overlap the study's own seeds ({_ranges(sorted(own))}) at "
            f"{_ranges(overlap)}: held-out seeds must be seeds the search never trained on"
        )
    chosen = choose_trials(study, top=top, front=front, trials=trials)
    hand_ids = study.done().loc[study.done()["hand"].astype(bool), "trial_id"].astype(str).tolist()
    hand = hand_ids[0] if hand_ids else None
    wanted = list(dict.fromkeys([*([hand] if hand else []), *chosen]))
    if not wanted:
        raise UsageError(f"{study.directory} has no finished trial to validate yet")
    directory = validation_dir(study.directory, seeds)
    directory.mkdir(parents=True, exist_ok=True)
    previous: list[str] = []
    if (directory / VALIDATION_FILE).is_file():
        previous = [str(t) for t in json.loads((directory / VALIDATION_FILE).read_text(encoding="utf-8"))["trials"]]
    every = list(dict.fromkeys([*previous, *wanted]))
    record = {"format": "excolor.validation/1", "seeds": [int(s) for s in seeds], "trials": every, "hand": hand}
    (directory / VALIDATION_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")

    from excolor.experiments import to_yaml

    todo = [t for t in wanted if not _finished(directory, t)]
    members = [{"record": t, "experiment": to_yaml(study.trial_experiment(t))} for t in todo]
    if progress:
        print(
            f"validating {len(wanted)} trial(s) of {study.name!r} ({', '.join(wanted)}) on {len(seeds)} held-out "
            f"seeds {_ranges(seeds)}: {len(todo)} to train, {len(wanted) - len(todo)} already recorded",
            file=sys.stderr,
        )
    if members:
        _train(
            study,
            directory,
            members,
            seeds,
            address=address,
            cpus_per_trial=cpus_per_trial,
            cohort=cohort,
            engine=engine,
        )
    return next(v for v in read_validations(study.directory) if v.directory == directory)


def _train(
    study: Study,
    directory: Path,
    members: list[dict[str, Any]],
    seeds: Sequence[int],
    *,
    address: str | None,
    cpus_per_trial: int,
    cohort: int | None,
    engine: str,
) -> None:
    prepare_environment(address, "disabled")
    from ray import tune

    from tune.cohort import train_cohort
    from tune.trainable import TrialSettings

    session = init_ray(address)
    start = time.perf_counter()
    try:
        import ray

        if session is not None:
            check_resources(cpus_per_trial, 0.0)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_trial))
        size = cohort or default_cohort(len(members), len(seeds), slots=slots, device="cpu")
        chunks = [members[i : i + size] for i in range(0, len(members), size)]
        settings = TrialSettings(
            experiment=study.experiment,
            threads=cpus_per_trial,
            seeds=tuple(int(s) for s in seeds),
            study_dir=str(study.directory),
            records=f"{VALIDATION_DIR}/{directory.name}",
            engine=engine,
        )
        trainable = tune.with_resources(tune.with_parameters(train_cohort, settings=settings), {"cpu": cpus_per_trial})
        tuner = tune.Tuner(
            trainable,
            param_space={"cohort": tune.grid_search(chunks)},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(
                name="ray", storage_path=str(directory), verbose=0, failure_config=tune.FailureConfig(max_failures=2)
            ),
        )
        results = tuner.fit()
    finally:
        if session is not None:
            shutdown_embedded_ray(session)
    errors = results.errors
    if errors:
        raise UsageError(f"validation training failed: {errors[0]}")
    print(
        f"trained {len(members)} trial(s) x {len(seeds)} seeds in {time.perf_counter() - start:.1f} s", file=sys.stderr
    )


def heldout_text(study: Study, validation: Validation) -> str:
    """The held-out table as text: search vs held-out, the paired difference to the hand schedule."""
    from analysis.report import format_table

    table = heldout_table(study, validation)
    if table.empty:
        return "(nothing validated yet)"
    shown = table[[c for c in HELDOUT_COLUMNS if c in table.columns]]
    lines = [
        f"held-out validation of {study.name!r} on {len(validation.seeds)} seeds ({validation.label}); vs_hand: "
        "paired score difference to the hand schedule on the same seeds, with its 95 % interval (low, high)",
        format_table(shown).to_string(index=False),
    ]
    if "vs_hand_low" in table and table["vs_hand_low"].notna().any():
        better = table[(table["vs_hand_low"] > 0) & ~table["hand"].astype(bool)]["trial_id"].tolist()
        lines.append("beat the hand schedule with 95 % confidence: " + (", ".join(better) or "none"))
    return "\n".join(lines)
