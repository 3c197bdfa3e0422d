"""Which indexed column answers each filterable property, per list operation."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table

from . import schema

_p, _j, _t, _n, _r = schema.pools.c, schema.jobs.c, schema.tasks.c, schema.nodes.c, schema.prep_release.c
_s = schema.job_schedules.c


def _execution(prefix: str, wire: str, table: Table = schema.prep_release) -> dict[str, ColumnElement]:
    c = table.c
    return {
        f"{wire}/state": c[f"{prefix}_state"],
        f"{wire}/startTime": c[f"{prefix}_start_time"],
        f"{wire}/endTime": c[f"{prefix}_end_time"],
        f"{wire}/exitCode": c[f"{prefix}_exit_code"],
        f"{wire}/result": c[f"{prefix}_result"],
    }


FILTER_COLUMNS: dict[str, dict[str, ColumnElement]] = {
    "Pool_List": {
        "id": _p.id_key,
        "state": _p.state,
        "stateTransitionTime": _p.state_transition_time,
        "allocationState": _p.allocation_state,
        "allocationStateTransitionTime": _p.allocation_state_transition_time,
        "creationTime": _p.creation_time,
        "lastModified": _p.last_modified,
        "enableAutoScale": _p.enable_auto_scale,
        "vmSize": _p.vm_size,
        "enableInterNodeCommunication": _p.enable_inter_node_communication,
    },
    "Job_List": {
        "id": _j.id_key,
        "state": _j.state,
        "stateTransitionTime": _j.state_transition_time,
        "creationTime": _j.creation_time,
        "lastModified": _j.last_modified,
        "executionInfo/startTime": _j.creation_time,
        "executionInfo/endTime": _j.end_time,
        "executionInfo/poolId": _j.pool_id_key,
    },
    "JobSchedule_List": {
        "id": _s.id_key,
        "state": _s.state,
        "stateTransitionTime": _s.state_transition_time,
        "creationTime": _s.creation_time,
        "lastModified": _s.last_modified,
        "executionInfo/endTime": _s.end_time,
        "schedule/doNotRunUntil": _s.do_not_run_until,
        "schedule/doNotRunAfter": _s.do_not_run_after,
    },
    "Task_List": {
        "id": _t.id_key,
        "state": _t.state,
        "stateTransitionTime": _t.state_transition_time,
        "creationTime": _t.creation_time,
        "lastModified": _t.last_modified,
        "executionInfo/startTime": _t.start_time,
        "executionInfo/endTime": _t.end_time,
        "executionInfo/exitCode": _t.exit_code,
        "executionInfo/result": _t.result,
    },
    "ComputeNode_List": {
        "id": _n.id_key,
        "state": _n.state,
        "schedulingState": _n.scheduling_state,
        "stateTransitionTime": _n.state_transition_time,
        "lastBootTime": _n.last_boot_time,
        "allocationTime": _n.allocation_time,
        **_execution("start_task", "startTaskInfo", schema.nodes),
    },
    "Job_ListPreparationAndReleaseTaskStatus": {
        "poolId": _r.pool_id_key,
        "nodeId": _r.node_id_key,
        **_execution("prep", "jobPreparationTaskExecutionInfo"),
        **_execution("release", "jobReleaseTaskExecutionInfo"),
    },
    "Account_ListPoolNodeCounts": {"poolId": _p.id_key},
}
FILTER_COLUMNS["Job_ListFromJobSchedule"] = FILTER_COLUMNS["Job_List"]
