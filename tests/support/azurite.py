"""Azurite (the Azure Storage emulator) for the Blob storage tests: a real Blob endpoint on a loopback port.

``scripts/test.sh`` installs it (npm package ``azurite``) into ``.tools/azurite``; the
``azurite`` fixture starts it for the session with ``--skipApiVersionCheck --disableTelemetry``
and skips, saying why, where it is not installed or cannot start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_command() -> str | None:
    local = ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    return shutil.which("azurite-blob")


@dataclass
class Azurite:
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={self.endpoint};")

    def service(self):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def container(self, name: str):  # type: ignore[no-untyped-def]
        """A new (empty) container; returns its ContainerClient."""
        return self.service().create_container(name)

    def sas_url(self, container: str, permission: str = "rwl") -> str:
        """The container's URL with a SAS granting ``permission`` (letters of racwdl) for an hour."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(ACCOUNT, container, account_key=KEY,
                                     permission=ContainerSasPermissions.from_string(permission),
                                     expiry=datetime.now(timezone.utc) + timedelta(hours=1))
        return f"{self.endpoint}/{container}?{sas}"

    def blobs(self, container: str) -> dict[str, bytes]:
        client = self.service().get_container_client(container)
        return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_azurite(location: Path) -> Azurite:
    """Start Azurite's Blob service; raises RuntimeError (with the reason) if it cannot."""
    command = azurite_command()
    if command is None:
        raise RuntimeError("Azurite is not installed (scripts/test.sh installs it with npm into .tools/azurite)")
    port = _free_port()
    log = open(location / "azurite.log", "wb")
    process = subprocess.Popen(
        [command, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
         "--skipApiVersionCheck", "--disableTelemetry", "--loose"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited at start: {(location / 'azurite.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Azurite(process, port)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Azurite did not listen within 30 s")
