"""REST API v1 under /api/v1 (SPEC §5): Bearer keys only, JSON envelope on every response.
Served by the API app (fvapp/api/app.py), mounted under /api."""

from flask import Blueprint

from ..paths import API_PREFIX as PREFIX
from ..paths import API_ROOT as ROOT

bp = Blueprint("api", __name__, url_prefix=PREFIX)


def is_api_request(path: str) -> bool:
    """Whether a request path is the API app's: all of /api and below, routed or not (so an
    unknown /api/v2/… answers 404 in the envelope too), as the dispatcher (fvapp.create_app)
    splits them."""
    return path == ROOT or path.startswith(ROOT + "/")


from . import auth, views  # noqa: E402,F401
