"""`manage.py routing status`: routing switches, providers (never keys), queues, experiments."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command

from tests.metrics_factories import make_experiment

pytestmark = pytest.mark.django_db


def _status(*args: str) -> str:
    out = StringIO()
    call_command("routing", "status", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def redis_down(settings):
    """Queues pointing at a local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.RQ_QUEUES = {
        name: {"URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0", "DEFAULT_TIMEOUT": 300}
        for name in settings.RQ_QUEUE_NAMES
    }
    return port


@pytest.fixture
def keys(settings):
    settings.OPENAI_API_KEY = "sk-test-secret-openai-0123456789"
    settings.ANTHROPIC_API_KEY = "sk-ant-secret-0123456789"
    settings.GEMINI_API_KEY = ""
    settings.OPENAI_COMPATIBLE_BASE_URL = ""
    settings.ROUTER_PROVIDER_MODE = "auto"


def test_status_shows_switches_thresholds_and_providers_without_keys(keys, redis_down, settings):
    """Smart routing state, threshold, which providers are configured: never a key."""
    settings.ROUTER_ESCALATION_THRESHOLD = 0.65
    output = _status()
    assert "smart routing         enabled" in output
    assert "escalation threshold  0.65" in output
    assert "openai             yes" in output
    assert "anthropic          yes" in output
    assert "gemini             no" in output
    assert "sk-test-secret" not in output and "sk-ant-secret" not in output


def test_status_says_when_smart_routing_is_disabled(redis_down, settings):
    """ENABLE_SMART_ROUTING=false (the rollback switch) reads as disabled."""
    settings.ENABLE_SMART_ROUTING = False
    assert "disabled (original council)" in _status()


def test_status_reports_redis_unreachable_without_failing(redis_down):
    """Redis down: the command still succeeds, says it is unreachable and hides the password."""
    output = _status()
    assert "Redis is unreachable" in output
    assert "hunter2" not in output
    assert f"***@127.0.0.1:{redis_down}" in output
    data = json.loads(_status("--json"))
    assert data["queue"]["reachable"] is False
    assert "unreachable" in data["queue"]["error"]


def test_status_lists_running_experiments(redis_down):
    """Running (and paused) experiments appear with their arms; drafts do not."""
    make_experiment()
    make_experiment("draft-one", status="draft")
    output = _status()
    assert "smart-vs-council  running  traffic 100%" in output
    assert "council 50% (original_council)" in output
    assert "draft-one" not in output


def test_status_json_for_scripts(keys, redis_down):
    """--json prints one object with routing, providers, queue and experiments; no keys."""
    raw = _status("--json")
    data = json.loads(raw)
    assert set(data) == {"routing", "providers", "queue", "experiments"}
    assert data["routing"]["escalation_threshold"] == 0.7
    assert {provider["name"]: provider["configured"] for provider in data["providers"]}["openai"]
    assert "sk-test-secret" not in raw


@pytest.mark.redis_server
def test_status_counts_queued_jobs_on_a_real_redis(real_redis):
    """With Redis up: jobs per queue, and a hint when no worker runs."""
    import django_rq

    django_rq.get_queue("routing").enqueue("builtins.print", "x")
    output = _status()
    data = json.loads(_status("--json"))
    assert data["queue"]["reachable"] is True
    queues = {queue["name"]: queue for queue in data["queue"]["queues"]}
    assert queues["routing"]["queued"] == 1
    assert "No worker is running" in output
