"""A Hugging Face cache written by ``huggingface_hub`` itself, from a Hub served on localhost.

`HubCache.add` serves files the way the Hub's ``/ORG/NAME/resolve/REVISION/FILE`` endpoint does
(``X-Repo-Commit``; a weights file's sha256 as ``X-Linked-Etag``, a small file's git blob sha1 as
``ETag``; 404 with ``X-Error-Code`` for an unknown repository, revision or file) and has
``hf_hub_download`` fetch each file into the cache of a temporary ``HF_HOME``, so the layout
(``models--ORG--NAME/blobs``, ``snapshots/COMMIT``, ``refs/main``, ``.no_exist``) is the library's
own. Between two ``add`` calls, and in the tests, the Hub is offline (``HF_HUB_OFFLINE=1``): nothing
reaches a network.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

#: Files the Hub stores with Git LFS (their etag is their sha256); others are plain git blobs.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file's content: the Hub's etag of a file not stored with LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """The resolve endpoint of one repository at one commit (``server.repo``)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Keep the test output quiet."""

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        """Metadata of a file."""
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        """A file."""
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        repo_id, revision, commit, files = self.server.repo  # type: ignore[attr-defined]
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
        if match is None or match[1] != repo_id:
            return self._error("RepoNotFound")
        if match[2] not in (revision, commit):
            return self._error("RevisionNotFound")
        data = files.get(match[3])
        if data is None:
            return self._error("EntryNotFound", commit)
        self.send_response(200)
        self.send_header("X-Repo-Commit", commit)
        if match[3].endswith(LFS_SUFFIXES):
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
        else:
            self.send_header("ETag", f'"{git_blob_sha1(data)}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, code: str, commit: str | None = None) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()


class HubCache:
    """A temporary ``HF_HOME`` whose hub cache is filled by ``hf_hub_download`` from a local Hub.

    Attributes:
        home: the ``HF_HOME`` folder.
        cache: its hub cache (``HF_HOME/hub``).
    """

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from huggingface_hub import constants

        self.home = home
        self.cache = home / "hub"
        self._constants = constants
        for name, value in {"HF_HOME": home, "HF_HUB_CACHE": self.cache, "HF_HUB_OFFLINE": "1"}.items():
            monkeypatch.setenv(name, str(value))  # for the processes tests start
        # the library reads these at import; the tests' own process has imported it already
        monkeypatch.setattr(constants, "HF_HOME", str(home))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(self.cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def add(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        revision: str = "main",
        commit: str | None = None,
        absent: tuple[str, ...] = (),
    ) -> str:
        """Put ``files`` of ``repo_id`` at ``revision`` into the cache, through ``hf_hub_download``.

        Args:
            repo_id: ``ORG/NAME``.
            files: file name → content.
            revision: the branch or tag the files are fetched by (recorded in ``refs/``).
            commit: the commit id the Hub answers (default: derived from the files).
            absent: file names asked for too, which the Hub answers with 404 (cached as absent).

        Returns:
            The commit id (the snapshot folder's name).
        """
        from huggingface_hub import hf_hub_download

        content = repr(sorted(files.items())).encode()
        commit = commit or hashlib.sha1(content, usedforsecurity=False).hexdigest()
        with self._serving((repo_id, revision, commit, dict(files))) as endpoint:
            for filename in files:
                hf_hub_download(repo_id, filename, revision=revision, endpoint=endpoint)
            for filename in absent:
                with contextlib.suppress(Exception):  # the 404 is the point: the cache records it
                    hf_hub_download(repo_id, filename, revision=revision, endpoint=endpoint)
        return commit

    def snapshot(self, repo_id: str, commit: str) -> Path:
        """The snapshot folder of ``repo_id`` at ``commit``."""
        return self.cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit

    @contextlib.contextmanager
    def _serving(self, repo: tuple[str, str, str, dict[str, bytes]]) -> Iterator[str]:
        """The Hub online, serving ``repo`` at a localhost endpoint, for the duration of the block."""
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
        server.repo = repo  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self._constants.HF_HUB_OFFLINE = False
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            self._constants.HF_HUB_OFFLINE = True
            server.shutdown()
            server.server_close()
            thread.join()
