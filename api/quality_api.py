"""User feedback and quality summaries of the routing API, and the call-id header.

``POST /api/v1/routing/calls/{call_id}/feedback`` records a user's score (0-1) or thumbs
on a call, once per call; ``{call_id}`` is what the answer carried in
``x-router-call-id``: the routing API's numeric call id, or a /v1 completion id.
``GET /api/v1/routing/quality`` sums the quality signals (docs/quality.md).
"""

from __future__ import annotations

from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Path, Query, Router, Schema, Status
from pydantic import Field

from api.auth import read_auth, write_auth
from api.errors import BadRequest, NotFound
from api.schemas import KEY_PATTERN
from experiments.selectors import experiment_get
from experiments.selectors_quality import quality_totals, routed_call_by_public_id
from experiments.services.quality import FeedbackError, feedback_record

CALL_ID_HEADER = "x-router-call-id"
#: Body fields that name the call an answer is about.
_CALL_ID_FIELDS = ("call_id", "job_id")

router = Router(tags=["quality"])


def call_id_header(call_id: Any) -> dict[str, str]:
    """The header that tells a client which call to send feedback on."""
    return {CALL_ID_HEADER: str(call_id)}


class CallIdNinjaAPI(NinjaAPI):
    """A NinjaAPI whose answers about a call (a body with ``call_id`` or ``job_id``) carry
    the call's id in ``x-router-call-id``."""

    def create_response(self, request, data, *args, **kwargs) -> HttpResponse:
        response = super().create_response(request, data, *args, **kwargs)
        if isinstance(data, dict):
            call_id = next((data[name] for name in _CALL_ID_FIELDS if data.get(name)), None)
            if call_id is not None:
                for name, value in call_id_header(call_id).items():
                    response[name] = value
        return response


class FeedbackIn(Schema):
    score: float | None = Field(None, description="0 (bad) to 1 (good); or send thumbs.")
    thumbs: Literal["up", "down"] | None = Field(None, description='"up" (1) or "down" (0).')
    comment: str = Field("", max_length=2000)


def _visible_call(public_id: str, key_name: str):
    """The call ``public_id`` names if this key may see it: a call recorded with another
    key's name is as absent as an unknown one (404, never 403: no probing)."""
    call = routed_call_by_public_id(public_id=public_id)
    owner = (call.request_payload or {}).get("api_key") if call is not None else None
    if call is None or (owner and owner != key_name):
        raise NotFound(
            f"No call {public_id!r} for this API key. Use the x-router-call-id of the answer; "
            "a /v1 call is recorded a moment after its answer, so retry shortly if it is new."
        )
    return call


def _signal_body(public_id: str, signal, created: bool) -> dict[str, Any]:
    return {
        "call_id": public_id,
        "source": signal.source,
        "value": signal.value,
        "comment": (signal.detail or {}).get("comment", ""),
        "created": created,
        "created_at": signal.created_at,
    }


@router.post(
    "/calls/{call_id}/feedback",
    auth=write_auth,
    response={200: dict, 201: dict},
    summary="Record a user's feedback on a call (once per call)",
    openapi_extra={
        "responses": {
            "400": {
                "description": "Score outside 0-1, both or neither of score and thumbs, "
                "or a shadow call."
            },
            "404": {"description": "No such call for this API key."},
        }
    },
)
async def call_feedback(
    request: HttpRequest, payload: FeedbackIn, call_id: str = Path(..., max_length=100)
):
    def record():
        call = _visible_call(call_id, request.auth.name)
        try:
            signal, created = feedback_record(
                call=call, score=payload.score, thumbs=payload.thumbs, comment=payload.comment
            )
        except FeedbackError as err:
            raise BadRequest(str(err)) from None
        return Status(201 if created else 200, _signal_body(call_id, signal, created))

    return await sync_to_async(record)()


class QualityQuery(Schema):
    experiment: str | None = Field(None, pattern=KEY_PATTERN)


@router.get(
    "/quality",
    auth=read_auth,
    response=dict,
    summary="Quality signals per source: counts, mean, what measuring cost",
)
async def quality_summary(request: HttpRequest, query: Query[QualityQuery]):
    def load():
        experiment = None
        if query.experiment:
            experiment = experiment_get(key=query.experiment)
            if experiment is None:
                raise NotFound(f"No experiment with key {query.experiment!r}.")
        return {
            "experiment": query.experiment,
            "sources": quality_totals(experiment=experiment),
        }

    return await sync_to_async(load)()
