"""Errors the CLI reports as one line (no traceback)."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A mistake in the command line or its input files; printed without a traceback."""
