"""Gated CRF loss: against a naive pair loop, the full-window (unfold) formulation and hand values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from frugalseg.datamodules.transforms import Normalize
from frugalseg.losses import GatedCRFLoss, PartialCrossEntropy, gated_crf_loss, get_loss


def naive_gated_crf(
    probs: torch.Tensor,
    features: torch.Tensor,
    sigma_xy: float,
    radius: int,
    source: torch.Tensor,
    destination: torch.Tensor,
    normalize: str = "pixels",
) -> torch.Tensor:
    """The formula pair by pair: ``features`` are the colours already at the prediction's size / σ_rgb.

    ``normalize="neighbourhood"`` divides each pixel's sum by the kernel weight of its valid neighbours.
    """
    _, _, height, width = probs.shape
    terms = []
    for b in range(probs.shape[0]):
        for yi in range(height):
            for xi in range(width):
                pixel, weight = [], probs.new_zeros(())
                for yj in range(max(0, yi - radius), min(height, yi + radius + 1)):
                    for xj in range(max(0, xi - radius), min(width, xi + radius + 1)):
                        if (yi, xi) == (yj, xj):
                            continue
                        distance = ((yi - yj) ** 2 + (xi - xj) ** 2) / sigma_xy**2
                        distance = distance + (features[b, :, yi, xi] - features[b, :, yj, xj]).square().sum()
                        kernel = torch.exp(-0.5 * distance) * source[b, yj, xj]
                        weight = weight + kernel
                        agree = (probs[b, :, yi, xi] * probs[b, :, yj, xj]).sum()
                        pixel.append(kernel * destination[b, yi, xi] * (1 - agree))
                total = torch.stack(pixel).sum()
                if normalize == "neighbourhood":
                    total = total / weight if weight > 0 else total * 0
                terms.append(total)
    return torch.stack(terms).sum() / destination.sum()


def full_window_gated_crf(
    probs: torch.Tensor, image01: torch.Tensor, sigma_xy: float, sigma_rgb: float, radius: int
) -> torch.Tensor:
    """The reference formulation: unfold the whole (2r+1)² window of kernels and predictions."""
    batch, classes, height, width = probs.shape
    size = 2 * radius + 1
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=probs.dtype), torch.arange(width, dtype=probs.dtype), indexing="ij"
    )
    position = torch.stack((xs, ys)).expand(batch, 2, height, width) / sigma_xy
    colour = F.adaptive_avg_pool2d(image01.to(probs.dtype), (height, width)) / sigma_rgb
    features = torch.cat((position, colour), dim=1)
    window = F.unfold(features, size, padding=radius).view(batch, 5, size * size, height, width)
    kernels = torch.exp(-0.5 * (window - features.unsqueeze(2)).square().sum(1))
    inside = F.unfold(torch.ones(batch, 1, height, width, dtype=probs.dtype), size, padding=radius)
    kernels = kernels * inside.view(batch, size * size, height, width)
    kernels[:, size * size // 2] = 0
    neighbours = F.unfold(probs, size, padding=radius).view(batch, classes, size * size, height, width)
    agree = (neighbours * probs.unsqueeze(2)).sum(1)
    return (kernels * (1 - agree)).sum() / (batch * height * width)


def _random_probs(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator, dtype=dtype) * 2).softmax(1).requires_grad_(True)


def _assert_same_value_and_gradients(
    loss: torch.Tensor, expected: torch.Tensor, probs: torch.Tensor, naive_probs: torch.Tensor
) -> None:
    """float64 loss and gradient equal the naive loop's to rounding."""
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(probs.grad, naive_probs.grad, rtol=1e-10, atol=1e-14)


def test_equals_naive_pair_loop_on_8x8_with_masks_and_stride() -> None:
    generator = torch.Generator().manual_seed(0)
    probs = _random_probs((1, 4, 8, 8), torch.float64, seed=1)
    # A 16×16 image: the loss must average it down to the 8×8 prediction (stride 2).
    image = torch.rand(1, 3, 16, 16, generator=generator, dtype=torch.float64)
    source = torch.rand(1, 8, 8, generator=generator) > 0.2
    destination = torch.rand(1, 8, 8, generator=generator) > 0.3
    sigma_rgb, sigma_xy, radius = 0.3, 2.0, 5
    features = image.view(1, 3, 8, 2, 8, 2).mean(dim=(3, 5)) / sigma_rgb
    naive_probs = probs.detach().clone().requires_grad_(True)
    expected = naive_gated_crf(naive_probs, features, sigma_xy, radius, source.double(), destination.double())
    loss = gated_crf_loss(
        probs,
        image,
        sigma_xy=sigma_xy,
        sigma_rgb=sigma_rgb,
        radius=radius,
        source_mask=source,
        destination_mask=destination,
    )
    _assert_same_value_and_gradients(loss, expected, probs, naive_probs)


def test_neighbourhood_normalisation_equals_naive_loop_on_standardised_colours() -> None:
    """The package's default: each pixel's sum divided by its valid neighbours' kernel weight, with
    σ_rgb on the ImageNet-standardised frame; value and gradient against the pair-by-pair loop."""
    generator = torch.Generator().manual_seed(11)
    frames = torch.randint(0, 256, (2, 3, 12, 12), generator=generator, dtype=torch.uint8)
    image = Normalize()(frames).double()  # what the student (and the loss) sees
    probs = _random_probs((2, 3, 6, 6), torch.float64, seed=12)
    valid = torch.rand(2, 6, 6, generator=generator) > 0.25
    valid[1, 0] = False
    valid[1, 1:, 0] = False
    valid[1, 5, 5] = True
    sigma_rgb, sigma_xy, radius = 0.5, 3.0, 2
    features = image.view(2, 3, 6, 2, 6, 2).mean(dim=(3, 5)) / sigma_rgb
    naive_probs = probs.detach().clone().requires_grad_(True)
    mask = valid.double()
    expected = naive_gated_crf(naive_probs, features, sigma_xy, radius, mask, mask, "neighbourhood")
    loss = gated_crf_loss(
        probs,
        image,
        sigma_xy=sigma_xy,
        sigma_rgb=sigma_rgb,
        radius=radius,
        valid_mask=valid,
        normalize="neighbourhood",
    )
    _assert_same_value_and_gradients(loss, expected, probs, naive_probs)
    # Each pixel's term is a disagreement probability: the loss lies in [0, 1] whatever the window.
    assert 0.0 < loss.item() < 1.0
    assert GatedCRFLoss().normalize == "neighbourhood"


def test_neighbourhood_normalisation_with_separate_masks_and_an_isolated_pixel() -> None:
    probs = _random_probs((1, 4, 5, 7), torch.float64, seed=13)
    image = torch.randn(1, 3, 5, 7, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    source = torch.ones(1, 5, 7, dtype=torch.bool)
    source[0, :, 3:] = False  # the right part gives nothing: its pixels have no valid neighbour weight...
    source[0, 2, 5] = True
    destination = torch.ones(1, 5, 7, dtype=torch.bool)
    destination[0, 0, 0] = False
    naive_probs = probs.detach().clone().requires_grad_(True)
    expected = naive_gated_crf(
        naive_probs, image / 0.1, 6.0, 1, source.double(), destination.double(), "neighbourhood"
    )
    loss = gated_crf_loss(
        probs, image, radius=1, source_mask=source, destination_mask=destination, normalize="neighbourhood"
    )
    _assert_same_value_and_gradients(loss, expected, probs, naive_probs)


def test_ramp_scales_the_loss_linearly_over_training_calls_only() -> None:
    generator = torch.Generator().manual_seed(15)
    logits, image = torch.randn(1, 3, 8, 8, generator=generator), torch.randn(1, 3, 8, 8, generator=generator)
    full = GatedCRFLoss(stride=1)(logits, None, image=image).item()
    ramped = GatedCRFLoss(stride=1, ramp_steps=4)
    values = [ramped(logits, None, image=image).item() for _ in range(6)]
    assert values == pytest.approx([0.0, 0.25 * full, 0.5 * full, 0.75 * full, full, full], rel=1e-6)
    ramped.eval()
    assert ramped(logits, None, image=image).item() == pytest.approx(full, rel=1e-6)
    assert int(ramped.calls) == 6  # evaluation calls do not advance the ramp
    assert "calls" in ramped.state_dict() and "calls" not in GatedCRFLoss().state_dict()
    with pytest.raises(ValueError, match="ramp_steps"):
        GatedCRFLoss(ramp_steps=-1)
    with pytest.raises(ValueError, match="normalize"):
        GatedCRFLoss(normalize="window")


def test_equals_naive_pair_loop_when_the_window_exceeds_the_map() -> None:
    probs = _random_probs((2, 3, 3, 4), torch.float64, seed=6)
    image = torch.rand(2, 3, 3, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ones = torch.ones(2, 3, 4, dtype=torch.float64)
    naive_probs = probs.detach().clone().requires_grad_(True)
    expected = naive_gated_crf(naive_probs, image / 0.1, 6.0, 5, ones, ones)
    loss = gated_crf_loss(probs, image)
    _assert_same_value_and_gradients(loss, expected, probs, naive_probs)


def test_equals_full_window_formulation_values_and_gradients() -> None:
    probs = _random_probs((2, 19, 64, 128), torch.float32, seed=2)  # image at stride 2
    image = torch.rand(2, 3, 128, 256, generator=torch.Generator().manual_seed(3))
    reference_probs = probs.detach().clone().requires_grad_(True)
    loss = gated_crf_loss(probs, image, sigma_xy=6.0, sigma_rgb=0.1, radius=5)
    expected = full_window_gated_crf(reference_probs, image, 6.0, 0.1, 5)
    assert abs(loss.item() - expected.item()) <= 1e-5 * abs(expected.item())
    loss.backward()
    expected.backward()
    error = (probs.grad - reference_probs.grad).norm() / reference_probs.grad.norm()
    assert error.item() <= 1e-5


def test_gating_masks_on_a_hand_made_row() -> None:
    # Pixels a, b, c in one row with equal colour: only horizontal neighbours at distance 1,
    # K = exp(-1/2). dst = [1, 1, 0] and src = [1, 0, 1] leave the ordered pairs b→a and b→c.
    probs = torch.tensor([[[[1.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]], dtype=torch.float64, requires_grad=True)
    image = torch.full((1, 3, 1, 3), 0.5, dtype=torch.float64)
    loss = gated_crf_loss(
        probs,
        image,
        sigma_xy=1.0,
        radius=1,
        source_mask=torch.tensor([[[True, False, True]]]),
        destination_mask=torch.tensor([[[True, True, False]]]),
    )
    k = math.exp(-0.5)
    # (1 - y_b·y_a) + (1 - y_b·y_c) = 0 + 1, over 2 destination pixels.
    assert loss.item() == pytest.approx(k / 2, rel=1e-14)
    loss.backward()
    expected = torch.tensor([[[[-k / 2, -k / 2, -k / 2]], [[0.0, -k / 2, 0.0]]]], dtype=torch.float64)
    torch.testing.assert_close(probs.grad, expected, rtol=1e-14, atol=1e-16)


def test_valid_mask_gates_a_prediction_pixel_partly_covered_by_padding() -> None:
    probs = torch.tensor([[[[1.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]], dtype=torch.float64)
    image = torch.full((1, 3, 2, 6), 0.5, dtype=torch.float64)
    valid = torch.ones(1, 2, 6, dtype=torch.bool)
    valid[0, 1, 5] = False  # one of the four image pixels under prediction pixel c
    loss = gated_crf_loss(probs, image, sigma_xy=1.0, radius=1, valid_mask=valid)
    # c neither gives nor takes: only a↔b remain, and they agree, so the loss is 0 over 2 pixels.
    assert loss.item() == 0.0
    without = gated_crf_loss(probs, image, sigma_xy=1.0, radius=1)
    assert without.item() == pytest.approx(2 * math.exp(-0.5) / 3, rel=1e-14)


def test_zero_for_a_constant_one_hot_prediction_and_all_gated_out() -> None:
    probs = torch.zeros(1, 3, 6, 6)
    probs[:, 1] = 1
    image = torch.rand(1, 3, 6, 6)
    assert gated_crf_loss(probs, image).item() == pytest.approx(0.0, abs=1e-6)
    noisy = _random_probs((1, 3, 6, 6), torch.float32, seed=4)
    loss = gated_crf_loss(noisy, image, valid_mask=torch.zeros(1, 6, 6, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(noisy.grad, torch.zeros_like(noisy))


@pytest.mark.parametrize("normalize", ["pixels", "neighbourhood"])
def test_half_precision_gives_the_float32_loss_where_float16_sums_overflow(normalize: str) -> None:
    """300×300 pixels and their kernel sums pass float16's 65,504: the loss was inf (pixels) or 0."""
    probs = _random_probs((1, 2, 300, 300), torch.float32, seed=3)
    image = torch.zeros(1, 3, 300, 300)
    expected = gated_crf_loss(probs, image, radius=2, normalize=normalize)
    half = probs.detach().half().requires_grad_(True)
    loss = gated_crf_loss(half, image.half(), radius=2, normalize=normalize)
    assert loss.dtype == torch.float16
    assert loss.item() == pytest.approx(expected.item(), rel=2e-3)
    loss.backward()
    assert half.grad is not None and half.grad.dtype == torch.float16 and half.grad.isfinite().all()


def test_module_applies_sigma_rgb_to_the_standardised_frame_and_its_weight() -> None:
    """The authors' colour scale: σ_rgb on the ImageNet-standardised frame the student reads."""
    generator = torch.Generator().manual_seed(5)
    uint8_frames = torch.randint(0, 256, (2, 3, 16, 16), generator=generator, dtype=torch.uint8)
    logits = torch.randn(2, 5, 8, 8, generator=generator)
    image = Normalize()(uint8_frames)
    module = get_loss("gated_crf", ignore_index=255, stride=1)
    assert isinstance(module, GatedCRFLoss)
    loss = module(logits, torch.full((2, 32, 32), 255), image=image)
    expected = gated_crf_loss(logits.softmax(1), image.double(), normalize="neighbourhood")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # [0, 1] colours: a less selective kernel, i.e. more kernel mass in the (un-normalised) sum
    on_unit_colours = gated_crf_loss(logits.softmax(1), uint8_frames.double() / 255)
    assert on_unit_colours.item() > 1.5 * gated_crf_loss(logits.softmax(1), image.double()).item()
    weighted = get_loss("gated_crf", weight=0.1, stride=1)(logits, None, image=image)
    assert weighted.item() == pytest.approx(0.1 * expected.item(), rel=1e-5)


def _min_pool(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """1 where every pixel of the stride×stride block is valid."""
    return -F.max_pool2d(-mask.double().unsqueeze(1), stride, ceil_mode=True).squeeze(1)


@pytest.mark.parametrize("size", [(16, 24), (14, 23)])
def test_module_pools_probabilities_image_and_valid_mask_by_its_stride(size) -> None:
    """stride 4: the loss of the 4×4-averaged probabilities and image, a block valid only if all of it is."""
    height, width = size
    generator = torch.Generator().manual_seed(6)
    frames = torch.randn(2, 1, 3, height, width, generator=generator)  # float32, as the loader gives
    logits = torch.randn(2, 5, height, width, generator=generator, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(2, height, width, dtype=torch.bool)
    valid[0, :, :5] = False  # the first two columns of blocks hold a padded pixel
    valid[1, 9, 13] = False
    module = GatedCRFLoss(stride=4).double()
    loss = module(logits, None, image=frames[:, -1], valid=valid)

    # By hand: the same blocks for probabilities, image and mask: 4×4 blocks, or ⌈H/4⌉×⌈W/4⌉
    # adaptive (overlapping) ones when 4 does not divide the size.
    def pool(tensor: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(tensor, 4) if size == (16, 24) else F.adaptive_avg_pool2d(tensor, (4, 6))

    probs = pool(logits.softmax(1)).detach().requires_grad_(True)
    image = pool(frames[:, -1].double())
    mask = _min_pool(valid, 4) if size == (16, 24) else (pool(valid.double().unsqueeze(1)) == 1).squeeze(1)
    expected = gated_crf_loss(probs, image, valid_mask=mask, normalize="neighbourhood")
    assert probs.shape[-2:] == (4, 6)
    assert loss.item() == expected.item()
    assert mask[0].sum() == 4 * 4 and mask[1].sum() == 4 * 6 - 1
    # The gradient reaches the full-size logits through the pooling: that of the hand-pooled probabilities.
    loss.backward()
    expected.backward()
    (reference,) = torch.autograd.grad(pool(logits.softmax(1)), logits, probs.grad)
    torch.testing.assert_close(logits.grad, reference, rtol=1e-12, atol=1e-15)


def test_default_stride_is_the_reference_decoder_stride() -> None:
    """Left out, the stride is 4: a 16×16 prediction is judged at 4×4, where σ_xy and r are meant."""
    generator = torch.Generator().manual_seed(7)
    frames = torch.randn(1, 1, 3, 16, 16, generator=generator)
    logits = torch.randn(1, 3, 16, 16, generator=generator)
    image = frames[:, -1]
    assert get_loss("gated_crf").stride == 4
    pooled = get_loss("gated_crf")(logits, None, image=image)
    assert pooled.item() == get_loss("gated_crf", stride=4)(logits, None, image=image).item()
    assert pooled.item() != get_loss("gated_crf", stride=1)(logits, None, image=image).item()


def test_module_reads_the_valid_mask_and_rejects_an_image_of_another_batch() -> None:
    image = torch.zeros(2, 3, 4, 4)
    logits = torch.randn(2, 3, 4, 4)
    valid = torch.zeros(2, 4, 4, dtype=torch.bool)
    assert GatedCRFLoss()(logits, None, image=image, valid=valid).item() == 0.0
    with pytest.raises(ValueError, match=r"does not hold the 1 samples"):
        GatedCRFLoss()(logits[:1], None, image=image)
    with pytest.raises(ValueError, match=r"needs the target frame"):
        GatedCRFLoss()(logits, None)


def test_bad_arguments_are_rejected() -> None:
    probs = torch.rand(1, 2, 4, 4)
    with pytest.raises(ValueError, match="image B×3×H×W"):
        gated_crf_loss(probs, torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="radius"):
        gated_crf_loss(probs, torch.rand(1, 3, 4, 4), radius=0)
    with pytest.raises(ValueError, match="valid_mask must be B×H×W"):
        gated_crf_loss(probs, torch.rand(1, 3, 4, 4), valid_mask=torch.ones(4, 4))
    for stride in (0, 2.5):
        with pytest.raises(ValueError, match=f"stride must be a positive integer, got {stride}"):
            GatedCRFLoss(stride=stride)


def test_partial_ce_averages_over_clicked_pixels_only() -> None:
    logits = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    logits[0, 0, 0, 0] = 2.0
    logits[0, 2, 1, 1] = 1.0
    clicks = torch.full((1, 2, 2), 255)
    clicks[0, 0, 0] = 0
    clicks[0, 1, 1] = 1
    expected = (-(2 - math.log(math.exp(2) + 2)) - (0 - math.log(2 + math.e))) / 2
    loss = get_loss("partial_ce", ignore_index=255)
    assert isinstance(loss, PartialCrossEntropy)
    assert loss(logits, clicks).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_clicks_with_gated_crf_train_a_real_camvid_frame_to_several_classes(shared_data) -> None:
    """Fifteen steps on one real CamVid still with its simulated clicks, partial CE + 0.1·Gated
    CRF as the package routes them: the prediction must not collapse to one class (the Pole collapse
    of issue 17), and it must keep the clicks."""
    import cv2
    import numpy as np

    from frugalseg.autolabel.clicks import render_clicks, simulate_clicks
    from frugalseg.autolabel.runs import image_rng
    from frugalseg.data.clips import LabelKind
    from frugalseg.data.formats import get_format
    from frugalseg.losses import RoutedLoss
    from frugalseg.zoo import get_model

    fmt = get_format("camvid", shared_data / "camvid_dev")
    clip = next(c for c in fmt.clips("train") if c.clip_id == "0001TP_006690")
    scale, size = 1 / 3, (160, 120)  # 480×360 → 160×120
    frame = cv2.cvtColor(cv2.imread(str(clip.frame_path(0))), cv2.COLOR_BGR2RGB)
    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    label = cv2.resize(fmt.read_label(clip.label(0, LabelKind.FINE)), size, interpolation=cv2.INTER_NEAREST)
    clicks = simulate_clicks(label, None, [], image_rng(0, clip.clip_id), label_scale=scale)
    assert len({c.train_id for c in clicks}) >= 5  # 512 px at 480×360 = 57 px here
    sparse = torch.from_numpy(render_clicks(clicks, label.shape).astype(np.int64))[None]
    image = Normalize()(torch.from_numpy(frame).permute(2, 0, 1)[None])
    # The frame and its mirror image: a batch of 2 (DeepLabV3+'s image pooling needs it to train).
    batch_image, batch_label = torch.cat([image, image.flip(-1)]), torch.cat([sparse, sparse.flip(-1)])

    torch.manual_seed(0)
    model = get_model("deeplabv3plus_r18", num_classes=11, num_frames=1)
    loss_fn = RoutedLoss({"clicks": {"partial_ce": 1.0, "gated_crf": 0.1}})
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(15):  # as far as 20 steps: 7 classes over 2 %, every click kept
        outputs = {"out": model(batch_image[:, None])}
        loss, terms = loss_fn(outputs, batch_label, ["clicks", "clicks"], image=batch_image)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert 0 < terms["clicks_gated_crf"][0].item() < 1  # normalised per pixel by its neighbourhood
    with torch.no_grad():
        pred = model.eval()(image[:, None]).argmax(1)[0]
    shares = torch.bincount(pred.flatten(), minlength=11).double() / pred.numel()
    assert (shares > 0.02).sum() >= 4, shares  # several classes, none taking the whole frame
    assert shares.max() < 0.8, shares
    clicked = sparse[0] != 255
    assert (pred[clicked] == sparse[0][clicked]).double().mean() > 0.6
