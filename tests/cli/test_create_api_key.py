"""`manage.py routing create-api-key`: prints the token once, stores only its hash."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api.models import ApiKey
from api.services import api_key_authenticate

pytestmark = pytest.mark.django_db


def test_prints_a_working_token_once():
    """The printed token authenticates with the scopes asked for; the row holds no token."""
    out = StringIO()
    call_command("routing", "create-api-key", "--name", "ci", "--scopes", "read", stdout=out)
    token = next(line for line in out.getvalue().splitlines() if line.startswith("rk_"))
    assert api_key_authenticate(token).scopes == frozenset({"read"})
    key = ApiKey.objects.get(name="ci")
    assert token not in (key.secret_hash, key.prefix)
    assert "cannot be shown again" in out.getvalue()


def test_json_output_for_scripts():
    """--json prints one object with the token and the key's settings."""
    out = StringIO()
    call_command(
        "routing", "create-api-key", "--name", "bot", "--rate-limit", "5", "--json", stdout=out
    )
    data = json.loads(out.getvalue())
    assert data["scopes"] == ["read", "write"]
    assert data["rate_limit_per_minute"] == 5
    assert api_key_authenticate(data["token"]).id == data["id"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "x", "--scopes", "admin"], "Unknown scope"),
        (["--name", "  "], "--name is empty"),
        (["--name", "x", "--rate-limit", "0"], "at least 1"),
    ],
)
def test_bad_arguments_say_what_to_do(args, message):
    """Bad input is a CommandError with a message, and no key is created."""
    with pytest.raises(CommandError, match=message):
        call_command("routing", "create-api-key", *args, stdout=StringIO())
    assert not ApiKey.objects.exists()
