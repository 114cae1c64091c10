"""The production web server: ``python -m routing_platform.serve [--host H] [--port P] [uvicorn
options]`` runs uvicorn with the platform's command line (``launcher.uvicorn_argv``).

The Dockerfile and docker-compose.yml start the web server through it, so production gets
the same forwarded-header rule as ``make demo`` and the tests: ``X-Forwarded-For`` is trusted
only from the proxies ``FORWARDED_ALLOW_IPS`` names.
"""

from __future__ import annotations

import argparse
import os
import sys

from routing_platform.launcher import uvicorn_argv


def serve_argv(argv: list[str]) -> list[str]:
    """uvicorn's command line for ``argv`` (``--host``, ``--port``; the rest goes to uvicorn)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container
    parser.add_argument("--port", type=int, default=8000)
    args, extra = parser.parse_known_args(argv)
    return uvicorn_argv(args.host, args.port, *extra)


def main(argv: list[str] | None = None) -> None:
    command = serve_argv(sys.argv[1:] if argv is None else argv)
    os.execv(command[0], command)  # noqa: S606 - our own interpreter and arguments


if __name__ == "__main__":
    main()
