"""URL roots the browser pages and the API both know (both import it; it imports neither)."""

API_ROOT = "/api"
API_PREFIX = API_ROOT + "/v1"
# Where the API reference links back to (it may be served by the API's own app, which cannot
# build the browser pages' URLs); tests/e2e/test_api_docs_browser.py follows it.
SETTINGS_API_KEYS = "/settings/api-keys"
