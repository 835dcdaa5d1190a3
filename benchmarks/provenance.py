"""What a benchmark ran with: commit, library versions, thread count — recorded with every result.

A recorded figure is only reproducible from its command if the state and environment it ran in
are written next to it. `provenance()` returns them as one JSON-able dict; `provenance_line()`
as the one line the results files quote.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

LIBRARIES = (
    "torch",
    "lightning",
    "numpy",
    "scipy",
    "numba",
    "opencv-python-headless",
    "segmentation-models-pytorch",
    "pillow",
)


def git_commit(root: Path | None = None) -> str:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it (``unknown`` outside git)."""
    cwd = root or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    """Installed version of each library the figures depend on (``absent`` when not installed)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def provenance() -> dict[str, object]:
    """Commit, library versions, torch threads, CPU count and the thread-related environment."""
    return {
        "commit": git_commit(),
        "versions": library_versions(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "env": {key: os.environ[key] for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if key in os.environ},
    }


def provenance_line(record: dict[str, object] | None = None) -> str:
    """One human-readable line of `provenance()` for a results file."""
    record = record or provenance()
    versions = ", ".join(f"{name} {version}" for name, version in record["versions"].items())  # type: ignore[union-attr]
    threads = f"torch threads {record['torch_threads']} of {record['cpu_count']} CPUs"
    return f"commit {record['commit']}; {versions}; {threads}"
