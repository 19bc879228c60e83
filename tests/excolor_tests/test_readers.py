"""Bounded readers: file size, non-regular files, nesting depth, integer digits, NaN (issue 16, items 9-11)."""

from __future__ import annotations

import math
import os
import re
import zipfile
from pathlib import Path

import pytest
import torch

from excolor import _yaml
from excolor.dopesheet import Dopesheet, DopesheetError
from excolor.experiments import ExperimentError, load_experiment, parse_experiment
from excolor.limits import MAX_DEPTH, MAX_DIGITS, MAX_NODES, TEXT_LIMIT
from excolor.readers import JsonError, UnreadableText, load_json_file, load_json_lines, load_tensors, read_text
from tune.space import SearchSpace, SpaceError

# ------------------------------------------------------------------------------------- read_text


def test_read_text_refuses_a_device_without_reading_it() -> None:
    with pytest.raises(UnreadableText) as info:
        read_text("/dev/zero")
    assert "not a regular file" in str(info.value) and "1.0 MiB" in str(info.value)
    assert info.value.path == "/dev/zero"


def test_read_text_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableText, match="not a regular file"):
        read_text(fifo)


def test_read_text_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a" * 1001)
    assert read_text(path, limit=1001) == "a" * 1001
    with pytest.raises(UnreadableText, match="larger than the limit of 1000 bytes"):
        read_text(path, limit=1000)


# ------------------------------------------------------------------------------------- tensors


def _deflated(tmp_path: Path, state: dict[str, object]) -> Path:
    """``state`` saved by torch, its archive rewritten with compressed entries (torch inflates them)."""
    plain, packed = tmp_path / "plain.pt", tmp_path / "packed.pt"
    torch.save(state, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return packed


def test_load_tensors_bounds_what_a_compressed_archive_unpacks_to(tmp_path: Path) -> None:
    packed = _deflated(tmp_path, {"params": torch.zeros(1000, 1000), "seeds": [0]})  # 4 MB of zeros
    assert packed.stat().st_size < 64 << 10  # the file itself is small
    with pytest.raises(UnreadableText, match=r"unpacks to 3\.8 MiB, more than the limit of 1\.0 MiB"):
        load_tensors(packed, limit=1 << 20)
    state = load_tensors(packed)  # within the default limit (half this machine's memory) it loads
    assert state["params"].shape == (1000, 1000) and state["seeds"] == [0]


def test_load_tensors_counts_a_plain_file_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"x": torch.arange(10)}, path)
    assert load_tensors(path)["x"].tolist() == list(range(10))
    with pytest.raises(UnreadableText, match="more than the limit of 100 bytes"):
        load_tensors(path, limit=100)


def test_load_tensors_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "population.pt"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableText, match=r"not a regular file \(a device, pipe or socket\)"):
        load_tensors(fifo)  # without blocking on the pipe
    with pytest.raises(UnreadableText, match=r"not a regular file \(a directory\)"):
        load_tensors(tmp_path)
    with pytest.raises(UnreadableText, match="cannot read the file"):
        load_tensors(tmp_path / "missing.pt")


def test_load_tensors_refuses_code_in_the_pickle(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"f": os.getcwd}, path)  # a function: weights_only refuses it
    with pytest.raises(Exception, match=r"(?i)weights_only"):
        load_tensors(path)


def test_a_compressed_checkpoint_too_large_to_load_is_one_analysis_error(tmp_path: Path, monkeypatch) -> None:
    from analysis.errors import AnalysisError
    from analysis.models import load_population

    packed = _deflated(tmp_path, {"params": torch.zeros(1000, 1000), "seeds": [0]})
    monkeypatch.setattr("excolor.readers.tensor_file_limit", lambda: 1 << 20)
    with pytest.raises(AnalysisError, match=re.escape(f"cannot read checkpoint {packed}: the file unpacks to 3.8 MiB")):
        load_population(packed)


# ------------------------------------------------------------------------------------- JSON


def _json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[" * 100_000 + "]" * 100_000, None, f"nested more than {MAX_DEPTH} levels"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), None, f"nested more than {MAX_DEPTH} levels"),
        ('{"trials":\n 1' + "0" * 5000 + "}", 2, "an integer of 5,001 digits"),
        ('{"score":\n\n NaN}', 3, "NaN is not a JSON number"),
        ('{"score": -Infinity}', 1, "-Infinity is not a JSON number"),
        ('{"score": 1e999}', 1, "overflows to infinity"),
        ('{"score": 1,}', 1, "invalid JSON"),
    ],
    ids=["very-deep", "one-too-deep", "5000-digits", "nan", "infinity", "overflow", "syntax"],
)
def test_load_json_file_refuses(tmp_path: Path, text: str, line: int | None, fragment: str) -> None:
    path = _json(tmp_path, text)
    with pytest.raises(JsonError) as info:
        load_json_file(path)
    err = info.value
    assert (err.source, err.line) == (str(path), line)
    assert fragment in str(err) and str(err).startswith(str(path)) and "\n" not in str(err)


@pytest.mark.parametrize(
    ("text", "got"), [("[1, 2]", "a JSON array"), ('"x"', "a string"), ("5", "a number"), ("null", "null")]
)
def test_load_json_file_expects_an_object(tmp_path: Path, text: str, got: str) -> None:
    path = _json(tmp_path, text)
    with pytest.raises(JsonError) as info:
        load_json_file(path, expect=dict)
    assert str(info.value) == f"{path}: expected a JSON object at the top, got {got}"
    assert load_json_file(path) is not None or text == "null"


def test_load_json_file_reads_within_bounds(tmp_path: Path) -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json_file(_json(tmp_path, deep)) is not None
    big = int("9" * MAX_DIGITS)
    assert load_json_file(_json(tmp_path, f'{{"n": {big}}}')) == {"n": big}
    value = load_json_file(_json(tmp_path, '{"score": NaN}'), allow_nan=True)
    assert math.isnan(value["score"])


@pytest.mark.parametrize("path", ["/dev/zero", "missing"])
def test_load_json_file_unreadable(tmp_path: Path, path: str) -> None:
    where = path if path.startswith("/") else str(tmp_path / path)
    with pytest.raises(JsonError) as info:
        load_json_file(where)
    assert str(info.value).startswith(f"{where}: cannot read the file")


def test_load_json_file_size_limit(tmp_path: Path) -> None:
    path = _json(tmp_path, '{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(JsonError, match="larger than the limit of 1000 bytes"):
        load_json_file(path, limit=1000)


def test_load_json_lines_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"score": 0.5}\n\n{"score": NaN}\n{"score": 1' + "0" * 500 + "}\n")
    with pytest.raises(JsonError) as info:
        load_json_lines(path)
    assert (info.value.line, "500") == (4, "500") and "digits" in info.value.reason
    path.write_text('{"score": 0.5}\n[1]\n')
    with pytest.raises(JsonError, match="line 2: expected a JSON object at the top, got a JSON array"):
        load_json_lines(path)
    path.write_text('{"score": 0.5}\n\n{"score": NaN}\n')
    rows = load_json_lines(path)
    assert rows[0] == {"score": 0.5} and math.isnan(rows[1]["score"])


# ------------------------------------------------------------------------------------- YAML

EXPERIMENT = """\
name: mine
model: {kind: CNColorMLP, k_bottleneck: 5, hidden: 8, n_nonlinear: 1}
regularizers:
  - {name: anchor, kind: AngularAnchor, concept: [1, 0, 0, 0, 0], labels: {red: 1.0}}
dopesheet: |
  STEP,lr,anchor
  0,1e-8,0
  10,0.01,0.1
"""


def test_yaml_depth_limit() -> None:
    with pytest.raises(_yaml.YamlSyntaxError) as info:
        _yaml.load("a: " + "[" * 100_000 + "]" * 100_000)
    assert info.value.line == 1 and f"nested more than {MAX_DEPTH} levels" in info.value.reason
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert _yaml.load(ok) is not None


def test_control_character_in_yaml_is_one_line() -> None:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(EXPERIMENT.replace("name: mine", "name: mi\x00ne"), source="mine.yaml")
    assert str(info.value) == "mine.yaml, line 1: invalid YAML: control character 0x0000 (column 9)"


def test_yaml_value_count_limit() -> None:
    with pytest.raises(_yaml.YamlSyntaxError) as info:
        _yaml.load("a:\n  - [" + ",".join(["1"] * 200_000) + "]")
    assert info.value.line == 2 and f"more than {MAX_NODES:,} values" in info.value.reason
    assert len(_yaml.load("[" + ",".join(["1"] * (MAX_NODES - 1)) + "]")) == MAX_NODES - 1


@pytest.mark.parametrize("nesting", ["flow", "block"])
def test_deeply_nested_experiment_file(nesting: str) -> None:
    deep = "[" * 5000 + "]" * 5000 if nesting == "flow" else "".join(f"\n{'  ' * i}k:" for i in range(1, 200)) + " 1"
    with pytest.raises(ExperimentError) as info:
        parse_experiment(EXPERIMENT + "description: " + deep + "\n", source="mine.yaml")
    message = str(info.value)
    assert message.startswith("mine.yaml, line ") and "nested more than" in message


def test_5000_digit_integer_in_an_experiment_file() -> None:
    text = EXPERIMENT.replace("hidden: 8", "hidden: 1" + "0" * 5000)
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, source="mine.yaml")
    err = info.value
    assert err.field == "model.hidden"
    column = text.splitlines()[1].index("hidden: 1") + len("hidden: ") + 1
    assert f"an integer of 5,001 digits (line 2, column {column};" in str(err)
    assert str(err).startswith("mine.yaml, model.hidden: ") and len(str(err)) < 300


def test_5000_digit_integer_in_a_search_space() -> None:
    text = "base: ex-2.9.1\ntimes:\n  - {name: t, step: 1" + "0" * 5000 + ", low: 0.1, high: 0.9}\n"
    with pytest.raises(SpaceError) as info:
        SearchSpace.parse(text, source="space.yaml")
    assert info.value.field == "times[0].step" and "5,001 digits (line 3" in str(info.value)


def test_deeply_nested_search_space() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.parse("base: " + "[" * 10_000 + "]" * 10_000, source="space.yaml")
    assert str(info.value).startswith("space.yaml, line 1: ") and "nested more than" in str(info.value)


# ------------------------------------------------------------------------------- /dev/zero everywhere


def test_dev_zero_as_a_dopesheet() -> None:
    with pytest.raises(DopesheetError) as info:
        Dopesheet.read("/dev/zero")
    assert str(info.value).startswith("/dev/zero: cannot read the file: not a regular file")


def test_dev_zero_as_an_experiment_file() -> None:
    with pytest.raises(ExperimentError) as info:
        load_experiment("/dev/zero")
    assert str(info.value).startswith("/dev/zero: cannot read the file: not a regular file")


def test_dev_zero_as_the_dopesheet_of_an_experiment(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(EXPERIMENT.split("dopesheet:")[0] + "dopesheet: /dev/zero\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert info.value.field == "dopesheet" and "not a regular file" in str(info.value)


def test_dev_zero_as_a_search_space() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.read("/dev/zero")
    assert str(info.value).startswith("/dev/zero: cannot read the file: not a regular file")


def test_50_megabyte_experiment_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write(EXPERIMENT + "description: ")
        f.write("x" * (50 << 20))
        f.write("\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert str(info.value) == f"{path}: the file is larger than the limit of 1.0 MiB ({TEXT_LIMIT:,} bytes)"
