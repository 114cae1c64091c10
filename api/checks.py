"""System checks of the API (``manage.py check --deploy``): is Redis durable?"""

from __future__ import annotations

import redis
from django.conf import settings
from django.core import checks

from api import durability

REDIS_TIMEOUT_S = 1.0


@checks.register("redis", deploy=True)
def redis_persistence_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when call records acknowledged by /v1 could be lost on a Redis restart; an error
    when ``ROUTER_REQUIRE_DURABLE_REDIS=refuse`` would then answer every /v1 call 503."""
    url = settings.RQ_QUEUES["default"]["URL"]
    connection = redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    try:
        persistence = durability.redis_persistence(connection)
    finally:
        connection.close()
    if persistence.durable:
        return []
    if persistence.state == durability.UNREACHABLE:
        # Nothing to judge: a deploy check often runs where Redis is not (an image build),
        # and `routing status` / `/health` report an unreachable Redis.
        return []
    mode = durability.required_mode()
    if mode == durability.MODE_REFUSE:
        return [
            checks.Error(
                persistence.warning,
                hint="With ROUTER_REQUIRE_DURABLE_REDIS=refuse every /v1 call is answered 503 "
                "until Redis persists its data (appendonly yes).",
                id="api.E001",
            )
        ]
    check_id = "api.W002" if persistence.state == durability.UNKNOWN else "api.W001"
    return [
        checks.Warning(
            persistence.warning,
            hint="Turn on appendonly yes / appendfsync everysec in Redis, or set "
            "ROUTER_REQUIRE_DURABLE_REDIS=sync. See docs/durability.md.",
            id=check_id,
        )
    ]
