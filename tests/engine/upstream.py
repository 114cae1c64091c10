"""A real HTTP server on 127.0.0.1 for provider tests: scripted replies, recorded requests.

Each test queues replies (status, JSON or raw body, headers, delay); the server answers
requests in order (the last reply repeats) and records method, path, headers and body.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Upstream:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.responder = None  # optional callable(Received, index) -> Reply
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body

            def log_message(self, *args):  # keep test output clean
                return

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                received = Received(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                reply = upstream._next(received)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if isinstance(reply.body, dict | list):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                elif isinstance(reply.body, bytes):
                    payload, content_type = reply.body, "application/json"
                else:
                    payload, content_type = (reply.body or "").encode(), "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many concurrent clients in the fault-injection test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _next(self, received: Received) -> Reply:
        with self._lock:
            index = len(self.received)
            self.received.append(received)
            if self.responder is not None:
                return self.responder(received, index)
            if not self.replies:
                return Reply(500, {"error": {"message": "no reply scripted"}})
            return self.replies[index] if index < len(self.replies) else self.replies[-1]

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies = list(replies)
            self.received = []

    def start(self) -> Upstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
