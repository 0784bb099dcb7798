"""API keys themselves: how a new one is made and the part of it that may be shown again.

Pure functions; what is stored is `shared.contracts.tenants.api_key_hash(key)`, never the key.
"""

from __future__ import annotations

import secrets

KEY_PREFIX = "lcp-"
KEY_RANDOM_BYTES = 30  # 240 bits, 40 url-safe base64 characters
DISPLAY_CHARS = 12


def generate_key() -> str:
    """A new key: "lcp-" and 40 url-safe random characters."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def display_prefix(key: str) -> str:
    """The first characters of a key, for people to recognise it by in listings.

    At most a quarter of the key, so a short hand-picked key (DEV_API_KEY) is never stored whole.
    """
    return key[: min(DISPLAY_CHARS, len(key) // 4)]
