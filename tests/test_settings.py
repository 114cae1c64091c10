"""Settings come from the environment; malformed values stop start-up with a clear message."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def run_check(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "DJANGO_"))}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ROUTER_ESCALATION_THRESHOLD", "abc", "between 0.0 and 1.0"),
        ("ROUTER_ESCALATION_THRESHOLD", "1.5", "between 0.0 and 1.0"),
        ("ROUTER_ENABLE_ESCALATION", "maybe", "use true or false"),
        ("ENABLE_SMART_ROUTING", "2", "use true or false"),
        ("ROUTER_PROVIDER_MODE", "sometimes", "use auto, simulated or real"),
        ("ROUTER_MAX_RETRIES", "many", "not a whole number"),
        ("ADMIN_LOGIN_FAILURE_LIMIT", "0", "between 1 and 1000"),
        ("DATABASE_URL", "not-a-url", "postgres://user:password@host:5432/name"),
        ("LOG_LEVEL", "chatty", "use DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ],
)
def test_malformed_value_stops_startup_naming_the_variable(name, value, expected):
    """A malformed variable names itself and the allowed values, without a traceback."""
    result = run_check({name: value})
    assert result.returncode != 0
    assert name in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Configuration error:")


def test_empty_values_mean_the_defaults():
    """An empty DATABASE_URL / REDIS_URL (as `.env.example` ships them) selects SQLite and embedded Redis."""
    result = run_check({"DATABASE_URL": "", "REDIS_URL": ""})
    assert result.returncode == 0, result.stderr


def test_secret_key_is_required_when_debug_is_off():
    """Production refuses to start without DJANGO_SECRET_KEY."""
    result = run_check({"DJANGO_DEBUG": "false"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_is_clean_in_development():
    """`manage.py check` reports no issue with the defaults."""
    result = run_check({})
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_reports_no_error_with_production_settings():
    """`check --deploy` with debug off and a secret set reports no error."""
    result = run_check(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "example.com",
        },
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_defaults_match_the_migration_guide(settings):
    """The guide's defaults: threshold 0.7, escalation and cost optimization on, smart routing on."""
    assert settings.ROUTER_ESCALATION_THRESHOLD == 0.7
    assert settings.ROUTER_ENABLE_ESCALATION is True
    assert settings.ROUTER_COST_OPTIMIZATION is True
    assert settings.ENABLE_SMART_ROUTING is True
