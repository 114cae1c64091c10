"""The Anthropic Messages API: ``POST /v1/messages``, for the official ``anthropic`` SDK and
the tools built on it.

Same keys (``x-api-key: rk_...`` or ``Authorization: Bearer rk_...``), same routing
(``model: "router"`` routes; a catalog model name passes through, to any provider), same
recording, streaming and ``x-router-*`` headers as ``/v1/chat/completions``: the request is
translated into the gateway's OpenAI shape (``api.anthropic_shape``), answered by the same
code, and the answer translated back into a Messages ``message`` or its event stream. A
request in Anthropic's shape can so be answered by an OpenAI or Gemini model. Errors come
in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI

from api.anthropic_shape import MessagesIn, MessagesRenderer, anthropic_error_body, chat_request
from api.auth import ApiKeyAuth, authorize
from api.errors import install_error_handlers
from api.openai_api import chat_completion_answer, started_at


class MessagesKeyAuth(ApiKeyAuth):
    """The key from ``x-api-key`` (how the anthropic SDK sends it) or a Bearer header."""

    async def __call__(self, request: HttpRequest):
        key = request.headers.get("x-api-key", "").strip()
        header = f"Bearer {key}" if key else request.headers.get("Authorization", "")
        return await authorize(header, self.scope)


anthropic_api = NinjaAPI(
    title="Anthropic-compatible Messages API",
    version="1",
    description=(
        'Point the anthropic SDK at this base URL. `model: "router"` routes each call to the '
        "cheapest model likely to answer it well; a model name from /v1/models passes through."
    ),
    urls_namespace="anthropic_api",
    docs_url=None,
    openapi_url="/messages/openapi.json",
)
install_error_handlers(anthropic_api, anthropic_error_body)


@anthropic_api.post(
    "/messages",
    auth=MessagesKeyAuth("write"),
    summary="Create a message (Anthropic Messages API)",
    response={200: dict},
)
async def messages(request: HttpRequest, payload: MessagesIn):
    answer = await chat_completion_answer(
        chat_request(payload),
        key_name=request.auth.name,
        started=started_at(request),
        render=MessagesRenderer(payload),
    )
    response: HttpResponse | StreamingHttpResponse
    if answer.stream is not None:
        response = StreamingHttpResponse(answer.stream, content_type=answer.content_type)
    else:
        response = HttpResponse(answer.body, content_type=answer.content_type)
    for name, value in answer.headers.items():
        response[name] = value
    return response
