"""`routing demo-setup`: the demo's staff user, created once and printed every time."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

HELP = "Create (or reuse) the demo's staff user and print its credentials."


def add_arguments(parser) -> None:
    parser.add_argument("--username", default="admin", help="Staff user name (default: admin).")


def handle(command, **options) -> None:
    username = options["username"]
    password_file = Path(settings.DATA_DIR) / "demo-admin-password.txt"
    password_file.parent.mkdir(parents=True, exist_ok=True)
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@localhost"}
    )
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    command.stdout.write(
        command.style.SUCCESS(f"staff     user {username!r}, password {password!r}")
        + f"  (kept in {password_file})"
    )
