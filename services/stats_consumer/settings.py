"""Settings of the stats consumer: broker, database, batching and its metrics port."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.settings import BaseServiceSettings, DatabaseSettings


class Settings(BaseServiceSettings, DatabaseSettings):
    """Environment variables of the stats consumer (e.g. STATS_BATCH_MAX_SIZE, DATABASE_URL)."""

    metrics_port: int = 9104
    stats_batch_max_size: int = Field(default=200, ge=1)
    stats_batch_max_wait_ms: int = Field(default=200, ge=1)
    stats_prefetch: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _prefetch_fills_a_batch(self) -> Settings:
        # Unacked messages are what fills a batch: with fewer in flight than a batch holds, every
        # batch would wait out the full timer and throughput would collapse to prefetch per wait.
        if self.stats_prefetch < self.stats_batch_max_size:
            raise ValueError(
                f"STATS_PREFETCH ({self.stats_prefetch}) must be at least STATS_BATCH_MAX_SIZE "
                f"({self.stats_batch_max_size})"
            )
        return self
