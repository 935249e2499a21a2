"""Where a webhook may be sent: the SSRF guard.

A URL must be ``http`` or ``https`` with a host name and no credentials. Its host is resolved
and every address it resolves to must be public: loopback, private, link-local, multicast,
reserved, unspecified and other non-global addresses are refused, as are the cloud metadata
addresses, unless the server allows private targets (``NEXTBEST_WEBHOOKS_ALLOW_PRIVATE=1`` or
``--allow-private-targets``: for tests and receivers on the same network). Metadata, multicast
and unspecified addresses are refused even then.

The check runs when an endpoint is added and again at every send, where the sender connects to
the very address that was checked (so a DNS answer that changes between check and connect,
"DNS rebinding", cannot redirect a delivery).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses the host resolves to (``socket.getaddrinfo`` by default).
Resolver = Callable[[str, int], list[str]]

#: Cloud instance metadata services (AWS, GCP, Azure, OpenStack; AWS over IPv6; ECS task
#: metadata; Alibaba): refused whatever the policy.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class UnsafeTargetError(ValueError):
    """A URL that may not be used as a webhook target; the message says why."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (TCP), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class TargetPolicy:
    """Which targets are allowed: ``allow_private`` admits loopback, private, link-local and
    reserved addresses; ``resolver`` resolves host names (tests inject one)."""

    allow_private: bool = False
    resolver: Resolver = field(default=system_resolver)

    def check(self, url: str) -> Target:
        """The target of ``url`` with the address to connect to; UnsafeTargetError if the URL
        is malformed, does not resolve, or resolves to any refused address."""
        scheme, host, port, path = parse_url(url)
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeTargetError(f"the host {host!r} does not resolve ({exc})") from None
        if not addresses:
            raise UnsafeTargetError(f"the host {host!r} does not resolve")
        for text in addresses:
            problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]), self)
            if problem is not None:
                raise UnsafeTargetError(f"the host {host!r} resolves to {text}, which {problem}")
        return Target(scheme, host, port, path, addresses[0])


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL; UnsafeTargetError if not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTargetError("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTargetError(
            "the URL must not hold credentials (user:password@): receivers authenticate "
            "deliveries by their signature"
        )
    host = parts.hostname
    if not host:
        raise UnsafeTargetError("the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def address_problem(address: IPAddress, policy: TargetPolicy) -> str | None:
    """Why a webhook may not go to ``address`` under ``policy``, or None."""
    candidates: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 addresses carried inside IPv6 ones reach the IPv4 host: judged first.
        embedded = (address.ipv4_mapped, address.sixtofour, (address.teredo or (None, None))[1])
        candidates += [a for a in embedded if a is not None]
    candidates.append(address)
    for ip in candidates:
        if ip in METADATA_ADDRESSES:
            return "is a cloud metadata address"
        if ip.is_multicast:
            return "is a multicast address"
        if ip.is_unspecified:
            return "is an unspecified address"
        if policy.allow_private:
            continue
        for kind, flagged in (
            ("loopback", ip.is_loopback),
            ("link-local", ip.is_link_local),
            ("reserved", ip.is_reserved),
            ("private", ip.is_private),
        ):
            if flagged:
                return (
                    f"is a {kind} address (allow private targets with "
                    "NEXTBEST_WEBHOOKS_ALLOW_PRIVATE=1 or --allow-private-targets)"
                )
        if not ip.is_global:
            return (
                "is not a public address (allow private targets with "
                "NEXTBEST_WEBHOOKS_ALLOW_PRIVATE=1 or --allow-private-targets)"
            )
    return None


__all__ = [
    "METADATA_ADDRESSES",
    "Resolver",
    "Target",
    "TargetPolicy",
    "UnsafeTargetError",
    "address_problem",
    "parse_url",
    "system_resolver",
]
