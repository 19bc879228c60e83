"""Read a W&B run file (``run-*.wandb``) in tests: what an offline run really holds.

The file is a LevelDB-style log (a 7-byte ``:W&B`` header, 32 KiB blocks of chunks with 7-byte
headers: CRC, length, type FULL/FIRST/MIDDLE/LAST) of ``wandb_internal_pb2.Record`` messages.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    """Every record of the run file, parsed."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    chunks, pos, partial = [], 7, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's tail too short for a header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        body = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        if kind == _FULL:
            chunks.append(body)
        elif kind == _FIRST:
            partial = body
        elif kind == _MIDDLE:
            partial += body
        elif kind == _LAST:
            chunks.append(partial + body)
    out = []
    for raw in chunks:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        out.append(record)
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def history(path: Path) -> list[dict[str, Any]]:
    """The run's logged rows, values decoded from JSON."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append({_key(i): json.loads(i.value_json) for i in r.history.item})
    return rows


def run_config(path: Path) -> tuple[str, dict[str, Any]]:
    """The run's display name and the config it was started with."""
    for r in records(path):
        if r.WhichOneof("record_type") == "run":
            return r.run.display_name, {_key(i): json.loads(i.value_json) for i in r.run.config.update}
    raise AssertionError(f"{path} has no run record")
