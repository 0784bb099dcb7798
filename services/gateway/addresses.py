"""The client's address, as the limit on failed authentications counts it: the connection's peer, or, when
the peer is one of the proxies in FORWARDED_ALLOW_IPS (none by default), the address the nearest of them
saw the request come from (X-Forwarded-For, read right to left past the trusted proxies).

Never the header's leftmost entry: the client writes that itself, to escape the limit or to frame another
address. uvicorn's own handling is off (it takes the leftmost entry when every peer is trusted).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose X-Forwarded-For is believed: addresses and networks."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    @staticmethod
    @lru_cache(maxsize=8)
    def parse(spec: str) -> TrustedProxies:
        """From a comma-separated list of addresses and networks ("" : none); ValueError names a bad one."""
        networks = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item == "*":
                raise ValueError("'*' would let every client name its own address: list the proxies")
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or a network") from exc
        return TrustedProxies(networks)

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_of(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client's address: the peer unless it is a trusted proxy, then the nearest hop that is not one."""
        if peer is None or not self.networks or not self.trusts(peer):
            return peer
        hops = [_host(hop) for header in forwarded_for for hop in header.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer  # every hop a trusted proxy: the farthest of them sent it


def _host(hop: str) -> str:
    """An X-Forwarded-For entry without its port ("1.2.3.4:5", "[::1]:5")."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop
