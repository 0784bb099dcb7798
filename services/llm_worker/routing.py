"""Which upstream serves a model: the routes file (`UPSTREAMS_FILE`), or the one upstream of the env vars.

Pure functions and plain data; the settings read the file and the environment, the worker builds one
provider per upstream. A routes file lists upstreams in order, each with the model names it serves
as shell-style patterns (`claude-*`, `gpt-*`, `o*`, `llama*`, `*`): the first upstream with a pattern
that matches a request's model serves it, and a model no upstream claims is OpenAI's 404
`model_not_found`.

    upstreams:
      - name: anthropic
        provider: anthropic             # Anthropic's Messages API, through the anthropic SDK
        api_key_env: ANTHROPIC_API_KEY  # the env var holding its key (never the key itself)
        models: ["claude-*"]
      - name: local
        provider: openai                # any OpenAI-compatible server
        base_url: http://127.0.0.1:11434/v1
        models: ["llama*"]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ProviderKind = Literal["openai", "anthropic"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"  # the anthropic SDK adds /v1/messages itself
DEFAULT_BASE_URLS: dict[str, str] = {"openai": OPENAI_BASE_URL, "anthropic": ANTHROPIC_BASE_URL}
# The providers' public APIs: without a key every call there fails, so such an upstream is refused at startup.
PUBLIC_API_HOSTS = frozenset(urlsplit(url).hostname for url in DEFAULT_BASE_URLS.values())
MOCK_LABEL = "mock"
# Local servers (vLLM, Ollama) ignore the key, but the SDKs refuse to start without one.
NO_KEY = "not-needed"


@dataclass(frozen=True)
class UpstreamConfig:
    """One upstream: how to reach it and which model names it serves."""

    name: str
    provider: ProviderKind
    base_url: str
    api_key: str = field(repr=False)  # never in a log line or a traceback's locals
    models: tuple[str, ...]  # shell-style patterns, matched case-sensitively
    label: str | None = None  # CacheInfo.upstream: "mock" for the mock upstream, else None
    key_variable: str = ""  # the env var the key came from (routes file), for messages about it

    @property
    def is_mock(self) -> bool:
        return self.label == MOCK_LABEL

    def serves(self, model: str) -> bool:
        """Whether one of this upstream's patterns matches the model name."""
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


class UpstreamsError(ValueError):
    """The upstreams configured are not what the LLM worker can run with; the message says what to fix."""


class RoutesFileError(UpstreamsError):
    """The routes file is not what the LLM worker can run with; the message says what to fix."""


class _UpstreamEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    provider: ProviderKind
    base_url: str = ""
    api_key_env: str = ""
    models: list[str] = Field(min_length=1)


class _RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upstreams: list[_UpstreamEntry] = Field(min_length=1)


def parse_routes(data: Any, environ: Mapping[str, str], mock_url: str = "") -> list[UpstreamConfig]:
    """The upstreams a parsed routes file names, their keys read from `environ` by the variable each names.

    Raises RoutesFileError naming the problem: a wrong field, two upstreams of one name, a key
    variable that is not set, or none for a provider's public API (an upstream that would fail every
    call is refused at startup).
    """
    try:
        routes = _RoutesFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise RoutesFileError(f"routes file: {where}: {first['msg']}") from None
    names = [entry.name for entry in routes.upstreams]
    if len(set(names)) != len(names):
        raise RoutesFileError(f"routes file: upstream names must differ ({', '.join(names)})")
    upstreams = []
    for entry in routes.upstreams:
        base_url = (entry.base_url or DEFAULT_BASE_URLS[entry.provider]).rstrip("/")
        api_key = NO_KEY
        if entry.api_key_env:
            api_key = environ.get(entry.api_key_env, "")
            if not api_key:
                raise RoutesFileError(
                    f"routes file: upstream {entry.name!r} takes its key from {entry.api_key_env}, which is not set"
                )
        elif is_public_api(base_url):
            raise RoutesFileError(
                f"routes file: upstream {entry.name!r} is {base_url}, which needs a key: name the env var"
                " holding it in api_key_env"
            )
        upstreams.append(
            UpstreamConfig(
                name=entry.name,
                provider=entry.provider,
                base_url=base_url,
                api_key=api_key,
                models=tuple(entry.models),
                label=MOCK_LABEL if mock_url and _same_server(base_url, mock_url) else None,
                key_variable=entry.api_key_env,
            )
        )
    return upstreams


def single_upstream(base_url: str, api_key: str, mock_url: str) -> list[UpstreamConfig]:
    """The upstreams without a routes file: UPSTREAM_BASE_URL, else OpenAI when a key is set, else the mock.

    The mock serves both APIs, so without any upstream `claude-*` models exercise the Anthropic
    provider against it and every other model the OpenAI one.
    """
    if base_url:
        if not api_key and is_public_api(base_url):
            raise UpstreamsError(f"UPSTREAM_BASE_URL is {base_url}, which needs a key: set UPSTREAM_API_KEY")
        return [UpstreamConfig(base_url, "openai", base_url.rstrip("/"), api_key or NO_KEY, ("*",))]
    if api_key:
        return [UpstreamConfig("openai", "openai", OPENAI_BASE_URL, api_key, ("*",))]
    mock = mock_url.rstrip("/")
    return [
        UpstreamConfig("mock-anthropic", "anthropic", _server_root(mock), NO_KEY, ("claude-*",), MOCK_LABEL),
        UpstreamConfig(MOCK_LABEL, "openai", mock, NO_KEY, ("*",), MOCK_LABEL),
    ]


def route(model: str, upstreams: Iterable[UpstreamConfig]) -> UpstreamConfig | None:
    """The first upstream that serves the model, or None."""
    return next((upstream for upstream in upstreams if upstream.serves(model)), None)


def is_public_api(base_url: str) -> bool:
    """Whether a base URL is a provider's public API (OpenAI's, Anthropic's), where calls need a key."""
    return urlsplit(base_url).hostname in PUBLIC_API_HOSTS


def _server_root(url: str) -> str:
    """An OpenAI-style base URL without its `/v1`: the anthropic SDK adds `/v1/messages` itself."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _same_server(base_url: str, mock_url: str) -> bool:
    return _server_root(base_url) == _server_root(mock_url)
