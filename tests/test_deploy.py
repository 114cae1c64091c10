"""docker-compose.yml, the Dockerfile and .env.example agree with each other and with settings.

There is no Docker engine on the test machines, so the compose file is checked by parsing it
against the structure production needs; `docker compose config` runs too where the CLI
plugin is installed.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "Dockerfile"
CONFIGURATION_DOC = REPO_ROOT / "docs" / "configuration.md"
APP_SERVICES = ("migrate", "web", "worker")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def settings_variable_names() -> set[str]:
    """Every environment variable settings.py reads: first string argument of env*(...)."""
    tree = ast.parse((REPO_ROOT / "config" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_reader = (isinstance(func, ast.Name) and func.id.startswith("env_")) or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        )
        first = node.args[0]
        if is_reader and isinstance(first, ast.Constant) and str(first.value).isupper():
            names.add(first.value)
    return names


def test_compose_has_the_production_services():
    """PostgreSQL 15, Redis, a one-shot migrate job, the uvicorn web server and RQ workers."""
    services = compose()["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker"}
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:")
    assert "migrate" in services["migrate"]["command"]
    assert services["migrate"]["restart"] == "no"
    web_command = " ".join(services["web"]["command"])
    # uvicorn serving config.asgi:application, through the one command line
    # (routing_platform.serve -> launcher.uvicorn_argv) that trusts only named proxies.
    assert web_command.startswith("python -m routing_platform.serve")


def test_web_trusts_forwarded_headers_only_from_named_proxies():
    """Neither compose nor the image turns on uvicorn's forwarded headers by itself: both go
    through routing_platform.serve, and FORWARDED_ALLOW_IPS defaults to empty."""
    web = compose()["services"]["web"]
    assert "--proxy-headers" not in web["command"]
    assert web["environment"]["FORWARDED_ALLOW_IPS"] == "${FORWARDED_ALLOW_IPS:-}"
    dockerfile = DOCKERFILE.read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert "routing_platform.serve" in cmd and "--proxy-headers" not in cmd
    assert re.search(r"^FORWARDED_ALLOW_IPS=$", ENV_EXAMPLE.read_text(), re.MULTILINE)


def test_worker_scales_and_listens_to_every_queue(settings):
    """`--scale worker=4` needs a worker with no fixed name or host port; it serves all queues,
    in the same priority order as the demo's workers."""
    from routing_platform.launcher import WORKER_QUEUES

    worker = compose()["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"][:3] == ["python", "manage.py", "rqworker"]
    assert worker["command"][3:] == list(WORKER_QUEUES)
    assert set(WORKER_QUEUES) == set(settings.RQ_QUEUE_NAMES)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_one_postgres_and_one_redis(name):
    """Web, workers and migrations all point at the compose PostgreSQL and Redis, debug off."""
    service = compose()["services"][name]
    environment = service["environment"]
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["DJANGO_DEBUG"] == "false"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_web_and_workers_start_after_migrations(name):
    """Nothing serves or works on a schema that is not migrated yet."""
    depends = compose()["services"][name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_named_volumes_are_declared():
    """Every named volume a service mounts is declared at the top level (compose refuses otherwise)."""
    data = compose()
    declared = set(data.get("volumes") or {})
    for service in data["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, source


def test_every_compose_variable_is_documented_in_env_example():
    """Each ${VAR} the compose file reads has a commented line in .env.example."""
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used, "the compose file reads no variable: the pattern above is wrong"
    assert used - env_example_names() == set()


def env_example_values() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def configuration_table() -> dict[str, str]:
    """docs/configuration.md's variable table: each variable named in a row's first cell,
    mapped to that row's default cell."""
    defaults = {}
    for line in CONFIGURATION_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3:
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
                defaults[name] = cells[1]
    return defaults


def test_every_setting_variable_is_documented_with_its_default():
    """Every variable settings.py reads has a line in .env.example and a row in
    docs/configuration.md whose default cell is filled in and shows .env.example's value."""
    names = settings_variable_names()
    assert {"DJANGO_SECRET_KEY", "ROUTER_ESCALATION_THRESHOLD", "DATABASE_URL"} <= names
    assert names - env_example_names() == set()
    documented = configuration_table()
    assert names - set(documented) == set()
    example = env_example_values()
    for name in sorted(names):
        default = documented[name]
        assert default, f"{name}: the default cell is empty"
        if example[name]:
            assert f"`{example[name]}`" in default, (name, default, example[name])


def test_env_example_as_is_is_a_valid_development_configuration():
    """Copying .env.example to .env unchanged gives a platform that passes `manage.py check`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "DJANGO_"))}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            env[match.group(1)] = match.group(2)
    env["ROUTING_DATA_DIR"] = str(REPO_ROOT / "var")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_copies_only_paths_that_exist_and_installs_the_lock():
    """Each COPY source exists in the repository and the image installs with constraints.txt."""
    text = DOCKERFILE.read_text()
    for line in text.splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            for source in sources:
                assert (REPO_ROOT / source).exists(), source
    assert "-c constraints.txt" in text
    assert "USER routing" in text  # not root


def test_docker_compose_config_accepts_the_file():
    """`docker compose config` (the real validator) accepts the file, where the plugin exists."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not found on PATH")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(
            "the docker compose CLI plugin is not installed (docker compose version failed)"
        )
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SECRET_KEY": "compose-config-check"},
    )
    assert result.returncode == 0, result.stderr
