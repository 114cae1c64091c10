"""`make chaos`: acknowledged calls against rows while workers, Redis and PostgreSQL fail.

Starts on 127.0.0.1, in a temporary directory: PostgreSQL 15, an apt redis-server, a
loopback OpenAI-compatible upstream that answers 20% of calls with 429 / 500 / 529 or a
timeout, 2 uvicorn web workers and 2 RQ workers (restarted when one exits, as a process
supervisor would; the restarts are counted). Then, scenario by scenario, it drives a
bounded, seeded mix of calls over ``/api/v1/routing/execute`` (inline and ``async``),
``/api/v1/routing/evaluate`` and ``/v1/chat/completions``, injects the scenario's fault
mid-load, and waits for the queues and the call-records list to settle. At the end it
runs ``routing reconcile --older-than 0`` (which runs again the calls whose job was lost),
lets the workers finish what it enqueued, and matches every answer to its row by a marker
in the prompt:

- lost: answered 2xx (acknowledged) but no row;
- duplicates: one request, more than one row;
- open: rows still ``queued`` / ``running`` after reconcile;
- 5xx: each must be a 503 with a JSON body and ``Retry-After`` (502 is the upstream giving
  up after retries, allowed when its error row exists).

The SDK scenarios send ``/v1`` chats to a named model through the official ``openai`` SDK
with its default retries (2, with backoff), so a 502 or 503 is sent again: once as the SDK
sends them (it sends no ``Idempotency-Key`` of its own), once with
``extra_headers={"Idempotency-Key": ...}`` per call, as docs/reliability.md advises. Every
third call is "flaky": the upstream fails all of the platform's attempts for its first
request (a 502), then serves it as usual. A logical call is one ``create()``; its requests
are counted by marker in the body, and it must end with exactly one row.

The table goes to ``benchmarks/results/chaos.json`` and into BENCHMARKS.md (rendered by
``benchmarks.run``). Not part of ``make test`` or ``make bench``; about 10 minutes.

    python -m benchmarks.chaos            # the full run (make chaos)
    python -m benchmarks.chaos --quick    # fewer calls per scenario (a smoke run)
    python -m benchmarks.chaos --only "Redis stopped"   # the scenarios whose name has it;
                                          # prints the table, writes no results
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import psycopg
import redis as redis_py
from rq import Queue, Worker

from benchmarks import run as bench_run
from benchmarks._loopback import free_port, read_request_body, wait_port
from benchmarks.bench_openai_overhead import _completion_body
from experiments.worker_liveness import live_worker_count
from routing_platform.launcher import uvicorn_argv

TITLE = "Chaos: acknowledged calls vs rows under upstream faults, worker kills, Redis and PostgreSQL outages"
NAME = "chaos"
REPO_ROOT = Path(__file__).resolve().parent.parent
PGBIN = Path("/usr/lib/postgresql/15/bin")

SEED = 22
UPSTREAM_LATENCY_S = 0.05
UPSTREAM_FAULT_SHARE = 0.20  # split evenly: 429, 500, 529, timeout
REQUEST_TIMEOUT_S = 1.5  # the platform's upstream timeout (ROUTER_REQUEST_TIMEOUT_S)
MAX_RETRIES = 2  # the platform's upstream retries (ROUTER_MAX_RETRIES)
#: A chat with this word fails upstream until the platform gives up once (a 502 with its
#: error row), so the client's retry meets a healthy upstream (the SDK scenarios).
FLAKY = "chaos-flaky"
FLAKY_EVERY = 3  # every third SDK call is flaky
SDK_MODEL = "gpt-4.1-nano"  # a named model: no fallback, so the platform's attempts are known
CLIENT_TIMEOUT_S = 30.0
REDIS_OUTAGE_S = 10.0
BACKLOG_S = 4.0
SETTLE_TIMEOUT_S = 45.0
MARKER = re.compile(r"chaos-s(\d+)-r(\d+)")
OPEN_STATUSES = ("queued", "running")


# --- The fault-injecting upstream (its own process) -----------------------------------------


def flaky_failure(body: bytes, seen: Counter) -> bool:
    """Whether the upstream fails this request (pure; ``seen`` counts per marker): the first
    ``MAX_RETRIES + 1`` requests of a flaky call, i.e. every attempt of one platform request."""
    text = body.decode(errors="replace")
    match = MARKER.search(text)
    if FLAKY not in text or match is None:
        return False
    seen[match.group(0)] += 1
    return seen[match.group(0)] <= MAX_RETRIES + 1


async def _upstream_connection(reader, writer, rng: random.Random, seen: Counter) -> None:
    try:
        while True:
            body = await read_request_body(reader)
            roll = rng.random()
            await asyncio.sleep(UPSTREAM_LATENCY_S)
            if flaky_failure(body, seen):
                status, payload, extra = 500, b'{"error":{"message":"flaky"}}', b""
            elif roll < UPSTREAM_FAULT_SHARE * 0.25:
                status, payload, extra = (
                    429,
                    b'{"error":{"message":"slow down"}}',
                    b"retry-after-ms: 50\r\n",
                )
            elif roll < UPSTREAM_FAULT_SHARE * 0.5:
                status, payload, extra = 500, b'{"error":{"message":"internal"}}', b""
            elif roll < UPSTREAM_FAULT_SHARE * 0.75:
                status, payload, extra = 529, b'{"error":{"message":"overloaded"}}', b""
            elif roll < UPSTREAM_FAULT_SHARE:
                await asyncio.sleep(REQUEST_TIMEOUT_S + 1.0)  # the platform times out first
                break
            else:
                status, payload, extra = 200, _completion_body(body), b""
            writer.write(
                b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n" % status
                + extra
                + b"content-length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _upstream_main(port: int) -> None:
    rng = random.Random(SEED)
    seen: Counter = Counter()

    async def handle(reader, writer):
        await _upstream_connection(reader, writer, rng, seen)

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# --- Processes ------------------------------------------------------------------------------


def ensure_apt_packages() -> None:
    """redis-server and PostgreSQL 15 from apt when missing (as .ci/run does)."""
    missing = []
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if not (PGBIN / "initdb").exists():
        missing.append("postgresql-15")
    if not missing:
        return
    print(f"chaos: apt-get install {' '.join(missing)}", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600", *missing],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )


class Postgres:
    """A PostgreSQL 15 cluster in ``directory``, run as the postgres user."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        directory.mkdir()
        shutil.chown(directory, "postgres", "postgres")
        self._pg("initdb", "-D", str(directory / "data"), "-U", "postgres", "-A", "trust")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PGBIN / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _ctl(self, action: str, *extra: str) -> None:
        self._pg(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "log"),
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200",
            "-w",
            action,
            *extra,
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "immediate")


class Redis:
    """An apt redis-server on a fixed port; durable (AOF, everysec) or without persistence.
    Each mode keeps its own directory, so switching never carries data across."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None
        self.durable = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, durable: bool | None = None) -> None:
        if durable is not None:
            self.durable = durable
        data = self.directory / ("durable" if self.durable else "volatile")
        data.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.durable
            else ["--appendonly", "no", "--save", ""]
        )
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--logfile",
                str(data / "redis.log"),
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_port(self.port, self.process, timeout_s=30)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it (an AOF is fsynced on the way out)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


@dataclass
class Supervised:
    """A long-running child that is started again when it exits (counted)."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            self.restarts += 1
            self.start()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@dataclass
class Platform:
    """Every process of one chaos run, and the supervisor thread that restarts workers."""

    tmp: Path
    postgres: Postgres
    redis: Redis
    upstream: subprocess.Popen
    upstream_port: int
    web_port: int = field(default_factory=free_port)
    web: Supervised | None = None
    workers: list[Supervised] = field(default_factory=list)
    token: str = ""
    require_durable: str = "warn"
    stranded: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "chaos-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "ROUTING_DATA_DIR": str(self.tmp / "data"),
            "ROUTER_PROVIDER_MODE": "real",
            "OPENAI_API_KEY": "sk-chaos-upstream-ignores-it",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{self.upstream_port}/v1",
            "ANTHROPIC_API_KEY": "",
            "GEMINI_API_KEY": "",
            "ROUTER_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "ROUTER_MAX_RETRIES": str(MAX_RETRIES),
            "ROUTER_REQUIRE_DURABLE_REDIS": self.require_durable,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "manage.py"), *args],
            env=self.env(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        created = self.manage(
            "routing", "create-api-key", "--name", "chaos", "--json", "--rate-limit", "1000000"
        )
        self.token = json.loads(created.stdout)["token"]
        self.start_web()
        for n in range(2):
            worker = Supervised(
                [
                    sys.executable,
                    str(REPO_ROOT / "manage.py"),
                    "rqworker",
                    "routing",
                    "shadow",
                    "default",
                ],
                self.env(),
                self.tmp / f"worker-{n}.log",
            )
            worker.start()
            self.workers.append(worker)
        threading.Thread(target=self._supervise, daemon=True).start()
        self.wait_for_workers()

    def wait_for_workers(self, timeout_s: float = 120.0) -> None:
        """Until every worker beats: a fault injected while one still starts up would
        count its start-up as a restart (a worker that finds no Redis at start exits)."""
        connection = redis_py.Redis.from_url(self.redis.url)
        deadline = time.monotonic() + timeout_s
        while live_worker_count(connection) < len(self.workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the RQ workers did not start within {timeout_s:.0f} s")
            time.sleep(0.5)

    def start_web(self) -> None:
        self.web = Supervised(
            uvicorn_argv("127.0.0.1", self.web_port, "--workers", "2", "--no-access-log"),
            self.env(),
            self.tmp / "web.log",
        )
        self.web.start()
        wait_port(self.web_port, self.web.process, timeout_s=120)

    def restart_web(self, *, require_durable: str) -> None:
        self.require_durable = require_durable
        self.web.stop()
        self.start_web()

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            for worker in self.workers:
                worker.check()

    def worker_restarts(self) -> int:
        return sum(worker.restarts for worker in self.workers)

    def stop(self) -> None:
        self._stop.set()
        for process in (*self.workers, self.web):
            if process is not None:
                process.stop()
        self.upstream.terminate()
        self.redis.stop()
        self.postgres.stop()


# --- Load -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    marker: str
    kind: str
    status: int  # 0: no answer (connection error, timeout)
    json_body: bool = False
    retry_after: bool = False
    attempts: int = 1  # HTTP requests sent for this logical call (the SDK's retries)


def _request(kind: str, marker: str) -> tuple[str, dict]:
    text = f"{marker}: explain the difference between a list and a tuple in Python."
    if kind == "chat":
        return "/v1/chat/completions", {
            "model": "router",
            "messages": [{"role": "user", "content": text}],
        }
    if kind == "chat-nul":  # the poison pill of #23: a NUL byte PostgreSQL refuses
        return "/v1/chat/completions", {
            "model": "router",
            "messages": [{"role": "user", "content": f"{marker} a\u0000b"}],
        }
    if kind == "evaluate":
        return "/api/v1/routing/evaluate", {"script": text, "niche": "general"}
    body = {"text": text, "task_type": "analysis"}
    if kind == "execute-async":
        body["async"] = True
    return "/api/v1/routing/execute", body


KINDS = (("chat", 0.4), ("execute", 0.25), ("execute-async", 0.2), ("evaluate", 0.15))


async def _one(client, kind: str, marker: str) -> Outcome:
    path, body = _request(kind, marker)
    try:
        response = await client.post(path, json=body)
    except Exception:  # a reset or a timeout: no answer, so nothing was acknowledged
        return Outcome(marker, kind, 0)
    return _answered(marker, kind, response)


def _answered(marker: str, kind: str, response: httpx.Response) -> Outcome:
    try:
        response.json()
        json_body = True
    except ValueError:
        json_body = False
    return Outcome(marker, kind, response.status_code, json_body, "retry-after" in response.headers)


async def drive(
    base_url: str,
    token: str,
    *,
    scenario: int,
    calls: int,
    rate: float,
    kinds: list[str] | None = None,
) -> list[Outcome]:
    """``calls`` requests at ``rate`` per second (open loop), seeded kinds, markers in the text."""
    rng = random.Random(SEED * 1000 + scenario)
    names, weights = zip(*KINDS, strict=True)
    plan = kinds or rng.choices(names, weights, k=calls)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=CLIENT_TIMEOUT_S,
        limits=limits,
    ) as client:
        started = time.monotonic()
        tasks = []
        for n, kind in enumerate(plan):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(_one(client, kind, f"chaos-s{scenario}-r{n}")))
        return list(await asyncio.gather(*tasks))


def attempts_by_marker(bodies: list[bytes]) -> Counter:
    """How many requests carried each marker (pure: one per HTTP request the SDK sent)."""
    return Counter(
        match.group(0) for body in bodies if (match := MARKER.search(body.decode(errors="replace")))
    )


async def _one_sdk(sdk: openai.AsyncOpenAI, marker: str, *, flaky: bool, keyed: bool) -> Outcome:
    _, body = _request("chat", f"{marker} {FLAKY}" if flaky else marker)
    body["model"] = SDK_MODEL
    headers = {"Idempotency-Key": f"{marker}-key"} if keyed else {}
    try:
        await sdk.chat.completions.create(**body, extra_headers=headers)
    except openai.APIStatusError as err:
        return _answered(marker, "sdk-chat", err.response)
    except openai.APIError:  # connection error or timeout after its retries
        return Outcome(marker, "sdk-chat", 0)
    return Outcome(marker, "sdk-chat", 200, True)


async def drive_sdk(
    base_url: str, token: str, *, scenario: int, calls: int, rate: float, keyed: bool
) -> list[Outcome]:
    """``calls`` chats through the official openai SDK (default ``max_retries``) at ``rate``
    per second; each outcome carries how many requests its call sent."""
    bodies: list[bytes] = []

    async def count(request: httpx.Request) -> None:
        bodies.append(request.content)

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http_client:
        sdk = openai.AsyncOpenAI(
            base_url=f"{base_url}/v1",
            api_key=token,
            timeout=CLIENT_TIMEOUT_S,
            http_client=http_client,
        )
        started = time.monotonic()
        tasks = []
        for n in range(calls):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            marker = f"chaos-s{scenario}-r{n}"
            flaky = n % FLAKY_EVERY == 0
            tasks.append(asyncio.create_task(_one_sdk(sdk, marker, flaky=flaky, keyed=keyed)))
        outcomes = list(await asyncio.gather(*tasks))
    attempts = attempts_by_marker(bodies)
    for outcome in outcomes:
        outcome.attempts = attempts[outcome.marker]
    return outcomes


# --- Faults ---------------------------------------------------------------------------------


def kill_busy_worker(platform: Platform) -> str:
    """SIGKILL an RQ worker while it runs a job (the first one seen busy within 20 s)."""
    connection = redis_py.Redis.from_url(platform.redis.url)
    pids = {w.process.pid: w for w in platform.workers if w.process is not None}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for worker in Worker.all(connection=connection):
            if worker.get_state() == "busy" and worker.pid in pids:
                os.kill(worker.pid, signal.SIGKILL)
                return f"SIGKILL to worker pid {worker.pid} while busy"
        time.sleep(0.05)
    victim = platform.workers[0].process
    os.kill(victim.pid, signal.SIGKILL)
    return f"no worker seen busy; SIGKILL to pid {victim.pid}"


def _signal_workers(platform: Platform, sig: int) -> None:
    for worker in platform.workers:
        if worker.process is not None and worker.process.poll() is None:
            os.kill(worker.process.pid, sig)


def stop_redis(platform: Platform) -> str:
    """Stop Redis for 10 s with a backlog in it: the workers are paused (SIGSTOP) for
    ``BACKLOG_S`` first, as busy workers would be, so records and jobs wait in Redis."""
    _signal_workers(platform, signal.SIGSTOP)
    time.sleep(BACKLOG_S)
    waiting = pending_work(platform)
    platform.redis.stop()
    _signal_workers(platform, signal.SIGCONT)
    time.sleep(REDIS_OUTAGE_S)
    platform.redis.start()
    return (
        f"workers paused {BACKLOG_S:.0f} s, then Redis stopped (SIGTERM) with {waiting} "
        f"jobs/records in it, for {REDIS_OUTAGE_S:.0f} s, then started again"
    )


def restart_postgres(platform: Platform) -> str:
    started = time.monotonic()
    platform.postgres.restart()
    return f"PostgreSQL restarted (pg_ctl restart -m fast) in {time.monotonic() - started:.1f} s"


def no_fault(platform: Platform) -> str:
    return "none beyond the upstream's 20% faults"


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Callable[[Platform], str]
    redis_durable: bool = True
    require_durable: str = "warn"
    poison_pill: bool = False
    sdk: str = ""  # "plain": the openai SDK as it sends; "keyed": with an Idempotency-Key


SCENARIOS = (
    Scenario("upstream faults only (20% 429/500/529/timeouts)", no_fault),
    Scenario("RQ worker SIGKILLed mid-job", kill_busy_worker),
    Scenario("Redis stopped 10 s, appendonly yes (everysec)", stop_redis),
    Scenario("PostgreSQL restarted", restart_postgres),
    Scenario("Redis stopped 10 s, no persistence (warn)", stop_redis, redis_durable=False),
    Scenario(
        "Redis stopped 10 s, no persistence, ROUTER_REQUIRE_DURABLE_REDIS=sync",
        stop_redis,
        redis_durable=False,
        require_durable="sync",
    ),
    Scenario("poison pill: a NUL byte in a chat, then more chats", no_fault, poison_pill=True),
    Scenario("openai SDK retries (max_retries=2), no Idempotency-Key", no_fault, sdk="plain"),
    Scenario("openai SDK retries (max_retries=2), Idempotency-Key per call", no_fault, sdk="keyed"),
)


# --- Settling and counting ------------------------------------------------------------------


def pending_work(platform: Platform) -> int:
    """Jobs queued or running plus call records waiting in Redis; -1 when Redis is down."""
    try:
        connection = redis_py.Redis.from_url(platform.redis.url, socket_timeout=2)
        total = connection.llen("api:call-records")
        for name in ("routing", "shadow", "default"):
            queue = Queue(name, connection=connection)
            # cleanup=False: counting with cleanup would run RQ's failure callbacks (Django
            # code) in this process; the workers do their own maintenance.
            total += queue.count + queue.started_job_registry.get_job_count(cleanup=False)
        return total
    except (redis_py.RedisError, OSError):
        return -1


def settle(platform: Platform, timeout_s: float = SETTLE_TIMEOUT_S) -> int:
    """Wait until nothing is queued, running or waiting in the records list; what is left."""
    deadline = time.monotonic() + timeout_s
    left = pending_work(platform)
    while left != 0 and time.monotonic() < deadline:
        time.sleep(1.0)
        left = pending_work(platform)
    return left


def rows_by_marker(platform: Platform) -> dict[str, list[tuple[str, str]]]:
    """Every row of the run: marker -> [(status, error_type)]."""
    rows: dict[str, list[tuple[str, str]]] = {}
    with psycopg.connect(platform.postgres.url) as connection:
        cursor = connection.execute(
            "SELECT status, error_type, request_payload::text FROM experiments_routedcall"
        )
        for status, error_type, payload in cursor:
            match = MARKER.search(payload)
            if match:
                rows.setdefault(match.group(0), []).append((status, error_type or ""))
    return rows


@dataclass
class Tally:
    sent: int = 0
    acknowledged: int = 0
    lost: int = 0
    stranded: int = 0  # acknowledged, no row, the record still waiting in Redis's list
    duplicates: int = 0
    open_after_reconcile: int = 0
    status_counts: Counter = field(default_factory=Counter)
    bad_5xx: int = 0  # 5xx other than 503 JSON + Retry-After, and 502 without its error row
    unanswered: int = 0
    retried: int = 0  # logical calls sent more than once (the SDK's retries)
    requests: int = 0  # HTTP requests in all


def tally(
    outcomes: list[Outcome],
    rows: dict[str, list[tuple[str, str]]],
    stranded: frozenset[str] = frozenset(),
) -> Tally:
    """Match each request to its rows (pure: tests/benchmarks/test_chaos.py). A record
    still in Redis's call-records list at the end (``stranded``) is counted apart from a
    lost one: it is not written, but not gone either."""
    result = Tally(sent=len(outcomes))
    for outcome in outcomes:
        found = rows.get(outcome.marker, [])
        result.status_counts[outcome.status] += 1
        result.requests += outcome.attempts
        result.retried += outcome.attempts > 1
        if outcome.status == 0:
            result.unanswered += 1
        if 200 <= outcome.status < 300:
            result.acknowledged += 1
            if not found and outcome.marker in stranded:
                result.stranded += 1
            elif not found:
                result.lost += 1
        if len(found) > 1:
            result.duplicates += 1
        result.open_after_reconcile += sum(1 for status, _ in found if status in OPEN_STATUSES)
        if outcome.status >= 500:
            well_formed_503 = outcome.status == 503 and outcome.json_body and outcome.retry_after
            recorded_502 = outcome.status == 502 and any(s == "error" for s, _ in found)
            if not (well_formed_503 or recorded_502):
                result.bad_5xx += 1
    return result


def figures_for(scenario: Scenario, result: Tally, notes: str) -> list[dict]:
    statuses = ", ".join(
        f"{code or 'none'}: {n}" for code, n in sorted(result.status_counts.items())
    )
    # A Redis without persistence in `warn` mode is the documented loss (warned at
    # start-up): counted, not judged. Every durable configuration must lose nothing.
    documented_loss = not scenario.redis_durable and scenario.require_durable == "warn"
    return [
        {
            "metric": f"{scenario.name}: acknowledged calls without a row",
            "value": result.lost,
            "unit": "calls",
            "target": "(documented loss: Redis not durable, warned)" if documented_loss else "0",
            "met": None if documented_loss else result.lost == 0,
            "notes": f"{result.acknowledged} of {result.sent} answered 2xx; statuses {statuses}; {notes}",
        },
        {
            "metric": f"{scenario.name}: acknowledged calls whose record still waits in Redis",
            "value": result.stranded,
            "unit": "calls",
            "target": "0",
            "met": result.stranded == 0,
            "notes": "in the api:call-records list at the end of the run (or when its Redis "
            "was replaced), never drained into a row",
        },
        {
            "metric": f"{scenario.name}: duplicate rows",
            "value": result.duplicates,
            "unit": "requests",
            "target": "0",
            "met": result.duplicates == 0,
            "notes": "requests with more than one row"
            + (
                f"; {result.retried} call(s) retried by the client, "
                f"{result.requests} HTTP requests for {result.sent} calls"
                if result.requests > result.sent
                else ""
            ),
        },
        {
            "metric": f"{scenario.name}: rows open after reconcile",
            "value": result.open_after_reconcile,
            "unit": "rows",
            "target": "0",
            "met": result.open_after_reconcile == 0,
            "notes": "queued / running after `routing reconcile --older-than 0`",
        },
        {
            "metric": f"{scenario.name}: 5xx not 503 JSON + Retry-After",
            "value": result.bad_5xx,
            "unit": "answers",
            "target": "0",
            "met": result.bad_5xx == 0,
            "notes": "502 counts as fine when the upstream gave up and the error row exists; "
            f"{result.unanswered} request(s) got no answer",
        },
    ]


# --- The run --------------------------------------------------------------------------------


def stranded_records(platform: Platform) -> set[str]:
    """Markers of the call records still waiting in Redis's list."""
    try:
        connection = redis_py.Redis.from_url(platform.redis.url, socket_timeout=5)
        waiting = connection.lrange("api:call-records", 0, -1)
    except (redis_py.RedisError, OSError):
        return set()
    return {
        match.group(0) for raw in waiting if (match := MARKER.search(raw.decode(errors="replace")))
    }


def prepare(platform: Platform, scenario: Scenario) -> None:
    """Switch Redis persistence and the web's durability mode when the scenario asks."""
    if scenario.redis_durable != platform.redis.durable:
        settle(platform, 30)
        platform.stranded |= stranded_records(platform)
        platform.redis.stop()
        platform.redis.start(durable=scenario.redis_durable)
    if scenario.require_durable != platform.require_durable:
        platform.restart_web(require_durable=scenario.require_durable)


def run_scenario(platform: Platform, index: int, scenario: Scenario, *, calls: int, rate: float):
    prepare(platform, scenario)
    restarts_before = platform.worker_restarts()
    kinds = None
    if scenario.poison_pill:
        kinds = ["chat", "chat-nul", *["chat"] * (calls - 2)]
    fault_note: list[str] = []
    fault_at = 0.3 * calls / rate

    def inject() -> None:
        time.sleep(fault_at)
        fault_note.append(scenario.fault(platform))

    injector = threading.Thread(target=inject)
    injector.start()
    base_url = f"http://127.0.0.1:{platform.web_port}"
    if scenario.sdk:
        load = drive_sdk(
            base_url,
            platform.token,
            scenario=index,
            calls=calls // 2,
            rate=rate,
            keyed=scenario.sdk == "keyed",
        )
    else:
        load = drive(base_url, platform.token, scenario=index, calls=calls, rate=rate, kinds=kinds)
    outcomes = asyncio.run(load)
    injector.join()
    left = settle(platform)
    restarts = platform.worker_restarts() - restarts_before
    note = (
        f"fault: {fault_note[0] if fault_note else '?'}; RQ worker restarts: {restarts}; "
        f"jobs/records still pending after {SETTLE_TIMEOUT_S:.0f} s: {left}"
    )
    print(f"chaos: {scenario.name}: {note}", flush=True)
    return outcomes, note


def reconcile(platform: Platform) -> str:
    try:
        return platform.manage("routing", "reconcile", "--older-than", "0", "--json").stdout.strip()
    except subprocess.CalledProcessError as err:
        return f"reconcile failed: {err.stderr.strip()[-300:]}"


def run(quick: bool = False, only: str = "") -> list[dict]:
    ensure_apt_packages()
    scenarios = [scenario for scenario in SCENARIOS if only in scenario.name]
    if not scenarios:
        raise SystemExit(f"no chaos scenario's name contains {only!r}")
    calls, rate = (40, 4.0) if quick else (120, 6.0)
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)  # the postgres user must reach its directory
        upstream_port = free_port()
        upstream = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.chaos", "upstream", "--port", str(upstream_port)],
            cwd=REPO_ROOT,
        )
        postgres, redis = Postgres(tmp / "pg"), Redis(tmp / "redis")
        platform = Platform(tmp, postgres, redis, upstream, upstream_port)
        try:
            postgres.start()
            redis.start(durable=True)
            wait_port(upstream_port, upstream, timeout_s=30)
            platform.start()
            results = []
            for index, scenario in enumerate(SCENARIOS):
                if scenario not in scenarios:
                    continue
                results.append(
                    (scenario, *run_scenario(platform, index, scenario, calls=calls, rate=rate))
                )
            reconciled = reconcile(platform)
            print(f"chaos: reconcile: {reconciled}", flush=True)
            left = settle(platform)  # the calls reconcile enqueued again
            print(f"chaos: after reconcile, jobs/records still pending: {left}", flush=True)
            rows = rows_by_marker(platform)
            platform.stranded |= stranded_records(platform)
        finally:
            platform.stop()
            logs = {path.name: path.read_text()[-2000:] for path in tmp.glob("*.log")}
        figures = []
        for scenario, outcomes, note in results:
            figures += figures_for(
                scenario, tally(outcomes, rows, frozenset(platform.stranded)), note
            )
        figures.append(
            {
                "metric": "routing reconcile --older-than 0",
                "value": 1,
                "unit": "run",
                "target": "(context)",
                "met": None,
                "notes": reconciled,
            }
        )
        _print_log_tails(logs)
        return figures


def _print_log_tails(logs: dict[str, str]) -> None:
    for name, text in sorted(logs.items()):
        interesting = [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]
        if interesting:
            print(f"--- {name} (last warnings)", *interesting[-5:], sep="\n", flush=True)


def write_results(
    figures: list[dict] | None, *, error: str, quick: bool, command: str, started: float
) -> None:
    """benchmarks/results/chaos.json in benchmarks.run's format, then BENCHMARKS.md."""
    result = {
        "name": NAME,
        "title": TITLE,
        "source": "benchmarks/chaos.py",
        "status": "ok" if figures else "failed",
        "error": error,
        "figures": bench_run.validate_figures(figures) if figures else [],
        "quick": quick,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "commit": bench_run.git_commit(),
        "machine": bench_run.machine(),
        "duration_s": round(time.monotonic() - started, 1),
    }
    results_dir = bench_run.BENCH_DIR / "results"
    (results_dir / f"{NAME}.json").write_text(json.dumps(result, indent=2) + "\n")
    names = set(bench_run.discover()) | bench_run.OTHER_SUITES
    markdown = bench_run.render_markdown(bench_run.load_results(results_dir, names))
    (REPO_ROOT / "BENCHMARKS.md").write_text(markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["upstream"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer calls per scenario")
    parser.add_argument(
        "--only",
        default="",
        metavar="TEXT",
        help="run only the scenarios whose name contains TEXT; prints the table and writes "
        "no results (BENCHMARKS.md holds full runs only)",
    )
    args = parser.parse_args(argv)
    if args.mode == "upstream":
        asyncio.run(_upstream_main(args.port))
        return 0
    if args.only:
        figures = run(quick=args.quick, only=args.only)
        for figure in figures:
            print(f"{figure['metric']}: {figure['value']} (met: {figure['met']})", flush=True)
        return 1 if any(figure["met"] is False for figure in figures) else 0
    started = time.monotonic()
    command = "make chaos" + (" (--quick)" if args.quick else "")
    try:
        figures = run(quick=args.quick)
    except Exception as err:
        write_results(
            None,
            error=f"{type(err).__name__}: {err}",
            quick=args.quick,
            command=command,
            started=started,
        )
        raise
    write_results(figures, error="", quick=args.quick, command=command, started=started)
    missed = [f["metric"] for f in figures if f["met"] is False]
    print(f"Wrote BENCHMARKS.md; targets missed: {len(missed)}", *missed, sep="\n  ", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
