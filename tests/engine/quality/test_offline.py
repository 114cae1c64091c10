"""No network at run time: loading WordLlama and a learned router, and routing with it,
with every socket blocked (a cold process, so imports and file loads happen under the block)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from routing_platform.engine.learned import save_router
from routing_platform.engine.quality.training import train_router
from tests.conftest import REPO_ROOT
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows

BLOCKED_RUN = textwrap.dedent(
    """
    import json, socket, sys

    created, connected = [], []

    def refuse_connection(*args, **kwargs):
        connected.append(repr(args)[:80])
        raise OSError("network access blocked by the test")

    class BlockedSocket(socket.socket):  # a class, so that ssl can still subclass it
        def __init__(self, *args, **kwargs):
            # urllib3 (imported with wordllama's dependencies) probes IPv6 support at import
            # by binding a socket to ::1, and copes when that fails: allowed to fail here.
            created.append(repr(args)[:80])
            raise OSError("socket creation blocked by the test")

    socket.socket = BlockedSocket
    socket.create_connection = refuse_connection
    socket.getaddrinfo = refuse_connection

    from routing_platform.engine.config import RouterConfig
    from routing_platform.engine.router import ModelRouter

    router = ModelRouter(RouterConfig(learned_router_path=sys.argv[1]))
    learned = router.learned_router()
    inside = router.choose(sys.argv[2], "analysis")
    outside = router.choose("Write a haiku about autumn leaves on a pond.", "creative")
    print(json.dumps({
        "connected": connected,
        "created": created,
        "embedding": learned.embedding.as_dict(),
        "inside": [inside.router, inside.tier, inside.strong_probability],
        "outside": [outside.router, outside.router_reason],
    }))
    """
)


@pytest.fixture(scope="module")
def router_file(tmp_path_factory):
    rows = synthetic_rows(150)
    router = train_router(
        [row["prompt"] for row in rows],
        np.array([row[STRONG] for row in rows], dtype=float),
        np.array([row[WEAK] for row in rows], dtype=float),
        embeddings=True,
        domain=True,
    )
    return save_router(router, tmp_path_factory.mktemp("offline") / "router.json"), rows[0][
        "prompt"
    ]


def test_a_cold_process_loads_and_routes_with_sockets_blocked(router_file):
    """Importing wordllama, loading its weights and tokenizer and the router, and routing an
    in-domain and an out-of-domain prompt works with every socket refused, and never tries
    a connection or a name lookup."""
    path, prompt = router_file
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, str(path), prompt],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "HF_HUB_OFFLINE": "0"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["connected"] == []  # no connection or name lookup was even tried
    assert len(report["created"]) <= 1  # at most urllib3's import-time IPv6 probe
    assert report["embedding"]["name"] == "wordllama/l2_supercat_256"
    assert report["inside"][0] == "learned"
    assert 0.0 <= report["inside"][2] <= 1.0
    assert report["outside"][0] == "fallback"
    assert report["outside"][1].startswith("out of domain")


def test_routing_in_process_opens_no_socket(router_file, monkeypatch):
    """The same in this process: a blocked socket module, and the router still decides."""
    import socket

    from routing_platform.engine import router as router_module
    from routing_platform.engine.config import RouterConfig
    from routing_platform.engine.router import ModelRouter

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r:.80}")

    class BlockedSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            refuse(*args)

    monkeypatch.setattr(socket, "socket", BlockedSocket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(router_module, "_learned_cache", {})
    path, prompt = router_file
    router = ModelRouter(RouterConfig(learned_router_path=str(path)))
    assert router.choose(prompt, "analysis").router == "learned"
    assert router.choose("Tell me a joke about cats, please.", "creative").router == "fallback"
