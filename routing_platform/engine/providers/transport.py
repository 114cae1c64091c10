"""The upstream HTTP client: httpx's API over aiohttp's connection pool and C HTTP parser.

The providers speak ``httpx`` (``client.post(url, json=..., headers=..., timeout=...)``,
``httpx.Response``, ``httpx.TimeoutException`` / ``httpx.TransportError``), and tests inject
plain ``httpx.AsyncClient`` objects. In the server, every routed call pays the client's
cost on the request's critical path; httpx's default transport (httpcore, pure Python)
spent about 2.5 ms of CPU per loopback call here, most of it in its connection pool,
against ~0.8 ms for aiohttp. ``AiohttpTransport`` plugs aiohttp in under httpx's API, the
same idea as the ``httpx-aiohttp`` package that the official ``openai`` SDK offers, but
mapping aiohttp's errors onto httpx's exactly (a refused connection is a ``ConnectError``,
not a timeout) and reading each body in one go, except a streamed completion's (the
request's ``router_stream`` extension), whose body is read as the upstream sends it.

``UpstreamClient`` (what ``upstream_client`` returns) is an ``httpx.AsyncClient`` whose
``post(url, json=..., headers=..., timeout=...)``, the providers' one call, skips the parts
of httpx's generic machinery that do nothing for these clients, about 0.2 ms of CPU per
call on this machine: the URL parse, header merge and timeout of a request are built once
per (URL, headers, timeout) as a template (by ``build_request`` itself), so a call only
encodes its JSON body (as httpx does, byte for byte) and sets its ``Content-Length``; and
the request goes straight to the transport, with the bookkeeping ``send`` would do
(closed-client check, ``response.request``, ``elapsed``, encoding, redirect hint, cookies
when the upstream sets any, httpx's "HTTP Request" log line). Whenever something the
shortcut does not cover applies (auth, event hooks, mounts, a base URL, cookies held, any
other argument), the call takes httpx's own path.

One transport (one aiohttp session) belongs to one event loop, like an httpx client.
"""

from __future__ import annotations

import contextlib
import datetime
import json as jsonlib
import logging
import time
from typing import Any

import aiohttp
import httpx
import yarl
from httpx._client import ClientState, UseClientDefault
from httpx._content import ByteStream

from routing_platform.engine.providers.base import STREAM_EXTENSION

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_KEEPALIVE_S = 15.0


HTTPX_LOGGER = logging.getLogger("httpx")
_CACHE_LIMIT = 64  # distinct URLs / templates kept per process (a handful in practice)
_aiohttp_timeouts: dict[tuple, aiohttp.ClientTimeout] = {}
_yarl_urls: dict[str, yarl.URL] = {}


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    timeout = request.extensions.get("timeout") or {}
    key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
    value = _aiohttp_timeouts.get(key)
    if value is None:
        value = aiohttp.ClientTimeout(
            total=None, connect=key[0], sock_connect=key[1], sock_read=key[2]
        )
        if len(_aiohttp_timeouts) < _CACHE_LIMIT:
            _aiohttp_timeouts[key] = value
    return value


def _yarl_url(url: str) -> yarl.URL:
    """The URL as aiohttp would parse it (``yarl.URL(str)``), parsed once per URL."""
    value = _yarl_urls.get(url)
    if value is None:
        value = yarl.URL(url)
        if len(_yarl_urls) < _CACHE_LIMIT:
            _yarl_urls[url] = value
    return value


def _httpx_error(err: BaseException, request: httpx.Request) -> httpx.TransportError:
    """aiohttp's (and asyncio's) exception as the httpx exception the providers handle."""
    message = str(err) or type(err).__name__
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(err, TimeoutError):  # ServerTimeoutError / SocketTimeoutError too
        return httpx.ReadTimeout(message, request=request)
    if isinstance(err, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(err, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(err, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(err, ValueError):  # a request aiohttp refuses to send
        return httpx.LocalProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)


def _response(
    status: int, raw_headers, content: bytes, request: httpx.Request, extensions: dict
) -> httpx.Response:
    """``httpx.Response(status, headers=..., content=content, ...)``, the same object: its
    Content-Length default, and the body read (decoded by httpx when it has a
    Content-Encoding). A plain body is set as read directly, without the generic stream
    iteration."""
    response = httpx.Response(
        status,
        headers=raw_headers,
        stream=ByteStream(content),
        request=request,
        extensions=extensions,
    )
    if content:
        response.headers.setdefault("Content-Length", str(len(content)))
    if "content-encoding" in response.headers:
        response.read()  # httpx's decoders
    else:
        response._content = content
        response.is_stream_consumed = True
        response.is_closed = True
    response._num_bytes_downloaded = 0  # as after Response(content=...), which reads first
    return response


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends each request with aiohttp (HTTP/1.1, keep-alive pool)."""

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                keepalive_timeout=self.keepalive_s,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # httpx decodes content-encoding itself, sets the headers it wants, and
                # keeps no cookies for these clients.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get(STREAM_EXTENSION):
            return await self._streamed(request)
        session = self._get_session()
        body = await request.aread()
        url = request.url
        if url.userinfo:  # httpx already sent it as an Authorization header
            url = url.copy_with(username=None, password=None)
        try:
            async with session.request(
                request.method,
                _yarl_url(str(url)),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            ) as response:
                content = await response.read()
                status, raw_headers, reason = response.status, response.raw_headers, response.reason
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as err:
            raise _httpx_error(err, request) from err
        extensions = {"http_version": b"HTTP/1.1"}
        if reason:
            extensions["reason_phrase"] = reason.encode("latin-1", "replace")
        return _response(status, raw_headers, content, request, extensions)

    async def _streamed(self, request: httpx.Request) -> httpx.Response:
        """The response as soon as its headers arrive, its body read as the upstream sends
        it (server-sent events); closing the response releases the connection."""
        session = self._get_session()
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                _yarl_url(str(request.url)),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as err:
            raise _httpx_error(err, request) from err
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_AiohttpBody(response, request),
            request=request,
            extensions=extensions,
        )

    async def send_raw(self, template: _Template, body: bytes) -> tuple[int, Any, Any, bytes]:
        """A template's POST with ``body`` straight through aiohttp: (status, raw headers,
        reason, body). aiohttp's errors become httpx's, as in ``handle_async_request``."""
        session = self._get_session()
        try:
            async with session.request(
                "POST",
                template.yarl_url,
                headers=template.aiohttp_headers(len(body)),
                data=body or None,
                allow_redirects=False,
                timeout=template.aiohttp_timeout,
            ) as response:
                content = await response.read()
                return response.status, response.raw_headers, response.reason, content
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as err:
            raise _httpx_error(err, template.request(body)) from err

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def __del__(self) -> None:
        """Collected unclosed (its event loop has ended: an RQ job's ``asyncio.run``): close
        the sockets quietly instead of letting aiohttp log "Unclosed client session"."""
        session = self._session
        if session is None or session.closed:
            return
        connector = session.connector
        session.detach()
        if connector is not None:
            with contextlib.suppress(Exception):
                connector._close()  # closes the sockets now; nothing to await without a loop


class _AiohttpBody(httpx.AsyncByteStream):
    """An aiohttp response body as httpx's stream, chunk by chunk as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self.response = response
        self.request = request

    async def __aiter__(self):
        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise _httpx_error(err, self.request) from err

    async def aclose(self) -> None:
        if self.response.content.at_eof():
            self.response.release()  # read to the end: the connection goes back to the pool
        else:
            self.response.close()  # cut short: this connection is not reusable


class _Template:
    """A request ``build_request`` made for one (URL, headers, timeout): all but the body."""

    __slots__ = (
        "url",
        "headers",
        "timeout",
        "client_headers",
        "client_state",
        "yarl_url",
        "aiohttp_timeout",
        "_header_items",
        "_length_index",
    )

    def __init__(self, request: httpx.Request, client_headers: list, client_state: tuple) -> None:
        self.url = request.url
        self.headers = request.headers  # Host, the client's, the call's, Content-Length
        self.timeout = request.extensions["timeout"]
        # What AiohttpTransport would derive from each request built from it.
        self.yarl_url = _yarl_url(str(request.url))
        self.aiohttp_timeout = _timeout(request)
        self._header_items = request.headers.multi_items()
        self._length_index = next(
            i for i, (name, _) in enumerate(self._header_items) if name == "content-length"
        )
        # What it was built from on the client (its objects are replaced, never changed,
        # except the headers, compared by value).
        self.client_headers = client_headers
        self.client_state = client_state

    def aiohttp_headers(self, length: int) -> list[tuple[str, str]]:
        """``request(body).headers.multi_items()`` for a body of ``length`` bytes."""
        items = self._header_items.copy()
        items[self._length_index] = ("content-length", str(length))
        return items

    def request(self, body: bytes) -> httpx.Request:
        headers = httpx.Headers(self.headers)  # a list copy: no per-header normalising
        headers["Content-Length"] = str(len(body))  # replaced in place: same order
        request = httpx.Request(
            "POST",
            self.url,
            headers=headers,
            stream=ByteStream(body),
            extensions={"timeout": self.timeout},
        )
        request._content = body  # what ``request.read()`` would set
        return request


class UpstreamClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` with a shortcut for the providers' JSON ``post`` (see the
    module's docstring); everything else is httpx's own behaviour."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._templates: dict[tuple, _Template] = {}

    def _shortcut_applies(self) -> bool:
        return (
            self._auth is None
            and not self._mounts
            and not self._event_hooks["request"]
            and not self._event_hooks["response"]
            and not self.cookies.jar
            and not self.follow_redirects
        )

    def _template(self, url: str, headers: dict[str, str] | None, timeout: Any) -> _Template | None:
        try:
            key = (url, tuple(headers.items()) if headers else (), timeout)
            template = self._templates.get(key)
        except TypeError:  # an unhashable timeout / header value: httpx's path
            return None
        # build_request also reads the client's headers, base URL, params and timeout.
        client_state = (
            self.base_url,
            self.params,
            self.timeout if isinstance(timeout, UseClientDefault) else None,
        )
        client_headers = self.headers.raw
        if (
            template is None
            or template.client_headers != client_headers
            or any(a is not b for a, b in zip(template.client_state, client_state, strict=True))
        ):
            request = self.build_request("POST", url, json={}, headers=headers, timeout=timeout)
            if request.url.userinfo or not request.url.host:
                return None  # basic auth from the URL, or a relative URL: httpx's path
            template = _Template(request, client_headers, client_state)
            if key in self._templates or len(self._templates) < _CACHE_LIMIT:
                self._templates[key] = template
        return template

    async def post(  # type: ignore[override]
        self,
        url: httpx.URL | str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> httpx.Response:
        template = None
        if (
            not kwargs
            and json is not None
            and isinstance(url, str)
            and (headers is None or isinstance(headers, dict))
            and self._shortcut_applies()
        ):
            template = self._template(url, headers, timeout)
        if template is None:
            return await super().post(url, json=json, headers=headers, timeout=timeout, **kwargs)
        # httpx's encode_json, byte for byte.
        body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        request = template.request(body.encode("utf-8"))
        return await self._send_shortcut(request)

    async def post_answer(
        self, url: str, *, json: Any, headers: dict[str, str] | None, timeout: Any
    ) -> httpx.Response | UpstreamAnswer:
        """``post(url, json=..., headers=..., timeout=...)`` for the providers' hot path: a 2xx
        answer without a Content-Encoding or cookies comes back as an ``UpstreamAnswer`` (its
        status and body, the ``httpx.Response`` built only if asked for), without building
        httpx's request and response objects; anything else is ``post``'s own result, and
        errors are the same httpx exceptions."""
        transport = self._transport
        template = None
        if (
            type(transport) is AiohttpTransport
            and json is not None
            and isinstance(url, str)
            and (headers is None or isinstance(headers, dict))
            and self._state != ClientState.CLOSED
            and self._shortcut_applies()
            and not HTTPX_LOGGER.isEnabledFor(logging.INFO)
        ):
            template = self._template(url, headers, timeout)
        if template is None:
            return await self.post(url, json=json, headers=headers, timeout=timeout)
        body = jsonlib.dumps(
            json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
        self._state = ClientState.OPENED
        started = time.perf_counter()
        status, raw_headers, reason, content = await transport.send_raw(template, body)
        answer = UpstreamAnswer(self, template, body, status, raw_headers, reason, content, started)
        if 200 <= status < 300 and not answer.has_header(b"content-encoding", b"set-cookie"):
            return answer
        return answer.response()

    async def _send_shortcut(self, request: httpx.Request) -> httpx.Response:
        """``send`` -> ``_send_single_request`` for a built request with nothing to add."""
        if self._state == ClientState.CLOSED:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        self._state = ClientState.OPENED
        started = time.perf_counter()
        response = await self._transport.handle_async_request(request)
        response.request = request
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        if "set-cookie" in response.headers:
            self.cookies.extract_cookies(response)
        response.default_encoding = self._default_encoding
        if HTTPX_LOGGER.isEnabledFor(logging.INFO):
            HTTPX_LOGGER.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        if response.has_redirect_location:  # not followed, as on httpx's path
            response.next_request = self._build_redirect_request(request, response)
        return response


class UpstreamAnswer:
    """An upstream's answer to ``UpstreamClient.post_answer`` before any httpx object exists."""

    __slots__ = ("client", "template", "body", "status_code", "raw_headers", "reason", "content")
    __slots__ += ("started", "_response")

    def __init__(
        self, client, template, body, status_code, raw_headers, reason, content, started
    ) -> None:
        self.client = client
        self.template = template
        self.body = body
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.reason = reason
        self.content = content
        self.started = started
        self._response: httpx.Response | None = None

    def has_header(self, *names: bytes) -> bool:
        return any(name.lower() in names for name, _ in self.raw_headers)

    def response(self) -> httpx.Response:
        """The ``httpx.Response`` that ``post`` returns for this answer (built once)."""
        if self._response is None:
            client = self.client
            request = self.template.request(self.body)
            extensions = {"http_version": b"HTTP/1.1"}
            if self.reason:
                extensions["reason_phrase"] = self.reason.encode("latin-1", "replace")
            response = _response(
                self.status_code, self.raw_headers, self.content, request, extensions
            )
            response.request = request
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self.started)
            if "set-cookie" in response.headers:
                client.cookies.extract_cookies(response)
            response.default_encoding = client._default_encoding
            if response.has_redirect_location:
                response.next_request = client._build_redirect_request(request, response)
            self._response = response
        return self._response


def upstream_client(
    *, timeout_s: float, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """The httpx client the providers share in one event loop, over ``AiohttpTransport``."""
    return UpstreamClient(
        timeout=timeout_s,
        transport=AiohttpTransport(max_connections=max_connections),
    )
