"""The refusal rules: which request asks for what this server does not do yet."""

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.models import PoolResizeParameter, TaskAddParameter, decode
from openbatch.domain.support import REFUSED_RESIZE, REFUSED_TASK, Refused, check_supported


def _task(**extra: object) -> TaskAddParameter:
    return decode({"id": "t", "commandLine": "x", **extra}, TaskAddParameter)


def _refusal(value: object, rules: tuple) -> dict[str, str]:
    with pytest.raises(BatchError) as info:
        check_supported(value, rules)
    assert (info.value.code, info.value.status) == ("UnsupportedProperty", 400)
    return dict(info.value.values)


def test_a_plain_task_passes() -> None:
    check_supported(_task(resourceFiles=[{"httpUrl": "https://x/y", "filePath": "y"}], outputFiles=[]), REFUSED_TASK)
    check_supported(_task(userIdentity={"autoUser": {"elevationLevel": "admin"}}), REFUSED_TASK)


def test_the_refused_property_is_named_with_its_index() -> None:
    task = _task(resourceFiles=[{"httpUrl": "https://x/y", "filePath": "y"},
                                {"storageContainerUrl": "https://a.blob.core.windows.net/c",
                                 "identityReference": {"resourceId": "/x"}}])
    values = _refusal(task, REFUSED_TASK)
    assert values["PropertyName"] == "resourceFiles/1/identityReference"
    assert "not supported" in values["Reason"] and "SAS" in values["Reason"]
    output = {"filePattern": "*", "uploadOptions": {"uploadCondition": "taskcompletion"},
              "destination": {"container": {"containerUrl": "https://a/c", "identityReference": {"resourceId": "/x"}}}}
    assert _refusal(_task(outputFiles=[output]), REFUSED_TASK)["PropertyName"] == \
        "outputFiles/0/destination/container/identityReference"


def test_conditions_on_values() -> None:
    rules = (Refused("targetLowPriorityNodes", "Something", "never", lambda value: value > 0),)
    check_supported(PoolResizeParameter(targetDedicatedNodes=2, targetLowPriorityNodes=0), rules)
    assert _refusal(PoolResizeParameter(targetLowPriorityNodes=1), rules)["PropertyName"] == "targetLowPriorityNodes"


def test_low_priority_nodes_and_autoscale_are_no_longer_refused() -> None:
    check_supported(PoolResizeParameter(targetLowPriorityNodes=3), REFUSED_RESIZE)
