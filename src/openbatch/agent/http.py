"""The agent's HTTP client: JSON POSTs to its server over kept-alive HTTP/1.1 connections.

The agent sends a request or two per handful of tasks, so the client's own cost is a
large part of the agent's CPU per task. httpx spends about 0.7 ms of CPU per request
(its URL and header models, h11, anyio locks, and a failed ``import sniffio`` per
request where sniffio is not installed); this client, which does only what the agent
protocol needs, about 0.1 ms.

What it does: ``POST`` with a JSON (msgspec) or raw body; ``http`` and ``https``
(certificates verified as httpx does, with its SSL context); the proxy environment
variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``: absolute-form
requests for ``http``, a ``CONNECT`` tunnel for ``https``; ``http://`` proxies only);
``Content-Length``, chunked and read-to-close responses; one connection per concurrent
request, reused while the server keeps it alive. Every failure to get an answer
(connection, timeout, malformed response) raises :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

import msgspec

__all__ = ["Client", "Response", "TransportError"]

_MAX_HEAD = 64 * 1024


class TransportError(Exception):
    """No (complete) answer from the server: connection refused or lost, timeout, malformed response."""


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded JSON body (``msgspec.DecodeError``, a ``ValueError``, when it is not JSON)."""
        return msgspec.json.decode(self.content)


@dataclass(frozen=True, slots=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None  # Proxy-Authorization header value from the URL's user info


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Client:
    """POSTs to ``base_url`` (``scheme://host[:port][/prefix]``); ``timeout`` bounds each whole request."""

    def __init__(self, base_url: str, *, timeout: float, connect_timeout: float) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._tls = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        self._prefix = url.path.rstrip("/")
        self._host_header = url.netloc.rpartition("@")[2]
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._proxy = _environment_proxy(url.scheme, self._host)
        self._ssl: ssl.SSLContext | None = None
        self._idle: list[_Connection] = []

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The absolute URL of ``path`` (relative to the base URL's prefix) with its query."""
        return self.base_url + self._target(path, params)[len(self._prefix):]

    async def post(self, path: str, json: Any = None, *, content: bytes | None = None,
                   headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None) -> Response:
        body = content if content is not None else msgspec.json.encode(json)
        target = self._target(path, params)
        if self._proxy is not None and not self._tls:
            target = f"http://{self._host_header}{target}"
        fields = {"host": self._host_header, "accept": "*/*", "content-type": "application/json",
                  "content-length": str(len(body))}
        if self._proxy is not None and self._proxy.authorization and not self._tls:
            fields["proxy-authorization"] = self._proxy.authorization
        fields.update((name.lower(), value) for name, value in (headers or {}).items())
        head = f"POST {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        request = head.encode("latin-1") + body
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(request)
        except TimeoutError:
            raise TransportError(f"no answer from {self.base_url} within {self._timeout:g} s") from None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- internals -------------------------------------------------------------------------

    def _target(self, path: str, params: Mapping[str, Any] | None) -> str:
        target = self._prefix + path
        if params:
            target += "?" + urllib.parse.urlencode(params)
        return target

    async def _exchange(self, request: bytes) -> Response:
        """Send on an idle connection (a fresh one if the server dropped it unseen), read the answer."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.usable():
                connection.close()
                continue
            try:
                return await self._send(connection, request)
            except _StaleConnection:  # closed by the server between requests: not an answer, try anew
                continue
        try:
            return await self._send(await self._connect(), request)
        except _StaleConnection as error:
            raise TransportError(str(error)) from None

    async def _send(self, connection: _Connection, request: bytes) -> Response:
        keep = False
        try:
            connection.writer.write(request)
            try:
                head = await connection.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if error.partial:
                    raise
                raise _StaleConnection("the server closed the connection without answering") from None
            except ConnectionError as error:
                raise _StaleConnection(f"the connection was lost before an answer: {error}") from None
            response, keep = await _read_response(connection.reader, head)
            return response
        except _StaleConnection:
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            raise TransportError(f"{self.base_url}: {error or type(error).__name__}") from None
        finally:
            if keep:
                self._idle.append(connection)
            else:
                connection.close()

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._proxy is None:
                    reader, writer = await asyncio.open_connection(
                        self._host, self._port, ssl=self._ssl_context() if self._tls else None,
                        server_hostname=self._host if self._tls else None, limit=_MAX_HEAD)
                    return _Connection(reader, writer)
                reader, writer = await asyncio.open_connection(self._proxy.host, self._proxy.port, limit=_MAX_HEAD)
                connection = _Connection(reader, writer)
                if self._tls:
                    await self._tunnel(connection)
                return connection
        except TimeoutError:
            raise TransportError(f"could not connect to {self.base_url} within {self._connect_timeout:g} s") from None
        except OSError as error:
            raise TransportError(f"could not connect to {self.base_url}: {error}") from None

    async def _tunnel(self, connection: _Connection) -> None:
        """``CONNECT`` through the proxy, then TLS with the server inside the tunnel."""
        assert self._proxy is not None
        authority = f"{self._host}:{self._port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n"
        if self._proxy.authorization:
            head += f"proxy-authorization: {self._proxy.authorization}\r\n"
        connection.writer.write((head + "\r\n").encode("latin-1"))
        try:
            answer = await connection.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            connection.close()
            raise OSError(f"the proxy did not answer CONNECT: {error}") from None
        status = _status(answer)
        if not 200 <= status < 300:
            connection.close()
            raise OSError(f"the proxy refused CONNECT {authority}: {status}")
        await connection.writer.start_tls(self._ssl_context(), server_hostname=self._host)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import httpx  # only for https: the same certificate verification as before (certifi, SSL_CERT_*)

            self._ssl = httpx.create_ssl_context()
        return self._ssl


class _StaleConnection(Exception):
    """A kept-alive connection closed by the server before it read the request."""


def _status(head: bytes) -> int:
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"malformed status line {parts!r}")
    return int(parts[1])


async def _read_response(reader: asyncio.StreamReader, head: bytes) -> tuple[Response, bool]:
    """The response whose head was read, and whether the connection can carry another request."""
    status = _status(head)
    length: int | None = None
    chunked = False
    keep = head.startswith(b"HTTP/1.1")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep = keep and b"close" not in value.lower()
    if status in (204, 304) or 100 <= status < 200:  # never a body
        content = b""
    elif chunked:
        content = await _read_chunked(reader)
    elif length is not None:
        content = await reader.readexactly(length)
    else:  # delimited by the end of the connection
        content = await reader.read()
        keep = False
    return Response(status, content), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _environment_proxy(scheme: str, host: str) -> _Proxy | None:
    """The proxy the environment names for ``scheme`` (unless ``NO_PROXY`` exempts ``host``)."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError(f"unsupported proxy {url!r} (only http:// proxies)")
    authorization = None
    if parsed.username is not None:
        user = urllib.parse.unquote(parsed.username) + ":" + urllib.parse.unquote(parsed.password or "")
        authorization = "Basic " + base64.b64encode(user.encode()).decode("ascii")
    return _Proxy(parsed.hostname, parsed.port or 80, authorization)
