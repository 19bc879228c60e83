"""``excolor sweep`` / ``search`` / ``status``: validate the command line, run, print the front."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tune.errors import UsageError, writable_directory

__all__ = ["resolve_experiment", "run_study_command", "status_command"]


def _storage(text: str) -> str:
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise UsageError(
            f"--storage {text!r}: cloud URIs are not supported yet; use a directory that every node of the "
            "cluster sees at the same path (e.g. an NFS or EFS mount)"
        )
    return str(writable_directory(Path(text), "--storage"))


def _name(text: str) -> str:
    if not text or text in {".", ".."} or "/" in text or "\\\\" in text or text.startswith("-"):
        raise UsageError(f"--name must be a plain directory name, got {text!r}")
    return text


def _address(text: str | None) -> str | None:
    address = text or os.environ.get("RAY_ADDRESS") or None
    if address is None or address == "auto" or address.startswith(("ray://", "local")):
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address: expected 'auto', HOST:PORT or ray://HOST:PORT, got {address!r}")
    return address


def resolve_experiment(spec: str | None, *, what: str = "--experiment") -> Any:
    """A preset name or an experiment file -> Experiment; a bad file is one UsageError naming the field."""
    from excolor.experiments import DEFAULT_EXPERIMENT, ExperimentError, load_experiment

    try:
        return load_experiment(spec or DEFAULT_EXPERIMENT)
    except ExperimentError as err:
        raise UsageError(f"{what}: {err}") from None


def _with_overrides(experiment: Any, hidden: int | None, stream: str | None) -> Any:
    """The experiment as the study runs it: --hidden and --stream applied (recorded in study.json)."""
    from dataclasses import replace

    if hidden is not None:
        experiment = experiment.with_model(k_codec=hidden)
    return replace(experiment, stream=stream) if stream is not None else experiment


def run_study_command(args: argparse.Namespace) -> int:
    from excolor.experiments import to_dict
    from tune.cli import parse_seeds, resolve_device_flags
    from tune.status import read_status, summary
    from tune.study import StudySpec, known_objectives, objective_metric, objective_mode, parse_scales, run_study

    try:  # the experiment as the study runs it: recorded in study.json, given to every trial
        experiment = _with_overrides(resolve_experiment(args.experiment), args.hidden, args.stream)
    except ValueError as err:
        raise UsageError(f"--stream {args.stream}: {err}") from None
    default_seeds = "0-7" if args.command == "search" else experiment.seeds
    seeds = parse_seeds(default_seeds if args.seeds is None else args.seeds)
    per_trial = args.seeds_per_trial or len(seeds)
    if per_trial > len(seeds):
        raise UsageError(f"--seeds-per-trial {per_trial} exceeds the {len(seeds)} seeds given")
    if args.steps is not None and args.steps < 2:
        raise UsageError("--steps must be at least 2")
    device, gpus = resolve_device_flags(args, study=True)
    common = {
        "name": _name(args.name),
        "storage": _storage(args.storage),
        "seeds": tuple(seeds),
        "seeds_per_trial": per_trial,
        "hidden": experiment.model.k_codec,
        "steps": args.steps,
        "stream": experiment.stream,
        "wandb": args.wandb,
        "cpus_per_trial": args.cpus_per_trial,
        "max_concurrent": args.max_concurrent,
        "max_failures": args.max_failures,
        "checkpoint_every_s": args.checkpoint_every,
        "experiment": to_dict(experiment),
        "device": device,
        "gpus_per_trial": gpus,
    }
    if not args.checkpoint_every >= 0 or args.max_failures < 0:
        raise UsageError("--checkpoint-every and --max-failures must be >= 0")
    regularizers = [r.name for r in experiment.regularizers]
    if args.command == "sweep":
        scales = parse_scales(args.scale)
        known = ["lr", *regularizers]
        for name, _ in scales:
            if name not in known:
                raise UsageError(
                    f"--scale: unknown name {name!r}; {experiment.name} has {', '.join(known)} in its schedule"
                )
        spec = StudySpec(kind="sweep", scales=scales, **common)
        objectives = [("score_mean", "max"), ("val_recon_mean", "min")]
    else:
        from tune.space import SearchSpace, SpaceError

        if per_trial != len(seeds):
            raise UsageError("search trains every trial on all of --seeds; leave out --seeds-per-trial")
        try:
            space = SearchSpace.read(args.space) if args.space else SearchSpace.for_experiment(experiment)
        except SpaceError as err:
            raise UsageError(str(err)) from None
        unknown = [p for p in space.base.props if p != "lr" and p not in regularizers]
        if unknown:
            raise UsageError(
                f"--space {args.space}: its base dopesheet schedules {unknown[0]!r}, which is not a regularizer of "
                f"{experiment.name} ({', '.join(regularizers)}); set the space's base to this experiment's dopesheet"
            )
        known_obj = known_objectives(experiment)
        names = tuple(dict.fromkeys(args.objective or ["score", "recon"]))
        for o in names:
            if o not in known_obj:
                raise UsageError(
                    f"--objective: unknown objective {o!r} for {experiment.name}; expected one of "
                    f"{', '.join(known_obj)}"
                )
        spec = StudySpec(
            kind="search",
            trials=args.trials,
            objectives=names,
            sampler=args.sampler,
            sampler_seed=args.sampler_seed,
            space=space.describe(),
            space_file=str(args.space.expanduser().resolve()) if args.space else None,
            **common,
        )
        objectives = [(objective_metric(o), objective_mode(o)) for o in names]
    run_study(spec, address=_address(args.address))
    print(summary(read_status(Path(spec.storage) / spec.name), objectives))
    return 0


def status_command(directory: Path) -> int:
    from tune.status import read_status, summary
    from tune.study import objective_metric, objective_mode

    status = read_status(directory)
    names = status.record.get("objectives") if status.record.get("kind") == "search" else ["score", "recon"]
    objectives = [(objective_metric(o), objective_mode(o)) for o in names or ["score", "recon"]]
    print(summary(status, objectives))
    return 0
