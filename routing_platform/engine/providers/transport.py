"""The upstream HTTP client: httpx's API over aiohttp's connection pool and C HTTP parser.

The providers speak ``httpx`` (``client.post(url, json=..., headers=..., timeout=...)``,
``httpx.Response``, ``httpx.TimeoutException`` / ``httpx.TransportError``), and tests inject
plain ``httpx.AsyncClient`` objects. In the server, every routed call pays the client's
cost on the request's critical path; httpx's default transport (httpcore, pure Python)
spent about 2.5 ms of CPU per loopback call here, most of it in its connection pool,
against ~0.8 ms for aiohttp. ``AiohttpTransport`` plugs aiohttp in under httpx's API, the
same idea as the ``httpx-aiohttp`` package that the official ``openai`` SDK offers, but
mapping aiohttp's errors onto httpx's exactly (a refused connection is a ``ConnectError``,
not a timeout) and reading each body in one go (the providers never stream).

One transport (one aiohttp session) belongs to one event loop, like an httpx client.
"""

from __future__ import annotations

import contextlib

import aiohttp
import httpx

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_KEEPALIVE_S = 15.0


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    timeout = request.extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.get("pool"),
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
    )


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
        session = self._get_session()
        body = await request.aread()
        url = request.url
        if url.userinfo:  # httpx already sent it as an Authorization header
            url = url.copy_with(username=None, password=None)
        try:
            async with session.request(
                request.method,
                str(url),
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
        return httpx.Response(
            status, headers=raw_headers, content=content, request=request, extensions=extensions
        )

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


def upstream_client(
    *, timeout_s: float, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """The httpx client the providers share in one event loop, over ``AiohttpTransport``."""
    return httpx.AsyncClient(
        timeout=timeout_s,
        transport=AiohttpTransport(max_connections=max_connections),
    )
