"""Every page is usable at 390 px wide (nothing wider than the screen: tables scroll in their own box)
and by keyboard alone: sign in, move between pages, open a request's entry, open and close a dialog."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot
from tests.browser.helpers import make_traffic, no_horizontal_scroll, sign_in
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

PAGES = [
    ("/dashboard/", "overview"),
    ("/dashboard/requests", "usage"),
    ("/dashboard/cache", "entries"),
    ("/dashboard/feedback", "reported"),
]


def test_every_page_fits_a_phone(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    page.set_viewport_size(PHONE)
    page.goto("/dashboard/")
    assert no_horizontal_scroll(page), "sign-in"
    sign_in(page, traffic.key)
    for path, test_id in PAGES:
        page.goto(path)
        page.get_by_test_id(test_id).wait_for()
        assert no_horizontal_scroll(page), path
    page.goto(f"/dashboard/cache/entry/{traffic.miss.headers['x-cache-key']}")
    page.get_by_test_id("entry").wait_for()
    assert no_horizontal_scroll(page), "entry"
    screenshot(page, "entry-390px")
    page.goto("/dashboard/")
    page.get_by_test_id("overview").wait_for()
    screenshot(page, "overview-390px")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, stack.env["ADMIN_API_KEY"])
    page.goto("/dashboard/keys")
    page.get_by_test_id("keys").wait_for()
    assert no_horizontal_scroll(page), "keys"


def test_a_keyboard_is_enough(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    page.goto("/dashboard/")
    # The key field has the focus (once the page has rendered: typing before would lose keys): type, Enter.
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(traffic.key)
    page.keyboard.press("Enter")
    page.get_by_role("navigation", name="Pages").wait_for()

    # Tab to "Requests" and follow it.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Requests":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack.base_url}/dashboard/requests")

    # A row takes the focus and Enter opens the entry behind it.
    row = page.locator(f'tr[data-request-id="{traffic.exact.headers["x-request-id"]}"]')
    row.focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("entry").wait_for()

    # A dialog: opened from the keyboard, closed with Escape, the focus back on the page.
    page.get_by_role("button", name="Delete entry").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    # The focus moved into the dialog, onto no destructive button.
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    assert page.evaluate("document.activeElement.textContent") not in ("Delete", "Revoke key")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    page.get_by_test_id("entry").wait_for()
