"""A socket-level guard that keeps tests off the real network.

Patching the socket layer (rather than one HTTP library) covers every client: httpx,
httpx2, aiohttp, requests, raw sockets and asyncio streams all end in ``getaddrinfo`` and
``socket.connect``. Loopback addresses, ``localhost`` and unix sockets always pass, so
in-process fakes and loopback servers keep working; so do names the hosts file
(``/etc/hosts``) maps to loopback addresses only, such as the machine's own name, which are
read from that file, never asked of DNS. The patches are installed once and consult a
process-wide policy, so switching the guard per test costs nothing.

A blocked host *name* fails the way an unknown name fails on the real network, with a
``socket.gaierror`` (:class:`~pocketmesh_testing.errors.BlockedLookupError`); a blocked IP
address with a ``ConnectionError`` (:class:`~pocketmesh_testing.errors.NetworkBlockedError`).
Code that handles the real network's errors keeps working under the guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pocketmesh_testing.errors import BlockedLookupError, NetworkBlockedError

__all__ = ["HOSTS_FILE", "NetworkGuard", "guard", "hosts_file_addresses", "is_loopback_host"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


HOSTS_FILE = (
    os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "drivers", "etc", "hosts")
    if sys.platform == "win32" else "/etc/hosts"
)
"""The hosts file whose loopback names the guard lets through."""

_hosts_cache: dict[str, tuple[tuple[int, int], dict[str, frozenset[str]]]] = {}
_hosts_lock = threading.Lock()


def hosts_file_addresses(path: str | None = None) -> dict[str, frozenset[str]]:
    """Each host name the hosts file lists (lower case), with the addresses it maps the name to.

    Read again only when the file changes; an unreadable file lists nothing."""
    path = path or HOSTS_FILE
    try:
        stat = os.stat(path)
    except OSError:
        return {}
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _hosts_lock:
        cached = _hosts_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    names: dict[str, set[str]] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2:
                    for name in fields[1:]:
                        names.setdefault(name.lower().rstrip("."), set()).add(fields[0])
    except OSError:
        return {}
    table = {name: frozenset(addresses) for name, addresses in names.items()}
    with _hosts_lock:
        _hosts_cache[path] = (stamp, table)
    return table


def _is_local_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def is_loopback_host(host: str | bytes | None) -> bool:
    """True for loopback IPs (127.0.0.0/8, ::1), ``localhost`` names, the empty host, and names
    the hosts file maps to loopback addresses only (the machine's own name, often)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = host.strip("[]").lower()
    if host in ("", "0.0.0.0", "::") or host in _LOCAL_NAMES or host.endswith(".localhost"):
        # An empty or wildcard host means "this machine" to connect() and getaddrinfo().
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    # A name the hosts file answers never reaches DNS: it is as local as the addresses it maps to.
    addresses = hosts_file_addresses().get(host.rstrip("."))
    return bool(addresses) and all(_is_local_address(a) for a in addresses)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


@dataclass
class NetworkGuard:
    """The process-wide blocking policy and the socket patches that enforce it."""

    enabled: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    _installs: int = 0
    _originals: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, host: str | bytes | None, port: int | None = None) -> None:
        """Raise if the policy forbids connecting to ``host``: ``BlockedLookupError`` (a
        ``socket.gaierror``) for a name, ``NetworkBlockedError`` for an IP address."""
        __tracebackhide__ = True  # the test's own call is what a failure report should show
        if not self.enabled or is_loopback_host(host):
            return
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
        if name.lower() in self.allowed_hosts:
            return
        raise NetworkBlockedError(name, port) if _is_ip_literal(name) else BlockedLookupError(name, port)

    @contextlib.contextmanager
    def policy(self, *, enabled: bool, allowed_hosts: Iterable[str] | None = None) -> Iterator[None]:
        """Apply a blocking policy for the duration of the block, then restore the previous one."""
        previous = (self.enabled, self.allowed_hosts)
        self.enabled = enabled
        if allowed_hosts is not None:
            self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        try:
            yield
        finally:
            self.enabled, self.allowed_hosts = previous

    def install(self) -> None:
        """Patch the socket layer (idempotent; nested installs are counted)."""
        with self._lock:
            self._installs += 1
            if self._installs > 1:
                return
            self._patch()

    def uninstall(self) -> None:
        """Undo ``install`` once the last installer is done."""
        with self._lock:
            self._installs -= 1
            if self._installs > 0:
                return
            self._installs = 0
            for dotted, original in self._originals.items():
                owner, name = _resolve(dotted)
                setattr(owner, name, original)
            self._originals.clear()

    def _patch(self) -> None:
        guard = self
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        real_gethostbyname = socket.gethostbyname
        real_gethostbyname_ex = socket.gethostbyname_ex
        real_create_connection = socket.create_connection
        real_loop_create_connection = asyncio.base_events.BaseEventLoop.create_connection

        def check_address(sock: socket.socket, address: Any) -> None:
            __tracebackhide__ = True
            # AF_UNIX addresses are paths (str / bytes); only (host, port, ...) tuples are remote.
            if guard.enabled and isinstance(address, tuple) and address:
                port = address[1] if len(address) > 1 else None
                guard.check(address[0], port)

        def connect(self: socket.socket, address: Any) -> None:
            __tracebackhide__ = True
            check_address(self, address)
            return real_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            __tracebackhide__ = True
            check_address(self, address)
            return real_connect_ex(self, address)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            # Names are refused before any DNS query leaves the machine; IP literals are
            # resolved locally and judged at connect() time.
            if guard.enabled and not (isinstance(host, (str, bytes)) and _is_ip_literal(
                host.decode() if isinstance(host, bytes) else host
            )):
                guard.check(host, port if isinstance(port, int) else None)
            return real_getaddrinfo(host, port, *args, **kwargs)

        def gethostbyname(host: str) -> str:
            __tracebackhide__ = True
            if guard.enabled and not _is_ip_literal(host):
                guard.check(host)
            return real_gethostbyname(host)

        def gethostbyname_ex(host: str) -> Any:
            __tracebackhide__ = True
            if guard.enabled and not _is_ip_literal(host):
                guard.check(host)
            return real_gethostbyname_ex(host)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            __tracebackhide__ = True
            if guard.enabled:
                guard.check(address[0], address[1])
            return real_create_connection(address, *args, **kwargs)

        async def loop_create_connection(
            self: asyncio.AbstractEventLoop, protocol_factory: Any, host: Any = None,
            port: Any = None, *args: Any, **kwargs: Any,
        ) -> Any:
            __tracebackhide__ = True
            if guard.enabled and host is not None and kwargs.get("sock") is None:
                guard.check(host, port)
            return await real_loop_create_connection(
                self, protocol_factory, host, port, *args, **kwargs  # type: ignore[arg-type]
            )

        patches: dict[str, Any] = {
            "socket.socket.connect": connect,
            "socket.socket.connect_ex": connect_ex,
            "socket.getaddrinfo": getaddrinfo,
            "socket.gethostbyname": gethostbyname,
            "socket.gethostbyname_ex": gethostbyname_ex,
            "socket.create_connection": create_connection,
            "asyncio.base_events.BaseEventLoop.create_connection": loop_create_connection,
        }
        originals = {
            "socket.socket.connect": real_connect,
            "socket.socket.connect_ex": real_connect_ex,
            "socket.getaddrinfo": real_getaddrinfo,
            "socket.gethostbyname": real_gethostbyname,
            "socket.gethostbyname_ex": real_gethostbyname_ex,
            "socket.create_connection": real_create_connection,
            "asyncio.base_events.BaseEventLoop.create_connection": real_loop_create_connection,
        }
        for dotted, replacement in patches.items():
            owner, name = _resolve(dotted)
            setattr(owner, name, replacement)
        self._originals.update(originals)


def _resolve(dotted: str) -> tuple[Any, str]:
    owner_path, _, name = dotted.rpartition(".")
    if owner_path == "socket":
        return socket, name
    if owner_path == "socket.socket":
        return socket.socket, name
    return asyncio.base_events.BaseEventLoop, name


guard = NetworkGuard()
"""The one guard of this process; the plugin installs it and sets its policy per test."""
