"""Check that torch and torchvision were installed as one pair (``python -m frugalseg.check_install``).

``make setup`` runs it after installing. torch and torchvision are built for each other: when they
come from different indexes (PyPI's CUDA build of one, the CPU index's build of the other, as a pip
that could not reach one index and fell back does), ``import torchvision.ops`` fails with
``operator torchvision::nms does not exist`` or a missing ``libc10_cuda.so``, and every command
that trains dies at import. This names the pair and the command that installs a matching one.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

#: The newest pair within the project's range (``pyproject.toml``: torch<=2.14.1, torchvision<=0.29.1).
PAIR = ("2.14.1", "0.29.1")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def installed(name: str) -> str:
    """The installed version of the distribution ``name``, or ``not installed``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def mismatch() -> str | None:
    """Why ``import torchvision.ops`` fails, with the fix; None when it works."""
    try:
        importlib.import_module("torchvision.ops")
    except Exception as err:  # RuntimeError (operator missing), OSError (a library missing), ImportError …
        torch, vision = installed("torch"), installed("torchvision")
        pip = f"{sys.executable} -m pip install --force-reinstall"
        return (
            f"torch {torch} and torchvision {vision} do not work together: import torchvision.ops "
            f"failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).\n"
            "Install both from one index, as a matching pair within frugalseg's range, e.g.\n"
            f"  {pip} torch=={PAIR[0]} torchvision=={PAIR[1]}   # PyPI's build (CUDA on Linux x86_64)\n"
            f"  {pip} torch=={PAIR[0]} torchvision=={PAIR[1]} --index-url {CPU_INDEX}   # or the CPU build\n"
            "then run `python -m frugalseg.check_install` again."
        )
    return None


def main() -> int:
    """Print the mismatch and return 1, or print the pair and return 0."""
    problem = mismatch()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"torch {installed('torch')} and torchvision {installed('torchvision')} work together")
    return 0


if __name__ == "__main__":
    sys.exit(main())
