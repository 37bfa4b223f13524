"""Where push notifications may go: the target policy, checked on resolved addresses.

A client names the URL the server will call back; without a policy any client could make the
server send requests into its own network (a cloud metadata service, an admin port on
loopback). :class:`PushPolicy` refuses every address that is not public unicast:

- loopback (``127.0.0.0/8``, ``::1``), private (``10/8``, ``172.16/12``, ``192.168/16``,
  IPv6 unique-local ``fc00::/7``), link-local (``169.254/16``, ``fe80::/10``), shared
  (``100.64/10``) and the other ranges that are not global;
- unspecified (``0.0.0.0``, ``::``), multicast and reserved addresses, which even
  ``allow_private=True`` does not open;
- IPv6 forms that carry an IPv4 address (``::ffff:10.0.0.1``, 6to4 ``2002::/16``, NAT64
  ``64:ff9b::/96``) are judged as the IPv4 address inside.

A host name is resolved and every address it resolves to must pass (a name with one public and
one private address is refused). ``localhost`` and ``*.localhost`` are loopback; ``*.invalid``
never resolves (RFC 6761) and is refused. Explicit exceptions: ``allowed_hosts`` lists host
names (trusted whatever they resolve to), addresses and networks (``"10.1.0.0/16"``);
``allow_private=True`` opens loopback, private, link-local and shared addresses to everyone.

The check runs when a config is stored (a refused URL is an invalid-params error naming the
reason) and again before every delivery, on a fresh resolution; the sender then connects to
an address it has just checked, never resolving the name a second time (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from ...errors import PocketMeshError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``resolve(host, port) -> [address, ...]``: the addresses a host name stands for."""

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Kinds that allow_private=True opens; the others are never a real webhook.
_PRIVATE_KINDS = frozenset({"loopback", "private", "link-local", "non-public"})


class PushTargetRefused(PocketMeshError, ValueError):
    """A push notification URL the policy does not allow; the message says why and how to allow it."""

    def __init__(self, url: str, reason: str, *, unresolved: bool = False) -> None:
        self.url = url
        self.reason = reason
        self.unresolved = unresolved  # the host did not resolve (it may later): worth retrying
        super().__init__(f"push notification URL {url!r:.200} refused: {reason}")


async def resolve_with_loop(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, through the event loop's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class PushTarget:
    """A checked URL: where to connect (``addresses``, in order) and what to ask for there."""

    url: str
    scheme: str
    host: str
    port: int
    target: str
    """Path and query, as sent in the request line."""
    addresses: tuple[str, ...]
    """Checked addresses to connect to; empty when the name did not resolve at registration."""

    @property
    def host_header(self) -> str:
        """The ``Host`` header the receiver expects (the URL's host, and its port if not default)."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: str) -> str:
        """The request URL with ``address`` in place of the host name."""
        shown = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{shown}:{self.port}{self.target}"


def address_kind(address: Address) -> str | None:
    """Why ``address`` is not a public unicast address (``"loopback"``, ...), or ``None`` if it is."""
    address = _embedded_ipv4(address) or address
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _parse_address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class PushPolicy:
    """Which push notification targets this server calls; see the module docstring."""

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        allow_private: bool = False,
        resolver: Resolver | None = None,
        resolve_timeout: float = 5.0,
    ) -> None:
        if isinstance(allowed_hosts, str):
            raise TypeError(
                f"allowed_hosts must be a list of hosts, got the string {allowed_hosts!r:.60}; "
                f"e.g. allowed_hosts=['127.0.0.1', 'hooks.internal', '10.1.0.0/16']."
            )
        self.allow_private = bool(allow_private)
        self.allowed_names: frozenset[str] = frozenset()
        self.allowed_networks: tuple[Network, ...] = ()
        names, networks = set(), []
        for entry in allowed_hosts:
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError(
                    f"every allowed push host must be a host name, an address or a network, got {entry!r:.60}; "
                    f"e.g. 'hooks.internal', '127.0.0.1' or '10.1.0.0/16'."
                )
            text = entry.strip().lower().strip("[]")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(text.rstrip("."))
        self.allowed_names = frozenset(names)
        self.allowed_networks = tuple(networks)
        self._resolve = resolver or resolve_with_loop
        self.resolve_timeout = resolve_timeout

    def __repr__(self) -> str:
        allowed = sorted(self.allowed_names) + [str(n) for n in self.allowed_networks]
        return f"PushPolicy(allowed_hosts={allowed!r}, allow_private={self.allow_private})"

    async def check(self, url: str, *, must_resolve: bool = True) -> PushTarget:
        """The checked target of ``url``; raises :class:`PushTargetRefused` if it may not be called.

        With ``must_resolve=False`` (when a config is stored) a name that does not resolve yet
        is accepted with no addresses; delivery resolves it again and refuses it then.
        """
        parts = self._parts(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        literal = _parse_address(host)
        if literal is not None:
            addresses = [str(literal)]
        elif host in self.allowed_names:
            addresses = await self._lookup(url, host, port, must_resolve)
            return PushTarget(url, parts.scheme, host, port, target, tuple(addresses))
        elif host in _LOOPBACK_NAMES or host.endswith(".localhost"):
            # RFC 6761: loopback whatever a resolver says; the loopback addresses the policy opens.
            addresses = [a for a in ("127.0.0.1", "::1") if self._refusal(a) is None]
            if not addresses:
                raise PushTargetRefused(url, self._explain(host, "127.0.0.1", "loopback"))
        elif host.endswith(".invalid") or host == "invalid":
            raise PushTargetRefused(
                url, f"{host!r} is under .invalid, which never resolves (RFC 6761); give the receiver's real host name."
            )
        else:
            addresses = await self._lookup(url, host, port, must_resolve)
        for address in addresses:
            kind = self._refusal(address)
            if kind is not None:
                raise PushTargetRefused(url, self._explain(host, address, kind))
        return PushTarget(url, parts.scheme, host, port, target, tuple(addresses))

    def _parts(self, url: str) -> SplitResult:
        if not isinstance(url, str) or not url.strip():
            raise PushTargetRefused(str(url), "it is empty; give the http(s) URL of the receiver, e.g. 'https://hooks.example.com/a2a'.")
        try:
            parts = urlsplit(url.strip())
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError as error:
            raise PushTargetRefused(url, f"it does not parse as a URL ({error}).") from error
        if parts.scheme not in ("http", "https"):
            raise PushTargetRefused(url, f"the scheme {parts.scheme!r} is not http or https.")
        if not parts.hostname:
            raise PushTargetRefused(url, "it names no host.")
        if parts.username is not None or parts.password is not None:
            raise PushTargetRefused(
                url, "it carries credentials (user:password@); put them in the config's 'authentication' instead."
            )
        return parts

    async def _lookup(self, url: str, host: str, port: int, must_resolve: bool) -> list[str]:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), self.resolve_timeout)
        except (OSError, UnicodeError, asyncio.TimeoutError) as error:
            if not must_resolve:
                return []
            why = str(error) or f"no answer within {self.resolve_timeout}s"
            raise PushTargetRefused(
                url, f"{host!r} does not resolve ({why}); the receiver cannot be reached.", unresolved=True
            ) from error
        if not addresses and must_resolve:
            raise PushTargetRefused(url, f"{host!r} resolves to no address; the receiver cannot be reached.", unresolved=True)
        return addresses

    def _refusal(self, text: str) -> str | None:
        """The kind of a refused address, or ``None`` when the policy lets it through."""
        address = _parse_address(text)
        if address is None:
            return "unparseable"
        if any(address.version == n.version and address in n for n in self.allowed_networks):
            return None
        inner = _embedded_ipv4(address)
        if inner is not None and any(inner.version == n.version and inner in n for n in self.allowed_networks):
            return None
        kind = address_kind(address)
        if kind is None or (self.allow_private and kind in _PRIVATE_KINDS):
            return None
        return kind

    @staticmethod
    def _explain(host: str, address: str, kind: str) -> str:
        parsed = _parse_address(address)
        inner = _embedded_ipv4(parsed) if parsed is not None else None
        article = "an" if kind[0] in "aeiou" else "a"
        if _parse_address(host) is not None:
            where = f"{host!r} carries the IPv4 address {inner}, which is" if inner else f"{host!r} is"
        else:
            where = f"{host!r} resolves to {address}, which is"
        if kind in _PRIVATE_KINDS:
            how = (
                f"allow it explicitly with push_allowed_hosts=[{host!r}] (pocketmesh serve --push-allow-host {host}), "
                f"or open private targets with allow_private_push_targets=True"
            )
        else:
            how = f"a webhook never lives there; allow it only by listing {address!r} in push_allowed_hosts"
        return f"{where} {article} {kind} address, and this server does not call into non-public networks; {how}."
