"""Objects a person declared after annotating other frames: those frames say nothing of them.

A person annotates one object at a time and the page carries the others, so a frame annotated
before an object existed in the session holds background where that object may well be. Fused as
it is, such a frame would erase the new object toward it and beyond (and its disagreement would
send the person back to frames beside it). `propagate_with_late_objects` propagates each late
object from the frames that know it only, propagates the other objects with the late ones left out
of every annotated mask, and lays the late objects over the background of that result on every
frame: an annotated frame's annotation stands, the object fills what it left as background. Once
the person annotates such a frame again, the mask they correct shows the object, and the frame
knows it from then on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import Any

import numpy as np

from frugalseg.active.objects.engines import LoopEngine
from frugalseg.active.propagation import FrameReady, Propagated

logger = logging.getLogger(__name__)


def propagate_with_late_objects(
    engine: LoopEngine,
    frames: Sequence[np.ndarray],
    annotated: Mapping[int, np.ndarray],
    *,
    late: Mapping[int, frozenset[int]],
    first_frames: Mapping[int, int],
    cache: Any = None,
    on_frame: FrameReady | None = None,
) -> Propagated:
    """``engine.propagate`` of ``annotated``, where annotated frame ``t`` does not constrain ``late[t]``.

    The late objects are propagated in one pass per set of frames that know them, the others in one
    more, and each frame is reported once, with the late objects laid over it, as soon as every pass
    has it: the passes run at once where the engine allows (`LoopEngine.concurrent_passes`), so frames
    come from the start, else one after another, the others' last. A frame's disagreement and unsure
    share are the larger of its passes' (an annotated frame's, and a frame's before the late objects
    appear, are the other objects').

    Args:
        engine: the session's loop engine.
        frames: the video, H×W×3 uint8 RGB.
        annotated: annotated frame → its object-id mask.
        late: annotated frame → the objects declared after its mask was made (`VideoState.late_objects`).
        first_frames: object id → the first frame it appears in.
        cache: the engine's cache of this video.
        on_frame: called with each frame's final result as soon as it is known (from any thread).
    """
    groups: dict[frozenset[int], list[int]] = {}  # the annotated frames that know them → objects
    for obj in sorted(set().union(*late.values())):
        knowing = frozenset(t for t in annotated if obj not in late.get(t, ()))
        if knowing:  # else no annotated frame holds it
            groups.setdefault(knowing, []).append(obj)
    if not groups:
        return engine.propagate(frames, annotated, first_frames=first_frames, cache=cache, on_frame=on_frame)
    passes: list[tuple[dict[int, np.ndarray], dict[int, int]]] = []
    laid: list[tuple[np.ndarray, int]] = []  # each late pass's objects and the first frame they appear in
    for knowing, objects in groups.items():
        ids = np.array(objects, np.uint8)
        alone = {t: np.where(np.isin(annotated[t], ids), annotated[t], 0).astype(np.uint8) for t in knowing}
        firsts = {obj: first_frames[obj] for obj in objects if obj in first_frames}
        passes.append((alone, firsts))
        laid.append((ids, min(firsts.values(), default=0)))  # before they appear the pass doubts nothing
    every = np.concatenate([ids for ids, _ in laid])
    late_ids = set(every.tolist())
    others = {t: np.where(np.isin(mask, every), 0, mask).astype(np.uint8) for t, mask in annotated.items()}
    passes.append((others, {obj: first for obj, first in first_frames.items() if obj not in late_ids}))
    join = _Join(len(frames), laid, frozenset(annotated), on_frame)

    def run(index: int) -> None:
        masks, firsts = passes[index]
        try:
            reported = partial(join.arrive, index)
            engine.propagate(frames, masks, first_frames=firsts, cache=cache, on_frame=reported)
        except _Stopped:
            pass  # another pass failed: its error is the one raised
        except BaseException as err:
            join.stop(err)

    if engine.concurrent_passes:
        pool = ThreadPoolExecutor(len(passes), thread_name_prefix="late-objects")
        try:
            wait([pool.submit(run, index) for index in range(len(passes))])
        except BaseException as err:  # a Ctrl-C while waiting: the passes stop at their next frame
            join.stop(err)
            logger.info("stopping: the propagation passes end at their next frame, and nothing is saved")
            raise
        finally:
            pool.shutdown(wait=True)
    else:
        for index in range(len(passes)):
            if join.stopped is None:
                run(index)
    if join.stopped is not None:  # the first error of any pass, raised here once
        raise join.stopped
    return join.result()


class _Stopped(Exception):
    """Raised in a pass at its next frame once another pass (or the caller) has failed."""


_Result = tuple[np.ndarray, float, float]  # a frame's mask, disagreement and unsure share


class _Join:
    """Each frame's results from every pass (late passes first, the others' last), laid and reported once."""

    def __init__(
        self,
        n: int,
        laid: Sequence[tuple[np.ndarray, int]],
        annotated: frozenset[int],
        on_frame: FrameReady | None,
    ) -> None:
        self.laid, self.annotated, self.on_frame = laid, annotated, on_frame
        self.parts: list[dict[int, _Result]] = [{} for _ in range(n)]
        self.merged: list[_Result | None] = [None] * n
        self._lock = threading.Lock()
        self._reporting = threading.Lock()
        #: The first error of a pass or of ``on_frame``: every pass stops at its next frame (`_Stopped`).
        self.stopped: BaseException | None = None

    def stop(self, err: BaseException) -> None:
        """Keep the first error (raised by the caller once the passes are done), log any later one."""
        with self._lock:
            first = self.stopped is None
            if first:
                self.stopped = err
        if not first and not isinstance(self.stopped, KeyboardInterrupt):  # else the interpreter's ending
            logger.warning("a late object's propagation pass failed too: %r", err)

    def arrive(self, index: int, t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        """Pass ``index``'s result of frame ``t``; report the frame once every pass has it."""
        if self.stopped is not None:
            raise _Stopped
        with self._lock:
            parts = self.parts[t]
            parts[index] = mask, disagreement, unsure
            if len(parts) < len(self.laid) + 1:
                return
            self.merged[t] = merged = self._lay(t, parts)
            self.parts[t] = {}
        if self.on_frame is not None:
            with self._reporting:  # the caller is told of one frame at a time, never after an error
                if self.stopped is not None:
                    raise _Stopped
                try:
                    self.on_frame(t, *merged)
                except BaseException as err:
                    self.stop(err)
                    raise _Stopped from err

    def _lay(self, t: int, parts: dict[int, _Result]) -> _Result:
        """The others' mask of frame ``t`` with each late pass's objects laid over its background."""
        mask, disagreement, unsure = parts[len(self.laid)]
        mask = mask.copy()
        for index, (ids, since) in enumerate(self.laid):
            carried, late_disagreement, late_unsure = parts[index]
            paste = np.isin(carried, ids) & (mask == 0)
            mask[paste] = carried[paste]
            if t >= since and t not in self.annotated:
                disagreement, unsure = max(disagreement, late_disagreement), max(unsure, late_unsure)
        return mask, disagreement, unsure

    def result(self) -> Propagated:
        """Every frame's laid mask, disagreement and unsure share (every pass reported every frame)."""
        merged = [m for m in self.merged if m is not None]
        if len(merged) < len(self.merged):
            raise RuntimeError(f"frames {[t for t, m in enumerate(self.merged) if m is None]} missed a pass")
        masks, disagreement, unsure = zip(*merged, strict=True)
        return Propagated(list(masks), list(disagreement), list(unsure))
