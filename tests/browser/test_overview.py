"""Overview: every number shown equals /api/v1/cache/stats's for the same range; the series, the model
table and the reasons are there; the admin's tenant picker shows one tenant's numbers."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import MODEL, admin_headers, make_traffic, sign_in
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

CARDS = ["requests", "hit_rate", "tokens_saved", "cost_saved_usd", "cost_usd"]


def shown(page, test_id: str) -> float:  # type: ignore[no-untyped-def]
    return float(page.get_by_test_id(test_id).get_attribute("data-value"))


def stats(stack: Stack, headers: dict[str, str], **params: object) -> dict:
    since = time.time() - 86400
    return httpx.get(
        f"{stack.base_url}/api/v1/cache/stats", params={"since": since, **params}, headers=headers, timeout=10
    ).json()


def check_numbers(page, expected: dict) -> None:  # type: ignore[no-untyped-def]
    for name in CARDS:
        assert shown(page, f"stat-{name}") == pytest.approx(expected[name]), name
    assert shown(page, "hits-exact") == expected["hits_exact"]
    assert shown(page, "hits-semantic") == expected["hits_semantic"]
    for side in ("hit", "miss"):
        for quantile in ("p50", "p99"):
            value = expected[f"{side}_latency_ms"][quantile]
            assert shown(page, f"{side}-{quantile}") == pytest.approx(value), f"{side} {quantile}"


def test_overview_shows_what_the_stats_api_says(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    sign_in(page, traffic.key)
    overview = page.get_by_test_id("overview")
    overview.wait_for()
    expected = stats(stack, traffic.headers, bucket="hour")
    assert expected["requests"] == 4 and expected["hits_semantic"] == 1 and expected["bypasses"] == 1
    check_numbers(page, expected)
    # What a person reads, too.
    assert page.get_by_test_id("stat-requests").locator(".stat-value").inner_text() == "4"
    assert page.get_by_test_id("stat-hit_rate").locator(".stat-value").inner_text() == "50.0%"
    model_row = page.locator(f'[data-testid="models"] tr[data-model="{MODEL}"]')
    assert model_row.get_attribute("data-requests") == "4"
    bypass = page.locator('[data-testid="reasons-bypass"] tr[data-reason="cache_control_no_cache"]')
    assert bypass.get_attribute("data-value") == "1"
    # The time series is drawn: one stacked bar per series with requests in the last hour.
    page.locator(".recharts-bar-rectangle").first.wait_for()
    screenshot(page, "overview")

    # Another range (days): the numbers are still the API's.
    page.get_by_test_id("range").select_option("30d")
    page.locator('[data-testid="overview"][data-loading="false"]').wait_for()
    expected = stats(stack, traffic.headers, bucket="day", since=time.time() - 30 * 86400)
    check_numbers(page, expected)


def test_the_admin_picks_a_tenant(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    sign_in(page, stack.env["ADMIN_API_KEY"])
    page.get_by_test_id("overview").wait_for()
    everyone = stats(stack, admin_headers(stack), bucket="hour")
    assert shown(page, "stat-requests") >= traffic.sent
    assert shown(page, "stat-requests") == everyone["requests"]

    picker = page.get_by_test_id("tenant-picker")
    picker.select_option(traffic.tenant)
    page.locator('[data-testid="overview"][data-loading="false"]').wait_for()
    expect(page.get_by_test_id("stat-requests")).to_have_attribute("data-value", "4")
    check_numbers(page, stats(stack, admin_headers(stack), bucket="hour", tenant=traffic.tenant))
