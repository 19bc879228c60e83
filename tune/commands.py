"""The bodies of the ``excolor`` subcommands: checked arguments in, the library called, results printed.

``tune.cli`` parses; this module validates (through ``tune.arguments``) and runs. Analysis
commands (``status``, ``pareto``, ``report``) are ``analysis.cli``'s; their ``AnalysisError``
becomes the CLI's one-line ``UsageError``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.objectives import DEFAULT_OBJECTIVES, known_objectives, parse_constraint
from excolor.limits import MAX_SEEDS
from tune.arguments import (
    DEFAULT_SEARCH_SEEDS,
    parse_address,
    parse_device,
    parse_name,
    parse_scales,
    parse_seeds,
    parse_steps,
    parse_storage,
    resolve_experiment,
)
from tune.errors import UsageError

__all__ = [
    "analysis_command",
    "cluster_command",
    "experiments_command",
    "study_command",
    "study_path",
    "train_command",
    "validate_command",
]


def train_command(args: argparse.Namespace) -> int:
    """``excolor train``: one population per chunk of seeds, results written to ``--out``."""
    from tune.run_train import run_train

    experiment = resolve_experiment(
        args.experiment, hidden=args.hidden, stream=args.stream, dopesheet=args.dopesheet, steps=args.steps
    )
    device, _ = parse_device(args.device, study=False)
    return run_train(
        experiment=experiment,
        device=device,
        engine=args.engine,
        seeds=parse_seeds(experiment.seeds if args.seeds is None else args.seeds),
        out=args.out,
        force=args.force,
        population=args.population,
        threads=args.threads,
        quiet=args.quiet,
    )


def study_command(args: argparse.Namespace) -> int:
    """``excolor sweep`` / ``excolor search``: build the StudySpec, run (or resume) it, print its status."""
    from excolor.experiments import to_dict
    from tune.runner import run_study
    from tune.space import SearchSpace, SpaceError
    from tune.spec import StudySpec

    experiment = resolve_experiment(args.experiment, hidden=args.hidden, stream=args.stream)
    default_seeds = DEFAULT_SEARCH_SEEDS if args.command == "search" else experiment.seeds
    seeds = parse_seeds(default_seeds if args.seeds is None else args.seeds)
    per_trial = args.seeds_per_trial or len(seeds)
    if per_trial > len(seeds):
        raise UsageError(f"--seeds-per-trial {per_trial} exceeds the {len(seeds)} seeds given")
    parse_steps(args.steps)
    if not args.checkpoint_every >= 0 or args.max_failures < 0:
        raise UsageError("--checkpoint-every and --max-failures must be >= 0")
    device, gpus = parse_device(args.device, args.gpus_per_trial, study=True)
    common = {
        "name": parse_name(args.name),
        "storage": parse_storage(args.storage),
        "seeds": tuple(seeds),
        "seeds_per_trial": per_trial,
        "hidden": experiment.model.hidden,
        "steps": args.steps,
        "stream": experiment.stream,
        "wandb": args.wandb,
        "cpus_per_trial": args.cpus_per_trial,
        "max_concurrent": args.max_concurrent,
        "max_failures": args.max_failures,
        "checkpoint_every_s": args.checkpoint_every,
        "experiment": to_dict(experiment),
        "device": device,
        "engine": args.engine,
        "gpus_per_trial": gpus,
    }
    space = None
    if args.command == "sweep":
        scales = parse_scales(args.scale, experiment)
        spec = StudySpec(kind="sweep", scales=scales, layout="cohort", cohort=args.cohort, **common)
    else:
        if per_trial != len(seeds):
            raise UsageError("search trains every trial on all of --seeds; leave out --seeds-per-trial")
        try:
            space = SearchSpace.read(args.space) if args.space else SearchSpace.for_experiment(experiment)
        except SpaceError as err:
            raise UsageError(str(err)) from None
        regularizers = [r.name for r in experiment.regularizers]
        unknown = [p for p in space.base.props if p != "lr" and p not in regularizers]
        if unknown:
            raise UsageError(
                f"--space {args.space}: its base dopesheet schedules {unknown[0]!r}, which is not a regularizer of "
                f"{experiment.name} ({', '.join(regularizers)}); set the space's base to this experiment's dopesheet"
            )
        if args.sampler_seed is not None and not 0 <= args.sampler_seed < 2**32:
            raise UsageError(f"--sampler-seed: expected an integer in 0..4294967295, got {args.sampler_seed}")
        known = known_objectives(experiment)
        names = tuple(dict.fromkeys(args.objective or DEFAULT_OBJECTIVES))
        for o in names:
            if o not in known:
                raise UsageError(
                    f"--objective: unknown objective {o!r} for {experiment.name}; expected one of {', '.join(known)}"
                )
        try:
            constraints = tuple(str(parse_constraint(c, experiment)) for c in args.constraint or ())
        except AnalysisError as err:
            raise UsageError(f"--constraint: {err}") from None
        if not 0 <= args.race_seeds <= MAX_SEEDS:
            raise UsageError(f"--race-seeds: expected an integer in 0..{MAX_SEEDS}, got {args.race_seeds}")
        if 0 < args.race_seeds < len(seeds):
            raise UsageError(
                f"--race-seeds {args.race_seeds} cannot pay for one race block ({len(seeds)} seeds, as "
                "many as --seeds); give at least that many, or 0 for no racing"
            )
        spec = StudySpec(
            kind="search",
            race_seeds=args.race_seeds,
            cube_metrics=args.cube_metrics,
            constraints=constraints,
            trials=args.trials,
            objectives=names,
            sampler=args.sampler,
            sampler_seed=args.sampler_seed,
            space=space.describe(),
            space_file=str(args.space.expanduser().resolve()) if args.space else None,
            layout="cohort",
            cohort=args.cohort,
            **common,
        )
    run_study(spec, experiment, space, address=parse_address(args.address))
    return analysis_command("status", spec.directory)


def study_path(args: argparse.Namespace) -> Path:
    """The study directory of ``status``/``pareto``/``report``: a path, or ``--name`` under ``--storage``."""
    if args.study is not None and args.name is not None:
        raise UsageError("give the study as a path or as --name [--storage], not both")
    if args.study is not None:
        return Path(args.study)
    if args.name is None:
        raise UsageError("which study? give its directory (e.g. runs/demo) or --name NAME [--storage DIR]")
    return Path(args.storage).expanduser() / parse_name(args.name)


def analysis_command(command: str, study: Path, args: argparse.Namespace | None = None) -> int:
    """``excolor status|pareto|report``; an ``AnalysisError`` becomes one line of usage error."""
    from analysis.cli import pareto_command, report_command, status_command

    try:
        if command == "status":
            return status_command(study)
        if command == "pareto":
            assert args is not None
            return pareto_command(study, args.objective, args.out)
        assert args is not None
        return report_command(study, args.out, seed=args.seed, trial=args.trial)
    except AnalysisError as err:
        raise UsageError(str(err)) from None


def validate_command(args: argparse.Namespace) -> int:
    """``excolor validate``: the chosen trials on held-out seeds, recorded in the study; prints the comparison."""
    from tune.validate import heldout_text, run_validation

    study_dir = study_path(args)
    validation = run_validation(
        study_dir,
        parse_seeds(args.seeds),
        top=args.top,
        front=args.front,
        trials=args.trial or (),
        address=parse_address(args.address),
        cpus_per_trial=args.cpus_per_trial,
        cohort=args.cohort,
        engine=args.engine,
    )
    from analysis.results import load_study

    print(heldout_text(load_study(study_dir), validation))
    return 0


def cluster_command(args: argparse.Namespace) -> int:
    """``excolor cluster up|down``: a multi-node Ray on this machine."""
    from tune.local_cluster import cluster_down, cluster_up

    if args.action == "up":
        info = cluster_up(
            workers=args.workers,
            cpus_per_worker=args.cpus_per_worker,
            port=args.port,
            object_store_mb=args.object_store_mb,
        )
        print(
            f"local Ray cluster up: head {info.address} (no trial CPUs) + {info.workers} worker nodes x "
            f"{info.cpus_per_worker} CPU; logs in {info.temp_dir}"
        )
        print(
            f"run studies on it with --address {info.address}; stop it with `excolor cluster down --port {info.port}`"
        )
        print(
            f"inspect it with Ray's own CLI in token mode, as the cluster runs: "
            f"RAY_AUTH_MODE=token ray status --address {info.address}"
        )
        return 0
    n = cluster_down(port=args.port)
    print(
        f"stopped {n} processes of the local cluster on port {args.port}"
        if n
        else f"no local cluster runs on port {args.port}"
    )
    return 0


def experiments_command(spec: str | None) -> int:
    """``excolor experiments [NAME|FILE]``: list the presets, or print one resolved as YAML."""
    from excolor.experiments import PRESETS, preset_summaries, to_yaml

    if spec is not None:
        print(to_yaml(resolve_experiment(spec, what="experiments")), end="")
        return 0
    width = max(len(n) for n in PRESETS)
    for name, description in preset_summaries():
        print(f"{name:<{width}}  {description}")
    print("\nrun one with --experiment NAME; `excolor experiments NAME > mine.yaml` starts a file of your own")
    return 0
