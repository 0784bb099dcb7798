"""Requests: the usage log as the API pages it, with a cache-status badge per row (a semantic hit's
similarity, a bypass's reason), filters, server-side paging, and a row that opens its cache entry."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import chat, make_traffic, sign_in, tutor, wait_for_usage
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

ROWS = '[data-testid="usage"] tbody tr[data-request-id]'


def usage(stack: Stack, headers: dict[str, str], **params: object) -> list[dict]:
    return httpx.get(f"{stack.base_url}/api/v1/usage", params=params, headers=headers, timeout=10).json()["data"]


def rows(page):  # type: ignore[no-untyped-def]
    page.locator('[data-testid="usage"][data-loading="false"]').wait_for()
    return page.locator(ROWS)


def test_the_log_shows_each_request_with_its_cache_status(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    sign_in(page, traffic.key)
    page.get_by_role("link", name="Requests").click()
    shown = rows(page)
    api_rows = usage(stack, traffic.headers, limit=50)
    assert [shown.nth(i).get_attribute("data-request-id") for i in range(shown.count())] == [
        row["request_id"] for row in api_rows
    ]
    semantic = page.locator(f'tr[data-request-id="{traffic.semantic.headers["x-request-id"]}"]')
    similarity = float(traffic.semantic.headers["x-cache-similarity"])
    assert f"HIT semantic {similarity:.4f}" in semantic.inner_text()
    assert "HIT exact" in page.locator(f'tr[data-request-id="{traffic.exact.headers["x-request-id"]}"]').inner_text()
    bypass = page.locator(f'tr[data-request-id="{traffic.bypass.headers["x-request-id"]}"]').inner_text()
    assert "BYPASS cache_control_no_cache" in bypass
    assert "MISS" in page.locator(f'tr[data-request-id="{traffic.miss.headers["x-request-id"]}"]').inner_text()
    screenshot(page, "requests")

    # A filter is applied by the server.
    page.get_by_test_id("filter-result").select_option("hit_semantic")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator('[data-testid="usage"] tbody tr[data-result]')).to_have_count(1)
    assert rows(page).first.get_attribute("data-result") == "hit_semantic"

    # The semantic hit's row opens the entry that answered it.
    page.get_by_role("button", name="Clear").click()
    rows(page)
    page.locator(f'tr[data-request-id="{traffic.semantic.headers["x-request-id"]}"] td').first.click()
    entry = page.get_by_test_id("entry")
    entry.wait_for()
    assert entry.get_attribute("data-entry-key") == traffic.semantic.headers["x-cache-key"]
    assert page.get_by_test_id("entry-prompt").inner_text() == "What is the boiling point of water at sea level?"


def test_pages_come_from_the_server(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    for _ in range(24):  # 28 requests: two pages of 25
        chat(stack, traffic.headers, tutor(traffic.tag, "What is the boiling point of water at sea level?"))
    wait_for_usage(stack, traffic.headers, 28)
    sign_in(page, traffic.key)
    page.get_by_role("link", name="Requests").click()
    rows(page)
    page.get_by_label("Rows").select_option("25")
    expect(page.locator(ROWS)).to_have_count(25)
    first_page = [r["request_id"] for r in usage(stack, traffic.headers, limit=25)]
    shown = rows(page)
    assert [shown.nth(i).get_attribute("data-request-id") for i in range(25)] == first_page
    page.get_by_role("button", name="Older →").click()
    expect(page.locator(ROWS)).to_have_count(3)
    assert page.get_by_test_id("page-number").inner_text() == "Page 2"
    assert page.get_by_role("button", name="Older →").is_disabled()
    page.get_by_role("button", name="← Newer").click()
    expect(page.locator(ROWS)).to_have_count(25)
