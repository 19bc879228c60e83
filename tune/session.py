"""The Ray session of one command: its environment, connecting or starting Ray, and stopping it cleanly.

Ray reads its environment at import time and trial processes inherit it, so ``prepare_environment``
runs before Ray is imported. An embedded Ray (no ``--address``) is started by the command and
stopped with everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tune.errors import UsageError

__all__ = ["check_reachable", "check_resources", "init_ray", "prepare_environment", "shutdown_embedded_ray"]


def prepare_environment(address: str | None, wandb_mode: str) -> None:
    """Environment for Ray and W&B, set before Ray is imported (Ray reads it at import time) and
    inherited by every trial process."""
    os.environ["WANDB_MODE"] = wandb_mode
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Checkpoints after every validation make Tune warn about frequent snapshots; they are cheap here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's C++ core prints its warnings as errors on the terminal; its full logs stay in
    # /tmp/ray/session_latest/logs. Set it yourself to see them.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    # Tune's new console output draws a configuration box and hints (TensorBoard, "View detailed
    # results") even at verbose=0; the legacy reporter at verbose=0 prints nothing. excolor prints
    # its own start line, one line per finished configuration and the study's status.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # W&B's first run starts in seconds on the driver (its import, ~3 s here); Tune would warn that
    # its callbacks are "a performance bottleneck" (measured once per study, not per step).
    os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "30")
    if address and "RAY_AUTH_MODE" not in os.environ and _is_local_excolor_cluster(address):
        # `excolor cluster up` starts its nodes with token auth; a driver needs token mode too. Ray
        # reads the token from ~/.ray/auth_token; it is never printed. For other clusters, export the
        # same RAY_AUTH_MODE as the cluster (Ray's rule).
        os.environ["RAY_AUTH_MODE"] = "token"


def _is_local_excolor_cluster(address: str) -> bool:
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return False
    from tune.local_cluster import STATE_FILE, cluster_temp_dir

    return (cluster_temp_dir(int(port)) / STATE_FILE).exists()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[Callable[[], str]]:
    """Hold back what ``ray.init`` prints on stderr (its token-auth banner, a C++ log-level line).

    Both the Python and the C++ side write to file descriptor 2, so the descriptor itself is
    redirected to a temporary file for the call; ``EXCOLOR_VERBOSE=1`` prints it afterwards.
    Ray's full logs stay in its session directory.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    text: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lambda: "".join(text)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text.append(held.read().decode(errors="replace"))


def check_reachable(address: str, *, timeout_s: float = 30.0) -> None:
    """Refuse a ``HOST:PORT`` cluster address that accepts no connection within ``timeout_s``.

    NOTE(excolor): ``ray.init(address=...)`` retries an unreachable address for good (seen: still
    waiting after 7 minutes); a plain TCP connection to the GCS port answers in seconds.
    """
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except OSError as err:
        reason = f"no answer within {timeout_s:g} s" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({reason}); is it up? "
            "(`excolor cluster up` starts one on this machine)"
        ) from None


def check_resources(cpus_per_trial: int, gpus_per_trial: float) -> None:
    """Refuse a trial that no node of this Ray can ever hold (Tune would wait for it for good)."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    cpus = max((float(r.get("CPU", 0)) for r in nodes), default=0.0)
    gpus = max((float(r.get("GPU", 0)) for r in nodes), default=0.0)
    if cpus_per_trial > cpus:
        raise UsageError(f"--cpus-per-trial {cpus_per_trial}: no node of this Ray has that many CPUs (most: {cpus:g})")
    if gpus_per_trial > gpus:
        raise UsageError(
            f"--gpus-per-trial {gpus_per_trial:g}: no node of this Ray has that many GPUs (most: {gpus:g})"
        )


def init_ray(address: str | None) -> str | None:
    """Connect to or start Ray; returns the session directory when this call started an embedded Ray."""
    import ray

    if address:
        check_reachable(address, timeout_s=float(os.environ.get("EXCOLOR_CONNECT_TIMEOUT_S", "30")))
    if ray.is_initialized():
        return None
    try:
        with _quiet_stderr() as said:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # NOTE(excolor): "local", not None: given no address, Ray joins the cluster named in
                # /tmp/ray/ray_current_cluster (the last `ray start` on this machine), and one left there
                # by a killed cluster made every embedded study hang silently (seen: > 2 minutes, no output).
                ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"the Ray cluster at {address!r}" if address else "an embedded Ray"
        raise UsageError(f"cannot start or reach {where}: {err}") from None
    if os.environ.get("EXCOLOR_VERBOSE"):
        sys.stderr.write(said())
    if address:
        return None
    node = ray._private.worker._global_node
    return None if node is None else str(node.get_session_dir_path())


def _stop_autoscaler_monitor() -> None:
    """Kill the embedded Ray's autoscaler monitor (a single node has nothing to scale).

    NOTE(excolor): the monitor does not exit on SIGTERM, so ``ray.shutdown()`` waited out its full
    second of grace for it (measured: 1.02 s of a 1.28-s shutdown) at the end of every study command.
    """
    import ray
    from ray._private import ray_constants

    node = ray._private.worker._global_node
    for info in getattr(node, "all_processes", {}).get(ray_constants.PROCESS_TYPE_MONITOR, []):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            info.process.kill()
            info.process.wait(timeout=5)


def shutdown_embedded_ray(session_dir: str) -> None:
    """Stop the Ray this command started, and any of its processes that outlive it.

    NOTE(excolor): an actor (Ray's W&B logging actor, when excolor used it) was seen to survive
    ``ray.shutdown()`` as an orphan, idle for good; a study command must not leave such processes
    behind, so whatever still runs inside this Ray session's directory is killed.
    """
    import ray

    _stop_autoscaler_monitor()
    ray.shutdown()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(session_dir) and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
