"""What the gateway's routes share: settings and the broker clients created once at startup."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from services.gateway.auth import KeyAuthenticator, Principal
from services.gateway.limits import InFlightLimit, Limiter
from services.gateway.memo import Memo
from services.gateway.settings import Settings
from shared.broker import json_message
from shared.contracts.completions import RequestCancelled
from shared.contracts.control import ModelsResult
from shared.rpc import ReplyInbox, RpcClient
from shared.topology import Topology
from shared.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class GatewayState:
    settings: Settings
    worker: Worker
    auth: KeyAuthenticator
    limiter: Limiter
    # /status and /v1/models: one fan-out (or upstream call) per interval, however many ask.
    status: Memo[tuple[bool, bytes]] = field(default_factory=lambda: Memo(1.0))
    models: Memo[ModelsResult] = field(default_factory=lambda: Memo(60.0))
    in_flight: InFlightLimit = field(default_factory=lambda: InFlightLimit(32))
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def topology(self) -> Topology:
        return self.worker.topology

    @property
    def inbox(self) -> ReplyInbox:
        return self.worker.inbox

    @property
    def rpc(self) -> RpcClient:
        return self.worker.rpc

    def record_tokens_later(self, principal: Principal, tokens: int) -> None:
        """Count tokens against a key's daily limit from a stream's clean-up (fire and forget: we may be cancelled)."""
        task = asyncio.get_running_loop().create_task(self.limiter.record_tokens(principal, tokens))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def announce_cancelled(self, request_id: str) -> None:
        """Tell every LLM worker that a request's client went away (fire and forget: we may be cancelled)."""
        task = asyncio.get_running_loop().create_task(self._publish_cancelled(request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_cancelled(self, request_id: str) -> None:
        try:
            exchange = await self.worker.fast_channel.get_exchange(self.topology.cancellations, ensure=False)
            body = RequestCancelled(request_id=request_id).model_dump_json().encode()
            await exchange.publish(json_message(body, expiration_seconds=60), routing_key="")
        except Exception as exc:
            log.warning("announcing a cancelled request failed: %s", exc)
