"""cluster.yaml passes Ray's own cluster-launcher validation (schema + defaults of the pinned Ray)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


def _validate(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before launching anything."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_is_valid(config: dict[str, Any]) -> None:
    prepared = _validate(config)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] == "head"
    assert prepared["available_node_types"]["head"]["resources"] == {"CPU": 0}
    assert {"cpu_worker", "gpu_worker"} <= set(prepared["available_node_types"])


def test_cluster_yaml_installs_this_project_with_pins(config: dict[str, Any]) -> None:
    setup = " ".join(config["setup_commands"])
    assert "-c ~/excolor/constraints.txt -e ~/excolor" in setup
    assert "download.pytorch.org/whl/cpu" in setup  # no multi-GB CUDA wheels on CPU nodes
    assert config["file_mounts"]["~/excolor"] == "."
    assert "RAY_AUTH_MODE=token" in setup and "WANDB_MODE=offline" in setup
    assert "WANDB_API_KEY=" not in CLUSTER_YAML.read_text().replace("`export WANDB_API_KEY=...`", "")


@pytest.mark.parametrize(
    ("break_it", "error", "message"),
    [
        (lambda c: c.pop("head_node_type"), ValueError, "head_node_type` must be one of"),
        (lambda c: c.update(head_node_type="nope"), ValueError, "head_node_type` must be one of"),
        (
            lambda c: c["available_node_types"]["cpu_worker"].pop("node_config"),
            jsonschema.ValidationError,
            "'node_config' is a required property",
        ),
        (
            lambda c: c["available_node_types"]["cpu_worker"].update(min_workers="two"),
            jsonschema.ValidationError,
            "is not of type 'integer'",
        ),
        (lambda c: c.update(unknown_field=1), jsonschema.ValidationError, "unknown_field"),
    ],
)
def test_broken_copies_fail_validation(
    config: dict[str, Any], break_it: Any, error: type[Exception], message: str
) -> None:
    broken = copy.deepcopy(config)
    break_it(broken)
    with pytest.raises(error, match=message):
        _validate(broken)
