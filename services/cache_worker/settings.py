"""Settings of the cache worker (env vars only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import BaseServiceSettings, DatabaseSettings, RedisSettings

LEARNED_PREFILTER = 0.5  # the shipped model's (model.json's suggested_similarity_threshold)
THRESHOLD_ONLY = 0.9  # the similarity alone decides


class Settings(BaseServiceSettings, RedisSettings, DatabaseSettings):
    """Exact cache in Redis, semantic cache in PostgreSQL+pgvector, embeddings from the embedder."""

    metrics_port: int = 9101
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="Default lifetime of an entry.")
    similarity_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Cosine similarity a semantic candidate needs before the hit verifier reads it (a "
        "pre-filter: the verifier decides). Default: 0.5 with the learned verifier (chosen with the shipped "
        "model's operating point), 0.9 with VERIFIER=threshold (where it is the whole decision). "
        "A client's X-Cache-Similarity-Threshold may raise it, never lower it.",
    )
    conversation_match: Literal["exact", "aligned"] = Field(
        default="aligned",
        description="How the earlier turns of a conversation must agree for a semantic hit: exact (every turn "
        "the same text, normalized) or aligned (turns aligned, each replaced or inserted one judged by the "
        "verifier at its operating point). Always exact with VERIFIER=threshold.",
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
    verifier: Literal["cross_encoder", "cross_encoder+llm_judge", "threshold"] = Field(
        default="cross_encoder",
        description="The hit verifier: cross_encoder (exact checks, then the learned pair classifier), "
        "cross_encoder+llm_judge (the LLM judge decides where the classifier is unsure), threshold (the "
        "similarity alone).",
    )
    verifier_min_probability: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The classifier's operating point: higher serves fewer hits and fewer wrong ones "
        "(default: the shipped model's, chosen on blind pairs for at most 2% wrong answers).",
    )
    verifier_model_dir: str = Field(default="", description="The classifier's directory (default: the shipped one).")
    verifier_threads: int = Field(default=1, ge=1, le=16, description="Threads running the classifier.")
    llm_judge_band: tuple[float, float] = Field(
        default=(0.2, 0.9),
        description="With cross_encoder+llm_judge: the classifier's probabilities the judge decides (low, high); "
        "above it served, below refused.",
    )
    llm_judge_base_url: str = Field(default="", description="OpenAI-compatible endpoint of the LLM judge.")
    llm_judge_api_key: SecretStr = SecretStr("")
    llm_judge_model: str = "gpt-4o-mini"
    llm_judge_timeout_seconds: float = Field(default=2.0, gt=0, description="A slower judge counts as a refusal.")

    @property
    def prefilter(self) -> float:
        """The similarity pre-filter in force (the setting, or its default for the verifier)."""
        assert self.similarity_threshold is not None  # set by _default_prefilter
        return self.similarity_threshold

    @model_validator(mode="after")
    def _default_prefilter(self) -> Settings:
        if self.similarity_threshold is None:
            self.similarity_threshold = THRESHOLD_ONLY if self.verifier == "threshold" else LEARNED_PREFILTER
        return self

    @model_validator(mode="after")
    def _conversations_need_a_reading_verifier(self) -> Settings:
        """The aligned match has the verifier read the turns; the threshold verifier reads nothing."""
        if self.verifier == "threshold":
            if "conversation_match" in self.model_fields_set and self.conversation_match == "aligned":
                raise ValueError("CONVERSATION_MATCH=aligned needs a verifier that reads text, not VERIFIER=threshold")
            self.conversation_match = "exact"
        return self
