"""``excolor sweep`` / ``search`` / ``status``: validate the command line, run, print the front."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tune.errors import UsageError, writable_directory

__all__ = ["run_study_command", "status_command"]


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


def run_study_command(args: argparse.Namespace) -> int:
    from tune.cli import parse_seeds
    from tune.status import read_status, summary
    from tune.study import OBJECTIVE_METRIC, OBJECTIVES, StudySpec, parse_scales, run_study

    seeds = parse_seeds(args.seeds)
    per_trial = args.seeds_per_trial or len(seeds)
    if per_trial > len(seeds):
        raise UsageError(f"--seeds-per-trial {per_trial} exceeds the {len(seeds)} seeds given")
    if args.steps is not None and args.steps < 2:
        raise UsageError("--steps must be at least 2")
    common = {
        "name": _name(args.name),
        "storage": _storage(args.storage),
        "seeds": tuple(seeds),
        "seeds_per_trial": per_trial,
        "hidden": args.hidden,
        "steps": args.steps,
        "stream": args.stream,
        "wandb": args.wandb,
        "cpus_per_trial": args.cpus_per_trial,
        "max_concurrent": args.max_concurrent,
        "max_failures": args.max_failures,
        "checkpoint_every_s": args.checkpoint_every,
    }
    if not args.checkpoint_every >= 0 or args.max_failures < 0:
        raise UsageError("--checkpoint-every and --max-failures must be >= 0")
    if args.command == "sweep":
        from excolor.config import ex_2_9_1_regularizers

        scales = parse_scales(args.scale)
        known = {"lr"} | {r.name for r in ex_2_9_1_regularizers()}
        for name, _ in scales:
            if name not in known:
                raise UsageError(f"--scale: unknown name {name!r}; expected one of {', '.join(sorted(known))}")
        spec = StudySpec(kind="sweep", scales=scales, **common)
        objectives = [("score_mean", "max"), ("val_recon_mean", "min")]
    else:
        from tune.space import SearchSpace, SpaceError

        if per_trial != len(seeds):
            raise UsageError("search trains every trial on all of --seeds; leave out --seeds-per-trial")
        try:
            space = SearchSpace.read(args.space) if args.space else SearchSpace.default()
        except SpaceError as err:
            raise UsageError(str(err)) from None
        names = tuple(dict.fromkeys(args.objective or ["score", "recon"]))
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
        objectives = [(OBJECTIVE_METRIC[o], OBJECTIVES[o]) for o in names]
    run_study(spec, address=_address(args.address))
    print(summary(read_status(Path(spec.storage) / spec.name), objectives))
    return 0


def status_command(directory: Path) -> int:
    from tune.status import read_status, summary
    from tune.study import OBJECTIVE_METRIC, OBJECTIVES

    status = read_status(directory)
    names = status.record.get("objectives") if status.record.get("kind") == "search" else ["score", "recon"]
    objectives = [(OBJECTIVE_METRIC[o], OBJECTIVES[o]) for o in names or ["score", "recon"]]
    print(summary(status, objectives))
    return 0
