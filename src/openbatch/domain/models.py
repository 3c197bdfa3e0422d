"""Request bodies as typed structs, named exactly as on the wire (camelCase).

Decoding a body into these structs is the type check: a missing required
property or a wrong type becomes a 400 (see :func:`decode`). Sub-objects the
service stores and echoes without interpreting them are kept as plain dicts.
Unknown properties are ignored, so clients of newer API versions still work.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, TypeVar

import msgspec

from .errors import BatchError, invalid_body, invalid_property, missing_property

Json = dict[str, Any]


class Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


# --- shared pieces -------------------------------------------------------------------------


class MetadataItem(Model, kw_only=True):
    name: str
    value: str


class EnvironmentSetting(Model, kw_only=True):
    name: str
    value: str | None = None


class ResourceFile(Model, kw_only=True):
    autoStorageContainerName: str | None = None
    storageContainerUrl: str | None = None
    httpUrl: str | None = None
    blobPrefix: str | None = None
    filePath: str | None = None
    fileMode: str | None = None
    identityReference: Json | None = None


class TaskConstraints(Model, kw_only=True):
    maxWallClockTime: str | None = None
    retentionTime: str | None = None
    maxTaskRetryCount: int | None = None


class ExitOptions(Model, kw_only=True):
    jobAction: Literal["none", "disable", "terminate"] | None = None
    dependencyAction: Literal["satisfy", "block"] | None = None


class ExitCodeMapping(Model, kw_only=True):
    code: int
    exitOptions: ExitOptions


class ExitCodeRangeMapping(Model, kw_only=True):
    start: int
    end: int
    exitOptions: ExitOptions


class ExitConditions(Model, kw_only=True):
    exitCodes: list[ExitCodeMapping] | None = None
    exitCodeRanges: list[ExitCodeRangeMapping] | None = None
    preProcessingError: ExitOptions | None = None
    fileUploadError: ExitOptions | None = None
    default: ExitOptions | None = None


class TaskIdRange(Model, kw_only=True):
    start: int
    end: int


class TaskDependencies(Model, kw_only=True):
    taskIds: list[str] | None = None
    taskIdRanges: list[TaskIdRange] | None = None


class AffinityInformation(Model, kw_only=True):
    affinityId: str


class MultiInstanceSettings(Model, kw_only=True):
    numberOfInstances: int | None = None
    coordinationCommandLine: str
    commonResourceFiles: list[ResourceFile] | None = None


class AutoUserSpecification(Model, kw_only=True):
    scope: Literal["task", "pool"] | None = None
    elevationLevel: Literal["nonadmin", "admin"] | None = None


class UserIdentity(Model, kw_only=True):
    username: str | None = None
    autoUser: AutoUserSpecification | None = None


class HttpHeader(Model, kw_only=True):
    name: str
    value: str | None = None


class OutputFileBlobContainerDestination(Model, kw_only=True):
    containerUrl: str
    path: str | None = None
    identityReference: Json | None = None
    uploadHeaders: list[HttpHeader] | None = None


class OutputFileDestination(Model, kw_only=True):
    container: OutputFileBlobContainerDestination | None = None


class OutputFileUploadOptions(Model, kw_only=True):
    uploadCondition: Literal["tasksuccess", "taskfailure", "taskcompletion"]


class OutputFile(Model, kw_only=True):
    filePattern: str
    destination: OutputFileDestination
    uploadOptions: OutputFileUploadOptions


class _TaskCommon(Model, kw_only=True):
    commandLine: str
    containerSettings: Json | None = None
    resourceFiles: list[ResourceFile] | None = None
    environmentSettings: list[EnvironmentSetting] | None = None
    userIdentity: UserIdentity | None = None


# --- jobs ----------------------------------------------------------------------------------


class JobConstraints(Model, kw_only=True):
    maxWallClockTime: str | None = None
    maxTaskRetryCount: int | None = None


class AuthenticationTokenSettings(Model, kw_only=True):
    access: list[Literal["job"]] | None = None


class JobManagerTask(_TaskCommon, kw_only=True):
    id: str
    displayName: str | None = None
    outputFiles: list[OutputFile] | None = None
    constraints: TaskConstraints | None = None
    requiredSlots: int | None = None
    killJobOnCompletion: bool | None = None
    runExclusive: bool | None = None
    applicationPackageReferences: list[Json] | None = None
    authenticationTokenSettings: AuthenticationTokenSettings | None = None
    allowLowPriorityNode: bool | None = None


class JobPreparationTask(_TaskCommon, kw_only=True):
    id: str | None = None
    constraints: TaskConstraints | None = None
    waitForSuccess: bool | None = None
    rerunOnNodeRebootAfterSuccess: bool | None = None


class JobReleaseTask(_TaskCommon, kw_only=True):
    id: str | None = None
    maxWallClockTime: str | None = None
    retentionTime: str | None = None


class AutoPoolSpecification(Model, kw_only=True):
    autoPoolIdPrefix: str | None = None
    poolLifetimeOption: Literal["jobschedule", "job"] | None = None   # required: checked with its path
    keepAlive: bool | None = None
    pool: Json | None = None   # a PoolSpecification, decoded as Pool Add (domain/auto_pools.py)


class PoolInformation(Model, kw_only=True):
    poolId: str | None = None
    autoPoolSpecification: AutoPoolSpecification | None = None


OnAllTasksComplete = Literal["noaction", "terminatejob"]
OnTaskFailure = Literal["noaction", "performexitoptionsjobaction"]


class JobSpecification(Model, kw_only=True):
    """What a job is made of: Job Add's body without its id (a job schedule's jobs come from one)."""

    displayName: str | None = None
    priority: int | None = None
    maxParallelTasks: int | None = None
    allowTaskPreemption: bool | None = None
    constraints: JobConstraints | None = None
    jobManagerTask: JobManagerTask | None = None
    jobPreparationTask: JobPreparationTask | None = None
    jobReleaseTask: JobReleaseTask | None = None
    commonEnvironmentSettings: list[EnvironmentSetting] | None = None
    poolInfo: PoolInformation
    onAllTasksComplete: OnAllTasksComplete | None = None
    onTaskFailure: OnTaskFailure | None = None
    metadata: list[MetadataItem] | None = None
    usesTaskDependencies: bool | None = None
    networkConfiguration: Json | None = None


class JobAddParameter(JobSpecification, kw_only=True):
    id: str


class JobPatchParameter(Model, kw_only=True):
    priority: int | None = None
    maxParallelTasks: int | None = None
    allowTaskPreemption: bool | None = None
    onAllTasksComplete: OnAllTasksComplete | None = None
    constraints: JobConstraints | None = None
    poolInfo: PoolInformation | None = None
    networkConfiguration: Json | None = None
    metadata: list[MetadataItem] | None = None


class JobUpdateParameter(Model, kw_only=True):
    priority: int | None = None
    maxParallelTasks: int | None = None
    allowTaskPreemption: bool | None = None
    constraints: JobConstraints | None = None
    poolInfo: PoolInformation
    metadata: list[MetadataItem] | None = None
    onAllTasksComplete: OnAllTasksComplete | None = None
    networkConfiguration: Json | None = None


class JobDisableParameter(Model, kw_only=True):
    disableTasks: Literal["requeue", "terminate", "wait"]


class JobTerminateParameter(Model, kw_only=True):
    terminateReason: str | None = None


# --- job schedules -------------------------------------------------------------------------


class Schedule(Model, kw_only=True):
    doNotRunUntil: datetime | None = None
    doNotRunAfter: datetime | None = None
    startWindow: str | None = None
    recurrenceInterval: str | None = None


class JobScheduleAddParameter(Model, kw_only=True):
    id: str
    displayName: str | None = None
    schedule: Schedule
    jobSpecification: JobSpecification
    metadata: list[MetadataItem] | None = None


class JobSchedulePatchParameter(Model, kw_only=True):
    schedule: Schedule | None = None
    jobSpecification: JobSpecification | None = None
    metadata: list[MetadataItem] | None = None


class JobScheduleUpdateParameter(Model, kw_only=True):
    schedule: Schedule
    jobSpecification: JobSpecification
    metadata: list[MetadataItem] | None = None


# --- tasks ---------------------------------------------------------------------------------


class TaskAddParameter(_TaskCommon, kw_only=True):
    id: str
    displayName: str | None = None
    exitConditions: ExitConditions | None = None
    outputFiles: list[OutputFile] | None = None
    affinityInfo: AffinityInformation | None = None
    constraints: TaskConstraints | None = None
    requiredSlots: int | None = None
    multiInstanceSettings: MultiInstanceSettings | None = None
    dependsOn: TaskDependencies | None = None
    applicationPackageReferences: list[Json] | None = None
    authenticationTokenSettings: AuthenticationTokenSettings | None = None


class TaskAddCollectionParameter(Model, kw_only=True):
    value: list[Json]


class TaskCollection(Model, kw_only=True):
    """An AddTaskCollection body whose every item is a well-formed task, decoded in one pass.

    Decoding an item here gives what decoding it alone into :class:`TaskAddParameter`
    gives; a body that does not decode so is taken item by item (each bad item gets its
    own error) through :class:`TaskAddCollectionParameter`.
    """

    value: list[TaskAddParameter]


class TaskUpdateParameter(Model, kw_only=True):
    constraints: TaskConstraints | None = None


# --- pools ---------------------------------------------------------------------------------


class ImageReference(Model, kw_only=True):
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str | None = None
    virtualMachineImageId: str | None = None
    sharedGalleryImageId: str | None = None
    communityGalleryImageId: str | None = None


class VirtualMachineConfiguration(Model, kw_only=True):
    imageReference: ImageReference
    nodeAgentSKUId: str
    windowsConfiguration: Json | None = None
    dataDisks: list[Json] | None = None
    licenseType: str | None = None
    containerConfiguration: Json | None = None
    diskEncryptionConfiguration: Json | None = None
    nodePlacementConfiguration: Json | None = None
    extensions: list[Json] | None = None
    osDisk: Json | None = None
    securityProfile: Json | None = None
    serviceArtifactReference: Json | None = None


class StartTask(_TaskCommon, kw_only=True):
    maxTaskRetryCount: int | None = None
    waitForSuccess: bool | None = None


class TaskSchedulingPolicy(Model, kw_only=True):
    nodeFillType: Literal["spread", "pack"]
    #: From api-version 2025-06-01: how tasks of equal-priority jobs share the pool's slots.
    jobDefaultOrder: Literal["none", "creationtime"] | None = None


class PoolAddParameter(Model, kw_only=True):
    id: str
    displayName: str | None = None
    vmSize: str
    virtualMachineConfiguration: VirtualMachineConfiguration | None = None
    cloudServiceConfiguration: Json | None = None
    resizeTimeout: str | None = None
    resourceTags: dict[str, str] | None = None
    targetDedicatedNodes: int | None = None
    targetLowPriorityNodes: int | None = None
    enableAutoScale: bool | None = None
    autoScaleFormula: str | None = None
    autoScaleEvaluationInterval: str | None = None
    enableInterNodeCommunication: bool | None = None
    networkConfiguration: Json | None = None
    startTask: StartTask | None = None
    certificateReferences: list[Json] | None = None
    applicationPackageReferences: list[Json] | None = None
    applicationLicenses: list[str] | None = None
    taskSlotsPerNode: int | None = None
    taskSchedulingPolicy: TaskSchedulingPolicy | None = None
    userAccounts: list[Json] | None = None
    metadata: list[MetadataItem] | None = None
    mountConfiguration: list[Json] | None = None
    targetNodeCommunicationMode: Literal["default", "classic", "simplified"] | None = None
    upgradePolicy: Json | None = None


class PoolPatchParameter(Model, kw_only=True):
    startTask: StartTask | None = None
    certificateReferences: list[Json] | None = None
    applicationPackageReferences: list[Json] | None = None
    metadata: list[MetadataItem] | None = None
    targetNodeCommunicationMode: Literal["default", "classic", "simplified"] | None = None
    displayName: str | None = None
    vmSize: str | None = None
    taskSlotsPerNode: int | None = None
    taskSchedulingPolicy: TaskSchedulingPolicy | None = None
    enableInterNodeCommunication: bool | None = None
    virtualMachineConfiguration: VirtualMachineConfiguration | None = None
    networkConfiguration: Json | None = None
    resourceTags: dict[str, str] | None = None
    userAccounts: list[Json] | None = None
    mountConfiguration: list[Json] | None = None
    upgradePolicy: Json | None = None


class PoolUpdatePropertiesParameter(Model, kw_only=True):
    startTask: StartTask | None = None
    certificateReferences: list[Json]
    applicationPackageReferences: list[Json]
    metadata: list[MetadataItem]
    targetNodeCommunicationMode: Literal["default", "classic", "simplified"] | None = None


DeallocationOption = Literal["requeue", "terminate", "taskcompletion", "retaineddata"]


class PoolEnableAutoScaleParameter(Model, kw_only=True):
    autoScaleFormula: str | None = None
    autoScaleEvaluationInterval: str | None = None


class PoolEvaluateAutoScaleParameter(Model, kw_only=True):
    autoScaleFormula: str


class PreemptNodesParameter(Model, kw_only=True):
    """openbatch's own: which low-priority nodes to preempt (none: every one that can be)."""

    nodeList: list[str] | None = None


class PoolResizeParameter(Model, kw_only=True):
    targetDedicatedNodes: int | None = None
    targetLowPriorityNodes: int | None = None
    resizeTimeout: str | None = None
    nodeDeallocationOption: DeallocationOption | None = None


class NodeRemoveParameter(Model, kw_only=True):
    nodeList: list[str]
    resizeTimeout: str | None = None
    nodeDeallocationOption: DeallocationOption | None = None


# --- decoding ------------------------------------------------------------------------------

T = TypeVar("T", bound=Model)

_MISSING_RE = re.compile(r"Object missing required field `([^`]+)`(?: - at `\$(.*)`)?")
_AT_RE = re.compile(r"^(.*) - at `\$(.*)`$")


def _prop_path(at: str, name: str | None = None) -> str:
    path = at.replace("[", ".").replace("]", "").lstrip(".").replace(".", "/")
    if name:
        path = f"{path}/{name}" if path else name
    return path


def decode(body: bytes | Json, model: type[T]) -> T:
    """Decode and type-check a request body; bad input raises a 400 BatchError."""
    try:
        if isinstance(body, (bytes, bytearray, memoryview)):
            if not body:
                raise invalid_body("The request body is empty.")
            return msgspec.json.decode(body, type=model, strict=False)
        return msgspec.convert(body, type=model, strict=False)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise invalid_body(f"The body is not valid JSON: {exc}") from None


def _validation_error(text: str) -> BatchError:
    missing = _MISSING_RE.match(text)
    if missing:
        return missing_property(_prop_path(missing.group(2) or "", missing.group(1)))
    at = _AT_RE.match(text)
    if at:
        return invalid_property(_prop_path(at.group(2)), "", at.group(1))
    return invalid_body(text)


def to_json(struct: Model) -> Json:
    """The struct as a wire dict, without the properties the client left out."""
    return msgspec.to_builtins(struct)


class NodeDisableSchedulingParameter(Model, kw_only=True):
    nodeDisableSchedulingOption: Literal["requeue", "terminate", "taskcompletion"] | None = None


class UploadBatchServiceLogsConfiguration(Model, kw_only=True):
    containerUrl: str
    startTime: datetime
    endTime: datetime | None = None
    identityReference: Json | None = None


class NodeRebootParameter(Model, kw_only=True):
    nodeRebootOption: DeallocationOption | None = None


class NodeDeallocateParameter(Model, kw_only=True):
    nodeDeallocateOption: DeallocationOption | None = None


class NodeReimageParameter(Model, kw_only=True):
    nodeReimageOption: DeallocationOption | None = None


class ComputeNodeUser(Model, kw_only=True):
    """ComputeNode AddUser's body."""

    name: str
    isAdmin: bool | None = None
    expiryTime: datetime | None = None
    password: str | None = None
    sshPublicKey: str | None = None


class NodeUpdateUserParameter(Model, kw_only=True):
    """ComputeNode UpdateUser's body: everything it leaves out is removed (or defaulted)."""

    password: str | None = None
    expiryTime: datetime | None = None
    sshPublicKey: str | None = None
