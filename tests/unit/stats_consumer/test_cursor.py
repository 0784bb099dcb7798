"""Usage-log cursors: round trips exactly to the microsecond, refuses anything it did not issue."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.stats_consumer.cursor import InvalidCursor, decode_cursor, encode_cursor

MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def raw_cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("created_at", "event_id"),
    [
        (MOMENT, "evt-1"),
        (MOMENT + timedelta(microseconds=1), "evt-1"),
        (datetime(1970, 1, 1, tzinfo=UTC), ""),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "before the epoch"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "ünïcødé / ids?&=+"),
        (MOMENT.astimezone(datetime.now().astimezone().tzinfo), "any zone"),
    ],
)
def test_round_trip_is_exact(created_at: datetime, event_id: str) -> None:
    cursor = encode_cursor(created_at, event_id)
    assert decode_cursor(cursor) == (created_at, event_id)
    assert decode_cursor(cursor)[0].tzinfo is UTC


def test_cursor_is_url_safe_and_opaque() -> None:
    cursor = encode_cursor(MOMENT, "a/b+c==?")
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "a/b" not in cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "x" * 2000,
        "not a cursor!",
        "abc",  # valid base64 alphabet, not JSON
        "@@@@",
        "ÿÿÿÿ",
        raw_cursor({"at": 1, "id": "e"}),
        raw_cursor([2, 1, "e"]),  # another version
        raw_cursor([1, "1", "e"]),
        raw_cursor([1, 1.5, "e"]),
        raw_cursor([1, True, "e"]),
        raw_cursor([1, 1, 7]),
        raw_cursor([1, 1, "e", "extra"]),
        raw_cursor([1, 10**20, "e"]),  # beyond 64 bits
        raw_cursor([1, 9 * 10**18, "e"]),  # beyond any datetime
        raw_cursor([1, -9 * 10**18, "e"]),
        raw_cursor([1, 1, "nul\x00"]),
    ],
)
def test_anything_else_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_padding_is_optional() -> None:
    cursor = encode_cursor(MOMENT, "e")
    padded = cursor + "=" * (-len(cursor) % 4)
    assert decode_cursor(padded) == decode_cursor(cursor)
