"""The words of a proposal (`next_annotation`) and the filmstrip's scores, on hand-made states.

A person reads the reason of a proposal on the page and in ``annotate propose``: what it says must be
what the model expects, in things they can check (the frames it is propagated from, a measured share
each on its own, the seconds of the tool they use), never a share above 100 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalseg.active.objects.choosing.frame_selectors import get_selector
from frugalseg.active.objects.choosing.type_policies import get_policy
from frugalseg.active.objects.session.proposals import LOOK_HERE, filmstrip_scores, next_annotation
from frugalseg.active.objects.state import Annotation, VideoState
from frugalseg.data.costs import AnnotationCosts

N = 10


def state_of(
    disagreement: list[float], unsure: list[float], made: list[Annotation], objects: int = 1
) -> VideoState:
    """A video of ``N`` frames with ``objects`` squares on every frame, annotated as ``made`` says."""
    mask = np.zeros((40, 60), np.uint8)
    for obj in range(1, objects + 1):
        mask[5:15, 10 * obj : 10 * obj + 8] = obj
    state = VideoState(video="clip", num_frames=N, objects=dict.fromkeys(range(1, objects + 1), 0))
    state.annotations = made
    state.annotated = {a.frame: mask for a in made}
    state.masks, state.disagreement, state.unsure = [mask] * N, disagreement, unsure
    return state


def reason(state: VideoState, frames: str = "uncertainty", types: str = "mask") -> tuple[int, str]:
    paths = [Path(f"{t:05d}.jpg") for t in range(N)]
    candidate = next_annotation(
        state, paths, [2 * t for t in range(N)], get_selector(frames, 0), get_policy(types, 0),
        AnnotationCosts(), lambda: [], lambda path: np.zeros((40, 60, 3), np.uint8),
    )  # fmt: skip
    return candidate.proposal.frame, candidate.proposal.reason


def test_a_frame_the_flow_was_unsure_of_is_not_called_99_percent_left_to_fix() -> None:
    # the frame: the flow unsure of 99 % of the object, one side only (frame 0 drawn): the model
    # expects 1 − 0.56·9/17 = 0.70 (frame 9 is 9 loop frames from frame 0), and annotating it lifts the
    # video's mean J&F by the fall of its summed error over 10 frames: (Σ 0.56·g/(g + 8), g = 1…9, − Σ
    # 0.256·g/(g + 2.3784) of the 8 frames now between two masks) / 10 = 0.081
    made = [Annotation(0, 1, "mask", 80.0, 0, 0)]
    frame, text = reason(state_of([0.0] * N, [0.0] * 9 + [0.99], made))
    assert frame == 18  # frame 9 of the loop, every 2nd frame of the sequence
    assert text == (
        "uncertainty among 9 frames not annotated; the error model expects J&F 0.70 on this frame "
        "(propagated from annotated frame 0 alone) and the video's mean J&F to rise by 0.081 once it is "
        "annotated; the flow was unsure of 99% of the object's area; about 80 s with a drawn mask, as "
        "your last annotation of this video with a drawn mask took 80 s per object; 8.0 s per frame so far"
    )
    assert "left to fix" not in text


def test_shares_are_quoted_each_on_its_own_never_summed_past_100_percent() -> None:
    # frame 5 between frames 0 and 9 drawn: the two directions disagree on 60 %, the flow was unsure of
    # 70 %; the former text added them into "100 % …; counted as 100 %"
    made = [Annotation(0, 1, "mask", 80.0, 0, 0), Annotation(9, 1, "mask", 80.0, 0, 1)]
    d = [0.0] * 5 + [0.6] + [0.0] * 4
    u = [0.0] * 5 + [0.7] + [0.0] * 4
    frame, text = reason(state_of(d, u, made))
    assert frame == 10
    assert "(propagated from annotated frames 0 and 18) " in text
    assert (
        "; the two directions disagree on 60% of the object's area; the flow was unsure of 70% of it;" in text
    )
    assert "counted as" not in text and "100%" not in text


def test_the_cost_quoted_is_that_of_the_type_proposed() -> None:
    def cost(made: list[Annotation], types: str, objects: int = 1) -> str:
        text = reason(state_of([0.0] * N, [0.0] * N, made, objects=objects), types=types)[1]
        return text.split("; ")[-2]

    # a mask drawn, then 1 click (2.5 s for the one object, not rounded to 2): each type at the person's
    # own seconds of it, never the other's (a proposed mask had been quoted as 2.5 s with clicks)
    made = [Annotation(0, 1, "mask", 80.0, 0, 0), Annotation(4, 1, "clicks", 2.5, 1, 1)]
    assert cost(made, "mask") == (
        "about 80 s with a drawn mask, as your last annotation of this video with a drawn mask "
        "took 80 s per object"
    )
    assert cost(made, "clicks") == (
        "about 2.5 s with clicks, as your last annotation of this video with clicks took 2.5 s per object"
    )
    # the walkthrough's: two objects drawn (160 s), clicks proposed: the cost table's clicks of both
    # objects, 1.5 s × 3 clicks × 2 + 1 s for the frame, not "160 s with a drawn mask"
    drawn = [Annotation(0, o, "mask", 80.0, 0, 0) for o in (1, 2)]
    assert cost(drawn, "clicks", objects=2) == "about 10 s for clicks of 2 objects (the cost table's)"
    assert (
        cost(drawn, "box", objects=2) == "about 24 s for a box and its clicks of 2 objects (the cost table's)"
    )
    # a box and 2 clicks on each of two objects (10 s each): 20 s for the frame's two objects
    boxed = [Annotation(0, o, "box", 10.0, 2, 0) for o in (1, 2)]
    assert cost(boxed, "box", objects=2) == (
        "about 20 s with a box and its clicks, as your last annotation of this video with a box and its "
        "clicks took 10 s per object"
    )
    # kept as propagated (a look, no annotation of a type): the cost table's, whatever is proposed
    kept = [Annotation(0, o, "clicks", 1.0, 0, 0) for o in (1, 2)]
    assert cost(kept, "mask", objects=2) == "about 160 s for a drawn mask of 2 objects (the cost table's)"
    assert cost(kept, "clicks", objects=2) == "about 10 s for clicks of 2 objects (the cost table's)"
    # a frame submitted empty, booked as object 0's mask in 1 s: no seconds of drawing an object (every
    # later mask had been quoted "about 1.0 s with a drawn mask")
    empty = [Annotation(0, 0, "mask", 1.0, 0, 0)]
    assert cost(empty, "mask") == "about 80 s for a drawn mask of 1 object (the cost table's)"


def test_filmstrip_scores_are_the_model_s_expected_error_and_red_means_look_here() -> None:
    # one side: 0.56·g/(g + 8); between two masks: 0.256·g/(g + 2.3784); a drawn frame 0
    scores = filmstrip_scores([0.0] * N, [0.0] * N, {0: "mask", 6: "mask"})
    assert scores[0] == scores[6] == 0.0
    assert scores[3] == pytest.approx(0.256 * 3 / 5.3784, abs=1e-4)
    assert scores[9] == pytest.approx(0.56 * 3 / 11, abs=1e-4)
    # red only from LOOK_HERE: the frames next to a drawn one are not, the far ones are
    assert [
        t for t, s in enumerate(filmstrip_scores([0.0] * N, [0.0] * N, {0: "mask"})) if s >= LOOK_HERE
    ] == [t for t in range(N) if 0.56 * t / (t + 8) >= LOOK_HERE]


def test_a_frame_no_object_is_propagated_to_says_so() -> None:
    """Its unsure share had read 100 % of an object that is not there."""
    made = [Annotation(0, 0, "mask", 1.0, 0, 0)]
    state = state_of([0.0] * N, [1.0] * N, made)
    state.masks = [np.zeros((40, 60), np.uint8)] * N
    text = reason(state)[1]
    assert "; no object is propagated to this frame;" in text and "unsure" not in text
