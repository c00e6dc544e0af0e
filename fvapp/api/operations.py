"""`@operation`: one declaration per endpoint that registers the route, validates its query
string and body with the pydantic models, wraps its result in the envelope, and records
everything openapi.json says about it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import UnsupportedMediaType

from .. import bodies
from . import bp, envelope

PATH_PARAMETER = re.compile(r"<([a-z_]+)>")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form, relative to /api/v1: /initiatives/{initiative_id}
    name: str
    summary: str
    response: type[BaseModel]
    status: int
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    path_parameters: tuple[str, ...]
    description: str = ""  # the longer text under the short summary in the reference


OPERATIONS: list[Operation] = []


def operation(method: str, rule: str, *, summary: str, response: type[BaseModel], status=200,
              query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              description: str = ""):
    """The view receives the path parameters plus `query=` and/or `body=` (validated models)
    and returns an instance of `response`. The view itself is returned as it is (the route's
    endpoint wraps it): other callers, the MCP tools, call it directly."""

    def register(view: Callable[..., BaseModel]):
        @wraps(view)
        def endpoint(**path_arguments):
            inputs = {}
            if query is not None:
                inputs["query"] = parse_query(query)
            if body is not None:
                inputs["body"] = parse_body(body)
            return envelope.success(view(**path_arguments, **inputs), status)

        # No automatic OPTIONS: every method but the declared ones answers 405 in the envelope.
        bp.add_url_rule(rule, view.__name__, endpoint, methods=[method],
                        provide_automatic_options=False)
        OPERATIONS.append(Operation(
            method=method.lower(),
            path=PATH_PARAMETER.sub(r"{\1}", rule),
            name=view.__name__,
            summary=summary,
            response=response,
            status=status,
            query=query,
            body=body,
            path_parameters=tuple(PATH_PARAMETER.findall(rule)),
            description=description,
        ))
        return view

    return register


# pydantic's wording where it is no sentence for a person; the services' own refusals
# (type "service_rule", see schemas.py) and the rest pass through as sentences.
MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "This field is not accepted here.",
}


def _sentence(problem: dict) -> str:
    message = MESSAGES.get(problem["type"], problem["msg"])
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


def details(err: ValidationError, location: str | None = None) -> list[dict]:
    found = []
    for problem in err.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(part) for part in problem["loc"]) or location or "body"
        found.append({"field": field, "message": _sentence(problem)})
    return found


def parse_query(model: type[BaseModel]) -> BaseModel:
    args = request.args
    if any(len(values) > 1 for _, values in args.lists()):  # one pass; the usual answer: no
        repeated = [name for name in model.model_fields if len(args.getlist(name)) > 1]
        if repeated:
            raise envelope.ApiError(400, details=[
                {"field": name, "message": "Give this parameter once."} for name in repeated
            ])
    try:
        return model.model_validate(args.to_dict())
    except ValidationError as err:
        raise envelope.ApiError(400, details=details(err)) from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def parse_body(model: type[BaseModel]) -> BaseModel:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    if request.mimetype_params.get("charset", "utf-8").lower().replace("-", "") != "utf8":
        raise UnsupportedMediaType()  # JSON is UTF-8 (RFC 8259); another charset is a mistake
    raw = bodies.read()  # over MAX_CONTENT_LENGTH, however sent: 413 here
    try:
        # {"title": "a", "title": "b"} is ambiguous: refuse it rather than keep the last one.
        json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as dup:
        raise envelope.ApiError(400, details=[
            {"field": dup.key, "message": "Give this field once."}
        ]) from None
    except RecursionError:
        # "[" * 200000 (well under the size cap) is nested deeper than any parser should follow.
        raise envelope.ApiError(400, details=[
            {"field": "body", "message": "The JSON body is nested too deeply."}
        ]) from None
    except ValueError:
        pass  # malformed JSON: pydantic's own answer below says where
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        raise envelope.ApiError(400, details=details(err, "body")) from None
