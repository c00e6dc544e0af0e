"""Ava manages people and the plan: removes Mia after reading what it does, downgrades to Free
and back, and reads it all in Activity."""

import re

from playwright.sync_api import expect
from sqlalchemy import select

from fvapp.extensions import db
from fvapp.models import Membership
from fvapp.services import keys, members

from .conftest import PHONE, login, screenshot


def _give_mia_a_key(demo):
    """Mia made a key while she was an admin, then became a member again: it keeps working."""
    ava, mia = demo.user("ava@acme.test"), demo.user("mia@acme.test")
    mia_m = db.session.scalar(select(Membership).where(Membership.user_id == mia.id,
                                                       Membership.workspace_id == demo.acme.id))
    members.change_role(demo.acme.id, ava.id, mia_m.id, "admin")
    keys.create_key(demo.acme.id, mia.id, "Mia's report script")
    members.change_role(demo.acme.id, ava.id, mia_m.id, "member")
    keys.create_key(demo.acme.id, ava.id, "CI pipeline")


def test_remove_member_downgrade_upgrade_and_activity(app_context, page_factory, demo, backend):
    _give_mia_a_key(demo)
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Members").click()
    screenshot(page, f"members-desktop-{backend}")

    page.get_by_role("link", name="Remove Mia Member").click()
    dialog = page.get_by_role("alertdialog", name="Remove Mia Member from Acme Analytics?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("1 API key will stop working")
    expect(dialog).to_contain_text("Mia's report script")
    expect(dialog).to_contain_text("creator removed from workspace")
    expect(dialog.get_by_role("link", name="Cancel")).to_be_focused()
    screenshot(page, f"members-remove-dialog-desktop-{backend}", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("link", name="Remove Mia Member")).to_be_focused()

    page.get_by_role("link", name="Remove Mia Member").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Remove member").click()
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    expect(page.locator("#members")).to_contain_text("Mia Member was removed; 1 API key revoked.")
    expect(page.locator("#members tbody")).not_to_contain_text("mia@acme.test")

    # Role change through its dialog
    page.get_by_role("link", name="Change role of Adam Admin").click()
    role_dialog = page.get_by_role("dialog", name="Change the role of Adam Admin")
    expect(role_dialog).to_be_visible()
    screenshot(page, f"members-role-dialog-desktop-{backend}", full_page=False)
    role_dialog.get_by_role("button", name="Cancel").or_(role_dialog.get_by_role("link", name="Cancel")).click()

    # Downgrade to Free: the confirmation says what happens to keys, then API Keys vanishes
    nav = page.get_by_role("navigation", name="Settings")
    expect(nav.get_by_role("link", name="API Keys")).to_be_visible()
    nav.get_by_role("link", name="Subscription").click()
    page.get_by_role("link", name="Switch to Free").click()
    plan_dialog = page.get_by_role("dialog", name="Switch Acme Analytics to Free?")
    expect(plan_dialog).to_contain_text("1 active API key will answer 403 PAID_PLAN_REQUIRED")
    expect(plan_dialog).to_contain_text("The API Keys section will be hidden")
    screenshot(page, f"subscription-downgrade-dialog-desktop-{backend}", full_page=False)
    plan_dialog.get_by_role("button", name="Switch to Free").click()
    expect(page.get_by_text("Acme Analytics is now on the Free plan.")).to_be_visible()
    expect(nav.get_by_role("link", name="API Keys")).to_have_count(0)
    screenshot(page, f"subscription-free-desktop-{backend}")

    page.get_by_role("link", name="Switch to Pro").click()
    upgrade = page.get_by_role("dialog", name="Switch Acme Analytics to Pro?")
    expect(upgrade).to_contain_text("1 existing API key will work again")
    upgrade.get_by_role("button", name="Switch to Pro").click()
    expect(page.get_by_text("Acme Analytics is now on the Pro plan.")).to_be_visible()
    nav.get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("main")).to_contain_text("CI pipeline")
    expect(page.get_by_role("main")).to_contain_text("by Member removed")

    nav.get_by_role("link", name="Activity").click()
    activity = page.get_by_role("main")
    expect(activity).to_contain_text("Removed mia@acme.test")
    expect(activity).to_contain_text("Revoked API key Mia's report script")
    expect(activity).to_contain_text("Changed the plan (pro → free)")
    expect(activity).to_contain_text("Changed the plan (free → pro)")
    screenshot(page, f"activity-desktop-{backend}")
    watch.assert_clean()


def test_members_and_subscription_at_phone_width(page_factory, demo, backend):
    page, watch = page_factory(viewport=PHONE)
    login(page, "ava@acme.test")
    page.goto("/settings/members")
    screenshot(page, f"members-phone-manage-{backend}")
    page.get_by_role("link", name="Remove Adam Admin").click()
    expect(page.get_by_role("alertdialog")).to_be_visible()
    screenshot(page, f"members-remove-dialog-phone-{backend}", full_page=False)
    page.keyboard.press("Escape")
    page.goto("/settings/subscription")
    screenshot(page, f"subscription-phone-{backend}")
    page.goto("/settings/activity")
    screenshot(page, f"activity-phone-{backend}")
    watch.assert_clean()


def test_add_member_with_an_error_then_success(page_factory, demo, backend):
    page, watch = page_factory()
    login(page, "adam@acme.test")
    page.goto("/settings/members")
    page.get_by_label("Add a member by email").fill("nobody@nowhere.test")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_text(re.compile("No ForceVue account uses nobody@nowhere.test"))).to_be_visible()
    screenshot(page, f"members-add-error-desktop-{backend}")
    page.get_by_label("Add a member by email").fill("fred@fox.test")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#members")).to_contain_text("Fred Free was added as member.")
    expect(page.locator("#members tbody")).to_contain_text("fred@fox.test")
    watch.assert_clean()


def test_a_failed_htmx_request_says_so_instead_of_doing_nothing(app_context, page_factory, demo, backend):
    """Adam has Acme's members page open, switches to Fox Free in another tab, then clicks here:
    the server refuses (409) and the page explains it, with a Reload button."""
    from fvapp.services import plans

    plans.set_plan(demo.fox.id, "pro", None)
    page, watch = page_factory()
    login(page, "adam@acme.test")
    page.goto("/settings/members")
    other = page.context.new_page()
    other.goto("/")
    other.get_by_label(re.compile("Switch workspace")).click()
    other.get_by_role("button", name=re.compile("Fox Free")).click()
    expect(other.locator(".switcher summary")).to_contain_text("Fox Free")
    other.close()

    page.get_by_label("Add a member by email").fill("fred@fox.test")
    page.get_by_role("button", name="Add member").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You switched workspace in another tab")
    expect(alert.get_by_role("button", name="Reload")).to_be_visible()
    screenshot(page, f"request-failure-desktop-{backend}", full_page=False)
    # htmx reports the refused request on the console; that is the only error allowed here
    watch.console_errors = [e for e in watch.console_errors if "Response Status Error Code 409" not in e]
    watch.assert_clean()
