"""A multi-node Ray cluster on one machine: ``excolor cluster up --workers N`` / ``down``.

Each node is a real ``ray start`` (a head with no CPUs for trials, plus N worker nodes), with a small
object store and token authentication (the token stays in ``~/.ray/auth_token``; it is never printed).
All processes of one local cluster carry its own ``--temp-dir`` (``/tmp/excolor-ray-<port>``) on their
command line, so ``down`` stops exactly the processes this cluster started — with their children —
and nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tune.errors import UsageError

__all__ = ["ClusterInfo", "cluster_down", "cluster_processes", "cluster_temp_dir", "cluster_up", "worker_raylets"]

STATE_FILE = "excolor-cluster.json"


@dataclass(frozen=True)
class ClusterInfo:
    port: int
    workers: int
    cpus_per_worker: int
    temp_dir: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def cluster_temp_dir(port: int) -> Path:
    # Short on purpose: Ray's Unix socket paths live under it (107-character limit).
    return Path(f"/tmp/excolor-ray-{port}")


def _ray() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


def _env() -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    return env


def _run(args: list[str]) -> None:
    done = subprocess.run(args, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise UsageError(f"`{' '.join(args[:3])} …` failed: {' / '.join(tail)}")


def _ensure_token() -> None:
    if (Path.home() / ".ray" / "auth_token").exists() or "RAY_AUTH_TOKEN" in os.environ:
        return
    # Output captured: it would show the token.
    subprocess.run([_ray(), "get-auth-token", "--generate"], env=_env(), capture_output=True, check=False)


def cluster_up(*, workers: int, cpus_per_worker: int = 1, port: int = 6390, object_store_mb: int = 100) -> ClusterInfo:
    """Start a head node and ``workers`` worker nodes on this machine."""
    if workers < 1 or cpus_per_worker < 1 or object_store_mb < 75:
        raise UsageError("need --workers >= 1, --cpus-per-worker >= 1 and --object-store-mb >= 75")
    temp = cluster_temp_dir(port)
    if cluster_processes(port):
        raise UsageError(
            f"a local cluster already runs on port {port}; stop it with `excolor cluster down --port {port}`"
        )
    shutil.rmtree(temp, ignore_errors=True)
    store = str(object_store_mb * 2**20)
    _ensure_token()
    common = ["--object-store-memory", store, "--disable-usage-stats"]
    try:
        _run(
            [
                _ray(),
                "start",
                "--head",
                "--port",
                str(port),
                "--num-cpus",
                "0",
                "--include-dashboard=false",
                "--temp-dir",
                str(temp),
                *common,
            ]
        )
        for _ in range(workers):
            _run([_ray(), "start", "--address", f"127.0.0.1:{port}", "--num-cpus", str(cpus_per_worker), *common])
    except BaseException:
        cluster_down(port=port)
        raise
    info = ClusterInfo(port, workers, cpus_per_worker, str(temp))
    (temp / STATE_FILE).write_text(json.dumps(info.__dict__))
    return info


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cluster_processes(port: int) -> list[int]:
    """PIDs of this local cluster: processes naming its temp dir, and all their descendants."""
    marker = str(cluster_temp_dir(port))
    roots = [int(p.name) for p in Path("/proc").glob("[0-9]*") if marker in _cmdline(int(p.name))]
    tree, found, stack = _children(), set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in found and pid != os.getpid():
            found.add(pid)
            stack.extend(tree.get(pid, []))
    return sorted(found)


def worker_raylets(port: int) -> list[int]:
    """PIDs of the worker nodes' raylets (not the head's): killing one loses that node."""
    marker = str(cluster_temp_dir(port))
    out = []
    for p in Path("/proc").glob("[0-9]*"):
        cmd = _cmdline(int(p.name))
        if marker in cmd and "raylet/raylet" in cmd.split(" ", 1)[0] and " --head" not in cmd:
            out.append(int(p.name))
    return sorted(out)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cluster_down(*, port: int = 6390, timeout: float = 5.0) -> int:
    """Stop exactly this local cluster's processes (SIGTERM, then SIGKILL); returns how many."""
    pids = cluster_processes(port)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        if not any(_alive(p) for p in pids):
            break
    shutil.rmtree(cluster_temp_dir(port), ignore_errors=True)
    return len(pids)
