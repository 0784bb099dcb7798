"""The cache worker's Prometheus metrics."""

from prometheus_client import Counter, Histogram

LOOKUPS = Counter(
    "llmcache_cache_lookups_total",
    "Cache lookups by result (hit_exact, hit_semantic, miss, bypass) and reason.",
    ["result", "reason"],
)
STAGE_SECONDS = Histogram(
    "llmcache_cache_lookup_stage_seconds",
    "Time spent per lookup stage (exact, embedding, vector_search, verifier: all candidates at once, total).",
    ["stage"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.125, 0.25, 0.5, 1, 2),
)
BEST_SIMILARITY = Histogram(
    "llmcache_cache_best_similarity",
    "Cosine similarity of the best semantic candidate, on hits and misses alike.",
    ["result"],
    buckets=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0),
)
DEGRADED = Counter(
    "llmcache_cache_dependency_failures_total",
    "Lookups or stores that went on without a dependency (redis, postgres, embedder).",
    ["dependency", "operation"],
)
# Every (dependency, operation) the worker counts, at 0 from the start: a panel or alert reads 0, not "no data".
DEGRADED_LABELS = (
    ("redis", "lookup"), ("embedder", "lookup"), ("postgres", "lookup"), ("redis", "store"),
    ("redis", "single_flight"), ("redis", "evict"), ("redis", "record_hits"), ("postgres", "record_hits"),
    ("postgres", "sweep"), ("postgres", "served_pairs"), ("redis", "reported_pairs"),
    ("postgres", "reported_pairs"), ("redis", "reported_pairs_reconciled"), ("redis", "pending_store"),
)  # fmt: skip
for _labels in DEGRADED_LABELS:
    DEGRADED.labels(*_labels)
STORES = Counter(
    "llmcache_cache_stores_total",
    "Entries written, by store (redis, postgres) and outcome (ok, error).",
    ["store", "outcome"],
)
EXPIRED = Counter(
    "llmcache_cache_expired_requests_total",
    "Requests dropped because their deadline had passed before a cache worker took them.",
)
COALESCED = Counter(
    "llmcache_cache_coalesced_total",
    "Requests that waited on an identical request in flight: noted as waiting, served from its answer,"
    " released to go upstream (it stored nothing), or taken over (its leader died).",
    ["outcome"],
)
SWEPT = Counter("llmcache_cache_swept_entries_total", "Expired entries deleted from PostgreSQL by the sweeper.")
EVICTED = Counter(
    "llmcache_cache_evicted_entries_total", "Entries evicted (least recently used) by the per-tenant cap."
)
REFUSED = Counter(
    "llmcache_cache_refused_candidates_total",
    "Semantic candidates above the similarity threshold refused, by reason: the hit verifier's "
    "(number_mismatch, code_mismatch, low_probability, prompt_too_long, judge_refused, judge_timeout, judge_error, "
    "prompt_unknown, verifier_error; in a conversation conversation_context, context_unknown and context_<reason> "
    "for an earlier user turn), reported_wrong_hit (the pair was reported as a wrong hit) and "
    "reported_check_failed (that could not be checked).",
    ["reason"],
)
VERIFIER_SCORE = Histogram(
    "llmcache_cache_verifier_score",
    "The hit verifier's score (the classifier's calibrated probability; 1 or 0 when a rule decided) of each "
    "candidate, by verdict.",
    ["verdict"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
USAGE_BATCH_SIZE = Histogram(
    "llmcache_cache_usage_batch_size",
    "Usage events of hits per published UsageEventBatch message.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)
REPORTED_PAIRS = Counter(
    "llmcache_cache_reported_pairs_total", "(Entry, question) pairs reported as wrong hits (never served again)."
)
