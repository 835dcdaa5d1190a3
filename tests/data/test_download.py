"""`frugalseg.data.download` against a local HTTP server: never the internet.

Each set in the registry is replaced by the same entry pointed at the server (`dataclasses.replace`),
serving a tiny archive built here in the set's published layout (DAVIS's zip holds ``DAVIS/``,
MOSE's tarballs ``train/``), so the result is read back by the set's own reader.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import logging
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from data.fake_davis import write_davis
from data.http_server import closed_port_url, serve
from frugalseg.data import download as download_module
from frugalseg.data.download import MARKER, SOURCES, DataSource, RemoteFile, download, extract
from frugalseg.data.formats.camvid import CamvidFormat
from frugalseg.data.formats.davis import DavisFormat, MoseFormat
from frugalseg.errors import DataError

DAVIS_ZIP = "DAVIS-2017-trainval-480p.zip"


def _ids(t: int) -> np.ndarray:
    ids = np.zeros((16, 24), np.uint8)
    ids[4:10, 2 + t : 8 + t] = 1
    return ids


def _zip(folder: Path, prefix: str) -> bytes:
    """The files under ``folder`` zipped as ``prefix/…`` (the way the publishers' archives are laid out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(
                path,
                f"{prefix}/{path.relative_to(folder).as_posix()}"
                if prefix
                else path.relative_to(folder).as_posix(),
            )
    return buffer.getvalue()


def _tar_gz(folder: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tarred:
        tarred.add(folder, arcname=prefix)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def davis_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A two-sequence DAVIS 2017 tree zipped under ``DAVIS/``, as the ETH server's zip is."""
    tree = tmp_path_factory.mktemp("src") / "DAVIS"
    masks = {"bear": [_ids(t) for t in range(3)], "cows": [_ids(t) for t in range(2)]}
    write_davis(tree, masks, image_sets={"2017": {"train": ["bear"], "val": ["cows"]}})
    return _zip(tree, "DAVIS")


def _davis(url: str, data: bytes, *, sha256: str | None = "", size: int | None = -1) -> DataSource:
    """The registry's DAVIS entry pointed at ``url``, with the size and sha256 of ``data`` unless given."""
    file = dataclasses.replace(
        SOURCES["davis"].files[0],
        url=url,
        size=len(data) if size == -1 else size,
        sha256=hashlib.sha256(data).hexdigest() if sha256 == "" else sha256,
    )
    return dataclasses.replace(SOURCES["davis"], files=(file,))


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") or p.name.endswith(".part"))


def test_fresh_download_gives_the_layout_the_reader_expects(tmp_path: Path, davis_zip: bytes) -> None:
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        result = download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert server.requests == [("/" + DAVIS_ZIP, None)]
    assert result.created and result.folder == tmp_path / "davis"
    assert result.sha256 == {DAVIS_ZIP: hashlib.sha256(davis_zip).hexdigest()}
    assert (tmp_path / "davis" / "JPEGImages" / "480p" / "bear" / "00002.jpg").is_file()
    assert (tmp_path / "davis" / MARKER).is_file()
    fmt = DavisFormat(tmp_path / "davis")
    assert fmt.splits() == ["train", "val"]
    assert [clip.clip_id for clip in fmt.clips("val")] == ["cows"]
    assert (tmp_path / "downloads" / DAVIS_ZIP).read_bytes() == davis_zip
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "downloads") == []


def test_a_partial_file_is_resumed_asking_only_for_the_rest(tmp_path: Path, davis_zip: bytes) -> None:
    part = tmp_path / "downloads" / (DAVIS_ZIP + ".part")
    part.parent.mkdir()
    part.write_bytes(davis_zip[:1000])
    seen: list[tuple[str, int | None, int]] = []
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        download(
            _davis(server.url("/" + DAVIS_ZIP), davis_zip),
            tmp_path,
            on_file=lambda name, total, done: seen.append((name, total, done)) or (lambda n: None),
        )
    assert server.requests == [("/" + DAVIS_ZIP, "bytes=1000-")]
    assert seen == [(DAVIS_ZIP, len(davis_zip), 1000)]
    assert (tmp_path / "downloads" / DAVIS_ZIP).read_bytes() == davis_zip
    assert DavisFormat(tmp_path / "davis").clips("train")[0].clip_id == "bear"


def test_a_broken_connection_keeps_what_came_and_the_next_run_resumes(
    tmp_path: Path, davis_zip: bytes
) -> None:
    source_path = "/" + DAVIS_ZIP
    with serve({source_path: davis_zip}, cut_after=700) as server:
        source = _davis(server.url(source_path), davis_zip)
        with pytest.raises(DataError, match="run the command again to resume") as caught:
            download(source, tmp_path)
        assert str(caught.value).startswith(server.url(source_path))
        assert (tmp_path / "downloads" / (DAVIS_ZIP + ".part")).stat().st_size == 700
        assert not (tmp_path / "davis").exists()
        server.cut_after = None
        download(source, tmp_path)
    assert server.requests[-1] == (source_path, "bytes=700-")
    assert (tmp_path / "downloads" / DAVIS_ZIP).read_bytes() == davis_zip


def test_a_server_that_cannot_resume_sends_it_whole_and_the_file_is_right(
    tmp_path: Path, davis_zip: bytes
) -> None:
    part = tmp_path / "downloads" / (DAVIS_ZIP + ".part")
    part.parent.mkdir()
    part.write_bytes(b"x" * 500)  # not even the right bytes: they must be replaced, not appended to
    with serve({"/" + DAVIS_ZIP: davis_zip}, ranges=False) as server:
        download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert (tmp_path / "downloads" / DAVIS_ZIP).read_bytes() == davis_zip


def test_a_whole_part_file_of_unknown_size_is_finished_by_the_servers_416(
    tmp_path: Path, davis_zip: bytes
) -> None:
    part = tmp_path / "downloads" / (DAVIS_ZIP + ".part")
    part.parent.mkdir()
    part.write_bytes(davis_zip)
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        download(_davis(server.url("/" + DAVIS_ZIP), davis_zip, size=None), tmp_path)
    assert server.requests == [("/" + DAVIS_ZIP, f"bytes={len(davis_zip)}-")]
    assert (tmp_path / "davis" / "Annotations" / "480p" / "cows").is_dir()


def test_a_checksum_mismatch_removes_the_file_and_extracts_nothing(tmp_path: Path, davis_zip: bytes) -> None:
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        source = _davis(server.url("/" + DAVIS_ZIP), davis_zip, sha256="0" * 64)
        with pytest.raises(DataError, match="does not match") as caught:
            download(source, tmp_path)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "downloads" / (DAVIS_ZIP + ".part")))
    assert server.url("/" + DAVIS_ZIP) in message and "removed" in message
    assert list((tmp_path / "downloads").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]


def test_a_wrong_size_is_refused_before_hashing(tmp_path: Path, davis_zip: bytes) -> None:
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        source = _davis(server.url("/" + DAVIS_ZIP), davis_zip, size=len(davis_zip) + 5)
        with pytest.raises(DataError, match=f"has {len(davis_zip):,} bytes, {len(davis_zip) + 5:,} expected"):
            download(source, tmp_path)
    assert not (tmp_path / "davis").exists() and list((tmp_path / "downloads").iterdir()) == []


def test_a_second_run_finds_the_data_and_does_nothing(tmp_path: Path, davis_zip: bytes) -> None:
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        source = _davis(server.url("/" + DAVIS_ZIP), davis_zip)
        download(source, tmp_path)
        marker = (tmp_path / "davis" / MARKER).stat().st_mtime_ns
        again = download(source, tmp_path)
    assert not again.created and again.folder == tmp_path / "davis"
    assert len(server.requests) == 1
    assert (tmp_path / "davis" / MARKER).stat().st_mtime_ns == marker


def test_an_empty_folder_of_the_set_s_name_is_filled(tmp_path: Path, davis_zip: bytes) -> None:
    """A folder made by hand (``mkdir -p ROOT/davis``) had been taken for the downloaded set."""
    (tmp_path / "davis").mkdir()
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        result = download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert result.created and len(server.requests) == 1
    assert DavisFormat(tmp_path / "davis").splits() == ["train", "val"]


def test_a_network_error_names_the_url_and_leaves_nothing(tmp_path: Path, davis_zip: bytes) -> None:
    url = closed_port_url("/" + DAVIS_ZIP)
    with pytest.raises(DataError, match="download failed") as caught:
        download(_davis(url, davis_zip), tmp_path / "data")
    assert str(caught.value).startswith(url)
    assert caught.value.path == url
    assert list(tmp_path.iterdir()) == []  # no data/davis, nor an empty data/downloads/ or data/


def test_a_network_error_keeps_the_folders_that_were_there(tmp_path: Path, davis_zip: bytes) -> None:
    (tmp_path / "downloads").mkdir()
    with pytest.raises(DataError, match="download failed"):
        download(_davis(closed_port_url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["downloads"]


def test_an_http_error_and_a_web_page_name_the_url(tmp_path: Path, davis_zip: bytes) -> None:
    with serve({"/" + DAVIS_ZIP: davis_zip}, content_type="text/html; charset=utf-8") as server:
        with pytest.raises(DataError, match="404"):
            download(_davis(server.url("/moved.zip"), davis_zip), tmp_path)
        with pytest.raises(DataError, match="web page, not DAVIS-2017") as caught:
            download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert str(caught.value).startswith(server.url("/" + DAVIS_ZIP))
    assert not (tmp_path / "davis").exists()


def test_an_archive_without_the_layout_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("DAVIS/README.txt", "not the frames")
    data = buffer.getvalue()
    with serve({"/" + DAVIS_ZIP: data}) as server:
        with pytest.raises(DataError, match="holds no JPEGImages/480p, Annotations/480p, ImageSets/2017"):
            download(_davis(server.url("/" + DAVIS_ZIP), data), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]


def test_an_unknown_checksum_is_logged_so_that_it_can_be_pinned(
    tmp_path: Path, davis_zip: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        serve({"/" + DAVIS_ZIP: davis_zip}) as server,
        caplog.at_level(logging.INFO, "frugalseg.data.download"),
    ):
        result = download(_davis(server.url("/" + DAVIS_ZIP), davis_zip, sha256=None, size=None), tmp_path)
    digest = hashlib.sha256(davis_zip).hexdigest()
    assert result.sha256[DAVIS_ZIP] == digest
    assert any(
        digest in record.getMessage() and "publishes no checksum" in record.getMessage()
        for record in caplog.records
    )


def _mose(tmp_path: Path) -> tuple[DataSource, dict[str, bytes]]:
    """The registry's MOSE entry (no URLs) with the checksums of two tiny tarballs laid out as MOSE's."""
    archives = {}
    for split in ("train", "valid"):
        tree = tmp_path / "src" / split
        write_davis(tree, {f"{split}-seq": [_ids(t) for t in range(2)]}, resolution=None)
        archives[f"{split}.tar.gz"] = _tar_gz(tree, split)
    files = tuple(
        dataclasses.replace(file, sha256=hashlib.sha256(archives[file.name]).hexdigest())
        for file in SOURCES["mose"].files
    )
    return dataclasses.replace(SOURCES["mose"], files=files), archives


def test_files_fetched_by_hand_are_verified_and_extracted(tmp_path: Path) -> None:
    source, archives = _mose(tmp_path)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="no direct download link") as caught:
        download(source, root)
    assert str(caught.value).startswith(str(root / "downloads" / "train.tar.gz"))
    assert "https://henghuiding.github.io/MOSE/" in str(caught.value)
    for name, data in archives.items():
        (root / "downloads" / name).write_bytes(data)
    download(source, root)
    assert [clip.clip_id for clip in MoseFormat(root / "mose" / "train").clips("all")] == ["train-seq"]
    assert [clip.clip_id for clip in MoseFormat(root / "mose" / "valid").clips("all")] == ["valid-seq"]


def test_a_wrong_file_fetched_by_hand_is_kept_and_named(tmp_path: Path) -> None:
    source, archives = _mose(tmp_path)
    root = tmp_path / "data"
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / "train.tar.gz").write_bytes(archives["valid.tar.gz"])
    with pytest.raises(DataError, match="does not match .*published by the MOSE authors") as caught:
        download(source, root)
    assert str(caught.value).startswith(str(root / "downloads" / "train.tar.gz"))
    assert (root / "downloads" / "train.tar.gz").is_file()  # the user's own file is not deleted
    assert not (root / "mose").exists()


def test_camvids_two_archives_make_the_original_layout(tmp_path: Path) -> None:
    from data.fake_camvid import write_original

    tree = write_original(tmp_path / "src")
    stills = _zip(tree / "701_StillsRaw_full", "701_StillsRaw_full")  # the zip holds the folder
    labels = _zip(tree / "LabeledApproved_full", "")  # the labels lie at the top of their zip
    with serve({"/stills.zip": stills, "/labels.zip": labels}) as server:
        files = (
            dataclasses.replace(SOURCES["camvid"].files[0], url=server.url("/stills.zip")),
            dataclasses.replace(SOURCES["camvid"].files[1], url=server.url("/labels.zip")),
        )
        result = download(dataclasses.replace(SOURCES["camvid"], files=files), tmp_path / "data")
    assert set(result.sha256) == {"701_StillsRaw_full.zip", "LabeledApproved_full.zip"}
    fmt = CamvidFormat(result.folder)
    expected = sorted(p.stem for p in (tree / "701_StillsRaw_full").glob("*.png"))
    assert sorted(clip.clip_id for clip in fmt.clips("all")) == expected


def test_extract_refuses_a_member_outside_the_folder(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("../escaped.txt", "no")
    (tmp_path / "evil.zip").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="outside"):
        extract(tmp_path / "evil.zip", tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    (tmp_path / "junk.zip").write_bytes(b"neither zip nor tar")
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        extract(tmp_path / "junk.zip", tmp_path / "out")


def test_every_registered_set_reads_with_a_known_format_and_has_https_or_a_page() -> None:
    from frugalseg.data.formats import FORMATS

    for name, source in SOURCES.items():
        assert source.name == name and source.format in FORMATS
        assert source.page.startswith("http")
        for file in source.files:
            assert file.sha256 is None or len(file.sha256) == 64
            assert file.sha256 is None or file.checksum_source
        assert source.direct or "by hand" in source.note
    assert RemoteFile("x", None).url is None


def test_remove_archives_leaves_only_the_data_set(tmp_path: Path, davis_zip: bytes) -> None:
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path, remove_archives=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["davis"]


def test_no_room_on_the_disk_names_the_folder_before_downloading(
    tmp_path: Path, davis_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=10))
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        with pytest.raises(DataError, match=f"needs {len(davis_zip):,} bytes, 10 are free") as caught:
            download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert caught.value.path == tmp_path / "downloads"
    assert list((tmp_path / "downloads").iterdir()) == []


def test_a_disk_that_fills_while_extracting_leaves_nothing_half_written(
    tmp_path: Path, davis_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(archive: Path, destination: Path) -> None:
        (destination / "JPEGImages").mkdir(parents=True)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download_module, "extract", full)
    with serve({"/" + DAVIS_ZIP: davis_zip}) as server:
        with pytest.raises(DataError, match="no room left on the disk") as caught:
            download(_davis(server.url("/" + DAVIS_ZIP), davis_zip), tmp_path)
    assert caught.value.path == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]  # no davis/, no .davis.partial/
