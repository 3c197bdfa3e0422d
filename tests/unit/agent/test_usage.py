"""The host usage an agent reports, read from a /proc and /sys/block the test writes."""

from __future__ import annotations

from pathlib import Path

from openbatch.agent import usage as usage_module
from openbatch.agent.usage import HostUsage

MEMINFO = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n"
DISKSTATS = ("   7       0 loop0 9 0 9 0 9 0 9 0 0 0 0\n"
             " 254       0 vda 10 0 8 0 20 0 16 0 0 0 0\n"
             " 254       1 vda1 10 0 8 0 20 0 16 0 0 0 0\n")
NETDEV = ("Inter-|   Receive\n face |bytes packets\n"
          "    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n"
          "  eth0: 300 2 0 0 0 0 0 0 700 3 0 0 0 0 0 0\n")


def host(tmp_path: Path, cpu: str) -> tuple[Path, Path]:
    proc, block = tmp_path / "proc", tmp_path / "block"
    (proc / "net").mkdir(parents=True, exist_ok=True)
    for name in ("vda", "loop0"):
        (block / name).mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text(f"cpu  {cpu}\ncpu0 1 2 3\n")
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "diskstats").write_text(DISKSTATS)
    (proc / "net" / "dev").write_text(NETDEV)
    return proc, block


def test_the_usage_of_the_host(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(usage_module, "EVERY_SECONDS", 0.0)
    proc, block = host(tmp_path, "100 0 100 800 0 0 0 0 0 0")
    reader = HostUsage(tmp_path, proc, block)
    first = reader.read()
    assert "cpuPercent" not in first                      # a percentage needs two readings
    assert first["memoryBytes"] == 600 * 1024 and first["diskBytes"] > 0
    assert (first["diskReadOps"], first["diskReadBytes"], first["diskWriteOps"], first["diskWriteBytes"]) == \
        (10, 8 * 512, 20, 16 * 512)                        # the disk only: not its partition, not loop devices
    assert (first["networkInBytes"], first["networkOutBytes"]) == (300, 700)   # not the loopback
    (proc / "stat").write_text("cpu  150 0 150 900 0 0 0 0 0 0\n")   # +100 busy, +100 idle
    assert reader.read()["cpuPercent"] == 50.0


def test_what_the_host_does_not_offer_is_left_out(tmp_path: Path) -> None:
    reader = HostUsage(tmp_path, tmp_path / "no-proc", tmp_path / "no-block")
    assert set(reader.read()) == {"diskBytes"}


def test_an_ssh_server_is_found_listening(tmp_path: Path) -> None:
    from openbatch.agent.usage import ssh_port

    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue\n"
    (tmp_path / "net" / "tcp").write_text(header + "   0: 0100007F:1F90 00000000:0000 0A 0\n"     # :8080 listens
                                          "   1: 0100007F:0016 0100007F:9C40 01 0\n")      # :22, established
    assert ssh_port(tmp_path) is None
    (tmp_path / "net" / "tcp6").write_text(header + "   0: 00000000000000000000000000000000:0016 "
                                           "00000000000000000000000000000000:0000 0A 0\n")
    assert ssh_port(tmp_path) == 22
