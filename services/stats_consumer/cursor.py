"""Opaque keyset cursors of the usage log: the (created_at, event_id) of the last row a page showed.

Clients see a URL-safe string and pass it back unchanged; only this module reads it. Time is kept
as integer microseconds since the epoch, PostgreSQL's own resolution, so a cursor points exactly
at its row (a float of epoch seconds could land a hair off and repeat or skip rows that share a
second).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
# A cursor holds a number and an event id; anything much longer than that is not one of ours.
MAX_CURSOR_LENGTH = 1024
CURSOR_VERSION = 1


class InvalidCursor(ValueError):
    """A cursor this service did not issue (or one mangled on the way back)."""


def encode_cursor(created_at: datetime, event_id: str) -> str:
    """The cursor that continues after the row (created_at, event_id); created_at must be timezone-aware."""
    micros = (created_at - EPOCH) // ONE_MICROSECOND
    raw = orjson.dumps([CURSOR_VERSION, micros, event_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, event_id) a cursor points at; raises InvalidCursor for anything else."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("the cursor is empty or too long")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = orjson.loads(base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise InvalidCursor("the cursor is not one this API issued") from exc
    match decoded:
        case [1, int(micros), str(event_id)] if not isinstance(micros, bool):
            pass
        case _:
            raise InvalidCursor("the cursor is not one this API issued")
    try:
        created_at = EPOCH + micros * ONE_MICROSECOND
    except OverflowError as exc:
        raise InvalidCursor("the cursor's time is out of range") from exc
    if "\x00" in event_id:
        raise InvalidCursor("the cursor is not one this API issued")
    return created_at, event_id
