"""The request and response models of REST API v1 (SPEC §5).

These classes are the single source: the views validate every query string and body with them,
serialize every response through them, and GET /api/v1/openapi.json is generated from them.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ..formatting import iso
from ..models import PLANS, ROLES
from ..services import text as text_rules
from ..services.errors import DomainError
from ..services.initiatives import DESCRIPTION_MAX, TITLE_MAX, clean_description, clean_title

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_OFFSET = 2**31 - 1  # beyond any real list, and inside every database's OFFSET range

# status → (code, default message): SPEC §5's table. 403 has a second code, PAID_PLAN_REQUIRED.
CODES = {
    400: ("VALIDATION_ERROR", "The request is not valid"),
    401: ("UNAUTHORIZED", "A valid API key is required"),
    403: ("FORBIDDEN", "Your role does not allow this"),
    404: ("NOT_FOUND", "Resource not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    413: ("PAYLOAD_TOO_LARGE", "The body is larger than 1 MiB"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json"),
    429: ("RATE_LIMITED", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal error"),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
}
PAID_PLAN_REQUIRED = "PAID_PLAN_REQUIRED"
ERROR_CODES = (*(code for code, _ in CODES.values()), PAID_PLAN_REQUIRED)


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-06-12T16:00:00.000Z"]},
        mode="serialization",
    ),
]


def _omittable(schema: dict[str, Any]) -> None:
    # A field that may be left out but never sent as null: its Python default (None, meaning
    # "not given") is no default a client could send, so the schema does not show one.
    schema.pop("default", None)


# -- input --------------------------------------------------------------------------------
#
# Titles and descriptions are validated by the services' clean_title / clean_description, the
# rule the dashboard applies too (trimmed, no NUL, in a description a CRLF is one break, length
# counted after that); a refusal becomes a `details` entry with the service's own sentence.
#
# openapi.json documents that rule without `maxLength`: JSON Schema counts the characters sent,
# before trimming, so `maxLength: 200` would call " " + 200 characters + " " invalid while the API
# (rightly, like the dashboard) accepts it, and schemathesis' negative tests catch exactly that.
# A title's rule is exact as a pattern instead; a description's length (10000, after CRLF
# becomes one character) only fits a pattern too large for common regex engines (Go's RE2
# refuses a count over 1000), so its pattern says "no NUL" and its text gives the limit.

WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())  # str.strip's
# What clean_text refuses inside text (services/text.py): control characters (Cc) and bidi
# controls; a description keeps tab and line breaks.
INVISIBLE = text_rules.INVISIBLE
LINE_CHARS = "\t\n\r"


def _char_class(chars: str, *, negate: bool = False) -> str:
    """A regex character class of exactly `chars`, in the syntax Python and ECMA-262 share."""
    ranges: list[list[int]] = []
    for code in sorted(map(ord, chars)):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    body = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


def trimmed_text_pattern(max_length: int | None, *, multiline: bool = False) -> str:
    """What clean_text accepts, as a regular expression: any whitespace (as str.strip sees it)
    around text that begins and ends with a visible character and holds no control character
    or bidi control (a multi-line text may hold tabs and line breaks), of 1 to `max_length`
    characters when a length is given (required), else of any length, possibly none."""
    forbidden = "".join(c for c in INVISIBLE if not (multiline and c in LINE_CHARS))
    space = _char_class(WHITESPACE)
    visible = _char_class(WHITESPACE + INVISIBLE, negate=True)
    inner = _char_class(forbidden, negate=True)
    if max_length is None:
        return f"^{space}*(?:{visible}(?:{inner}*{visible})?)?{space}*$"
    text = visible if max_length == 1 else f"{visible}(?:{inner}{{0,{max_length - 2}}}{visible})?"
    return f"^{space}*{text}{space}*$"


def _service_rule(clean: Callable[[str], str | None]) -> AfterValidator:
    """Validate with the service's own function, so the API and the dashboard cannot disagree."""

    def validate(value: str) -> str | None:
        try:
            return clean(value)
        except DomainError as refused:
            raise PydanticCustomError("service_rule", refused.message) from None

    return AfterValidator(validate)


Title = Annotated[
    str,
    _service_rule(clean_title),
    WithJsonSchema({
        "type": "string",
        "minLength": 1,
        "pattern": trimmed_text_pattern(TITLE_MAX),
        "description": f"1–{TITLE_MAX} characters once surrounding whitespace is trimmed "
                       "(the API trims it); no control characters or bidi controls.",
    }),
]
Description = Annotated[
    str,
    _service_rule(clean_description),
    WithJsonSchema({
        "type": "string",
        "pattern": trimmed_text_pattern(None, multiline=True),
        "description": f"Up to {DESCRIPTION_MAX} characters once surrounding whitespace is "
                       "trimmed and each CRLF counted as one line break (the API stores \\n); "
                       "no control characters but tabs and line breaks, no bidi controls. "
                       "Blank is stored as null.",
    }),
]

_INTEGER = re.compile(r"-?[0-9]{1,18}")


def _query_integer(value: Any) -> Any:
    # Query strings carry text; only plain decimal integers become numbers ("1.0", "1_0",
    # " 1" stay text, which the strict integer field then refuses).
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return value


QueryInteger = Annotated[int, BeforeValidator(_query_integer), Field(strict=True)]


class Body(BaseModel):
    """JSON bodies: exact JSON types (no "true" for true, no 1 for "1"), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class InitiativeCreate(Body):
    title: Title
    description: Description | None = None


class InitiativeUpdate(Body):
    """Any of the fields; those left out are not changed."""

    title: Title = Field(default=None, json_schema_extra=_omittable)
    description: Description | None = Field(default=None, description="null clears it too.")
    archived: bool = Field(
        default=None,
        json_schema_extra=_omittable,
        description="true archives (sets archived_at), false restores (clears it).",
    )


class InitiativeListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    archived: Literal["true", "false"] = Field(
        default="false", description="false: active initiatives only; true: archived only."
    )
    limit: QueryInteger = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: QueryInteger = Field(default=0, ge=0, le=MAX_OFFSET)


# -- output -------------------------------------------------------------------------------


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(Output):
    id: uuid.UUID
    email: str
    name: str


class WorkspaceOut(Output):
    id: uuid.UUID
    name: str
    plan: Literal[PLANS]


class ApiKeyOut(Output):
    id: uuid.UUID
    name: str
    prefix: str = Field(examples=["fvk_live_aB3x…"])
    created_at: Timestamp
    last_used_at: Timestamp | None
    expires_at: Timestamp | None = Field(
        description="When the key stops working (401 from then on); null: it never expires.")


class Me(Output):
    user: UserOut
    role: Literal[ROLES]
    workspace: WorkspaceOut
    api_key: ApiKeyOut


class InitiativeOut(Output):
    id: uuid.UUID
    title: str
    description: str | None
    archived: bool
    archived_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class Pagination(Output):
    limit: int
    offset: int
    has_more: bool


class InitiativeList(Output):
    items: list[InitiativeOut] = Field(description="Newest first.")
    pagination: Pagination


# -- the envelope -------------------------------------------------------------------------


class Meta(BaseModel):
    requestId: uuid.UUID = Field(description="Also sent as the X-Request-Id header.")  # noqa: N815
    timestamp: Timestamp


DataT = TypeVar("DataT", bound=BaseModel)


class Envelope(BaseModel, Generic[DataT]):
    success: Literal[True]
    data: DataT
    meta: Meta


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    success: Literal[False]
    error: str
    code: Literal[ERROR_CODES]
    details: list[ErrorDetail] = Field(
        default=None, json_schema_extra=_omittable, description="On validation errors."
    )
    meta: Meta
