"""Objects a person declared after annotating other frames: those frames say nothing of them.

A person annotates one object at a time and the page carries the others, so a frame annotated
before an object existed in the session holds background where that object may well be. Fused as
it is, such a frame would erase the new object toward it and beyond. `propagate_with_late_objects`
propagates each late object from the frames that know it only, and pastes it over the background
of the frames whose nearest annotated frame does not know it (an annotated frame among them too:
its annotation stands, the object fills what it left as background). Once the person annotates
such a frame again, the mask they correct shows the object, and the frame knows it from then on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from frugalseg.active.objects.engines import LoopEngine
from frugalseg.active.propagation import FrameReady, Propagated, nearest_annotated


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

    Args:
        engine: the session's loop engine.
        frames: the video, H×W×3 uint8 RGB.
        annotated: annotated frame → its object-id mask.
        late: annotated frame → the objects declared after its mask was made (`VideoState.late_objects`).
        first_frames: object id → the first frame it appears in.
        cache: the engine's cache of this video.
        on_frame: called with each frame's final result; a frame the late objects change is reported
            once, after they are pasted.
    """
    groups: dict[frozenset[int], set[int]] = {}  # the annotated frames that know them → objects
    for obj in sorted(set().union(*late.values())):
        knowing = frozenset(t for t in annotated if obj not in late.get(t, ()))
        if knowing:  # else no annotated frame holds it
            groups.setdefault(knowing, set()).add(obj)
    left_of, right_of = nearest_annotated(sorted(annotated), len(frames))
    changed = {
        knowing: [t for t in range(len(frames)) if {left_of[t], right_of[t]} - {None} - knowing]
        for knowing in groups
    }
    held = set().union(*changed.values())

    def report(t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        if on_frame is not None and t not in held:
            on_frame(t, mask, disagreement, unsure)

    result = engine.propagate(frames, annotated, first_frames=first_frames, cache=cache, on_frame=report)
    for knowing, objects in groups.items():
        ids = np.array(sorted(objects), np.uint8)
        alone = {t: np.where(np.isin(annotated[t], ids), annotated[t], 0).astype(np.uint8) for t in knowing}
        firsts = {obj: first_frames[obj] for obj in objects if obj in first_frames}
        carried = engine.propagate(frames, alone, first_frames=firsts, cache=cache)
        for t in changed[knowing]:
            mask = result.masks[t].copy()
            if t not in annotated:
                mask[np.isin(mask, ids)] = 0
            paste = np.isin(carried.masks[t], ids) & (mask == 0)
            mask[paste] = carried.masks[t][paste]
            result.masks[t] = mask
    if on_frame is not None:
        for t in sorted(held):
            on_frame(t, result.masks[t], result.disagreement[t], result.unsure[t])
    return result
