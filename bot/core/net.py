"""Who is on the other end of a request, when a trusted reverse proxy stands in front."""

from __future__ import annotations

import ipaddress
from typing import Sequence


def client_address(peer: str, forwarded_for: str, trusted: Sequence[str]) -> str:
    """The customer's address: the peer, or the last address before the trusted proxies in
    `X-Forwarded-For` when the peer is one of them (a malformed hop: the peer)."""
    if peer not in trusted or not forwarded_for:
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if hop not in trusted:
            return hop
    return peer
