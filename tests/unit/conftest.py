"""Fixtures of the unit tier: the local Redis, for the modules that are mostly Redis scripts (a fake
would only test the fake)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def local_redis() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(LOCAL_REDIS_URL)
    try:
        await client.ping()
    except (redis.ConnectionError, OSError):
        await client.aclose()
        pytest.skip("needs Redis at 127.0.0.1:6379")
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(local_redis: redis.Redis, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted after it."""
    prefix = f"test-{request.module.__name__.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:8]}"
    yield prefix
    keys = [key async for key in local_redis.scan_iter(f"{prefix}:*")]
    if keys:
        await local_redis.delete(*keys)
