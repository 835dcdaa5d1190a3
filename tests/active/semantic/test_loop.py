"""The semantic annotation loop (paper 000): a killed loop resumes to the same end, the clicks ledger adds
up by hand, and bad input is refused before anything is written."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from active.tiny_semantic import tiny_semantic_student
from frugalseg.active.semantic.click_cost import label_clicks
from frugalseg.active.semantic.loop import (
    STATE_FILE,
    SemanticLoop,
    SemanticLoopConfig,
    SemanticVideo,
    read_video,
    score_labels,
)
from frugalseg.active.semantic.samples import Granularity, SamplePool
from frugalseg.active.semantic.simulate import curves
from frugalseg.data.costs import DEFAULT_COSTS
from frugalseg.data.formats import generate_synthetic_streets, get_format
from frugalseg.errors import ConfigError, DataError
from frugalseg.lightning_modules.semantic_learner import FineTuningLearner
from frugalseg.zoo import ModelConfig, register_model, unregister_model


@pytest.fixture(scope="module")
def student():
    register_model(tiny_semantic_student, config=ModelConfig())
    yield "tiny_semantic_student"
    unregister_model("tiny_semantic_student")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> SemanticVideo:
    root = generate_synthetic_streets(
        tmp_path_factory.mktemp("streets") / "data", {"val": 1}, size=(48, 64), num_frames=20
    )
    fmt = get_format("synthetic", root)
    return read_video(fmt, fmt.clips("val")[0], max_frames=4)


def _learner(student: str) -> FineTuningLearner:
    return FineTuningLearner(
        student=student, num_classes=19, epochs=2, lr=0.05, trainer_args={"accelerator": "cpu"}
    )


class _Killed(Exception):
    """Stands in for the process being killed."""


class _KilledAt(FineTuningLearner):
    """A learner whose process dies when fine-tuning starts on iteration ``at``."""

    at = -1
    fitted: list[int]

    def fit(self, frames, labels, iteration, flow_cache=None):
        self.fitted.append(iteration)
        if iteration == self.at:
            raise _Killed
        return super().fit(frames, labels, iteration, flow_cache)


def _killable(student: str, at: int) -> _KilledAt:
    learner = _KilledAt(
        student=student, num_classes=19, epochs=2, lr=0.05, trainer_args={"accelerator": "cpu"}
    )
    learner.at = at
    learner.fitted = []
    return learner


CONFIG = SemanticLoopConfig(Granularity("rectangle", size=16), "diversity", budget_percent=30, baseline=False)


@pytest.mark.slow
def test_a_killed_loop_resumes_and_ends_as_an_uninterrupted_one(student, video, tmp_path):
    whole = SemanticLoop(video, tmp_path / "whole", CONFIG, _learner(student), flow_cache=tmp_path / "flows")
    expected = whole.run()
    assert len(expected) == 3

    dying = _killable(student, at=2)
    with pytest.raises(_Killed):
        SemanticLoop(video, tmp_path / "killed", CONFIG, dying, flow_cache=tmp_path / "flows").run()
    assert dying.fitted == [0, 1, 2]
    saved = json.loads((tmp_path / "killed" / STATE_FILE).read_text(encoding="utf-8"))
    assert len(saved["history"]) == 2

    again = _killable(student, at=-1)
    resumed = SemanticLoop(video, tmp_path / "killed", CONFIG, again, flow_cache=tmp_path / "flows")
    assert resumed.run() == expected
    assert again.fitted == [2]  # the two saved iterations are not made again
    assert all(np.array_equal(a, b) for a, b in zip(resumed.labels, whole.labels, strict=True))
    assert (tmp_path / "killed" / STATE_FILE).read_bytes() == (tmp_path / "whole" / STATE_FILE).read_bytes()
    assert [p.name for p in (tmp_path / "killed" / "weights").iterdir()] == ["iter03.safetensors"]

    # a finished loop run again does nothing and gives the same records
    done = _killable(student, at=-1)
    assert (
        SemanticLoop(video, tmp_path / "whole", CONFIG, done, flow_cache=tmp_path / "flows").run() == expected
    )
    assert done.fitted == []


def test_the_clicks_ledger_is_the_hand_sum_of_the_labelled_samples(student, video, tmp_path):
    config = replace(CONFIG, granularity=Granularity("superpixel", segments=12), selector="random")
    loop = SemanticLoop(video, tmp_path / "run", config, _learner(student), flow_cache=tmp_path / "flows")
    history = loop.run()
    pool = SamplePool(video.frames, config.granularity)
    by_hand = []
    frames_per_iteration: list[set[int]] = [set() for _ in history]
    for sample in loop.labelled:
        mask = pool.regions[sample.frame] == sample.region
        truth = video.ground_truth[sample.frame]
        assert truth is not None
        by_hand.append(label_clicks(np.where(mask, truth, 255).astype(np.uint8)))
        frames_per_iteration[sample.iteration].add(sample.frame)
    assert [s.clicks for s in loop.labelled] == by_hand
    assert history[-1].total_clicks == sum(by_hand)
    assert [r.clicks for r in history] == [
        sum(c for s, c in zip(loop.labelled, by_hand, strict=True) if s.iteration == r.iteration)
        for r in history
    ]
    full = sum(label_clicks(truth) for truth in video.ground_truth if truth is not None)
    assert history[-1].clicks_percent == pytest.approx(100 * sum(by_hand) / full, abs=1e-5)
    seconds = sum(by_hand) * DEFAULT_COSTS.click_seconds + DEFAULT_COSTS.clicked_frame_seconds * sum(
        len(frames) for frames in frames_per_iteration
    )
    # summed exactly: each record had been the previous one's rounded hours plus the iteration's, rounded
    assert round(seconds / 3600, 6) != seconds / 3600
    assert history[-1].hours == pytest.approx(seconds / 3600, rel=1e-12)
    assert curves([loop.result])["strategies"][config.name]["points"][-1]["hours"] == round(seconds / 3600, 6)
    # each iteration spends about its third of the budget (it takes the largest pick that fits)
    budget = config.budget_percent / 100 * full
    assert all(r.total_clicks <= budget * (r.iteration + 1) / 3 for r in history)


def test_bad_input_is_refused_before_anything_is_written(student, video, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="granularity: unknown sample granularity 'hexagon'"):
        SemanticLoopConfig(Granularity("hexagon"))
    with pytest.raises(ConfigError, match="selector: unknown sample selector 'smart'"):
        SemanticLoopConfig(selector="smart")
    with pytest.raises(ConfigError, match="the 'uniform' selector spreads whole frames"):
        SemanticLoopConfig(Granularity("rectangle"), "uniform")
    with pytest.raises(ConfigError, match="budget: the budget must be 0 < b ≤ 100"):
        SemanticLoopConfig(budget_percent=0)
    with pytest.raises(ConfigError, match="rectangles of 80×80 pixels are larger than the 64×48 frame"):
        SemanticLoop(
            video, out, replace(CONFIG, granularity=Granularity("rectangle", size=80)), _learner(student)
        )
    short = replace(video, frames=video.frames[:1], ground_truth=video.ground_truth[:1])
    with pytest.raises(ConfigError, match="needs a video of at least 2 frames, got 1"):
        SemanticLoop(short, out, CONFIG, _learner(student))
    missing = replace(video, ground_truth=[*video.ground_truth[:2], None, *video.ground_truth[3:]])
    with pytest.raises(DataError, match="frame 2: no ground truth"):
        SemanticLoop(missing, out, CONFIG, _learner(student))
    assert not out.exists()


def test_a_state_made_with_other_settings_is_refused(student, video, tmp_path):
    config = replace(CONFIG, iterations=1)
    SemanticLoop(video, tmp_path / "run", config, _learner(student), flow_cache=tmp_path / "flows").run()
    before = (tmp_path / "run" / STATE_FILE).read_bytes()
    other = replace(config, budget_percent=20)
    with pytest.raises(ConfigError, match=r"other settings \(loop\.budget_percent 30 then → 20 now\); rerun"):
        SemanticLoop(video, tmp_path / "run", other, _learner(student), flow_cache=tmp_path / "flows").run()
    assert (tmp_path / "run" / STATE_FILE).read_bytes() == before


def test_a_label_s_unlabelled_pixels_score_as_wrong_not_as_a_crash() -> None:
    """A propagation leaves void (255) where it cannot tell; CamVid's flow baseline crashed on it."""
    truth = np.array([[0, 0, 1, 1]])
    label = np.array([[0, 255, 1, 1]])  # the second pixel unlabelled
    flow = np.zeros((1, 4, 2), np.float32)
    quality = score_labels([label, label], [truth, None], 2, [(flow, flow)])
    # class 0: 1 of target 2 and prediction 1 → 1/2; class 1: 2/2 → mIoU 0.75; 3 of 4 pixels right.
    # Bands (a 1×4 frame is all border): class 0 gt {0, 1}, label {0} → 1/2; class 1 {2, 3} both → 1.
    assert (quality.miou, quality.pixel_accuracy, quality.boundary_iou) == (0.75, 0.75, 0.75)
    assert quality.tc == 1.0  # the same label twice, its void left out
