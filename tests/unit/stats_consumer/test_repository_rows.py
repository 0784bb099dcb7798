"""usage_row: what the usage table can hold is checked per event, before it joins a batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.stats_consumer.repository import UnstorableEvent, usage_row
from shared.contracts.usage_events import UsageEvent


def event(**overrides: object) -> UsageEvent:
    fields: dict[str, object] = {
        "event_id": "e1",
        "request_id": "r1",
        "tenant": "acme",
        "model": "gpt-4o-mini",
        "result": "miss",
        "created_at": 1_700_000_000.5,
    }
    return UsageEvent.model_validate({**fields, **overrides})


def test_row_has_a_utc_timestamp() -> None:
    row = usage_row(event())
    assert row[0] == "e1"
    assert row[14] == datetime.fromtimestamp(1_700_000_000.5, tz=UTC)


def test_row_carries_the_entry_similarity_and_refusals() -> None:
    row = usage_row(event(result="hit_semantic", cache_key="k1", similarity=0.93, refusals=["number_mismatch"]))
    assert row[15:] == ("k1", 0.93, ["number_mismatch"])
    # No refusal is stored as NULL, not an empty array: the stats skip those rows (refusals IS NOT NULL).
    assert usage_row(event())[15:] == (None, None, None)


@pytest.mark.parametrize(
    "overrides",
    [
        {"tenant": "ac\x00me"},
        {"reason": "\x00"},
        {"prompt_tokens": 2**31},
        {"created_at": 1e20},
        {"cache_key": "k\x00"},
        {"refusals": ["a\x00"]},
    ],
)
def test_unstorable_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(UnstorableEvent):
        usage_row(event(**overrides))
