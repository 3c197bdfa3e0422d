"""The agent's HTTP client against a scripted asyncio server: framing, keep-alive, failures, proxies."""

import asyncio
from typing import Awaitable, Callable

import pytest

from openbatch.agent import http
from openbatch.agent.http import Client, TransportError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = {name.lower(): value for name, value in (line.split(": ", 1) for line in head[1:] if line)}
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    return head[0], fields, body


def answer(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    """A server running ``handler`` per connection; the list counts the connections."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", connections


def client(url: str, timeout: float = 5.0) -> Client:
    return Client(url, timeout=timeout, connect_timeout=2.0)


def test_json_post_reuses_one_kept_alive_connection() -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(answer(b'{"ok":[1,2]}'))

    async def main() -> None:
        server, url, connections = await serve(handler)
        c = client(url + "/prefix/")
        first = await c.post("/a", {"x": 1}, headers={"Authorization": "Token t"}, params={"wait": 20.0})
        second = await c.post("/b", {"y": None})
        assert (first.status_code, first.json(), second.json()) == (200, {"ok": [1, 2]}, {"ok": [1, 2]})
        assert len(connections) == 1
        await c.aclose()
        server.close()

    asyncio.run(main())
    (line, fields, body), (line2, _, body2) = seen
    assert line == "POST /prefix/a?wait=20.0 HTTP/1.1" and line2 == "POST /prefix/b HTTP/1.1"
    assert fields["authorization"] == "Token t" and fields["content-type"] == "application/json"
    assert fields["host"].startswith("127.0.0.1:")
    assert (body, body2) == (b'{"x":1}', b'{"y":null}')


def test_chunked_and_close_delimited_bodies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.0 503 Busy\r\n\r\nlater")
        await writer.drain()

    async def main() -> None:
        server, url, connections = await serve(handler)
        c = client(url)
        assert (await c.post("/x", {})).json() == {"a": 1}
        assert (await c.post("/empty", {})).content == b""
        busy = await c.post("/y", {})
        assert (busy.status_code, busy.text) == (503, "later")
        assert (await c.post("/z", {})).json() == {"a": 1}  # on a new connection: the last one was closed
        assert len(connections) == 2
        await c.aclose()
        server.close()

    asyncio.run(main())


def test_a_kept_alive_connection_the_server_dropped_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()  # then hang up without telling (as an idle keep-alive timeout does)

    async def main() -> None:
        server, url, connections = await serve(handler)
        c = client(url)
        for _ in range(3):
            assert (await c.post("/x", {})).status_code == 200
        assert len(connections) == 3
        await c.aclose()
        server.close()

    asyncio.run(main())


def test_failures_raise_transport_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SPAM\r\n\r\n")

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}")

    async def main() -> None:
        for handler, timeout in ((silent, 0.2), (garbage, 5.0), (cut, 5.0)):
            server, url, _ = await serve(handler)
            c = client(url, timeout)
            with pytest.raises(TransportError):
                await c.post("/x", {})
            await c.aclose()
            server.close()
        server, url, _ = await serve(silent)
        server.close()
        await server.wait_closed()
        c = client(url)
        with pytest.raises(TransportError):
            await c.post("/x", {})
        await c.aclose()

    asyncio.run(main())


def test_url() -> None:
    assert Client("http://h:81/p/", timeout=1, connect_timeout=1).url("/a", {"q": "1 2"}) == "http://h:81/p/a?q=1+2"
    with pytest.raises(ValueError):
        Client("ftp://h", timeout=1, connect_timeout=1)


def test_requests_through_an_http_proxy_use_the_absolute_form(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(answer(b"{}"))

    async def main() -> None:
        server, url, _ = await serve(proxy)
        monkeypatch.setenv("HTTP_PROXY", url.replace("http://", "http://me:pw@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        c = client("http://batch.example:8080")
        assert (await c.post("/x", [])).status_code == 200
        await c.aclose()
        server.close()

    asyncio.run(main())
    (line, fields, body), = seen
    assert line == "POST http://batch.example:8080/x HTTP/1.1" and body == b"[]"
    assert fields["proxy-authorization"] == "Basic bWU6cHc="
    line, fields, _ = seen[0]
    assert line == "POST http://batch.example:8080/x HTTP/1.1"
    assert fields["host"] == "batch.example:8080" and fields["proxy-authorization"] == "Basic bWU6cHc="


def test_the_environment_is_read_only_when_a_proxy_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not http._proxy_applies("http", "server.example")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    assert http._proxy_applies("http", "server.example")
    assert not http._proxy_applies("http", "direct.example")
    assert not http._proxy_applies("https", "server.example")


def test_several_servers_a_request_without_answer_moves_on_to_the_next() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b'{"from":"live"}'))

    async def main() -> None:
        server, url, _ = await serve(handler)
        gone = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        dead = f"http://127.0.0.1:{gone.sockets[0].getsockname()[1]}"
        gone.close()
        await gone.wait_closed()
        c = client(f"{dead}, {url}/")
        assert c.base_urls == [dead, url]
        with pytest.raises(TransportError, match=dead):
            await c.post("/a", {})
        assert (await c.post("/a", {})).json() == {"from": "live"}   # the retry went to the next one
        assert c.base_url == url
        await c.aclose()
        server.close()

    asyncio.run(main())


def test_every_listed_server_must_be_an_http_url() -> None:
    with pytest.raises(ValueError, match="ftp"):
        client("http://a:1,ftp://b")
    with pytest.raises(ValueError):
        client(" , ")


def test_two_requests_failing_at_once_move_on_once() -> None:
    async def main() -> None:
        gone = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        dead = f"http://127.0.0.1:{gone.sockets[0].getsockname()[1]}"
        gone.close()
        await gone.wait_closed()
        c = client(f"{dead},http://127.0.0.1:9")
        results = await asyncio.gather(c.post("/a", {}), c.post("/b", {}), return_exceptions=True)
        assert all(isinstance(r, TransportError) for r in results)
        assert c.base_url == "http://127.0.0.1:9"   # not back to the dead one
        await c.aclose()

    asyncio.run(main())
