"""Streaming time to first token: /v1/chat/completions with `stream: true` minus the same
upstream called directly (targets: p50 <= 3 ms, p99 <= 15 ms added, at 200 req/s).

The upstream speaks OpenAI's streaming wire format (server-sent events, chunked): each call
gets its tokens 50 ms apart (the first after 50 ms). The platform runs under uvicorn (two
workers, production settings) with the OpenAI provider pointed at it, as in
`bench_openai_overhead` (same environment, same embedded Redis); requests name a concrete
model, so the stream is relayed as it arrives (`x-router-streaming: passthrough`). The
load generator sends requests at a fixed rate (open loop) and times, for each, the arrival
of the first content token; the added time to first token is the difference of the
percentiles through the platform and direct. Figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_openai_overhead import (
    IDLE_REUSE_S,
    MODEL,
    RATE_PER_S,
    REPO_ROOT,
    SERVER_WORKERS,
    TARGET_P50_MS,
    TARGET_P99_MS,
    _free_port,
    _install_uvloop,
    _machine_busy_s,
    _percentile,
    _wait_port,
    migrate_and_create_key,
    platform_env,
)

TITLE = "Gateway streaming time to first token (loopback upstream, tokens 50 ms apart, 200 req/s)"
TOKEN_GAP_MS = 50.0
TOKENS = 4
FIRST_TOKEN_MARK = b'"content":"tok'


# --- The upstream: OpenAI's streaming wire format, tokens 50 ms apart -------------------------


def _event(data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    frame = f"data: {payload}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(frame), frame)


def _stream_events(model: str) -> list[bytes]:
    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return _event(
            {
                "id": "chatcmpl-upstream",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    tokens = [chunk({"content": f"tok{i} "}) for i in range(TOKENS)]
    tail = chunk({}, "stop") + _event(
        {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": TOKENS}}
    )
    return [*tokens[:-1], tokens[-1] + tail + _event("[DONE]") + b"0\r\n\r\n"]


async def _serve_connection(reader, writer, gap_s: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            try:
                model = json.loads(body).get("model") or MODEL
            except (ValueError, AttributeError):
                model = MODEL
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for event in _stream_events(model):
                await asyncio.sleep(gap_s)
                writer.write(event)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _upstream_main(port: int, gap_ms: float) -> None:
    async def handle(reader, writer):
        await _serve_connection(reader, writer, gap_ms / 1000.0)

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# --- The load generator: fixed rate, time to the first token ----------------------------------


class _Connection:
    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def stream(self, raw: bytes, started: float) -> tuple[int, float, str]:
        """(status, ms to the first token, x-router-streaming) of one streamed request,
        read to its end."""
        self.writer.write(raw)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:] if ":" in line)
        }
        first_ms = float("nan")
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
            return status, first_ms, headers.get("x-router-streaming", "")
        while True:  # chunked
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            data = await self.reader.readexactly(size + 2)
            if first_ms != first_ms and FIRST_TOKEN_MARK in data:
                first_ms = (time.perf_counter() - started) * 1000.0
            if size == 0:
                return status, first_ms, headers.get("x-router-streaming", "")


async def _load_main(port: int, path: str, token: str, rate: float, count: int) -> dict:
    body = json.dumps(
        {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "Count to four."}],
        }
    ).encode()
    raw = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {token}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: list[_Connection] = []
    firsts: list[float] = []
    modes: dict[str, int] = {}
    errors: dict[str, int] = {}

    async def one() -> None:
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if time.monotonic() - conn.idle_since > IDLE_REUSE_S:
                conn.writer.close()
                conn = None
        if conn is None:
            conn = _Connection(*await asyncio.open_connection("127.0.0.1", port))
        started = time.perf_counter()
        try:
            status, first_ms, mode = await conn.stream(raw, started)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
            conn.writer.close()
            return
        if status != 200 or first_ms != first_ms:
            errors[str(status)] = errors.get(str(status), 0) + 1
        else:
            firsts.append(first_ms)
        modes[mode or "direct"] = modes.get(mode or "direct", 0) + 1
        conn.idle_since = time.monotonic()
        idle.append(conn)

    started = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    return {"first_token_ms": firsts, "modes": modes, "errors": errors}


# --- Orchestration --------------------------------------------------------------------------


def _load(port: int, path: str, token: str, *, count: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_gateway_ttft",
        "load",
        "--port",
        str(port),
        "--path",
        path,
        "--token",
        token,
        "--count",
        str(count),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def run(quick: bool = False) -> list[dict]:
    from routing_platform.launcher import uvicorn_argv
    from routing_platform.redis_embedded import start_embedded_redis

    rounds = 1 if quick else 3
    count = 400 if quick else 2000
    processes: list[subprocess.Popen] = []
    direct, through, foreign = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-ttft-") as tmp:
        tmp_path = Path(tmp)
        redis = start_embedded_redis(tmp_path)
        try:
            upstream_port, server_port = _free_port(), _free_port()
            upstream = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_gateway_ttft",
                    "upstream",
                    "--port",
                    str(upstream_port),
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
            )
            processes.append(upstream)
            env = platform_env(tmp_path, redis.url, upstream_port)
            token = migrate_and_create_key(env)
            server = subprocess.Popen(
                uvicorn_argv(
                    "127.0.0.1", server_port, "--no-access-log", "--workers", str(SERVER_WORKERS)
                ),
                env=env,
                cwd=REPO_ROOT,
            )
            processes.append(server)
            _wait_port(upstream_port, upstream)
            _wait_port(server_port, server)
            _load(server_port, "/v1/chat/completions", token, count=200)  # warm-up
            for _ in range(rounds):
                direct.append(_load(upstream_port, "/v1/chat/completions", token, count=count))
                busy, wall = _machine_busy_s(), time.monotonic()
                through.append(_load(server_port, "/v1/chat/completions", token, count=count))
                foreign.append((_machine_busy_s() - busy) / (time.monotonic() - wall))
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
            redis.stop()
    return _figures(direct, through, foreign, rounds, count)


def _figures(direct, through, busy_cores, rounds: int, count: int) -> list[dict]:
    def added(q: float) -> float:
        return statistics.median(
            _percentile(t["first_token_ms"], q) - _percentile(d["first_token_ms"], q)
            for t, d in zip(through, direct, strict=True)
        )

    added_p50, added_p99 = added(0.50), added(0.99)
    direct_p50 = statistics.median(_percentile(d["first_token_ms"], 0.5) for d in direct)
    through_p50 = statistics.median(_percentile(t["first_token_ms"], 0.5) for t in through)
    errors = sum(sum(r["errors"].values()) for r in (*direct, *through))
    modes = {mode: sum(t["modes"].get(mode, 0) for t in through) for mode in through[0]["modes"]}
    size = (
        f"{rounds} round(s) x {count} streamed requests at {RATE_PER_S:.0f} req/s, "
        f"{TOKENS} tokens {TOKEN_GAP_MS:.0f} ms apart, medians over rounds"
    )
    machine = (
        f"the machine's 2 cores were {statistics.median(busy_cores):.2f} cores busy during the "
        "timed rounds (this benchmark's processes and any others)"
    )
    return [
        {
            "metric": "added time to first token p50 (through /v1 minus direct)",
            "value": round(added_p50, 3),
            "unit": "ms",
            "target": f"<= {TARGET_P50_MS:g} ms",
            "met": added_p50 <= TARGET_P50_MS,
            "notes": f"{size}; direct p50 {direct_p50:.2f} ms, through p50 {through_p50:.2f} ms; "
            f"streaming modes {modes}; {machine}",
        },
        {
            "metric": "added time to first token p99 (through /v1 minus direct)",
            "value": round(added_p99, 3),
            "unit": "ms",
            "target": f"<= {TARGET_P99_MS:g} ms",
            "met": added_p99 <= TARGET_P99_MS,
            "notes": f"{size}; {errors} error(s); {machine}",
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    up = sub.add_parser("upstream", help="Serve the streaming OpenAI-format upstream.")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--gap-ms", type=float, default=TOKEN_GAP_MS)
    load = sub.add_parser("load", help="Send the load and print JSON timings.")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--path", default="/v1/chat/completions")
    load.add_argument("--token", default="")
    load.add_argument("--rate", type=float, default=RATE_PER_S)
    load.add_argument("--count", type=int, default=2000)
    sub.add_parser("run", help="Run the whole benchmark and print its figures.").add_argument(
        "--quick", action="store_true"
    )
    args = parser.parse_args(argv)
    if args.role == "upstream":
        _install_uvloop()
        asyncio.run(_upstream_main(args.port, args.gap_ms))
    elif args.role == "load":
        _install_uvloop()
        print(
            json.dumps(
                asyncio.run(_load_main(args.port, args.path, args.token, args.rate, args.count))
            )
        )
    else:
        print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
