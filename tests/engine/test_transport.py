"""The aiohttp transport under httpx's API: same requests on the wire, httpx's exceptions."""

from __future__ import annotations

import asyncio
import gc
import gzip
import logging

import httpx
import pytest

from routing_platform.engine.providers.transport import upstream_client
from tests.engine.upstream import Reply


async def test_sends_method_path_headers_and_json_body_and_reads_the_answer(upstream):
    """A POST arrives with httpx's headers and JSON body; the answer is an httpx.Response."""
    upstream.script(Reply(200, {"ok": True}, headers={"x-extra": "1"}))
    async with upstream_client(timeout_s=5.0) as client:
        response = await client.post(
            f"{upstream.url}/v1/chat?x=1", json={"a": [1, 2]}, headers={"authorization": "Bearer t"}
        )
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["x-extra"] == "1"
    received = upstream.received[0]
    assert received.path == "/v1/chat?x=1"
    assert received.body == {"a": [1, 2]}
    assert received.headers["authorization"] == "Bearer t"
    assert received.headers["content-type"] == "application/json"


async def test_gzip_bodies_are_decoded_once(upstream):
    """httpx decodes content-encoding itself: aiohttp must hand the body over as sent."""
    upstream.script(Reply(200, gzip.compress(b'{"n": 1}'), headers={"content-encoding": "gzip"}))
    async with upstream_client(timeout_s=5.0) as client:
        response = await client.post(upstream.url, json={})
    assert response.json() == {"n": 1}


async def test_a_refused_connection_is_a_connect_error_not_a_timeout():
    """Nothing listening: httpx.ConnectError (the providers call it a connection error)."""
    async with upstream_client(timeout_s=5.0) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("http://127.0.0.1:9/v1", json={})


async def test_no_answer_within_the_timeout_is_an_httpx_timeout(upstream):
    """A slow upstream: httpx.ReadTimeout after the read timeout."""
    upstream.script(Reply(200, {}, delay_s=1.0))
    async with upstream_client(timeout_s=0.1) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(upstream.url, json={})


def test_a_client_left_open_when_its_loop_ends_logs_no_error(upstream, caplog):
    """RQ jobs run each call in its own asyncio.run; the pooled client is dropped, not closed:
    it closes its sockets quietly instead of logging 'Unclosed client session'."""
    upstream.script(Reply(200, {"ok": True}))

    async def one_call():
        client = upstream_client(timeout_s=5.0)
        response = await client.post(upstream.url, json={})
        return response.status_code, client

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        status, client = asyncio.run(one_call())
        del client
        gc.collect()
    assert status == 200
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def test_the_post_shortcut_sends_what_httpx_own_path_sends(upstream):
    """UpstreamClient's JSON post shortcut puts the same request on the wire as httpx's own
    path (same headers, JSON bytes, path), and answers the same response attributes."""
    from routing_platform.engine.providers.transport import AiohttpTransport

    upstream.script(Reply(200, {"ok": "é"}))
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "n": 1.5}
    headers = {"content-type": "application/json", "authorization": "Bearer t"}
    async with upstream_client(timeout_s=5.0) as client:
        first = await client.post(f"{upstream.url}/v1/c", json=body, headers=headers, timeout=5.0)
        second = await client.post(f"{upstream.url}/v1/c", json=body, headers=headers, timeout=5.0)
        assert len(client._templates) == 1  # the shortcut was taken, with one template
    async with httpx.AsyncClient(timeout=5.0, transport=AiohttpTransport()) as plain:
        reference = await plain.post(
            f"{upstream.url}/v1/c", json=body, headers=headers, timeout=5.0
        )
    shortcut, again, generic = upstream.received
    assert shortcut.headers == generic.headers == again.headers
    assert shortcut.body == generic.body == body
    assert shortcut.path == generic.path == "/v1/c"
    for response in (first, second):
        assert response.json() == reference.json() == {"ok": "é"}
        assert response.request.content == reference.request.content
        assert response.request.headers.raw == reference.request.headers.raw
        assert response.request.extensions == reference.request.extensions
        assert response.elapsed.total_seconds() > 0
        assert response.is_closed and response.http_version == "HTTP/1.1"


async def test_cookies_an_upstream_sets_are_sent_back_as_httpx_does(upstream):
    """A Set-Cookie answer is kept in the client's jar and sent on the next call (the
    shortcut then steps aside for httpx's own path)."""
    upstream.script(Reply(200, {}, headers={"set-cookie": "lb=abc; Path=/"}))
    async with upstream_client(timeout_s=5.0) as client:
        await client.post(f"{upstream.url}/v1/c", json={})
        await client.post(f"{upstream.url}/v1/c", json={})
    assert "cookie" not in upstream.received[0].headers
    assert upstream.received[1].headers["cookie"] == "lb=abc"


async def test_a_closed_upstream_client_refuses_to_send(upstream):
    """As httpx does: a closed client raises instead of sending."""
    client = upstream_client(timeout_s=5.0)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.post(f"{upstream.url}/v1/c", json={})


@pytest.mark.parametrize(
    ("raw_headers", "content"),
    [
        ([(b"Content-Type", b"application/json"), (b"Content-Length", b"8")], b'{"a": 1}'),
        ([(b"Transfer-Encoding", b"chunked")], b'{"a": 1}'),
        ([], b""),
        ([(b"Content-Encoding", b"gzip")], gzip.compress(b'{"n": 1}')),
    ],
)
def test_responses_are_built_as_httpx_response_with_content_builds_them(raw_headers, content):
    """The transport's response equals httpx.Response(content=...): headers (Content-Length
    added when missing), decoded body, read and closed state, byte counter."""
    from routing_platform.engine.providers.transport import _response

    request = httpx.Request("POST", "http://upstream.test/v1")
    extensions = {"http_version": b"HTTP/1.1"}
    built = _response(200, raw_headers, content, request, extensions)
    reference = httpx.Response(
        200, headers=raw_headers, content=content, request=request, extensions=extensions
    )
    assert built.headers.raw == reference.headers.raw
    assert built.content == reference.content
    assert (built.is_closed, built.is_stream_consumed) == (True, True)
    assert built.num_bytes_downloaded == reference.num_bytes_downloaded
    assert built.request is request and built.http_version == "HTTP/1.1"


@pytest.mark.parametrize(
    "content",
    [b'{"a": 1.5, "b": [1, "\\u00e9"]}', b'{"x": NaN}', '{"u": "é"}'.encode("utf-16"), b"no", b""],
)
def test_provider_json_parse_matches_httpx(content):
    """response_json (orjson first) gives response.json()'s result, or raises its error."""
    from routing_platform.engine.providers.base import response_json

    response = httpx.Response(200, content=content)
    try:
        expected = response.json()
    except ValueError as err:
        with pytest.raises(type(err)):
            response_json(response)
    else:
        got = response_json(response)
        assert repr(got) == repr(expected)


async def test_client_headers_changed_between_calls_are_sent(upstream):
    """The shortcut's per-URL template follows the client's own headers as httpx does."""
    upstream.script(Reply(200, {}))
    async with upstream_client(timeout_s=5.0) as client:
        await client.post(f"{upstream.url}/v1/c", json={}, headers={"a": "1"})
        client.headers["x-client"] = "2"
        await client.post(f"{upstream.url}/v1/c", json={}, headers={"a": "1"})
    assert "x-client" not in upstream.received[0].headers
    assert upstream.received[1].headers["x-client"] == "2"


async def test_post_answer_sends_what_post_sends_and_keeps_httpx_objects_for_the_rest(upstream):
    """The providers' hot path (post_answer): the same request on the wire as ``post``; a
    plain 2xx is an UpstreamAnswer whose lazily built response equals post's; an error
    status, a gzip body and a cookie come back as post's own httpx.Response."""
    from routing_platform.engine.providers.transport import UpstreamAnswer

    body = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "n": 1.5}
    headers = {"content-type": "application/json", "authorization": "Bearer t"}
    url = f"{upstream.url}/v1/c"
    upstream.script(
        Reply(200, {"ok": "é"}),
        Reply(200, {"ok": "é"}),
        Reply(503, {"error": {"message": "busy"}}, headers={"retry-after": "2"}),
        Reply(200, gzip.compress(b'{"n": 1}'), headers={"content-encoding": "gzip"}),
    )
    async with upstream_client(timeout_s=5.0) as client:
        reference = await client.post(url, json=body, headers=headers, timeout=5.0)
        answer = await client.post_answer(url, json=body, headers=headers, timeout=5.0)
        failed = await client.post_answer(url, json=body, headers=headers, timeout=5.0)
        gzipped = await client.post_answer(url, json={}, headers=headers, timeout=5.0)
    generic, fast = upstream.received[:2]
    assert fast.headers == generic.headers and fast.body == generic.body == body
    assert fast.path == generic.path == "/v1/c"
    assert isinstance(answer, UpstreamAnswer) and answer.status_code == 200
    assert answer.content == reference.content
    built = answer.response()
    assert built is answer.response()  # built once
    assert built.json() == reference.json() == {"ok": "é"}
    assert built.headers.raw == reference.headers.raw
    assert built.request.headers.raw == reference.request.headers.raw
    assert built.request.content == reference.request.content
    assert isinstance(failed, httpx.Response) and failed.status_code == 503
    assert (
        failed.headers["retry-after"] == "2" and failed.request.content == reference.request.content
    )
    assert isinstance(gzipped, httpx.Response) and gzipped.json() == {"n": 1}


async def test_post_answer_raises_httpx_errors_with_the_request(upstream):
    """Errors on the hot path are httpx's, each carrying the request that was sent."""
    upstream.script(Reply(200, {}, delay_s=1.0))
    async with upstream_client(timeout_s=0.1) as client:
        with pytest.raises(httpx.ReadTimeout) as timed_out:
            await client.post_answer(upstream.url, json={"a": 1}, headers=None, timeout=0.1)
        with pytest.raises(httpx.ConnectError) as refused:
            await client.post_answer("http://127.0.0.1:9/v1", json={}, headers=None, timeout=1.0)
    assert timed_out.value.request.content == b'{"a":1}'
    assert str(refused.value.request.url) == "http://127.0.0.1:9/v1"


async def test_post_answer_steps_aside_when_httpx_logs_requests(upstream, caplog):
    """With httpx's INFO log on, the call takes post's path and logs its request line."""
    upstream.script(Reply(200, {"ok": True}))
    async with upstream_client(timeout_s=5.0) as client:
        with caplog.at_level(logging.INFO, logger="httpx"):
            result = await client.post_answer(upstream.url, json={}, headers=None, timeout=5.0)
    assert isinstance(result, httpx.Response) and result.json() == {"ok": True}
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)
