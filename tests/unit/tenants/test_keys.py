"""API keys: their format, the part that may be shown again, and the hash that is stored instead."""

from __future__ import annotations

import hashlib
import re

from services.tenants.keys import display_prefix, generate_key
from shared.contracts.tenants import KEY_HASH_PATTERN, api_key_hash


def test_a_new_key_is_lcp_and_40_url_safe_random_characters() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert re.fullmatch(r"lcp-[A-Za-z0-9_-]{40}", key), key


def test_the_display_prefix_is_a_small_part_of_the_key() -> None:
    key = generate_key()
    prefix = display_prefix(key)
    assert key.startswith(prefix)
    assert prefix.startswith("lcp-")
    assert len(prefix) <= len(key) // 4


def test_a_short_hand_picked_key_is_never_stored_whole() -> None:
    assert display_prefix("dev") == ""
    assert display_prefix("my-dev-key-1234") == "my-"
    assert display_prefix("x" * 400) == "x" * 12


def test_the_stored_hash_is_the_hex_sha256_of_the_key() -> None:
    key = generate_key()
    assert api_key_hash(key) == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(KEY_HASH_PATTERN, api_key_hash(key))
    assert key not in api_key_hash(key)
    assert api_key_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
