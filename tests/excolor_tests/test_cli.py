"""``excolor train`` end to end on a tiny run, and its handling of user mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from tune.arguments import parse_seeds
from tune.cli import main


def test_parse_seeds() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5, 1-2,5") == [1, 2, 5]


@pytest.mark.parametrize("text", ["", "a", "3-1", "-1", "1-", "0-99999999999"])
def test_parse_seeds_rejects(text: str, capsys) -> None:
    assert main(["train", "--seeds", text, "--out", "/nonexistent/never"]) == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and "Traceback" not in err


def test_train_tiny_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--seeds", "0-2", "--steps", "40", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "models: 3" in text and "score" in text
    table = pd.read_csv(out / "metrics.csv")
    assert table["seed"].tolist() == [0, 1, 2]
    assert {"score", "ablated_r", "val_recon", "labels/n/red", "collapsed", "diverged"} <= set(table.columns)
    models = torch.load(out / "models.pt", weights_only=True)
    assert models["parameters"].shape == (3, 840) and models["seeds"] == [0, 1, 2]
    assert (out / "dopesheet.csv").read_text().startswith("STEP")
    # A second run into the same directory refuses to overwrite silently.
    assert main(["train", "--seeds", "0", "--steps", "40", "--out", str(out), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "engine"),
    [
        ([], "engine kernel"),  # the default on the CPU
        (["--engine", "torch"], "engine torch"),
        (["--device", "cpu", "--engine", "kernel"], "engine kernel"),
    ],
)
def test_train_says_which_engine_trained(tmp_path: Path, capsys, args: list[str], engine: str) -> None:
    out = tmp_path / "run"
    assert main(["train", "--seeds", "0-1", "--steps", "20", "--out", str(out), "--quiet", *args]) == 0
    assert engine in capsys.readouterr().out


def test_train_says_when_it_compiles_the_kernel_first(tmp_path: Path, capsys, monkeypatch) -> None:
    import excolor.kernel_forward

    out = ["--seeds", "0", "--steps", "10", "--quiet"]
    assert main(["train", *out, "--out", str(tmp_path / "a")]) == 0
    assert excolor.kernel_forward.cached()  # the run above compiled or loaded it
    assert "compiling" not in capsys.readouterr().err
    monkeypatch.setattr(excolor.kernel_forward, "cached", lambda: False)
    assert main(["train", *out, "--out", str(tmp_path / "b")]) == 0
    assert "compiling the fused CPU kernel" in capsys.readouterr().err
    assert main(["train", *out, "--engine", "torch", "--out", str(tmp_path / "c")]) == 0
    assert "compiling" not in capsys.readouterr().err


def test_an_empty_kernel_cache_is_seen(tmp_path: Path) -> None:
    code = "import excolor.kernel_forward as k; print(k.cached())"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"


def test_train_reports_a_malformed_dopesheet(tmp_path: Path, capsys) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text("STEP,lr,anchor\n0,1e-8,0\n10,abc,0.1\n")
    assert main(["train", "--dopesheet", str(sheet), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 3" in err and "'lr'" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "metrics.csv").exists()


def test_train_rejects_unknown_column(tmp_path: Path, capsys) -> None:
    sheet = tmp_path / "typo.csv"
    sheet.write_text("STEP,lr,anchr\n0,1e-8,0\n10,0.01,0.1\n")
    assert main(["train", "--dopesheet", str(sheet), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "anchr" in err and "anchor" in err


def test_train_missing_dopesheet_file(tmp_path: Path, capsys) -> None:
    assert main(["train", "--dopesheet", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_train_original_stream(tmp_path: Path, capsys) -> None:
    out = tmp_path / "orig"
    assert main(["train", "--seeds", "33", "--stream", "original", "--out", str(out), "--quiet"]) == 0
    assert "stream 'original'" in capsys.readouterr().out
    table = pd.read_csv(out / "metrics.csv")
    assert table["labels/n/red"].tolist() == [75]
    assert '"stream": "original"' in (out / "experiment.json").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_device_cuda_without_a_gpu_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["train", "--device", "cuda", "--seeds", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("excolor train: error: --device:") and "no CUDA GPU" in err and "auto" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "gpu"], "expected cpu, cuda, cuda:N or auto"),
        (["--gpus-per-trial", "0.5"], "--gpus-per-trial needs --device cuda or auto"),
        (["--device", "cuda", "--gpus-per-trial", "1.5"], "a fraction in (0, 1] or a whole number"),
    ],
)
def test_study_device_flags_are_checked_before_anything_runs(tmp_path: Path, capsys, args, message) -> None:
    assert main(["sweep", "--name", "d", "--storage", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_device_auto_trains_where_it_can(tmp_path: Path, capsys) -> None:
    assert (
        main(["train", "--device", "auto", "--seeds", "0-1", "--steps", "20", "--quiet", "--out", str(tmp_path)]) == 0
    )
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"device {expected}" in capsys.readouterr().out


def test_metrics_csv_is_the_file_pandas_writes() -> None:
    """``excolor train`` writes metrics.csv without pandas; the text is pandas' own, value for value."""
    import numpy as np

    from tune.run_train import metrics_csv

    metrics = {
        "seed": np.array([0, 7, 12]),
        "score": np.array([0.1, np.nan, 1 / 3]),
        "val_recon": np.array([1.2345678e-05, 0.1, np.nan], dtype=np.float32),
        "labels/n/red": np.array([3, 0, 11], dtype=np.int64),
        "collapsed": np.array([False, True, False]),
        "odd, name": np.array([np.inf, -0.0, 2.5e-300]),
    }
    assert metrics_csv(metrics) == pd.DataFrame(metrics).to_csv(index=False)
