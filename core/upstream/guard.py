"""Image downloads reach public addresses only: the check is made where the connection is made.

A model (or a user steering it) chooses the URLs we fetch, so a URL is an attacker's request: without
this, `![x](http://127.0.0.1:6379/)` or a redirect to `http://169.254.169.254/` makes the bot fetch
from inside its own network and post the result. The check sits in the httpcore network backend: the
name is resolved once, every address it resolves to is checked, and the connection is made to that
checked address (never to a second lookup, so DNS rebinding cannot slip a private address in). TLS
still verifies the certificate against the URL's host name: httpcore does the handshake after
`connect_tcp` with the origin's host as server name. Every redirect hop is a new connection and meets
the same check. Also here: the downloads client and the fetch itself (redirects by hand, byte caps).
Imports httpx/httpcore, the stdlib and core.errors only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from core.errors import IMAGE_NOT_SHOWN, ImageError

Resolve = Callable[[str, int], Awaitable[list[str]]]
"""Host name (or literal) and port -> the IP addresses it resolves to."""

Connect = Callable[[str, int, float | None], Awaitable[httpcore.AsyncNetworkStream]]
"""Opens a TCP connection to an already checked IP address."""

# Blocks that `ipaddress` counts as global but that no public image host uses (RFC 6598 shared address
# space is covered by is_global; NAT64, RFC 6052, embeds an IPv4 address that must be checked itself).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class RefusedAddressError(httpcore.ConnectError):
    """The URL's host is, or resolves to, an address we do not fetch from (httpx sees a ConnectError)."""


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local,
    unique-local, CGNAT, multicast, reserved, unspecified, and IPv6 forms embedding such an IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
        if ip in _UNIQUE_LOCAL or ip.is_site_local:
            return False
    elif ip in _CGNAT or ip in _THIS_NETWORK:
        return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
    )


async def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver: every address of `host`, in the resolver's order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to public addresses (see the module docstring).

    `resolve` and `connect` are ports: production uses the system resolver and httpcore's own backend;
    a test may map a public-looking name and address onto a local server without any traffic leaving.
    """

    def __init__(self, *, resolve: Resolve = resolve_host, connect: Connect | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolve
        self._connect = connect or self._connect_inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host.strip("[]"), port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the host: {type(exc).__name__}") from None
        # One refused address refuses the name: a host that answers both public and private addresses
        # is either misconfigured or rebinding.
        if not addresses or not all(is_public_address(address) for address in addresses):
            raise RefusedAddressError("the host is not a public address")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._connect(address, port, timeout)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddressError("unix sockets are not fetched from")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def _connect_inner(
        self,
        address: str,
        port: int,
        timeout: float | None,  # noqa: ASYNC109  # httpcore's connect timeout
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(address, port, timeout=timeout)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a `PublicOnlyBackend`, without keep-alive and without proxies.

    httpx builds its connection pool inside `AsyncHTTPTransport.__init__` with no way to pass a network
    backend, so the pool is replaced by one that has ours (httpx 0.28; tests pin the behaviour). No
    keep-alive: a pooled connection is keyed by address and port only, and must not carry a second host.
    """

    def __init__(self, backend: PublicOnlyBackend) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_keepalive_connections=0,
            network_backend=backend,
        )


MAX_REDIRECTS = 5  # per image download


class ByteBudget:
    """Bytes the image downloads of one answer may still read, shared by all of them."""

    __slots__ = ("left",)

    def __init__(self, total_bytes: int) -> None:
        self.left = total_bytes

    def take(self, count: int) -> bool:
        """Spend `count` bytes; False once the budget is overspent."""
        self.left -= count
        return self.left >= 0


def image_client(*, user_agent: str, allow_private: bool, network: PublicOnlyBackend | None) -> httpx.AsyncClient:
    """The client for model-linked images: no credentials, no automatic redirects, public addresses only
    (unless `allow_private`), and no proxy from the environment (a proxy would make the address check moot).
    Identity encoding keeps the byte cap honest (no decompression bomb)."""
    transport = None if allow_private else PublicOnlyTransport(network or PublicOnlyBackend())
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
        follow_redirects=False,
        transport=transport,
        trust_env=allow_private,
    )


async def fetch_image(http: httpx.AsyncClient, url: str, *, max_bytes: int, budget: ByteBudget) -> bytes:
    """GET `url` with `http` (an `image_client`), following redirects by hand so each hop is an http(s)
    URL checked like the first; at most `max_bytes`, and within `budget`. Raises ImageError or httpx errors."""
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        if target.scheme not in ("http", "https") or not target.host:
            raise image_failed("image URL not http(s)")
        response = await http.send(http.build_request("GET", target), stream=True)
        try:
            if response.has_redirect_location:
                target = target.join(response.headers["location"])
                continue
            if not response.is_success:
                raise image_failed(f"image download HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > min(max_bytes, budget.left):
                raise image_failed("image over the size cap")
            data = bytearray()
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) > max_bytes or not budget.take(len(piece)):
                    raise image_failed("image over the size cap")
            return bytes(data)
        finally:
            await response.aclose()
    raise image_failed("too many redirects")


def image_failed(reason: str) -> ImageError:
    """`reason` for the logs; for the user, the one wording every failed image gets."""
    return ImageError(reason, user_message=IMAGE_NOT_SHOWN)
