"""What the gateway's routes share: settings and the broker clients created once at startup."""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway.settings import Settings
from shared.rpc import ReplyInbox, RpcClient
from shared.topology import Topology
from shared.worker import Worker


@dataclass
class GatewayState:
    settings: Settings
    worker: Worker

    @property
    def topology(self) -> Topology:
        return self.worker.topology

    @property
    def inbox(self) -> ReplyInbox:
        return self.worker.inbox

    @property
    def rpc(self) -> RpcClient:
        return self.worker.rpc
