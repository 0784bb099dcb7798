"""Signing in: a wrong key gets a clear message; a tenant's key sees its tenant; the key lives in this
tab's sessionStorage only (never in the URL or localStorage); signing out clears it."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.browser.helpers import sign_in
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def test_a_wrong_key_is_refused_with_a_clear_message(page, stack: Stack, console) -> None:  # type: ignore[no-untyped-def]
    console.expect_status(401)  # the browser logs the refused /api/v1/me
    page.goto("/dashboard/")
    page.get_by_label("API key").fill("lcp-this-is-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not accepted" in alert.inner_text() and "unknown or revoked" in alert.inner_text()
    assert page.evaluate("sessionStorage.length") == 0
    screenshot(page, "sign-in")


def test_the_key_stays_in_the_session_and_sign_out_clears_it(page, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    key = stack.env["DEV_API_KEY"]
    sign_in(page, key)
    assert page.get_by_test_id("signed-in-tenant").inner_text() == "dev"
    assert key not in page.url
    assert page.evaluate("localStorage.length") == 0
    assert key in page.evaluate("Object.values(sessionStorage)")
    # A reload of the tab keeps the session; a new tab (context) does not have it.
    page.reload()
    page.get_by_role("navigation", name="Pages").wait_for()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    page.get_by_label("API key").wait_for()  # still signed out
