"""Downloads are cached by their full URL and checked by the sha256 recorded when they were fetched.

A local HTTP server in a thread serves two different files under one name, ``/a/…`` and ``/b/…``:
the second URL must be fetched, never answered with the first one's file (issue 27).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from frugalseg.cli import main
from frugalseg.data.io import cache_dir
from frugalseg.errors import WeightsError
from frugalseg.zoo import download, url_cache_path

from .test_weights import (
    published,  # noqa: F401 - the fixture, used by name
    zoo_dir,  # noqa: F401 - the fixture, used by name
)


class _Counting(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and counts the GET requests (``server.requests``)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        """Count, then serve the file."""
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Keep the test output quiet."""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Path, str, list[str]]]:
    """(the served folder, its base URL, the paths requested) of a server on localhost."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Counting, directory=str(root))
    )
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}", server.requests  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join()


def _checkpoint(path: Path, value: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"student.weight": torch.full((2,), value)}}, path)


def test_two_urls_that_end_in_one_file_name_are_two_files(serve, tmp_path):
    root, base, requests = serve
    _checkpoint(root / "a" / "model.ckpt", 1.0)
    _checkpoint(root / "b" / "model.ckpt", 2.0)
    folder = cache_dir() / "checkpoints"  # where `--ckpt_path URL` keeps them
    first = download(f"{base}/a/model.ckpt", folder)
    second = download(f"{base}/b/model.ckpt", folder)
    assert first != second and first.name == second.name == "model.ckpt"
    for path, value in ((first, 1.0), (second, 2.0)):
        state = torch.load(path, weights_only=True)["state_dict"]
        assert torch.equal(state["student.weight"], torch.full((2,), value))
    assert requests == ["/a/model.ckpt", "/b/model.ckpt"]
    assert download(f"{base}/b/model.ckpt", folder) == second  # cached: not fetched again
    assert requests == ["/a/model.ckpt", "/b/model.ckpt"]
    digest = hashlib.sha256(second.read_bytes()).hexdigest()
    assert second.with_name("model.ckpt.sha256").read_text(encoding="utf-8") == digest
    key = hashlib.sha256(f"{base}/b/model.ckpt".encode()).hexdigest()[:32]
    assert second == folder / key / "model.ckpt" == url_cache_path(f"{base}/b/model.ckpt", folder)


def test_a_cached_copy_changed_after_download_is_refused(serve):
    root, base, _ = serve
    _checkpoint(root / "a" / "model.ckpt", 1.0)
    path = download(f"{base}/a/model.ckpt")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(WeightsError, match=r"changed after it was downloaded from http://.*/a/model.ckpt"):
        download(f"{base}/a/model.ckpt")


def test_zoo_verify_of_a_tampered_b_after_a_good_a_fails(serve, published, zoo_dir, capsys):  # noqa: F811
    root, base, _ = serve
    _, card = published
    for folder in ("a", "b"):
        (root / folder).mkdir()
        shutil.copy(zoo_dir / card["file"], root / folder / "model.safetensors")
        (root / folder / "model.json").write_text(
            json.dumps(card), encoding="utf-8"
        )  # the same card, the same sha256
    tampered = bytearray((root / "b" / "model.safetensors").read_bytes())
    tampered[-1] ^= 0xFF
    (root / "b" / "model.safetensors").write_bytes(bytes(tampered))
    assert main(["zoo", "verify", f"{base}/a/model.safetensors"]) == 0
    assert f"sha256 {card['sha256']} matches its card" in capsys.readouterr().out
    assert main(["zoo", "verify", f"{base}/b/model.safetensors"]) == 1
    out = capsys.readouterr().out
    assert "FAILED " in out and f"but the card {base}/b/model.json records {card['sha256']}" in out
