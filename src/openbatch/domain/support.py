"""What this server does not do yet, and what it accepts with no local meaning.

openbatch never answers success for what it will not do: a request that asks for a
property listed in a ``REFUSED_*`` table is refused with 400 ``UnsupportedProperty``
naming the property (a 4xx, so that no client retries it) and changes nothing. When
a later change implements one, its rule leaves the table. The tables are also the
"Properties" part of docs/coverage.md (``scripts/coverage_table.py`` renders them).

``ACCEPTED_WITHOUT_LOCAL_MEANING`` lists what is stored and returned as sent although
it changes nothing here: properties that only place or shape a virtual machine in
Azure (its size, image, disks, network) have no meaning for a node that is a
directory on this host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from .errors import BatchError


def _given(value: Any) -> bool:
    """Present and not empty (an empty list asks for nothing)."""
    return value is not None and value != [] and value != {}


@dataclass(frozen=True, slots=True)
class Refused:
    """A property refused while ``when(value)`` holds for its value in a request."""

    path: str   # slash-separated; ``[]`` after a name walks every item of that list
    what: str   # what it asks for, as the error and the docs say it
    until: str  # when it comes: the issue that implements it, or why not
    when: Callable[[Any], bool] = _given


#: Refused in every kind of task: tasks, start tasks, job preparation/release and job manager tasks.
REFUSED_TASK_COMMON: tuple[Refused, ...] = (
    Refused("containerSettings/registry/identityReference", "Pulling container images with a managed identity",
            "no local equivalent; give the registry's username and password"),
    Refused("resourceFiles[]/identityReference", "Downloads with a managed identity",
            "no local equivalent; use a SAS URL or the auto-storage account"),
)

REFUSED_OUTPUTS: tuple[Refused, ...] = (
    Refused("outputFiles[]/destination/container/identityReference", "Uploads with a managed identity",
            "no local equivalent; use a containerUrl with a SAS"),
)

REFUSED_TASK: tuple[Refused, ...] = REFUSED_TASK_COMMON + REFUSED_OUTPUTS

REFUSED_JOB_CHANGE: tuple[Refused, ...] = (
    Refused("poolInfo/autoPoolSpecification", "Moving an existing job to a new auto pool",
            "an auto pool is made when its job is added; Update/Patch may name an existing pool"),
)

#: Refused in Pool Add and Pool Patch (UpdateProperties checks its startTask and certificates).
REFUSED_POOL: tuple[Refused, ...] = (
    Refused("virtualMachineConfiguration/containerConfiguration/containerRegistries[]/identityReference",
            "Pulling container images with a managed identity",
            "no local equivalent; give the registry's username and password"),
    Refused("virtualMachineConfiguration/extensions", "VM extensions", "no local equivalent yet"),
    Refused("mountConfiguration", "Mounting file systems on the nodes", "not planned yet"),
    Refused("certificateReferences", "Certificates on the nodes", "not planned (Azure retires certificates)"),
    Refused("applicationLicenses", "Application licenses", "not planned yet"),
    *(Refused(f"startTask/{r.path}", r.what, r.until, r.when) for r in REFUSED_TASK_COMMON),
)

#: Job Add: its preparation, release and manager tasks, and the pool an auto pool specification describes.
REFUSED_JOB: tuple[Refused, ...] = (
    *(Refused(f"jobPreparationTask/{r.path}", r.what, r.until, r.when) for r in REFUSED_TASK_COMMON),
    *(Refused(f"jobReleaseTask/{r.path}", r.what, r.until, r.when) for r in REFUSED_TASK_COMMON),
    *(Refused(f"jobManagerTask/{r.path}", r.what, r.until, r.when) for r in REFUSED_TASK_COMMON + REFUSED_OUTPUTS),
    *(Refused(f"poolInfo/autoPoolSpecification/pool/{r.path}", r.what, r.until, r.when) for r in REFUSED_POOL),
)

REFUSED_POOL_PROPERTIES: tuple[Refused, ...] = tuple(
    r for r in REFUSED_POOL if r.path.startswith(("startTask/", "certificateReferences")))

REFUSED_RESIZE: tuple[Refused, ...] = ()

#: (property, why it is accepted and returned although it changes nothing here)
ACCEPTED_WITHOUT_LOCAL_MEANING: tuple[tuple[str, str], ...] = (
    ("pool vmSize", "a node is a directory on this host, not a VM of some size"),
    ("pool virtualMachineConfiguration/imageReference, nodeAgentSKUId, windowsConfiguration, licenseType",
     "tasks run on the host's own OS whatever image the pool names"),
    ("pool virtualMachineConfiguration/dataDisks, osDisk, diskEncryptionConfiguration, securityProfile, "
     "nodePlacementConfiguration, serviceArtifactReference", "disks and placement of Azure VMs"),
    ("pool networkConfiguration, job networkConfiguration", "Azure virtual networks and public IPs"),
    ("pool resizeTimeout", "local nodes are created at once"),
    ("pool targetNodeCommunicationMode", "agents always connect outbound (Azure's simplified mode)"),
    ("pool upgradePolicy", "OS upgrades of Azure VM scale sets"),
    ("pool resourceTags", "tags of Azure resources"),
    ("pool enableInterNodeCommunication", "local nodes share this host and always reach each other"),
    ("pool userAccounts/windowsUserConfiguration", "Windows logon options (nodes here run Linux)"),
    ("job allowTaskPreemption", "there are no low-priority nodes to preempt"),
)


def check_supported(value: Any, rules: Sequence[Refused], prefix: str = "") -> None:
    """Raise 400 UnsupportedProperty for the first rule that ``value`` (a request struct or dict) hits."""
    for rule in rules:
        for path, found in _values(value, rule.path.split("/"), prefix):
            if rule.when(found):
                raise unsupported(path, rule)


def unsupported(path: str, rule: Refused) -> BatchError:
    return BatchError(
        "UnsupportedProperty",
        "One of the properties specified in the request body is not supported.",
        [("PropertyName", path),
         ("Reason", f"{rule.what}: not supported by this openbatch server yet ({rule.until}). "
                    "Nothing was changed.")],
    )


def _values(value: Any, parts: list[str], path: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of every place ``parts`` names in ``value``."""
    if value is None:
        return
    if not parts:
        yield path, value
        return
    name, rest = parts[0], parts[1:]
    listed = name.endswith("[]")
    name = name.removesuffix("[]")
    child = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    where = f"{path}/{name}" if path else name
    if listed:
        for index, item in enumerate(child or ()):
            yield from _values(item, rest, f"{where}/{index}")
    else:
        yield from _values(child, rest, where)
