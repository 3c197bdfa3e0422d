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


def test_without_an_account_requests_naming_a_container_are_refused(world) -> None:  # type: ignore[no-untyped-def]
    from openbatch.domain.errors import BatchError
    from openbatch.domain.models import JobAddParameter, TaskAddParameter, decode
    from tests.services.conftest import ACCOUNT

    files = [{"autoStorageContainerName": "inputs"}]
    world.pool("p", nodes=0)
    world.job("j", "p")
    outcomes = world.services.tasks.add_collection(ACCOUNT, "j", [
        decode({"id": "ok", "commandLine": "x", "resourceFiles": [{"httpUrl": "http://h/f", "filePath": "f"}]},
               TaskAddParameter),
        decode({"id": "auto", "commandLine": "x", "resourceFiles": files}, TaskAddParameter)])
    assert [o.error.code if o.error else None for o in outcomes] == [None, "UnsupportedProperty"]
    assert dict(outcomes[1].error.values)["PropertyName"] == "resourceFiles/0/autoStorageContainerName"
    with pytest.raises(BatchError) as refused:
        world.services.jobs.add(ACCOUNT, decode({"id": "j2", "poolInfo": {"poolId": "p"},
                                                 "jobManagerTask": {"id": "m", "commandLine": "x",
                                                                    "resourceFiles": files}}, JobAddParameter))
    assert dict(refused.value.values)["PropertyName"] == "jobManagerTask/resourceFiles/0/autoStorageContainerName"
    with pytest.raises(BatchError) as refused:
        world.pool("p2", nodes=0, startTask={"commandLine": "x", "resourceFiles": files})
    assert "--auto-storage" in dict(refused.value.values)["Reason"]
