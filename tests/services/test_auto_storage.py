"""The auto-storage account: container names become read+list SAS URLs before a node sees them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from openbatch.protocol import KillCommand, RunCommand
from openbatch.services.auto_storage import AutoStorage
from tests.support.azurite import ACCOUNT, KEY

CONNECTION = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
              f"BlobEndpoint=http://127.0.0.1:10000/{ACCOUNT};")


def test_connection_strings() -> None:
    storage = AutoStorage.from_connection_string(CONNECTION)
    assert (storage.account, storage.endpoint) == (ACCOUNT, f"http://127.0.0.1:10000/{ACCOUNT}")
    with pytest.raises(ValueError):
        AutoStorage.from_connection_string(f"BlobEndpoint=https://x.blob.core.windows.net/;SharedAccessSignature=sv=1")


def test_run_commands_get_sas_urls_and_nothing_else_changes() -> None:
    storage = AutoStorage.from_connection_string(CONNECTION)
    run = RunCommand(id="r", kind="task", nodeId="n", commandLine="x", taskDir="d", environment={"A": "1"},
                     resourceFiles=[{"autoStorageContainerName": "inputs", "filePath": "in", "blobPrefix": "a/"},
                                    {"httpUrl": "http://h/f", "filePath": "f"}])
    kill = KillCommand(id="k")
    resolved, same = storage.resolve([run, kill])
    assert same is kill and resolved.environment == {"A": "1"} and resolved.taskDir == "d"
    first, second = resolved.resourceFiles
    assert second == {"httpUrl": "http://h/f", "filePath": "f"}
    assert "autoStorageContainerName" not in first and (first["filePath"], first["blobPrefix"]) == ("in", "a/")
    url = urlsplit(first["storageContainerUrl"])
    assert url.path == f"/{ACCOUNT}/inputs"
    query = parse_qs(url.query)
    assert query["sp"] == ["rl"] and query["sr"] == ["c"] and "sig" in query
    assert storage.resolve([kill])[0] is kill
