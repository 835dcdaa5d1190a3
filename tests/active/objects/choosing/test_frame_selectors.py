"""Frame selectors: known answers on hand-made views."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.active.objects.choosing.frame_selectors import (
    DecayGainSelector,
    DiversitySelector,
    ErrorModel,
    FittedGainSelector,
    GainSelector,
    LookaheadSelector,
    OracleSelector,
    RandomSelector,
    SelectionView,
    UncertaintySelector,
    UniformSelector,
    anchored_errors,
    decay_gains,
    descriptors,
    error_features,
    expected_gains,
    fit_error_model,
    fitted_gains,
    get_selector,
    typed_gains,
)
from frugalseg.active.propagation import unreliability
from frugalseg.errors import ConfigError


def view(n: int, annotated: set[int], **kwargs) -> SelectionView:
    return SelectionView(key="clip", iteration=len(annotated), num_frames=n, annotated=annotated, **kwargs)


def test_diversity_picks_the_frame_farthest_from_its_nearest_annotated_frame() -> None:
    embeddings = np.array([[0, 0], [1, 0], [5, 5], [9, 0], [10, 0], [4, 1]], np.float64)
    selector = DiversitySelector(features=lambda v: embeddings)
    # nearest-annotated distances of frames 1, 2, 3, 5 to {0, 4}: 1, √50, 1, √17 → frame 2
    assert selector.select(view(6, {0, 4})) == 2
    # with 2 annotated: 1, 1, √17 → frame 5 (the farthest frame overall, 4, is annotated)
    assert selector.select(view(6, {0, 2, 4})) == 5


def test_diversity_on_the_weight_free_descriptor_prefers_a_frame_that_looks_different() -> None:
    frames = [np.full((36, 64, 3), 100, np.uint8) for _ in range(4)]
    frames[2] = np.full((36, 64, 3), 200, np.uint8)
    masks = [np.zeros((36, 64), np.uint8) for _ in range(4)]
    assert DiversitySelector().select(view(4, {0}, frames=frames, masks=masks)) == 2
    features = descriptors(view(4, {0}, frames=frames, masks=masks))
    assert features.shape[0] == 4 and np.allclose(features[0], features[1])


def test_uniform_spreads_frames_in_time() -> None:
    selector = UniformSelector()
    annotated = {0}
    for expected in (20, 10, 5, 15):
        frame = selector.select(view(21, annotated))
        assert frame == expected
        annotated.add(frame)


def test_oracle_and_uncertainty_take_the_worst_frame_not_yet_annotated() -> None:
    quality = [1.0, 0.2, 0.9, 0.1, 0.5]
    assert OracleSelector().select(view(5, {0, 3}, quality=quality)) == 1
    unreliable = [0.0, 0.3, 0.3, 0.9, 0.1]
    assert UncertaintySelector().select(view(5, {0, 3}, unreliability=unreliable)) == 1  # tie → earlier
    with pytest.raises(ConfigError, match="needs quality"):
        OracleSelector().select(view(5, {0}))


def test_gain_takes_the_frame_that_removes_the_most_unreliability_over_the_video() -> None:
    # six reliable frames (d = u = 0) after an annotated frame 0: U_t = t / (t + 5), growing to frame 5
    reliable = unreliability([0.0] * 6, [0.0] * 6, {0})
    gains = expected_gains(reliable, {0})
    # frame 5 brings frames 3 and 4 to 2 and 1 frames from an annotation, and itself to 0 (U is
    # rounded to 6 decimals, hence the tolerance)
    assert gains[5] == pytest.approx((3 / 8 - 2 / 7) + (4 / 9 - 1 / 6) + 5 / 10, abs=1e-5)
    assert gains[3] == pytest.approx(71 / 72, abs=1e-5) and gains[4] == pytest.approx(71 / 72, abs=1e-5)
    assert gains[0] == pytest.approx(0, abs=1e-5)
    assert UncertaintySelector().select(view(6, {0}, unreliability=reliable)) == 5
    assert GainSelector().select(view(6, {0}, unreliability=reliable)) == 3  # tie with 4 → earlier
    # eleven frames annotated at both ends; frame 1 is the least reliable (d = 0.7), yet the middle frame
    # covers more: 1.2341 against 1.0833
    d = [0.0] * 11
    d[1] = 0.7
    spike = unreliability(d, [0.0] * 11, {0, 10})
    assert UncertaintySelector().select(view(11, {0, 10}, unreliability=spike)) == 1
    assert GainSelector().select(view(11, {0, 10}, unreliability=spike)) == 5
    d[1] = 0.9  # a worse frame 1 is worth more than the middle (1.25 against 1.2341)
    spike = unreliability(d, [0.0] * 11, {0, 10})
    assert GainSelector().select(view(11, {0, 10}, unreliability=spike)) == 1
    # nothing annotated yet: every frame counts as 6 frames from one, so the middle (ties → earlier)
    assert GainSelector().select(view(6, set(), unreliability=unreliability([0.0] * 6, [0.0] * 6, ()))) == 2
    assert get_selector("gain").name == "gain"
    with pytest.raises(ConfigError, match="needs unreliability"):
        GainSelector().select(view(5, {0}))


def test_gain_decay_counts_one_sided_frames_as_farther_and_mends_the_neighbours() -> None:
    # six reliable frames after an annotated frame 0: one-sided, so U_t = 2t / (2t + 5) before
    reliable = unreliability([0.0] * 6, [0.0] * 6, {0})
    gains = decay_gains(reliable, {0})
    # frame 5 makes frames 1…4 two-sided (1, 2, 2, 1 frames from an annotation): U' = g / (g + 5)
    five = (2 / 7 - 1 / 6) + (4 / 9 - 2 / 7) + (6 / 11 - 2 / 7) + (8 / 13 - 1 / 6) + 10 / 15
    # frame 3 leaves frames 4 and 5 one-sided, 1 and 2 frames from it
    three = (2 / 7 - 1 / 6) + (4 / 9 - 1 / 6) + 6 / 11 + (8 / 13 - 2 / 7) + (10 / 15 - 4 / 9)
    assert gains[5] == pytest.approx(five, abs=1e-5) and gains[3] == pytest.approx(three, abs=1e-5)
    assert gains[4] == pytest.approx(five, abs=1e-5)  # frame 4 ties with frame 5
    assert GainSelector().select(view(6, {0}, unreliability=reliable)) == 3
    assert DecayGainSelector().select(view(6, {0}, unreliability=reliable)) == 4  # tie with 5 → earlier
    # frames 1…3 between annotated 0 and 4, unreliable apart from coverage (r = 0.3, 0.5, 0.5): `gain`
    # takes the worst, frame 1; mending both neighbours (1 − r shrunk by 2^(−1/5) one frame away)
    # makes the middle frame worth more
    uneven = unreliability([0.0, 0.7, 0.5, 0.5, 0.0], [0.0] * 5, {0, 4})
    step = 1 - 2 ** (-1 / 5)
    middle = (1 - 0.5 * 5 / 7) + ((1 - 0.7 * step) - 0.3) * 5 / 6 + ((1 - 0.5 * step) - 0.5) * 5 / 6
    assert decay_gains(uneven, {0, 4})[2] == pytest.approx(middle, abs=1e-5)
    assert GainSelector().select(view(5, {0, 4}, unreliability=uneven)) == 1
    assert DecayGainSelector().select(view(5, {0, 4}, unreliability=uneven)) == 2
    assert get_selector("gain-decay").name == "gain-decay"
    with pytest.raises(ConfigError, match="needs unreliability"):
        DecayGainSelector().select(view(5, {0}))


def test_error_features_give_the_distance_to_the_nearest_annotated_frame_and_its_sides() -> None:
    gap, sides = error_features(6, {0, 3})
    assert gap.tolist() == [0, 1, 1, 0, 1, 2] and sides.tolist() == [2, 2, 2, 2, 1, 1]
    gap, sides = error_features(3, set())
    assert gap.tolist() == [3, 3, 3] and sides.tolist() == [1, 1, 1]


def test_gain_fit_weighs_one_sided_frames_by_the_fitted_error_model() -> None:
    reliable = unreliability([0.0] * 4, [0.0] * 4, {0})  # nothing measured apart from coverage
    # one-sided error g / (g + 1), two-sided half of it: before 1/2 + 2/3 + 3/4
    steep = ErrorModel(1.0, 1.0, 0.5, 1.0, 0.0)
    gains = fitted_gains(reliable, {0}, steep)
    before = 1 / 2 + 2 / 3 + 3 / 4
    assert gains[0] == 0.0
    assert gains[3] == pytest.approx(before - (1 / 4 + 1 / 4))  # 1 and 2 become two-sided, 1 away
    assert gains[2] == pytest.approx(before - (1 / 4 + 1 / 2))  # 3 stays one-sided, 1 away
    assert gains[1] == pytest.approx(before - (1 / 2 + 2 / 3))
    assert FittedGainSelector(model=steep).select(view(4, {0}, unreliability=reliable)) == 3
    # were two-sided frames as bad as one-sided ones, frames 2 and 3 tie: the earlier one
    flat = ErrorModel(1.0, 1.0, 1.0, 1.0, 0.0)
    assert FittedGainSelector(model=flat).select(view(4, {0}, unreliability=reliable)) == 2
    # a frame whose directions disagree (0.8 apart from coverage) counts 1 + 0.8 times: it pulls the mask
    uneven = unreliability([0.0, 0.0, 0.0, 0.0, 0.8, 0.0], [0.0] * 6, {0, 5})
    plain, signs = ErrorModel(1.0, 1.0, 1.0, 1.0, 0.0), ErrorModel(1.0, 1.0, 1.0, 1.0, 1.0)
    assert FittedGainSelector(model=plain).select(view(6, {0, 5}, unreliability=uneven)) == 2
    assert fitted_gains(uneven, {0, 5}, signs)[4] == pytest.approx(
        1 / 2 + 2 / 3 + 2 / 3 + 0.9 - (1 / 2 + 2 / 3 + 1 / 2)
    )
    assert FittedGainSelector(model=signs).select(view(6, {0, 5}, unreliability=uneven)) == 4
    assert get_selector("gain-fit").name == "gain-fit"
    with pytest.raises(ConfigError, match="needs unreliability"):
        FittedGainSelector().select(view(5, {0}))


def test_a_clicked_frame_keeps_a_share_of_its_error_and_passes_it_to_its_nearest_frames() -> None:
    flat = ErrorModel(1.0, 1.0, 1.0, 1.0, 0.0)  # every frame's error g / (g + 1)
    shares = {"mask": 0.0, "clicks": 0.5}
    errors = anchored_errors(np.zeros(5), {0: "mask", 4: "clicks"}, flat, shares)
    # frame 4 from the mask alone: 4 / 5, half of it left; frame 3 nearest to it: 1 − (1 − 1/2)(1 − 0.4)
    assert errors == pytest.approx([0.0, 1 / 2, 2 / 3, 0.7, 0.4])
    gains = typed_gains([0.0] * 5, {0: "mask", 4: "clicks"}, flat, shares)
    before = 0.5 + 2 / 3 + 0.7 + 0.4
    assert gains["mask"][4] == pytest.approx(before - (0.5 + 2 / 3 + 0.5))  # the mask replaces the clicks
    assert gains["clicks"][4] == 0.0 and gains["mask"][0] == 0.0  # no type replaces one that leaves less
    # clicks on 2: it keeps 1/3 of its 2/3; frame 3 is as near to 2 as to 4 and takes the earlier's share
    assert gains["clicks"][2] == pytest.approx(before - (0.5 + 1 / 3 + (1 - 0.5 * (1 - 1 / 3)) + 0.4))
    # with masks only, the same as the masks-only gains
    assert typed_gains([0.0] * 5, {0: "mask"}, flat, shares)["mask"] == pytest.approx(
        fitted_gains([0.0] * 5, {0}, flat)
    )


def test_a_video_started_with_a_box_keeps_what_a_box_leaves_from_nothing() -> None:
    """No mask to take a share of: the box's frame had had 1.6 × the no-anchor error, capped at 1."""
    from frugalseg.active.objects.choosing.frame_selectors import FROM_SCRATCH_ERROR, TYPE_RESIDUALS

    flat = ErrorModel(1.0, 1.0, 1.0, 1.0, 0.0)  # every frame's error g / (g + 1)
    errors = anchored_errors(np.zeros(4), {0: "box"}, flat, TYPE_RESIDUALS)
    box = FROM_SCRATCH_ERROR["box"]
    assert box == 0.139
    assert errors == pytest.approx([box] + [1 - (1 - g / (g + 1)) * (1 - box) for g in (1, 2, 3)])
    both = anchored_errors(np.zeros(4), {0: "box", 3: "clicks"}, flat, TYPE_RESIDUALS)
    assert both[[0, 3]] == pytest.approx([box, FROM_SCRATCH_ERROR["clicks"]])


def test_gain_fit_replaces_a_clicked_frame_with_a_mask_where_that_gains_most() -> None:
    # two-sided errors half the one-sided ones; clicks that mend nothing (share 1)
    model = ErrorModel(1.0, 1.0, 0.5, 1.0, 0.0)
    selector = FittedGainSelector(model=model, residuals={"mask": 0.0, "clicks": 1.0})
    clicked = view(3, {0, 2}, unreliability=[0.0] * 3, kinds={0: "mask", 2: "clicks"})
    assert clicked.candidates == [1] and clicked.replaceable == [2]
    # before: 1/4 (frame 1) + 2/3 (frame 2); a mask on 1 leaves frame 2 1/2, a mask on 2 leaves 1/4
    assert selector.select(clicked) == 2
    # every frame annotated, one with clicks: that one is still to choose; all masks: nothing is
    kinds = {0: "mask", 1: "clicks", 2: "mask"}
    assert selector.select(view(3, {0, 1, 2}, unreliability=[0.0] * 3, kinds=kinds)) == 1
    with pytest.raises(ValueError, match="every frame is annotated with a mask"):
        selector.select(view(3, {0, 1, 2}, unreliability=[0.0] * 3, kinds={**kinds, 1: "mask"}))


def test_fit_error_model_recovers_the_constants_of_errors_it_made() -> None:
    truth = ErrorModel(0.4, 4.0, 0.2, 1.0, 1.0)
    rng = np.random.default_rng(0)
    records = []
    for keys in ({0}, {0, 5}, {0, 9}, {0, 3, 7}, {2, 6}):
        disagreement = rng.uniform(0, 0.3, 10).round(6)
        gap, sides = error_features(10, keys)
        error = truth.error(gap, sides, disagreement)
        quality = (1 - error).tolist()
        records.append(
            {
                "annotated": sorted(keys),
                "quality": quality,
                "disagreement": disagreement.tolist(),
                "unsure": [0.0] * 10,
            }
        )
    fit = fit_error_model(records)
    assert fit.signs == 1.0 and fit.one_half == pytest.approx(4.0) and fit.two_half == pytest.approx(1.0)
    assert fit.one_scale == pytest.approx(0.4) and fit.two_scale == pytest.approx(0.2)


def test_lookahead_takes_the_frame_whose_annotation_gives_the_best_video_and_needs_ground_truth() -> None:
    after = {1: 0.80, 2: 0.91, 3: 0.91, 4: 0.70}  # the video's J&F were each frame annotated next
    asked: list[int] = []

    def lookahead(t: int) -> float:
        asked.append(t)
        return after[t]

    assert LookaheadSelector().select(view(5, {0}, lookahead=lookahead)) == 2  # tie with 3 → earlier
    assert asked == [1, 2, 3, 4]  # every candidate, never an annotated frame
    assert LookaheadSelector().select(view(5, {0, 2}, lookahead=after.__getitem__)) == 3
    assert get_selector("lookahead").name == "lookahead" and LookaheadSelector.needs_ground_truth
    with pytest.raises(ConfigError, match="needs lookahead"):
        LookaheadSelector().select(view(5, {0}, quality=[0.5] * 5))


def test_random_is_seeded_per_video_and_iteration_and_skips_annotated_frames() -> None:
    picks = [RandomSelector(3).select(view(50, {0, 1, 2})) for _ in range(3)]
    assert len(set(picks)) == 1 and picks[0] not in {0, 1, 2}
    draws = {RandomSelector(seed).select(view(50, {0})) for seed in range(10)}
    assert len(draws) > 1
    with pytest.raises(ValueError, match="every frame is annotated"):
        RandomSelector().select(view(2, {0, 1}))


def test_unknown_selector_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown frame selector 'best'; choose from random, uniform"):
        get_selector("best")


def test_diversity_features_by_name_and_their_refusals(tmp_path) -> None:
    from frugalseg.active.objects.choosing.diversity_features import get_diversity_features
    from frugalseg.active.objects.choosing.frame_selectors import descriptors
    from frugalseg.errors import WeightsError

    assert get_diversity_features("descriptor") is descriptors
    with pytest.raises(ConfigError, match="reads no weights file"):
        get_diversity_features("descriptor", tmp_path / "w.safetensors")
    with pytest.raises(
        ConfigError, match="unknown features 'clip'; choose from descriptor, qnet, timm:<model>"
    ):
        get_diversity_features("clip", tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match="the 'qnet' features need a weights file"):
        get_diversity_features("qnet")
    with pytest.raises(WeightsError, match="does not exist") as caught:
        get_diversity_features("qnet", tmp_path / "none.safetensors")
    assert caught.value.path == tmp_path / "none.safetensors"
    with pytest.raises(ConfigError, match="reads no features"):
        get_selector("uniform", features=descriptors)


def test_a_timm_encoder_with_the_users_weights_embeds_each_frame(tmp_path) -> None:
    """``timm:<model>``: the pooled features of the encoder loaded from the file, on the resized frame."""
    import timm
    import torch
    from safetensors.torch import save_file

    from frugalseg.active.objects.choosing.diversity_features import get_diversity_features
    from frugalseg.zoo.quality_net import batch_inputs, resize_frame

    torch.manual_seed(0)
    reference = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0).eval()
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(4)]
    frames[3] = np.zeros((40, 60, 3), np.uint8)  # a black frame: far from the noise frames
    view = SelectionView("v", 0, 4, {0}, frames=frames, masks=[np.zeros((40, 60), np.uint8)] * 4)
    features = get_diversity_features("timm:mobilenetv3_small_050", path)(view)
    small = np.stack([resize_frame(f, 224) for f in frames])
    with torch.no_grad():
        expected = reference(batch_inputs(small, np.zeros(small.shape[:3], np.uint8))[0]).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    distances = np.linalg.norm(expected[1:] - expected[0], axis=1)
    selector = get_selector("diversity", features=get_diversity_features("timm:mobilenetv3_small_050", path))
    assert selector.select(view) == 1 + int(np.argmax(distances))
