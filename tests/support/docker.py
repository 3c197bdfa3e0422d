"""A Docker engine to test container tasks against (scripts/docker.sh installs and starts one, as root).

No image registry is reachable from here, so the test image is assembled from this host's own
programs and the libraries they load (``ldd``), imported with ``docker import``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile

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
