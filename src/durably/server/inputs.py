"""Reading requests: JSON bodies, typed fields, ids, times and list cursors, each checked with a
clear 400 (``bad_request``) or 415 before anything is written."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from durably import jsonforms, limits
from durably.errors import ConfigurationError, InvalidIdError, SerializationError
from durably.ids import validate_workflow_id

from .errors import ApiError

__all__ = [
    "decode_cursor",
    "encode_cursor",
    "json_body",
    "model_body",
    "parse_time",
    "workflow_id",
]

_JSON_TYPES = re.compile(r"^application/([a-z0-9.+-]*\+)?json$")
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "an object",
}


def is_json_type(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json``, ``...+json``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return bool(_JSON_TYPES.match(media))


def parse_json(raw: bytes) -> Any:
    """The JSON value of a request body (400 if it is not UTF-8 JSON)."""
    try:
        return limits.loads(raw.decode("utf-8"), "the request body")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(
            "bad_request", f"the request body is not valid JSON ({exc}); send a JSON document"
        ) from None
    except SerializationError as exc:
        raise ApiError("bad_request", exc.message) from None


def json_body(raw: bytes, content_type: str | None, *, allow_empty: bool = True) -> dict[str, Any]:
    """The JSON object of a request body ({} if empty and ``allow_empty``).

    415 if a Content-Type other than JSON is given; 400 if it is not a JSON object.
    """
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError("bad_request", "the request needs a JSON object body")
    if content_type is not None and not is_json_type(content_type):
        raise ApiError(
            "unsupported_media_type",
            f"Content-Type {content_type!r} is not JSON; send the body as application/json",
        )
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise ApiError("bad_request", f"the request body must be a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for tp, name in _TYPE_NAMES.items():
        if type(value) is tp:
            return name
    return type(value).__name__


def only_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """400 naming any field of ``body`` not in ``allowed`` (a typo would else be ignored)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(
            "bad_request",
            f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}",
        )


M = TypeVar("M", bound=BaseModel)

_WANTS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "an object",
}


def model_body(body: dict[str, Any], model: type[M]) -> M:
    """``body`` validated by its request model (:mod:`durably.server.models`): a 400 names
    unknown fields, a missing one, a wrong type, or what durably's own check says of a value."""
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        raise _bad_field(exc, body, model) from None


def _bad_field(exc: ValidationError, body: dict[str, Any], model: type[BaseModel]) -> ApiError:
    errors = exc.errors(include_url=False)
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        allowed = ", ".join(model.model_fields)
        return ApiError(
            "bad_request",
            f"unknown field(s) {', '.join(map(repr, sorted(unknown)))}; allowed: {allowed}",
        )
    error = errors[0]
    name = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "missing":
        return ApiError("bad_request", f"the body needs the field {name!r}")
    if error["type"] == "value_error":  # durably's own check, its message as it is
        return ApiError("bad_request", str(error["ctx"]["error"]))
    want = _WANTS.get(error["type"])
    if want is not None:
        spec = model.model_fields.get(name)
        if spec is not None and not spec.is_required() and spec.default is None:
            want += " or null"
        return ApiError(
            "bad_request", f"field {name!r} must be {want}, got {_kind(body.get(name))}"
        )
    return ApiError("bad_request", f"field {name!r}: {error['msg']}")


def workflow_id(value: Any, what: str = "workflow id") -> str:
    """A valid workflow id (400 otherwise)."""
    try:
        return validate_workflow_id(value)
    except InvalidIdError as exc:
        raise ApiError("bad_request", f"{what}: {exc.message}") from None


def parse_time(value: str, name: str) -> float:
    """Epoch seconds from ``value``: epoch seconds, or an ISO-8601 time (UTC when it names no
    zone)."""
    bad = ApiError(
        "bad_request",
        f"{name} must be epoch seconds or an ISO-8601 time such as 2025-01-31T12:00:00Z, "
        f"got {value[:60]!r}",
    )
    if not value.isascii():  # float() and fromisoformat() would take other scripts' digits
        raise bad
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ApiError("bad_request", f"{name} must be a finite time, got {value[:60]!r}")
        return number
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_cursor(created_at: float, last_id: str) -> str:
    """An opaque cursor for the page after the workflow ``(created_at, last_id)`` (the exact
    stored epoch); the remote client makes the same one from a workflow's ``created_at_epoch``
    (:func:`durably.jsonforms.encode_cursor`)."""
    return jsonforms.encode_cursor(created_at, last_id)


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(created_at, id)`` a cursor names (400 if it is not one this server made)."""
    bad = ApiError(
        "bad_request", "invalid cursor; pass next_cursor from a previous list answer unchanged"
    )
    if len(cursor) > 400:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        raise bad from None
    if not (isinstance(value, list) and len(value) == 2 and type(value[0]) in (int, float)):
        raise bad
    try:
        return limits.check_epoch(value[0], "cursor"), validate_workflow_id(value[1])
    except (ConfigurationError, InvalidIdError):
        raise bad from None
