"""An object a person declares after annotating other frames is propagated through them, not erased.

The video is squares-a of `data.fake_davis` (10 frames of 64×48): object 1 moves right 2 px a frame,
object 2 down 1 px a frame, both on every frame. The person draws object 1 alone on frames 0 and 9,
then declares object 2 on frame 3.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from data.fake_davis import palette_png, squares, write_moving_squares

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.session.late_objects import propagate_with_late_objects
from frugalseg.active.objects.state import VideoState
from frugalseg.active.propagation import Propagated
from frugalseg.cli import main
from frugalseg.data.io import read_frame

pytestmark = pytest.mark.usefixtures("one_cv_thread")


def add(state: Path, frame: int, *options: str, root: Path | None = None) -> None:
    start = ["--root", str(root), "--split", "val"] if root is not None else []
    where = ["--video", "squares-a", "--frame", str(frame)]
    assert main(["annotate", "add", "--state", str(state), *start, *where, *options]) == 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b)) / max(int(np.count_nonzero(a | b)), 1)


@pytest.fixture
def declared_late(tmp_path: Path) -> Path:
    """The session after object 1 alone on frames 0 and 9, then both objects on frame 3."""
    root = write_moving_squares(tmp_path / "davis")
    shutil.rmtree(root / "Annotations")
    for t in (0, 9):
        palette_png(tmp_path / f"one{t}.png", (squares(t, 0) == 1).astype(np.uint8))
    palette_png(tmp_path / "both3.png", squares(3, 0))
    state = tmp_path / "session"
    add(state, 0, "--mask", str(tmp_path / "one0.png"), root=root)
    add(state, 9, "--mask", str(tmp_path / "one9.png"))
    add(state, 3, "--mask", str(tmp_path / "both3.png"), "--new-objects")
    return state


def test_frames_annotated_before_an_object_was_declared_do_not_erase_it(declared_late: Path) -> None:
    state, _ = VideoState.load(declared_late / "squares-a")
    assert state.objects == {1: 0, 2: 3}
    assert state.late_objects == {0: frozenset({2}), 9: frozenset({2})}
    # object 2 from frame 3 on, frame 9 (annotated before it existed) too; never before frame 3
    assert not any((state.masks[t] == 2).any() for t in range(3))
    for t in range(3, 10):
        assert iou(state.masks[t] == 2, squares(t, 0) == 2) > 0.8, t
    # nothing disagrees: no annotated frame says the object is absent; an annotated frame has no doubt,
    # and the frames before the object appears have none of it
    assert max(state.disagreement) < 0.05, state.disagreement
    assert state.unsure[0] == state.unsure[9] == 0.0 and state.disagreement[0] == state.disagreement[9] == 0.0
    others = {t: np.where(mask == 2, 0, mask).astype(np.uint8) for t, mask in state.annotated.items()}
    alone = get_loop_engine("flow").propagate(_frames(declared_late), others, first_frames={1: 0})
    assert state.unsure[:3] == alone.unsure[:3] and state.disagreement[:3] == alone.disagreement[:3]
    # the annotations stand: object 1 of frames 0 and 9 as drawn
    for t in (0, 9):
        assert np.array_equal(state.masks[t] == 1, squares(t, 0) == 1)
        assert np.array_equal(state.annotated[t], (squares(t, 0) == 1).astype(np.uint8))


def test_a_frame_annotated_again_keeps_the_late_object_it_was_shown(declared_late: Path) -> None:
    # a click on object 1 of frame 9: the mask corrected is the one shown, with object 2 propagated into it
    clicks = declared_late.parent / "clicks.json"
    clicks.write_text(json.dumps({"clicks": [{"object": 1, "x": 27, "y": 13, "positive": True}]}), "utf-8")
    add(declared_late, 9, "--clicks", str(clicks))
    state, _ = VideoState.load(declared_late / "squares-a")
    assert state.late_objects == {0: frozenset({2})}
    assert iou(state.annotated[9] == 2, squares(9, 0) == 2) > 0.8
    assert iou(state.masks[9] == 2, squares(9, 0) == 2) > 0.8


def _frames(session: Path) -> list[np.ndarray]:
    return [read_frame(p) for p in sorted((session.parent / "davis").rglob("squares-a/*.jpg"))]


def test_each_frame_is_reported_once_with_its_final_mask(declared_late: Path) -> None:
    state, _ = VideoState.load(declared_late / "squares-a")
    frames = _frames(declared_late)
    reported: dict[int, list[np.ndarray]] = {}
    result = propagate_with_late_objects(
        get_loop_engine("flow"),
        frames,
        state.annotated,
        late=state.late_objects,
        first_frames=state.objects,
        on_frame=lambda t, mask, *_: reported.setdefault(t, []).append(mask),
    )
    assert sorted(reported) == list(range(10)) and all(len(masks) == 1 for masks in reported.values())
    assert all(np.array_equal(reported[t][0], result.masks[t]) for t in range(10))
    assert all(np.array_equal(result.masks[t], state.masks[t]) for t in range(10))


def _late_pass_waits(engine: Any, shown: threading.Event, waited: list[bool]) -> Callable[..., Propagated]:
    """``engine.propagate`` whose pass of object 2 alone ends once the caller has a frame (or after 5 s)."""
    inner = engine.propagate

    def propagate(frames: Any, annotated: Any, *, first_frames: Any = None, **options: Any) -> Propagated:
        result = inner(frames, annotated, first_frames=first_frames, **options)
        if set(first_frames or ()) == {2}:
            waited.append(shown.wait(5))
        return result

    return propagate


def test_frames_are_reported_before_the_late_pass_ends(
    declared_late: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the page shows frames as they come; with the late pass first it had shown none until that pass ended
    state, _ = VideoState.load(declared_late / "squares-a")
    engine, shown, waited = get_loop_engine("flow"), threading.Event(), []
    monkeypatch.setattr(engine, "propagate", _late_pass_waits(engine, shown, waited))
    reported: list[int] = []

    def on_frame(t: int, *_: Any) -> None:
        reported.append(t)
        shown.set()

    result = propagate_with_late_objects(
        engine, _frames(declared_late), state.annotated, late=state.late_objects, first_frames=state.objects,
        on_frame=on_frame,
    )  # fmt: skip
    assert waited == [True] and sorted(reported) == list(range(10))
    assert all(np.array_equal(result.masks[t], state.masks[t]) for t in range(10))


def test_an_error_of_the_caller_stops_every_pass(declared_late: Path) -> None:
    """The caller's error at the first frame (0 or 3, which both passes know at once) stops both passes
    at their next frame, and is raised once; the late pass had run whole before it."""
    state, _ = VideoState.load(declared_late / "squares-a")
    reported: list[int] = []

    def on_frame(t: int, *_: Any) -> None:
        reported.append(t)
        raise KeyboardInterrupt

    engine = get_loop_engine("flow")
    cache = engine.new_cache()
    with pytest.raises(KeyboardInterrupt):
        propagate_with_late_objects(
            engine, _frames(declared_late), state.annotated, late=state.late_objects,
            first_frames=state.objects, cache=cache, on_frame=on_frame,
        )  # fmt: skip
    assert reported in ([0], [3])
    # the late pass alone carries object 2 to 9 frames; stopped, the passes made a frame per segment at most
    assert cache.computed <= 4


def test_the_caller_is_told_of_one_frame_at_a_time(declared_late: Path) -> None:
    """The passes run on threads; the caller's ``on_frame`` (the page's) had been entered by two at once."""
    state, _ = VideoState.load(declared_late / "squares-a")
    inside, overlapped, reported = [0], [], []

    def on_frame(t: int, *_: Any) -> None:
        inside[0] += 1
        overlapped.append(inside[0] > 1)
        threading.Event().wait(0.02)  # a slow caller: the other pass arrives meanwhile
        reported.append(t)
        inside[0] -= 1

    engine = get_loop_engine("flow")
    propagate_with_late_objects(
        engine, _frames(declared_late), state.annotated, late=state.late_objects,
        first_frames=state.objects, cache=engine.new_cache(), on_frame=on_frame,
    )  # fmt: skip
    assert sorted(reported) == list(range(len(_frames(declared_late)))) and not any(overlapped)


def test_a_pass_failing_after_a_ctrl_c_is_not_reported_as_a_second_failure(caplog) -> None:
    """A second Ctrl-C ended the interpreter under the passes, and each then "failed too" with
    ``RuntimeError('cannot schedule new futures after interpreter shutdown')``; another error is still
    told."""
    import logging

    from frugalseg.active.objects.session.late_objects import _Join

    caplog.set_level(logging.WARNING, "frugalseg")
    interrupted = _Join(3, [], frozenset(), None)
    interrupted.stop(KeyboardInterrupt())
    interrupted.stop(RuntimeError("cannot schedule new futures after interpreter shutdown"))
    assert isinstance(interrupted.stopped, KeyboardInterrupt) and not caplog.records
    failed = _Join(3, [], frozenset(), None)
    failed.stop(ValueError("a pass failed"))
    failed.stop(RuntimeError("another"))
    assert [r.getMessage() for r in caplog.records] == [
        "a late object's propagation pass failed too: RuntimeError('another')"
    ]
