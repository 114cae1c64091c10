"""Request and response schemas of the HTTP API (pydantic, through django-ninja).

Bounds here are the API's contract: anything outside them is a 400 that names the field,
before any routing work starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api import gateway_checks
from routing_platform.engine.classifier import TASK_TYPES

TEXT_MAX_CHARS = 200_000
TaskType = Literal[TASK_TYPES]  # the classifier's task types
KEY_PATTERN = r"^[-a-zA-Z0-9_]{1,100}$"
NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored: remove it"


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


#: A string field that refuses NUL characters with a 400 naming the field, before any upstream
#: call: PostgreSQL cannot store them, so the call could not be recorded.
Text = Annotated[str, AfterValidator(_without_nul)]


class ErrorOut(Schema):
    message: str = Field(description="What was wrong and what to do.")
    code: str
    param: str | None = None


# --- Routing API ----------------------------------------------------------------------------


class RoutedRequestIn(Schema):
    model_config = ConfigDict(populate_by_name=True)

    unit_id: Text | None = Field(
        None,
        max_length=255,
        description="The experiment unit (user, script, team) this call is for.",
    )
    experiment: str | None = Field(
        None, pattern=KEY_PATTERN, description="Experiment key; the unit gets a sticky arm."
    )
    run_async: bool = Field(
        False,
        alias="async",
        description="Queue the call on the RQ workers and answer 202 with a job id.",
    )


class ExecuteIn(RoutedRequestIn):
    text: Text = Field(..., min_length=1, max_length=TEXT_MAX_CHARS)
    task_type: TaskType = "analysis"
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    temperature: float | None = Field(None, ge=0, le=2)

    @field_validator("text")
    @classmethod
    def text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank: send the prompt to route")
        return value


class EvaluateIn(RoutedRequestIn):
    script: Text = Field(..., min_length=1, max_length=TEXT_MAX_CHARS)
    niche: Text = Field("general", min_length=1, max_length=100)

    @field_validator("script")
    @classmethod
    def script_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("script is blank: send the script to evaluate")
        return value


class JobOut(Schema):
    job_id: int
    status: str
    status_url: str


class ArmIn(Schema):
    key: str = Field(..., pattern=KEY_PATTERN)
    name: Text = Field("", max_length=200)
    strategy: Literal["smart_routing", "original_council"]
    weight: int = Field(50, ge=0, le=100)
    is_control: bool = False
    escalation_threshold: float | None = Field(None, ge=0, le=1)
    enable_escalation: bool | None = None
    cost_optimization_mode: bool | None = None


class ExperimentIn(Schema):
    key: str = Field(..., pattern=r"^[-a-zA-Z0-9_]{1,100}$")
    name: Text = Field(..., min_length=1, max_length=200)
    hypothesis: Text = Field("", max_length=10_000)
    unit_type: Literal["user", "script", "request", "team"] = "user"
    traffic_percentage: float = Field(100.0, ge=0, le=100)
    alpha: float = Field(0.05, ge=0.0001, le=0.5)
    sequential_testing: bool = True
    minimum_sample_per_arm: int = Field(200, ge=1, le=100_000_000)
    shadow_percentage: float = Field(0.0, ge=0, le=100)
    quality_signal: Literal["agreement", "judge", "feedback"] = Field(
        "agreement", description="What the quality guardrail tests (docs/quality.md)."
    )
    arms: list[ArmIn] = Field(..., min_length=2, max_length=10)
    start: bool = Field(False, description="Start the experiment right away.")


class RampIn(Schema):
    traffic_percentage: float = Field(..., ge=0, le=100)


# --- OpenAI-compatible API ------------------------------------------------------------------


class TextPart(Schema):
    type: Literal["text"]
    text: Text = Field(..., max_length=TEXT_MAX_CHARS)


class ImageUrl(Schema):
    model_config = ConfigDict(extra="allow")

    url: str = Field(..., min_length=1, description="An http(s) URL or a data: URL (base64).")
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def url_is_an_image(cls, value: str) -> str:
        return gateway_checks.image_url(value)


class ImagePart(Schema):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(Schema):
    name: str = Field(..., min_length=1, max_length=64)
    arguments: Text = Field(..., max_length=TEXT_MAX_CHARS)

    @field_validator("arguments")
    @classmethod
    def arguments_are_a_json_object(cls, value: str) -> str:
        return gateway_checks.json_object_text(value)


class ToolCall(Schema):
    id: str = Field(..., min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Schema):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None
    name: Text | None = Field(None, max_length=256)
    tool_calls: list[ToolCall] | None = Field(None, max_length=128)
    tool_call_id: Text | None = Field(None, max_length=256)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))


class FunctionDefinition(Schema):
    name: str = Field(..., pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: Text | None = Field(None, max_length=10_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def parameters_are_an_object_schema(cls, value: dict[str, Any] | None):
        return None if value is None else gateway_checks.object_schema(value)


class Tool(Schema):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Schema):
    name: str = Field(..., min_length=1, max_length=64)


class NamedToolChoice(Schema):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(Schema):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(..., pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = Field(None, max_length=10_000)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def schema_is_valid(cls, value: dict[str, Any] | None):
        return None if value is None else gateway_checks.json_schema(value)


class ResponseFormat(Schema):
    model_config = ConfigDict(populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    json_schema_: JsonSchemaFormat | None = Field(None, alias="json_schema")

    @model_validator(mode="after")
    def json_schema_given(self):
        if self.type == "json_schema" and self.json_schema_ is None:
            raise ValueError('type "json_schema" needs a json_schema object (name and schema)')
        return self


class StreamOptions(Schema):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionIn(Schema):
    """OpenAI's chat completion request. Every field it names reaches the chosen provider
    (translated) or is refused with a 400; other unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: Text = Field(
        ...,
        min_length=1,
        max_length=200,
        description='"router" routes smartly; a model name from /v1/models passes through.',
    )
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=2_000)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=200_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is supported.")
    user: Text | None = Field(None, max_length=255)
    task_type: TaskType | None = Field(None, description="Router extension: the task type.")
    experiment: str | None = Field(
        None,
        pattern=KEY_PATTERN,
        description="Router extension: an experiment key; `user` then gets a sticky arm.",
    )
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stop: Text | list[Text] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @field_validator("stop")
    @classmethod
    def at_most_four_stop_sequences(cls, value: str | list[str] | None):
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    @field_validator("tool_choice")
    @classmethod
    def tool_choice_names_a_tool(cls, choice: Any, info: ValidationInfo):
        names = {tool.function.name for tool in info.data.get("tools") or ()}
        if choice not in (None, "none") and not names:
            raise ValueError("tool_choice needs tools: send the tools it may call")
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise ValueError(f"tool_choice names {choice.function.name!r}, which is not in tools")
        return choice


class ModelOut(Schema):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelListOut(Schema):
    object: Literal["list"] = "list"
    data: list[ModelOut]


def dump(schema: Schema) -> dict[str, Any]:
    return schema.model_dump(exclude_none=True, by_alias=True)
