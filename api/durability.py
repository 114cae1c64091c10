"""Is Redis durable? What an acknowledged call record risks when Redis restarts.

The OpenAI-compatible endpoint answers a call once its record is in Redis (``api.recording``:
one ``LPUSH``, written to the database later by a worker). Those records, and the queued
jobs, survive a Redis restart only if Redis persists them: with the append-only file
(``appendonly yes``) a restart loses nothing and a crash of the host at most about one
second of writes (``appendfsync everysec``); with RDB snapshots alone a crash loses every
write since the last snapshot; with neither, a restart loses everything.

``persistence_from_config`` classifies ``CONFIG GET appendonly / appendfsync / save`` (pure);
``redis_persistence`` and ``redis_persistence_async`` read them from a server. A server that
forbids ``CONFIG`` (most managed services) is "unknown", never an error.

``ROUTER_REQUIRE_DURABLE_REDIS`` says what the endpoint does when Redis is not known to be
durable: ``warn`` (hand records to Redis anyway; the default), ``sync`` (write each record to
the database before answering) or ``refuse`` (answer 503 before calling the upstream).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from api import redis_client

logger = logging.getLogger(__name__)

DURABLE = "durable"
SNAPSHOTS = "snapshots"
NONE = "none"
UNKNOWN = "unknown"
UNREACHABLE = "unreachable"

MODE_WARN = "warn"
MODE_SYNC = "sync"
MODE_REFUSE = "refuse"
MODES = (MODE_WARN, MODE_SYNC, MODE_REFUSE)

# What a record hand-off does under the current mode and persistence.
POLICY_QUEUE = "queue"  # LPUSH to Redis, a worker writes it
POLICY_INLINE = "inline"  # write to the database before answering
POLICY_REFUSE = "refuse"  # answer 503

PROBE_TIMEOUT_S = 1.0
# How long a process trusts its last reading on the hot path (sync / refuse modes only).
PROBE_TTL_S = 30.0
REFUSE_RETRY_AFTER_S = 30

_CONFIG_NAMES = ("appendonly", "appendfsync", "save")

_LOSS_WINDOWS = {
    "always": "none: Redis writes every command to disk before it answers",
    "everysec": "at most about 1 s of writes, and only if the host itself crashes "
    "(a Redis restart loses nothing)",
    "no": "the writes the operating system has not flushed yet (about 30 s), "
    "only if the host itself crashes",
}


@dataclass(frozen=True)
class RedisPersistence:
    """One reading of a Redis server's persistence, and what a restart would lose."""

    state: str  # DURABLE, SNAPSHOTS, NONE, UNKNOWN or UNREACHABLE
    appendonly: str | None
    appendfsync: str | None
    save: str | None
    loss_window: str  # what acknowledged records are at risk, in one phrase
    detail: str = ""  # why the state is unknown / unreachable

    @property
    def durable(self) -> bool:
        return self.state == DURABLE

    @property
    def warning(self) -> str:
        """A sentence for an operator when acknowledged records could be lost; else ""."""
        if self.state == DURABLE:
            return ""
        if self.state == UNREACHABLE:
            return f"Redis is unreachable ({self.detail}): its persistence could not be read."
        if self.state == UNKNOWN:
            return (
                f"Redis does not allow CONFIG GET ({self.detail}), so its persistence is "
                "unknown: make sure the service keeps an append-only file (appendonly yes), "
                "or call records answered but not yet written can be lost when it restarts."
            )
        return (
            "Redis is not durable (appendonly no"
            + (f', save "{self.save}"' if self.save else ', save ""')
            + f"): a restart loses {self.loss_window}. Call records the API has already "
            "answered wait in Redis until a worker writes them: set appendonly yes "
            "(appendfsync everysec), or ROUTER_REQUIRE_DURABLE_REDIS=sync."
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"durable": self.durable, "warning": self.warning}


def persistence_from_config(config: dict[str, str]) -> RedisPersistence:
    """Classify ``CONFIG GET`` values: append-only file on -> durable (its fsync policy sets
    the window), snapshots only -> lost since the last snapshot, neither -> all lost."""
    appendonly = str(config.get("appendonly", "")).lower()
    appendfsync = str(config.get("appendfsync", "")).lower() or None
    save = str(config.get("save", "")).strip()
    if appendonly == "yes":
        window = _LOSS_WINDOWS.get(appendfsync or "", "unknown (appendfsync not reported)")
        return RedisPersistence(DURABLE, appendonly, appendfsync, save, window)
    if save:
        window = (
            f"every write since the last RDB snapshot (save {save}) if Redis crashes or is "
            "killed; a clean shutdown saves one"
        )
        return RedisPersistence(SNAPSHOTS, appendonly or "no", appendfsync, save, window)
    return RedisPersistence(
        NONE, appendonly or "no", appendfsync, save, "everything in Redis (pending records, jobs)"
    )


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _config_dict(replies: list[dict]) -> dict[str, str]:
    config: dict[str, str] = {}
    for reply in replies:
        config.update({_decode(key): _decode(value) for key, value in reply.items()})
    return config


def _unknown(err: BaseException) -> RedisPersistence:
    return RedisPersistence(UNKNOWN, None, None, None, "unknown", f"{type(err).__name__}: {err}")


def _unreachable(err: BaseException) -> RedisPersistence:
    return RedisPersistence(
        UNREACHABLE, None, None, None, "unknown", f"{type(err).__name__}: {err}"
    )


def redis_persistence(connection: redis.Redis) -> RedisPersistence:
    """Read a server's persistence (one pipelined round trip); never raises."""
    try:
        pipe = connection.pipeline(transaction=False)
        for name in _CONFIG_NAMES:
            pipe.config_get(name)
        return persistence_from_config(_config_dict(pipe.execute()))
    except redis.ResponseError as err:  # CONFIG renamed or forbidden (managed services)
        return _unknown(err)
    except (redis.RedisError, OSError) as err:
        return _unreachable(err)


async def redis_persistence_async(connection: aioredis.Redis) -> RedisPersistence:
    """``redis_persistence`` on an asyncio client, bounded by ``PROBE_TIMEOUT_S``."""
    try:
        pipe = connection.pipeline(transaction=False)
        for name in _CONFIG_NAMES:
            pipe.config_get(name)
        replies = await asyncio.wait_for(pipe.execute(), timeout=PROBE_TIMEOUT_S)
        return persistence_from_config(_config_dict(replies))
    except redis.ResponseError as err:
        return _unknown(err)
    except (TimeoutError, redis.RedisError, OSError) as err:
        return _unreachable(err)


def required_mode() -> str:
    return settings.ROUTER_REQUIRE_DURABLE_REDIS


def record_policy(persistence: RedisPersistence, mode: str) -> str:
    """Where a record goes: Redis (durable, or ``warn``), the database now (``sync``), or
    nowhere with a 503 (``refuse``). Unknown persistence counts as not durable."""
    if persistence.durable or mode == MODE_WARN:
        return POLICY_QUEUE
    return POLICY_INLINE if mode == MODE_SYNC else POLICY_REFUSE


@dataclass
class _Reading:
    persistence: RedisPersistence | None = None
    read_at: float = 0.0


_last = _Reading()


async def current_policy() -> str:
    """The record policy of this process: no Redis round trip in ``warn`` mode, else one
    ``CONFIG GET`` every ``PROBE_TTL_S`` seconds (the rest read the last answer)."""
    mode = required_mode()
    if mode == MODE_WARN:
        return POLICY_QUEUE
    now = time.monotonic()
    if _last.persistence is None or now - _last.read_at >= PROBE_TTL_S:
        reading = await redis_persistence_async(redis_client.get_client())
        if reading.state == UNREACHABLE:  # not a verdict on durability: the caller falls back
            return POLICY_INLINE
        _last.persistence, _last.read_at = reading, now
    return record_policy(_last.persistence, mode)


def forget_reading() -> None:
    """Drop the cached reading (tests; a server reconfigured at run time)."""
    _last.persistence, _last.read_at = None, 0.0


def startup_report(connection: redis.Redis) -> RedisPersistence:
    """Log the persistence once at start-up: a warning when records could be lost."""
    persistence = redis_persistence(connection)
    mode = required_mode()
    if persistence.durable:
        logger.info(
            "Redis persistence: appendonly yes, appendfsync %s; records at risk on a crash: %s.",
            persistence.appendfsync,
            persistence.loss_window,
        )
    elif persistence.state == UNREACHABLE:
        logger.warning(
            "%s Until it answers, /v1 call records are written by this process "
            "(docs/durability.md).",
            persistence.warning,
        )
    else:
        consequence = {
            MODE_WARN: "records are handed to it anyway (ROUTER_REQUIRE_DURABLE_REDIS=warn)",
            MODE_SYNC: "each /v1 record is written to the database before the answer "
            "(ROUTER_REQUIRE_DURABLE_REDIS=sync)",
            MODE_REFUSE: "/v1 answers 503 until it is (ROUTER_REQUIRE_DURABLE_REDIS=refuse)",
        }[mode]
        logger.warning("%s Now %s.", persistence.warning, consequence)
    return persistence
