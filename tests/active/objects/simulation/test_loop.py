"""The annotation loop on synthetic clips: cost ledger, J = 1 with every frame drawn, resume byte-equal."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from active.synthetic_clips import jaccard, moving_square
from frugalseg.active.objects.choosing.frame_selectors import FrameSelector, LookaheadSelector, get_selector
from frugalseg.active.objects.choosing.type_policies import LookaheadTypePolicy, TypePolicy, get_policy
from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.labels import video_labels
from frugalseg.active.objects.simulation.annotation_types import ANNOTATION_TYPES as TYPES
from frugalseg.active.objects.simulation.annotation_types import annotate_clicks
from frugalseg.active.objects.simulation.loop import AnnotationLoop, Curve, Video, dataset_curve, mean_curve
from frugalseg.active.objects.simulation.simulated_annotator import CorrectiveClick
from frugalseg.active.objects.state import Annotation, VideoState
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.grabcut import grabcut_clicks
from frugalseg.data.costs import DEFAULT_COSTS

pytestmark = pytest.mark.usefixtures("one_cv_thread")


class Scripted(FrameSelector, TypePolicy):
    """Frames and types from lists, in order."""

    def __init__(self, frames: list[int], kinds: list[str]) -> None:
        self.frames, self.kinds = list(frames), list(kinds)

    def select(self, view) -> int:
        return self.frames.pop(0)

    def choose(self, view) -> str:
        return self.kinds.pop(0)


def video(n: int = 10, **kwargs) -> Video:
    frames, truth = moving_square(n, **kwargs)
    return Video("square", frames, truth, list(range(n)))


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_the_cost_ledger_of_a_scripted_loop_equals_the_hand_sum(tmp_path: Path) -> None:
    clip = video(10, late=4)
    script = Scripted([8, 2], ["mask", "clicks"])
    loop = AnnotationLoop(clip, script, script, get_loop_engine("flow"), tmp_path)
    state = loop.run(1e6, steps=4)
    # frame 0 (object 1), frame 4 where object 2 first appears (both), then the script
    assert [(r.frame, r.kind) for r in state.history] == [
        (0, "mask"),
        (4, "mask"),
        (8, "mask"),
        (2, "clicks"),
    ]
    clicks = [a.clicks for a in state.annotations if a.kind == "clicks"]
    assert len(clicks) == 1 and 0 <= clicks[0] <= 3  # object 2 is not on frame 2 yet
    hand = 80 + 2 * 80 + 2 * 80 + 1.5 * sum(clicks) + 1
    assert state.seconds == pytest.approx(hand)
    assert state.history[-1].total_seconds == pytest.approx(hand)
    assert [r.seconds for r in state.history] == pytest.approx([80, 160, 160, 1.5 * sum(clicks) + 1])
    # the late object is absent from every mask before frame 4
    assert not any((state.masks[t] == 2).any() for t in range(4))


def test_annotating_every_frame_with_masks_ends_at_j_1(tmp_path: Path) -> None:
    clip = video(8)
    loop = AnnotationLoop(
        clip, get_selector("uniform"), get_policy("mask"), get_loop_engine("flow"), tmp_path
    )
    state = loop.run(1e6)
    assert state.done and len(state.history) == 8
    assert state.history[-1].j == 1.0 and state.history[-1].jf == 1.0
    assert state.seconds == 8 * DEFAULT_COSTS.vos_mask_seconds
    # J&F never falls below the first iteration's
    assert min(r.jf for r in state.history) == state.history[0].jf


def test_a_killed_loop_resumes_and_ends_byte_equal(tmp_path: Path) -> None:
    clip = video(12, late=5)
    engine = get_loop_engine("flow")

    def loop(folder: Path) -> AnnotationLoop:
        return AnnotationLoop(
            clip, get_selector("uncertainty"), get_policy("oracle"), engine, folder, config={"s": "u-o"}
        )

    budget = 700.0
    whole = loop(tmp_path / "whole").run(budget)
    assert len(whole.history) >= 5
    loop(tmp_path / "killed").run(budget, steps=3)
    # killed while writing the masks of the next iteration: one current mask no longer matches state.json
    (tmp_path / "killed" / "masks" / "00007.png").write_bytes(b"half a png")
    state, whole_masks = VideoState.load(tmp_path / "killed")
    assert state.iteration == 3 and not whole_masks
    resumed = loop(tmp_path / "killed").run(budget)
    assert resumed.iteration == whole.iteration
    assert files(tmp_path / "killed") == files(tmp_path / "whole")
    # a folder of another loop is refused
    with pytest.raises(ValueError, match="holds a loop of video"):
        AnnotationLoop(
            clip, get_selector("random"), get_policy("mask"), engine, tmp_path / "whole", config={}
        )


def test_a_mask_replaces_a_clicked_frame_chosen_again(tmp_path: Path) -> None:
    clip = video(3)
    script = Scripted([1, 2, 1], ["clicks", "clicks"])  # the third choice asks no type: a mask
    loop = AnnotationLoop(clip, script, script, get_loop_engine("flow"), tmp_path)
    state = loop.run(1e6)
    assert state.iteration == 3 and loop.finished  # every frame annotated: none left to choose
    script.replaces = True
    assert not loop.finished  # but a selector that replaces may choose a clicked frame again
    loop.run(1e6, steps=1)
    made = [(r.frame, r.kind) for r in state.history]
    assert made == [(0, "mask"), (1, "clicks"), (2, "clicks"), (1, "mask")]
    assert state.kinds == {0: "mask", 1: "mask", 2: "clicks"} and not loop.finished
    assert np.array_equal(state.annotated[1], np.where(clip.truth[1] == 255, 0, clip.truth[1]))
    clicks = sum(a.seconds for a in state.annotations if a.kind == "clicks")
    assert state.seconds == pytest.approx(80 + clicks + 80)


def test_a_frame_s_kind_is_its_latest_annotation_s_exact_only_when_drawn_or_kept() -> None:
    state = VideoState(video="v", num_frames=10, objects={1: 0, 2: 0})
    state.annotations = [
        Annotation(0, 1, "mask", 80.0, 0, 0),
        Annotation(3, 1, "clicks", 1.0, 0, 1),  # looked at and kept as propagated: no click made
        Annotation(5, 1, "box", 11.5, 3, 2),
        Annotation(7, 1, "clicks", 4.0, 2, 3),
        Annotation(7, 1, "mask", 80.0, 0, 4),  # a mask replaced the clicks
        Annotation(8, 1, "mask", 80.0, 0, 5),
        Annotation(8, 2, "clicks", 2.5, 1, 5),  # one object of the frame clicked
    ]
    state.annotated = {t: np.zeros((2, 2), np.uint8) for t in (0, 3, 5, 7, 8)}
    assert state.kinds == {0: "mask", 3: "mask", 5: "box", 7: "mask", 8: "clicks"}
    assert state.replaceable == [5, 8]


def test_a_frame_s_dense_label_is_fine_when_the_annotation_that_made_its_mask_drew_every_object() -> None:
    state = VideoState(video="v", num_frames=4, objects={1: 0})
    state.annotations = [
        Annotation(0, 1, "mask", 80.0, 0, 0),
        Annotation(1, 1, "clicks", 4.0, 2, 1),
        Annotation(1, 1, "mask", 80.0, 0, 2),  # a mask replaced the clicks: drawn
        Annotation(2, 1, "mask", 80.0, 0, 3),
        Annotation(2, 1, "clicks", 1.0, 0, 4),  # looked at later and kept: still the drawn mask
        Annotation(3, 1, "clicks", 2.5, 1, 5),
    ]
    state.annotated = {t: np.zeros((2, 2), np.uint8) for t in range(4)}
    state.masks = [np.zeros((2, 2), np.uint8)] * 4
    assert [a.iteration for a in state.made_by(1)] == [2] and [a.iteration for a in state.made_by(2)] == [3]
    labels = list(video_labels(SimpleNamespace(anchor_index=0), range(4), state))
    assert [(x.offset, x.kind.value, x.seconds) for x in labels] == [
        (0, "fine", 80.0),
        (1, "fine", 84.0),
        (2, "fine", 81.0),
        (3, "pseudo", 2.5),
    ]


def test_clicks_turn_into_a_better_mask_with_grabcut() -> None:
    frames, truth = moving_square(3)
    current = np.roll(truth[1], 12, axis=1)  # the square found 12 px too far right
    result = annotate_clicks(frames[1], current, truth[1])
    assert 1 <= result.clicks[1] <= 3
    assert result.seconds == {1: 1.5 * result.clicks[1] + 1}
    assert jaccard(result.mask, truth[1]) > jaccard(current, truth[1]) + 0.2
    # GrabCut alone from one positive click in the middle of the square, no prior mask
    click = CorrectiveClick(x=30, y=48, positive=True, region_area=1, depth=1.0)
    found = grabcut_clicks(frames[0], np.zeros(truth[0].shape, bool), [click])
    assert found[48, 30] and not found[0, 0]


def test_curves_sum_hours_and_average_quality_in_lockstep() -> None:
    from frugalseg.active.objects.state import IterationRecord

    def rec(i: int, total: float, jf: float) -> IterationRecord:
        return IterationRecord(i, i, "mask", 80, total, jf, jf, jf)

    a = [rec(0, 80, 0.5), rec(1, 160, 0.7), rec(2, 240, 0.9)]
    b = [rec(0, 80, 0.7), rec(1, 160, 0.9)]
    curve = dataset_curve([a, b], [1, 3])
    assert curve.hours == pytest.approx([160 / 3600, 320 / 3600, 400 / 3600], abs=1e-6)
    assert curve.jf == pytest.approx([0.65, 0.85, 0.9])
    assert curve.hours_to_reach(0.85) == pytest.approx(320 / 3600, abs=1e-6)
    assert Curve([0, 1], [0.5, 0.7]).hours_to_reach(0.6) == pytest.approx(0.5)
    assert Curve([0, 1], [0.5, 0.7]).hours_to_reach(0.85) is None
    assert mean_curve([Curve([0, 1], [0.5, 0.7]), Curve([0, 2], [0.7, 0.9])]).jf == pytest.approx(
        [0.6, 0.7, 0.8]
    )


def test_the_plot_joins_points_as_the_hours_to_the_target_read_them(monkeypatch) -> None:
    """The plot had drawn steps, which cross J&F 0.85 only at the next point, while the hours printed to reach
    it interpolate: a run printed 0.17 h and plotted 0.27 h."""
    from frugalseg.active.objects.simulation import loop

    monkeypatch.setattr(loop, "figure_png", lambda figure: figure)
    curve = Curve([0.1, 0.2], [0.8, 0.9])
    figure = loop.plot_curves({"a": curve})
    (line,) = [line for line in figure.axes[0].lines if line.get_label() == "a"]
    assert line.get_drawstyle() == "default" and line.get_xydata().tolist() == [[0.1, 0.8], [0.2, 0.9]]
    assert curve.hours_to_reach(0.85) == pytest.approx(0.15)  # where that line crosses 0.85


def test_the_lookahead_oracle_foresees_exactly_the_j_and_f_its_choice_then_reaches(tmp_path: Path) -> None:
    class Recording(LookaheadSelector):
        def select(self, view) -> int:
            lookahead = view.lookahead
            self.foreseen = {t: lookahead(t) for t in view.candidates}
            return super().select(view)

    clip = video(10, late=4)
    engine = get_loop_engine("flow")
    selector = Recording()
    loop = AnnotationLoop(clip, selector, get_policy("mask"), engine, tmp_path)
    loop.run(1e6, steps=2)  # frames 0 and 4 (where object 2 appears)
    for _ in range(2):
        record = loop.step()
        assert record.frame == max(selector.foreseen, key=lambda t: (round(selector.foreseen[t], 9), -t))
        assert record.jf == round(selector.foreseen[record.frame], 6)
        assert record.jf >= max(round(v, 6) for v in selector.foreseen.values())
    # the same frames as a fresh loop without a shared cache would choose
    again = AnnotationLoop(clip, LookaheadSelector(), get_policy("mask"), engine, tmp_path / "again")
    assert [r.frame for r in again.run(1e6, steps=4).history] == [r.frame for r in loop.state.history]


def test_the_type_lookahead_takes_the_largest_video_gain_per_second_its_choice_then_reaches(
    tmp_path: Path,
) -> None:
    class Recording(LookaheadTypePolicy):
        def choose(self, view) -> str:
            video_gain = view.video_gain
            self.foreseen = {k: (view.attempt(k), video_gain(view.attempt(k))) for k in TYPES}
            return super().choose(view)

    clip = video(10, late=4)
    policy = Recording()
    loop = AnnotationLoop(clip, get_selector("uniform"), policy, get_loop_engine("flow"), tmp_path)
    loop.run(1e6, steps=2)  # frames 0 and 4 (where object 2 appears), masks
    for _ in range(2):
        before = loop.state.history[-1].jf
        record = loop.step()
        per_second = {k: gain / r.total_seconds for k, (r, gain) in policy.foreseen.items()}
        assert record.kind == max(TYPES, key=lambda k: (per_second[k], -policy.foreseen[k][0].total_seconds))
        assert record.jf == round(before + policy.foreseen[record.kind][1], 6)  # what it foresaw


def test_a_video_without_objects_scores_one_without_a_nan(tmp_path: Path) -> None:
    """Nothing to segment: every frame is right (J = F = 1, as `frame_quality` says of such a frame),
    not the mean of no object (NaN, with numpy's "Mean of empty slice")."""
    frames, _ = moving_square(4)
    empty = [np.zeros(f.shape[:2], np.uint8) for f in frames]
    loop = AnnotationLoop(
        Video("nothing", frames, empty, list(range(4))),
        get_selector("uniform"),
        get_policy("mask"),
        get_loop_engine("flow"),
        tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        state = loop.run(1e6, steps=2)
    assert [r.jf for r in state.history] == [1.0, 1.0]
    assert state.quality == [1.0] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        curve = dataset_curve([state.history, state.history], weights=[0, 0])  # no video has an object
    assert curve.jf == [1.0, 1.0]
    assert curve.hours == [round(2 * r.total_seconds / 3600, 6) for r in state.history]


def test_the_loop_s_simulated_annotator_sees_each_frame_s_neighbour(tmp_path: Path) -> None:
    """The ``clicks`` and ``box`` types' click model gets the loop frame before (after, for frame 0)."""

    class Recording(StarCutClicks):
        def __init__(self) -> None:
            super().__init__()
            self.neighbours: list[object] = []

        def simulate(self, image, current, truth, *, clicks, ignore=None, known=None):  # type: ignore[no-untyped-def]
            self.neighbours.append(None if known is None else known.neighbour)
            return super().simulate(image, current, truth, clicks=clicks, ignore=ignore, known=known)

    clip = video(6)
    recording = Recording()
    engine = get_loop_engine("flow")
    loop = AnnotationLoop(
        clip, get_selector("uniform"), get_policy("clicks"), engine, tmp_path, click_model=recording
    )
    loop.run(1e6, steps=1)
    for frame in (0, 3):
        recording.neighbours.clear()
        loop._attempt(frame, "clicks")
        expected = clip.frames[1 if frame == 0 else frame - 1]
        assert recording.neighbours and all(n is expected for n in recording.neighbours)
