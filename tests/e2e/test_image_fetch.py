"""Images the model links to, fetched as an attacker would want them fetched: the real UpstreamClient and
httpx against servers on 127.0.0.1 only.

No test sends a byte to a non-loopback address. Refusals are checked with a `connect` port that records
every attempt (it must stay empty). "A public host is fetched" maps one public-looking name and address
onto the fake upstream in the resolve and connect ports: the address check itself is the production one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpcore
import pytest

from core.errors import IMAGE_NOT_SHOWN, ImageError
from core.upstream import ByteBudget, UpstreamClient
from core.upstream.guard import PublicOnlyBackend, is_public_address
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

KEY = "sk-test-image-fetch-0123456789"
PUBLIC_NAME = "images.example"
PUBLIC_ADDRESS = "93.184.216.34"  # a globally routable address; never dialled (see `Network`)
PNG = png_bytes(8, 8)


class Network:
    """The resolve and connect ports: one public name maps to PUBLIC_ADDRESS, which is dialled as the fake
    upstream's loopback port. Anything else resolves through the system resolver and is never dialled."""

    def __init__(self, loopback_port: int, answers: dict[str, list[str]] | None = None) -> None:
        self.loopback_port = loopback_port
        self.answers = answers if answers is not None else {PUBLIC_NAME: [PUBLIC_ADDRESS]}
        self.resolved: list[str] = []
        self.dialled: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        if host in self.answers:
            return list(self.answers[host])
        loop = asyncio.get_running_loop()
        return [str(info[4][0]) for info in await loop.getaddrinfo(host, port)]

    async def connect(self, address: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:  # noqa: ASYNC109
        self.dialled.append((address, port))
        assert address == PUBLIC_ADDRESS, f"dialled {address}: only the mapped public address may be"
        return await self._real.connect_tcp("127.0.0.1", self.loopback_port, timeout=timeout)


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def network(up: FakeUpstream) -> Network:
    return Network(up.port)


@pytest.fixture
async def client(up: FakeUpstream, network: Network) -> AsyncIterator[UpstreamClient]:
    backend = PublicOnlyBackend(resolve=network.resolve, connect=network.connect)
    async with UpstreamClient(base_url=up.base_url, api_key=KEY, image_network=backend) as upstream:
        yield upstream


def port_of(up: FakeUpstream) -> int:
    return up.port


async def test_a_public_host_is_fetched_through_the_address_that_was_checked(
    up: FakeUpstream, network: Network, client: UpstreamClient
) -> None:
    up.serve("/cat.png", PNG, content_type="image/png")
    data = await client.download(f"http://{PUBLIC_NAME}:{network.loopback_port}/cat.png", max_bytes=10**6)
    assert data == PNG
    assert network.dialled == [(PUBLIC_ADDRESS, network.loopback_port)]
    assert up.requests[-1].headers["host"] == f"{PUBLIC_NAME}:{network.loopback_port}"  # Host kept


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0x7f.1",
        "127.1",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "[fc00::1]",
        "[fe80::1]",
        "224.0.0.1",
        "240.0.0.1",
        "[::]",
        "[2002:7f00:1::]",
        "[64:ff9b::a00:1]",
    ],
)
async def test_loopback_private_and_reserved_hosts_are_refused_before_any_connection(
    up: FakeUpstream, network: Network, client: UpstreamClient, host: str
) -> None:
    up.serve("/internal.png", PNG, content_type="image/png")  # what an attacker wants posted to the chat
    with pytest.raises(ImageError) as caught:
        await client.download(f"http://{host}:{network.loopback_port}/internal.png", max_bytes=10**6)
    assert caught.value.user_message == IMAGE_NOT_SHOWN
    assert network.dialled == []
    assert not [r for r in up.requests if r.path == "/internal.png"]


async def test_a_redirect_to_loopback_is_refused_at_that_hop(
    up: FakeUpstream, network: Network, client: UpstreamClient
) -> None:
    internal = up.serve("/internal.png", PNG, content_type="image/png")
    up.serve("/hop", b"", status=302, headers={"Location": internal})
    with pytest.raises(ImageError) as caught:
        await client.download(f"http://{PUBLIC_NAME}:{network.loopback_port}/hop", max_bytes=10**6)
    assert caught.value.user_message == IMAGE_NOT_SHOWN
    assert [r.path for r in up.requests] == ["/hop"]  # the first hop was fetched, the internal one never
    assert network.resolved == [PUBLIC_NAME, "127.0.0.1"]


async def test_a_redirect_between_public_hops_is_followed(
    up: FakeUpstream, network: Network, client: UpstreamClient
) -> None:
    up.serve("/cat.png", PNG, content_type="image/png")
    up.serve("/hop", b"", status=302, headers={"Location": "/cat.png"})
    data = await client.download(f"http://{PUBLIC_NAME}:{network.loopback_port}/hop", max_bytes=10**6)
    assert data == PNG and [r.path for r in up.requests] == ["/hop", "/cat.png"]


async def test_a_name_answering_a_public_and_a_private_address_is_refused(
    up: FakeUpstream, network: Network, client: UpstreamClient
) -> None:
    network.answers["rebind.example"] = [PUBLIC_ADDRESS, "127.0.0.1"]
    up.serve("/cat.png", PNG, content_type="image/png")
    with pytest.raises(ImageError):
        await client.download(f"http://rebind.example:{network.loopback_port}/cat.png", max_bytes=10**6)
    assert network.dialled == []


async def test_redirects_to_other_schemes_are_refused(
    up: FakeUpstream, network: Network, client: UpstreamClient
) -> None:
    for index, target in enumerate(["file:///etc/passwd", "ftp://example.org/x.png", "gopher://127.0.0.1:6379/_"]):
        up.serve(f"/hop{index}", b"", status=302, headers={"Location": target})
        with pytest.raises(ImageError):
            await client.download(f"http://{PUBLIC_NAME}:{network.loopback_port}/hop{index}", max_bytes=10**6)


async def test_closed_port_open_port_private_address_and_junk_all_read_the_same(up: FakeUpstream) -> None:
    up.serve("/missing.png", b"no", status=404)
    up.serve("/text", b"hello", content_type="text/plain")
    up.serve("/big.png", PNG * 100, content_type="image/png")
    port = port_of(up)
    messages: set[str] = set()
    async with UpstreamClient(base_url=up.base_url, api_key=KEY, allow_private_image_urls=True) as onprem:
        for url in (
            "http://127.0.0.1:9/x.png",
            f"http://127.0.0.1:{port}/missing.png",
            f"http://127.0.0.1:{port}/big.png",
        ):
            with pytest.raises(ImageError) as caught:
                await onprem.download(url, max_bytes=len(PNG) * 10)
            messages.add(caught.value.user_message)
    async with UpstreamClient(base_url=up.base_url, api_key=KEY) as guarded:
        for url in (f"http://127.0.0.1:{port}/text", f"http://127.0.0.1:{port}/missing.png", "http://10.1.2.3/"):
            with pytest.raises(ImageError) as caught:
                await guarded.download(url, max_bytes=10**6)
            messages.add(caught.value.user_message)
    assert messages == {IMAGE_NOT_SHOWN}


async def test_one_byte_budget_is_shared_by_the_downloads_of_an_answer(up: FakeUpstream) -> None:
    up.serve("/a.png", PNG, content_type="image/png")
    budget = ByteBudget(len(PNG) + len(PNG) // 2)
    async with UpstreamClient(base_url=up.base_url, api_key=KEY, allow_private_image_urls=True) as onprem:
        assert await onprem.download(up.url("/a.png"), max_bytes=10**6, budget=budget) == PNG
        with pytest.raises(ImageError):
            await onprem.download(up.url("/a.png"), max_bytes=10**6, budget=budget)


def test_the_address_policy_refuses_every_non_public_kind() -> None:
    assert is_public_address("93.184.216.34") and is_public_address("2606:4700::1111")
    refused = [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.1.2.3",
        "224.0.0.251",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1%eth0",
        "fec0::1",
        "ff02::1",
        "2002:c0a8:101::",
        "64:ff9b::7f00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "not an address",
    ]
    assert [address for address in refused if is_public_address(address)] == []


async def test_a_name_that_rebinds_to_loopback_between_hops_is_refused_at_the_second_connection(
    up: FakeUpstream, network: Network, client: UpstreamClient
) -> None:
    answers = iter([[PUBLIC_ADDRESS], ["127.0.0.1"]])  # a short-TTL name: public first, loopback next

    async def rebinding(host: str, port: int) -> list[str]:
        network.resolved.append(host)
        return next(answers)

    up.serve("/cat.png", PNG, content_type="image/png")
    up.serve("/hop", b"", status=302, headers={"Location": "/cat.png"})
    backend = PublicOnlyBackend(resolve=rebinding, connect=network.connect)
    async with UpstreamClient(base_url=up.base_url, api_key=KEY, image_network=backend) as rebound:
        with pytest.raises(ImageError):
            await rebound.download(f"http://rebind.example:{network.loopback_port}/hop", max_bytes=10**6)
    assert network.resolved == ["rebind.example", "rebind.example"]  # resolved per connection, no reuse
    assert network.dialled == [(PUBLIC_ADDRESS, network.loopback_port)]
    assert [r.path for r in up.requests] == ["/hop"]
