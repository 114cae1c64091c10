"""Checks on the gateway's rich request fields, run by the request schemas (so a failure
is a 400 naming the field, before any routing work and before anything is recorded).

Tool parameters and JSON-schema response formats must be valid JSON Schemas (checked by
the `jsonschema` package against the schema's own metaschema); tool call arguments must
be JSON objects; image parts must be http(s) URLs or base64 data URLs of an image type,
at most `IMAGE_MAX_BYTES` decoded.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

IMAGE_MAX_BYTES = 5 * 1024 * 1024  # what Anthropic accepts per image; OpenAI allows more
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A well-formed JSON Schema, or ValueError saying what is wrong with it."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "the top level"
        raise ValueError(f"not a valid JSON Schema at {where}: {err.message}") from None
    return schema


def object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Tool parameters: a valid JSON Schema describing an object."""
    json_schema(schema)
    if schema.get("type", "object") != "object":
        raise ValueError('tool parameters must be a JSON Schema of "type": "object"')
    return schema


def json_object_text(text: str) -> str:
    """Tool call arguments: a JSON object, as text."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        raise ValueError("arguments must be a JSON object encoded as a string") from None
    if not isinstance(value, dict):
        raise ValueError("arguments must be a JSON object encoded as a string")
    return text


def image_url(url: str) -> str:
    """An http(s) link, or a base64 data URL of a PNG, JPEG, GIF or WebP image that is at
    most IMAGE_MAX_BYTES."""
    if url.startswith(("http://", "https://")):
        return url
    if not url.startswith("data:"):
        raise ValueError("an image must be an http(s) URL or a data:image/...;base64 URL")
    header, _, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if media_type not in IMAGE_TYPES or encoding != "base64":
        raise ValueError(
            f"a data URL image must be base64 of one of {', '.join(IMAGE_TYPES)}, "
            f"not {header or 'nothing'}"
        )
    size = len(data) * 3 // 4 - data.count("=")
    if size > IMAGE_MAX_BYTES:
        raise ValueError(f"the image is {size} bytes; the limit is {IMAGE_MAX_BYTES} bytes")
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise ValueError("the data URL's image is not valid base64") from None
    return url
