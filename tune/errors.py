"""Errors the CLI reports as one line (no traceback)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = ["Interrupted", "StorageFull", "UsageError", "is_storage_full", "storage_nearly_full", "writable_directory"]


class UsageError(Exception):
    """A mistake in the command line or its input files; printed without a traceback."""


class Interrupted(Exception):
    """The command stopped on a signal after a clean, resumable stop; exits with 128 + the signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class StorageFull(Exception):
    """The study's storage ran out of space; the stop is clean and a rerun after freeing space goes on."""


_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


def is_storage_full(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it, or the remote error Ray wrapped in it) is a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        if any(text in str(current) for text in _FULL_TEXT):  # a worker's error, as Ray's text
            return True
        current = current.__cause__ or current.__context__
    return False


FULL_BELOW = 16 << 20
"""Free bytes under which a study's storage counts as full (a cohort's checkpoint takes a few MB)."""


def storage_nearly_full(directory: Path) -> bool:
    """Whether the filesystem holding ``directory`` has less than ``FULL_BELOW`` bytes (or 1 %) free."""
    try:
        usage = shutil.disk_usage(directory)
    except OSError:
        return False
    return usage.free < max(FULL_BELOW, usage.total // 100)


def writable_directory(path: Path, flag: str) -> Path:
    """``path`` made absolute and created if missing, or a UsageError naming the ``flag``."""
    path = path.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag}: cannot create {path}: {err.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} is not writable")
    return path
