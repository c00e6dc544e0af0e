"""REST API v1 endpoints (SPEC §5). Each runs in the key's workspace, as the key's creator, and
goes through the same services as the dashboard. Their errors (ApiError, the services'
DomainError, anything else) are answered by the app-level handlers of fvapp/errors.py."""

from __future__ import annotations

from flask import jsonify

from ..services import initiatives
from . import bp
from .auth import current_principal
from .openapi import document
from .operations import operation
from .schemas import (
    InitiativeCreate,
    InitiativeList,
    InitiativeListQuery,
    InitiativeOut,
    InitiativeUpdate,
    Me,
)


# No automatic OPTIONS here either (see operations.py): it would answer 200 with an empty
# text/html body; without it, OPTIONS is a 405 in the envelope like on every other route.
@bp.get("/openapi.json", provide_automatic_options=False)
def openapi():
    """The OpenAPI 3.1 description of this API, generated from its models. Public."""
    return jsonify(document())


@operation("GET", "/me", response=Me,
           summary="Who am I",
           description="The key, the user it acts as, that user's role and the workspace.")
def me() -> Me:
    return describe(current_principal())


def describe(p) -> Me:
    """The key, its creator, role and workspace: the principal the hook's key read made, into
    the response model in one validation (no statement of its own)."""
    return Me.model_validate({
        "user": {"id": p.user_id, "email": p.user_email, "name": p.user_name},
        "role": p.role,
        "workspace": {"id": p.workspace_id, "name": p.workspace_name, "plan": p.plan},
        "api_key": {"id": p.key_id, "name": p.key_name, "prefix": p.key_prefix,
                    "created_at": p.key_created_at, "last_used_at": p.key_last_used_at,
                    "expires_at": p.key_expires_at},
    })


# The functions below are the operations themselves, called by the REST views above them and by
# the MCP tools alike (fvapp/api/mcp.py): one path per operation, the same statements.


@operation("GET", "/initiatives", query=InitiativeListQuery, response=InitiativeList,
           summary="List initiatives",
           description="Initiatives, newest first: active ones, or archived ones.")
def list_initiatives(query: InitiativeListQuery) -> InitiativeList:
    return initiative_page(archived=query.archived == "true", limit=query.limit,
                           offset=query.offset)


def initiative_page(*, archived: bool, limit: int, offset: int) -> InitiativeList:
    """One page of the key's workspace's initiatives: one SELECT, its rows validated straight
    into the response model."""
    page = initiatives.page_initiatives(current_principal().workspace_id, archived=archived,
                                        limit=limit, offset=offset)
    return InitiativeList.model_validate({
        "items": page.items,
        "pagination": {"limit": limit, "offset": offset, "has_more": page.has_more},
    })


@operation("POST", "/initiatives", body=InitiativeCreate, response=InitiativeOut, status=201,
           summary="Create an initiative")
def create_initiative(body: InitiativeCreate) -> InitiativeOut:
    return new_initiative(body.title, body.description)


def new_initiative(title: str, description: str | None) -> InitiativeOut:
    p = current_principal()
    return InitiativeOut.model_validate(
        initiatives.create_initiative(p.workspace_id, p.user_id, title, description))


@operation("GET", "/initiatives/<initiative_id>", response=InitiativeOut,
           summary="Get an initiative")
def get_initiative(initiative_id: str) -> InitiativeOut:
    return InitiativeOut.model_validate(
        initiatives.get_initiative(current_principal().workspace_id, initiative_id))


@operation("PATCH", "/initiatives/<initiative_id>", body=InitiativeUpdate, response=InitiativeOut,
           summary="Update an initiative",
           description="Change the title or description, archive or restore (there is no DELETE).")
def update_initiative(initiative_id: str, body: InitiativeUpdate) -> InitiativeOut:
    return change_initiative(initiative_id, body, body.model_fields_set)


def change_initiative(initiative_id: str, given, fields: set[str]) -> InitiativeOut:
    """Set `fields` (of title, description, archived) to their values in `given`; those left
    out are not changed."""
    changes = {name: getattr(given, name) for name in fields & CHANGEABLE}
    return InitiativeOut.model_validate(initiatives.update_initiative(
        current_principal().workspace_id, initiative_id, **changes))


CHANGEABLE = frozenset(InitiativeUpdate.model_fields)
