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

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._loopback import (
    ConnectionPool,
    count_error,
    loopback_platform,
    machine_busy_s,
    open_loop,
    percentile,
    raw_post,
    read_request_body,
    request_model,
    role_main,
    run_role,
    serve_forever,
)
from benchmarks.bench_openai_overhead import (
    MODEL,
    RATE_PER_S,
    SERVER_WORKERS,
    TARGET_P50_MS,
    TARGET_P99_MS,
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
            model = request_model(await read_request_body(reader), MODEL)
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

    await serve_forever(handle, port)


# --- The load generator: fixed rate, time to the first token ----------------------------------


async def _load_main(port: int, path: str, token: str, rate: float, count: int) -> dict:
    raw = raw_post(
        "127.0.0.1",
        port,
        path,
        token,
        {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "Count to four."}],
        },
    )
    pool = ConnectionPool("127.0.0.1", port)
    firsts: list[float] = []
    modes: dict[str, int] = {}
    errors: dict[str, int] = {}

    async def one() -> None:
        conn = await pool.acquire()
        started = time.perf_counter()
        first: list[float] = []

        def on_chunk(data: bytes) -> None:
            if not first and FIRST_TOKEN_MARK in data:
                first.append((time.perf_counter() - started) * 1000.0)

        try:
            status, headers = await conn.send(raw, on_chunk)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            count_error(errors, type(err).__name__)
            conn.writer.close()
            return
        if status != 200 or not first:
            count_error(errors, str(status))
        else:
            firsts.append(first[0])
        mode = headers.get("x-router-streaming", "") or "direct"
        modes[mode] = modes.get(mode, 0) + 1
        pool.release(conn)

    await open_loop(one, rate=rate, count=count)
    pool.close()
    return {"first_token_ms": firsts, "modes": modes, "errors": errors}


# --- Orchestration --------------------------------------------------------------------------


def _load(port: int, path: str, token: str, *, count: int) -> dict:
    return run_role(
        "benchmarks.bench_gateway_ttft",
        "load",
        *("--port", str(port), "--path", path, "--token", token, "--count", str(count)),
    )


def run(quick: bool = False) -> list[dict]:
    rounds = 1 if quick else 3
    count = 400 if quick else 2000
    direct, through, foreign = [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="bench-ttft-") as tmp,
        loopback_platform(Path(tmp), "benchmarks.bench_gateway_ttft", workers=SERVER_WORKERS) as p,
    ):
        path = "/v1/chat/completions"
        _load(p.server_port, path, p.token, count=200)  # warm-up
        for _ in range(rounds):
            direct.append(_load(p.upstream_port, path, p.token, count=count))
            busy, wall = machine_busy_s(), time.monotonic()
            through.append(_load(p.server_port, path, p.token, count=count))
            foreign.append((machine_busy_s() - busy) / (time.monotonic() - wall))
    return _figures(direct, through, foreign, rounds, count)


def _figures(direct, through, busy_cores, rounds: int, count: int) -> list[dict]:
    def added(q: float) -> float:
        return statistics.median(
            percentile(t["first_token_ms"], q) - percentile(d["first_token_ms"], q)
            for t, d in zip(through, direct, strict=True)
        )

    added_p50, added_p99 = added(0.50), added(0.99)
    direct_p50 = statistics.median(percentile(d["first_token_ms"], 0.5) for d in direct)
    through_p50 = statistics.median(percentile(t["first_token_ms"], 0.5) for t in through)
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
    return role_main(
        argv,
        description=__doc__.splitlines()[0],
        upstream_help="Serve the streaming OpenAI-format upstream.",
        serve=lambda args: _upstream_main(args.port, args.gap_ms),
        load=lambda args: _load_main(args.port, args.path, args.token, args.rate, args.count),
        run=run,
        rate=RATE_PER_S,
        options=lambda up, _: up.add_argument("--gap-ms", type=float, default=TOKEN_GAP_MS),
    )


if __name__ == "__main__":
    sys.exit(main())
