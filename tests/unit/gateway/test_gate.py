"""The request gate's body checks: the byte limit while reading, and the JSON structure check."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from services.gateway.errors import ApiError
from services.gateway.gate import check_structure, nesting_depth, read_within


def test_nesting_depth_counts_brackets_of_both_kinds() -> None:
    assert nesting_depth(b"") == 0
    assert nesting_depth(b"{}") == 1
    assert nesting_depth(b"[{}{}[[]]]") == 3
    assert nesting_depth(b"[" * 300 + b"]" * 300) == 300


def test_brackets_inside_strings_do_not_count() -> None:
    inside = b'{"a": "' + b"[" * 500 + b'", "b": "\\"[[[[\\\\", "c": [1, 2]}'
    check_structure(inside, max_depth=2, max_containers=2)


def test_too_deep_and_too_many_are_400s_naming_the_limit() -> None:
    with pytest.raises(ApiError) as deep:
        check_structure(b'{"x": ' + b"[" * 65 + b"]" * 65 + b"}", max_depth=64, max_containers=1000)
    assert deep.value.status == 400 and deep.value.code == "too_deeply_nested" and "64" in deep.value.message
    with pytest.raises(ApiError) as many:
        check_structure(b"[" + b"{}," * 200 + b"{}]", max_depth=64, max_containers=100)
    assert many.value.status == 400 and many.value.code == "too_many_json_values"
    check_structure(b'{"x": ' + b"[" * 63 + b"]" * 63 + b"}", max_depth=64, max_containers=1000)


async def test_the_byte_limit_holds_while_reading_and_on_the_declared_length() -> None:
    received: list[int] = []

    async def receive() -> dict:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    with pytest.raises(ApiError) as streamed:
        await read_within(receive, 250, None)
    assert streamed.value.status == 413 and len(received) == 3  # stopped at the third part, no further
    with pytest.raises(ApiError) as declared:
        await read_within(receive, 250, 10_000)
    assert declared.value.status == 413 and len(received) == 3  # nothing read at all

    parts = iter([b'{"a":', b" 1}"])

    async def whole() -> dict:
        part = next(parts)
        return {"type": "http.request", "body": part, "more_body": part != b" 1}"}

    assert await read_within(whole, 250, None) == b'{"a": 1}'


def test_strings_left_open_do_not_hide_or_invent_structure() -> None:
    # An unterminated string swallows the rest (the parser refuses it anyway); escapes stay inside strings.
    check_structure(b'[[["' + b"[" * 100, max_depth=3, max_containers=3)
    check_structure(b'["\\\\", "\\"[[[[[", "' + b"[" * 100, max_depth=1, max_containers=1)
    with pytest.raises(ApiError):
        check_structure(b'["\\\\"' + b"[" * 10, max_depth=5, max_containers=100)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda n: b"[" * 70 + b'"' + b'\\"' * n, id="one open string of escaped quotes"),
        pytest.param(lambda n: b"[" * 70 + b'"\\' * n, id="open strings of a quote and a backslash"),
        pytest.param(lambda n: b"[" * 70 + b'"\\"' * (n * 2 // 3), id="quote, backslash, quote"),
        pytest.param(lambda n: b'{"a": ' * 70 + b'"x' + b"\\\\" * n, id="a string of escaped backslashes"),
    ],
)
def test_the_structure_check_of_a_4_mb_body_takes_one_pass(shape: Callable[[int], bytes]) -> None:
    """Linear in the body's size: a quadratic scan of these took hours at 4 MB (3 s at 32 kB)."""
    body = shape(2 * 1024 * 1024)[: 4 * 1024 * 1024]
    started = time.process_time()
    with contextlib.suppress(ApiError):
        check_structure(body, max_depth=64, max_containers=100_000)
    assert time.process_time() - started < 5
