"""API keys in the admin: created with the token shown once, never showing hashes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from api.models import ApiKey
from api.services import api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db


def test_adding_a_key_shows_its_token_once(admin_client):
    """The add form creates a hashed key and shows the working token in one message."""
    response = admin_client.post(
        reverse("admin:api_apikey_add"),
        {"name": "dashboard-bot", "scopes": ["read"], "rate_limit_per_minute": "30"},
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="dashboard-bot")
    page = response.content.decode()
    assert "not be shown again" in page
    token = page.split("<code style='user-select:all'>")[1].split("</code>")[0]
    assert token.startswith(f"rk_{key.prefix}_")
    authenticated = api_key_authenticate(token)
    assert authenticated.scopes == frozenset({"read"})
    assert authenticated.rate_limit_per_minute == 30
    assert key.created_by is not None

    change_page = admin_client.get(reverse("admin:api_apikey_change", args=[key.pk])).content
    list_page = admin_client.get(reverse("admin:api_apikey_changelist")).content
    for page in (change_page, list_page):
        assert key.secret_hash.encode() not in page
        assert token.encode() not in page
        assert f"rk_{key.prefix}_".encode() in page


def test_add_form_requires_a_scope(admin_client):
    """Without a scope the form is re-shown with an error, nothing is created."""
    response = admin_client.post(reverse("admin:api_apikey_add"), {"name": "x", "scopes": []})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not ApiKey.objects.exists()


def test_revoke_action_revokes(admin_client):
    """The "revoke" action marks keys revoked and they stop authenticating."""
    key, token = api_key_create(name="leaked")
    response = admin_client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    with pytest.raises(Exception, match="revoked"):
        api_key_authenticate(token)


def test_admin_is_staff_only(client):
    """Anonymous users are sent to the login page, not shown keys."""
    response = client.get(reverse("admin:api_apikey_changelist"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
