"""The agent's HTTP client: JSON POSTs to its server over kept-alive connections (aiohttp).

The agent sends a request or two per handful of tasks, so the client's own cost is a
part of the agent's CPU per task: aiohttp spends about 0.25 ms of CPU per request where
httpx spends 0.8-1 ms. aiohttp also does what an agent on another host may need:
``https`` (system certificates, ``SSL_CERT_FILE``/``SSL_CERT_DIR``), and the proxy
environment variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``). aiohttp reads those
on every request when asked to (``trust_env``), which costs more than the rest of the
request, so the client asks only when a proxy applies to its server.

Every failure to get an answer (connection, timeout, malformed or cut response) raises
:class:`TransportError`; the agent's loops retry. A request that meets a kept-alive
connection the server closed unseen (disconnected, reset) is sent once more on a new one (every agent request
is safe to repeat: reports are idempotent by run id).
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping

import aiohttp
import msgspec

__all__ = ["Client", "Response", "TransportError"]

#: Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s) can close them.
KEEPALIVE_SECONDS = 4.0


class TransportError(Exception):
    """No (complete) answer from the server: connection refused or lost, timeout, malformed response."""


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    content: bytes
    #: The response's headers, names lower-cased.
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded JSON body (``msgspec.DecodeError``, a ``ValueError``, when it is not JSON)."""
        return msgspec.json.decode(self.content)


class Client:
    """POSTs to ``base_url`` (``scheme://host[:port][/prefix]``); ``timeout`` bounds each whole request.

    ``base_url`` may list several servers of one deployment, comma-separated: a request that gets no
    answer moves the client on to the next one (the caller's retry goes there).
    """

    def __init__(self, base_url: str, *, timeout: float, connect_timeout: float) -> None:
        self.base_urls = [part.strip().rstrip("/") for part in base_url.split(",") if part.strip()]
        if not self.base_urls:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        for base in self.base_urls:
            url = urllib.parse.urlsplit(base)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"not an http(s) URL: {base!r}")
        self.base_url = self.base_urls[0]
        self._proxied = any(_proxy_applies(url.scheme, url.hostname or "")
                            for url in map(urllib.parse.urlsplit, self.base_urls))
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The absolute URL of ``path`` (relative to the base URL's prefix) with its query."""
        return self.base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")

    async def post(self, path: str, json: Any = None, *, content: bytes | None = None,
                   headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None) -> Response:
        body = content if content is not None else msgspec.json.encode(json)
        fields = {"content-type": "application/json", **(headers or {})}
        base = self.base_url
        url = self.url(path, params)
        for attempt in (1, 2):
            try:
                async with self._open().post(url, data=body, headers=fields) as response:
                    return Response(response.status, await response.read(),
                                    {name.lower(): value for name, value in response.headers.items()})
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as error:   # a stale connection
                if attempt == 2:
                    raise self._failed(base, str(error)) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                raise self._failed(base, str(error) or type(error).__name__) from None
        raise AssertionError("unreachable")

    def _failed(self, base: str, why: str) -> TransportError:
        """The error to raise; the next request goes to the server after ``base`` (the one that did not
        answer), if there are several and no other failed request moved on already."""
        if self.base_url == base:
            self.base_url = self.base_urls[(self.base_urls.index(base) + 1) % len(self.base_urls)]
        return TransportError(f"{base}: {why}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use (aiohttp binds it to the running event loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS, limit=0)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=self._proxied,
                                                  skip_auto_headers=("User-Agent",), auto_decompress=False)
        return self._session


def _proxy_applies(scheme: str, host: str) -> bool:
    """Whether the environment names a proxy for ``scheme`` that ``NO_PROXY`` does not exempt ``host`` from."""
    proxies = urllib.request.getproxies_environment()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass_environment(
        host, proxies)
