"""The upstream client's connections: httpx's interface on aiohttp's HTTP/1.1 client.

Why: gateways send a token per SSE event, each its own HTTP chunk. httpx (httpcore, h11, anyio) hands a
streamed body on one chunk at a time, through several layers and a timeout scope per chunk: 150 µs of
client CPU per event, half of a busy bot's CPU. aiohttp parses HTTP in C and gives everything received so
far in one read (`readany`), so a loaded process reads several events at once instead of falling behind:
75 µs per event (bench/upstream_stream.py). Everything above stays httpx (requests, responses, status
checks, decoding, the client's errors), so this module is the only one that knows aiohttp is underneath:
it turns aiohttp's failures into the httpx errors core.upstream.faults maps.

Used for the gateway only (LLM_BASE_URL, trusted configuration). Image downloads keep their own httpx
client, which refuses private addresses (core.upstream.guard).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx

KEEPALIVE_SECONDS = 5.0  # httpx's default keep-alive expiry: an idle connection is closed after this
# Headers aiohttp writes itself from the request (sending httpx's copies too would double them).
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class GatewayTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=GatewayTransport(max_connections=N))`: at most N connections at once,
    idle ones kept for reuse. The aiohttp session is opened on the first request (inside the event loop)."""

    def __init__(self, *, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),  # aiohttp's `connect` covers waiting for a pooled connection
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [(name, value) for name, value in request.headers.multi_items() if name not in _OWN_HEADERS]
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _httpx_error(exc, request, sending=True) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,  # one host anyway; the limit above is the one that counts
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=httpx.create_ssl_context(),  # the same trust store httpx would use (certifi)
        )
        # httpx decodes gzip and friends from the headers, as it always did: aiohttp passes bytes as they came.
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding")
        )
        return self._session


class _Body(httpx.AsyncByteStream):
    """A response body, read as whatever has arrived (several SSE events at once when the loop is busy)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while data := await content.readany():
                yield data
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _httpx_error(exc, self._request, sending=False) from exc

    async def aclose(self) -> None:
        self._response.release()  # a body read to its end leaves the connection for the next request


def _httpx_error(exc: BaseException, request: httpx.Request, *, sending: bool) -> httpx.TransportError:
    """The httpx error that httpx's own transport raises for the same failure (core.upstream.faults reads it)."""
    message = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    if sending and isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientSSLError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    return httpx.ReadError(message, request=request)
