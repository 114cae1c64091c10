"""OpenAI-compatible endpoint overhead: latency added by /v1/chat/completions over calling the
same upstream directly (targets: p50 <= 3 ms, p99 <= 15 ms added, at 200 req/s).

Five processes besides this one, all on 127.0.0.1:

- an upstream that speaks OpenAI's chat completion wire format and answers every call after
  a fixed 50 ms (a tiny asyncio HTTP/1.1 server, ``upstream`` role);
- the platform under uvicorn, two worker processes (production settings: DEBUG off), with ``OPENAI_BASE_URL``
  pointing at the upstream, a real (embedded) Redis for the rate limiter, a migrated
  temporary SQLite database, and an API key; requests name a concrete model, so the call
  passes through without routing;
- two RQ workers (``SimpleWorker``), started after the timed load, which write the call
  records the server left in Redis (``api.recording``); in production it runs elsewhere,
  and here it would take CPU from the server under test;
- a load generator (``load`` role) that sends requests at a fixed rate (open loop: a slow
  answer does not delay the next request) over keep-alive connections and times each one.

Each round sends the same load straight to the upstream, then through the platform; the
added latency is the difference of the percentiles. Figures are medians over rounds. A
closed-loop run (fixed concurrency) then measures the platform's maximum throughput, and
the database is checked to hold one recorded call per request sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "OpenAI-compatible endpoint overhead (loopback upstream, 50 ms, 200 req/s)"
REPO_ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_LATENCY_MS = 50.0
RATE_PER_S = 200.0
SERVER_WORKERS = 2  # uvicorn processes: one per core, as WEB_CONCURRENCY would be
LOW_RATE_PER_S = 20.0  # well below saturation: the per-request cost without queueing
MODEL = "gpt-4.1-mini"
TARGET_P50_MS = 3.0
TARGET_P99_MS = 15.0
IDLE_REUSE_S = 2.0  # the load generator reuses a keep-alive connection idle at most this long


# --- The upstream: OpenAI's wire format, a fixed latency -------------------------------------


def _completion_body(request_body: bytes) -> bytes:
    try:
        model = json.loads(request_body).get("model") or MODEL
    except (ValueError, AttributeError):
        model = MODEL
    return json.dumps(
        {
            "id": "chatcmpl-upstream",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Paris is the capital of France."},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
        }
    ).encode()


async def read_request_body(reader) -> bytes:
    """One HTTP/1.1 request off a keep-alive connection: its body (headers skipped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return await reader.readexactly(length) if length else b""


async def _serve_upstream_connection(reader, writer, latency_s: float) -> None:
    try:
        while True:
            body = await read_request_body(reader)
            await asyncio.sleep(latency_s)
            payload = _completion_body(body)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _upstream_main(port: int, latency_ms: float) -> None:
    async def handle(reader, writer):
        await _serve_upstream_connection(reader, writer, latency_ms / 1000.0)

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# --- The load generator: fixed rate, keep-alive connections, per-request timing ---------------


class _Connection:
    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def request(self, raw: bytes) -> tuple[int, dict[str, str]]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        else:  # chunked
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status, headers


async def _load_main(
    host: str, port: int, path: str, token: str, rate: float, count: int, concurrency: int
) -> dict:
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        }
    ).encode()
    raw = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {token}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: list[_Connection] = []
    latencies: list[float] = []
    overheads: list[float] = []
    errors: dict[str, int] = {}

    async def one() -> None:
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if time.monotonic() - conn.idle_since > IDLE_REUSE_S:
                # uvicorn closes keep-alive connections idle for 5 s; like any HTTP client,
                # do not send on one that may be closing under us.
                conn.writer.close()
                conn = None
        if conn is None:
            conn = _Connection(*await asyncio.open_connection(host, port))
        started = time.perf_counter()
        try:
            status, headers = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
            conn.writer.close()
            return
        latencies.append((time.perf_counter() - started) * 1000.0)
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
        if "x-router-overhead-ms" in headers:
            overheads.append(float(headers["x-router-overhead-ms"]))
        conn.idle_since = time.monotonic()
        idle.append(conn)

    cpu_started = time.process_time()
    started = time.perf_counter()
    if rate > 0:  # open loop at a fixed rate
        tasks = []
        for index in range(count):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    else:  # closed loop: `concurrency` clients back to back
        remaining = [count]

        async def client() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                await one()

        await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    for conn in idle:
        conn.writer.close()
    return {
        "latencies_ms": latencies,
        "overheads_ms": overheads,
        "errors": errors,
        "elapsed_s": elapsed,
        "cpu_s": cpu_s,
    }


# --- Orchestration --------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args[:4]} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout_s:.0f} s")


def _wait_recorded(database: Path, expected: int, timeout_s: float = 900.0) -> tuple[int, float]:
    """(rows recorded, seconds waited): the worker drains the records the server left in Redis."""
    import sqlite3

    started = time.monotonic()
    recorded = -1
    while time.monotonic() - started < timeout_s:
        with sqlite3.connect(database, timeout=30) as db:
            recorded = db.execute(
                "SELECT COUNT(*) FROM experiments_routedcall WHERE kind = 'chat'"
            ).fetchone()[0]
        if recorded >= expected:
            break
        time.sleep(0.5)
    return recorded, time.monotonic() - started


def _cpu_s(process: subprocess.Popen) -> float:
    """User + system CPU seconds used so far by ``process`` and its live children (Linux
    /proc; uvicorn's worker processes are children of the supervisor)."""

    def tree(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0.0
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return own + sum(tree(int(child)) for child in children)

    return tree(process.pid)


def _machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used so far (Linux /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _load(
    port: int, path: str, token: str, *, count: int, rate: float, concurrency: int = 0
) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_openai_overhead",
        "load",
        "--port",
        str(port),
        "--path",
        path,
        "--token",
        token,
        "--rate",
        str(rate),
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _summary(result: dict) -> dict:
    latencies = result["latencies_ms"]
    return {
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "throughput": len(latencies) / result["elapsed_s"],
        "errors": sum(result["errors"].values()),
        "overhead_header_p50": _percentile(result["overheads_ms"], 0.5)
        if result["overheads_ms"]
        else float("nan"),
        "load_cpu_ms": result["cpu_s"] * 1000.0 / max(1, len(latencies)),
    }


def platform_env(tmp_path: Path, redis_url: str, upstream_port: int) -> dict[str, str]:
    """The server's environment: production settings, a temporary SQLite database, the
    embedded Redis, and the OpenAI provider pointed at the loopback upstream."""
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


def migrate_and_create_key(env: dict[str, str]) -> str:
    """Migrate the server's database and create an API key; returns its token."""
    manage = [sys.executable, str(REPO_ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=REPO_ROOT)
    created = subprocess.run(
        [
            *manage,
            "routing",
            "create-api-key",
            "--name",
            "bench",
            "--json",
            "--rate-limit",
            "1000000",
        ],
        env=env,
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    return json.loads(created.stdout)["token"]


def run(quick: bool = False) -> list[dict]:
    from routing_platform.launcher import uvicorn_argv
    from routing_platform.redis_embedded import start_embedded_redis

    rounds = 1 if quick else 3
    count = 400 if quick else 2000
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-openai-") as tmp:
        tmp_path = Path(tmp)
        redis = start_embedded_redis(tmp_path)
        try:
            upstream_port, server_port = _free_port(), _free_port()
            upstream = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_openai_overhead",
                    "upstream",
                    "--port",
                    str(upstream_port),
                    "--latency-ms",
                    str(UPSTREAM_LATENCY_MS),
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
            )
            processes.append(upstream)
            env = platform_env(tmp_path, redis.url, upstream_port)
            manage = [sys.executable, str(REPO_ROOT / "manage.py")]
            token = migrate_and_create_key(env)
            server = subprocess.Popen(
                uvicorn_argv(
                    "127.0.0.1",
                    server_port,
                    "--no-access-log",
                    "--workers",
                    str(SERVER_WORKERS),
                ),
                env=env,
                cwd=REPO_ROOT,
            )
            processes.append(server)
            _wait_port(upstream_port, upstream)
            _wait_port(server_port, server)

            _load(server_port, "/v1/chat/completions", token, count=200, rate=RATE_PER_S)  # warm-up
            direct_runs, through_runs, server_cpu_ms, upstream_cpu_ms = [], [], [], []
            foreign_cores: list[float] = []
            for _ in range(rounds):
                direct_runs.append(
                    _summary(
                        _load(
                            upstream_port,
                            "/v1/chat/completions",
                            token,
                            count=count,
                            rate=RATE_PER_S,
                        )
                    )
                )
                cpu_before, upstream_before = _cpu_s(server), _cpu_s(upstream)
                busy_before, wall_before = _machine_busy_s(), time.monotonic()
                raw = _load(
                    server_port, "/v1/chat/completions", token, count=count, rate=RATE_PER_S
                )
                through_runs.append(_summary(raw))
                server_s = _cpu_s(server) - cpu_before
                upstream_s = _cpu_s(upstream) - upstream_before
                server_cpu_ms.append(server_s * 1000.0 / count)
                upstream_cpu_ms.append(upstream_s * 1000.0 / count)
                # CPU that processes outside this benchmark took from the 2 cores meanwhile
                # (other work on a shared machine): the tail latency depends on it.
                foreign_cores.append(
                    max(
                        0.0,
                        (_machine_busy_s() - busy_before - server_s - upstream_s - raw["cpu_s"])
                        / (time.monotonic() - wall_before),
                    )
                )
            low_count = 100 if quick else 300
            low_direct = _summary(
                _load(
                    upstream_port,
                    "/v1/chat/completions",
                    token,
                    count=low_count,
                    rate=LOW_RATE_PER_S,
                )
            )
            low_through = _summary(
                _load(
                    server_port, "/v1/chat/completions", token, count=low_count, rate=LOW_RATE_PER_S
                )
            )
            saturation_count = min(count, 500)
            saturation = _summary(
                _load(
                    server_port,
                    "/v1/chat/completions",
                    token,
                    count=saturation_count,
                    rate=0,
                    concurrency=32,
                )
            )
            sent = 200 + rounds * count + saturation_count + low_count
            # The workers that write the records start after the timed load: in production
            # they run on other machines; here they would take CPU from the server under test.
            for _ in range(2):
                processes.append(
                    subprocess.Popen(
                        [
                            *manage,
                            "rqworker",
                            "default",
                            "--worker-class",
                            "rq.worker.SimpleWorker",
                        ],
                        env=env,
                        cwd=REPO_ROOT,
                        stdout=subprocess.DEVNULL,
                    )
                )
            recorded, drain_s = _wait_recorded(tmp_path / "db.sqlite3", sent)
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
            redis.stop()

    added_p50 = statistics.median(
        t["p50"] - d["p50"] for t, d in zip(through_runs, direct_runs, strict=True)
    )
    added_p99 = statistics.median(
        t["p99"] - d["p99"] for t, d in zip(through_runs, direct_runs, strict=True)
    )
    direct_p50 = statistics.median(d["p50"] for d in direct_runs)
    direct_p99 = statistics.median(d["p99"] for d in direct_runs)
    through_p50 = statistics.median(t["p50"] for t in through_runs)
    throughput = statistics.median(t["throughput"] for t in through_runs)
    errors = sum(t["errors"] for t in through_runs) + sum(d["errors"] for d in direct_runs)
    header = statistics.median(t["overhead_header_p50"] for t in through_runs)
    cpu_note = (
        f"CPU per request: server {statistics.median(server_cpu_ms):.2f} ms (all uvicorn "
        f"workers), upstream {statistics.median(upstream_cpu_ms):.2f} ms, load generator "
        f"{statistics.median(t['load_cpu_ms'] for t in through_runs):.2f} ms"
    )
    size = f"{rounds} round(s) x {count} requests at {RATE_PER_S:.0f} req/s, medians over rounds"
    foreign = (
        f"other processes on the machine used {statistics.median(foreign_cores):.2f} of the "
        f"2 cores during the timed rounds (median; max {max(foreign_cores):.2f})"
    )
    server_cpu = statistics.median(server_cpu_ms)
    others_cpu = statistics.median(upstream_cpu_ms) + statistics.median(
        t["load_cpu_ms"] for t in through_runs
    )
    why_p50 = (
        ""
        if added_p50 <= TARGET_P50_MS
        else f"; missed: the server's own time is {header:.2f} ms (x-router-overhead-ms), the "
        "rest is the upstream call's client work and two more loopback hops and process "
        "wake-ups (client -> server -> upstream), on 2 cores shared with the upstream, the load "
        "generator and other processes"
    )
    why_p99 = (
        ""
        if added_p99 <= TARGET_P99_MS
        else f"; missed: the tail is CPU queueing: at {RATE_PER_S:.0f} req/s the server needs "
        f"{server_cpu * RATE_PER_S / 1000:.2f} cores, the upstream and load generator "
        f"{others_cpu * RATE_PER_S / 1000:.2f}, other processes "
        f"{statistics.median(foreign_cores):.2f}, of 2"
    )
    return [
        {
            "metric": "added latency p50 (through /v1 minus direct)",
            "value": round(added_p50, 3),
            "unit": "ms",
            "target": f"<= {TARGET_P50_MS:g} ms",
            "met": added_p50 <= TARGET_P50_MS,
            "notes": f"{size}; direct p50 {direct_p50:.2f} ms, through p50 {through_p50:.2f} ms; "
            f"server-reported x-router-overhead-ms p50 {header:.2f} ms; {foreign}{why_p50}",
        },
        {
            "metric": "added latency p99 (through /v1 minus direct)",
            "value": round(added_p99, 3),
            "unit": "ms",
            "target": f"<= {TARGET_P99_MS:g} ms",
            "met": added_p99 <= TARGET_P99_MS,
            "notes": f"{size}; direct p99 {direct_p99:.2f} ms; {errors} error(s); "
            f"{foreign}{why_p99}",
        },
        {
            "metric": f"added latency p50 at {LOW_RATE_PER_S:.0f} req/s (below saturation)",
            "value": round(low_through["p50"] - low_direct["p50"], 3),
            "unit": "ms",
            "target": "report",
            "met": None,
            "notes": f"{low_count} requests each way; added p99 "
            f"{low_through['p99'] - low_direct['p99']:.2f} ms; server-reported "
            f"x-router-overhead-ms p50 {low_through['overhead_header_p50']:.2f} ms",
        },
        {
            "metric": "throughput at the offered 200 req/s",
            "value": round(throughput, 1),
            "unit": "req/s",
            "target": ">= 195 req/s (keeps up with the offered rate)",
            "met": throughput >= 195,
            "notes": f"{SERVER_WORKERS} uvicorn worker processes (uvloop, httptools); the load "
            f"generator and the upstream on the same 2 cores; {cpu_note}",
        },
        {
            "metric": "maximum throughput (32 concurrent clients)",
            "value": round(saturation["throughput"], 1),
            "unit": "req/s",
            "target": "report",
            "met": None,
            "notes": f"closed loop, {saturation_count} requests; p50 {saturation['p50']:.1f} ms, "
            f"p99 {saturation['p99']:.1f} ms with the 50 ms upstream; "
            f"{saturation['errors']} error(s)",
        },
        {
            "metric": "calls recorded / calls sent",
            "value": round(recorded / sent, 4),
            "unit": "ratio",
            "target": "1.0 (every call recorded)",
            "met": recorded == sent,
            "notes": f"{recorded} RoutedCall rows for {sent} requests; written by two RQ "
            f"workers, started after the load, from the records the server left in Redis "
            f"(done in {drain_s:.0f} s)",
        },
    ]


def _install_uvloop() -> None:
    """The upstream and the load generator run on uvloop (as the server does), so that they
    take as little as possible of the two cores the server shares with them."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    up = sub.add_parser("upstream", help="Serve the fixed-latency OpenAI-format upstream.")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--latency-ms", type=float, default=UPSTREAM_LATENCY_MS)
    load = sub.add_parser("load", help="Send the load and print JSON timings.")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--path", default="/v1/chat/completions")
    load.add_argument("--token", default="")
    load.add_argument("--rate", type=float, default=RATE_PER_S)
    load.add_argument("--count", type=int, default=2000)
    load.add_argument("--concurrency", type=int, default=0)
    sub.add_parser("run", help="Run the whole benchmark and print its figures.").add_argument(
        "--quick", action="store_true"
    )
    args = parser.parse_args(argv)
    if args.role == "upstream":
        _install_uvloop()
        asyncio.run(_upstream_main(args.port, args.latency_ms))
    elif args.role == "load":
        _install_uvloop()
        result = asyncio.run(
            _load_main(
                "127.0.0.1",
                args.port,
                args.path,
                args.token,
                args.rate,
                args.count,
                args.concurrency,
            )
        )
        print(json.dumps(result))
    else:
        print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
