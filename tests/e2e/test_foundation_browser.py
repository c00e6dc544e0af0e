"""A person signs in, works on the Initiatives page, switches workspace, signs out."""

import re

from playwright.sync_api import expect

from fvapp.services import initiatives, members

from .conftest import PHONE, login, screenshot


def test_sign_in_create_initiative_switch_workspace_and_log_out(app_context, page_factory, demo, backend):
    # Fred has added Ava to Fox Free, so she has a second workspace to switch to.
    members.add_member(demo.fox.id, demo.user("fred@fox.test").id, "ava@acme.test", "member")
    initiatives.create_initiative(demo.fox.id, None, "Fox launch", None)
    page, watch = page_factory()
    page.goto("/login")
    screenshot(page, f"login-desktop-{backend}")
    login(page, "ava@acme.test")
    expect(page.get_by_role("heading", name="Initiatives", exact=True)).to_be_visible()
    expect(page.locator(".topbar")).to_contain_text("Acme Analytics")

    page.get_by_label("Title").fill("Self-serve onboarding")
    page.get_by_label("Description (optional)").fill("Let teams start without a call.")
    page.get_by_role("button", name="Create initiative").click()
    expect(page.get_by_role("heading", name="Self-serve onboarding")).to_be_visible()
    screenshot(page, f"initiatives-desktop-{backend}")

    page.get_by_role("button", name="Archive Self-serve onboarding").click()
    expect(page.get_by_role("heading", name="Self-serve onboarding")).to_have_count(0)
    page.get_by_role("link", name="Show archived").click()
    expect(page.get_by_role("heading", name="Self-serve onboarding")).to_be_visible()

    page.get_by_label(re.compile("Switch workspace")).click()
    page.get_by_role("button", name=re.compile("Fox Free")).click()
    expect(page.locator(".switcher summary")).to_contain_text("Fox Free")
    expect(page.get_by_role("heading", name="Fox launch")).to_be_visible()
    expect(page.get_by_role("heading", name="Self-serve onboarding")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    watch.assert_clean()


def test_switch_workspace_and_the_choice_survives_navigation(page_factory, backend):
    page, watch = page_factory()
    login(page, "adam@acme.test")
    expect(page.locator(".topbar")).to_contain_text("Acme Analytics")
    page.get_by_label(re.compile("Switch workspace")).click()
    page.get_by_role("button", name=re.compile("Fox Free")).click()
    expect(page.locator(".switcher summary")).to_contain_text("Fox Free")
    page.get_by_role("link", name="Settings").click()
    expect(page.locator(".settings-nav")).not_to_contain_text("API Keys")
    expect(page.get_by_role("main")).to_contain_text("Fox Free")
    page.get_by_role("link", name="Initiatives").click()
    expect(page.locator(".switcher summary")).to_contain_text("Fox Free")
    page.get_by_role("button", name="Log out").click()
    watch.assert_clean()


def test_phone_width_screens(page_factory, backend):
    page, watch = page_factory(viewport=PHONE)
    page.goto("/login")
    screenshot(page, f"login-phone-{backend}")
    login(page, "ava@acme.test")
    screenshot(page, f"initiatives-phone-{backend}")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Members").click()
    screenshot(page, f"members-phone-{backend}")
    watch.assert_clean()
