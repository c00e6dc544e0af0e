"""URL roots the browser pages and the API both know (both import it; it imports neither)."""

API_ROOT = "/api"
API_PREFIX = API_ROOT + "/v1"
