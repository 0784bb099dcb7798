"""OpenAI embeddings requests and responses as the gateway, the cache worker and the LLM worker see them:
the inputs of a request one by one, and a response put together from vectors cached or computed."""

from __future__ import annotations

from typing import Any

from shared.contracts.completions import CachedEmbedding


def embedding_inputs(body: dict[str, Any]) -> list[Any]:
    """The inputs of an embeddings request, one per vector: one string, or one token array, is a list of one."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [raw]
    return list(raw) if isinstance(raw, list) else []


def embeddings_response(model: Any, vectors: dict[int, Any], tokens: dict[int, int]) -> dict[str, Any]:
    """OpenAI's embeddings list for the vectors by input position (every position 0..n-1 present);
    usage counts every input's tokens, cached or not, as the upstream would have."""
    prompt_tokens = sum(tokens.values())
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vectors[i]} for i in range(len(vectors))],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def with_cached(fetched: dict[str, Any], cached: list[CachedEmbedding], inputs: int) -> dict[str, Any]:
    """The response for every input: the upstream's vectors (`fetched`, at their places in the request) and
    the cached ones; usage counts both. ValueError unless together they are each of the `inputs` once."""
    data = [
        *fetched.get("data", []),
        *({"object": "embedding", "index": c.index, "embedding": c.embedding} for c in cached),
    ]
    data.sort(key=lambda item: item["index"])
    if [item["index"] for item in data] != list(range(inputs)):
        raise ValueError("the cached and the upstream's vectors are not one per input")
    prompt_tokens = int(fetched.get("usage", {}).get("prompt_tokens") or 0) + sum(c.tokens for c in cached)
    return {**fetched, "data": data, "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}
