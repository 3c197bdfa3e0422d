"""Is there a Slurm to test against? (scripts/slurm.sh starts a single-host cluster as root.)"""

from __future__ import annotations

import shutil
import subprocess


def slurm_unavailable() -> str | None:
    """Why Slurm cannot be used here, or None when ``sinfo`` answers with a usable node."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm is not installed (scripts/slurm.sh installs and starts it, as root)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sinfo does not answer: {error}"
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mix", "alloc", "comp")):
        return f"Slurm is not up: {(out.stderr or out.stdout).strip()[:300]}"
    return None
