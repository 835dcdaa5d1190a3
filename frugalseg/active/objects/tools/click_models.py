"""Click-to-mask models of the ``clicks`` annotation type: an object's current mask and clicks → its mask.

Each model (`ClickToMask`) serves the two annotators of the loop: ``simulate`` for the simulated
one (it places corrective clicks with `simulated_annotator.corrective_click` and may look at
the truth to choose between candidate masks, as the oracle of paper 002 does) and ``correct`` for
a person's clicks (no truth: the model chooses alone); all three take what the video knows of the
object (``known``, `graph_cut.ObjectPrior`: its neighbouring frame, its colours on another frame).
Chosen by name (`get_click_model`):

* ``starcut`` (`DEFAULT_CLICK_MODEL`, weight-free) — `StarCutClicks`: the star-convex graph cut of
  `graph_cut.segment`, the current mask its prior (a box's first guess GrabCut's, from the object's colours
  on other frames where the session knows them); from an empty mask or a box each click's answer is
  checked against the answer before it.
* ``grabcut`` (the default before ``starcut``) — `GrabCutClicks`: OpenCV GrabCut initialised with the
  current mask as probable foreground, the rest as probable background, and a disk of sure foreground
  (positive click) or sure background (negative click) around each click, inside a box around the
  mask and the clicks (`grabcut_clicks`). The simulated annotator keeps, after every click, the
  better (IoU with the truth) of the GrabCut mask and the mask with the click disks painted in
  (`paint_clicks`); a person's clicks may change the mask only near them (`local_grabcut_clicks`).
  A box (`ClickToMask.box`) is GrabCut from the rectangle (`grabcut_box`), each corrective click
  then a GrabCut around it, as far as the region it corrects reaches (`box_click`).
* ``sam2`` — `SAM2Clicks`: SAM 2's image predictor with the user's checkpoint, prompted the way
  the simulated annotator of EVA-VOS prompts SAM (`SAMClicks`): the image embedded once per
  frame, the current mask given first (as ``mask_input`` logits, `mask_logits`, or fitted with
  uncharged clicks, ``start="fit"``), then the clicks one by one, each call with every click so
  far and the previous best low-resolution logits, three candidates per call, the one closest to
  the truth kept. The simulated annotator never returns a mask worse than the current one.

Whatever the model, its mask holds what the gestures say (`honour_prompt`): a positive click's own pixel
is in it, a negative click's is not, and a box's mask stays inside the box (SAM's masks may cross a
box's edge or miss a click's pixel; GrabCut's corrections of a box may grow past it).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from frugalseg.active.objects.simulation.simulated_annotator import (
    CorrectiveClick,
    best_of_corrections,
    corrective_click,
)
from frugalseg.active.objects.tools import (
    appearance,
    change_bounds,
    dragged_parts,
    graph_cut,
    large_frames,
    zoom,
)
from frugalseg.active.objects.tools.appearance import object_like
from frugalseg.active.objects.tools.grabcut import (
    BOX_LIKELY_SHARE,
    GIVEN_CLICK_REACH,
    GRABCUT_ITERATIONS,
    Box,
    Click,
    box_clicks,
    box_settings,
    click_radius,
    grabcut_box,
    grabcut_clicks,
    honour_prompt,
    local_grabcut_clicks,
    paint_clicks,
)
from frugalseg.active.objects.tools.graph_cut import (
    ImageFeatures,
    ObjectPrior,
    Point,
    image_features,
    image_key,
    segment,
)
from frugalseg.autolabel.sam2_loading import SAM2Options, load_sam2
from frugalseg.errors import ConfigError
from frugalseg.metrics.mask_scores import region_similarity
from frugalseg.options import Configurable, build_options

if TYPE_CHECKING:
    import torch

    from frugalseg.autolabel.refine import ImagePredictor


def _check_on_frame(clicks: Sequence[Click], shape: tuple[int, ...]) -> None:
    """Raise `ValueError` naming the first click off a frame of ``shape`` (H, W)."""
    height, width = shape
    for number, click in enumerate(clicks):
        if not (0 <= click.x < width and 0 <= click.y < height):
            raise ValueError(f"click {number} at x {click.x}, y {click.y} is off the {width}×{height} frame")


class ClickToMask(Configurable, ABC):
    """Turns clicks on one object into its mask (see the module docstring).

    Subclasses answer in `_correct` and `_box` (and `simulate`); `correct` and `box` hold every model's
    answer to what the person's gestures say (`honour_prompt`). Subclasses describe what their methods
    do; the arguments are the ones documented here.
    """

    #: The model's name on the command line and in a run's settings.
    name: ClassVar[str] = ""

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """What decides the masks (JSON-able), recorded in the loop's config."""

    def to(self, device: str | torch.device) -> ClickToMask:
        """Move the model's network to ``device`` (a process of a multi-device run); weight-free: no-op."""
        return self

    def prepare(self, image: np.ndarray) -> None:
        """Ready what answers on ``image`` need before a click comes (a page opened it); default: nothing."""

    @abstractmethod
    def simulate(
        self,
        image: np.ndarray,
        current: np.ndarray,
        truth: np.ndarray,
        *,
        clicks: int,
        ignore: np.ndarray | None = None,
        known: ObjectPrior | None = None,
    ) -> tuple[np.ndarray, list[CorrectiveClick]]:
        """The simulated annotator's mask of one object after up to ``clicks`` corrective clicks.

        Args:
            image: the frame, H×W×3 uint8 RGB.
            current: the object's current mask (bool H×W).
            truth: its ground-truth mask (bool H×W).
            clicks: the most clicks to make; fewer when the mask becomes exact.
            ignore: pixels that are no error either way (bool H×W, e.g. void), or None.
            known: what the video knows of the object (`ObjectPrior`), or None; as `correct` takes it.

        Returns:
            The new mask (bool H×W) and the clicks made, in order.
        """

    def correct(
        self,
        image: np.ndarray,
        current: np.ndarray,
        clicks: Sequence[Click],
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """One object's mask (bool H×W) from its current mask and a person's clicks (at least one).

        The model's answer (`_correct`) with each click's own pixel as the click says (`honour_prompt`).

        Args:
            image: the frame, H×W×3 uint8 RGB.
            current: the object's current mask (bool H×W).
            clicks: the person's clicks on that object, all at once.
            known: what the video knows of the object (its neighbouring frame, its other frames, the
                mask's confidence), or None.

        Raises:
            ValueError: no click, or a click off the frame.
        """
        if not clicks:
            raise ValueError("correct() needs at least one click (a box alone goes to box())")
        _check_on_frame(clicks, image.shape[:2])
        return honour_prompt(self._correct(image, current, clicks, known=known), clicks)

    def box(
        self,
        image: np.ndarray,
        box: Box,
        clicks: Sequence[Click] = (),
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """One object's mask (bool H×W) from a box drawn around it and corrective clicks.

        The model's answer (`_box`) kept inside the box, each click inside it as the click says
        (`honour_prompt`). A box reaching past the frame is its part on the frame. A box the model finds
        nothing in (drawn inside an object, or on an even patch) is its own mask: the person said an
        object is there, and an empty answer had erased the object the box was drawn on.

        Args:
            image: the frame, H×W×3 uint8 RGB.
            box: the object's box, (x0, y0, x1, y1) in pixels, corners included.
            clicks: the person's corrective clicks since the box, in order.
            known: what the session knows of the object, or None.

        Raises:
            ValueError: the box holds no pixel of the frame, or a click lies off it.
        """
        _check_on_frame(clicks, image.shape[:2])
        height, width = image.shape[:2]
        x0, y0, x1, y1 = box
        box = (max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1))
        if box[0] > box[2] or box[1] > box[3]:
            raise ValueError(f"box {(x0, y0, x1, y1)} holds no pixel of the {width}×{height} frame")
        found = honour_prompt(self._box(image, box, clicks, known=known), clicks, box)
        if not clicks and not found.any():
            found[box[1] : box[3] + 1, box[0] : box[2] + 1] = True
        return found

    @abstractmethod
    def _correct(
        self,
        image: np.ndarray,
        current: np.ndarray,
        clicks: Sequence[Click],
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """The model's own answer to `correct` (same arguments)."""

    def _box(
        self,
        image: np.ndarray,
        box: Box,
        clicks: Sequence[Click] = (),
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """The model's own answer to `box` (same arguments): GrabCut's (`box_clicks`), ``known`` unused."""
        return box_clicks(image, box, clicks)


class GrabCutClicks(ClickToMask):
    """Weight-free clicks to masks with OpenCV GrabCut (``grabcut``, the default before ``starcut``)."""

    name = "grabcut"

    @property
    def settings(self) -> dict[str, Any]:
        """GrabCut's iterations, how far a person's click reaches (in click radii) and a box's GrabCut."""
        return {
            "iterations": GRABCUT_ITERATIONS,
            "given_click_reach": GIVEN_CLICK_REACH,
            **box_settings(),
        }

    def simulate(
        self,
        image: np.ndarray,
        current: np.ndarray,
        truth: np.ndarray,
        *,
        clicks: int,
        ignore: np.ndarray | None = None,
        known: ObjectPrior | None = None,
    ) -> tuple[np.ndarray, list[CorrectiveClick]]:
        """After each click, the better (IoU with the truth) of the GrabCut mask and the painted clicks."""
        radius = click_radius(truth.shape)
        found = np.asarray(current, bool)
        made: list[CorrectiveClick] = []
        for _ in range(clicks):
            click = corrective_click(found, truth, ignore=ignore)
            if click is None:
                break
            made.append(click)
            candidates = [
                grabcut_clicks(image, found, made, radius=radius),
                paint_clicks(found, made, radius),
            ]
            found = max(candidates, key=lambda c: region_similarity(c, truth, ignore))
        return found, made

    def _correct(
        self,
        image: np.ndarray,
        current: np.ndarray,
        clicks: Sequence[Click],
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """`local_grabcut_clicks` within ``GIVEN_CLICK_REACH`` click radii (30 px at 854×480) of them."""
        radius = click_radius(current.shape)
        return local_grabcut_clicks(image, current, clicks, radius=radius, reach=GIVEN_CLICK_REACH * radius)


def _known_key(known: ObjectPrior | None) -> tuple[Hashable, tuple[Hashable, ...]] | None:
    """What tells one `ObjectPrior` from another: its neighbour's key and its examples' (frame, mask) keys."""
    if known is None:
        return None
    neighbour = None if known.neighbour is None else image_key(known.neighbour)
    return neighbour, tuple((image_key(image), image_key(mask)) for image, mask in known.examples)


class StarCutClicks(ClickToMask):
    """Weight-free clicks and a box to masks by a star-convex graph cut (``starcut``, default; `graph_cut`).

    Keeps the last image's features, the last box's mask and the last `ANSWERS_KEPT` answers to clicks
    from an empty mask or a box, so a person's next click on the same frame costs only the cut; thread-safe.
    """

    name = "starcut"
    #: How many answers to clicks from an empty mask or a box are kept: each is the next click's ``previous``.
    ANSWERS_KEPT = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._features: tuple[tuple[object, ...], ImageFeatures | None] | None = None
        self._last_box: tuple[Hashable, np.ndarray] | None = None
        self._answers: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    @property
    def settings(self) -> dict[str, Any]:
        """The ``SETTINGS`` of the cut's modules (`graph_cut`, `appearance`, …) and the box's GrabCut's."""
        return {
            **{
                name.lower(): getattr(module, name)
                for module in (graph_cut, appearance, change_bounds, dragged_parts, zoom, large_frames)
                for name in module.SETTINGS
            },
            **box_settings(),
            "box_likely_share": BOX_LIKELY_SHARE,
        }

    def prepare(self, image: np.ndarray) -> None:
        """Compute ``image``'s features now (0.02 s at 854×480), so its first click's cuts start at once."""
        self._image(image)

    def _image(self, image: np.ndarray) -> tuple[tuple[object, ...], ImageFeatures | None]:
        """``image``'s key and features, computed unless it is the image seen last.

        None for a frame over `large_frames.FULL_PIXELS`: it is cut shrunk, with the shrunk frame's own.
        """
        key = image_key(image)
        with self._lock:
            if self._features is None or self._features[0] != key:
                large = large_frames.shrunk_size(*image.shape[:2]) is not None
                self._features = (key, None if large else image_features(image))
            return self._features

    def simulate(
        self,
        image: np.ndarray,
        current: np.ndarray,
        truth: np.ndarray,
        *,
        clicks: int,
        ignore: np.ndarray | None = None,
        known: ObjectPrior | None = None,
    ) -> tuple[np.ndarray, list[CorrectiveClick]]:
        """Corrective clicks on the mask shown last, each `correct` with all so far; the best mask kept.

        A person undoes a click that made the mask worse: the best (IoU) of the current mask and those shown.
        """
        current = np.asarray(current, bool)

        def answer(made: list[CorrectiveClick]) -> np.ndarray:
            return self.correct(image, current, made, known=known)

        return best_of_corrections(current, truth, answer, clicks=clicks, ignore=ignore)

    def _correct(
        self,
        image: np.ndarray,
        current: np.ndarray,
        clicks: Sequence[Click],
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """The cut from all the clicks, the current mask its prior.

        From an empty mask, the clicks alone, each click's answer given the answer to the clicks before
        it (`graph_cut.segment`'s ``previous``): the answers kept are reused, the others computed in turn.
        Negative clicks before any positive one take nothing from the empty mask: their answer is empty
        (a negative keypoint on a frame without the object had been answered with half the frame).
        """
        key, features = self._image(image)
        points = [Point(c.x, c.y, c.positive) for c in clicks]
        current = np.asarray(current, bool)
        if current.any() or not points:
            return segment(image, points, features=features, prior=current, known=known)

        def answer(count: int, previous: np.ndarray | None) -> np.ndarray:
            if not any(point.positive for point in points[:count]):  # nothing yet for a negative to take
                return np.zeros(current.shape, bool)
            return segment(image, points[:count], features=features, known=known, previous=previous)

        return self._chained((key, _known_key(known)), points, None, answer)

    def _chained(
        self,
        key: Hashable,
        points: list[Point],
        start: np.ndarray | None,
        answer: Callable[[int, np.ndarray | None], np.ndarray],
    ) -> np.ndarray:
        """The answer to all ``points``, each click's ``answer(count, previous)`` given the one before it.

        ``start`` is the answer to no click; the answers kept (under ``key`` and the clicks so far) are
        reused, the others computed in turn.
        """
        keys = [(key, tuple(points[:count])) for count in range(1, len(points) + 1)]
        with self._lock:
            done = next((n for n in range(len(keys), 0, -1) if keys[n - 1] in self._answers), 0)
            previous = self._answers[keys[done - 1]] if done else start
            if done:
                self._answers.move_to_end(keys[done - 1])
        for count in range(done + 1, len(points) + 1):
            previous = answer(count, previous)
            with self._lock:
                self._answers[keys[count - 1]] = previous
                while len(self._answers) > self.ANSWERS_KEPT:
                    self._answers.popitem(last=False)
        result: np.ndarray = np.array(previous, bool)  # a copy: the kept answer stays as it was
        return result

    def _box(
        self,
        image: np.ndarray,
        box: Box,
        clicks: Sequence[Click] = (),
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """GrabCut's box (`grabcut_box`: 0.70 on DAVIS, the cut's own 0.50), then the cut; inside the box.

        Where ``known`` has the object on other frames, GrabCut starts from the pixels that look like it
        (`appearance.object_like`). Each click's cut changes the answer to the clicks before it
        (`graph_cut.segment`'s ``previous``).
        """
        key, features = self._image(image)
        known_key = _known_key(known)
        examples = () if known is None else known.examples
        box_key = (key, box, () if known_key is None else known_key[1])  # the guess sees the examples alone
        with self._lock:
            cached = self._last_box
        if cached is None or cached[0] != box_key:
            x0, y0, x1, y1 = box
            cached = (box_key, np.zeros(image.shape[:2], bool))
            guess = grabcut_box(image, box, object_like(image, examples))
            cached[1][y0 : y1 + 1, x0 : x1 + 1] = guess[y0 : y1 + 1, x0 : x1 + 1]
            with self._lock:
                self._last_box = cached
        alone, points = cached[1], [Point(c.x, c.y, c.positive) for c in clicks]
        if not points:
            return np.array(alone, bool)

        def answer(count: int, previous: np.ndarray | None) -> np.ndarray:
            return segment(
                image, points[:count], features=features, prior=alone, box=box, known=known, previous=previous
            )

        return self._chained((key, box, known_key), points, alone, answer)


#: SAM 2's own logits for a given mask (`SAM2Base._use_mask_as_output`): +10 on it, -10 off it.
MASK_LOGIT = 10.0
#: The EVA-VOS fit of SAM to the current mask: until their IoU exceeds this, at most this many rounds.
FIT_IOU = 0.8
FIT_ROUNDS = 20
STARTS = ("mask", "fit")


def mask_logits(mask: np.ndarray, image_size: int) -> np.ndarray:
    """Low-resolution logits (1×s×s, s = ``image_size`` / 4) that stand for a bool mask in ``mask_input``.

    SAM 2's video predictor makes them this way when a frame given as a mask gets clicks
    (``add_new_mask`` then ``add_new_points``: the mask, resized to the square input bilinearly and
    thresholded at 0.5, becomes ±`MASK_LOGIT` logits, downsampled 4 times with antialiasing, and
    these are the ``mask_input`` of the clicks); the image predictor resizes the image to the same
    square, so the mask is squashed alike. A hard 0/1 mask would sit at SAM's decision threshold
    (0) everywhere off the object; ±10 is far from it, as SAM's own confident logits are. How well
    real weights follow such logits is not measured here (the tests have random weights only);
    ``start="fit"`` (`SAMClicks`) is the official EVA-VOS alternative, which needs no made-up logits.
    """
    import torch

    resize = torch.nn.functional.interpolate
    flat = torch.from_numpy(np.asarray(mask, np.float32))[None, None]
    big = resize(flat, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    logits = (big >= 0.5).float() * (2 * MASK_LOGIT) - MASK_LOGIT
    small = image_size // 4
    low = resize(logits, size=(small, small), mode="bilinear", align_corners=False, antialias=True)
    return low[0].numpy()


def _checked_start(start: str) -> str:
    """``start``, or a `ConfigError` naming the known ones."""
    if start not in STARTS:
        raise ConfigError(
            "start", f"unknown start {start!r} of the SAM click model; choose from {', '.join(STARTS)}"
        )
    return start


class SAMClicks(ClickToMask):
    """Clicks to masks with a SAM image predictor, the way EVA-VOS's simulated annotator uses SAM.

    The predictor embeds an image once: the embedding is reused for every object of a frame (and
    as long as the same image comes back). The current mask enters SAM in one of two ways:

    * ``mask`` — its `mask_logits` are the first ``mask_input`` (none when it is empty), and the
      annotator clicks on its errors;
    * ``fit`` — as the official EVA-VOS code does: SAM is prompted with a click in the middle of
      the current mask and corrective clicks on it (`corrective_click` against the current mask)
      until its mask has an IoU above `FIT_IOU` with it (at most `FIT_ROUNDS` rounds); those
      clicks are not charged but stay in the prompt, with the fitted logits, and the annotator
      clicks on the errors of the fitted mask. If the fit fails, SAM starts from no prompt.

    Args:
        predictor: a SAM image predictor (`frugalseg.autolabel.refine.ImagePredictor`).
        image_size: its model's input size; its low-resolution masks are ``image_size / 4`` a side.
        start: how the current mask enters SAM, ``mask`` or ``fit``.
    """

    name = "sam"

    def __init__(self, predictor: ImagePredictor, image_size: int, *, start: str = "mask") -> None:
        self.start = _checked_start(start)
        self.predictor = predictor
        self.image_size = image_size
        self._image_key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()  # one embedding and prompt at a time: the predictor holds one image
        self._wanted = 0  # how many frames `prepare` was asked for: a later one makes an earlier one moot
        self._wanted_lock = threading.Lock()

    @property
    def settings(self) -> dict[str, Any]:
        """The input size and how the current mask enters SAM."""
        return {"image_size": self.image_size, "start": self.start}

    def prepare(self, image: np.ndarray) -> None:
        """Embed ``image`` now (seconds on a CPU) unless a later frame was asked for while it waited."""
        with self._wanted_lock:
            self._wanted += 1
            ticket = self._wanted
        with self._lock:
            if ticket == self._wanted:
                self._embed(image)

    def _embed(self, image: np.ndarray) -> None:
        """Embed ``image`` unless it is the image embedded last (same shape and bytes)."""
        key = image_key(image)
        if key != self._image_key:
            self.predictor.set_image(np.ascontiguousarray(image))
            self._image_key = key

    def _predict(
        self, clicks: Sequence[Click], logits: np.ndarray | None, *, multimask: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SAM's candidate masks (bool C×H×W), scores (C) and low-res logits (C×s×s) for the prompt."""
        masks, scores, low_res = self.predictor.predict(
            point_coords=np.array([[c.x, c.y] for c in clicks], np.float32).reshape(-1, 2),
            point_labels=np.array([int(c.positive) for c in clicks], np.int32),
            mask_input=logits,
            multimask_output=multimask,
        )
        return np.asarray(masks) > 0.5, np.asarray(scores), np.asarray(low_res)

    def _begin(self, current: np.ndarray) -> tuple[np.ndarray | None, list[Click], np.ndarray]:
        """How SAM starts from ``current``: (``mask_input`` or None, uncharged prompt clicks, mask shown)."""
        current = np.asarray(current, bool)
        if not current.any():
            return None, [], current
        if self.start == "mask":
            return mask_logits(current, self.image_size), [], current
        return self._fit(current)

    def _fit(self, current: np.ndarray) -> tuple[np.ndarray | None, list[Click], np.ndarray]:
        """The EVA-VOS fit of SAM to ``current`` (class docstring); (None, [], current) if it fails."""
        shown = np.zeros_like(current)
        logits: np.ndarray | None = None
        prompt: list[Click] = []
        for _ in range(1 + FIT_ROUNDS):
            click = corrective_click(shown, current)
            if click is None:
                break
            prompt.append(click)
            candidates, _, low_res = self._predict(prompt, logits, multimask=True)
            scores = [region_similarity(c, current) for c in candidates]
            pick = int(np.argmax(scores))
            shown, logits = candidates[pick], low_res[pick][None]
            if scores[pick] > FIT_IOU:
                return logits, prompt, shown
        return None, [], current

    def simulate(
        self,
        image: np.ndarray,
        current: np.ndarray,
        truth: np.ndarray,
        *,
        clicks: int,
        ignore: np.ndarray | None = None,
        known: ObjectPrior | None = None,
    ) -> tuple[np.ndarray, list[CorrectiveClick]]:
        """Corrective clicks one by one, each time SAM's candidate closest to the truth kept (EVA-VOS).

        Each click goes to the largest error of the mask SAM showed last (the current mask, or the
        fitted one, before the first); SAM is prompted with every click so far and the previous best
        low-resolution logits. Returned: the mask of the best IoU with the truth among the current
        one and those SAM showed (the current one on ties), and the clicks made.
        """
        with self._lock:
            truth, current = np.asarray(truth, bool), np.asarray(current, bool)
            self._embed(image)
            logits, prompt, shown = self._begin(current)

            def answer(made: list[CorrectiveClick]) -> np.ndarray:
                nonlocal logits
                candidates, _, low_res = self._predict([*prompt, *made], logits, multimask=True)
                candidates = np.stack([honour_prompt(c, [*prompt, *made]) for c in candidates])
                pick = int(np.argmax([region_similarity(c, truth, ignore) for c in candidates]))
                logits = low_res[pick][None]  # the next prompt goes on from the candidate shown
                return np.asarray(candidates[pick], bool)

            return best_of_corrections(shown, truth, answer, clicks=clicks, ignore=ignore, kept=current)

    def _box(
        self,
        image: np.ndarray,
        box: Box,
        clicks: Sequence[Click] = (),
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """SAM's best-scored mask for the box prompt and the clicks (three candidates for a box alone)."""
        with self._lock:
            self._embed(image)
            candidates, scores, _ = self.predictor.predict(
                point_coords=np.array([[c.x, c.y] for c in clicks], np.float32) if clicks else None,
                point_labels=np.array([int(c.positive) for c in clicks], np.int32) if clicks else None,
                box=np.array(box, np.float32),
                multimask_output=not clicks,
            )
            result: np.ndarray = np.asarray(candidates)[int(np.argmax(scores))] > 0.5
            return result

    def _correct(
        self,
        image: np.ndarray,
        current: np.ndarray,
        clicks: Sequence[Click],
        *,
        known: ObjectPrior | None = None,
    ) -> np.ndarray:
        """SAM's best-scored mask for every click at once, starting from the current mask.

        A prompt of one point asks for three candidates, of several points for one, as SAM's
        documentation advises (several points are not ambiguous); the candidate of the highest
        predicted IoU is kept. With ``start="fit"`` the fit's clicks are in the prompt too.
        """
        with self._lock:
            self._embed(image)
            logits, prompt, _ = self._begin(current)
            points = [*prompt, *clicks]
            candidates, scores, _ = self._predict(points, logits, multimask=len(points) == 1)
            result: np.ndarray = candidates[int(np.argmax(scores))]
            return result


@dataclass(frozen=True)
class SAM2ClickOptions(SAM2Options):
    """SAM 2's options and how the current mask enters it: ``mask`` (as logits) or ``fit`` (EVA-VOS's fit)."""

    start: str = field(
        default="mask", metadata={"choices": ("mask", "fit"), "help": "how the current mask enters SAM"}
    )

    def sam2_options(self) -> SAM2Options:
        """The SAM 2 model's options (all but ``start``)."""
        return SAM2Options(**{spec.name: getattr(self, spec.name) for spec in fields(SAM2Options)})


class SAM2Clicks(SAMClicks):
    """Clicks to masks with SAM 2's image predictor and the user's checkpoint (``sam2``; `SAMClicks`).

    Args:
        options: the SAM 2 model (None: `SAM2Options`'s defaults, which need a checkpoint).
        start: how the current mask enters SAM, ``mask`` (as logits) or ``fit`` (EVA-VOS's fit).
    """

    name = "sam2"
    Options = SAM2ClickOptions

    def __init__(self, options: SAM2Options | None = None, *, start: str = "mask") -> None:
        _checked_start(start)  # before SAM 2 is built
        self.model = load_sam2(
            SAM2Options() if options is None else options, "image", needed_by="the sam2 click model"
        )
        predictor = self.model.predictor
        super().__init__(predictor, int(predictor.model.image_size), start=start)
        self._network = predictor.model

    @classmethod
    def from_options(cls, options: SAM2ClickOptions) -> SAM2Clicks:
        """SAM 2 built from its options, with their ``start``."""
        return cls(options.sam2_options(), start=options.start)

    @property
    def settings(self) -> dict[str, Any]:
        """The SAM 2 config, checkpoint (name and sha256), input size and start."""
        return {**self.model.settings, **super().settings}

    def to(self, device: str | torch.device) -> SAM2Clicks:
        """Move SAM 2 to ``device`` (the image embedded last is embedded again when next used)."""
        self._network.to(device)
        self._image_key = None
        return self


#: The click-to-mask models by name: a new model is its class (with its ``Options``) and its line here.
CLICK_MODELS: dict[str, type[ClickToMask]] = {
    "starcut": StarCutClicks,
    "grabcut": GrabCutClicks,
    "sam2": SAM2Clicks,
}
#: The model of every tool unless one is named: weight-free, and far ahead of GrabCut (issue 44).
DEFAULT_CLICK_MODEL = "starcut"


def get_click_model(name: str = DEFAULT_CLICK_MODEL, **options: Any) -> ClickToMask:
    """The click-to-mask model called ``name`` (`CLICK_MODELS`) built from the fields of its ``Options``.

    ``starcut`` and ``grabcut`` take no options; ``sam2`` takes `SAM2Options` (a checkpoint file is required).

    Raises:
        ConfigError: an unknown name or option (the known ones listed), or ``sam2`` without a checkpoint.
        DataError: a SAM 2 checkpoint that is missing or of another size than ``config``.
    """
    built = build_options(CLICK_MODELS, name, options, option="click_model", noun="click-to-mask model")
    return CLICK_MODELS[name].from_options(built)
