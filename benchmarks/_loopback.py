"""The loopback parts the `/v1` benchmarks share: ports and processes, a tiny keep-alive
HTTP/1.1 client with an open-loop load generator, and the platform's environment.

Everything runs on 127.0.0.1. The load generators and the upstreams are asyncio programs
started as subprocesses (``python -m benchmarks.bench_x load|upstream ...``), so that they
do not share a GIL with the process that orchestrates them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from routing_platform.launcher import uvicorn_argv
from routing_platform.redis_embedded import start_embedded_redis

REPO_ROOT = Path(__file__).resolve().parent.parent
IDLE_REUSE_S = 2.0  # the load generator reuses a keep-alive connection idle at most this long


# --- Ports, processes and the machine ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args[:4]} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout_s:.0f} s")


def start_role(module: str, role: str, *args: str) -> subprocess.Popen:
    """``python -m module role args...`` in the background (an upstream, say)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, role, *args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL
    )


def run_role(module: str, role: str, *args: str) -> dict:
    """``python -m module role args...`` to its end; its standard output parsed as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, role, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM in reverse start order, then SIGKILL whatever has not exited within 15 s."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used so far (Linux /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def install_uvloop() -> None:
    """The upstreams and the load generators run on uvloop (as the server does), so that
    they take as little as possible of the two cores the server shares with them."""
    try:
        import uvloop  # noqa: PLC0415 - optional: only the benchmark subprocesses want it
    except ImportError:
        return
    uvloop.install()


# --- The upstream side --------------------------------------------------------------------------


async def read_request_body(reader) -> bytes:
    """One HTTP/1.1 request off a keep-alive connection: its body (headers skipped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return await reader.readexactly(length) if length else b""


def request_model(body: bytes, default: str) -> str:
    """The ``model`` a JSON request body names (``default`` when it names none)."""
    try:
        return json.loads(body).get("model") or default
    except (ValueError, AttributeError):
        return default


async def serve_forever(handle: Callable[..., Awaitable[None]], port: int) -> None:
    """Serve ``handle(reader, writer)`` on 127.0.0.1:``port``; print ``ready`` once bound."""
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# --- The client side: keep-alive connections, open-loop load ------------------------------------


def raw_post(host: str, port: int, path: str, token: str, payload: dict) -> bytes:
    """The bytes of one ``POST path`` with a JSON body and a bearer token."""
    body = json.dumps(payload).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {token}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def send(
        self, raw: bytes, on_chunk: Callable[[bytes], None] | None = None
    ) -> tuple[int, dict[str, str]]:
        """(status, headers) of one request, its body read to the end; ``on_chunk`` sees
        each chunk of a chunked body as it arrives."""
        self.writer.write(raw)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if ":" in line)
        }
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
            return status, headers
        while True:  # chunked
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            data = await self.reader.readexactly(size + 2)
            if on_chunk is not None:
                on_chunk(data)
            if size == 0:
                return status, headers


class ConnectionPool:
    """Idle keep-alive connections to one server, reused while fresh."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []

    async def acquire(self) -> Connection:
        while self.idle:
            conn = self.idle.pop()
            if time.monotonic() - conn.idle_since <= IDLE_REUSE_S:
                return conn
            # uvicorn closes keep-alive connections idle for 5 s; like any HTTP client, do
            # not send on one that may be closing under us.
            conn.writer.close()
        return Connection(*await asyncio.open_connection(self.host, self.port))

    def release(self, conn: Connection) -> None:
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn.writer.close()


async def open_loop(one: Callable[[], Awaitable[None]], *, rate: float, count: int) -> None:
    """Start ``one()`` ``count`` times at a fixed ``rate`` (open loop: a slow answer does not
    delay the next request), and wait for all of them."""
    started = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)


def count_error(errors: dict[str, int], key: str) -> None:
    errors[key] = errors.get(key, 0) + 1


# --- The platform ---------------------------------------------------------------------------------


def platform_env(tmp_path: Path, redis_url: str, upstream_port: int) -> dict[str, str]:
    """The server's environment: production settings, a temporary SQLite database, the
    given Redis, and the OpenAI provider pointed at the loopback upstream."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ROUTING_DATA_DIR": str(tmp_path),
        "REDIS_URL": redis_url,
        "ROUTER_PROVIDER_MODE": "real",
        "OPENAI_API_KEY": "sk-benchmark-upstream-ignores-it",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "ANTHROPIC_API_KEY": "",
        "GEMINI_API_KEY": "",
        "LOG_LEVEL": "WARNING",
    }


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py args...`` in ``env``; its standard output."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *args],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def migrate_and_create_key(env: dict[str, str], name: str = "bench") -> str:
    """Migrate the server's database and create an API key; returns its token."""
    manage(env, "migrate", "--noinput", "-v", "0")
    created = manage(
        env, "routing", "create-api-key", "--name", name, "--json", "--rate-limit", "1000000"
    )
    return json.loads(created)["token"]


@dataclass
class LoopbackPlatform:
    """A loopback upstream and the platform in front of it, with an API key."""

    upstream: subprocess.Popen
    server: subprocess.Popen
    upstream_port: int
    server_port: int
    env: dict[str, str]
    token: str
    processes: list[subprocess.Popen]  # add more (RQ workers); all are stopped at the end


@contextmanager
def loopback_platform(
    tmp_path: Path, upstream_module: str, *upstream_args: str, workers: int
) -> Iterator[LoopbackPlatform]:
    """The embedded Redis, ``python -m upstream_module upstream --port P upstream_args``, a
    migrated SQLite database with an API key, and uvicorn with ``workers`` processes
    (production settings); everything stopped on exit."""
    redis = start_embedded_redis(tmp_path)
    processes: list[subprocess.Popen] = []
    try:
        upstream_port, server_port = free_port(), free_port()
        upstream = start_role(
            upstream_module, "upstream", "--port", str(upstream_port), *upstream_args
        )
        processes.append(upstream)
        env = platform_env(tmp_path, redis.url, upstream_port)
        token = migrate_and_create_key(env)
        server = subprocess.Popen(
            uvicorn_argv("127.0.0.1", server_port, "--no-access-log", "--workers", str(workers)),
            env=env,
            cwd=REPO_ROOT,
        )
        processes.append(server)
        wait_port(upstream_port, upstream)
        wait_port(server_port, server)
        yield LoopbackPlatform(upstream, server, upstream_port, server_port, env, token, processes)
    finally:
        stop_all(processes)
        redis.stop()


def role_main(
    argv: list[str] | None,
    *,
    description: str,
    upstream_help: str,
    serve: Callable[[argparse.Namespace], Coroutine],
    load: Callable[[argparse.Namespace], Coroutine],
    run: Callable[..., list[dict]],
    rate: float,
    options: Callable[[argparse.ArgumentParser, argparse.ArgumentParser], None],
) -> int:
    """A benchmark module's command line: ``upstream --port P`` serves ``serve(args)``,
    ``load --port P [--path --token --rate --count]`` prints ``load(args)`` as JSON, ``run
    [--quick]`` prints the figures. ``options(upstream, load)`` adds the module's own flags."""
    parser = argparse.ArgumentParser(description=description)
    sub = parser.add_subparsers(dest="role", required=True)
    upstream = sub.add_parser("upstream", help=upstream_help)
    upstream.add_argument("--port", type=int, required=True)
    loader = sub.add_parser("load", help="Send the load and print JSON timings.")
    loader.add_argument("--port", type=int, required=True)
    loader.add_argument("--path", default="/v1/chat/completions")
    loader.add_argument("--token", default="")
    loader.add_argument("--rate", type=float, default=rate)
    loader.add_argument("--count", type=int, default=2000)
    options(upstream, loader)
    sub.add_parser("run", help="Run the whole benchmark and print its figures.").add_argument(
        "--quick", action="store_true"
    )
    args = parser.parse_args(argv)
    if args.role == "run":
        print(json.dumps(run(quick=args.quick), indent=2))
        return 0
    install_uvloop()
    if args.role == "upstream":
        asyncio.run(serve(args))
    else:
        print(json.dumps(asyncio.run(load(args))))
    return 0
