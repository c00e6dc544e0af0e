"""The API reference (/api/v1/docs, Redoc) and the MCP client snippet on Settings → API Keys, in
Chromium: rendered, no CSP violation, no console error; screenshots of both."""

import json
import re

import pytest
from playwright.sync_api import expect

from .axe import audit
from .conftest import login, screenshot

LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize("width", [1280, 320])
def test_the_api_reference_renders_every_operation_with_its_curl_example(page_factory, backend, width):
    page, watch = page_factory(viewport={"width": width, "height": 800})
    # Redoc's sidebar always shows its vendor's logo from cdn.redoc.ly: the page's CSP allows
    # exactly that file. The test serves it itself (no internet needed).
    page.route(LOGO, lambda route: route.fulfill(
        status=200, content_type="image/svg+xml", body='<svg xmlns="http://www.w3.org/2000/svg"/>'))
    page.goto("/api/v1/docs")
    expect(page.get_by_text("ForceVue REST API").first).to_be_visible()
    header = page.get_by_role("banner")
    expect(header.get_by_role("link", name="ForceVue")).to_be_visible()
    back = header.get_by_role("link", name="Settings → API Keys")
    expect(back).to_have_attribute("href", "/settings/api-keys")
    for summary in ("Who am I", "List initiatives", "Create an initiative", "Get an initiative",
                    "Update an initiative"):
        expect(page.get_by_text(summary).first).to_be_attached()
    expect(page.get_by_text('Authorization: Bearer $FVAPP_KEY').first).to_be_attached()
    # Authentication and Errors come first in the menu, then the resources, Me before Initiatives.
    menu = [t.strip() for t in page.locator("[role=menuitem] > label, li[data-item-id] > label").all_inner_texts()]
    sections = [t for t in menu if t and not re.match("(get|post|patch)", t)]
    assert sections[:4] == ["Authentication", "Errors", "Me", "Initiatives"], menu
    assert menu.index("getWho am I") < menu.index("Initiatives")  # operations under their resource
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    found: list[str] = []
    audit(page, f"API reference at {width}", found)
    assert found == []
    screenshot(page, f"api-docs-{width}-{backend}")
    watch.assert_clean()
    back.click()
    expect(page).to_have_url(re.compile("/login"))  # signed out: sign in first, then the keys page


def test_the_mcp_snippet_is_shown_and_copies(page_factory, live_server):
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    snippet = page.locator("#mcp-config")
    expect(snippet).to_be_visible()
    config = json.loads(snippet.inner_text())["mcpServers"]["fvapp"]
    assert config["url"] == live_server + "/api/mcp"
    assert config["headers"]["Authorization"] == "Bearer fvk_live_YOUR_KEY"
    page.locator('[data-copy-target="mcp-config"]').click()
    expect(page.locator('[data-copy-target="mcp-config"]')).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert json.loads(copied) == json.loads(snippet.inner_text())
    snippet.scroll_into_view_if_needed()
    screenshot(page, "api-keys-mcp-snippet", full_page=True)
    watch.assert_clean()
