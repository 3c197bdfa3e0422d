"""What the agent's host is using, for the pool's autoscale samples: read from /proc (Linux).

The agent reports it with its long-polls, at most once per :data:`EVERY_SECONDS`: CPU busy percent
since the previous reading, memory in use, bytes used on the file system of its nodes, and the
host's running totals of disk and network traffic (the server turns totals into amounts per
sample period). A value the host does not offer is left out, never guessed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

EVERY_SECONDS = 1.0
#: Block devices that are not disks (their traffic is counted on the disk beneath, or nowhere).
_NOT_DISKS = ("loop", "ram", "zram", "dm-", "md", "sr")


class HostUsage:
    def __init__(self, root: Path, proc: Path = Path("/proc"), sys_block: Path = Path("/sys/block")) -> None:
        self.root = root
        self.proc = proc
        self.sys_block = sys_block
        self._cpu: tuple[int, int] | None = None
        self._last: tuple[float, dict[str, float]] | None = None

    def read(self) -> dict[str, float]:
        """The current usage (the same one within :data:`EVERY_SECONDS`)."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < EVERY_SECONDS:
            return self._last[1]
        usage: dict[str, float] = {}
        for part in (self._cpu_percent, self._memory, self._disk_used, self._disk_traffic, self._network):
            try:
                usage.update(part())
            except (OSError, ValueError, IndexError):
                continue   # not offered here: left out
        self._last = (now, usage)
        return usage

    def _cpu_percent(self) -> dict[str, float]:
        fields = [int(v) for v in (self.proc / "stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        total = sum(fields[:8])
        previous, self._cpu = self._cpu, (idle, total)
        if previous is None or total <= previous[1]:
            return {}
        busy = 1.0 - (idle - previous[0]) / (total - previous[1])
        return {"cpuPercent": round(max(0.0, min(1.0, busy)) * 100.0, 2)}

    def _memory(self) -> dict[str, float]:
        info = {}
        for line in (self.proc / "meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            info[name] = int(value.split()[0]) * 1024
        return {"memoryBytes": float(info["MemTotal"] - info["MemAvailable"])}

    def _disk_used(self) -> dict[str, float]:
        path = self.root
        while not path.exists() and path != path.parent:   # the nodes' directory may not be made yet
            path = path.parent
        return {"diskBytes": float(shutil.disk_usage(path).used)}

    def _disk_traffic(self) -> dict[str, float]:
        disks = {name for name in os.listdir(self.sys_block) if not name.startswith(_NOT_DISKS)}
        totals = {"diskReadOps": 0.0, "diskReadBytes": 0.0, "diskWriteOps": 0.0, "diskWriteBytes": 0.0}
        for line in (self.proc / "diskstats").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 10 and parts[2] in disks:
                totals["diskReadOps"] += int(parts[3])
                totals["diskReadBytes"] += int(parts[5]) * 512
                totals["diskWriteOps"] += int(parts[7])
                totals["diskWriteBytes"] += int(parts[9]) * 512
        return totals

    def _network(self) -> dict[str, float]:
        received = sent = 0
        for line in (self.proc / "net" / "dev").read_text().splitlines()[2:]:
            name, _, values = line.partition(":")
            if name.strip() == "lo":
                continue
            fields = values.split()
            received += int(fields[0])
            sent += int(fields[8])
        return {"networkInBytes": float(received), "networkOutBytes": float(sent)}


def ssh_port(proc: Path = Path("/proc"), port: int = 22) -> int | None:
    """``port`` when an SSH server listens on it on this host (read from /proc/net/tcp and tcp6), else None."""
    wanted = f":{port:04X}"
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":   # 0A: LISTEN
                return port
    return None

