"""Settings of the cache worker (env vars only)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings, DatabaseSettings, RedisSettings


class Settings(BaseServiceSettings, RedisSettings, DatabaseSettings):
    """Exact cache in Redis, semantic cache in PostgreSQL+pgvector, embeddings from the embedder."""

    metrics_port: int = 9101
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="Default lifetime of an entry.")
    similarity_threshold: float = Field(default=0.88, ge=0, le=1, description="Cosine similarity a semantic hit needs.")
    context_similarity_threshold: float = Field(
        default=0.85,
        ge=0,
        le=1,
        description="In a conversation, the earlier turns' similarity a semantic hit also needs "
        "(measured on the conversations dev set: 0 context swaps served at 0.85; bench/conversations).",
    )
    max_cacheable_temperature: float = Field(
        default=1.0, ge=0, le=2, description="Requests with a higher temperature bypass the cache."
    )
    max_entries_per_tenant: int = Field(default=100_000, gt=0, description="Least recently used entries go first.")
    flight_wait_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait on an identical request in flight before going upstream."
    )
    sweep_interval_seconds: float = Field(default=60.0, gt=0, description="How often expired rows are deleted.")
    embed_timeout_seconds: float = Field(default=2.0, gt=0, description="Semantic lookup is skipped past this.")
    hnsw_ef_search: int = Field(default=64, ge=1)
    lookup_prefetch: int = 64
    store_prefetch: int = 32
    prices_file: str = ""
