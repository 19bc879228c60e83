"""Command-line values checked at the edge: seeds, devices, study names and places, the experiment.

Every function returns a clean value or raises ``UsageError`` with one line naming the flag and
what was expected, before anything is written. The experiment is resolved here once, with
``--hidden``/``--stream``/``--dopesheet``/``--steps`` applied, and passed down as an object.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tune.errors import UsageError, writable_directory

if TYPE_CHECKING:
    from excolor.config import Experiment

__all__ = [
    "DEFAULT_SEARCH_SEEDS",
    "parse_address",
    "parse_device",
    "parse_name",
    "parse_scales",
    "parse_seeds",
    "parse_steps",
    "parse_storage",
    "positive_int",
    "resolve_experiment",
]

DEFAULT_SEARCH_SEEDS = "0-7"
"""Seeds of a search when ``--seeds`` is not given: small, as every configuration trains on all."""


def parse_seeds(text: str, *, flag: str = "--seeds") -> list[int]:
    """'0-59', '3', '0,4,8', '0-9,20-29' -> sorted unique seeds (``excolor.seeds``'s rule, named for the flag).

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    from excolor import seeds

    try:
        return seeds.parse_seeds(text)
    except ValueError as err:
        raise UsageError(f"{flag}: {err}") from None


def parse_steps(n: int | None) -> int | None:
    """--steps: None, or a number of schedule steps within ``excolor.limits``."""
    from excolor.limits import check_steps

    if n is None:
        return None
    try:
        return check_steps(n)
    except ValueError as err:
        raise UsageError(f"--steps: {err}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_device(device_flag: str, gpus_per_trial: float | None = None, *, study: bool) -> tuple[str, float]:
    """(device spec, GPUs per trial) from --device/--gpus-per-trial.

    A study's device is resolved on the trial's node (the driver may have no GPU); here it is only
    checked for form. ``excolor train`` resolves it at once.
    """
    device = str(device_flag).strip().lower()
    if not re.fullmatch(r"cpu|cuda|cuda:\d+|auto", device):
        raise UsageError(f"--device: expected cpu, cuda, cuda:N or auto, got {device_flag!r}")
    if not study:
        from excolor.devices import resolve_device

        try:
            resolve_device(device)
        except ValueError as err:
            raise UsageError(f"--device: {err}") from None
        return device, 0.0
    gpus = gpus_per_trial
    if gpus is None:
        gpus = 1.0 if device.startswith("cuda") else 0.0
    if not 0 <= gpus < float("inf") or (gpus > 1 and gpus != int(gpus)):
        raise UsageError(f"--gpus-per-trial: expected a fraction in (0, 1] or a whole number, got {gpus}")
    if gpus and device == "cpu":
        raise UsageError("--gpus-per-trial needs --device cuda or auto (with --device cpu no trial uses a GPU)")
    return device, float(gpus)


def parse_storage(text: str) -> str:
    """--storage as an absolute, writable directory (created if missing)."""
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise UsageError(
            f"--storage {text!r}: cloud URIs are not supported yet; use a directory that every node of the "
            "cluster sees at the same path (e.g. an NFS or EFS mount)"
        )
    return str(writable_directory(Path(text), "--storage"))


def parse_name(text: str) -> str:
    """--name: a plain directory name."""
    if not text or text in {".", ".."} or "/" in text or "\\" in text or text.startswith("-"):
        raise UsageError(f"--name must be a plain directory name, got {text!r}")
    from excolor.limits import MAX_NAME

    if len(text.encode()) > MAX_NAME or not text.isprintable():
        raise UsageError(f"--name must be at most {MAX_NAME} bytes of printable text, got {len(text.encode())}")
    return text


def parse_address(text: str | None) -> str | None:
    """--address (or $RAY_ADDRESS): 'auto', HOST:PORT, ray://HOST:PORT; None for an embedded Ray."""
    address = text or os.environ.get("RAY_ADDRESS") or None
    if address is None or address == "auto" or address.startswith(("ray://", "local")):
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address: expected 'auto', HOST:PORT or ray://HOST:PORT, got {address!r}")
    return address


def parse_scales(items: Sequence[str], experiment: Experiment) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """--scale ['anchor=0.5,1,2', 'separate=1,2'] -> (('anchor', (0.5, 1.0, 2.0)), ('separate', (1.0, 2.0)))."""
    known = ["lr", *(r.name for r in experiment.regularizers)]
    out = []
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--scale: expected NAME=V1,V2,..., got {item!r}")
        if name not in known:
            raise UsageError(
                f"--scale: unknown name {name!r}; {experiment.name} has {', '.join(known)} in its schedule"
            )
        try:
            nums = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise UsageError(f"--scale {name}: expected comma-separated numbers, got {values!r}") from None
        if not nums or any(not (v >= 0 and v < float("inf")) for v in nums):
            raise UsageError(f"--scale {name}: multipliers must be finite and >= 0, got {values!r}")
        out.append((name, nums))
    return tuple(out)


def resolve_experiment(
    spec: str | None,
    *,
    hidden: int | None = None,
    stream: str | None = None,
    dopesheet: Path | None = None,
    steps: int | None = None,
    what: str = "--experiment",
) -> Experiment:
    """The experiment as this command runs it: a preset or file, with the overrides applied.

    Args:
        spec: a preset name or an experiment YAML file; None for the default (ex-2.9.1).
        hidden: --hidden, the hidden width of every model.
        stream: --stream, the batch/label stream ('hash' or 'original').
        dopesheet: --dopesheet, a schedule CSV replacing the experiment's.
        steps: --steps, the schedule stretched or compressed to this many steps.
        what: the flag named in errors.
    """
    from excolor.dopesheet import Dopesheet, DopesheetError
    from excolor.experiments import DEFAULT_EXPERIMENT, ExperimentError, load_experiment
    from excolor.limits import check_memory, experiment_sizes

    try:
        experiment = load_experiment(spec or DEFAULT_EXPERIMENT)
    except ExperimentError as err:
        raise UsageError(f"{what}: {err}") from None
    steps = parse_steps(steps)
    try:
        sheet = Dopesheet.read(dopesheet) if dopesheet is not None else experiment.dopesheet
        if steps is not None and steps != sheet.length:
            sheet = sheet.stretched(steps)
        if sheet is not experiment.dopesheet:
            experiment = experiment.with_dopesheet(sheet)
    except DopesheetError as err:
        raise UsageError(str(err)) from None
    except ValueError as err:  # a valid sheet that does not fit the experiment (an unknown column)
        raise UsageError(f"--dopesheet {dopesheet}: {err}") from None
    try:
        if hidden is not None:
            experiment = experiment.with_model(hidden=hidden)
            check_memory(experiment_sizes(experiment))
    except ValueError as err:
        raise UsageError(f"--hidden {hidden}: {getattr(err, 'reason', err)}") from None
    try:
        if stream is not None:
            experiment = replace(experiment, stream=stream)
    except ValueError as err:
        raise UsageError(f"--stream {stream}: {err}") from None
    return experiment
