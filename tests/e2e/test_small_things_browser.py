"""Small things, as a person meets them: sign-in fields autocomplete
and a wrong password leaves the focus on the password with the failure read out; the nav and
the page agree on "Initiatives"; the only workspace is a label, not a control; the plan switch
buttons are one even line at every width; a re-sent create without JavaScript is a warning."""

import re

import pytest
from playwright.sync_api import expect

from fvapp.services import members

from .conftest import DESKTOP, PHONE, login, screenshot

NARROW = {"width": 320, "height": 640}
NO_MATCH = "That email and password do not match an account."


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_wrong_password_keeps_the_focus_on_the_password_and_reads_why(page_factory, demo, backend,
                                                                        javascript):
    page, watch = page_factory(javascript=javascript)
    page.goto("/login")
    email, password = page.get_by_label("Email"), page.get_by_label("Password")
    expect(email).to_have_attribute("autocomplete", "username")
    expect(password).to_have_attribute("autocomplete", "current-password")
    expect(email).to_be_focused()
    # Keyboard only: type, Tab, type, Enter.
    page.keyboard.type("ava@acme.test")
    page.keyboard.press("Tab")
    page.keyboard.type("not-her-password")
    page.keyboard.press("Enter")

    expect(page.get_by_role("alert")).to_have_text(NO_MATCH)
    expect(password).to_be_focused()  # not the body
    expect(password).to_have_accessible_description(NO_MATCH)
    expect(password).to_have_value("")
    expect(email).to_have_value("ava@acme.test")
    # Nothing typed-looking in empty fields: no placeholders on the sign-in form.
    expect(page.locator("input[placeholder]")).to_have_count(0)

    page.keyboard.type("correct-horse-battery")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Initiatives", exact=True)).to_be_visible()
    watch.assert_clean()


def test_the_nav_and_the_page_both_say_initiatives(page_factory, demo, backend):
    page, watch = page_factory()
    login(page, "ava@acme.test")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Initiatives", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Initiatives")
    expect(page).to_have_title(re.compile(r"^Initiatives · Acme Analytics"))
    expect(page.locator("body")).not_to_contain_text("Dashboard")
    page.goto("/settings/no-such-page")
    expect(page.get_by_role("link", name="Back to initiatives")).to_be_visible()
    watch.assert_clean()


def test_the_only_workspace_is_a_label_and_a_menu_is_a_control(app_context, page_factory, demo):
    page, watch = page_factory()
    login(page, "ava@acme.test")  # one workspace
    label = page.locator(".switcher-static")
    expect(label).to_contain_text("Acme Analytics")
    look = label.evaluate("""e => { const s = getComputedStyle(e);
      return [s.cursor, s.borderTopWidth, s.backgroundColor, e.tabIndex]; }""")
    assert look == ["default", "0px", "rgba(0, 0, 0, 0)", -1], look
    expect(page.locator("header").get_by_role("button", name=re.compile("Acme"))).to_have_count(0)

    members.add_member(demo.fox.id, demo.user("fred@fox.test").id, "ava@acme.test", "member")
    page.reload()  # two workspaces: now it is a menu, and looks like one
    summary = page.get_by_label(re.compile("Switch workspace"))
    expect(summary).to_have_accessible_name("Switch workspace, current: Acme Analytics Pro")
    assert summary.evaluate("e => getComputedStyle(e).cursor") == "pointer"
    assert summary.evaluate("e => getComputedStyle(e).borderTopWidth") == "1px"
    watch.assert_clean()


@pytest.mark.parametrize("size", ["desktop", "phone", "narrow"])
def test_plan_switch_buttons_are_one_even_line(page_factory, demo, backend, size):
    page, watch = page_factory(viewport={"desktop": DESKTOP, "phone": PHONE, "narrow": NARROW}[size])
    login(page, "ava@acme.test")
    page.goto("/settings/subscription")
    buttons = page.get_by_role("link", name=re.compile(r"^Switch to "))
    expect(buttons).to_have_count(3)  # Free, Team, Consultant (Pro is current)
    boxes = [b.bounding_box() for b in buttons.all()]
    assert len({round(b["height"]) for b in boxes}) == 1, boxes
    assert len({round(b["width"]) for b in boxes}) == 1, boxes
    for button in buttons.all():
        # One line of text, nothing clipped: the label fits the button and the button its card.
        lines = button.evaluate("""e => { const r = document.createRange(); r.selectNodeContents(e);
          const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top))); return tops.size; }""")
        assert lines == 1, button.inner_text()
        assert button.evaluate("e => e.scrollWidth <= e.clientWidth")
        card = button.locator("xpath=ancestor::article").bounding_box()
        box = button.bounding_box()
        assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
        if size != "desktop":
            assert box["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"subscription-{size}-{backend}")
    watch.assert_clean()


def test_a_create_resent_without_javascript_is_a_warning_not_a_success(page_factory, demo, backend):
    page, watch = page_factory(javascript=False)
    login(page, "adam@acme.test")
    page.goto("/settings/api-keys/new")
    page.get_by_label("Name").fill("CI pipeline")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Copy your new key")).to_be_visible()
    page.reload()  # the browser re-sends the POST: no second key, and no key shown again
    notice = page.get_by_role("status").filter(has_text="That key was already created")
    expect(notice).to_be_visible()
    expect(notice).to_have_class(re.compile(r"\balert-warning\b"))
    expect(notice).not_to_have_class(re.compile(r"\balert-success\b"))
    expect(notice).to_be_focused()
    expect(page.get_by_role("row").filter(has_text="CI pipeline")).to_have_count(1)
    screenshot(page, f"api-keys-resent-create-nojs-{backend}")
    watch.assert_clean()


def test_the_key_name_example_is_the_placeholder_and_the_error_says_it_once(page_factory, demo):
    page, watch = page_factory()
    login(page, "adam@acme.test")
    page.goto("/settings/api-keys")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    name = dialog.get_by_label("Name")
    expect(name).to_have_attribute("placeholder", "e.g. CI pipeline")
    expect(name).to_have_accessible_description(re.compile("A name that tells your keys apart"))
    dialog.get_by_role("button", name="Create key").click()
    # After an error: the example is in the error alone (the hint gives way), the field is empty.
    expect(name).to_have_accessible_description("Give the key a name, for example “CI pipeline”.")
    expect(name).to_be_focused()
    expect(name).to_have_value("")
    assert dialog.inner_text().count("CI pipeline") == 1
    watch.assert_clean()
