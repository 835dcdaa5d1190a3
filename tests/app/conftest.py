"""A session on the real DAVIS sample (first 10 frames, flow at half size) and the page's app over it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.app import SessionService, create_app

FRAMES = 10
#: The `annotate` flags of the same session (a CLI run on a copy must match the page's).
SESSION_FLAGS = ["--max-frames", str(FRAMES), "--flow-downscale", "2"]


def open_session(state: Path, root: Path) -> AnnotationSession:
    return AnnotationSession.open(state, root=root, max_frames=FRAMES, options={"flow_downscale": 2})


@pytest.fixture
def davis(shared_data: Path) -> Path:
    return shared_data / "davis_dev"


@pytest.fixture
def service(tmp_path: Path, davis: Path, one_cv_thread) -> SessionService:
    return SessionService(
        open_session(tmp_path / "state", davis), ProposalOptions(frames="uncertainty", types="mask")
    )


@pytest.fixture
def client(service: SessionService, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(service, exports=tmp_path / "exports", max_upload=1 << 20)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def serve(
    state: Path, root: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`frugalseg annotate serve` on ``state`` as a user starts it, on any free port; it and its address.

    ``env`` adds to the environment the server inherits.
    """
    command = [sys.executable, "-m", "frugalseg", "annotate", "serve", "--state", str(state)]
    command += ["--root", str(root), *SESSION_FLAGS, "--port", "0", *flags]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    line = server.stdout.readline()
    if not line.startswith("annotation page: http://"):
        server.kill()
        raise AssertionError(f"annotate serve printed {line!r}")
    return server, line.split(": ", 1)[1].strip()
