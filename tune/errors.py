"""Errors the CLI reports as one line (no traceback)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Interrupted", "UsageError", "writable_directory"]


class UsageError(Exception):
    """A mistake in the command line or its input files; printed without a traceback."""


class Interrupted(Exception):
    """The command stopped on a signal after a clean, resumable stop; exits with 128 + the signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


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
