"""The error catalogue: every failure the service reports is a :class:`BatchError`.

Codes and HTTP statuses follow "Batch status and error codes" in the Azure Batch
REST documentation. Raise ``BatchError(code, message, values)``: the status comes
from the catalogue, so a code can never be sent with the wrong status.
"""

from __future__ import annotations

from typing import Iterable

_STATUS_BY_CODE: dict[str, int] = {}


def _register(status: int, codes: str) -> None:
    for code in codes.split():
        _STATUS_BY_CODE[code] = status


_register(
    400,
    """MissingRequiredHeader MissingRequiredProperty UnsupportedHeader UnsupportedProperty
    InvalidHeaderValue InvalidPropertyValue MissingRequiredQueryParameter
    UnsupportedQueryParameter InvalidQueryParameterValue OutOfRangeQueryParameterValue
    RequestUrlFailedToParse InvalidUri InvalidHttpVerb EmptyMetadataKey InvalidRequestBody
    OutOfRangeInput InvalidAuthenticationInfo InvalidInput InvalidMetadata MetadataTooLarge
    MultipleConditionHeadersNotSupported UnsupportedRequestVersion InvalidAutoScalingSettings
    AutoScalingFormulaSyntaxError AutoScalingFormulaTooLong TaskDependenciesNotSpecifiedOnJob
    TaskDependencyListTooLong TaskDependencyRangesTooLong InvalidConstraintValue
    OutOfRangePriority""",
)
_register(403, "AuthenticationFailed InsufficientAccountPermissions AccountIsDisabled IOError")
_register(
    404,
    """ResourceNotFound PoolNotFound NodeNotFound JobScheduleNotFound JobNotFound TaskNotFound
    FileNotFound NodeUserNotFound CertificateNotFound JobPreparationTaskNotRunOnNode
    JobReleaseTaskNotRunOnNode NodeAgentSKUNotFound ApplicationNotFound""",
)
_register(405, "UnsupportedHttpVerb")
_register(410, "AgentRetired")   # (the agent protocol's: an agent whose last nodes left their pool)
_register(411, "MissingContentLengthHeader")
_register(413, "RequestBodyTooLarge RequestEntityTooLarge")
_register(416, "InvalidRange")
_register(500, "InternalError OperationTimedOut")
_register(501, "NotImplemented")
_register(503, "ServerBusy TooManyEnableAutoScaleRequests")
_register(
    409,
    """OperationInvalidForCurrentState PoolBeingDeleted PoolBeingResized PoolBeingCreated
    CertificateStateActive CertificateStateDeleteFailed NodeBeingCreated NodeBeingStarted NodeBeingReimaged NodeBeingRebooted NodeStateUnusable
    JobScheduleBeingTerminated JobScheduleBeingDeleted CertificateBeingDeleted PoolExists
    JobScheduleExists NodeUserExists JobExists CertificateExists JobScheduleDisabled
    JobScheduleCompleted JobBeingTerminated JobBeingDeleted JobDisabled JobCompleted
    JobNotActive TaskExists TaskCompleted TaskNotCompleted TaskSucceeded TaskFilesUnavailable
    TaskFilesCleanedup ActiveJobAndScheduleQuotaReached PoolQuotaReached
    UpgradePoolVersionConflict JobPreparationTaskNotSpecified JobReleaseTaskNotSpecified
    TaskIdSameAsJobPreparationTask TaskIdSameAsJobReleaseTask JobWithSameIdExists
    JobScheduleWithSameIdExists NodeAlreadyInTargetSchedulingState OperationNotValidOnNode
    OperationNotValidOnPool InvalidApplicationPackageReferences PoolNotEligibleForOperation
    AccountCoreQuotaReached""",
)

#: ConditionNotMet is 304 on reads and 412 on writes; callers pass the status.
CONDITION_NOT_MET = "ConditionNotMet"


def status_for(code: str) -> int:
    """The HTTP status documented for ``code`` (500 for an unknown code)."""
    return _STATUS_BY_CODE.get(code, 500)


class BatchError(Exception):
    """A failure reported to the client as a ``BatchError`` body."""

    def __init__(
        self,
        code: str,
        message: str,
        values: Iterable[tuple[str, str]] = (),
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.values = [(str(k), str(v)) for k, v in values]
        self.status = status if status is not None else status_for(code)

    def to_wire(self) -> dict:
        body: dict = {"code": self.code, "message": {"lang": "en-US", "value": self.message}}
        if self.values:
            body["values"] = [{"key": k, "value": v} for k, v in self.values]
        return body


# Factories for the errors raised from many places, so their text stays uniform.


def not_found(code: str, kind: str, ident: str) -> BatchError:
    return BatchError(code, f"The specified {kind} does not exist.", [("ResourceId", ident)] if ident else [])


def invalid_property(name: str, value: object, reason: str) -> BatchError:
    return BatchError(
        "InvalidPropertyValue",
        "The value provided for one of the properties in the request body is invalid.",
        [("PropertyName", name), ("PropertyValue", _short(value)), ("Reason", reason)],
    )


def missing_property(name: str) -> BatchError:
    return BatchError(
        "MissingRequiredProperty",
        "A required property was not specified in the request body.",
        [("PropertyName", name)],
    )


def invalid_body(reason: str) -> BatchError:
    return BatchError(
        "InvalidRequestBody",
        "The specified Request Body is not syntactically valid.",
        [("Reason", reason)],
    )


def invalid_query(name: str, value: str, reason: str) -> BatchError:
    return BatchError(
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        [("QueryParameterName", name), ("QueryParameterValue", value), ("Reason", reason)],
    )


def out_of_range_query(name: str, value: str, reason: str) -> BatchError:
    return BatchError(
        "OutOfRangeQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is outside the permissible range.",
        [("QueryParameterName", name), ("QueryParameterValue", value), ("Reason", reason)],
    )


def invalid_header(name: str, value: str, reason: str) -> BatchError:
    return BatchError(
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
        [("HeaderName", name), ("HeaderValue", value), ("Reason", reason)],
    )


def conflict(code: str, message: str) -> BatchError:
    return BatchError(code, message)


def condition_not_met(*, read: bool) -> BatchError:
    return BatchError(
        CONDITION_NOT_MET,
        "The condition specified using HTTP conditional header(s) is not met.",
        status=304 if read else 412,
    )


def not_implemented(operation_id: str) -> BatchError:
    return BatchError(
        "NotImplemented",
        f"The operation {operation_id} is not implemented by this openbatch server.",
        [("OperationId", operation_id)],
    )


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
