"""Bounded reading of files: text of a limited size, JSON of a limited depth and digit count, tensors.

Every file excolor, ``tune`` and ``analysis`` read from a user or from a study directory goes
through :func:`read_text`, so that ``/dev/zero``, a FIFO or a 50 MB file is one clear refusal, not a
``MemoryError`` or a hang. :func:`load_json_file` adds the JSON bounds for study records
(``study.json``, ``result.json``): nesting depth, integer digits, and NaN/Infinity, which JSON does
not have but Python's ``json`` reads. :func:`load_tensors` reads checkpoints and stored populations
with ``torch.load(weights_only=True)`` once their unpacked size is known to fit. The limits
themselves live in :mod:`excolor.limits`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import zipfile
from typing import Any

from excolor.limits import MAX_DEPTH, MAX_DIGITS, RECORD_LIMIT, TEXT_LIMIT, format_bytes, tensor_file_limit

__all__ = [
    "JsonError",
    "UnreadableText",
    "load_json_file",
    "load_json_lines",
    "load_json_text",
    "load_tensors",
    "read_bytes",
    "read_text",
]


class UnreadableText(ValueError):
    """A file that cannot be read as UTF-8 text of at most ``limit`` bytes.

    ``str()`` is the reason in one line *without* the file, which the caller's error names
    (``DopesheetError``, ``ExperimentError``, ``SpaceError``); ``path`` holds it for other callers.
    """

    def __init__(self, reason: str, *, path: str = "") -> None:
        self.reason, self.path = reason, path
        super().__init__(reason)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unreadable, (self.reason, self.path))


def _rebuild_unreadable(reason: str, path: str) -> UnreadableText:
    return UnreadableText(reason, path=path)


def read_bytes(path: str | os.PathLike[str], *, limit: int = TEXT_LIMIT) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or ``UnreadableText``.

    Devices (``/dev/zero``), FIFOs, sockets and directories are refused before anything is read
    (opening does not block on a FIFO), and at most ``limit + 1`` bytes are ever read, also from a
    file that grows or lies about its size.
    """
    where = os.fspath(path)
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UnreadableText(f"cannot read the file: {e.strerror or e}", path=where) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a directory" if stat.S_ISDIR(mode) else "a device, pipe or socket"
            raise UnreadableText(
                f"cannot read the file: not a regular file ({what}); expected a file of at most {_size(limit)}",
                path=where,
            )
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as e:
        raise UnreadableText(f"cannot read the file: {e.strerror or e}", path=where) from None
    finally:
        os.close(fd)
    if total > limit:
        raise UnreadableText(f"the file is larger than the limit of {_size(limit)}", path=where)
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], *, limit: int = TEXT_LIMIT) -> str:
    """The UTF-8 text (a BOM is allowed) of a regular file of at most ``limit`` bytes.

    Args:
        path: The file.
        limit: The most bytes read; default ``excolor.limits.TEXT_LIMIT`` (1 MiB), for hand-written
            files. Study records use ``RECORD_LIMIT``.

    Raises:
        UnreadableText: Missing, not a regular file, over ``limit``, or not UTF-8; one line.
    """
    data = read_bytes(path, limit=limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnreadableText(
            f"not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})", path=os.fspath(path)
        ) from None


def load_tensors(path: str | os.PathLike[str], *, limit: int | None = None) -> Any:
    """``torch.load(weights_only=True)`` of a tensor file whose unpacked size fits ``limit``, on the CPU.

    ``weights_only`` refuses anything but tensors and plain containers; this adds the size. torch's
    format is a zip archive whose entries may be compressed (torch inflates them), so a crafted file
    of kilobytes can unpack to any size: the archive's directory states each entry's unpacked size,
    and their sum must fit ``limit`` before torch reads anything (a file that is not a zip archive
    counts its own size). The file is opened once, so what was checked is what is loaded.

    Args:
        path: The file.
        limit: The most bytes it may unpack to; default ``excolor.limits.tensor_file_limit()``.

    Raises:
        UnreadableText: Missing, not a regular file, or unpacking to more than ``limit``; one line.
        Exception: What ``torch.load`` raises for a corrupt or foreign file (many types).
    """
    import torch

    where = os.fspath(path)
    limit = tensor_file_limit() if limit is None else limit
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UnreadableText(f"cannot read the file: {e.strerror or e}", path=where) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise UnreadableText(f"cannot read the file: not a regular file ({what})", path=where)
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        if zipfile.is_zipfile(f):
            try:
                with zipfile.ZipFile(f) as archive:  # a passed file stays open
                    size = sum(info.file_size for info in archive.infolist())
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise UnreadableText(f"not a readable tensor archive: {e}", path=where) from None
        if size > limit:
            raise UnreadableText(
                f"the file unpacks to {format_bytes(size)}, more than the limit of {_size(limit)}", path=where
            )
        f.seek(0)
        return torch.load(f, map_location="cpu", weights_only=True)


def _size(limit: int) -> str:
    return f"{format_bytes(limit)} ({limit:,} bytes)" if limit >= 1024 else f"{limit} bytes"


# ---------------------------------------------------------------------------------------- JSON


class JsonError(ValueError):
    """A JSON file or text that is unreadable, malformed or out of bounds: where, and why, in one line.

    Attributes:
        reason: What is wrong.
        source: The file (or ``'<string>'``).
        line: 1-based line, when known.
    """

    def __init__(self, reason: str, *, source: str = "<string>", line: int | None = None) -> None:
        self.reason, self.source, self.line = reason, source, line
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.source}{'' if self.line is None else f', line {self.line}'}: {self.reason}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_json_error, (self.reason, self.source, self.line))


def _rebuild_json_error(reason: str, source: str, line: int | None) -> JsonError:
    return JsonError(reason, source=source, line=line)


class _Refused(Exception):
    """Raised inside the JSON scanner's hooks; turned into a JsonError with a line."""

    def __init__(self, reason: str, token: str) -> None:
        self.reason, self.token = reason, token


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-')):,} digits; at most {MAX_DIGITS} are read", text)
    return int(text)


def _json_hooks(allow_nan: bool) -> dict[str, Any]:
    def parse_float(text: str) -> float:
        value = float(text)
        if not allow_nan and not math.isfinite(value):
            raise _Refused(f"the number {text[:40]} overflows to infinity", text)
        return value

    def parse_constant(name: str) -> float:
        if not allow_nan:
            raise _Refused(f"{name} is not a JSON number (only finite numbers are allowed here)", name)
        return float(name)

    return {"parse_int": _parse_int, "parse_float": parse_float, "parse_constant": parse_constant}


def _line_of(text: str, token: str) -> int | None:
    at = text.find(token)
    return None if at < 0 else text.count("\n", 0, at) + 1


def _check_depth(value: Any, limit: int) -> int | None:
    """The first depth beyond ``limit`` reached by ``value`` (None when within it); iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return None


_JSON_KINDS = {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "a boolean", type(None): "null"}


def _json_kind(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _JSON_KINDS.get(type(value), type(value).__name__)


def load_json_text(
    text: str,
    *,
    source: str = "<string>",
    allow_nan: bool = False,
    max_depth: int = MAX_DEPTH,
    expect: type | None = None,
) -> Any:
    """Parse JSON text within the bounds of :func:`load_json_file`; ``source`` names it in errors."""
    try:
        value = json.loads(text, **_json_hooks(allow_nan))
    except _Refused as e:
        raise JsonError(e.reason, source=source, line=_line_of(text, e.token)) from None
    except json.JSONDecodeError as e:
        raise JsonError(f"invalid JSON: {e.msg} (column {e.colno})", source=source, line=e.lineno) from None
    except RecursionError:
        raise JsonError(f"nested more than {max_depth} levels deep", source=source) from None
    if _check_depth(value, max_depth) is not None:
        raise JsonError(f"nested more than {max_depth} levels deep", source=source)
    if expect is not None and (not isinstance(value, expect) or isinstance(value, bool) is not (expect is bool)):
        raise JsonError(f"expected {_json_kind(expect())} at the top, got {_json_kind(value)}", source=source)
    return value


def load_json_file(
    path: str | os.PathLike[str],
    *,
    limit: int = RECORD_LIMIT,
    allow_nan: bool = False,
    max_depth: int = MAX_DEPTH,
    expect: type | None = None,
) -> Any:
    """A JSON document from a file, read within bounds: for study records (``study.json``).

    The file must be a regular file of at most ``limit`` bytes of UTF-8; the document at most
    ``max_depth`` containers deep, with integers of at most ``MAX_DIGITS`` digits. ``NaN``,
    ``Infinity`` and numbers that overflow to infinity are refused unless ``allow_nan`` is true, when
    they are read as float NaN/inf and the caller must treat them (e.g. as a missing metric).
    ``expect=dict`` refuses a document that is not a JSON object (``study.json`` holding a list);
    the rest of its shape (keys, their types) is the caller's to check.

    Args:
        path: The file.
        limit: Most bytes read (default ``excolor.limits.RECORD_LIMIT``, 64 MiB).
        allow_nan: Accept NaN and ±Infinity (Python writes them for float nan/inf).
        max_depth: Most nesting levels (default ``excolor.limits.MAX_DEPTH``).
        expect: The type of the whole document (``dict`` or ``list``), or None for any.

    Returns:
        The parsed document (dict, list, str, int, float, bool or None).

    Raises:
        JsonError: One line naming the file, the line when known, and what is wrong.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "study.json"
    >>> _ = p.write_text('{"trials": 8, "score": NaN}')
    >>> load_json_file(p)
    Traceback (most recent call last):
    excolor.readers.JsonError: .../study.json, line 1: NaN is not a JSON number (only finite numbers are allowed here)
    >>> load_json_file(p, allow_nan=True)
    {'trials': 8, 'score': nan}
    """
    source = os.fspath(path)
    try:
        text = read_text(path, limit=limit)
    except UnreadableText as e:
        raise JsonError(e.reason, source=source) from None
    return load_json_text(text, source=source, allow_nan=allow_nan, max_depth=max_depth, expect=expect)


def load_json_lines(
    path: str | os.PathLike[str],
    *,
    limit: int = RECORD_LIMIT,
    allow_nan: bool = True,
    max_depth: int = MAX_DEPTH,
    expect: type | None = dict,
) -> list[Any]:
    """The documents of a JSON Lines file (Ray Tune's ``result.json``: one JSON object per line).

    Bounds as :func:`load_json_file`; blank lines are skipped. ``allow_nan`` defaults to true here
    because Ray writes NaN for a metric a trial could not compute: the caller must treat it. Each
    line must be of type ``expect`` (a JSON object by default). An error names the file and the
    1-based line.
    """
    source = os.fspath(path)
    try:
        text = read_text(path, limit=limit)
    except UnreadableText as e:
        raise JsonError(e.reason, source=source) from None
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(load_json_text(line, source=source, allow_nan=allow_nan, max_depth=max_depth, expect=expect))
        except JsonError as e:
            raise JsonError(e.reason, source=source, line=i) from None
    return out
