"""Wrong-hit feedback: "wrong answer for this question" on a semantic hit, in the request log or the
entry view; from then on the pair is not served, and it is listed and exported as `make eval` pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import WATER, WATER_PARAPHRASE, chat, make_traffic, sign_in, tutor
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def test_report_from_the_request_log_then_export(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    sign_in(page, traffic.key)
    page.get_by_role("link", name="Requests").click()
    row = page.locator(f'tr[data-request-id="{traffic.semantic.headers["x-request-id"]}"]')
    # Only semantic hits can be reported.
    expect(page.get_by_role("button", name="Wrong answer for this question")).to_have_count(1)
    row.get_by_role("button", name="Wrong answer for this question").click()
    expect(row.locator(".reported")).to_have_text("Reported: not served again")
    # The page did not navigate to the entry: the button is not the row.
    assert page.url.endswith("/dashboard/requests")

    # That pair is no longer served; the entry still answers its own question.
    again = chat(stack, traffic.headers, tutor(traffic.tag, WATER_PARAPHRASE))
    assert again.headers["x-cache"] == "MISS"
    assert chat(stack, traffic.headers, tutor(traffic.tag, WATER)).headers["x-cache-match"] == "exact"

    page.get_by_role("link", name="Wrong hits").click()
    reported = page.locator('[data-testid="reported"] tbody tr[data-pair]')
    expect(reported).to_have_count(1)
    assert WATER in reported.first.inner_text() and WATER_PARAPHRASE in reported.first.inner_text()
    screenshot(page, "wrong-hits")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSONL for make eval").click()
    rows = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert [(r["a"], r["b"], r["same_answer"], r["category"]) for r in rows] == [
        (WATER, WATER_PARAPHRASE, False, "reported_wrong_hit")
    ]


def test_report_from_the_entry_view(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    sign_in(page, traffic.key)
    page.goto(f"/dashboard/cache/entry/{traffic.miss.headers['x-cache-key']}")
    served = page.locator(f'[data-testid="served"] tr[data-request-id="{traffic.semantic.headers["x-request-id"]}"]')
    assert WATER_PARAPHRASE in served.inner_text()
    served.get_by_role("button", name="Wrong answer for this question").click()
    expect(served.locator(".reported")).to_be_visible()
    assert chat(stack, traffic.headers, tutor(traffic.tag, WATER_PARAPHRASE)).headers["x-cache"] == "MISS"
    # Shown as reported when the entry is opened again.
    page.reload()
    expect(page.locator('[data-testid="served"] .reported')).to_have_count(1)


def test_the_admin_reports_any_tenants_hit(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    sign_in(page, stack.env["ADMIN_API_KEY"])  # every tenant: the row says whose hit it is
    page.get_by_role("link", name="Requests").click()
    row = page.locator(f'tr[data-request-id="{traffic.semantic.headers["x-request-id"]}"]')
    row.get_by_role("button", name="Wrong answer for this question").click()
    expect(row.locator(".reported")).to_be_visible()
    assert chat(stack, traffic.headers, tutor(traffic.tag, WATER_PARAPHRASE)).headers["x-cache"] == "MISS"
