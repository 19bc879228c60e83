"""Reading hand-edited YAML (experiment files, search spaces) with errors that name the field.

Shared by ``excolor.experiments`` and ``tune.space``: a safe loader that also reads ``1e-4`` as a
number, and small checkers that turn a wrong value into one message naming the field and what was
expected. Each checker takes ``fail(field, reason) -> Exception``, bound to the file being read.

The loader keeps the bounds of :mod:`excolor.limits`: a document nests at most ``MAX_DEPTH`` levels
and holds at most ``MAX_NODES`` values (beyond is a syntax-like error with its line), and an integer
of more than ``MAX_DIGITS`` digits is read as a :class:`HugeInteger` that every checker refuses,
naming the field and the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from excolor.limits import MAX_DEPTH, MAX_DIGITS, MAX_NODES
from excolor.readers import UnreadableText, read_text

__all__ = [
    "Fail",
    "HugeInteger",
    "Loader",
    "UnreadableText",
    "integer",
    "kind",
    "listing",
    "load",
    "mapping",
    "number",
    "read_text",
    "sequence",
    "text",
]

Fail = Callable[[str, str], Exception]


@dataclass(frozen=True)
class HugeInteger:
    """An integer literal of more than ``MAX_DIGITS`` digits, kept unconverted (Python refuses to
    convert more than 4,300 digits, and no field of excolor's files needs more than a few)."""

    digits: int
    line: int
    column: int

    def describe(self) -> str:
        return (
            f"an integer of {self.digits:,} digits (line {self.line}, column {self.column}; "
            f"at most {MAX_DIGITS} digits are read)"
        )


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads 1e-4 and 1.0e35 as floats, within the reader bounds.

    NOTE(yaml): PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent, so the
    natural ``low: 1e-4`` would be text; YAML 1.2 and users read it as a number.
    NOTE(yaml): PyYAML composes nested collections recursively, so ``[[[[...`` 100,000 deep ends in
    a RecursionError; the depth is counted here and refused at ``MAX_DEPTH``. It is also slow
    (~0.2 ms per value), so the values of a document are counted and refused beyond ``MAX_NODES``.
    """

    _depth = 0
    _nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        nests = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if nests and self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_NODES:,} values in one file", event.start_mark
            )
        self._depth += nests
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= nests


def _bounded_int(loader: Loader, node: yaml.ScalarNode) -> int | HugeInteger:
    """An int, or a ``HugeInteger`` for a literal of more than ``MAX_DIGITS`` digits."""
    digits = sum(c.isalnum() for c in str(node.value))
    if digits > MAX_DIGITS:
        return HugeInteger(digits, node.start_mark.line + 1, node.start_mark.column + 1)
    return yaml.SafeLoader.construct_yaml_int(loader, node)  # type: ignore[no-any-return]


def _mapping_without_duplicates(loader: Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A mapping; a key written twice is an error (YAML readers differ on which copy wins)."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool, HugeInteger)):
            continue  # an unhashable key: the default constructor reports it
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
Loader.add_constructor("tag:yaml.org,2002:int", _bounded_int)
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

_LOOKS_NUMERIC = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


class YamlSyntaxError(ValueError):
    """Invalid YAML: the reason and the 1-based line, if known."""

    def __init__(self, reason: str, line: int | None) -> None:
        self.reason, self.line = reason, line
        super().__init__(reason)


def load(text: str) -> Any:
    """Parse YAML safely (no arbitrary objects); ``YamlSyntaxError`` with the line on bad syntax."""
    try:
        return yaml.load(text, Loader=Loader)  # a yaml.SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        column = f" (column {mark.column + 1})" if mark is not None else ""
        reason = " ".join(str(e.problem or e.context).split())  # one line
        raise YamlSyntaxError(f"invalid YAML: {reason}{column}", line) from None
    except yaml.reader.ReaderError as e:  # a control character: no mark, and a two-line message
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        code = e.character if isinstance(e.character, int) else ord(e.character)
        raise YamlSyntaxError(f"invalid YAML: control character {code:#06x} (column {column})", line) from None
    except yaml.YAMLError as e:
        raise YamlSyntaxError(f"invalid YAML: {' '.join(str(e).split())}", None) from None


def listing(items: Iterable[object]) -> str:
    return ", ".join(str(x) for x in items)


def kind(raw: object) -> str:
    """How a YAML value reads in an error message."""
    if raw is None:
        return "nothing (null)"
    if isinstance(raw, bool):
        return f"the boolean {str(raw).lower()}"
    if isinstance(raw, str):
        return f"the string {raw!r}"
    if isinstance(raw, dict):
        return "a mapping"
    if isinstance(raw, list):
        return "a list"
    if isinstance(raw, HugeInteger):
        return raw.describe()
    return repr(raw)


def mapping(raw: object, field: str, allowed: tuple[str, ...], required: tuple[str, ...], fail: Fail) -> dict[str, Any]:
    """``raw`` checked to be a mapping with only ``allowed`` keys and every ``required`` one."""
    what = field or "the file"
    if not isinstance(raw, dict):
        raise fail(field, f"expected a mapping with keys {listing(allowed)}, got {kind(raw)}")
    for key in raw:
        if key not in allowed:
            path = f"{field}.{key}" if field else str(key)
            raise fail(path, f"unknown key {key!r}; expected one of: {listing(allowed)}")
    for key in required:
        if key not in raw:
            path = f"{field}.{key}" if field else key
            raise fail(path, f"missing required key in {what} (required: {listing(required)})")
    return raw


def sequence(raw: object, field: str, fail: Fail) -> list[Any]:
    """``raw`` checked to be a list (None reads as an empty one)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail(field, f"expected a list of entries (lines starting with '- '), got {kind(raw)}")
    return raw


def text(raw: object, field: str, fail: Fail) -> str:
    if not isinstance(raw, str) or not raw:
        raise fail(field, f"expected a non-empty string, got {kind(raw)}")
    return raw


def integer(raw: object, field: str, fail: Fail, *, what: str = "an integer") -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise fail(field, f"expected {what}, got {kind(raw)}")
    return raw


def number(raw: object, field: str, fail: Fail) -> float:
    """A finite number; a quoted number is refused (it is text in YAML)."""
    if isinstance(raw, str) and _LOOKS_NUMERIC.fullmatch(raw):
        raise fail(field, f"expected a number, got the string {raw!r} (quoted numbers are text in YAML)")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise fail(field, f"expected a number, got {kind(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise fail(field, f"expected a finite number, got {raw!r}")
    return value
