"""The locks that let ``annotate add``, ``propose`` and the annotation page write one session in turn.

A video's writer holds an exclusive ``flock`` on the video's folder itself (no file is added); the first
annotation of a video also holds the session folder's, to make that folder. A session not saved yet has
no folder to lock: its first annotations take the lock of the folder above it, and each then finds the
session the one before it saved.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` itself, for the block (waits for the holder, saying so)."""
    while True:
        handle = os.open(folder, os.O_RDONLY)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another command or the page to finish changing %s …", folder)
                fcntl.flock(handle, fcntl.LOCK_EX)
            if not _same_folder(handle, folder):  # the holder removed it: lock the one there now
                folder.mkdir(parents=True, exist_ok=True)
                continue
            yield
            return
        finally:
            os.close(handle)  # closing releases the lock


def _same_folder(handle: int, folder: Path) -> bool:
    """Whether the open ``handle`` is still the folder at ``folder`` (not one removed since it was opened)."""
    try:
        now = os.stat(folder)
    except FileNotFoundError:
        return False
    held = os.fstat(handle)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


@contextlib.contextmanager
def video_lock(session: Path, video: str, saved: Path) -> Iterator[None]:
    """Hold the lock of ``video``'s folder in the session folder ``session`` while it is written.

    ``saved``: the file whose presence says the session was saved (``session.json``). Until it is, the
    folder above the session is locked (made if missing), so two first additions take turns; the
    folders a refused or interrupted one made are removed again, under that lock.
    """
    session = session.absolute()  # `.`'s parent is `.` itself, which the same thread then locked twice
    folder = session / video
    if not saved.is_file() and session.parent != session:
        session.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(session.parent):
            if not saved.is_file():  # else saved while this one waited: its locks below
                made = [path for path in (session, folder) if not path.is_dir()]
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    with folder_lock(session), folder_lock(folder):
                        yield
                finally:
                    for path in reversed(made):
                        with contextlib.suppress(OSError):  # kept where the addition wrote in it
                            path.rmdir()
                return
    first = not folder.is_dir()  # the video's first annotation
    with folder_lock(session) if first else contextlib.nullcontext():
        folder.mkdir(exist_ok=True)
        try:
            with folder_lock(folder):
                yield
        finally:
            if first and not any(folder.iterdir()):
                folder.rmdir()
