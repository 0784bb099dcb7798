"""Settings of the cache worker (env vars only)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings, DatabaseSettings, RedisSettings


class Settings(BaseServiceSettings, RedisSettings, DatabaseSettings):
    """Exact cache in Redis, semantic cache in PostgreSQL+pgvector, embeddings from the embedder."""

    metrics_port: int = 9101
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="Default lifetime of an entry.")
    similarity_threshold: float = Field(default=0.88, ge=0, le=1, description="Cosine similarity a semantic hit needs.")
    embed_timeout_seconds: float = Field(default=2.0, gt=0, description="Semantic lookup is skipped past this.")
    hnsw_ef_search: int = Field(default=64, ge=1)
    lookup_prefetch: int = 64
    store_prefetch: int = 32
    prices_file: str = ""
