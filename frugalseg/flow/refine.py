"""Snapping a warped label map to the evidence of its own frame: colour models and edges (GrabCut).

A label carried along optical flow drifts: each warp misplaces the boundary by a little, the
misplacement is carried on, and pixels whose flow failed the checks take a guess. `snap_labels`
re-decides, on the target frame itself, the pixels near a label boundary whose flow was unreliable,
with OpenCV's GrabCut (Rother et al. 2004): colour models (Gaussian mixtures) of the class and of
its surroundings learned from the confident pixels of the frame around the object, and a graph
cut that puts boundaries on colour edges. Reliable pixels stay fixed, so on a short, well-matched
step the label is unchanged and only the pixels the flow could not vouch for move.

A class is snapped against the rest (one GrabCut per class), so the step is meant for object masks
(a few classes on a background); label maps with more classes than ``max_classes`` are returned
unchanged (street scenes: dozens of classes, wide regions, where a one-against-rest cut per class
would cost seconds a frame).
"""

from __future__ import annotations

import cv2
import numpy as np

# GrabCut's rectangle, unused when it starts from a mask: what None passes (OpenCV's stubs refuse None).
_NO_RECT = (0, 0, 0, 0)


def _class_counts(label: np.ndarray, ignore: int) -> tuple[np.ndarray, np.ndarray]:
    """The classes of a uint8 label map (``ignore`` left out) and their pixel counts, in class order.

    What ``np.unique(..., return_counts=True)`` gives, by one histogram instead of a sort: OpenCV's
    (float32 counts, exact below 2**24 pixels) or, for larger maps, numpy's.
    """
    if label.size < 2**24:
        counts = cv2.calcHist([label], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    else:
        counts = np.bincount(label.ravel(), minlength=256)
    counts[ignore] = 0
    values = np.flatnonzero(counts)
    return values, counts[values]


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _check_sizes(label: np.ndarray, reliable: np.ndarray, frame: np.ndarray) -> None:
    """Raise unless ``label``, ``reliable`` and ``frame`` have the same height and width."""
    if label.shape != reliable.shape or label.shape != frame.shape[:2]:
        raise ValueError(
            f"label {label.shape}, reliable {reliable.shape} and frame {frame.shape} differ in size"
        )


def _background_and_objects(values: np.ndarray, counts: np.ndarray) -> tuple[int, list[int]]:
    """The background class (the most frequent one) and the other classes, rarest first.

    Args:
        values: the classes of a label map, as `_class_counts` gives them.
        counts: their pixel counts.
    """
    background = int(values[counts.argmax()])
    return background, [int(value) for value in values[np.argsort(counts)] if value != background]


def _grown_box(region: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of ``region``'s pixels grown by ``margin`` px and clipped to the map.

    Args:
        region: H×W bool, with at least one pixel set.
        margin: growth (px) on every side.

    Returns:
        The (rows, columns) slices of the box, to index H×W (or H×W×C) arrays with.
    """
    ys, xs = np.nonzero(region)
    height, width = region.shape
    rows = slice(max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, height))
    columns = slice(max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, width))
    return rows, columns


def _cut(
    image: np.ndarray, mask: np.ndarray, models: tuple[np.ndarray, np.ndarray], iterations: int, mode: int
) -> np.ndarray | None:
    """Run GrabCut from ``mask`` and return where it puts the object, or None when it cannot run.

    Args:
        image: h×w×3 uint8 BGR, C-contiguous.
        mask: h×w uint8 GrabCut mask (``GC_BGD`` … ``GC_PR_FGD``), C-contiguous; updated in place.
        models: the (background, object) 1×65 float64 mixtures, updated in place unless ``mode`` is
            ``GC_EVAL_FREEZE_MODEL``.
        iterations: GrabCut iterations.
        mode: ``cv2.GC_INIT_WITH_MASK`` or ``cv2.GC_EVAL_FREEZE_MODEL``.

    Returns:
        h×w bool, the sure and probable object pixels of the cut; None when OpenCV refused (too few
        samples of one side for a colour model).
    """
    try:
        cv2.grabCut(image, mask, _NO_RECT, *models, iterations, mode)
    except cv2.error:
        return None
    inside: np.ndarray = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return inside


def _paste_cut(window: np.ndarray, inside: np.ndarray, value: int, background: int) -> None:
    """Write one class's cut into a window of the label map, in place.

    Args:
        window: the label map's box (a view, so the map changes).
        inside: bool of the window's size, where the cut puts the class.
        value: the class cut.
        background: the class a pixel taken from ``value`` gets.
    """
    was = window == value
    window[inside] = value
    window[was & ~inside] = background


def _snap_zone(
    current: np.ndarray, reliable: np.ndarray, band: int, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of one class's snap that the cut may re-decide, and the band its box must cover.

    Args:
        current: H×W bool, the class's pixels.
        reliable: H×W bool, where the flow passed its checks.
        band: width (px) of the boundary band open wherever the flow was unreliable.
        reach: how far (px) from the boundary an unreliable pixel is still open.

    Returns:
        ``(open, wide)``: H×W bool, the unreliable pixels within ``band`` or ``reach`` px of the
        boundary, and every pixel within ``reach`` px of it.
    """
    obj = current.view(np.uint8)
    near = (cv2.dilate(obj, _disk(band)) > 0) & (cv2.erode(obj, _disk(band)) == 0)
    wide = (cv2.dilate(obj, _disk(reach)) > 0) & (cv2.erode(obj, _disk(reach)) == 0)
    return (near | wide) & ~reliable, wide


def _snap_trimap(current: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """GrabCut's mask for a snap: open pixels probable class / not-class, the others fixed.

    Args:
        current: bool, the class's pixels.
        open_: bool of the same size, the pixels open to the cut.
    """
    mask = np.where(current, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    mask[open_ & current] = cv2.GC_PR_FGD
    mask[open_ & ~current] = cv2.GC_PR_BGD
    return mask


def _snap_cut(image: np.ndarray, mask: np.ndarray, iterations: int, downscale: int) -> np.ndarray | None:
    """GrabCut with colour models learnt on ``image`` itself, optionally on both shrunk.

    Args:
        image: h×w×3 uint8 BGR box of the frame.
        mask: h×w uint8 GrabCut mask of the box (`_snap_trimap`).
        iterations: GrabCut iterations.
        downscale: shrink factor of the cut; its answer is upsampled back to h×w.

    Returns:
        h×w bool, where the cut puts the class; None when the box holds nothing but the class (no
        surroundings to learn from) or GrabCut refused.
    """
    height, width = mask.shape
    image = np.ascontiguousarray(image)
    if downscale > 1:
        small = (max(width // downscale, 1), max(height // downscale, 1))
        mask = cv2.resize(mask, small, interpolation=cv2.INTER_NEAREST)
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    if not (mask == cv2.GC_BGD).any() and not (mask == cv2.GC_PR_BGD).any():
        return None
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    inside = _cut(image, mask, models, iterations, cv2.GC_INIT_WITH_MASK)
    if inside is None or downscale == 1:
        return inside
    upsampled = cv2.resize(inside.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return upsampled > 0


def snap_labels(
    label: np.ndarray,
    reliable: np.ndarray,
    frame: np.ndarray,
    *,
    band: int = 3,
    reach: int = 20,
    iterations: int = 2,
    max_classes: int = 4,
    ignore: int = 255,
    margin: int = 20,
    downscale: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-decide the unreliable pixels near each class's boundary on ``frame``.

    Returns the label and where it changed.

    For each class except the most frequent one (the background), GrabCut gets as *probable* class
    / not-class the pixels of ``label`` that are unreliable and within ``band`` px of the class's
    boundary, or unreliable and within ``reach`` px of it; every other pixel is fixed to what
    ``label`` says. The cut runs on the bounding box of that zone, grown by ``margin`` px, so the
    colour models are local. A pixel the cut takes from the class gets the background class, one it
    gives to the class gets the class; a ``ignore`` pixel the cut leaves outside stays ``ignore``.

    Args:
        label: H×W uint8 label map (``ignore`` = unlabelled).
        reliable: H×W bool, where the label was carried by a flow that passed its checks.
        frame: the H×W×3 uint8 RGB frame the label belongs to.
        band: width (px) of the boundary band open to the cut wherever the flow was unreliable.
        reach: how far (px) from the boundary an unreliable pixel is still open to the cut.
        iterations: GrabCut iterations (colour model re-estimation and cut).
        max_classes: label maps with more classes than this are returned unchanged.
        ignore: the unlabelled value.
        margin: growth (px) of the cut's box around the zone open to it.
        downscale: run the cut on the box shrunk by this factor (faster; the open pixels take the
            cut's answer upsampled, the fixed ones keep theirs).
    """
    if downscale < 1:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    _check_sizes(label, reliable, frame)
    out = label.copy()
    values, counts = _class_counts(label, ignore)
    if not 2 <= values.size <= max_classes:
        return out, np.zeros(label.shape, bool)
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    background, objects = _background_and_objects(values, counts)
    for value in objects:
        current = out == value
        open_, wide = _snap_zone(current, reliable, band, reach)
        if not open_.any():
            continue
        box = _grown_box(wide | current, margin)
        inside = _snap_cut(bgr[box], _snap_trimap(current[box], open_[box]), iterations, downscale)
        if inside is not None:
            _paste_cut(out[box], np.where(open_[box], inside, current[box]), value, background)
    return out, out != label


ColourModels = dict[int, tuple[np.ndarray, np.ndarray]]


def anchor_colour_models(
    label: np.ndarray, frame: np.ndarray, *, max_classes: int = 4, ignore: int = 255, margin: int = 40
) -> ColourModels:
    """Colour models of each object class and of its surroundings, learnt once on the annotated frame.

    For each class except the most frequent one (the background), GrabCut's two Gaussian mixtures
    (5 components each, OpenCV's layout: a 1×65 float64 array per mixture) are fitted to the
    class's pixels and to the other labelled pixels of its bounding box grown by ``margin`` px.
    OpenCV's random generator is seeded (0) first, so the models do not depend on earlier calls.
    Returns ``{class: (background_model, object_model)}``; empty for label maps with fewer than 2 or
    more than ``max_classes`` classes (`object_cut` leaves those alone).
    """
    if label.shape != frame.shape[:2]:
        raise ValueError(f"label {label.shape} and frame {frame.shape} differ in size")
    models: ColourModels = {}
    values, counts = _class_counts(label, ignore)
    if not 2 <= values.size <= max_classes:
        return models
    background = int(values[counts.argmax()])
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    cv2.setRNGSeed(0)  # GrabCut's k-means start draws from OpenCV's RNG: the same models every run
    for value in values:
        if value == background:
            continue
        box = _grown_box(label == value, margin)
        window = label[box]
        mask = np.where(window == value, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
        outside = window != value
        if outside.sum() < 10 or (~outside).sum() < 10:
            continue  # too few pixels of one side for a mixture of 5
        # the unlabelled pixels of the box count as surroundings: never as the object
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        if _cut(np.ascontiguousarray(bgr[box]), mask, (bgd, fgd), 1, cv2.GC_INIT_WITH_MASK) is not None:
            models[int(value)] = bgd, fgd
    return models


def _object_trimap(
    current: np.ndarray, reliable: np.ndarray, grow: int, erode: int
) -> tuple[np.ndarray, np.ndarray]:
    """The zone an object's cut may cover and GrabCut's mask for it (see `object_cut`).

    Args:
        current: H×W bool, the object's pixels.
        reliable: H×W bool, where the flow passed its checks.
        grow: how far (px) outside the object the zone reaches.
        erode: erosion (px) of the reliable object pixels that are sure object, and width of the
            band outside the object where reliable pixels stay open.

    Returns:
        ``(zone, mask)``: H×W bool, the object grown by ``grow`` px, and the H×W uint8 mask — sure
        object, probable object, probable not-object in the zone, sure not-object elsewhere.
    """
    obj = current.view(np.uint8)
    zone = cv2.dilate(obj, _disk(grow)) > 0
    mask = np.full(current.shape, cv2.GC_BGD, np.uint8)
    mask[zone] = cv2.GC_PR_BGD
    mask[current] = cv2.GC_PR_FGD
    sure = current & reliable
    if erode > 0:
        sure = cv2.erode(sure.view(np.uint8), _disk(erode)) > 0
    mask[sure] = cv2.GC_FGD
    outside = reliable & ~current
    if erode > 0:
        outside &= cv2.dilate(obj, _disk(erode)) == 0
    mask[outside & zone] = cv2.GC_BGD
    return zone, mask


def object_cut(
    label: np.ndarray,
    reliable: np.ndarray,
    frame: np.ndarray,
    models: ColourModels,
    *,
    grow: int = 15,
    erode: int = 1,
    iterations: int = 2,
    ignore: int = 255,
    margin: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-segment each object of a warped label map on its frame with the anchor's colour models.

    Returns the label and where it changed.

    Unlike `snap_labels`, which only re-decides unreliable pixels near the boundary with colour
    models learnt on the (drifting) frame itself, this cut can give back whole parts the flow lost:
    for each class of ``models`` (from `anchor_colour_models`), GrabCut with the models frozen
    (``GC_EVAL_FREEZE_MODEL``) runs over the class's region grown by ``grow`` px (plus ``margin``
    px of context). The object's reliable pixels, eroded by ``erode`` px, are sure object; the
    reliable pixels farther than ``erode`` px outside it are sure not-object; the rest of the
    object is probable object and the rest of the grown region probable not-object. A pixel the cut
    takes from the class gets the background class (the most frequent one); one it gives to the
    class gets the class (an ``ignore`` pixel included).

    Args:
        label: H×W uint8 label map (``ignore`` = unlabelled).
        reliable: H×W bool, where the label was carried by a flow that passed its checks.
        frame: the H×W×3 uint8 RGB frame the label belongs to.
        models: per class, the (background, object) mixtures learnt on the anchor frame.
        grow: how far (px) outside the object the cut may extend it.
        erode: erosion (px) of the reliable object pixels kept fixed, and width of the band outside
            the object where reliable pixels stay open.
        iterations: GrabCut iterations (graph cuts; the models stay frozen).
        ignore: the unlabelled value.
        margin: context (px) around the grown region.
    """
    _check_sizes(label, reliable, frame)
    out = label.copy()
    values, counts = _class_counts(label, ignore)
    if values.size < 2 or not models:
        return out, np.zeros(label.shape, bool)
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    background, objects = _background_and_objects(values, counts)
    for value in objects:
        if value not in models:
            continue
        zone, mask = _object_trimap(out == value, reliable, grow, erode)
        box = _grown_box(zone, margin)
        frozen = models[value][0].copy(), models[value][1].copy()
        image, sub = np.ascontiguousarray(bgr[box]), np.ascontiguousarray(mask[box])
        inside = _cut(image, sub, frozen, iterations, cv2.GC_EVAL_FREEZE_MODEL)
        if inside is not None:
            _paste_cut(out[box], inside, value, background)
    return out, out != label
