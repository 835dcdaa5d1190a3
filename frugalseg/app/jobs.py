"""The annotation page's bookkeeping around a session: cached states and thumbnails, the propagation worker.

One lock guards the additions and exports, so two tabs submitting at once leave a consistent
session. An addition is saved at once with its masks marked out of date
(`AnnotationSession.add` with ``propagate=False``), and one worker thread propagates each such
video in turn (`AnnotationSession.finish`) outside the lock, so the page stays usable. An addition
to a video whose propagation is queued or running supersedes it (`SessionService.supersede`: the
engine stops at its next frame, what it made stays in the video's cache) and queues one propagation
of both, so the person never waits to submit; the worker stays the only writer of a video's masks,
and the session takes no export while a propagation runs. A server killed meanwhile loses nothing,
and on restart the worker finishes every video whose masks are out of date. Reads need no lock:
every file is written atomically and ``state.json`` last.

While a video propagates, the page sees what is known of it (`_Partial`): each frame's new mask as
soon as the engine has it (nearest the new annotation first), the masks and unreliability of
before elsewhere. The next proposal is made from that at once (`SessionService.proposal`), so the
person can go on while the rest of the clip fills in.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.concurrency import run_in_threadpool

from frugalseg.active.objects.session.exports import export_with_tools, tools_folder
from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.session.proposals import Proposal, ProposalOptions, filmstrip_scores
from frugalseg.active.objects.session.session import Addition, AnnotationSession
from frugalseg.active.objects.state import STATE_FILE, VideoState
from frugalseg.active.objects.tools.max_flow import prepare as prepare_cuts
from frugalseg.active.propagation import unreliability as frame_unreliability
from frugalseg.data.files import file_problem
from frugalseg.data.io import array_sha1, imread
from frugalseg.data.overlays import thumbnail
from frugalseg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

THUMB_WIDTH = 160
#: While a video propagates, a proposal is made again at most this often (seconds): each is a
#: selector and type-policy pass over the clip, which would take its share of the cores otherwise.
PROPOSAL_INTERVAL = 0.5


def job_problem(err: Exception) -> str:
    """Why a propagation failed, as the page says it: a bad file's one line, else the error's class, text."""
    if isinstance(err, DataError | ConfigError):
        return str(err)
    if isinstance(err, OSError):
        return file_problem(err)
    return f"{type(err).__name__}: {err}"


class StaleFrame(Exception):
    """A submit of a frame another page, the ML backend or ``annotate add`` annotated since it was read."""


class PropagationPending(Exception):
    """An export asked for while a propagation is queued or running: its store would mix old and new masks."""


class Superseded(Exception):
    """A newer addition to the video stopped this propagation (a new one covers both)."""


@dataclass
class Job:
    """One propagation of a video after an addition (or after a restart), as the page reports it.

    ``status``: ``queued``, ``propagating``, then ``done``, ``failed`` or ``superseded``.
    """

    id: int
    video: str
    frame: int | None
    status: str = "queued"
    started: float | None = None
    ended: float | None = None
    frames: int = 0
    done: int = 0
    error: str | None = None
    stop: bool = False

    def report(self) -> dict[str, Any]:
        """What ``GET /api/jobs`` says of the job (``progress``: the share of its frames propagated).

        A job superseded or failed part way keeps the share it had propagated; a job done is whole.
        """
        now = time.monotonic()
        elapsed = ((self.ended or now) - self.started) if self.started is not None else 0.0
        progress = 1.0 if self.status == "done" else self.done / max(1, self.frames)
        return {
            "id": self.id,
            "video": self.video,
            "frame": self.frame,
            "status": self.status,
            "elapsed": round(elapsed, 2),
            "frames": self.frames,
            "done": self.done,
            "progress": round(progress, 3),
            "error": self.error,
        }


@dataclass
class CachedState:
    """A video's state as last read, the file stamp it was read at, and each frame mask's SHA-1.

    ``unknown``: frames that have no mask nor unreliability yet (a first propagation in flight).
    """

    stamp: tuple[int, int]
    state: VideoState
    current: bool
    shas: list[str] = field(default_factory=list)
    unknown: frozenset[int] = frozenset()


@dataclass
class _Partial:
    """What is known of a video while it propagates: every frame's mask and unreliability so far.

    A frame not in ``fresh`` keeps its values from before the addition; before a video's first
    propagation its mask is empty and its unreliability 1 (nothing is known of it).
    """

    job: int
    state: VideoState
    fresh: set[int]
    shas: list[str]
    unknown: set[int]

    @classmethod
    def before(cls, job: int, state: VideoState, masks: list[np.ndarray], shape: tuple[int, int]) -> _Partial:
        """Job ``job``'s view of ``state`` (just saved, masks out of date) from the masks shown before."""
        n = state.num_frames
        known = len(masks) == n and len(state.disagreement) == n
        masks = list(masks) if known else [np.zeros(shape, np.uint8)] * n
        disagreement = list(state.disagreement) if known else [1.0] * n
        unsure = list(state.unsure) if known else [0.0] * n
        shown = replace(state, masks=masks, disagreement=disagreement, unsure=unsure)
        return cls(job, shown, set(), [array_sha1(m) for m in masks], set() if known else set(range(n)))

    def estimate(self) -> VideoState:
        """The state a proposal reads: a frame never propagated counts by its distance alone.

        Its disagreement and unsure share count as 0, so `unreliability` ranks such frames by their
        coverage (the farthest from an annotated frame first) instead of tying them all at 1.
        """
        d = [0.0 if t in self.unknown else v for t, v in enumerate(self.state.disagreement)]
        u = [0.0 if t in self.unknown else v for t, v in enumerate(self.state.unsure)]
        return replace(self.state, masks=list(self.state.masks), disagreement=d, unsure=u)

    def arrived(self, t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        """Frame ``t``'s new result."""
        self.state.masks[t], self.shas[t] = mask, array_sha1(mask)
        self.state.disagreement[t], self.state.unsure[t] = disagreement, unsure
        self.fresh.add(t)
        self.unknown.discard(t)


class SessionService:
    """The session the page works on: its lock, cached states, thumbnails and propagation worker.

    Args:
        session: the annotation session.
        options: how proposals are chosen (selector, policy …; None: the defaults).
    """

    def __init__(self, session: AnnotationSession, options: ProposalOptions | None = None) -> None:
        self.session = session
        self.options = options or ProposalOptions()
        self.lock = threading.RLock()
        self.jobs: list[Job] = []
        self._queue: queue.Queue[Job] = queue.Queue()
        self._states: dict[str, CachedState] = {}
        self._thumbs: dict[tuple[str, int, str], bytes] = {}
        self._proposals: dict[tuple[Any, ...], Proposal | None] = {}
        self._partial: dict[str, _Partial] = {}
        self._recent: dict[str | None, tuple[float, tuple[tuple[str, int], ...], Proposal | None]] = {}
        self._worker = threading.Thread(target=self._work, name="frugalseg-propagation", daemon=True)
        self._worker.start()
        for name in session.videos():
            self.state(name)  # queues the videos left out of date by a killed server

    def pending(self, video: str | None = None) -> bool:
        """Whether a propagation (of ``video``, or of any video) is queued or running."""
        return any(j.status in ("queued", "propagating") and video in (None, j.video) for j in self.jobs)

    def state(self, name: str) -> CachedState | None:
        """The cached state of video ``name`` (reread when its file changed; None before any annotation).

        A state whose masks are out of date keeps showing the masks read before, and gets a
        propagation queued unless one is.
        """
        partial = self._partial.get(name)
        if partial is not None:
            shas, unknown = list(partial.shas), frozenset(partial.unknown)
            stamp = (-partial.job, len(partial.fresh))  # no file stamp: the job and its progress
            return CachedState(stamp, partial.state, False, shas, unknown)
        path = self.session.folder / name / STATE_FILE
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._states.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached
        saved = self.session.saved_state(name)
        if saved is None:
            return None
        state, current = saved
        if not current:
            shown = cached.state.masks if cached is not None else []
            state.masks = shown if len(shown) == state.num_frames else self._masks_before(name, state)
        cached = CachedState(stamp, state, current, [array_sha1(m) for m in state.masks])
        self._states[name] = cached
        if not current:  # queued once cached: its job starts from the masks shown
            with self.lock:  # an addition saves its state and queues its job under the lock
                if not self.pending(name):
                    self.queue(name, None)
        return cached

    def _masks_before(self, name: str, state: VideoState) -> list[np.ndarray]:
        """The masks the last propagation of ``name`` saved, outdated by ``state`` ([] if one is missing).

        A server killed after an addition (saved with its masks out of date) left them in ``masks/``: the
        restarted one shows them until the new propagation replaces them.
        """
        folder = self.session.folder / name
        shape = self.session.frame_shape(name, self.session.frames(name)[0])[1]
        masks = [imread(state.mask_path(folder, t), cv2.IMREAD_UNCHANGED) for t in range(state.num_frames)]
        whole = all(mask is not None and mask.shape == shape and mask.dtype == np.uint8 for mask in masks)
        return [mask for mask in masks if mask is not None] if whole else []

    def queue(self, video: str, frame: int | None) -> Job:
        """Queue the propagation of ``video`` (after an addition on ``frame``); reads see it as it goes."""
        saved = self.session.saved_state(video)
        if saved is None:
            raise ValueError(f"video {video!r} has no saved state to propagate")
        shown = self._states.get(video)
        height, width = self.session.frame_shape(video, self.session.frames(video)[0])[1]
        masks = shown.state.masks if shown is not None else []
        job = Job(len(self.jobs) + 1, video, frame, frames=saved[0].num_frames)
        self._partial[video] = _Partial.before(job.id, saved[0], masks, (height, width))
        self.jobs.append(job)
        self._queue.put(job)
        return job

    def add(
        self,
        video: str,
        frame: int,
        given: GivenAnnotation,
        current: np.ndarray | None = None,
        seen: int | None = None,
        declared: Collection[int] = (),
    ) -> tuple[Addition, Job]:
        """Add an annotation to ``video`` (saved at once) and queue its propagation.

        A propagation of the video that is queued or running is superseded first (`supersede`).

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            given: the annotation.
            current: the mask the person corrected, as `AnnotationSession.add` takes it.
            seen: the video's `edits` when the page read the frame: an annotation of the frame made
                since (in another tab, by the ML backend) is not overwritten unseen.
            declared: the ids the page declared as new objects; one the video knows already (another
                tab declared it since) is not merged with it.

        Raises:
            StaleFrame: the frame was annotated since ``seen``, or a ``declared`` id is known.
        """
        with self.lock:
            if seen is not None:
                self._check_unchanged(video, frame, seen)
            self._check_new(video, declared)
            self.supersede(video)
            try:
                added = self.session.add(video, frame, given, propagate=False, current=current)
            except BaseException:
                self.resume(video)  # the superseded propagation is still owed
                raise
            return added, self.queue(video, frame)

    def edits(self, video: str) -> int:
        """How many annotations ``video`` holds (0 before its first): what a page's open frame was read at."""
        cached = self.state(video)
        return len(cached.state.annotations) if cached is not None else 0

    def _check_unchanged(self, video: str, frame: int, seen: int) -> None:
        """Raise `StaleFrame` when an annotation of ``frame`` came after the first ``seen`` of ``video``.

        The annotations are the cached state's, as `edits` counts them (reread when its file changed).
        """
        cached = self.state(video)
        t = self.session.frames(video).index(frame)
        if cached is not None and any(a.frame == t for a in cached.state.annotations[seen:]):
            raise StaleFrame(
                f"frame {frame} of {video} was annotated elsewhere (another page, `annotate add`, Label "
                "Studio) since this page opened it: open it again to see that edit, then make yours"
            )

    def _check_new(self, video: str, declared: Collection[int]) -> None:
        """Raise `StaleFrame` when ``video`` knows an object a page declares as new (another tab made it)."""
        cached = self.state(video)
        known = sorted(set(declared) & set(cached.state.objects)) if cached is not None else []
        if known:
            name = cached.state.names.get(known[0], "") if cached is not None else ""
            raise StaleFrame(
                f"object {known[0]} of {video} was declared ({name!r}) on another page since this one "
                "opened: open the frame again to see it, then declare yours anew (it gets its own id)"
            )

    def supersede(self, video: str, timeout: float = 600.0) -> None:
        """Stop ``video``'s queued or running propagation before an addition (call under the lock).

        A queued job is dropped at once; a running one stops at the engine's next frame, and this
        returns when it has (the video's state is free for the addition then).
        """
        with self.lock:
            self._stop([video], timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Stop every queued or running propagation: the server is shutting down.

        The annotations are saved already; the masks they owe are made when the session is served
        again (a state whose masks are out of date is queued on start).

        Args:
            timeout: the seconds to wait for a running propagation to stop at its next frame.

        Raises:
            TimeoutError: one did not stop in time.
        """
        with self.lock:
            self._stop({job.video for job in self.jobs}, timeout)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """The lifespan of a Starlette app over this service: its propagations stop with the server.

        As it starts, the click models' solver is compiled in the background (`max_flow.prepare`).
        """
        threading.Thread(target=prepare_cuts, name="frugalseg-compile", daemon=True).start()
        try:
            yield
        finally:
            try:
                await run_in_threadpool(self.close)
            except TimeoutError as err:  # the annotations are saved; the next server makes the masks
                log.warning("shutting down: %s", err)

    def _stop(self, videos: Collection[str], timeout: float) -> None:
        """Drop the queued jobs of ``videos`` and wait for their running one to stop (call under the lock)."""
        for job in self.jobs:
            if job.video in videos and job.status in ("queued", "propagating"):
                job.stop = True
                if job.status == "queued":
                    job.status, job.ended = "superseded", time.monotonic()
        end = time.monotonic() + timeout
        while running := [j.video for j in self.jobs if j.video in videos and j.status == "propagating"]:
            if time.monotonic() > end:
                raise TimeoutError(f"the propagation of {running[0]!r} did not stop in {timeout:.0f} s")
            time.sleep(0.01)

    def resume(self, video: str) -> None:
        """Queue ``video``'s propagation if its saved masks are out of date and none is queued."""
        with self.lock:
            saved = self.session.saved_state(video)
            if saved is not None and not saved[1] and not self.pending(video):
                self.queue(video, None)

    def wait(self, timeout: float = 600.0) -> None:
        """Block until no propagation is queued or running (for tests and benchmarks)."""
        end = time.monotonic() + timeout
        while self.pending() and time.monotonic() < end:
            time.sleep(0.05)

    def _work(self) -> None:
        while True:
            self._run(self._queue.get())
            if self._queue.empty():  # idle: give back what the propagation freed
                return_free_memory()

    def _run(self, job: Job) -> None:
        """Propagate ``job``'s video, each frame shown and counted as it arrives."""
        with self.lock:  # a job superseded while queued is not started
            if job.stop:
                return
            job.status, job.started = "propagating", time.monotonic()
        partial = self._partial[job.video]

        def arrived(t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
            if job.stop:
                raise Superseded(job.video)
            partial.arrived(t, mask, disagreement, unsure)
            job.done = len(partial.fresh)

        status, error = "done", None
        try:
            self.session.finish(job.video, on_frame=arrived)
        except Superseded:
            status = "superseded"
        except Exception as err:  # reported to the page; the saved annotation stays
            log.exception("propagation of %s failed", job.video)
            status, error = "failed", job_problem(err)
        del self._partial[job.video]  # reads go back to the saved state
        job.ended, job.error = time.monotonic(), error
        job.status = status  # last: `supersede` waits for it, the partial view gone

    def current_mask(self, video: str, frame: int) -> np.ndarray:
        """Frame ``frame``'s current mask as the page shows it (zeros before the video's first annotation)."""
        cached = self.state(video)
        if cached is not None and cached.state.masks:
            return cached.state.masks[self.session.frames(video).index(frame)]
        return np.zeros(self.session.frame_shape(video, frame)[1], np.uint8)

    def prepare_frame(self, video: str, frame: int) -> None:
        """`AnnotationSession.prepare_frame` of a frame a person opened: a failure is logged, never raised.

        It runs after a response (a background task), outside the routes' guard; the frame's own routes
        already answer a frame that cannot be read, and the first click readies the frame itself.
        """
        try:
            self.session.prepare_frame(video, frame)
        except DataError as err:
            log.warning("frame %s of %s not readied for clicks: %s", frame, video, err)
        except Exception:
            log.exception("readying frame %s of %s for clicks failed", frame, video)

    def names(self) -> dict[str, dict[str, str]]:
        """Video → object id → the class name the person gave it (the session's state)."""
        return {
            name: {str(k): v for k, v in cached.state.names.items()}
            for name in self.session.videos()
            if (cached := self.state(name)) is not None
        }

    def thumbnail(self, video: str, frame: int) -> bytes:
        """The JPEG thumbnail of a frame with its current mask (cached by the mask's content)."""
        t = self.session.frames(video).index(frame)
        cached = self.state(video)
        sha = cached.shas[t] if cached is not None and cached.shas else "none"
        key = (video, frame, sha)
        if key not in self._thumbs:
            ids = cached.state.masks[t] if cached is not None and cached.state.masks else None
            picture = thumbnail(self.session.frame_image(video, frame), ids, THUMB_WIDTH)
            self._thumbs[key] = jpeg(picture, 80)
        return self._thumbs[key]

    def proposal(self, video: str | None) -> Proposal | None:
        """The session's next proposal (cached until a state changes); None when every frame is annotated.

        It never waits for a propagation: a video being propagated counts with what is known of it
        (`_Partial.estimate`), and the proposal is marked ``provisional`` while any video propagates
        (the page asks again when the job ends). An annotation usually makes the frames around it
        more reliable, so the choice made this way is mostly the one the whole clip gives, but not
        always (a frame's unreliability can also grow when its side changes).
        """
        partial = dict(self._partial)
        now, jobs = time.monotonic(), tuple(sorted((name, p.job) for name, p in partial.items()))
        recent = self._recent.get(video)
        if jobs and recent is not None and recent[1] == jobs and now - recent[0] < PROPOSAL_INTERVAL:
            return recent[2]  # the same propagations run: what they changed since is at most this old
        answer = self._proposal(video, partial)
        self._recent[video] = (now, jobs, answer)
        return answer

    def _proposal(self, video: str | None, partial: dict[str, _Partial]) -> Proposal | None:
        cached = {name: self.state(name) for name in self.session.videos()}
        key = (video, tuple((name, c.stamp if c else None) for name, c in cached.items()))
        if key not in self._proposals:
            states = {name: c.state for name, c in cached.items() if c is not None}
            states.update({name: known.estimate() for name, known in partial.items() if name in states})
            proposal = self.session.propose(self.options, video=video, states=states)
            self._proposals[key] = self._provisional(proposal, partial)
        return self._proposals[key]

    def _provisional(self, proposal: Proposal | None, partial: dict[str, _Partial]) -> Proposal | None:
        """``proposal`` marked as made while ``partial``'s videos propagate, its reason saying from what."""
        if proposal is None or not partial:
            return proposal
        known = partial.get(proposal.video)
        t = self.session.frames(proposal.video).index(proposal.frame)
        if known is None or t in known.fresh:
            return replace(proposal, provisional=True)
        selector = self.options.frames
        basis = (
            "its distance to the annotated frames"
            if t in known.unknown
            else "its unreliability before this annotation and its distance to the annotated frames"
        )
        reason = (
            f"{selector} while {proposal.video} propagates: frame {proposal.frame} is not propagated "
            f"yet, chosen by {basis}; the proposal may change when the clip is done"
        )
        return replace(proposal, provisional=True, reason=reason)

    def export(self, folder: Path) -> tuple[Path, int, list[Path], bool]:
        """Export the session to a label store under ``folder``, and the store to the tool formats.

        An unchanged session is exported to the store of its last export (the same labels, the tool
        files written again); a changed one to a new store (``store-001``, ``store-002`` …). A new
        export that fails leaves no store behind; the empty store of one that was killed (no
        ``run.json``, only its lock and temporary files) is cleared and used again.

        The tool files hold each object under its own id and the class name the person gave it
        (``object`` when none), no background (`export_with_tools`, which ``annotate export`` shares).

        Returns:
            The store's path, the labels in it (of every kind), the tool files (COCO, Label Studio,
            one CVAT for video file per video) in ``<store>-tools/``, which the person opens in their tool,
            and whether the store is unchanged since the last export.

        Raises:
            PropagationPending: a propagation is queued or running (checked under the lock a submit holds
                while it saves its annotation and queues its job).
        """
        from frugalseg.autolabel.store import LabelStore

        with self.lock:  # a submit saves its annotation and queues its job under the same lock
            if self.pending():
                raise PropagationPending("a propagation is running; export when it has finished")
            stores = sorted(p for p in folder.glob("store-[0-9][0-9][0-9]") if p.is_dir())
            config = json.loads(json.dumps(self.session.export_config(), sort_keys=True))
            last = stores[-1] if stores else None
            if last is not None and _left_empty(last):
                shutil.rmtree(last)
                shutil.rmtree(tools_folder(last), ignore_errors=True)
                out, new = last, True
            elif last is not None and _run_config(last) == config:
                out, new = last, False
            else:
                number = int(last.name[len("store-") :]) + 1 if last is not None else 1
                out, new = folder / f"store-{number:03d}", True
            states = {name: cached.state for name in self.session.videos() if (cached := self.state(name))}
            if any(len(state.masks) != state.num_frames for state in states.values()):  # a failed propagation
                saved = self.session.export_states()  # such a video as far as it was annotated
                states = {
                    name: s if len(s.masks) == s.num_frames else saved[name] for name, s in states.items()
                }
            _, _, files = export_with_tools(self.session, out, new=new, states=states)
            # every label of the store (masks, clicks and boxes; an unchanged session's, written by its
            # last export), not the frames of the tool files
            return out, len(LabelStore(out).records()), files, not new


def return_free_memory() -> None:
    """Hand the C allocator's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    A propagation's frames, flows and cuts are freed when it ends, but glibc keeps the pages of the arenas
    its threads used: the page server held about 0.5 GB more after each propagation while it sat idle
    (`benchmarks/results/annotate_serve.md`).
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    """glibc, where this process runs on it (its ``malloc_trim``), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name is not None else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def _left_empty(store: Path) -> bool:
    """Whether ``store`` is a folder a killed export left before its ``run.json``.

    It is when it holds nothing but the lock and temporary files, and no live run holds the lock.
    """
    from frugalseg.autolabel.store import LOCK_FILE, RUN_FILE

    if (store / RUN_FILE).exists():
        return False
    files = [p for p in store.rglob("*") if not p.is_dir()]
    if any(p.name != LOCK_FILE and not (p.name.startswith(".") and p.name.endswith(".tmp")) for p in files):
        return False
    lock = store / LOCK_FILE
    if not lock.is_file():
        return True
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a run of another process is starting in it
    finally:
        os.close(fd)
    return True


def _run_config(store: Path) -> Any:
    """The ``run.json`` of a label store folder (None when it has none or it is damaged)."""
    try:
        return json.loads((store / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def jpeg(picture: np.ndarray, quality: int = 90) -> bytes:
    """An RGB picture as JPEG bytes."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError(f"cannot encode a picture of shape {picture.shape} as JPEG")
    return data.tobytes()


def unreliability(cached: CachedState | None) -> list[float | None]:
    """Each frame's unreliability to 4 places (None where not known yet), or none before propagation."""
    if cached is None or not cached.state.masks or len(cached.state.disagreement) != len(cached.state.masks):
        return []
    state = cached.state
    shares = frame_unreliability(state.disagreement, state.unsure, state.annotated)
    return [None if t in cached.unknown else round(share, 4) for t, share in enumerate(shares)]


def expected_errors(cached: CachedState | None) -> list[float | None]:
    """Each frame's expected 1 − J&F (`filmstrip_scores`: the filmstrip's colour), None where unknown yet."""
    if cached is None or not cached.state.masks or len(cached.state.disagreement) != len(cached.state.masks):
        return []
    state = cached.state
    errors = filmstrip_scores(state.disagreement, state.unsure, state.kinds)
    return [None if t in cached.unknown else error for t, error in enumerate(errors)]
