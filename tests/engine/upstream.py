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
    # A streamed reply: these server-sent event payloads (dicts as JSON), chunked, each
    # `event_delay_s` after the previous one.
    events: list[Any] | None = None
    event_delay_s: float = 0.0


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
        self.streams_finished = threading.Event()  # set when a streamed reply has ended
        self.streams_cut = 0  # streamed replies the client stopped reading
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
                if reply.events is not None:
                    self._stream(reply)
                    return
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

            def _stream(self, reply: Reply) -> None:
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for index, event in enumerate(reply.events):
                        if index and reply.event_delay_s:
                            time.sleep(reply.event_delay_s)
                        data = event if isinstance(event, str) else json.dumps(event)
                        payload = f"data: {data}\n\n".encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    upstream.streams_cut += 1
                finally:
                    upstream.streams_finished.set()

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
            self.streams_finished.clear()

    def start(self) -> Upstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
