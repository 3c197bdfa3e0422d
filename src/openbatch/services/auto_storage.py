"""The auto-storage account: ResourceFile.autoStorageContainerName resolved to a container SAS URL.

Azure links a storage account to the Batch account; here the server is given its connection
string (``openbatch serve --auto-storage``; Azurite's works). A node never sees the account
key: when a run is sent, each resource file that names an auto-storage container gets a
``storageContainerUrl`` with a read+list SAS for that container, valid for
:data:`SAS_LIFETIME`. Without an auto-storage account a request naming such a container is refused
(:func:`check_configured`); one stored before the server lost its account is sent as it is and the
node fails the task with a message that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..domain.support import Refused, check_supported
from ..protocol import Command, RunCommand

#: How long the SAS of a resolved auto-storage container stays valid (a task may wait that long to start).
SAS_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class AutoStorage:
    account: str
    key: str
    endpoint: str   # the Blob service URL, no trailing slash

    @classmethod
    def from_connection_string(cls, connection_string: str) -> "AutoStorage":
        """Parse a storage connection string; raises ValueError if it names no account key."""
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(connection_string)
        key = getattr(client.credential, "account_key", None)
        if not client.account_name or not key:
            raise ValueError("the auto-storage connection string must name an AccountName and an AccountKey")
        return cls(client.account_name, key, client.url.rstrip("/"))

    def container_url(self, container: str) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(self.account, container, account_key=self.key,
                                     permission=ContainerSasPermissions(read=True, list=True),
                                     expiry=datetime.now(timezone.utc) + SAS_LIFETIME)
        return f"{self.endpoint}/{container}?{sas}"

    def resolve(self, commands: list[Command]) -> list[Command]:
        """The commands with every auto-storage resource file turned into a container SAS URL."""
        return [self._resolved(command) if isinstance(command, RunCommand) and _uses_auto_storage(command)
                else command for command in commands]

    def _resolved(self, command: RunCommand) -> RunCommand:
        files: list[dict[str, Any]] = []
        for spec in command.resourceFiles:
            name = spec.get("autoStorageContainerName")
            if name:
                spec = {key: value for key, value in spec.items() if key != "autoStorageContainerName"}
                spec["storageContainerUrl"] = self.container_url(name)
            files.append(spec)
        return RunCommand(**{**{field: getattr(command, field) for field in command.__struct_fields__},
                             "resourceFiles": files})


def _uses_auto_storage(command: RunCommand) -> bool:
    return any(spec.get("autoStorageContainerName") for spec in command.resourceFiles)


_NEEDS = "resourceFiles[]/autoStorageContainerName"
_WHAT = "Resource files from the auto-storage account"
_WHY = "this server has no auto-storage account: start it with --auto-storage CONNECTION_STRING"
#: Where a request names an auto-storage container: a task; a job's preparation, release and manager
#: tasks; a pool's start task.
TASK_NEEDS = (Refused(_NEEDS, _WHAT, _WHY),)
JOB_NEEDS = tuple(Refused(f"{task}/{_NEEDS}", _WHAT, _WHY)
                  for task in ("jobPreparationTask", "jobReleaseTask", "jobManagerTask"))
POOL_NEEDS = (Refused(f"startTask/{_NEEDS}", _WHAT, _WHY),)


def check_configured(storage: AutoStorage | None, request: Any, needs: tuple[Refused, ...]) -> None:
    """400 UnsupportedProperty when ``request`` names an auto-storage container and there is no account."""
    if storage is None:
        check_supported(request, needs)
