"""Auto pools (PoolInformation.autoPoolSpecification): the pool a job creates for itself.

When a job with an auto pool specification is added, the pool is created from the
specification, named ``<autoPoolIdPrefix>_<GUID>`` (a GUID alone without a prefix); the job's
``executionInfo.poolId`` names it while ``poolInfo`` keeps the specification, as Azure does.
With ``poolLifetimeOption`` ``job`` the pool is deleted when the job completes or is deleted,
unless ``keepAlive``. ``jobschedule`` applies only to job schedules: their first job creates the
pool, every later job of the schedule runs on it, and it goes when the schedule completes or
is deleted (services/job_schedules.py). A pool the specification
describes must be one Pool Add would accept: it is checked as one, and its errors name the
property under ``poolInfo/autoPoolSpecification/pool``. A pool that cannot be created for a
reason of the account (its pool quota) does not refuse the job: the job is added with a
``schedulingError`` that says why (its tasks wait, visibly).
"""

from __future__ import annotations

import uuid
from typing import Any

from .errors import BatchError, invalid_property, missing_property
from .models import PoolAddParameter, decode
from .validation import check_id

Json = dict[str, Any]

PREFIX = "poolInfo/autoPoolSpecification"
MAX_PREFIX_LENGTH = 20


def prefixed(error: BatchError, prefix: str) -> BatchError:
    """The same error with its PropertyName under ``prefix``."""
    values = [(key, f"{prefix}/{value}" if key == "PropertyName" and value else value)
              for key, value in error.values]
    return BatchError(error.code, error.message, values, status=error.status)


def new_pool_id(spec: Json) -> str:
    prefix = spec.get("autoPoolIdPrefix")
    guid = str(uuid.uuid4())
    return f"{prefix}_{guid}" if prefix else guid


def pool_parameter(spec: Json, pool_id: str) -> PoolAddParameter:
    """The Pool Add request an auto pool specification makes (400s name the spec's properties)."""
    pool = spec.get("pool")
    if not pool:
        raise missing_property(f"{PREFIX}/pool")
    try:
        return decode({**pool, "id": pool_id}, PoolAddParameter)
    except BatchError as error:
        raise prefixed(error, f"{PREFIX}/pool") from None


def check_spec(spec: Json, validate_pool: Any, *, in_schedule: bool = False) -> None:
    """400 for a specification no pool can come from (``validate_pool``: Pool Add's own checks);
    ``in_schedule``: the job specification of a job schedule, where the pool may live as long as it."""
    if spec.get("poolLifetimeOption") is None:
        raise missing_property(f"{PREFIX}/poolLifetimeOption")
    if spec.get("poolLifetimeOption") != "job" and not (in_schedule and spec["poolLifetimeOption"] == "jobschedule"):
        raise invalid_property(f"{PREFIX}/poolLifetimeOption", spec.get("poolLifetimeOption"),
                               "A job's auto pool lives as long as the job ('job'); 'jobschedule' applies only "
                               "to job schedules.")
    prefix = spec.get("autoPoolIdPrefix")
    if prefix is not None:
        if len(prefix) > MAX_PREFIX_LENGTH:
            raise invalid_property(f"{PREFIX}/autoPoolIdPrefix", prefix,
                                   f"The prefix can be up to {MAX_PREFIX_LENGTH} characters long.")
        check_id(prefix, f"{PREFIX}/autoPoolIdPrefix")
    parameter = pool_parameter(spec, new_pool_id(spec))
    try:
        validate_pool(parameter)
    except BatchError as error:
        raise prefixed(error, f"{PREFIX}/pool") from None


def auto_pool_spec(job: Json) -> Json | None:
    return (job.get("poolInfo") or {}).get("autoPoolSpecification")


def pool_to_delete(job: Json) -> str | None:
    """The auto pool that goes when this job ends (None: no auto pool, or keepAlive)."""
    spec = auto_pool_spec(job)
    if not spec or spec.get("keepAlive") or spec.get("poolLifetimeOption") != "job":
        return None
    return (job.get("executionInfo") or {}).get("poolId")


def creation_failed(error: BatchError) -> Json:
    """The job's schedulingError when its auto pool could not be created."""
    return {"category": "usererror", "code": error.code,
            "message": f"The auto pool could not be created: {error.message}",
            "details": [{"name": key, "value": str(value)} for key, value in error.values]}

