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
    ApiKeyOut,
    InitiativeCreate,
    InitiativeList,
    InitiativeListQuery,
    InitiativeOut,
    InitiativeUpdate,
    Me,
    Pagination,
    UserOut,
    WorkspaceOut,
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
    """The key, its creator, role and workspace (also the MCP tool `whoami`)."""
    return Me(
        user=UserOut(id=p.user_id, email=p.user_email, name=p.user_name),
        role=p.role,
        workspace=WorkspaceOut(id=p.workspace_id, name=p.workspace_name, plan=p.plan),
        api_key=ApiKeyOut(id=p.key_id, name=p.key_name, prefix=p.key_prefix,
                          created_at=p.key_created_at, last_used_at=p.key_last_used_at),
    )


@operation("GET", "/initiatives", query=InitiativeListQuery, response=InitiativeList,
           summary="List initiatives",
           description="Initiatives, newest first: active ones, or archived ones.")
def list_initiatives(query: InitiativeListQuery) -> InitiativeList:
    page = initiatives.page_initiatives(
        current_principal().workspace_id,
        archived=query.archived == "true",
        limit=query.limit,
        offset=query.offset,
    )
    return InitiativeList(
        items=[InitiativeOut.model_validate(item) for item in page.items],
        pagination=Pagination(limit=query.limit, offset=query.offset, has_more=page.has_more),
    )


@operation("POST", "/initiatives", body=InitiativeCreate, response=InitiativeOut, status=201,
           summary="Create an initiative")
def create_initiative(body: InitiativeCreate) -> InitiativeOut:
    p = current_principal()
    item = initiatives.create_initiative(p.workspace_id, p.user_id, body.title, body.description)
    return InitiativeOut.model_validate(item)


@operation("GET", "/initiatives/<initiative_id>", response=InitiativeOut,
           summary="Get an initiative")
def get_initiative(initiative_id: str) -> InitiativeOut:
    item = initiatives.get_initiative(current_principal().workspace_id, initiative_id)
    return InitiativeOut.model_validate(item)


@operation("PATCH", "/initiatives/<initiative_id>", body=InitiativeUpdate, response=InitiativeOut,
           summary="Update an initiative",
           description="Change the title or description, archive or restore (there is no DELETE).")
def update_initiative(initiative_id: str, body: InitiativeUpdate) -> InitiativeOut:
    item = initiatives.get_initiative(current_principal().workspace_id, initiative_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return InitiativeOut.model_validate(initiatives.update_initiative(item, **changes))
