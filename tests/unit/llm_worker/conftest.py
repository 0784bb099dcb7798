"""Fixtures of the LLM worker tests: the real mock upstream, served by uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from services.mock_upstream.app import create_app
from services.mock_upstream.settings import Settings as MockSettings


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """The mock upstream on a free port, served by uvicorn in a thread with its own event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(MockSettings()), log_level="warning", lifespan="off", ws="none", loop="asyncio", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "mock upstream did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
async def control(mock_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The mock's /_mock endpoints, reset before each test."""
    async with httpx.AsyncClient(base_url=mock_url) as http:
        await http.post("/_mock/reset")
        yield http
