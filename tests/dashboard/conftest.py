"""Fixtures of the dashboard tests: a fast password hasher and a logged-in staff client."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2's million iterations cost seconds per login on a busy 2-core machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, django_user_model):
    """A client logged in as a superuser (force_login: no password check)."""
    user = django_user_model.objects.create_user(
        username="admin", password="unused-password", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client
