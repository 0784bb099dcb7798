"""Settings of the cache worker (env vars only)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import BaseServiceSettings, DatabaseSettings, RedisSettings


class Settings(BaseServiceSettings, RedisSettings, DatabaseSettings):
    """Exact cache in Redis, semantic cache in PostgreSQL+pgvector, embeddings from the embedder."""

    metrics_port: int = 9101
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="Default lifetime of an entry.")
    similarity_threshold: float = Field(
        default=0.70,
        ge=0,
        le=1,
        description="Cosine similarity a semantic candidate needs before the hit verifier looks at it "
        "(a pre-filter: the verifier decides; chosen on the train split by eval/train.py).",
    )
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
    flight_lease_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="A single flight's leader renews its lease (a third of this) while it works; when it stops "
        "(it died), the requests waiting on it take over within this and a sweep.",
    )
    flight_sweep_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often lapsed single flights are looked for."
    )
    feedback_window_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long a semantic hit's question is kept so the hit can be reported as wrong by its "
        "request id (0: not kept; reports then name the entry and the question). Never kept for a request "
        "with Cache-Control: no-store; deleted with its entry, namespace or tenant before then.",
    )
    redis_socket_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Longest wait on Redis for a connection or a reply: a hung Redis is an error, not a hang.",
    )
    reported_check_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        description="Longest wait on Redis for the reported-pair check: past it the semantic candidates are "
        "refused (the request goes upstream), never served unchecked.",
    )
    reported_reconcile_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often each tenant's Redis set of reported pairs is compared with PostgreSQL (and put "
        "right): bounds how long a pair whose Redis write failed could still be served.",
    )
    sweep_interval_seconds: float = Field(default=60.0, gt=0, description="How often expired rows are deleted.")
    embed_timeout_seconds: float = Field(default=2.0, gt=0, description="Semantic lookup is skipped past this.")
    # 128: at 1M entries recall@1 0.993 instead of 0.94 at 64, for +0.7 ms p50 (bench/scale.py).
    hnsw_ef_search: int = Field(default=128, ge=1)
    lookup_prefetch: int = 64
    store_prefetch: int = 32
    prices_file: str = ""
    verifier: str = Field(
        default="calibrated",
        description="Hit verifier chain, run in order: calibrated, threshold (similarity alone), llm_judge; "
        "e.g. `calibrated,llm_judge`.",
    )
    verifier_min_probability: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The calibrated verifier's operating point: higher serves fewer hits and fewer wrong ones "
        "(default: the model file's, chosen for at most 2% wrong hits).",
    )
    verifier_model_file: str = Field(default="", description="Calibrated model JSON (default: the shipped one).")
    llm_judge_base_url: str = Field(default="", description="OpenAI-compatible endpoint of the LLM judge.")
    llm_judge_api_key: SecretStr = SecretStr("")
    llm_judge_model: str = "gpt-4o-mini"
    llm_judge_timeout_seconds: float = Field(default=2.0, gt=0, description="A slower judge counts as a refusal.")
