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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from frugalseg.active.objects.engines import LoopEngine
from frugalseg.active.propagation import FrameReady, Propagated


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

    The late objects are propagated first (one pass per set of frames that know them), then the others,
    each frame reported once with the late objects laid over it; a frame's disagreement and unsure
    share are the larger of its passes' (an annotated frame's, and a frame's before the late objects
    appear, are the other objects').

    Args:
        engine: the session's loop engine.
        frames: the video, H×W×3 uint8 RGB.
        annotated: annotated frame → its object-id mask.
        late: annotated frame → the objects declared after its mask was made (`VideoState.late_objects`).
        first_frames: object id → the first frame it appears in.
        cache: the engine's cache of this video.
        on_frame: called with each frame's final result as soon as it is known.
    """
    groups: dict[frozenset[int], list[int]] = {}  # the annotated frames that know them → objects
    for obj in sorted(set().union(*late.values())):
        knowing = frozenset(t for t in annotated if obj not in late.get(t, ()))
        if knowing:  # else no annotated frame holds it
            groups.setdefault(knowing, []).append(obj)
    if not groups:
        return engine.propagate(frames, annotated, first_frames=first_frames, cache=cache, on_frame=on_frame)
    carried = []
    for knowing, objects in groups.items():
        ids = np.array(objects, np.uint8)
        alone = {t: np.where(np.isin(annotated[t], ids), annotated[t], 0).astype(np.uint8) for t in knowing}
        firsts = {obj: first_frames[obj] for obj in objects if obj in first_frames}
        since = min(firsts.values(), default=0)  # the pass's doubt before the objects appear is of nothing
        carried.append((ids, since, engine.propagate(frames, alone, first_frames=firsts, cache=cache)))
    every = np.concatenate([ids for ids, _, _ in carried])
    late_ids = set(every.tolist())
    others = {t: np.where(np.isin(mask, every), 0, mask).astype(np.uint8) for t, mask in annotated.items()}
    merged: dict[int, tuple[np.ndarray, float, float]] = {}

    def lay(t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        mask = mask.copy()
        for ids, since, result in carried:
            paste = np.isin(result.masks[t], ids) & (mask == 0)
            mask[paste] = result.masks[t][paste]
            if t >= since and t not in annotated:
                disagreement, unsure = (
                    max(disagreement, result.disagreement[t]),
                    max(unsure, result.unsure[t]),
                )
        merged[t] = mask, disagreement, unsure
        if on_frame is not None:
            on_frame(t, mask, disagreement, unsure)

    tracked = {obj: first for obj, first in first_frames.items() if obj not in late_ids}
    engine.propagate(frames, others, first_frames=tracked, cache=cache, on_frame=lay)  # every frame is laid
    masks, disagreement, unsure = zip(*(merged[t] for t in range(len(frames))), strict=True)
    return Propagated(list(masks), list(disagreement), list(unsure))
