#!/usr/bin/env python
"""Django's command-line utility for the routing platform."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as err:
        # A bad environment variable: say which and what to set, without a traceback.
        sys.exit(f"Configuration error: {err}")


if __name__ == "__main__":
    main()
