"""Which runs go into a container (domain/containers.py)."""

from __future__ import annotations

import pytest

from openbatch.domain.containers import check_container_configuration, check_container_settings, run_container
from openbatch.domain.errors import BatchError
from openbatch.protocol import RunContainer

POOL = {"virtualMachineConfiguration": {"containerConfiguration": {"type": "dockerCompatible"}}}
SETTINGS = {"imageName": "busybox", "containerRunOptions": "--rm", "workingDirectory": "containerImageDefault",
            "containerHostBatchBindMounts": [{"source": "Shared", "isReadOnly": True}]}


def test_a_container_task_on_a_container_pool() -> None:
    assert run_container(SETTINGS, POOL, must_match=True) == RunContainer(
        imageName="busybox", runOptions="--rm", workingDirectory="containerImageDefault",
        bindMounts=[{"source": "Shared", "isReadOnly": True}])


def test_host_runs_need_no_container() -> None:
    assert run_container(None, {}, must_match=True) is None
    assert run_container(None, POOL, must_match=False) is None   # a start, preparation or release task


@pytest.mark.parametrize("settings, pool", [(None, POOL), (SETTINGS, {}), (SETTINGS, None)])
def test_a_mismatch_is_sent_as_the_reason_to_fail(settings: dict | None, pool: dict | None) -> None:
    container = run_container(settings, pool, must_match=True)
    assert container is not None and container.error and "container" in container.error


@pytest.mark.parametrize("settings", [{"imageName": ""}, {"imageName": "x", "workingDirectory": "elsewhere"},
                                      {"imageName": "x", "containerHostBatchBindMounts": [{"source": "Root"}]}])
def test_bad_settings(settings: dict) -> None:
    with pytest.raises(BatchError):
        check_container_settings(settings, "")


def test_bad_configurations() -> None:
    for configuration in ({"type": "rkt"}, {"type": "dockerCompatible", "containerImageNames": [""]}):
        with pytest.raises(BatchError):
            check_container_configuration(configuration)
    check_container_configuration({"type": "criCompatible", "containerImageNames": ["a", "b:1"]})
