"""The agent protocol as an attacker or a broken agent would use it: every bad message is a 400 BatchError,
nothing is read before the caller is authenticated, a retired agent's credential stops working at once,
and long-polls end cleanly when the server stops."""

from __future__ import annotations

import threading
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from openbatch.auth.shared_key import sign
from openbatch.protocol import PREFIX, SERVER_STOPPING
from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.live import LiveServer, start_server


def _pool(batch: BatchClient) -> str:
    pool_id = uid("proto")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=0,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    return pool_id


def _register(server: LiveServer, pool_id: str, nodes: int = 1) -> tuple[str, list[str]]:
    """Register as a remote agent with Shared Key: (authorization header, node ids)."""
    body = httpx.Request("POST", "http://x", json={"pool": pool_id, "nodeCount": nodes, "hostname": "test"}).content
    url = f"{server.url}{PREFIX}/register"
    headers = {"ocp-date": formatdate(usegmt=True), "content-type": "application/json",
               "content-length": str(len(body))}
    headers["authorization"] = sign("POST", url, headers, server.account, server.key)
    answer = httpx.post(url, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["nodeLostAfter"] > 0
    return f"OpenBatchAgent {data['agentId']}:{data['credential']}", [n["id"] for n in data["nodes"]]


def _batch_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()
    assert error["message"]["value"], error
    if code:
        assert error["code"] == code, error
    return error


@pytest.fixture
def agent(batch: BatchClient, live_nodes: LiveServer) -> tuple[str, str, list[str]]:
    pool_id = _pool(batch)
    auth, nodes = _register(live_nodes, pool_id)
    return pool_id, auth, nodes


def test_malformed_messages_are_400_batch_errors(live_nodes: LiveServer, agent) -> None:  # type: ignore[no-untyped-def]
    _, auth, _ = agent
    events = f"{live_nodes.url}{PREFIX}/events"
    work = f"{live_nodes.url}{PREFIX}/work"
    headers = {"authorization": auth, "content-type": "application/json"}
    for body in (b"[]", b"3", b'"x"', b"{", b'{"events": {}}', b'{"events": [1]}',
                 b'{"events": [{"type": "exited", "id": "t-1", "exitCode": "abc"}]}',
                 b'{"events": [{"id": "t-1"}]}', b'{"takeCommands": "yes"}'):
        _batch_error(httpx.post(events, content=body, headers=headers), 400, "InvalidRequestBody")
    for body in (b"[]", b'{"runs": "t-1"}', b'{"runs": [1]}', b"\xff"):
        _batch_error(httpx.post(work, content=body, headers=headers), 400, "InvalidRequestBody")
    _batch_error(httpx.post(work, params={"wait": "soon"}, headers=headers), 400)
    _batch_error(httpx.post(f"{live_nodes.url}{PREFIX}/register", content=b"[]",
                            headers={"authorization": "OpenBatchJoin nope"}), 403, "AuthenticationFailed")
    # a report of an exit the server never ordered changes nothing
    ok = httpx.post(events, json={"events": [{"type": "exited", "id": "t-unknown", "exitCode": 0}]}, headers=headers)
    assert ok.status_code == 200 and ok.json() == {"commands": []}


def test_nothing_is_read_before_the_caller_is_authenticated(live_nodes: LiveServer, agent) -> None:  # type: ignore[no-untyped-def]
    _, auth, _ = agent
    big = b"{" + b" " * (8 * 1024 * 1024) + b"}"
    for path in ("/events", "/work", "/files/x"):
        response = httpx.post(f"{live_nodes.url}{PREFIX}{path}", content=big,
                              headers={"authorization": "OpenBatchAgent agent-nope:wrong"}, timeout=30)
        _batch_error(response, 403, "AuthenticationFailed")
    # authenticated, a body past the limit is refused without being kept
    _batch_error(httpx.post(f"{live_nodes.url}{PREFIX}/events", content=big, headers={"authorization": auth},
                            timeout=30), 413, "RequestBodyTooLarge")
    # registration by Shared Key is checked on the headers alone
    response = httpx.post(f"{live_nodes.url}{PREFIX}/register", content=big, timeout=30,
                          headers={"authorization": f"SharedKey {live_nodes.account}:bm9wZQ==",
                                   "ocp-date": formatdate(usegmt=True)})
    _batch_error(response, 403)


def test_a_retired_agent_is_not_authenticated_any_more_and_told_why(batch: BatchClient, live_nodes: LiveServer,
                                                                   agent) -> None:  # type: ignore[no-untyped-def]
    """Its last node left the pool: its credential ends, and (its RemoveNode gone with it) it is told so with
    410 AgentRetired, so that it stops quietly rather than log that the server no longer knows it."""
    pool_id, auth, (node_id,) = agent
    work = f"{live_nodes.url}{PREFIX}/work"
    assert httpx.post(work, json={"runs": []}, headers={"authorization": auth}).status_code == 200  # cached now
    batch.begin_remove_nodes(pool_id, m.BatchNodeRemoveOptions(node_ids=[node_id]), polling_interval=1).result(30)
    _batch_error(httpx.post(work, json={"runs": []}, headers={"authorization": auth}), 410, "AgentRetired")
    _batch_error(httpx.post(f"{live_nodes.url}{PREFIX}/events", json={"events": []}, headers={"authorization": auth}),
                 410, "AgentRetired")
    stranger = auth.replace("OpenBatchAgent agent-", "OpenBatchAgent agent-0")
    _batch_error(httpx.post(work, json={"runs": []}, headers={"authorization": stranger}), 403, "AuthenticationFailed")


def test_long_polls_end_cleanly_when_the_server_stops(tmp_path: Path, spec) -> None:  # type: ignore[no-untyped-def]
    server = start_server(tmp_path, None, "sqlite", spec, node_provider="local", node_lost_after=30.0)
    stopped = False
    try:
        batch = BatchClient(endpoint=server.url, credential=AzureNamedKeyCredential(server.account, server.key))
        auth, _ = _register(server, _pool(batch))
        answers: list[object] = []

        def poll() -> None:
            try:
                answer = httpx.post(f"{server.url}{PREFIX}/work", params={"wait": 20}, json={"runs": []},
                                    headers={"authorization": auth}, timeout=30)
                # (told why: its next calls may find no server for a while, which is no fault to warn of)
                answers.append(answer.status_code if answer.headers.get(SERVER_STOPPING) == "1" else answer)
            except httpx.HTTPError as error:
                answers.append(type(error).__name__)

        threads = [threading.Thread(target=poll) for _ in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: sum(server.app.runtime.hub._polling.values()) == 3, message="three long-polls waiting")
        server.stop()
        stopped = True
        for thread in threads:
            thread.join(10)
        assert answers == [200, 200, 200], answers   # each ends with no commands (it was a 500 each)
    finally:
        if not stopped:
            server.stop()
        server.app.services.ctx.store.dispose()
