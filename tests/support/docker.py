"""A Docker engine to test container tasks against (scripts/docker.sh installs and starts one, as root).

No image registry is reachable from here, so the test image is assembled from this host's own
programs and the libraries they load (``ldd``), imported with ``docker import``.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

IMAGE = "openbatch-test/tools:1"
#: The programs of the image (each with the libraries it needs).
PROGRAMS = ("/bin/sh", "/bin/cat", "/bin/echo", "/bin/ls", "/bin/pwd", "/bin/sleep", "/bin/touch", "/bin/mkdir",
            "/usr/bin/env", "/usr/bin/id", "/usr/bin/test", "/usr/bin/stat")


def docker_unavailable() -> str | None:
    """Why no Docker engine can run containers here, or None."""
    if shutil.which("docker") is None:
        return "Docker is not installed (scripts/docker.sh installs and starts it, as root)"
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker info does not answer: {error}"
    if done.returncode != 0:
        return f"the Docker daemon is not running: {(done.stderr or done.stdout).strip()[:300]}"
    return None


def build_test_image() -> str:
    """The test image (made once per host): a root filesystem of this host's own tools."""
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode == 0:
        return IMAGE
    files: set[str] = set()
    for program in PROGRAMS:
        files.add(program)
        linked = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
        files.update(re.findall(r"(/\S+)", linked))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("tmp", "etc", "root", "usr", "usr/bin", "usr/lib", "usr/lib64", "usr/sbin"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for top in ("bin", "lib", "lib64", "sbin"):   # merged /usr, as Debian has it
            info = tarfile.TarInfo(top)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{top}"
            tar.addfile(info)
        added: set[str] = set()
        for path in sorted(files):
            if not os.path.exists(path):
                continue
            real, name = _merged(os.path.realpath(path)), _merged(path)
            if real not in added:
                tar.add(os.path.realpath(path), arcname=real, recursive=False)
                added.add(real)
            if name != real and name not in added:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, "/" + real
                tar.addfile(info)
                added.add(name)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    subprocess.run(["docker", "import", "--change", "CMD [\"/bin/sh\"]", "--change", "WORKDIR /root", "-", IMAGE],
                   input=buffer.getvalue(), capture_output=True, check=True)
    return IMAGE


def _merged(path: str) -> str:
    """The path in a merged-/usr tree, without its leading slash."""
    for top in ("/bin/", "/lib/", "/lib64/", "/sbin/"):
        if path.startswith(top):
            return "usr" + path
    return path.lstrip("/")


@dataclass
class Registry:
    """A local image registry that wants a username and password (Debian's docker-registry)."""

    server: str
    username: str
    password: str
    process: subprocess.Popen

    def push(self, image: str, name: str) -> str:
        """``image`` pushed as ``name``; the pushed reference (its local copy removed, so pulls must come here)."""
        reference = f"{self.server}/{name}"
        subprocess.run(["docker", "tag", image, reference], check=True, capture_output=True)
        with tempfile.TemporaryDirectory() as config:
            subprocess.run(["docker", "--config", config, "login", "--username", self.username, "--password-stdin",
                            self.server], input=self.password.encode(), check=True, capture_output=True)
            subprocess.run(["docker", "--config", config, "push", reference], check=True, capture_output=True)
        self.forget(reference)
        return reference

    @staticmethod
    def forget(reference: str) -> None:
        subprocess.run(["docker", "rmi", "--force", reference], capture_output=True)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def registry_unavailable() -> str | None:
    for program in ("docker-registry", "htpasswd"):
        if shutil.which(program) is None:
            return f"{program} is not installed (scripts/docker.sh installs it, as root)"
    return docker_unavailable()


def start_registry(directory: Path) -> Registry:
    """A registry on a free loopback port (Docker pulls from 127.0.0.1 over plain HTTP)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = secrets.token_hex(8)
    users = directory / "htpasswd"
    users.write_bytes(subprocess.run(["htpasswd", "-Bbn", "puller", password], check=True,
                                     capture_output=True).stdout)
    config = directory / "config.yml"
    config.write_text(f"""version: 0.1
storage:
  filesystem:
    rootdirectory: {directory / 'data'}
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: openbatch-tests
    path: {users}
""")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError:   # 401: up, and wants the password
            return Registry(f"127.0.0.1:{port}", "puller", password, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the registry did not start")
