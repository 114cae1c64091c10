"""`make demo` end to end: the launcher starts everything, a routed call goes through the
worker, the printed credentials log in, Ctrl-C stops every process, and a second run works.

This drives `python -m routing_platform.launcher` exactly as `make demo` does, on a temporary
data directory (its own SQLite file and embedded Redis) and a free port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from routing_platform.redis_embedded import socket_is_live
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

READY = "Press Ctrl-C to stop every process this started."

# Runs inside the demo's environment (same SQLite file and Redis): one call through the queue.
ROUTE_ONE_CALL = """
import json, time
from experiments.models import RoutedCall
from experiments.services import routed_call_enqueue
call = routed_call_enqueue(
    kind="execute", request_payload={"text": "What is 2 + 2?"}, task_type="classification",
    unit_id="demo-test-user", source="demo-test",
)
deadline = time.monotonic() + 90
while call.status in ("queued", "running") and time.monotonic() < deadline:
    time.sleep(0.2)
    call.refresh_from_db()
from routing_platform.cli.subcommands.demo_seed import DEMO_KEY
seeded = RoutedCall.objects.filter(experiment__key=DEMO_KEY).count()
print(json.dumps({"status": call.status, "model": call.model, "provider": call.provider,
                  "error": call.error_message, "seeded": seeded}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_env(data_dir: Path) -> dict[str, str]:
    """The developer's environment minus anything that would leave the sandbox."""
    drop = ("DATABASE_URL", "REDIS_URL", "_API_KEY", "_BASE_URL", "DJANGO_", "ROUTER_")
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in drop)}
    env.update(
        ROUTING_DATA_DIR=str(data_dir), ROUTER_PROVIDER_MODE="simulated", PYTHONUNBUFFERED="1"
    )
    return env


class Demo:
    """One `python -m routing_platform.launcher` run, output captured to a file."""

    def __init__(self, data_dir: Path, log: Path, *, seed_requests: int) -> None:
        self.data_dir, self.log, self.port = data_dir, log, free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = demo_env(data_dir)
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "routing_platform.launcher",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(data_dir),
                    "--seed-requests",
                    str(seed_requests),
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while READY not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not come up:\n{self.output[-4000:]}")
            time.sleep(0.3)

    def ctrl_c(self) -> int:
        """What a terminal does on Ctrl-C: SIGINT to the launcher's whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=90)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )


def processes_using(data_dir: Path) -> list[str]:
    """Live processes whose command line or environment names ``data_dir``."""
    found = []
    needle = str(data_dir).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and (needle in cmdline or needle in environ):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found


def login(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
    )
    assert response.status_code == 302, response.text[:500]
    assert response.headers["location"] == "/admin/"
    return client


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to prove nothing is left running")
def test_demo_starts_routes_a_call_through_the_worker_and_stops_everything(tmp_path):
    """The demo's whole start-up path, one call through Redis and the RQ worker, a clean Ctrl-C."""
    data_dir = tmp_path / "var"
    demo = Demo(data_dir, tmp_path / "demo1.log", seed_requests=20)
    try:
        demo.wait_ready()
        output = demo.output
        assert "demo-seed failed" not in output, output[-4000:]
        for url in ("/admin/dashboard/", "/admin/", "/api/v1/routing/docs", "/v1", "/django-rq/"):
            assert f"{demo.base_url}{url}" in output
        # The URLs and the login come last; the workers' chatter goes to their log file.
        last_block = output[output.rindex("  Dashboard  ") :]
        assert "  Login      user 'admin', password '" in last_block
        worker_log = data_dir / "logs" / "workers.log"
        assert f"  Worker log {worker_log}" in last_block
        assert "Job OK" not in output

        password = re.search(r"user 'admin', password '([^']+)'", output).group(1)
        client = login(demo.base_url, "admin", password)
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/dashboard/").status_code == 200
        assert client.get("/django-rq/").status_code == 200  # the queues page, workers running

        routed = demo.manage("shell", "-c", ROUTE_ONE_CALL)
        assert routed.returncode == 0, routed.stderr[-3000:]
        call = json.loads(routed.stdout.strip().splitlines()[-1])
        assert call["status"] == "success", call
        assert call["provider"] == "simulated" and call["model"]
        assert call["seeded"] >= 20  # demo-seed filled the demo experiment through the worker
        assert "Job OK" in worker_log.read_text()
        # plotly.js: hashed name, compressed, cached for a year.
        dashboard = client.get("/admin/dashboard/dashboard/").text
        plotly_url = re.search(
            r'src="(/static/dashboard/plotly-basic\.min\.[0-9a-f]{12}\.js)"', dashboard
        )
        assert plotly_url, "the dashboard links no hashed plotly.js"
        script = client.get(plotly_url.group(1), headers={"Accept-Encoding": "gzip"})
        assert script.headers["content-encoding"] in {"gzip", "br"}
        assert "immutable" in script.headers["cache-control"]

        assert demo.ctrl_c() == 0, demo.output[-4000:]
    finally:
        demo.kill()
    assert "Stopped." in demo.output
    assert processes_using(data_dir) == []
    assert not socket_is_live(data_dir / "redis.sock")

    # Running it twice works: same database, same staff user and password, nothing to redo.
    again = Demo(data_dir, tmp_path / "demo2.log", seed_requests=0)
    try:
        again.wait_ready()
        assert f"password '{password}'" in again.output
        assert httpx.get(f"{again.base_url}/admin/login/", timeout=30).status_code == 200
        assert again.ctrl_c() == 0, again.output[-4000:]
    finally:
        again.kill()
    assert processes_using(data_dir) == []


def test_busy_port_is_refused_with_a_message(tmp_path):
    """A port already in use stops the launcher before it starts anything, saying what to do."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "routing_platform.launcher",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "var"),
                "--seed-requests",
                "0",
            ],
            cwd=REPO_ROOT,
            env=demo_env(tmp_path / "var"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is in use" in result.stderr
    assert "DEMO_PORT=" in result.stderr
    assert not (tmp_path / "var" / "redis.sock").exists()
