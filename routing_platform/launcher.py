"""`make demo`: run the whole platform on one machine, embedded defaults included.

Starts, in order: the embedded Redis (unless ``REDIS_URL`` is set), migrations, the static
files (hashed and compressed, as in production), a staff user, RQ workers, the ASGI web
server (uvicorn), and the demo seed; prints the URLs and the login last, where they stay
in sight (the workers write their log to ``<data dir>/logs/workers.log``, not the
terminal); stops every process it started on Ctrl-C (or SIGTERM). Running it twice reuses what is
there: the database, the staff user, a Redis already listening on the socket.

The children run in their own sessions, so a Ctrl-C in the terminal reaches only this
launcher, which then stops them in order: the web server and the workers first (a worker
finishes the job in hand), Redis last. On Linux each child also dies with the launcher if
the launcher itself is killed.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from routing_platform.redis_embedded import child_process_options, start_embedded_redis

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_QUEUES = ("routing", "shadow", "judge", "default")
DEMO_USERNAME = "admin"


def proxy_header_args(forwarded_allow_ips: str | None = None) -> list[str]:
    """uvicorn's forwarded-header options: trust ``X-Forwarded-For`` / ``-Proto`` only from the
    proxies ``FORWARDED_ALLOW_IPS`` names, else from nobody.

    uvicorn's own default trusts loopback, so a client on the same host (or behind a proxy
    that does not strip the header) could pick its address with ``X-Forwarded-For`` and
    dodge the admin login lock-out, which keys on that address.
    """
    if forwarded_allow_ips is None:
        forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")
    forwarded_allow_ips = forwarded_allow_ips.strip()
    if not forwarded_allow_ips:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", f"--forwarded-allow-ips={forwarded_allow_ips}"]


def uvicorn_argv(host: str, port: int, *extra: str) -> list[str]:
    """The command line that serves the platform's ASGI app (the demo, production, tests,
    benchmarks): every server the project starts goes through it.

    uvicorn[standard]'s C event loop and HTTP parser are named (what "auto" picks when they
    are installed) so that a missing one fails loudly, not slowly. Forwarded headers are
    trusted only from ``FORWARDED_ALLOW_IPS`` (``proxy_header_args``).
    """
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        *proxy_header_args(),
        *extra,
    ]


# No `--with-scheduler`: nothing is scheduled for later (job retries are immediate), and
# django-rq 3's queue page fails on the scheduler lock that rq >= 2.10 writes.


class LauncherError(RuntimeError):
    """The platform could not start; the message says what to do."""


def _manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=check, cwd=BASE_DIR
    )


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_http(url: str, timeout_s: float, process: subprocess.Popen) -> bool:
    """True once ``url`` answers (any HTTP status); False if ``process`` dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback URL we built
                return True
        except urllib.error.HTTPError:
            return True  # the server answered
        except OSError:
            time.sleep(0.2)
    return False


class Platform:
    """The processes of one demo run; ``stop()`` ends all of them."""

    def __init__(self, *, host: str, port: int, data_dir: Path, workers: int) -> None:
        self.host, self.port, self.data_dir, self.workers = host, port, Path(data_dir), workers
        self.web: subprocess.Popen | None = None
        self.worker_processes: list[subprocess.Popen] = []
        self.redis = None
        self.seed_returncode: int | None = None
        self.env = dict(os.environ)
        self.env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        self.env["ROUTING_DATA_DIR"] = str(self.data_dir)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.env.setdefault("DJANGO_STATIC_MANIFEST", "true")
        self.worker_log_path = self.data_dir / "logs" / "workers.log"
        self._worker_log = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def processes(self) -> list[subprocess.Popen]:
        """Every long-running child except Redis: the web server and the workers."""
        return [p for p in (self.web, *self.worker_processes) if p is not None]

    def _spawn(self, argv: list[str], **streams) -> subprocess.Popen:
        return subprocess.Popen(
            argv, env=self.env, cwd=BASE_DIR, **streams, **child_process_options()
        )

    def _open_worker_log(self):
        self.worker_log_path.parent.mkdir(parents=True, exist_ok=True)
        self._worker_log = self.worker_log_path.open("a", buffering=1)
        return self._worker_log

    def login_text(self) -> str:
        """The demo staff user's login, as `routing demo-setup` keeps it."""
        password_file = self.data_dir / "demo-admin-password.txt"
        password = password_file.read_text().strip() if password_file.exists() else "?"
        return f"user {DEMO_USERNAME!r}, password {password!r}"

    def start(self, *, seed_requests: int) -> None:
        if not port_is_free(self.host, self.port):
            raise LauncherError(
                f"Port {self.port} on {self.host} is in use (another `make demo`?): stop that, "
                f"or choose another port with DEMO_PORT=8001 make demo."
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.env.get("REDIS_URL"):
            self.redis = start_embedded_redis(self.data_dir)
            print(f"redis     embedded redis-server on {self.redis.socket_path}", flush=True)
        else:
            print("redis     REDIS_URL (external server)", flush=True)
        _manage("migrate", "--noinput", "-v", "0", env=self.env)
        _manage("collectstatic", "--noinput", "-v", "0", env=self.env)
        _manage("routing", "demo-setup", "--username", DEMO_USERNAME, env=self.env)
        worker_log = self._open_worker_log()
        print(f"workers   {self.workers} RQ worker(s), log in {self.worker_log_path}", flush=True)
        for _ in range(self.workers):
            self.worker_processes.append(
                self._spawn(
                    [
                        sys.executable,
                        str(BASE_DIR / "manage.py"),
                        "rqworker",
                        *WORKER_QUEUES,
                    ],
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                )
            )
        self.web = self._spawn(uvicorn_argv(self.host, self.port))
        if not _wait_http(f"{self.base_url}/admin/login/", 60, self.web):
            raise LauncherError(
                f"The web server did not answer on {self.base_url}; its errors are above."
            )
        if seed_requests:
            seeded = _manage(
                "routing", "demo-seed", "--requests", str(seed_requests), env=self.env, check=False
            )
            self.seed_returncode = seeded.returncode
            if seeded.returncode:
                print(
                    "seed      demo-seed failed (see above); the platform runs unseeded.",
                    file=sys.stderr,
                    flush=True,
                )

    def stop(self) -> None:
        """SIGTERM the web server and workers (warm shutdown), wait, then stop Redis."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.web, self.worker_processes = None, []
        if self._worker_log is not None:
            self._worker_log.close()
            self._worker_log = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host",
        default=os.environ.get("DEMO_HOST", "127.0.0.1"),
        help="address the web server binds (default 127.0.0.1; env DEMO_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("DEMO_PORT", "8000")),
        help="web server port (default 8000; env DEMO_PORT)",
    )
    parser.add_argument("--workers", type=int, default=1, help="RQ workers to start (default 1)")
    parser.add_argument(
        "--seed-requests",
        type=int,
        default=int(os.environ.get("DEMO_SEED_REQUESTS", "300")),
        help="simulated requests to seed the demo experiment with (0: none; env DEMO_SEED_REQUESTS)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("ROUTING_DATA_DIR", BASE_DIR / "var")),
        help="SQLite file, Redis socket and demo password live here (default ./var)",
    )
    args = parser.parse_args(argv)

    platform = Platform(
        host=args.host, port=args.port, data_dir=args.data_dir.resolve(), workers=args.workers
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    # A shell that starts us in the background hands us SIGINT ignored; Ctrl-C must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        platform.start(seed_requests=args.seed_requests)
        print(
            f"\n  Dashboard  {platform.base_url}/admin/dashboard/"
            f"\n  Admin      {platform.base_url}/admin/"
            f"\n  API docs   {platform.base_url}/api/v1/routing/docs"
            f'\n  OpenAI     {platform.base_url}/v1  (model: "router")'
            f"\n  Queues     {platform.base_url}/django-rq/"
            f"\n  Login      {platform.login_text()}"
            f"\n  Worker log {platform.worker_log_path}"
            "\n\nPress Ctrl-C to stop every process this started.",
            flush=True,
        )
        while all(p.poll() is None for p in platform.processes):
            time.sleep(0.5)
        print("A platform process exited; stopping the rest.", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    except (LauncherError, subprocess.CalledProcessError) as err:
        print(f"make demo: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        platform.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
