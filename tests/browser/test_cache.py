"""Cache browser: search stored prompts, open an entry (its answer rendered as markdown, never as
HTML), delete it (it stops hitting), invalidate near a prompt after a preview of each similarity,
and flush a namespace once its name is typed."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import WATER, WATER_PARAPHRASE, chat, make_traffic, sign_in, tutor
from tests.integration.stack import Stack
from tests.integration.test_accounting import new_tenant

pytestmark = pytest.mark.integration

ENTRY_ROWS = '[data-testid="entries"] tbody tr[data-entry-key]'


def open_cache(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name="Cache").click()
    page.locator('[data-testid="entries"][data-loading="false"]').wait_for()


def test_search_open_and_delete_an_entry(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    markdown = chat(
        stack, traffic.headers, tutor(traffic.tag, "Explain **bold** and `code` <img src=x onerror=alert(1)>")
    )
    stored(markdown.headers["x-cache-key"])
    sign_in(page, traffic.key)
    open_cache(page)
    expect(page.locator(ENTRY_ROWS)).to_have_count(2)
    screenshot(page, "cache")

    page.get_by_label("Prompt contains").fill("boiling point")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(ENTRY_ROWS)).to_have_count(1)
    row = page.locator(ENTRY_ROWS).first
    key = traffic.miss.headers["x-cache-key"]
    assert row.get_attribute("data-entry-key") == key
    row.locator("td").first.click()

    entry = page.get_by_test_id("entry")
    entry.wait_for()
    api = httpx.get(f"{stack.base_url}/api/v1/cache/entries/{key}", headers=traffic.headers).json()["entry"]
    assert page.get_by_test_id("entry-prompt").inner_text() == WATER
    assert page.get_by_test_id("entry-hits").get_attribute("data-value") == str(api["hit_count"])
    assert api["hit_count"] >= 1  # the semantic and the exact hit were counted
    answer = api["completion"]["choices"][0]["message"]["content"]
    assert page.get_by_test_id("entry-answer").inner_text().strip() == answer.strip()
    screenshot(page, "cache-entry")

    page.get_by_role("button", name="Delete entry").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    page.locator('[data-testid="entries"][data-loading="false"]').wait_for()
    # Deleted: neither its question nor the paraphrase is served from it any more.
    no_store = {**traffic.headers, "Cache-Control": "no-store"}
    assert chat(stack, no_store, tutor(traffic.tag, WATER)).headers["x-cache"] == "MISS"
    assert chat(stack, no_store, tutor(traffic.tag, WATER_PARAPHRASE)).headers["x-cache"] == "MISS"

    # Markdown is rendered, HTML in an answer is shown as text, never run.
    page.get_by_label("Prompt contains").fill("bold")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(ENTRY_ROWS)).to_have_count(1)
    page.locator(ENTRY_ROWS).first.locator("td").first.click()
    rendered = page.get_by_test_id("entry-answer")
    rendered.wait_for()
    assert rendered.locator("strong").inner_text() == "bold"
    assert rendered.locator("code").inner_text() == "code"
    assert rendered.locator("img").count() == 0 and "<img src=x" in rendered.inner_text()


def test_invalidate_near_a_prompt_after_a_preview(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    traffic = make_traffic(stack, stored)
    other = chat(stack, traffic.headers, tutor(traffic.tag, "Who painted the Mona Lisa?"))
    stored(other.headers["x-cache-key"])
    sign_in(page, traffic.key)
    open_cache(page)
    expect(page.locator(ENTRY_ROWS)).to_have_count(2)

    page.get_by_role("button", name="Invalidate near a prompt…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Prompt").fill(WATER_PARAPHRASE)
    dialog.get_by_label("Minimum similarity").fill("0.8")
    dialog.get_by_role("button", name="Preview what would be deleted").click()
    preview = page.locator('[data-testid="near-preview"] tr[data-entry-key]')
    expect(preview).to_have_count(1)
    body = {"prompt": WATER_PARAPHRASE, "min_similarity": 0.8, "dry_run": True}
    expected = httpx.post(f"{stack.base_url}/api/v1/cache/invalidate", json=body, headers=traffic.headers).json()
    assert preview.first.get_attribute("data-entry-key") == expected["items"][0]["key"]
    assert float(preview.first.get_attribute("data-similarity")) == pytest.approx(expected["items"][0]["similarity"])
    assert f"{expected['items'][0]['similarity']:.4f}" in preview.first.inner_text()
    screenshot(page, "cache-invalidate-preview")
    dialog.get_by_role("button", name="Delete these 1 entry").click()
    expect(page.locator(".notice")).to_contain_text("Deleted 1 entry")
    expect(page.locator(ENTRY_ROWS)).to_have_count(1)
    assert page.locator(ENTRY_ROWS).first.get_attribute("data-entry-key") == other.headers["x-cache-key"]


def test_flush_a_namespace_after_typing_its_name(page, stack: Stack, stored) -> None:  # type: ignore[no-untyped-def]
    _, headers = new_tenant(stack)
    for namespace, question in [("team-a", "First question?"), ("team-a", "Second one?"), ("team-b", "Third?")]:
        response = chat(stack, {**headers, "X-Cache-Namespace": namespace}, question)
        stored(response.headers["x-cache-key"])
    sign_in(page, headers["Authorization"].split()[1])
    open_cache(page)
    expect(page.locator(ENTRY_ROWS)).to_have_count(3)

    page.get_by_role("button", name="Flush a namespace…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Namespace", exact=True).fill("team-a")
    flush = dialog.get_by_role("button", name="Flush namespace")
    assert flush.is_disabled()
    dialog.get_by_label("Type the namespace's name again").fill("team-")
    assert flush.is_disabled()
    dialog.get_by_label("Type the namespace's name again").fill("team-a")
    flush.click()
    expect(page.locator(".notice")).to_contain_text('Flushed namespace "team-a": 2 entries deleted.')
    expect(page.locator(ENTRY_ROWS)).to_have_count(1)
    assert chat(stack, {**headers, "X-Cache-Namespace": "team-a"}, "First question?").headers["x-cache"] == "MISS"
