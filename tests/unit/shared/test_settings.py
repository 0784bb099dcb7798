"""Secrets in settings: SecretStr everywhere, and every placeholder refused in production, all named at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.cache_worker.settings import Settings as CacheWorkerSettings
from services.gateway.settings import Settings as GatewaySettings

GOOD = {
    "rabbitmq_url": "amqp://llmcache:a-long-broker-password@rabbitmq:5672/",
    "redis_url": "redis://:a-long-redis-password@redis:6379/0",
    "database_url": "postgresql://llmcache:a-long-db-password@postgres:5432/llmcache",
}


def test_real_secrets_pass_and_never_show() -> None:
    settings = CacheWorkerSettings(environment="production", llm_judge_api_key="sk-judge-1234567890", **GOOD)
    shown = repr(settings)
    assert "a-long-db-password" not in shown and "sk-judge" not in shown
    assert settings.database_url.get_secret_value().endswith("/llmcache")


def test_every_placeholder_is_named_at_once_without_its_value() -> None:
    with pytest.raises(ValidationError) as refused:
        CacheWorkerSettings(
            environment="production",
            rabbitmq_url="amqp://guest:guest@rabbitmq:5672/",
            redis_url="redis://:redis@redis:6379/0",
            database_url="postgresql://postgres:postgres@postgres:5432/llmcache",
            llm_judge_api_key="change-me",
        )
    message = str(refused.value)
    for name in ("RABBITMQ_URL", "REDIS_URL", "DATABASE_URL", "LLM_JUDGE_API_KEY"):
        assert name in message
    assert "guest" not in message and "change-me" not in message


def test_placeholders_are_fine_outside_production() -> None:
    CacheWorkerSettings(database_url="postgresql://postgres:postgres@127.0.0.1/x", llm_judge_api_key="change-me")


def test_the_admin_key_must_be_a_real_secret_in_production() -> None:
    broker = {"rabbitmq_url": GOOD["rabbitmq_url"], "redis_url": GOOD["redis_url"]}
    for weak in ("change-me", "CHANGEME", "short-key"):
        with pytest.raises(ValidationError, match="ADMIN_API_KEY"):
            GatewaySettings(environment="production", admin_api_key=weak, **broker)
    GatewaySettings(environment="production", admin_api_key="a-real-admin-key-of-some-length", **broker)
    GatewaySettings(environment="production", admin_api_key="", **broker)  # the admin API off


def test_the_aligned_conversation_match_needs_a_verifier_that_reads() -> None:
    assert CacheWorkerSettings(**GOOD).conversation_match == "aligned"
    assert CacheWorkerSettings(verifier="threshold", **GOOD).conversation_match == "exact"
    with pytest.raises(ValidationError, match="CONVERSATION_MATCH=aligned needs a verifier"):
        CacheWorkerSettings(verifier="threshold", conversation_match="aligned", **GOOD)
