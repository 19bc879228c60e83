"""The ``excolor`` command line.

    excolor train  --seeds 0-59 --hidden 16 --out runs/ex-2.9.1
    excolor train  --experiment ex-2.8 --seeds 0-15 --out runs/ex-2.8
    excolor sweep  --name weights --scale anchor=0.5,1,2 --seeds 0-59 --seeds-per-trial 20
    excolor search --name demo --trials 12 --seeds 0-7
    excolor experiments            # the shipped experiments; `excolor experiments ex-2.8` prints one
    excolor status runs/demo
    excolor report runs/demo

Each subcommand parses and validates its arguments, then calls the library; a user mistake
(bad seed range, malformed dopesheet, unusable output directory) prints one line on stderr and
exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from tune.errors import UsageError

__all__ = ["main", "parse_seeds"]

EXIT_USAGE = 2


def parse_seeds(text: str) -> list[int]:
    """'0-59', '3', '0,4,8', '0-9,20-29' -> sorted unique seeds.

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise UsageError(f"--seeds: expected N, N-M or a comma-separated list of those, got {text!r}") from None
        if a < 0 or b < a or b > 2**32 - 1:
            raise UsageError(f"--seeds: {part!r} is not a range of seeds in 0..4294967295 with start <= end")
        if b - a >= 10_000_000:
            raise UsageError(f"--seeds: {part!r} is too many seeds")
        seeds.update(range(a, b + 1))
    return sorted(seeds)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="excolor", description=__doc__.split("\n")[1].strip() if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one model per seed (as one population) and score them")
    _experiment_flags(p)
    p.add_argument("--dopesheet", type=Path, help="schedule CSV (default: the experiment's)")
    p.add_argument("--seeds", help="seeds, e.g. 0-59 or 0,4,8 (default: the experiment's, 0-59 for the presets)")
    p.add_argument("--hidden", type=_positive_int, help="hidden width H (default: the experiment's, 16)")
    p.add_argument("--steps", type=_positive_int, help="stretch or compress the schedule to N steps")
    p.add_argument(
        "--stream",
        choices=["hash", "original"],
        help="batch/label stream: 'hash' (stateless, the default) or 'original' (the published runs' own, "
        "for per-seed comparison with them)",
    )
    _device_flags(p, study=False)
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output directory (default: runs/train)")
    p.add_argument("--force", action="store_true", help="overwrite results already in --out")
    p.add_argument(
        "--population",
        type=_positive_int,
        help="models trained at once (default: 256 on the CPU; on a GPU as many as fit in half its free memory)",
    )
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    for kind, text in (
        ("sweep", "grid over regularizer-weight multipliers x seed groups, one Ray Tune trial each"),
        ("search", "multi-objective Optuna search of the schedule (keyframe values and times)"),
    ):
        q = sub.add_parser(kind, help=text)
        q.add_argument("--name", required=True, help="study name; the study lives in STORAGE/NAME")
        _experiment_flags(q)
        q.add_argument("--storage", default="runs", help="directory holding studies (default: ./runs, made absolute)")
        q.add_argument(
            "--seeds",
            help="seeds, e.g. 0-59 (default: "
            + ("0-7)" if kind == "search" else "the experiment's, 0-59 for presets)"),
        )
        q.add_argument(
            "--seeds-per-trial",
            type=_positive_int,
            help="seeds trained together in one trial (default: all of --seeds)",
        )
        q.add_argument("--hidden", type=_positive_int, help="hidden width H (default: the experiment's, 16)")
        q.add_argument("--steps", type=_positive_int, help="stretch or compress the schedule to N steps")
        q.add_argument("--stream", choices=["hash", "original"], help="batch/label stream (default: hash)")
        _device_flags(q, study=True)
        q.add_argument(
            "--wandb",
            choices=["offline", "online", "disabled"],
            default="offline",
            help="W&B logging per trial (default: offline; 'online' needs WANDB_API_KEY)",
        )
        q.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else an embedded local Ray)")
        q.add_argument("--cpus-per-trial", type=_positive_int, default=1, help="CPUs (and torch threads) per trial")
        q.add_argument("--max-concurrent", type=_positive_int, help="trials running at once (default: as many as fit)")
        q.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial from its checkpoint")
        q.add_argument(
            "--checkpoint-every",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="checkpoint a trial's population at most this often (default: 10; always at the end)",
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
            q.add_argument("--trials", type=_positive_int, default=12, help="number of trials (default: 12)")
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
                help="objectives (default: score and recon); repeat for more: score, recon, score-q10, or a "
                "validating regularizer of the experiment (e.g. anchor, anti-anchor for ex-2.9.1)",
            )
            q.add_argument("--sampler", choices=["tpe", "nsga2", "gp", "random"], default="tpe")
            q.add_argument("--sampler-seed", type=int, default=0)

    cl = sub.add_parser("cluster", help="a multi-node Ray cluster on this machine (ray start), for trying --address")
    cl_sub = cl.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = cl_sub.add_parser("up", help="start a head node and N worker nodes")
    up.add_argument("--workers", type=_positive_int, default=2)
    up.add_argument("--cpus-per-worker", type=_positive_int, default=1)
    up.add_argument("--object-store-mb", type=_positive_int, default=100)
    up.add_argument("--port", type=_positive_int, default=6390)
    down = cl_sub.add_parser("down", help="stop exactly the processes `cluster up` started")
    down.add_argument("--port", type=_positive_int, default=6390)

    pa = sub.add_parser("pareto", help="print a study's Pareto front and write it as CSV")
    pa.add_argument("study", type=Path, help="study directory (STORAGE/NAME)")
    pa.add_argument(
        "--objective",
        action="append",
        metavar="NAME",
        help="objectives (default: the study's own; score and recon for sweeps): score, recon, score-q10, or "
        "a validating regularizer of the study's experiment (anchor, anti-anchor for ex-2.9.1)",
    )
    pa.add_argument("--out", type=Path, help="CSV path or directory (default: STUDY/report/pareto.csv)")
    rp = sub.add_parser("report", help="write report.md, a self-contained report.html and best_model_table.tex")
    rp.add_argument("study", type=Path, help="study directory (STORAGE/NAME)")
    rp.add_argument("--out", type=Path, help="output directory (default: STUDY/report)")

    st = sub.add_parser("status", help="trials done/running/failed, best score and Pareto front of a study")
    st.add_argument("study", type=Path, help="study directory (STORAGE/NAME)")

    ex = sub.add_parser("experiments", help="list the shipped experiments, or print one as an editable file")
    ex.add_argument("experiment", nargs="?", help="a preset name or experiment file: print it resolved, as YAML")
    return parser


def _experiment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--experiment",
        metavar="NAME|FILE",
        help="a shipped experiment (see `excolor experiments`) or an experiment YAML file (default: ex-2.9.1)",
    )


def _device_flags(p: argparse.ArgumentParser, *, study: bool) -> None:
    p.add_argument(
        "--device",
        default="cpu",
        help="where models train: cpu (default), cuda, cuda:N or auto (cuda when available)"
        + ("; resolved on each trial's node" if study else ""),
    )
    if study:
        p.add_argument(
            "--gpus-per-trial",
            type=float,
            help="GPUs Ray reserves per trial; fractions share a GPU (default: 1 with --device cuda, 0 otherwise)",
        )


def resolve_device_flags(args: argparse.Namespace, *, study: bool) -> tuple[str, float]:
    """(device spec, GPUs per trial) from --device/--gpus-per-trial; UsageError for a bad value.

    A study's device is resolved on the trial's node (the driver may have no GPU); here it is only
    checked for form. ``excolor train`` resolves it at once.
    """
    device = str(args.device).strip().lower()
    if not re.fullmatch(r"cpu|cuda|cuda:\d+|auto", device):
        raise UsageError(f"--device: expected cpu, cuda, cuda:N or auto, got {args.device!r}")
    if not study:
        from excolor.devices import resolve_device

        try:
            resolve_device(device)
        except ValueError as err:
            raise UsageError(f"--device: {err}") from None
        return device, 0.0
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if device.startswith("cuda") else 0.0
    if not 0 <= gpus < float("inf") or (gpus > 1 and gpus != int(gpus)):
        raise UsageError(f"--gpus-per-trial: expected a fraction in (0, 1] or a whole number, got {gpus}")
    if gpus and device == "cpu":
        raise UsageError("--gpus-per-trial needs --device cuda or auto (with --device cpu no trial uses a GPU)")
    return device, float(gpus)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command in ("sweep", "search"):
            from tune.run_study import run_study_command

            return run_study_command(args)
        if args.command == "cluster":
            return _cluster(args)
        if args.command in ("pareto", "report"):
            from analysis.cli import pareto_command, report_command
            from analysis.errors import AnalysisError

            try:
                if args.command == "pareto":
                    return pareto_command(args.study, args.objective, args.out)
                return report_command(args.study, args.out)
            except AnalysisError as err:
                raise UsageError(str(err)) from None
        if args.command == "status":
            from tune.run_study import status_command

            return status_command(args.study)
        if args.command == "experiments":
            return _experiments(args.experiment)
    except UsageError as err:
        print(f"excolor {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"excolor {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        return 0
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _cluster(args: argparse.Namespace) -> int:
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
        return 0
    n = cluster_down(port=args.port)
    print(
        f"stopped {n} processes of the local cluster on port {args.port}"
        if n
        else f"no local cluster runs on port {args.port}"
    )
    return 0


def _experiments(spec: str | None) -> int:
    from excolor.experiments import PRESETS, preset_summaries, to_yaml
    from tune.run_study import resolve_experiment

    if spec is not None:
        print(to_yaml(resolve_experiment(spec, what="experiments")), end="")
        return 0
    width = max(len(n) for n in PRESETS)
    for name, description in preset_summaries():
        print(f"{name:<{width}}  {description}")
    print("\nrun one with --experiment NAME; `excolor experiments NAME > mine.yaml` starts a file of your own")
    return 0


def _train(args: argparse.Namespace) -> int:
    from tune.run_study import resolve_experiment
    from tune.run_train import run_train

    experiment = resolve_experiment(args.experiment)
    device, _ = resolve_device_flags(args, study=False)
    return run_train(
        experiment=experiment,
        device=device,
        seeds=parse_seeds(experiment.seeds if args.seeds is None else args.seeds),
        dopesheet=args.dopesheet,
        hidden=args.hidden,
        steps=args.steps,
        stream=args.stream,
        out=args.out,
        force=args.force,
        population=args.population,
        threads=args.threads,
        quiet=args.quiet,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
