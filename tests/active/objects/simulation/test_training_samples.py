"""QNet's samples and features: quality bins, the masks of every iteration of a scripted state with J
by hand, the sample file, a run folder, and the frame the QNet features make the diversity selector pick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data.fake_davis import squares, write_moving_squares

from active.synthetic_clips import CopyAnchor, moving_square
from frugalseg.active.objects.choosing.diversity_features import qnet_features
from frugalseg.active.objects.choosing.frame_selectors import DiversitySelector, SelectionView
from frugalseg.active.objects.engines import AnchorFusionEngine, get_loop_engine
from frugalseg.active.objects.simulation.loop import Video
from frugalseg.active.objects.simulation.training_samples import (
    QualitySamples,
    annotation_rounds,
    quality_bin,
    quality_samples,
    run_quality_samples,
)
from frugalseg.active.objects.state import Annotation, VideoState
from frugalseg.active.propagation import PropagationCache
from frugalseg.errors import ConfigError, DataError
from frugalseg.zoo import QualityNet
from frugalseg.zoo.quality_net import prepare_inputs, resize_frame, resize_mask

SIZE = 32


def copy_engine() -> AnchorFusionEngine:
    """The loop engine over `CopyAnchor`."""
    return AnchorFusionEngine(CopyAnchor())


def test_quality_bin_of_exact_values() -> None:
    assert [quality_bin(j) for j in (0.0, 0.05, 0.3, 0.35, 0.5, 0.999, 1.0)] == [0, 1, 6, 7, 10, 19, 19]
    assert [quality_bin(j, bins=4) for j in (0.2, 0.25, 0.74, 1.0)] == [0, 1, 2, 3]


def scripted() -> tuple[Video, VideoState]:
    """Six frames of the moving square (object 1, 2 px right per frame) and, from frame 3, object 2
    (1 px down per frame); iteration 0 annotates frame 0, iteration 1 frame 3, both from the truth."""
    frames, truth = moving_square(6, late=3)
    video = Video("square", frames, truth, list(range(6)))
    state = VideoState(video="square", num_frames=6, objects={1: 0, 2: 3})
    state.annotations = [
        Annotation(0, 1, "mask", 80.0, iteration=0),
        Annotation(3, 1, "mask", 80.0, iteration=1),
        Annotation(3, 2, "mask", 80.0, iteration=1),
    ]
    state.annotated = {0: truth[0], 3: truth[3]}
    return video, state


def square_j(d: int) -> float:
    """J of the 40 px square against itself moved 2·d px sideways."""
    return (40 - 2 * d) / (40 + 2 * d)


def test_samples_of_a_scripted_two_iteration_state_have_the_j_computed_by_hand() -> None:
    video, state = scripted()
    assert annotation_rounds(state) == [(0, frozenset({0})), (1, frozenset({0, 3}))]
    cache = PropagationCache()
    samples = quality_samples(video, state, copy_engine(), input_size=SIZE, cache=cache)
    got = list(zip(samples.iteration.tolist(), samples.frame.tolist(), samples.object.tolist(), strict=True))
    expected = {
        # iteration 0: every frame is frame 0's truth; object 2, there from frame 3, is missed (J 0)
        (0, 1, 1): square_j(1),
        (0, 2, 1): square_j(2),
        (0, 3, 1): square_j(3),
        (0, 3, 2): 0.0,
        (0, 4, 1): square_j(4),
        (0, 4, 2): 0.0,
        (0, 5, 1): square_j(5),
        (0, 5, 2): 0.0,
        # iteration 1: the nearer of frames 0 and 3 wins; object 2 is absent from frames 1 and 2 in
        # truth and mask (left out); after frame 3 it is frame 3's square, 1 and 2 px off
        (1, 1, 1): square_j(1),
        (1, 2, 1): square_j(1),
        (1, 4, 1): square_j(1),
        (1, 4, 2): 15 / 17,
        (1, 5, 1): square_j(2),
        (1, 5, 2): 14 / 18,
    }
    assert got == list(expected)
    assert samples.j.tolist() == pytest.approx(list(expected.values()))
    assert samples.labels().tolist() == [quality_bin(j) for j in expected.values()]
    assert samples.labels()[[0, 3, 11]].tolist() == [18, 0, 17]  # 38/42 = 0.905, 0, 15/17 = 0.882
    # iteration 0 propagated frames 1…5 from frame 0; iteration 1 reused 1 and 2 and added 3 → 1, 2, 4, 5
    assert cache.computed == 5 + 4
    assert len(samples.frames) == 5  # frames 1…5, each resized once
    for i, t in enumerate(samples.frame):
        assert np.array_equal(samples.frames[samples.frame_index[i]], resize_frame(video.frames[t], SIZE))
    source = {0: 0, 1: 3}  # the annotated frame whose truth each checked sample shows
    for i in (0, 12):
        obj, it = samples.object[i], samples.iteration[i]
        expected_mask = resize_mask(video.truth[source[it]] == obj, SIZE)
        assert np.array_equal(samples.masks([i])[0], expected_mask)


def test_a_state_of_another_length_than_the_video_is_refused() -> None:
    video, state = scripted()
    short = Video("square", video.frames[:5], video.truth[:5], list(range(5)))
    with pytest.raises(ConfigError, match="has 6 frames, video 'square' 5"):
        quality_samples(short, state, copy_engine(), input_size=SIZE)


def test_samples_saved_and_loaded_are_equal_and_bad_files_are_refused(tmp_path: Path) -> None:
    video, state = scripted()
    samples = quality_samples(video, state, copy_engine(), input_size=SIZE)
    samples.save(tmp_path / "samples.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npz"]  # atomic: no temporary file left
    loaded = QualitySamples.load(tmp_path / "samples.npz")
    for name in ("frames", "frame_index", "packed_masks", "j", "video", "frame", "object", "iteration"):
        assert np.array_equal(getattr(loaded, name), getattr(samples, name)), name
    twice = QualitySamples.concatenate([samples, loaded])
    assert len(twice) == 28 and len(twice.frames) == 5  # identical frames are kept once
    assert np.array_equal(twice.masks()[14:], samples.masks())
    assert len(twice.of_videos(["square"])) == 28 and len(twice.of_videos(["other"]).frames) == 0
    later = samples.subset(samples.iteration == 1)
    assert len(later) == 6 and len(later.frames) == 4  # frames 1, 2, 4, 5
    with pytest.raises(DataError, match=r"none\.npz: quality samples file does not exist"):
        QualitySamples.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"junk\.npz: not a readable \.npz archive"):
        QualitySamples.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match=r"other\.npz: not quality samples"):
        QualitySamples.load(tmp_path / "other.npz")
    arrays = {name: getattr(samples, name) for name in ("frames", "frame_index", "packed_masks", "j")}
    np.savez(tmp_path / "cut.npz", format="frugalseg-quality-samples", **arrays)
    with pytest.raises(DataError, match=r"cut\.npz: quality samples without video, frame, object"):
        QualitySamples.load(tmp_path / "cut.npz")
    arrays = {name: getattr(samples, name) for name in ("frames", "frame_index", "packed_masks", "video")}
    rest = {name: getattr(samples, name) for name in ("frame", "object", "iteration")}
    rest["j"] = samples.j[:3]
    np.savez(tmp_path / "short.npz", format="frugalseg-quality-samples", **arrays, **rest)
    with pytest.raises(DataError, match=r"short\.npz: quality samples whose arrays disagree"):
        QualitySamples.load(tmp_path / "short.npz")


def write_run(tmp_path: Path) -> Path:
    """A run folder as ``annotate simulate`` leaves it, with hand-made two-iteration states."""
    root = write_moving_squares(tmp_path / "davis")
    run = tmp_path / "run"
    settings = {"format": "davis", "root": str(root), "split": "val", "stride": 1, "max_frames": None}
    run.mkdir()
    (run / "run.json").write_text(json.dumps(settings), encoding="utf-8")
    loops = {"uniform-mask/seed0": (0, 9), "random-mask/seed1": (0, 4)}
    for loop, frames in loops.items():
        for seq, name in enumerate(["squares-a", "squares-b"]):
            if loop.startswith("random") and seq == 1:
                continue  # one random loop, of squares-a only
            masks = {t: squares(t, seq) for t in frames}
            objects = {int(o): 0 for o in np.unique(masks[0]) if o}
            state = VideoState(video=name, num_frames=10, objects=objects)
            state.annotations = [
                Annotation(t, o, "mask", 80.0, iteration=k) for k, t in enumerate(frames) for o in objects
            ]
            state.annotated = masks
            state.save(run / "runs" / loop / name)
    return run


def test_run_samples_are_those_of_each_loop_state_of_the_videos_and_loops_asked_for(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    samples = run_quality_samples(run, engine=copy_engine(), input_size=SIZE)
    # 9 then 8 frames left unannotated per loop, each with every object: squares-a (2 objects) in two
    # loops, squares-b (1 object) in one
    assert len(samples) == 17 * 2 * 2 + 17
    assert samples.video.tolist() == ["squares-a"] * 68 + ["squares-b"] * 17
    assert len(samples.frames) == 18  # frames 1…9 of each video (0 is always annotated), kept once
    one = VideoState.load(run / "runs" / "uniform-mask" / "seed0" / "squares-b")[0]
    video = Video("squares-b", *_video_of(run, "squares-b"))
    by_hand = quality_samples(video, one, copy_engine(), input_size=SIZE)
    only_b = run_quality_samples(run, ["squares-b"], engine=copy_engine(), input_size=SIZE)
    assert only_b.j.tolist() == by_hand.j.tolist() and len(only_b) == 17
    random_only = run_quality_samples(run, loops=["random-mask/seed1"], engine=copy_engine(), input_size=SIZE)
    assert len(random_only) == 34
    assert set(random_only.frame[random_only.iteration == 1].tolist()) == {1, 2, 3, 5, 6, 7, 8, 9}
    with pytest.raises(DataError, match="holds no loop state of the videos asked for"):
        run_quality_samples(run, ["squares-c"], engine=copy_engine(), input_size=SIZE)
    with pytest.raises(DataError, match=r"davis: no run\.json: not an `annotate simulate` run folder"):
        run_quality_samples(tmp_path / "davis", engine=copy_engine())


def _video_of(run: Path, name: str) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    from frugalseg.active.objects.simulation.runs import video_sources
    from frugalseg.data.formats import get_format

    settings = json.loads((run / "run.json").read_text(encoding="utf-8"))
    fmt = get_format("davis", settings["root"])
    source = next(s for s in video_sources(fmt, "val") if s.name == name)
    loaded = source.load()
    return loaded.frames, loaded.truth, loaded.indices


class MaskArea(QualityNet):
    """A stand-in QNet whose embedding is known: the share of the mask that is object (1-d)."""

    def __init__(self) -> None:
        super().__init__(input_size=SIZE)
        self.calls: list[tuple[bool, bool, int]] = []

    def embed(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled(), len(frames)))
        return masks.mean((1, 2, 3))[:, None]


def view_of(masks: list[np.ndarray], annotated: set[int]) -> SelectionView:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*m.shape, 3), dtype=np.uint8) for m in masks]
    return SelectionView("clip", 2, len(masks), annotated, frames=frames, masks=masks)


def test_qnet_features_make_the_diversity_selector_pick_the_farthest_embedding() -> None:
    masks = [np.zeros((64, 64), np.uint8) for _ in range(5)]
    masks[0][:32, :32] = 1  # a quarter
    masks[1][32:, 32:] = 1  # a quarter elsewhere: the same embedding
    masks[2][:32, :] = 1  # two objects, a half and a quarter: their mean, 0.375
    masks[2][32:, :32] = 2
    masks[3][40:, 40:] = 255  # void only: no object, the empty mask's embedding
    masks[4][:48, :48] = 3  # 0.5625
    net = MaskArea().train()
    features = qnet_features(net, batch_size=2)
    assert features(view_of(masks, {0})).ravel().tolist() == [0.25, 0.25, 0.375, 0.0, 0.5625]
    # six (frame, object) pairs in batches of 2, each in eval mode without gradients; the mode is restored
    assert net.calls == [(False, False, 2)] * 3 and net.training
    selector = DiversitySelector(features=features)
    assert selector.select(view_of(masks, {0})) == 4  # 0.3125 from frame 0
    assert selector.select(view_of(masks, {0, 4})) == 3  # 0.25 from frame 0, against 0.125 for frame 2
    with pytest.raises(ConfigError, match="QNet features need the frames and the current masks"):
        features(SelectionView("clip", 2, 5, {0}))


def test_qnet_features_of_a_real_network_are_the_mean_embedding_of_each_frames_objects() -> None:
    torch.manual_seed(0)
    net = QualityNet(input_size=SIZE).eval()
    frames, truth = moving_square(3, late=1)
    masks = [truth[0], truth[1], np.zeros_like(truth[2])]  # one object, two objects, none
    view = SelectionView("square", 1, 3, {0}, frames=frames, masks=masks)
    got = qnet_features(net, batch_size=3)(view)
    assert got.shape == (3, 1024)

    def embed(frame: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        x, m = prepare_inputs(frame, mask, SIZE)
        with torch.no_grad():
            return net.embed(x[None], m[None])[0]

    expected = [
        embed(frames[0], truth[0] == 1),
        (embed(frames[1], truth[1] == 1) + embed(frames[1], truth[1] == 2)) / 2,
        embed(frames[2], np.zeros_like(truth[2], bool)),
    ]
    assert np.allclose(got, torch.stack(expected).numpy(), atol=1e-5)


def test_simulated_run_to_trained_qnet_to_selected_frame(tmp_path: Path) -> None:
    """End to end: ``annotate simulate``, the samples of its loops (the last iteration's masks rebuilt
    equal to the loop's own), a trained, saved and reloaded QNet, and a frame selected with it."""
    from frugalseg.cli import main
    from frugalseg.lightning_modules.quality_net import fit_quality_net
    from frugalseg.metrics.mask_scores import region_similarity
    from frugalseg.zoo import load_quality_net, save_quality_net

    root = write_moving_squares(tmp_path / "davis")
    run = tmp_path / "run"
    simulate = ["annotate", "simulate", "--root", str(root), "--split", "val", "--budget-hours", "0.2"]
    simulate += ["--frames", "uniform", "--types", "mask", "--no-progress"]
    assert main([*simulate, "--out", str(run)]) == 0
    engine = get_loop_engine("flow")  # the CLI's default engine
    samples = run_quality_samples(run, engine=engine, input_size=SIZE)
    for name in ("squares-a", "squares-b"):
        state, whole = VideoState.load(run / "runs" / "uniform-mask" / "seed0" / name)
        truth = _video_of(run, name)[1]
        frames_left = [state.num_frames - 1 - k for k in range(len(state.history))]  # one more annotated each
        ours = samples.video == name
        assert whole and len(samples.j[ours]) == sum(frames_left) * len(state.objects)
        last = ours & (samples.iteration == state.history[-1].iteration)
        for t, obj, j in zip(samples.frame[last], samples.object[last], samples.j[last], strict=True):
            assert j == region_similarity(state.masks[t] == obj, truth[t] == obj, truth[t] == 255)
    samples.save(tmp_path / "samples.npz")
    net = fit_quality_net(QualitySamples.load(tmp_path / "samples.npz"), epochs=1, batch_size=16, lr=0.01)
    save_quality_net(net, tmp_path / "qnet.safetensors", {"run": str(run)})
    loaded, meta = load_quality_net(tmp_path / "qnet.safetensors")
    assert meta == {"run": str(run)}
    frames = _video_of(run, "squares-b")[0]
    view = SelectionView("squares-b", 5, 10, set(state.annotated), frames=frames, masks=state.masks)
    assert DiversitySelector(features=qnet_features(loaded)).select(view) in view.candidates
