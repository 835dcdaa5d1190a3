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
from frugalseg.zoo import download, resolve, url_cache_path

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


@pytest.fixture
def served_card(serve, published, zoo_dir, tmp_path, monkeypatch):  # noqa: F811
    """(served folder, URL of the weights, their card, the good file, requests); a cache of the test's own."""
    root, base, requests = serve
    _, card = published
    monkeypatch.setenv("FRUGALSEG_CACHE", str(tmp_path / "cache"))
    shutil.copy(zoo_dir / card["card"], root / card["card"])
    return root, f"{base}/{card['file']}", card, zoo_dir / card["file"], requests


def test_a_download_that_fails_its_card_is_deleted_and_the_next_try_fetches_it(served_card, capsys):
    root, url, card, good, requests = served_card
    damaged = bytearray(good.read_bytes())
    damaged[-1] ^= 0xFF
    (root / card["file"]).write_bytes(bytes(damaged))
    assert main(["zoo", "verify", url]) == 1
    out = capsys.readouterr().out.strip()  # after the line the progress bar leaves
    assert out.startswith(f"FAILED {url}: sha256 is {hashlib.sha256(damaged).hexdigest()}, but the card ")
    assert out.endswith("refusing to load it; the download was deleted, so the next try fetches it again")
    assert not url_cache_path(url).parent.exists()  # neither the file, its record nor its folder
    shutil.copy(good, root / card["file"])  # the good file, served now
    assert main(["zoo", "verify", url]) == 0
    assert f"sha256 {card['sha256']} matches its card" in capsys.readouterr().out
    assert requests.count(f"/{card['file']}") == 2
    shutil.copy(good, root / "alone.safetensors")  # no card beside it: the line names the URL given first
    alone = url.rsplit("/", 1)[0] + "/alone"
    assert main(["zoo", "verify", f"{alone}.safetensors"]) == 1
    assert (
        capsys.readouterr()
        .out.strip()
        .startswith(f"FAILED {alone}.safetensors: {alone}.json: cannot download the model card")
    )


def test_the_card_is_read_from_its_url_each_time_and_cached_for_when_it_cannot_be(served_card):
    root, url, card, good, requests = served_card
    shutil.copy(good, root / card["file"])
    assert resolve(url).card["metrics"]["values"] == {"val/mIoU": 0.25, "val/mAcc": 0.5}
    republished = {**card, "metrics": {"values": {"val/mIoU": 0.75}, "command": "frugalseg validate …"}}
    (root / card["card"]).write_text(json.dumps(republished), encoding="utf-8")
    assert resolve(url).card["metrics"]["values"] == {"val/mIoU": 0.75}
    assert requests.count(f"/{card['card']}") == 2 and requests.count(f"/{card['file']}") == 1
    (root / card["card"]).unlink()  # the URL no longer answers: the card read last serves
    assert resolve(url).card["metrics"]["values"] == {"val/mIoU": 0.75}
    assert requests.count(f"/{card['file']}") == 1


def test_a_cached_copy_that_its_card_no_longer_describes_is_downloaded_again(served_card):
    root, url, card, good, requests = served_card
    (root / card["file"]).write_bytes(b"the weights of an earlier publication")
    path = download(url)  # cached as an earlier release did, before checking it against the card
    shutil.copy(good, root / card["file"])
    assert resolve(url).verified == card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert requests.count(f"/{card['file']}") == 2


def test_a_failed_download_leaves_no_folder(served_card):
    _, url, _, _, _ = served_card
    with pytest.raises(WeightsError, match=r"\.safetensors: cannot download \(HTTP Error 404"):
        resolve(url)  # the card is served, the weights are not
    assert not url_cache_path(url).parent.exists()
