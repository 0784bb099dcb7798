"""Keys (admin key): create a tenant, create a key with limits (shown once, with a copy button), see its
last use, revoke it; a tenant's key has no Keys page."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import sign_in
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def test_the_admin_creates_a_tenant_and_a_key_and_revokes_it(page, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, stack.env["ADMIN_API_KEY"])
    page.get_by_role("link", name="Keys").click()
    name = f"ui-{uuid.uuid4().hex[:8]}"
    page.get_by_role("textbox", name="New tenant").fill(name)
    page.get_by_role("button", name="Create tenant").click()
    expect(page.get_by_test_id("tenants").get_by_role("button", name=name)).to_be_visible()
    # The tenant picker knows it too.
    expect(page.get_by_test_id("tenant-picker").locator(f'option[value="{name}"]')).to_have_count(1)

    form = page.get_by_role("form", name="New key")
    form.get_by_label("Tenant").select_option(name)
    form.get_by_label("Name").fill("backend")
    form.get_by_label("Requests per minute").fill("600")
    form.get_by_label("Tokens per day").fill("2000000")
    form.get_by_label("Allowed models").fill("gpt-4o-mini, gpt-4o")
    form.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Key created")
    key = dialog.get_by_test_id("new-key").input_value()
    assert key.startswith("lcp-")
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == key
    screenshot(page, "keys-created")
    dialog.get_by_role("button", name="Done").click()

    # The key works, with the limits it was given.
    me = httpx.get(f"{stack.base_url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert (me["tenant"], me["rpm_limit"], me["tokens_per_day"]) == (name, 600, 2_000_000)
    assert me["allowed_models"] == ["gpt-4o", "gpt-4o-mini"]

    page.get_by_test_id("tenant-picker").select_option(name)
    row = page.locator('[data-testid="keys"] tbody tr[data-key-id]')
    expect(row).to_have_count(1)
    page.reload()  # the list again: its last use is the resolution above
    page.get_by_test_id("keys").wait_for()
    assert "never" not in row.get_by_test_id("last-used").inner_text()
    assert key not in page.content()  # shown once, never listed
    screenshot(page, "keys")

    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(row).to_contain_text("revoked")
    refused = httpx.get(f"{stack.base_url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401


def test_a_tenant_key_has_no_keys_page(page, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, stack.env["DEV_API_KEY"])
    expect(page.get_by_role("link", name="Keys")).to_have_count(0)
    page.goto("/dashboard/keys")
    expect(page.get_by_text("Managing tenants and keys needs the admin key.")).to_be_visible()
