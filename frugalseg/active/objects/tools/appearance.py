"""What the cut knows of how an object and its background look and move: colour, texture, motion models.

* Colours: each pixel's Lab bin (`colour_bins`), smoothed histograms of the object's and the background's
  bins (`histogram`), learnt from a cut, or from the object's masks on other frames (`example_models`).
* Texture: each working pixel's local contrast and the direction of its gradients, binned over the frame's
  own range (`texture_bins`), in histograms learnt from a cut (`texture_costs`): fur and sand of one colour.
* Motion: each working pixel's optical flow towards the neighbouring frame (`work_flow`), binned over
  that pair's own range of motion (`motion_bins`), in histograms learnt from a cut (`motion_costs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from frugalseg.flow.dis import DISFlow

#: The colour histograms' bins: lightness (L*) in `LIGHTNESS_BINS` over its whole range; each chroma channel
#: (a*, b*) in `CHROMA_BINS` of `CHROMA_STEP` units of OpenCV's 8-bit Lab, centred on grey, the outermost bins
#: holding the rest. Natural colours lie near grey (on `interactive_dev` and the DAVIS clips, 90 % of pixels
#: have a* within −12…+21 of it, b* within −15…+35): bins 16 units wide held most of a frame in 2 bins of a*
#: (donut00's donut and table in one; `benchmarks/results/interactive.md`, stop 56).
LIGHTNESS_BINS = 16
CHROMA_BINS = 32
CHROMA_STEP = 3
#: The share of a uniform density in each colour model: no colour is ever impossible (at most ~14 nats).
UNIFORM = 0.01
#: Motion (a neighbouring frame given): each working pixel's optical flow in `MOTION_BINS`² bins of its
#: range; object and background histograms smoothed by `MOTION_SMOOTHING` bins with `MOTION_UNIFORM` of a
#: uniform density.
MOTION_BINS = 8
MOTION_SMOOTHING = 0.7
MOTION_UNIFORM = 0.05
#: Texture: each working pixel's lightness contrast (its standard deviation) and the balance of its
#: horizontal and vertical gradients, over a `TEXTURE_WINDOW`² window, each in `TEXTURE_BINS` of equal share
#: of the frame; histograms smoothed and mixed as motion's.
TEXTURE_BINS = 8
TEXTURE_WINDOW = 5
#: A pixel looks like the object (`object_like`) where its colour is at most this many nats less likely the
#: object's than the background's on the frames the person annotated it on. A box's first guess starts from
#: those pixels on a later frame (48 DAVIS boxes 10 frames after the example: the box alone 0.611 → 0.672 mean
#: IoU; 56 boxes with frame 0's example, NoC@85 4.36 at 0 nats, 4.09 at 1, 4.32 at 2, 4.41 at 4;
#: `benchmarks/results/interactive.md`, stop 62).
OBJECT_LIKE_NATS = 1.0
#: The constants a click model records in its settings (with `graph_cut.SETTINGS`).
SETTINGS = (
    "LIGHTNESS_BINS CHROMA_BINS CHROMA_STEP TEXTURE_BINS TEXTURE_WINDOW MOTION_BINS MOTION_SMOOTHING "
    "MOTION_UNIFORM OBJECT_LIKE_NATS"
).split()
#: The optical flow of `work_flow` (OpenCV's DIS; one OpenCV object per thread).
_FLOW = DISFlow("medium")


def colour_bins(image: np.ndarray) -> np.ndarray:
    """Each pixel's Lab colour bin, flat.

    Lightness in `LIGHTNESS_BINS` over its whole range, each chroma channel in `CHROMA_BINS` of
    `CHROMA_STEP` around grey, the outermost bins holding the rest.
    """
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.int32)
    lightness = lab[:, 0] * LIGHTNESS_BINS // 256
    chroma = np.clip((lab[:, 1:] - 128) // CHROMA_STEP + CHROMA_BINS // 2, 0, CHROMA_BINS - 1)
    flat: np.ndarray = (lightness * CHROMA_BINS + chroma[:, 0]) * CHROMA_BINS + chroma[:, 1]
    return flat


def texture_bins(small: np.ndarray) -> np.ndarray:
    """Each pixel's texture bin (flat): its contrast's bin × `TEXTURE_BINS` + its gradient balance's.

    Lightness contrast (standard deviation) and gradient balance ((|∂x| − |∂y|) / (|∂x| + |∂y|): stripes
    across or along the rows) over `TEXTURE_WINDOW`² pixels, each in `TEXTURE_BINS` equal shares of the image.

    Args:
        small: the image at the cut's working scale, H×W×3 uint8 RGB.
    """
    lightness = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    window = (TEXTURE_WINDOW, TEXTURE_WINDOW)
    mean = cv2.blur(lightness, window)
    contrast = np.sqrt(np.maximum(cv2.blur(lightness * lightness, window) - mean * mean, 0.0))
    across = np.abs(cv2.Sobel(lightness, cv2.CV_32F, 1, 0))
    along = np.abs(cv2.Sobel(lightness, cv2.CV_32F, 0, 1))
    balance = cv2.blur(across - along, window) / (cv2.blur(across + along, window) + 1e-3)

    def equal_shares(values: np.ndarray) -> np.ndarray:
        cuts = np.quantile(values, np.linspace(0.0, 1.0, TEXTURE_BINS + 1)[1:-1])
        index: np.ndarray = np.searchsorted(cuts, values)
        return index

    flat: np.ndarray = (equal_shares(contrast) * TEXTURE_BINS + equal_shares(balance)).ravel()
    return flat.astype(np.int64)


def work_flow(shape: tuple[int, int], image: np.ndarray, neighbour: np.ndarray) -> np.ndarray | None:
    """Each working pixel's optical flow from ``image`` to ``neighbour`` (both RGB; H×W×2 working pixels).

    DIS flow (`DISFlow`, medium) at the working scale ``shape`` (rows, columns; `ImageFeatures.shape`);
    None where that scale is too small for a flow.

    Raises:
        ValueError: if the two frames differ in size.
    """
    if neighbour.shape[:2] != image.shape[:2]:
        raise ValueError(f"the neighbouring frame is {neighbour.shape[:2]}, the frame {image.shape[:2]}")
    height, width = shape
    if min(height, width) < DISFlow.MIN_SIDE:
        return None
    small = [
        cv2.resize(np.ascontiguousarray(frame), (width, height), interpolation=cv2.INTER_AREA)
        for frame in (image, neighbour)
    ]
    flow: np.ndarray = _FLOW(*small)
    return flow


def motion_bins(flow: np.ndarray) -> np.ndarray:
    """Each pixel's motion bin (flat) from its optical flow (`work_flow`).

    Each axis is cut into `MOTION_BINS` between its 1st and 99th percentile over the frame, so the bins
    follow this pair's own range of motion.
    """
    low, high = np.percentile(flow.reshape(-1, 2), [1, 99], axis=0)
    scaled = (flow - low) / np.maximum(high - low, 1e-3) * MOTION_BINS
    index = np.clip(scaled.astype(np.int64), 0, MOTION_BINS - 1)
    flat: np.ndarray = (index[..., 0] * MOTION_BINS + index[..., 1]).ravel()
    return flat


def histogram(
    bins: np.ndarray,
    weights: np.ndarray,
    shape: tuple[int, ...] | None = None,
    *,
    sigma: float = 1.0,
    uniform: float = UNIFORM,
) -> np.ndarray:
    """A smoothed histogram (density over ``shape``, flat; Lab colours by default) of ``bins`` by ``weights``.

    ``sigma`` smooths it (in bins), ``uniform`` is the share of a uniform density mixed in.
    """
    shape = (LIGHTNESS_BINS, CHROMA_BINS, CHROMA_BINS) if shape is None else shape
    counts = np.bincount(bins, weights, minlength=int(np.prod(shape))).reshape(shape)
    smooth = gaussian_filter(counts, sigma, mode="constant").ravel()
    density: np.ndarray = (1 - uniform) * smooth / max(float(smooth.sum()), 1e-9) + uniform / smooth.size
    return density


def motion_costs(motion: np.ndarray, belief: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What each pixel's motion costs as object and as background (nats, flat), learnt from ``belief``.

    The background's motion is learnt over the whole frame (the colours': in a box's ring, and from
    negative clicks' regions), as measured.
    """
    weights = belief.ravel()
    return _binned_costs(motion, weights, 1.0 - weights, (MOTION_BINS, MOTION_BINS))


def texture_costs(
    texture: np.ndarray, object_weights: np.ndarray, background_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What each pixel's texture (`texture_bins`) costs as object and as background (nats, flat).

    Args:
        texture: each pixel's texture bin (flat).
        object_weights: each pixel's weight in the object's histogram (flat; the colours' weights).
        background_weights: the same for the background (with a box, a ring around it, as its colours').
    """
    return _binned_costs(texture, object_weights, background_weights, (TEXTURE_BINS, TEXTURE_BINS))


def _binned_costs(
    bins: np.ndarray, object_weights: np.ndarray, background_weights: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Object and background costs (nats, flat) of ``bins`` in ``shape``, learnt from the weights given."""
    smoothing = {"sigma": MOTION_SMOOTHING, "uniform": MOTION_UNIFORM}
    object_model = histogram(bins, object_weights, shape, **smoothing)
    background_model = histogram(bins, background_weights, shape, **smoothing)
    return -np.log(object_model[bins]), -np.log(background_model[bins])


def example_models(examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray] | None:
    """The object's and background's colour histograms over (image, mask) examples, or None for none."""
    if not examples:
        return None
    bins = np.concatenate([colour_bins(image) for image, _ in examples])
    masks = np.concatenate([np.asarray(mask, bool).ravel() for _, mask in examples]).astype(np.float64)
    return histogram(bins, masks), histogram(bins, 1.0 - masks)


def object_like(image: np.ndarray, examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """The pixels of ``image`` (RGB) that look like the object by its ``examples`` (bool H×W), or None.

    A pixel does where its colour is at most `OBJECT_LIKE_NATS` less likely the object's than the background's
    in the examples' colour models (`example_models`).

    Args:
        image: the frame, H×W×3 uint8 RGB.
        examples: (image, bool mask) of the object on other frames, as `ObjectPrior.examples`.
    """
    models = example_models(examples)
    if models is None:
        return None
    ratio = np.log(models[0]) - np.log(models[1])
    likely: np.ndarray = (ratio[colour_bins(image)] > -OBJECT_LIKE_NATS).reshape(image.shape[:2])
    return likely
