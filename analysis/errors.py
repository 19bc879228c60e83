"""The one error ``analysis`` raises for bad input: a study it cannot read or a question it cannot answer."""

from __future__ import annotations

__all__ = ["AnalysisError"]


class AnalysisError(ValueError):
    """A directory that is not a study, an unknown objective, an unreadable file...

    The message is one self-contained line (it names the path or value at fault), so the CLI can
    print it as is, without a traceback. A ``ValueError`` so that callers who validate input
    generically still catch it.
    """
