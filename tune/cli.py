"""The ``excolor`` command line: argparse only, so ``excolor --help`` answers in a few hundredths of a second.

Each subcommand's body is in ``tune.commands`` (imported once the arguments parse); a user mistake
(bad seed range, malformed dopesheet, unusable output directory) prints one line on stderr and
exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tune.arguments import positive_int
from tune.errors import Interrupted, StorageFull, UsageError

__all__ = ["main"]

# NOTE(excolor): at exit the interpreter runs one last garbage collection over every object torch,
# Ray, Numba and pandas made: 1.3 s after a study command (py-spy: gc_collect_main after main
# returned), on every command. Registered here, before those libraries register theirs, this handler
# runs after every other exit handler (Ray's shutdown, W&B's, logging's flush); it moves what is
# still alive out of the collector's reach, and the ending process hands the memory back at once.
atexit.register(gc.freeze)

EXIT_USAGE = 2
_EPILOG = """examples:
  excolor train  --seeds 0-59 --out runs/ex-2.9.1                 train 60 seeds of Ex 2.9.1, one population
  excolor search --name demo --trials 12 --seeds 0-7               search schedules (Optuna, embedded Ray)
  excolor sweep  --name weights --scale anchor=0.5,1,2 --seeds 0-59 --seeds-per-trial 20
  excolor status runs/demo                                         trials by state and the Pareto front
  excolor report --name demo                                       report.html/.md/.tex in runs/demo/report
  excolor experiments ex-2.8 > mine.yaml                           start an experiment file of your own

A mistake in the command line or an input file prints one line and exits with status 2.
Run `excolor COMMAND --help` for a command's flags."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's default shown (unless it has none or its help already says it); examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_ = action.help or ""
        default = action.default
        if "default" in help_ or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return help_
        return f"{help_} (default: {default})"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="excolor",
        description="Hyperparameter studies of concept-isolating colour autoencoders: train populations of "
        "models, sweep and search their regularization schedules on Ray Tune + Optuna, and read Pareto "
        "fronts and reports from the study directories.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"excolor {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, parent: Any = sub) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)

    p = command("train", "train one model per seed (as one population) and score them")
    _experiment_flags(p)
    p.add_argument("--dopesheet", type=Path, help="schedule CSV (default: the experiment's)")
    p.add_argument("--seeds", help="seeds, e.g. 0-59 or 0,4,8 (default: the experiment's, 0-59 for the presets)")
    p.add_argument("--hidden", type=positive_int, help="hidden width H (default: the experiment's, 16)")
    p.add_argument("--steps", type=positive_int, help="stretch or compress the schedule to N steps")
    p.add_argument(
        "--stream",
        choices=["hash", "original"],
        help="batch/label stream: 'hash' (stateless, the default) or 'original' (the published runs' own, "
        "for per-seed comparison with them)",
    )
    _device_flags(p, study=False)
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite results already in --out")
    p.add_argument(
        "--population",
        type=positive_int,
        help="models trained at once (default: 256 on the CPU; on a GPU as many as fit in half its free memory)",
    )
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    for kind, text in (
        ("sweep", "grid over regularizer-weight multipliers x seed groups, trained in cohorts"),
        ("search", "multi-objective Optuna search of the schedule (keyframe values and times)"),
    ):
        q = command(kind, text)
        q.add_argument("--name", required=True, help="study name; the study lives in STORAGE/NAME")
        _experiment_flags(q)
        q.add_argument("--storage", default="runs", help="directory holding studies (made absolute)")
        q.add_argument(
            "--seeds",
            help="seeds, e.g. 0-59 (default: "
            + ("0-7)" if kind == "search" else "the experiment's, 0-59 for presets)"),
        )
        q.add_argument(
            "--seeds-per-trial",
            type=positive_int,
            help="seeds trained together in one trial (default: all of --seeds)",
        )
        q.add_argument("--hidden", type=positive_int, help="hidden width H (default: the experiment's, 16)")
        q.add_argument("--steps", type=positive_int, help="stretch or compress the schedule to N steps")
        q.add_argument("--stream", choices=["hash", "original"], help="batch/label stream (default: the experiment's)")
        _device_flags(q, study=True)
        q.add_argument(
            "--wandb",
            choices=["offline", "online", "disabled"],
            default="offline",
            help="W&B logging per trial ('online' needs WANDB_API_KEY)",
        )
        q.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray)")
        q.add_argument("--cpus-per-trial", type=positive_int, default=1, help="CPUs (and torch threads) per trial")
        q.add_argument("--max-concurrent", type=positive_int, help="trials running at once (default: as many as fit)")
        q.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial from its checkpoint")
        q.add_argument(
            "--checkpoint-every",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="checkpoint a trial's population at most this often (always at the end)",
        )
        q.add_argument(
            "--cohort",
            type=positive_int,
            metavar="C",
            help="configurations trained together as one population per Ray trial (default: enough cohorts "
            "to fill the cluster's trial slots, at most 256 models each on a CPU)",
        )
        if kind == "sweep":
            q.add_argument(
                "--scale",
                action="append",
                default=[],
                metavar="NAME=V1,V2",
                help="multipliers of a regularizer's (or lr's) schedule values; repeat per name",
            )
        else:
            q.add_argument(
                "--trials",
                type=positive_int,
                default=12,
                help="configurations (Optuna trials) the study holds; rerun with more to extend it",
            )
            q.add_argument(
                "--space",
                type=Path,
                help="search-space YAML (default: the shipped space for ex-2.9.1, else one derived from "
                "the experiment's dopesheet: every keyframe value and row time)",
            )
            q.add_argument(
                "--objective",
                action="append",
                metavar="NAME",
                help="objectives (default: score and recon); repeat for more: score, recon, score-q10, score-cvar10 "
                "(mean of the worst 10%% of seeds), fail-rate (share of seeds < 0.5, collapsed or diverged), or a "
                "validating regularizer of the experiment (e.g. anchor, anti-anchor for ex-2.9.1)",
            )
            q.add_argument(
                "--constraint",
                action="append",
                metavar="NAME<=V",
                help="a bound on an objective, e.g. recon<=2e-5 or score-q10>=0.5; repeat for more. Infeasible "
                "configurations are never on a front; the tpe, nsga2 and gp samplers steer away from them",
            )
            q.add_argument("--sampler", choices=["tpe", "nsga2", "gp", "random"], default="tpe", help="Optuna sampler")
            q.add_argument(
                "--sampler-seed",
                type=int,
                help="seed of the Optuna sampler (default: drawn once when the study is made, then recorded)",
            )
            q.add_argument(
                "--race-seeds",
                type=int,
                default=0,
                metavar="N",
                help="seed racing: once every configuration is trained, train those whose place on the front the "
                "seeds leave uncertain (a bootstrap over seeds) on more seeds, a block of len(--seeds) at a time, "
                "until the front settles or N more trainings are spent; rerun with a larger N to race on "
                "(default: 0, no racing)",
            )
            q.add_argument(
                "--cube-metrics",
                action="store_true",
                help="score every seed on the loss cube (max/median MSE per method) as it finishes, as train and "
                "sweep do; costs a quarter of the search's time (default: `excolor report` scores the "
                "configurations it shows, from their stored models)",
            )

    cl = command("cluster", "a multi-node Ray cluster on this machine (ray start), for trying --address")
    cl_sub = cl.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = command("up", "start a head node and N worker nodes", cl_sub)
    up.add_argument("--workers", type=positive_int, default=2, help="worker nodes (each a `ray start` process group)")
    up.add_argument("--cpus-per-worker", type=positive_int, default=1, help="CPUs each worker node offers to trials")
    up.add_argument("--object-store-mb", type=positive_int, default=100, help="object store size per node, in MB")
    up.add_argument("--port", type=positive_int, default=6390, help="the head node's GCS port (the cluster's address)")
    down = command("down", "stop exactly the processes `cluster up` started", cl_sub)
    down.add_argument("--port", type=positive_int, default=6390, help="the head node's port given to `cluster up`")

    pa = command("pareto", "print a study's Pareto front and write it as CSV")
    _study_flags(pa)
    pa.add_argument(
        "--objective",
        action="append",
        metavar="NAME",
        help="objectives (default: the study's own; score and recon for sweeps): score, recon, score-q10, "
        "score-cvar10, fail-rate, or "
        "a validating regularizer of the study's experiment (anchor, anti-anchor for ex-2.9.1)",
    )
    pa.add_argument("--out", type=Path, help="CSV path or directory (default: STUDY/report/pareto.csv)")
    rp = command(
        "report",
        "write report.md, a self-contained report.html and best_model_table.tex, of a study or of an "
        "`excolor train` output directory",
    )
    _study_flags(rp)
    rp.add_argument("--out", type=Path, help="output directory (default: STUDY/report)")
    rp.add_argument("--seed", type=int, help="render this seed's model in full (colour slices, latent views, ...)")
    rp.add_argument("--trial", metavar="ID", help="the study's trial to take that model from (default: the best)")

    va = command(
        "validate",
        "re-train a study's best trials (and the hand schedule) on held-out seeds, through Ray, and compare",
    )
    _study_flags(va)
    va.add_argument("--seeds", required=True, help="held-out seeds, e.g. 1000-1063: none of the study's own")
    chosen = va.add_mutually_exclusive_group()
    chosen.add_argument("--top", type=positive_int, help="the K best trials by the study's first objective (default 5)")
    chosen.add_argument("--front", action="store_true", help="the trials on the study's Pareto front")
    chosen.add_argument("--trial", action="append", metavar="ID", help="a trial id (repeat for more)")
    va.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray)")
    va.add_argument("--cpus-per-trial", type=positive_int, default=1, help="CPUs (and torch threads) per Ray trial")
    va.add_argument("--cohort", type=positive_int, metavar="C", help="trials trained together per Ray trial")
    _engine_flag(va)

    st = command("status", "trials done/running/failed, best score and Pareto front of a study")
    _study_flags(st)

    ex = command("experiments", "list the shipped experiments, or print one as an editable file")
    ex.add_argument("experiment", nargs="?", help="a preset name or experiment file: print it resolved, as YAML")
    return parser


def _version() -> str:
    """The installed package's version, without importing torch (excolor.__version__ would)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("excolor")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _study_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", type=Path, help="study directory (STORAGE/NAME); or use --name/--storage")
    p.add_argument("--name", help="the study's name, as given to sweep/search")
    p.add_argument("--storage", default="runs", help="directory holding studies, with --name")


def _experiment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--experiment",
        metavar="NAME|FILE",
        help="a shipped experiment (see `excolor experiments`) or an experiment YAML file (default: ex-2.9.1)",
    )


def _engine_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=["torch", "kernel", "auto"],
        default="auto",
        help="training engine: batched torch ops, the fused per-model CPU kernel (Numba; compiled once per "
        "machine, ~1 min), or auto (default): the kernel on the CPU where it computes every term, else torch",
    )


def _device_flags(p: argparse.ArgumentParser, *, study: bool) -> None:
    _engine_flag(p)
    p.add_argument(
        "--device",
        default="cpu",
        help="where models train: cpu, cuda, cuda:N or auto (cuda when available)"
        + ("; resolved on each trial's node" if study else ""),
    )
    if study:
        p.add_argument(
            "--gpus-per-trial",
            type=float,
            help="GPUs Ray reserves per trial; fractions share a GPU (default: 1 with --device cuda, 0 otherwise)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        from tune import commands

        if args.command == "train":
            return commands.train_command(args)
        if args.command in ("sweep", "search"):
            return commands.study_command(args)
        if args.command == "cluster":
            return commands.cluster_command(args)
        if args.command in ("status", "pareto", "report"):
            return commands.analysis_command(args.command, commands.study_path(args), args)
        if args.command == "validate":
            return commands.validate_command(args)
        if args.command == "experiments":
            return commands.experiments_command(args.experiment)
    except UsageError as err:
        print(f"excolor {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as err:
        print(f"excolor {args.command}: interrupted: {err}", file=sys.stderr)
        return 128 + err.signum
    except StorageFull as err:
        print(f"excolor {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"excolor {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        return 0
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
