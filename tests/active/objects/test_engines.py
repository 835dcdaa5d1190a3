"""The loop's propagation engines: flow (two-anchor fusion), SAM 2 (one state, every annotated mask a
conditioning frame) and STM (every annotated frame in memory), and how they are built by name.

SAM 2 and STM run with random weights: these tests check the pipeline (what goes in, what comes
back, what is cached), not mask quality; the known answers come from stand-ins for the networks.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from active.synthetic_clips import CopyAnchor, jaccard, moving_square
from frugalseg.active.objects.choosing.frame_selectors import get_selector
from frugalseg.active.objects.choosing.type_policies import get_policy
from frugalseg.active.objects.engines import (
    ENGINES,
    SURE,
    AnchorFusionEngine,
    SAM2LoopEngine,
    STMLoopEngine,
    get_loop_engine,
)
from frugalseg.active.objects.simulation.loop import AnnotationLoop, Video
from frugalseg.active.objects.tools.click_models import CLICK_MODELS, SAM2Clicks
from frugalseg.active.propagation import PropagationCache
from frugalseg.autolabel.engines import PROPAGATORS
from frugalseg.autolabel.flow_options import FlowOptions
from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.autolabel.sam2_loading import SAM2Options
from frugalseg.autolabel.sam2_propagate import SAM2Propagator
from frugalseg.errors import ConfigError, DataError, WeightsError
from frugalseg.options import given_options
from frugalseg.zoo import get_model


@pytest.fixture(scope="module")
def sam2_loop_engine() -> SAM2LoopEngine:
    torch.manual_seed(0)
    return SAM2LoopEngine(SAM2Options(random_weights=True, image_size=64, device="cpu"))


@pytest.fixture(scope="module")
def stm_engine() -> STMLoopEngine:
    torch.manual_seed(0)
    return STMLoopEngine("stm_r18", random_weights=True, max_objects=3, device="cpu")


def test_the_three_sam2_constructors_take_one_sam2_options() -> None:
    """Built directly or from options, SAM 2 is described by one `SAM2Options` (None: its defaults,
    so the three run where ``auto`` puts them); only their own arguments stand beside it."""
    own = {"SAM2Propagator": ["stuff", "offload_state_to_cpu", "merge_chunk"], "SAM2LoopEngine": ["tracker"],
           "SAM2Clicks": ["start"]}  # fmt: skip
    for cls in (SAM2Propagator, SAM2LoopEngine, SAM2Clicks):
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert (parameters[0].name, parameters[0].default) == ("options", None)
        assert [p.name for p in parameters[1:]] == own[cls.__name__]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])
    assert SAM2Options().device == "auto"


def test_the_flow_engine_fuses_the_two_nearest_annotated_frames_and_caches_per_video() -> None:
    frames, truth = moving_square(21)
    engine = get_loop_engine("flow", preset="fast")
    assert isinstance(engine, AnchorFusionEngine) and isinstance(engine.anchor_engine, FlowPropagator)
    assert engine.settings["anchor_engine"] == "flow" and engine.settings["preset"] == "fast"
    cache = engine.new_cache()
    assert isinstance(cache, PropagationCache)
    result = engine.propagate(frames, {0: truth[0], 20: truth[20]}, first_frames={1: 0}, cache=cache)
    assert result.masks[0] is not truth[0] and np.array_equal(result.masks[20], truth[20])
    assert min(jaccard(result.masks[t], truth[t]) for t in range(21)) > 0.9
    computed = cache.computed
    assert computed == 19 * 2  # frames 1…19, once from each side
    engine.propagate(frames, {0: truth[0], 20: truth[20]}, first_frames={1: 0}, cache=cache)
    assert cache.computed == computed  # the second iteration reuses every result


def test_the_flow_engine_runs_passes_at_once_over_dis_flows_only() -> None:
    """A late object's pass and the others' share the CPU's threads (DIS); an engine not on threads (RAFT's
    flows on its device, or one that says nothing) runs its passes in turn."""
    engine = get_loop_engine("flow", preset="fast")
    assert isinstance(engine, AnchorFusionEngine) and engine.concurrent_passes
    assert not AnchorFusionEngine(CopyAnchor()).concurrent_passes
    raft = FlowPropagator()
    raft.flow = raft.direct_flow = raft.check_flow = raft.direct_check_flow = object()  # type: ignore[assignment]
    assert not AnchorFusionEngine(raft).concurrent_passes


def test_engines_by_name_and_their_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown propagation engine 'xmem'; choose from flow, sam2, stm"):
        get_loop_engine("xmem")
    with pytest.raises(ConfigError, match="needs a SAM 2 checkpoint file"):
        get_loop_engine("sam2")
    missing = tmp_path / "nothing.pt"
    with pytest.raises(DataError, match="SAM 2 checkpoint file does not exist") as caught:
        get_loop_engine("sam2", checkpoint=missing)
    assert caught.value.path == missing
    with pytest.raises(ConfigError, match="needs trained STM weights"):
        get_loop_engine("stm")
    with pytest.raises(ConfigError, match="is not a video object segmentation model"):
        get_loop_engine("stm", model="hrnetv2_w18_small", random_weights=True)
    with pytest.raises(ConfigError, match="the flow propagation engine takes flow, preset, .*, got weights"):
        get_loop_engine("flow", weights="x")


def test_each_engine_reads_its_own_flags_and_the_sam2_flags_serve_the_click_model_too() -> None:
    flags = {
        "flow_preset": "fast",
        "flow_downscale": 2,
        "sam2_config": "sam2.1_hiera_s",
        "sam2_checkpoint": "/w/s.pt",
        "sam2_start": "fit",
        "stm_model": "stm_r18",
        "stm_weights": "/w/stm.safetensors",
        "stm_device": "cpu",
        "stm_scale": 0.5,
    }
    assert given_options(flags, "flow", ENGINES["flow"].Options) == {"preset": "fast", "downscale": 2}
    sam2 = {"config": "sam2.1_hiera_s", "checkpoint": "/w/s.pt"}
    assert given_options(flags, "sam2", ENGINES["sam2"].Options) == sam2
    assert given_options(flags, "sam2", CLICK_MODELS["sam2"].Options) == {**sam2, "start": "fit"}
    stm = {"model": "stm_r18", "weights": "/w/stm.safetensors", "device": "cpu", "scale": 0.5}
    assert given_options(flags, "stm", ENGINES["stm"].Options) == stm


def test_a_sam2_checkpoint_of_another_size_is_refused(
    sam2_loop_engine: SAM2LoopEngine, tmp_path: Path
) -> None:
    path = tmp_path / "tiny.pt"
    torch.save({"model": sam2_loop_engine.tracker.predictor.state_dict()}, path)
    with pytest.raises(DataError, match="is a SAM 2 model of config sam2.1_hiera_t, not sam2.1_hiera_s"):
        get_loop_engine("sam2", config="sam2.1_hiera_s", checkpoint=path, image_size=64, device="cpu")


def test_sam2_puts_every_annotated_mask_in_one_state(
    sam2_loop_engine: SAM2LoopEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, truth = moving_square(8, step=1, late=4)
    predictor = sam2_loop_engine.tracker.predictor
    calls: dict[str, list] = {"init_state": [], "add_new_mask": [], "propagate_in_video": []}

    def spy(name: str):
        real = getattr(predictor, name)

        def wrapped(*args, **kwargs):
            calls[name].append(args[1:2] + args[2:3] if name == "add_new_mask" else kwargs.get("reverse"))
            return real(*args, **kwargs)

        return wrapped

    for name in calls:
        monkeypatch.setattr(predictor, name, spy(name))
    annotated = {0: truth[0], 4: truth[4], 7: truth[7]}
    result = sam2_loop_engine.propagate(frames, annotated, first_frames={1: 0, 2: 4})
    assert len(calls["init_state"]) == 1
    # every annotated frame gets a mask of each object (an empty one where it is absent)
    assert sorted(calls["add_new_mask"]) == [(t, obj) for t in (0, 4, 7) for obj in (0, 1)]
    assert calls["propagate_in_video"] == [False]  # frame 0 annotated: no backward pass is needed
    for t in annotated:
        assert np.array_equal(result.masks[t], truth[t])
    for t in range(4):
        assert not (result.masks[t] == 2).any()  # object 2 never before the frame it appears on
    assert all(m.shape == (96, 128) and m.dtype == np.uint8 for m in result.masks)
    assert set(np.unique(np.concatenate([m.ravel() for m in result.masks]))) <= {0, 1, 2}
    assert result.disagreement == [0.0] * 8 and all(0 <= u <= 1 for u in result.unsure)
    assert [result.unsure[t] for t in annotated] == [0.0, 0.0, 0.0]


def test_sam2_tracks_from_several_conditioning_frames_each_frame_once(
    sam2_loop_engine: SAM2LoopEngine,
) -> None:
    frames, truth = moving_square(6, step=1)
    conditioning = {2: [truth[2] == 1], 5: [truth[5] == 1]}
    seen = [t for t, _ in sam2_loop_engine.tracker.track_annotated(frames, conditioning)]
    assert sorted(seen) == list(range(6))  # forward from frame 2 to 5, then backward to 0
    assert seen[:4] == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="one mask per object"):
        list(sam2_loop_engine.tracker.track_annotated(frames, {0: [truth[0] == 1], 3: []}))


def test_stm_reads_every_annotated_frame_and_encodes_each_once(
    stm_engine: STMLoopEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, truth = moving_square(6, step=1)
    encoded: list[tuple[int, ...]] = []
    real = stm_engine.net.encode_memory

    def counting(frame, masks):
        encoded.append(tuple(masks.shape))
        return real(frame, masks)

    monkeypatch.setattr(stm_engine.net, "encode_memory", counting)
    cache = stm_engine.new_cache()
    result = stm_engine.propagate(frames, {0: truth[0], 5: truth[5]}, first_frames={1: 0}, cache=cache)
    # the 2 annotated frames, then the previous frame of each of the 4 frames segmented
    assert len(encoded) == 2 + 4 and len(cache) == 2
    encoded.clear()
    stm_engine.propagate(frames, {0: truth[0], 5: truth[5], 2: truth[2]}, first_frames={1: 0}, cache=cache)
    assert len(encoded) == 1 + 3 and len(cache) == 3  # only the new annotated frame is encoded anew
    assert np.array_equal(result.masks[5], truth[5]) and result.disagreement == [0.0] * 6


def test_stm_labels_and_unsure_shares_follow_its_probabilities(
    stm_engine: STMLoopEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in read: object 2 wins the left half (p 0.6, unsure), the background the right half (p 0.9)."""
    frames = [np.full((16, 20, 3), 100 + 20 * t, np.uint8) for t in range(3)]
    left = np.zeros((16, 20), bool)
    left[:, :10] = True

    def segment(frame, keys, values, valid):
        probs = torch.zeros(1, 3, 16, 20)
        probs[0, 2][torch.from_numpy(left)] = 0.6
        probs[0, 0][torch.from_numpy(left)] = 0.4
        probs[0, 0][torch.from_numpy(~left)] = 0.9
        probs[0, 1][torch.from_numpy(~left)] = 0.1
        return probs.log()

    monkeypatch.setattr(stm_engine.net, "segment", segment)
    annotated = {0: np.zeros((16, 20), np.uint8)}
    annotated[0][2:5, 2:5] = 1
    result = stm_engine.propagate(frames, annotated, first_frames={1: 0, 2: 2})
    assert not (result.masks[1] == 2).any()  # object 2 is removed before frame 2
    assert np.array_equal(result.masks[2], np.where(left, 2, 0))
    assert result.unsure[2] == 1.0  # every object pixel is below SURE
    assert result.unsure[1] == 1.0  # the left half is unsure, and counts as area although removed
    assert 0.6 < SURE < 0.9


def _vos_checkpoint(path: Path, data: dict | None) -> Path:
    """A `vos fit` checkpoint of a random ``stm_r18`` whose datamodule hyper-parameters are ``data``."""
    torch.manual_seed(0)
    state = {f"student.{k}": v for k, v in get_model("stm_r18", num_classes=4).state_dict().items()}
    checkpoint = {"state_dict": state, "hyper_parameters": {"student": "stm_r18", "max_objects": 3}}
    if data is not None:
        checkpoint["datamodule_hyper_parameters"] = data
    torch.save(checkpoint, path)
    return path


def _seen_sizes(engine: STMLoopEngine, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The sizes of the frames and masks the engine gives STM; its read: object 1 wins the left half."""
    seen: list[tuple[int, ...]] = []
    encode = engine.net.encode_memory

    def encode_memory(frame, masks):
        seen.extend([tuple(frame.shape[-2:]), tuple(masks.shape[-2:])])
        return encode(frame, masks)

    def segment(frame, keys, values, valid):
        seen.append(tuple(frame.shape[-2:]))
        probs = torch.full((1, 2, *frame.shape[-2:]), 0.05)
        probs[0, 1, :, : frame.shape[-1] // 2] = 0.95
        probs[0, 0] = 1 - probs[0, 1]
        return probs.log()

    monkeypatch.setattr(engine.net, "encode_memory", encode_memory)
    monkeypatch.setattr(engine.net, "segment", segment)
    return seen


def test_stm_runs_at_the_scale_its_checkpoint_trained_at_and_answers_at_the_frames_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint trained at data.load_scale 0.5 sees 64×96 frames (and masks) at 32×48; its masks come
    back at 64×96. It ran at full size, far from what it learned (J 0.16 against 0.67 on davis_dev)."""
    ckpt = _vos_checkpoint(tmp_path / "half.ckpt", {"root": "davis", "load_scale": 0.5})
    engine = get_loop_engine("stm", model="stm_r18", weights=ckpt, device="cpu")
    assert isinstance(engine, STMLoopEngine)
    seen = _seen_sizes(engine, monkeypatch)
    frames = [np.full((64, 96, 3), 80 + 40 * t, np.uint8) for t in range(3)]
    annotated = {0: np.zeros((64, 96), np.uint8)}
    annotated[0][10:30, 10:40] = 1
    result = engine.propagate(frames, annotated)
    assert set(seen) == {(32, 48)}
    left = np.zeros((64, 96), np.uint8)
    left[:, :48] = 1
    assert np.array_equal(result.masks[1], left) and np.array_equal(result.masks[2], left)
    assert engine.settings["scale"] == 0.5  # in a run's settings: a rerun at another scale is refused


def test_the_stm_scale_is_given_or_one_for_weights_that_record_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = [np.zeros((64, 96, 3), np.uint8)] * 2
    annotated = {0: np.ones((64, 96), np.uint8)}
    ckpt = _vos_checkpoint(tmp_path / "half.ckpt", {"load_scale": 0.5})
    for scale, size in ((0.25, (16, 24)), (1.0, (64, 96))):
        engine = get_loop_engine("stm", model="stm_r18", weights=ckpt, device="cpu", scale=scale)
        seen = _seen_sizes(engine, monkeypatch)
        assert engine.propagate(frames, annotated).masks[1].shape == (64, 96) and set(seen) == {size}
    unscaled = get_loop_engine("stm", model="stm_r18", weights=_vos_checkpoint(tmp_path / "a.ckpt", None))
    assert unscaled.scale == 1.0 and "scale" not in unscaled.settings  # a run made before the scale resumes
    for bad in (0.0, -0.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=f"stm_scale: must be a positive resize factor, got {bad}"):
            get_loop_engine("stm", model="stm_r18", weights=ckpt, scale=bad)
    broken = _vos_checkpoint(tmp_path / "broken.ckpt", {"load_scale": "half"})
    with pytest.raises(WeightsError, match="broken.ckpt: records data.load_scale 'half', which is not a pos"):
        get_loop_engine("stm", model="stm_r18", weights=broken)


def test_a_loop_runs_on_sam2_and_resumes(sam2_loop_engine: SAM2LoopEngine, tmp_path: Path) -> None:
    frames, truth = moving_square(6, step=1)
    video = Video("square", frames, truth, list(range(6)))

    def loop() -> AnnotationLoop:
        return AnnotationLoop(video, get_selector("uniform"), get_policy("mask"), sam2_loop_engine, tmp_path)

    first = loop()
    first.run(10_000, steps=2)
    assert [r.frame for r in first.state.history] == [0, 5]
    again = loop()
    assert again.state.iteration == 2
    again.run(10_000, steps=1)
    assert again.state.history[-1].frame == 2 and sorted(again.state.annotated) == [0, 2, 5]


def test_the_loop_wants_a_loop_engine(tmp_path: Path) -> None:
    frames, truth = moving_square(3)
    with pytest.raises(TypeError, match="wrap a single-anchor engine in AnchorFusionEngine"):
        AnnotationLoop(
            Video("v", frames, truth, [0, 1, 2]),
            get_selector("uniform"),
            get_policy("mask"),
            FlowPropagator(),
            tmp_path,
        )


def test_the_loop_builds_its_engines_on_autolabels_registry() -> None:
    """The ``flow`` loop engine fuses the registry's ``flow`` engine and takes every `FlowOptions` option by
    flat name (its ``Options`` is their one-level form); ``sam2`` tracks with the registry's ``sam2``."""
    fusion = get_loop_engine("flow", preset="fast", occlusion="ignore", snap_band=5)
    assert isinstance(fusion, AnchorFusionEngine) and type(fusion.anchor_engine) is PROPAGATORS["flow"]
    assert fusion.anchor_engine.options == FlowOptions.from_flat(
        preset="fast", occlusion="ignore", snap_band=5
    )
    assert dataclasses.asdict(AnchorFusionEngine.Options()) == FlowOptions().flat()
    sam2 = get_loop_engine("sam2", device="cpu", image_size=64, random_weights=True)
    assert isinstance(sam2, SAM2LoopEngine) and type(sam2.tracker) is PROPAGATORS["sam2"]
