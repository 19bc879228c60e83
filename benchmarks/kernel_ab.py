"""Two versions of the training kernel, side by side in one process: which one trains faster.

    python benchmarks/kernel_ab.py HEAD~1              # excolor/kernel.py at a git revision vs the working tree
    python benchmarks/kernel_ab.py old_kernel.py excolor/kernel.py --models 64 --rounds 24

Timed runs in separate processes swing by ±25 % on a shared machine, more than most kernel changes
are worth. Here one population of Ex 2.9.1 models is trained in alternating chunks of steps through
each version's ``_train_models`` (swapped into ``excolor.kernel``), after a warm-up of both, from
step 300 (every regularizer on), so that load drifts hit both alike. A version against a copy of
itself reads 1.00 ± ~0.01. Each version is compiled once per content (its file is copied under the
temporary directory by its hash, where Numba keeps its cache). It times training only, not scoring.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

import excolor.kernel
from excolor.experiments import ex_2_9_1
from excolor.train import PopulationTrainer

_REPO = Path(__file__).resolve().parents[1]


def _source(spec: str) -> bytes:
    """A kernel file's text: a path, or a git revision of excolor/kernel.py."""
    path = Path(spec)
    if path.is_file():
        return path.read_bytes()
    done = subprocess.run(["git", "show", f"{spec}:excolor/kernel.py"], cwd=_REPO, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"{spec!r} is neither a file nor a git revision of excolor/kernel.py")
    return done.stdout


def _load(spec: str, name: str) -> ModuleType:
    text = _source(spec)
    folder = Path(tempfile.gettempdir()) / "excolor-kernel-ab"
    folder.mkdir(exist_ok=True)
    path = folder / f"kernel_{hashlib.sha256(text).hexdigest()[:16]}.py"
    if not path.exists():
        path.write_bytes(text)
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="the first version: a file, or a git revision of excolor/kernel.py")
    parser.add_argument(
        "b", nargs="?", default=str(_REPO / "excolor" / "kernel.py"), help="the second (default: the working tree's)"
    )
    parser.add_argument("--models", type=int, default=32, help="population size (default 32)")
    parser.add_argument("--rounds", type=int, default=16, help="chunks per version (default 16)")
    parser.add_argument("--steps", type=int, default=25, help="steps per chunk (default 25)")
    parser.add_argument("--threads", type=int, default=1, help="threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    experiment = ex_2_9_1(hidden=16)
    room = experiment.dopesheet.length - 301  # after step 300 and each version's warm-up step
    if 2 * args.rounds * args.steps > room:
        sys.exit(f"2 x --rounds x --steps must be at most {room}, the schedule's steps after 300")
    versions = {"A": _load(args.a, "excolor_kernel_a"), "B": _load(args.b, "excolor_kernel_b")}
    trainer = PopulationTrainer(experiment, list(range(args.models)), engine="kernel")
    runner = trainer._kernel
    assert runner is not None
    original = excolor.kernel._train_models
    try:
        trainer.run(until=300)
        for module in versions.values():  # compile or load each version before timing
            excolor.kernel._train_models = module._train_models
            runner.steps(1)
        seconds = dict.fromkeys(versions, 0.0)
        for r in range(args.rounds):
            for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                excolor.kernel._train_models = versions[name]._train_models
                start = time.perf_counter()
                runner.steps(args.steps)
                seconds[name] += time.perf_counter() - start
    finally:
        excolor.kernel._train_models = original
    n = args.models * args.rounds * args.steps
    print(
        f"{args.models} models, {args.threads} thread(s), {args.rounds} chunks of {args.steps} steps each, alternating:"
    )
    for name, spec in (("A", args.a), ("B", args.b)):
        print(f"  {name} {spec:<40} {seconds[name]:6.2f} s   {n / seconds[name]:8.0f} model-steps/s")
    print(f"B / A time: {seconds['B'] / seconds['A']:.3f}")


if __name__ == "__main__":
    main()
