"""`make demo`: run the whole platform on one machine, embedded defaults included.

Starts, in order: the embedded Redis (unless ``REDIS_URL`` is set), migrations, a staff
user, one RQ worker, the ASGI web server (uvicorn), and the demo seed; prints the URLs;
stops every process it started on Ctrl-C (or SIGTERM). Running it twice reuses what is
there: the database, the staff user, a Redis already listening on the socket.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=check, cwd=BASE_DIR
    )


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
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
        self.host, self.port, self.data_dir, self.workers = host, port, data_dir, workers
        self.processes: list[subprocess.Popen] = []
        self.redis = None
        self.env = dict(os.environ)
        self.env.setdefault("DJANGO_SETTINGS_MODULE", "routing_platform.settings")
        self.env["ROUTING_DATA_DIR"] = str(data_dir)
        self.env.setdefault("PYTHONUNBUFFERED", "1")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, seed_requests: int) -> None:
        from routing_platform.redis_embedded import start_embedded_redis

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.env.get("REDIS_URL"):
            self.redis = start_embedded_redis(self.data_dir)
            print(f"redis     embedded redis-server on {self.redis.socket_path}")
        else:
            print("redis     REDIS_URL (external server)")
        _manage("migrate", "--noinput", "-v", "0", env=self.env)
        _manage("routing", "demo-setup", env=self.env)
        for _ in range(self.workers):
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(BASE_DIR / "manage.py"),
                        "rqworker",
                        "routing",
                        "shadow",
                        "default",
                        "--with-scheduler",
                    ],
                    env=self.env,
                    cwd=BASE_DIR,
                )
            )
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "routing_platform.asgi:application",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=self.env,
                cwd=BASE_DIR,
            )
        )
        if not _wait_http(f"{self.base_url}/admin/login/", 60):
            raise RuntimeError(f"The web server did not answer on {self.base_url} within 60 s.")
        if seed_requests:
            _manage(
                "routing", "demo-seed", "--requests", str(seed_requests), env=self.env, check=False
            )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1, help="RQ workers to start.")
    parser.add_argument(
        "--seed-requests",
        type=int,
        default=300,
        help="Simulated requests to seed the demo experiment with (0: none).",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("ROUTING_DATA_DIR", BASE_DIR / "var"))
    )
    args = parser.parse_args(argv)

    platform = Platform(
        host=args.host, port=args.port, data_dir=args.data_dir.resolve(), workers=args.workers
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        platform.start(seed_requests=args.seed_requests)
        print()
        print(f"  Dashboard  {platform.base_url}/admin/dashboard/")
        print(f"  Admin      {platform.base_url}/admin/")
        print(f"  API docs   {platform.base_url}/api/v1/routing/docs")
        print(f'  OpenAI     {platform.base_url}/v1  (model: "router")')
        print(f"  Queues     {platform.base_url}/django-rq/")
        print("\nPress Ctrl-C to stop every process this started.")
        while all(p.poll() is None for p in platform.processes):
            time.sleep(0.5)
        print("A platform process exited; stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        platform.stop()


if __name__ == "__main__":
    sys.exit(main())
