"""Resource files: httpUrl downloads into the working directory, with Azure's failure codes."""

import asyncio
import os
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from openbatch.agent.resource_files import ResourceFileError, download

FILES = {"/hello.txt": b"hello world\n", "/script.sh": b"#!/bin/sh\necho from script\n"}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path in FILES:
            self._send(200, FILES[path])
        elif path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/hello.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/forbidden":
            self._send(403, b"no")
        elif path == "/unauthorized":
            self._send(401, b"no")
        elif path == "/broken":
            self._send(500, b"oops")
        else:
            self._send(404, b"not here")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def wd(tmp_path: Path) -> Path:
    path = tmp_path / "task" / "wd"
    path.mkdir(parents=True)
    return path


def fetch(files: list[dict], wd: Path, **kw: object) -> None:
    asyncio.run(download(files, wd, **kw))


def failure_of(files: list[dict], wd: Path, **kw: object) -> ResourceFileError:
    with pytest.raises(ResourceFileError) as caught:
        fetch(files, wd, **kw)
    return caught.value


def test_download_with_default_mode(server: str, wd: Path) -> None:
    fetch([{"httpUrl": f"{server}/hello.txt", "filePath": "hello.txt"}], wd)
    assert (wd / "hello.txt").read_bytes() == b"hello world\n"
    assert stat.S_IMODE((wd / "hello.txt").stat().st_mode) == 0o770
    assert [p.name for p in wd.iterdir()] == ["hello.txt"]  # no temporary file left behind


def test_nested_path_explicit_mode_redirect_and_overwrite(server: str, wd: Path) -> None:
    (wd / "data").mkdir()
    (wd / "data" / "in.txt").write_text("old")
    fetch([
        {"httpUrl": f"{server}/script.sh?sv=2020&sig=secret", "filePath": "bin/deep/run.sh",
         "fileMode": "0755"},
        {"httpUrl": f"{server}/moved", "filePath": "data/in.txt", "fileMode": "644"},
    ], wd)
    assert (wd / "bin/deep/run.sh").read_bytes() == FILES["/script.sh"]
    assert stat.S_IMODE((wd / "bin/deep/run.sh").stat().st_mode) == 0o755
    assert (wd / "data/in.txt").read_bytes() == b"hello world\n"
    assert stat.S_IMODE((wd / "data/in.txt").stat().st_mode) == 0o644


def test_not_found(server: str, wd: Path) -> None:
    error = failure_of([{"httpUrl": f"{server}/nope.txt?sig=secret", "filePath": "nope.txt"}], wd)
    assert error.code == "BlobNotFound"
    failure = error.failure()
    assert failure["category"] == "usererror" and failure["code"] == "BlobNotFound"
    details = {d["name"]: d["value"] for d in failure["details"]}
    assert details == {"FilePath": "nope.txt", "HttpUrl": f"{server}/nope.txt", "HttpStatusCode": "404"}
    assert not (wd / "nope.txt").exists() and list(wd.iterdir()) == []


@pytest.mark.parametrize(("path", "code"), [
    ("/forbidden", "BlobAccessDenied"),
    ("/unauthorized", "BlobAccessDenied"),
    ("/broken", "BlobDownloadMiscError"),
])
def test_http_errors(server: str, wd: Path, path: str, code: str) -> None:
    assert failure_of([{"httpUrl": server + path, "filePath": "f"}], wd).code == code


def test_stops_at_the_first_failure(server: str, wd: Path) -> None:
    error = failure_of([{"httpUrl": f"{server}/nope", "filePath": "a"},
                        {"httpUrl": f"{server}/hello.txt", "filePath": "b"}], wd)
    assert error.code == "BlobNotFound" and not (wd / "b").exists()


@pytest.mark.parametrize("file_path",
                         ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt", "..", ".", ""])
def test_paths_outside_the_working_directory_are_refused(wd: Path, file_path: str) -> None:
    calls: list[httpx.Request] = []
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b"x")

    transport = httpx.MockTransport(handler)
    files = [{"httpUrl": "http://example.invalid/f", "filePath": file_path}]
    error = failure_of(files, wd, transport=transport)
    assert error.code == "ResourceFileWriteFailed"
    assert calls == []  # refused before any request
    assert not (wd.parent / "escape.txt").exists()


def test_symlink_out_of_the_working_directory_is_refused(tmp_path: Path, wd: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (wd / "link").symlink_to(outside)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x"))
    files = [{"httpUrl": "http://example.invalid/f", "filePath": "link/f"}]
    error = failure_of(files, wd, transport=transport)
    assert error.code == "ResourceFileWriteFailed" and list(outside.iterdir()) == []


def test_an_unresolved_auto_storage_container_says_why(wd: Path) -> None:
    """The server resolves autoStorageContainerName; one that reaches a node had no account to come from."""
    error = failure_of([{"autoStorageContainerName": "inputs"}], wd)
    assert error.code == "BlobDownloadMiscError" and "--auto-storage" in error.message


def test_timeout(wd: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    error = failure_of([{"httpUrl": "http://example.invalid/f", "filePath": "f"}], wd,
                       transport=httpx.MockTransport(handler))
    assert error.code == "BlobDownloadTimedOut"


def test_connection_refused_and_bad_urls(wd: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = failure_of([{"httpUrl": f"http://127.0.0.1:{port}/f", "filePath": "f"}], wd)
    assert refused.code == "BlobDownloadMiscError"
    assert failure_of([{"httpUrl": "ftp://host/f", "filePath": "f"}], wd).code == "BlobDownloadMiscError"
    assert failure_of([{"httpUrl": "http://[bad/f", "filePath": "f"}], wd).code == "BlobDownloadMiscError"


def test_write_failure(server: str, wd: Path) -> None:
    (wd / "taken").mkdir()
    error = failure_of([{"httpUrl": f"{server}/hello.txt", "filePath": "taken"}], wd)
    assert error.code == "ResourceFileWriteFailed"
    (wd / "file").write_text("x")
    error = failure_of([{"httpUrl": f"{server}/hello.txt", "filePath": "file/below"}], wd)
    assert error.code == "ResourceFileWriteFailed"
    assert sorted(os.listdir(wd)) == ["file", "taken"]


def test_bad_file_mode(server: str, wd: Path) -> None:
    error = failure_of([{"httpUrl": f"{server}/hello.txt", "filePath": "f", "fileMode": "rwx"}], wd)
    assert error.code == "ResourceFileWriteFailed" and "fileMode" in error.message
    # root writes the file: no setuid, setgid or sticky bit (the API refuses them too)
    error = failure_of([{"httpUrl": f"{server}/hello.txt", "filePath": "g", "fileMode": "4755"}], wd)
    assert error.code == "ResourceFileWriteFailed" and not (wd / "g").exists()


def test_nothing_to_do(wd: Path) -> None:
    fetch([], wd)
    assert list(wd.iterdir()) == []
