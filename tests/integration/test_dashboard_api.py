"""The API the dashboard uses, through the real services: who am I, usage rows that name their entry and
similarity, the caller's own cache (browse, delete, invalidate with a preview), wrong-hit feedback
(never served again, exported for `make eval`), the split latencies and refusal reasons of the stats,
and the one log line per request."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import redis

from services.cache_worker.feedback import pair_hash
from tests.conftest import wait_until
from tests.integration.stack import Stack
from tests.integration.test_accounting import new_tenant

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
WATER = "What is the boiling point of water at sea level?"
WATER_PARAPHRASE = "What is water's boiling point at sea level?"


def admin(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}


def tutor(tag: str, question: str) -> list[dict[str, Any]]:
    """A partition of its own (the system prompt), so tests never share entries."""
    return [{"role": "system", "content": f"You are a physics tutor ({tag})."}, {"role": "user", "content": question}]


def chat(stack: Stack, headers: dict[str, str], messages: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": messages, **extra},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def semantic_hit(stack: Stack, stored, headers: dict[str, str], tag: str) -> tuple[httpx.Response, httpx.Response]:  # type: ignore[no-untyped-def]
    """Store WATER in a partition of its own, then ask its paraphrase: (the miss, the semantic hit)."""
    first = chat(stack, headers, tutor(tag, WATER))
    assert first.headers["x-cache"] == "MISS"
    stored(first.headers["x-cache-key"])
    hit = chat(stack, headers, tutor(tag, WATER_PARAPHRASE))
    assert (hit.headers["x-cache"], hit.headers.get("x-cache-match")) == ("HIT", "semantic"), hit.headers
    return first, hit


def usage_row(stack: Stack, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        page = httpx.get(
            f"{stack.base_url}/api/v1/usage", params={"request_id": request_id}, headers=headers, timeout=10
        ).json()
        return page["data"][0] if page["data"] else None

    return wait_until(find, timeout=10)


def test_me_says_who_the_key_is(stack: Stack) -> None:
    me = httpx.get(f"{stack.base_url}/api/v1/me", headers=stack.auth)
    assert me.status_code == 200
    assert me.json()["tenant"] == "dev" and me.json()["admin"] is False and me.json()["key_id"]
    assert me.headers["cache-control"] == "no-store"
    assert httpx.get(f"{stack.base_url}/api/v1/me", headers=admin(stack)).json()["admin"] is True
    wrong = httpx.get(f"{stack.base_url}/api/v1/me", headers={"Authorization": "Bearer lcp-not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_usage_rows_name_their_entry_and_similarity(stack: Stack, stored) -> None:
    _, key = new_tenant(stack)
    first, hit = semantic_hit(stack, stored, key, uuid.uuid4().hex[:6])
    miss_row = usage_row(stack, key, first.headers["x-request-id"])
    assert miss_row["result"] == "miss" and miss_row["cache_key"] == first.headers["x-cache-key"]
    hit_row = usage_row(stack, key, hit.headers["x-request-id"])
    assert hit_row["result"] == "hit_semantic"
    assert hit_row["cache_key"] == hit.headers["x-cache-key"] == first.headers["x-cache-key"]
    assert hit_row["similarity"] == pytest.approx(float(hit.headers["x-cache-similarity"]), abs=1e-4)
    by_entry = httpx.get(
        f"{stack.base_url}/api/v1/usage", params={"cache_key": first.headers["x-cache-key"]}, headers=key
    ).json()
    assert {row["request_id"] for row in by_entry["data"]} == {
        first.headers["x-request-id"],
        hit.headers["x-request-id"],
    }


def test_a_tenant_browses_and_deletes_its_own_entries_only(stack: Stack, stored) -> None:
    alice_name, alice = new_tenant(stack)
    bob_name, bob = new_tenant(stack)
    tag = uuid.uuid4().hex[:6]
    first = chat(stack, alice, tutor(tag, WATER))
    key = first.headers["x-cache-key"]
    stored(key)

    listed = httpx.get(f"{stack.base_url}/api/v1/cache/entries", params={"q": "boiling"}, headers=alice).json()
    assert listed["total"] == 1 and listed["items"][0]["key"] == key and listed["items"][0]["prompt"] == WATER
    shown = httpx.get(f"{stack.base_url}/api/v1/cache/entries/{key}", headers=alice).json()
    assert shown["entry"]["completion"]["choices"][0]["message"]["content"]
    assert httpx.get(f"{stack.base_url}/api/v1/cache/entries/{key}", headers=bob).status_code == 404
    assert (
        httpx.get(f"{stack.base_url}/api/v1/cache/entries", params={"tenant": alice_name}, headers=bob).status_code
        == 403
    )
    assert httpx.get(f"{stack.base_url}/api/v1/cache/entries", headers=admin(stack)).status_code == 400
    as_admin = httpx.get(f"{stack.base_url}/api/v1/cache/entries", params={"tenant": alice_name}, headers=admin(stack))
    assert as_admin.json()["total"] == 1
    assert httpx.delete(f"{stack.base_url}/api/v1/cache/entries/{key}", headers=bob).status_code == 404
    assert bob_name != alice_name

    deleted = httpx.delete(f"{stack.base_url}/api/v1/cache/entries/{key}", headers=alice)
    assert deleted.status_code == 200 and deleted.json()["keys"] == [key]
    assert httpx.delete(f"{stack.base_url}/api/v1/cache/entries/{key}", headers=alice).status_code == 404
    # Gone from both stores: neither its paraphrase nor the same question is served from it.
    no_store = {**alice, "Cache-Control": "no-store"}
    assert chat(stack, no_store, tutor(tag, WATER_PARAPHRASE)).headers["x-cache"] == "MISS"
    assert chat(stack, no_store, tutor(tag, WATER)).headers["x-cache"] == "MISS"


def test_invalidate_near_previews_then_deletes_what_it_showed(stack: Stack, stored) -> None:
    _, key = new_tenant(stack)
    tag = uuid.uuid4().hex[:6]
    water = chat(stack, key, tutor(tag, WATER))
    stored(water.headers["x-cache-key"])
    other = chat(stack, key, tutor(tag, "Who painted the Mona Lisa?"))
    stored(other.headers["x-cache-key"])

    body = {"prompt": WATER_PARAPHRASE, "min_similarity": 0.8, "dry_run": True}
    preview = httpx.post(f"{stack.base_url}/api/v1/cache/invalidate", json=body, headers=key, timeout=10)
    assert preview.status_code == 200, preview.text
    items = preview.json()["items"]
    assert [item["key"] for item in items] == [water.headers["x-cache-key"]]
    assert 0.8 <= items[0]["similarity"] <= 1
    # The preview deleted nothing.
    assert httpx.get(f"{stack.base_url}/api/v1/cache/entries", headers=key).json()["total"] == 2

    body = {**body, "dry_run": False, "entry_ids": [items[0]["id"]]}
    deleted = httpx.post(f"{stack.base_url}/api/v1/cache/invalidate", json=body, headers=key, timeout=10).json()
    assert deleted["keys"] == [water.headers["x-cache-key"]]
    assert httpx.get(f"{stack.base_url}/api/v1/cache/entries", headers=key).json()["total"] == 1
    too_loose = httpx.post(
        f"{stack.base_url}/api/v1/cache/invalidate", json={"prompt": "x", "min_similarity": 0.1}, headers=key
    )
    assert too_loose.status_code == 400 and too_loose.json()["error"]["param"] == "min_similarity"


def test_a_reported_pair_is_never_served_again(stack: Stack, stored, redis_client: redis.Redis) -> None:
    tenant, key = new_tenant(stack)
    tag = uuid.uuid4().hex[:6]
    first, hit = semantic_hit(stack, stored, key, tag)
    entry_key = first.headers["x-cache-key"]

    # An exact hit is the entry's own question: nothing to report by its request id.
    exact = chat(stack, key, tutor(tag, WATER))
    assert exact.headers["x-cache-match"] == "exact"
    refused = httpx.post(
        f"{stack.base_url}/api/v1/cache/feedback", json={"request_id": exact.headers["x-request-id"]}, headers=key
    )
    assert refused.status_code == 404 and refused.json()["error"]["type"] == "not_found_error"
    # Nor may another tenant report this one's hit.
    _, stranger = new_tenant(stack)
    report = {"request_id": hit.headers["x-request-id"], "note": "the paraphrase asks the same"}
    assert httpx.post(f"{stack.base_url}/api/v1/cache/feedback", json=report, headers=stranger).status_code == 404

    created = httpx.post(f"{stack.base_url}/api/v1/cache/feedback", json=report, headers=key, timeout=10)
    assert created.status_code == 201, created.text
    pair = created.json()
    assert (pair["entry_key"], pair["asked_prompt"], pair["stored_prompt"]) == (entry_key, WATER_PARAPHRASE, WATER)
    again = httpx.post(f"{stack.base_url}/api/v1/cache/feedback", json=report, headers=key, timeout=10)
    assert again.status_code == 200 and again.json()["created"] is False

    # The pair is refused; the entry still serves its own question, and the asked one gets its own answer.
    after = chat(stack, key, tutor(tag, WATER_PARAPHRASE))
    assert after.headers["x-cache"] == "MISS"
    assert chat(stack, key, tutor(tag, WATER)).headers["x-cache-match"] == "exact"
    refusals = usage_row(stack, key, after.headers["x-request-id"])["refusals"]
    assert "reported_wrong_hit" in refusals

    # After a Redis restart (the sets gone) the check asks PostgreSQL, and the sets are rebuilt. The
    # asked question's own answer goes first, so that it reaches the semantic lookup again.
    stored(after.headers["x-cache-key"])
    assert httpx.delete(f"{stack.base_url}/api/v1/cache/entries/{after.headers['x-cache-key']}", headers=key).is_success
    prefix = stack.env["REDIS_PREFIX"]
    redis_client.delete(f"{prefix}:reported:_loaded", f"{prefix}:reported:t:{tenant}")
    assert chat(stack, key, tutor(tag, WATER_PARAPHRASE)).headers["x-cache"] == "MISS"
    wait_until(lambda: redis_client.exists(f"{prefix}:reported:_loaded"), timeout=10)
    assert redis_client.sismember(f"{prefix}:reported:t:{tenant}", pair["pair_hash"])

    stats = httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=key).json()
    assert stats["reasons"]["refused"].get("reported_wrong_hit", 0) >= 1

    hits = httpx.get(f"{stack.base_url}/api/v1/cache/entries/{entry_key}/hits", headers=key).json()["items"]
    assert [(h["request_id"], h["reported"]) for h in hits] == [(hit.headers["x-request-id"], True)]

    listed = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", headers=key).json()
    assert listed["total"] == 1 and listed["data"][0]["pair_hash"] == pair["pair_hash"]
    export = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", params={"format": "jsonl"}, headers=key)
    assert export.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert rows == [
        {
            "id": pair["pair_hash"][:16],
            "a": WATER,
            "b": WATER_PARAPHRASE,
            "same_answer": False,
            "category": "reported_wrong_hit",
        }
    ]


def test_feedback_by_cache_key_and_question(stack: Stack, stored) -> None:
    _, key = new_tenant(stack)
    tag = uuid.uuid4().hex[:6]
    first = chat(stack, key, tutor(tag, WATER))
    stored(first.headers["x-cache-key"])
    url = f"{stack.base_url}/api/v1/cache/feedback"
    question = tutor(tag, WATER_PARAPHRASE)
    body = {"cache_key": first.headers["x-cache-key"], "messages": question}
    assert httpx.post(url, json=body, headers=key, timeout=10).status_code == 201
    assert chat(stack, key, question).headers["x-cache"] == "MISS"

    for bad in [
        {},
        {"request_id": "r", "cache_key": "k"},
        {"cache_key": first.headers["x-cache-key"]},
        {"cache_key": first.headers["x-cache-key"], "prompt": "a", "messages": question},
        {"cache_key": first.headers["x-cache-key"], "prompt": WATER},  # its own question
        {"cache_key": first.headers["x-cache-key"], "messages": [{"role": "assistant", "content": "hi"}]},
    ]:
        response = httpx.post(url, json=bad, headers=key, timeout=10)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["message"]
    missing = httpx.post(url, json={"cache_key": "nope", "prompt": "x"}, headers=key, timeout=10)
    assert missing.status_code == 404


def test_stats_split_latency_of_hits_and_misses(stack: Stack, stored) -> None:
    _, key = new_tenant(stack)
    semantic_hit(stack, stored, key, uuid.uuid4().hex[:6])
    stats = wait_until(
        lambda: (s := httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=key).json())["requests"] == 2 and s
    )
    assert stats["hit_latency_ms"]["p50"] is not None and stats["miss_latency_ms"]["p99"] is not None
    # The mock upstream takes 20 ms: a miss is slower than a hit.
    assert stats["miss_latency_ms"]["p50"] > stats["hit_latency_ms"]["p50"]
    assert stats["models"][0]["hit_latency_ms"]["p50"] == stats["hit_latency_ms"]["p50"]


def test_each_request_is_one_log_line_without_prompt_or_key(stack: Stack, stored) -> None:
    _, key = new_tenant(stack)
    _, hit = semantic_hit(stack, stored, key, uuid.uuid4().hex[:6])
    request_id = hit.headers["x-request-id"]
    line = wait_until(
        lambda: next((line for line in stack.logs("gateway").splitlines() if f"id={request_id}" in line), None)
    )
    assert "request HIT match=semantic similarity=" in line and f"model={MODEL}" in line and "latency_ms=" in line
    assert "tenant=t-" in line
    logs = stack.logs("gateway")
    assert "boiling" not in logs and key["Authorization"].split()[1] not in logs


# --- what wrong-hit feedback keeps, and for how long --------------------------------------------


def pg_rows(stack: Stack, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def in_reported_set(stack: Stack, client: redis.Redis, tenant: str, digest: str) -> bool:
    """Whether any Redis set of the tenant's reported pairs holds the pair (whatever the key layout)."""
    prefix = stack.env["REDIS_PREFIX"]
    return any(
        client.type(key) == b"set" and client.sismember(key, digest)
        for key in client.scan_iter(f"{prefix}:reported*", count=1000)
        if key.decode().endswith(f":{tenant}")
    )


def reported_sets(stack: Stack, client: redis.Redis, tenant: str) -> list[bytes]:
    prefix = stack.env["REDIS_PREFIX"]
    return [k for k in client.scan_iter(f"{prefix}:reported*", count=1000) if k.decode().endswith(f":{tenant}")]


def served_hits(stack: Stack, headers: dict[str, str], entry_key: str) -> list[dict[str, Any]]:
    """The hits the entry's view lists (the cache worker writes what it holds first)."""
    response = httpx.get(f"{stack.base_url}/api/v1/cache/entries/{entry_key}/hits", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def report(stack: Stack, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    created = httpx.post(
        f"{stack.base_url}/api/v1/cache/feedback", json={"request_id": request_id}, headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    return created.json()


def test_a_no_store_request_leaves_no_question_behind(stack: Stack, stored) -> None:
    tenant, key = new_tenant(stack)
    tag = uuid.uuid4().hex[:6]
    first = chat(stack, key, tutor(tag, WATER))
    stored(first.headers["x-cache-key"])
    hit = chat(stack, {**key, "Cache-Control": "no-store"}, tutor(tag, WATER_PARAPHRASE))
    assert (hit.headers["x-cache"], hit.headers.get("x-cache-match")) == ("HIT", "semantic"), hit.headers

    assert served_hits(stack, key, first.headers["x-cache-key"]) == []
    assert pg_rows(stack, "SELECT asked_prompt FROM served_pairs WHERE tenant = %s", tenant) == []
    by_id = httpx.post(
        f"{stack.base_url}/api/v1/cache/feedback", json={"request_id": hit.headers["x-request-id"]}, headers=key
    )
    assert by_id.status_code == 404


def test_flushing_a_tenant_forgets_its_questions_and_reports(stack: Stack, stored, redis_client: redis.Redis) -> None:
    tenant, key = new_tenant(stack)
    _, hit = semantic_hit(stack, stored, key, uuid.uuid4().hex[:6])
    pair = report(stack, key, hit.headers["x-request-id"])
    assert in_reported_set(stack, redis_client, tenant, pair["pair_hash"])
    assert pg_rows(stack, "SELECT count(*) FROM served_pairs WHERE tenant = %s", tenant) == [(1,)]

    flushed = httpx.delete(f"{stack.base_url}/api/v1/admin/cache/tenants/{tenant}", headers=admin(stack), timeout=10)
    assert flushed.status_code == 200, flushed.text

    listed = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", headers=key).json()
    assert (listed["total"], listed["data"]) == (0, [])
    assert pg_rows(stack, "SELECT count(*) FROM served_pairs WHERE tenant = %s", tenant) == [(0,)]
    assert pg_rows(stack, "SELECT count(*) FROM reported_pairs WHERE tenant = %s", tenant) == [(0,)]
    assert reported_sets(stack, redis_client, tenant) == []


def test_flushing_a_namespace_forgets_only_its_questions(stack: Stack, stored, redis_client: redis.Redis) -> None:
    tenant, key = new_tenant(stack)
    pairs = {}
    for namespace in ("team-a", "team-b"):
        headers = {**key, "X-Cache-Namespace": namespace}
        _, hit = semantic_hit(stack, stored, headers, uuid.uuid4().hex[:6])
        pairs[namespace] = (hit.headers["x-request-id"], report(stack, headers, hit.headers["x-request-id"]))

    flushed = httpx.delete(f"{stack.base_url}/api/v1/cache/namespaces/team-a", headers=key, timeout=10)
    assert flushed.status_code == 200, flushed.text

    (kept_request, kept_pair), (gone_request, gone_pair) = pairs["team-b"], pairs["team-a"]
    listed = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", headers=key).json()
    assert [item["pair_hash"] for item in listed["data"]] == [kept_pair["pair_hash"]]
    assert pg_rows(stack, "SELECT request_id FROM served_pairs WHERE tenant = %s", tenant) == [(kept_request,)]
    assert in_reported_set(stack, redis_client, tenant, kept_pair["pair_hash"])
    assert not in_reported_set(stack, redis_client, tenant, gone_pair["pair_hash"])
    assert gone_request != kept_request


def test_deleting_an_entry_forgets_the_questions_it_answered(stack: Stack, stored) -> None:
    tenant, key = new_tenant(stack)
    first, hit = semantic_hit(stack, stored, key, uuid.uuid4().hex[:6])
    entry_key = first.headers["x-cache-key"]
    assert [h["request_id"] for h in served_hits(stack, key, entry_key)] == [hit.headers["x-request-id"]]

    assert httpx.delete(f"{stack.base_url}/api/v1/cache/entries/{entry_key}", headers=key).status_code == 200
    assert pg_rows(stack, "SELECT request_id FROM served_pairs WHERE tenant = %s", tenant) == []


def test_a_long_question_is_kept_cut_but_still_refused_whole(stack: Stack, stored) -> None:
    tenant, key = new_tenant(stack)
    first = chat(stack, key, tutor(uuid.uuid4().hex[:6], WATER))
    stored(first.headers["x-cache-key"])
    question = WATER_PARAPHRASE + " Explain." * 11_000  # ~99,000 characters
    body = {"cache_key": first.headers["x-cache-key"], "prompt": question}
    created = httpx.post(f"{stack.base_url}/api/v1/cache/feedback", json=body, headers=key, timeout=10)
    assert created.status_code == 201, created.text

    kept = pg_rows(stack, "SELECT length(asked_prompt), pair_hash FROM reported_pairs WHERE tenant = %s", tenant)
    assert len(kept) == 1 and kept[0][0] <= 10_000
    # The lookup's check hashes the whole question: the pair is known by that hash.
    assert kept[0][1] == pair_hash(tenant, first.headers["x-cache-key"], question, None)
    listed = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", headers=key).json()["data"]
    assert len(listed[0]["asked_prompt"]) <= 10_000


def test_a_tenant_named_loaded_keeps_every_check_in_redis(stack: Stack, stored, redis_client: redis.Redis) -> None:
    """The tenant named like the marker key of the sets: its reports must not wipe the marker (every lookup
    of every tenant would then ask PostgreSQL) nor be lost."""
    name = "loaded"
    created = httpx.post(f"{stack.base_url}/api/v1/admin/tenants", json={"name": name}, headers=admin(stack))
    assert created.status_code == 201, created.text
    made = httpx.post(f"{stack.base_url}/api/v1/admin/keys", json={"tenant": name, "name": "t"}, headers=admin(stack))
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    tag = uuid.uuid4().hex[:6]
    _, hit = semantic_hit(stack, stored, key, tag)
    failures_before = redis_failures(stack)

    pair = report(stack, key, hit.headers["x-request-id"])
    after = chat(stack, key, tutor(tag, WATER_PARAPHRASE))
    assert after.headers["x-cache"] == "MISS"
    assert "reported_wrong_hit" in usage_row(stack, key, after.headers["x-request-id"])["refusals"]
    assert in_reported_set(stack, redis_client, name, pair["pair_hash"])
    assert redis_failures(stack) == failures_before


def redis_failures(stack: Stack) -> float:
    """How often the cache worker's reported-pair check or report went without Redis."""
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['cache_worker']}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("llmcache_cache_dependency_failures_total{") and 'dependency="redis"' in line:
            if 'operation="reported_pairs"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- the export and the edge ----------------------------------------------------------------------


def seed_reported(stack: Stack, tenant: str, count: int, long_text: int = 0) -> None:
    """Reported pairs straight into PostgreSQL (as an older version, which kept any length, left them)."""
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reported_pairs (pair_hash, tenant, entry_key, stored_prompt, asked_prompt, reported_at)"
                " VALUES (%s, %s, %s, %s, %s, now() - make_interval(secs => %s))",
                [
                    (
                        uuid.uuid4().hex * 2,
                        tenant,
                        f"k{i}",
                        f"stored {i}" + "x" * long_text,
                        f"asked {i}" + "y" * long_text,
                        i,
                    )
                    for i in range(count)
                ],
            )


def test_the_jsonl_export_holds_every_pair(stack: Stack) -> None:
    tenant, key = new_tenant(stack)
    seed_reported(stack, tenant, 260)
    seed_reported(stack, tenant, 3, long_text=100_000)
    export = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", params={"format": "jsonl"}, headers=key, timeout=60)
    assert export.status_code == 200, export.text
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert len(rows) == 263 and export.headers["x-total-count"] == "263"
    assert len({row["id"] for row in rows}) == 263
    assert max(len(row["b"]) for row in rows) <= 10_000

    page = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", params={"limit": 263}, headers=key, timeout=60)
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 263 and len(page.json()["data"]) == 263
    assert max(len(item["asked_prompt"]) for item in page.json()["data"]) <= 10_000
    too_many = httpx.get(f"{stack.base_url}/api/v1/cache/feedback", params={"limit": 1001}, headers=key)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"
    as_admin = httpx.get(
        f"{stack.base_url}/api/v1/cache/feedback", params={"format": "jsonl", "tenant": tenant}, headers=admin(stack)
    )
    assert len(as_admin.text.splitlines()) == 263


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("9999-12-31T23:59:59-14:00", 400),  # year 10000 in UTC
        ("0001-01-01T00:00:00+01:00", 400),  # year 0 in UTC
        ("0001-01-01T00:00:00", 200),  # UTC (no zone): the first second there is
        ("9999-12-31T23:59:59Z", 200),
    ],
)
def test_a_time_out_of_range_is_refused_at_the_edge(stack: Stack, moment: str, status: int) -> None:
    tenant, key = new_tenant(stack)
    for url, headers, params in [
        (f"{stack.base_url}/api/v1/cache/entries", key, {}),
        (f"{stack.base_url}/api/v1/admin/cache/entries", admin(stack), {"tenant": tenant}),
    ]:
        for name in ("created_after", "created_before"):
            response = httpx.get(url, params={**params, name: moment}, headers=headers, timeout=30)
            assert response.status_code == status, (url, name, response.status_code, response.text)
            if status == 400:
                assert response.json()["error"]["param"] == name
