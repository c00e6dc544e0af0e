"""The API reference page at /api/v1/docs: Redoc vendored in static/, rendered from the public
OpenAPI document, with a curl example per operation."""

from __future__ import annotations

import re

from fvapp.api.operations import OPERATIONS


def test_the_reference_page_is_public_and_loads_only_vendored_code(app):
    client = app.test_client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<main id="reference" data-spec-url="/api/v1/openapi.json">' in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts == [(' src="/static/vendor/redoc/redoc.standalone.js"', ""),
                       (' src="/static/js/api_docs.js"', "")]  # nothing inline
    bundle = client.get("/static/vendor/redoc/redoc.standalone.js")
    assert bundle.status_code == 200 and len(bundle.get_data()) > 500_000
    bundle.close()

    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp  # scripts stay strict, even here
    assert "style-src 'self' 'unsafe-inline'" in csp and "worker-src 'self' blob:" in csp
    # The looser styles are this page's only: every other page keeps the strict policy.
    other = client.get("/login").headers["Content-Security-Policy"]
    assert "unsafe-inline" not in other and "blob:" not in other


def test_the_reference_has_a_way_back_short_names_by_resource_and_auth_and_errors_first(app):
    client = app.test_client()
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert 'class="docs-header"' in html and ">ForceVue<" in html
    back = re.search(r'<a class="docs-back" href="([^"]+)"', html).group(1)
    assert client.get(back).status_code in (200, 302)  # Settings → API Keys (sign-in first)
    document = client.get("/api/v1/openapi.json").get_json()
    assert [tag["name"] for tag in document["tags"]] == ["Me", "Initiatives"]
    summaries = {(method, path): (op["summary"], op["tags"])
                 for path, ops in document["paths"].items() for method, op in ops.items()}
    assert summaries == {
        ("get", "/me"): ("Who am I", ["Me"]),
        ("get", "/initiatives"): ("List initiatives", ["Initiatives"]),
        ("post", "/initiatives"): ("Create an initiative", ["Initiatives"]),
        ("get", "/initiatives/{initiative_id}"): ("Get an initiative", ["Initiatives"]),
        ("patch", "/initiatives/{initiative_id}"): ("Update an initiative", ["Initiatives"]),
    }
    description = document["info"]["description"]
    assert description.index("# Authentication") < description.index("# Errors")
    assert "| 401 | UNAUTHORIZED" in description


def test_every_operation_has_a_curl_example(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    samples = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            (sample,) = operation["x-codeSamples"]
            assert sample["lang"] == "Shell" and sample["label"] == "curl"
            samples[(method, path)] = sample["source"]
    assert len(samples) == len(OPERATIONS)
    for (method, _path), source in samples.items():
        assert source.startswith("curl -s")
        assert 'Authorization: Bearer $FVAPP_KEY' in source
        assert ("-X " + method.upper() in source) == (method != "get")
    assert "-d '{\"title\": \"Launch v2\"" in samples[("post", "/initiatives")]
    assert '"$FVAPP/initiatives/$INITIATIVE_ID"' in samples[("patch", "/initiatives/{initiative_id}")]
