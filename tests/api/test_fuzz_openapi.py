"""Schemathesis fuzzes every endpoint of both OpenAPI schemas against a real server.

Valid and invalid inputs generated from the schemas: no response may be a 5xx, and every
4xx body must say what was wrong (a ``message``, or OpenAI's ``error.message``). Bounded by
``max_examples`` per operation so the whole run takes about a minute.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis_server,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

# About a minute for both schemas; raise it for a deeper run: API_FUZZ_EXAMPLES=200 pytest ...
EXAMPLES_PER_OPERATION = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))
UVICORN_PROTOCOL_ERROR = "Invalid HTTP request received."
GENERATION = [DataGenerationMethod.positive, DataGenerationMethod.negative]


@pytest.fixture(scope="module")
def routing_schema(server_process):
    return schemathesis.from_uri(
        f"{server_process.base_url}/api/v1/routing/openapi.json",
        base_url=server_process.base_url,
        data_generation_methods=GENERATION,
        force_schema_version="30",  # ninja emits 3.1; schemathesis 3 fuzzes it as 3.0
    )


@pytest.fixture(scope="module")
def openai_schema(server_process):
    return schemathesis.from_uri(
        f"{server_process.base_url}/v1/openapi.json",
        base_url=server_process.base_url,
        data_generation_methods=GENERATION,
        force_schema_version="30",  # ninja emits 3.1; schemathesis 3 fuzzes it as 3.0
    )


def four_xx_says_what_was_wrong(response, case) -> None:
    """A 4xx answer is JSON with a non-empty message (routing shape or OpenAI shape)."""
    if not 400 <= response.status_code < 500:
        return
    if response.text == UVICORN_PROTOCOL_ERROR:
        # uvicorn refused the bytes as HTTP before the application saw them (e.g. a header
        # name HTTP allows but its parser does not); its plain-text reason is the message.
        return
    try:
        body = response.json()
    except json.JSONDecodeError:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.text[:200]!r}")
    message = body.get("message") or (body.get("error") or {}).get("message")
    assert isinstance(message, str) and message.strip(), (
        f"{response.status_code} without a message: {body!r}"
    )


def exercise(case, server_process) -> None:
    response = case.call(headers={"Authorization": f"Bearer {server_process.token}"}, timeout=60)
    case.validate_response(response, checks=(not_a_server_error, four_xx_says_what_was_wrong))


routing = schemathesis.from_pytest_fixture("routing_schema", data_generation_methods=GENERATION)
openai_compatible = schemathesis.from_pytest_fixture(
    "openai_schema", data_generation_methods=GENERATION
)
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@routing.parametrize()
@FUZZ
def test_routing_api_never_answers_5xx(case, server_process):
    """Every routing API operation: no 5xx, every 4xx has a message."""
    exercise(case, server_process)


@openai_compatible.parametrize()
@FUZZ
def test_openai_api_never_answers_5xx(case, server_process):
    """Every OpenAI-compatible operation: no 5xx, every 4xx has a message."""
    exercise(case, server_process)
