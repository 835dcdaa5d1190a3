"""``frugalseg data download`` through the real command line, against a local HTTP server.

The registry's DAVIS entry is pointed at the server for the test (`monkeypatch.setitem`), so the
command is the user's own and never reaches the internet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data.fake_davis import write_davis
from data.http_server import closed_port_url, serve

from frugalseg.cli import main
from frugalseg.data.download import SOURCES

NAME = "DAVIS-2017-trainval-480p.zip"


@pytest.fixture(scope="module")
def davis_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tree = tmp_path_factory.mktemp("src") / "DAVIS"
    ids = np.zeros((16, 24), np.uint8)
    ids[2:8, 3:9] = 1
    write_davis(tree, {"bear": [ids, ids]}, image_sets={"2017": {"train": ["bear"], "val": ["bear"]}})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for path in sorted(tree.rglob("*")):
            zipped.write(path, f"DAVIS/{path.relative_to(tree).as_posix()}")
    return buffer.getvalue()


def _point_davis_at(monkeypatch: pytest.MonkeyPatch, url: str, sha256: str) -> None:
    file = dataclasses.replace(SOURCES["davis"].files[0], url=url, size=None, sha256=sha256)
    monkeypatch.setitem(SOURCES, "davis", dataclasses.replace(SOURCES["davis"], files=(file,)))


def test_download_then_check_then_nothing_to_do(
    tmp_path: Path, davis_zip: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve({"/" + NAME: davis_zip}) as server:
        _point_davis_at(monkeypatch, server.url("/" + NAME), hashlib.sha256(davis_zip).hexdigest())
        argv = ["data", "download", "davis", "--root", str(tmp_path), "--no-progress"]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"is in {tmp_path / 'davis'}" in out
        assert f"--format davis --root {tmp_path / 'davis'}" in out
        assert main(["data", "check", str(tmp_path / "davis"), "--no-progress"]) == 0
        capsys.readouterr()
        assert main(argv) == 0
        assert "nothing to do" in capsys.readouterr().out
    assert len(server.requests) == 1


def test_a_checksum_mismatch_is_exit_2_naming_the_file(
    tmp_path: Path, davis_zip: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve({"/" + NAME: davis_zip}) as server:
        _point_davis_at(monkeypatch, server.url("/" + NAME), "f" * 64)
        assert main(["data", "download", "davis", "--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'downloads' / NAME}.part: sha256 ")
    assert "the file was removed" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]
    assert list((tmp_path / "downloads").iterdir()) == []


def test_a_network_error_is_exit_2_naming_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = closed_port_url("/" + NAME)
    _point_davis_at(monkeypatch, url, "0" * 64)
    assert main(["data", "download", "davis", "--root", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {url}: download failed")


def test_mose_names_the_page_to_fetch_it_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "download", "mose", "--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'downloads' / 'train.tar.gz'}: not found" in err
    assert "https://henghuiding.github.io/MOSE/" in err


def test_the_choices_and_the_help_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["data", "download", "kitti", "--root", "x"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'kitti'" in err and all(name in err for name in SOURCES)
    with pytest.raises(SystemExit):
        main(["data", "download", "--help"])
    out = capsys.readouterr().out
    for source in SOURCES.values():
        assert source.page in out


def test_a_root_that_is_a_file_and_a_timeout_of_0_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file had given a raw ``[Errno 20] Not a directory``; a timeout of 0 or -1 was tried."""
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    assert main(["data", "download", "davis", "--root", str(afile / "data"), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"error: {afile}: is a file, not a folder to download davis/ and downloads/ into\n"
    )
    with pytest.raises(SystemExit) as ended:
        main(["data", "download", "davis", "--root", str(tmp_path), "--timeout", "0"])
    assert ended.value.code == 2 and "--timeout" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
