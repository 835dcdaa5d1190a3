"""Annotation types: what annotating a frame with a mask, clicks or a box makes and costs (paper 002).

Types, on one frame, for every object visible in its ground truth:

* ``mask`` — the annotator draws the object's mask: the ground-truth mask, ``vos_mask_seconds``
  (80 s) per object.
* ``clicks`` — up to 3 corrective clicks per object, each at the centre of the largest error region
  of the current mask (`simulated_annotator.corrective_click`), turned into a mask after every click by
  a click-to-mask model (`frugalseg.active.objects.tools.click_models`, a setting of the type): the
  weight-free star-convex graph cut by default (``starcut``; ``grabcut`` before it), or SAM 2 with the
  user's checkpoint, which keeps the candidate closest to the truth, as the simulated annotator of
  EVA-VOS does.
  Cost: ``click_seconds`` (1.5 s) per click made plus ``clicked_frame_seconds`` (1 s) once per frame.
* ``box`` — the page's box drag: a box around each object (its true bounding box grown by `BOX_MARGIN`
  px), the click-to-mask model's mask from the box (`ClickToMask.box`: GrabCut from the rectangle, or
  SAM 2's box prompt), then up to 3 corrective clicks, the best of the masks after each kept (a
  person undoes a click that made it worse). The box replaces the frame's masks: an object the
  propagation carried into a frame that no longer shows it is cleared. Cost: ``box_seconds`` (7 s,
  EVA-VOS's figure) per object, plus its clicks and the frame's overhead as for ``clicks``.

A frame on which no object is visible costs ``clicked_frame_seconds`` (looking, finding nothing)
and yields an empty mask, whichever the type. The model of ``clicks`` and ``box`` is told what a
session tells it (`annotation_priors`): how the frame moves towards its neighbour (`neighbouring_frame`),
and an object's mask on the nearest annotated frame where it is drawn from nothing (`video_priors`).

A real annotator's clicks (`GivenClick`, ``annotate add --clicks``) come all at once and with no
truth to choose between candidates (`annotate_given_clicks`, the same model's ``correct``: GrabCut
may change the mask only near them, SAM 2 keeps its best-scored mask), at the same cost.

The policies that choose a type are in `type_policies`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from frugalseg.active.objects.simulation.simulated_annotator import CorrectiveClick, best_of_corrections
from frugalseg.active.objects.tools.click_models import ClickToMask, get_click_model
from frugalseg.active.objects.tools.grabcut import Box
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.autolabel.boxes import box_of
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.metrics.mask_scores import contour_accuracy, region_similarity

if TYPE_CHECKING:
    from frugalseg.active.objects.state import VideoState

VOID = 255
CLICKS_PER_OBJECT = 3
#: Pixels between an object and the box a person drags around it: of 0, 5 and 10 px, 5 gave the best
#: box + 3 clicks on the development clips' first frames (``benchmarks/results/weightfree_tools.md``).
BOX_MARGIN = 5


@dataclass(frozen=True)
class GivenClick:
    """A person's click on object ``object``: pixel column ``x``, row ``y``, ``positive`` on the object."""

    object: int
    x: int
    y: int
    positive: bool


@dataclass
class AnnotationResult:
    """What annotating one frame produced: the object-id mask, seconds per object, clicks per object."""

    kind: str
    mask: np.ndarray
    seconds: dict[int, float]
    clicks: dict[int, int]

    @property
    def total_seconds(self) -> float:
        """Human seconds of the annotation, all of its parts together."""
        return float(sum(self.seconds.values()))


def visible_objects(truth: np.ndarray) -> list[int]:
    """Object ids with pixels in a ground-truth id map (0 and void left out)."""
    return [int(v) for v in np.unique(truth) if v not in (0, VOID)]


def clicked_objects(truth: np.ndarray, current: np.ndarray) -> list[int]:
    """The objects the ``clicks`` type corrects: those ``truth`` shows and those ``current`` holds (ids)."""
    return sorted(set(visible_objects(truth)) | set(visible_objects(current)))


def annotate_mask(truth: np.ndarray, costs: AnnotationCosts = DEFAULT_COSTS) -> AnnotationResult:
    """The ``mask`` type: the ground-truth ids (void → 0), ``vos_mask_seconds`` per visible object."""
    mask = np.where(truth == VOID, 0, truth).astype(np.uint8)
    objects = visible_objects(truth)
    if not objects:
        return AnnotationResult("mask", mask, {0: costs.clicked_frame_seconds}, {})
    return AnnotationResult("mask", mask, {o: costs.vos_mask_seconds for o in objects}, {})


def annotate_clicks(
    image: np.ndarray,
    current: np.ndarray,
    truth: np.ndarray,
    costs: AnnotationCosts = DEFAULT_COSTS,
    *,
    clicks_per_object: int = CLICKS_PER_OBJECT,
    model: ClickToMask | None = None,
    known: Mapping[int, ObjectPrior] | None = None,
) -> AnnotationResult:
    """The ``clicks`` type on one frame (module docstring): corrective clicks per object, then masks.

    Args:
        image: the frame, H×W×3 uint8 RGB.
        current: its current mask (H×W object ids).
        truth: its ground truth (H×W object ids, 255 void).
        costs: annotation costs.
        clicks_per_object: the most clicks on each object (fewer when its mask becomes exact).
        model: the click-to-mask model (`click_models`); None: the default model.
        known: object id → what the video tells the model of it (`annotation_priors`), or None.
    """
    model = get_click_model() if model is None else model
    known = {} if known is None else known
    void = truth == VOID
    objects = clicked_objects(truth, current)
    mask = np.where(current == VOID, 0, current).astype(np.uint8)
    made: dict[int, int] = {}
    for obj in objects:
        found, clicks = model.simulate(
            image, current == obj, truth == obj, clicks=clicks_per_object, ignore=void, known=known.get(obj)
        )
        mask[(mask == obj) & ~found] = 0
        mask[found] = obj
        made[obj] = len(clicks)
    return AnnotationResult("clicks", mask, _click_seconds(made, costs), made)


def annotate_box(
    image: np.ndarray,
    truth: np.ndarray,
    costs: AnnotationCosts = DEFAULT_COSTS,
    *,
    clicks_per_object: int = CLICKS_PER_OBJECT,
    model: ClickToMask | None = None,
    known: Mapping[int, ObjectPrior] | None = None,
) -> AnnotationResult:
    """The ``box`` type on one frame (module docstring): a box and corrective clicks per visible object.

    Args:
        image: the frame, H×W×3 uint8 RGB.
        truth: its ground truth (H×W object ids, 255 void).
        costs: annotation costs.
        clicks_per_object: the most corrective clicks after each box.
        model: the click-to-mask model turning a box and clicks into a mask; None: the default model.
        known: object id → what the video tells the model of it (`annotation_priors`), or None.
    """
    model = get_click_model() if model is None else model
    known = {} if known is None else known
    void = truth == VOID
    mask = np.zeros(truth.shape, np.uint8)
    objects = visible_objects(truth)
    if not objects:
        return AnnotationResult("box", mask, {0: costs.clicked_frame_seconds}, {})
    made: dict[int, int] = {}
    for obj in objects:
        found, made[obj] = _box_and_clicks(
            image, truth == obj, void, model, clicks_per_object, known.get(obj)
        )
        mask[found] = obj
    seconds = _click_seconds(made, costs)
    return AnnotationResult("box", mask, {o: s + costs.box_seconds for o, s in seconds.items()}, made)


def padded_box(truth: np.ndarray, margin: int = BOX_MARGIN) -> Box:
    """The tight box of ``truth`` (`box_of`; bool H×W, not empty) grown by ``margin`` px, within the frame.

    Corners are included, as `ClickToMask.box` takes them.
    """
    tight = box_of(truth, train_id=1)
    height, width = truth.shape
    return (
        max(tight.x0 - margin, 0),
        max(tight.y0 - margin, 0),
        min(tight.x1 - 1 + margin, width - 1),
        min(tight.y1 - 1 + margin, height - 1),
    )


def _box_and_clicks(
    image: np.ndarray,
    truth: np.ndarray,
    void: np.ndarray,
    model: ClickToMask,
    clicks: int,
    known: ObjectPrior | None,
) -> tuple[np.ndarray, int]:
    """One object's best mask from its box and up to ``clicks`` corrective clicks, and the clicks made."""
    box = padded_box(truth)

    def answer(made: list[CorrectiveClick]) -> np.ndarray:
        return model.box(image, box, made, known=known)

    best, made = best_of_corrections(answer([]), truth, answer, clicks=clicks, ignore=void)
    return best, len(made)


def annotate_frame(
    kind: str,
    image: np.ndarray,
    current: np.ndarray,
    truth: np.ndarray,
    costs: AnnotationCosts = DEFAULT_COSTS,
    *,
    model: ClickToMask | None = None,
    known: Mapping[int, ObjectPrior] | None = None,
) -> AnnotationResult:
    """The simulated annotator's annotation of one frame with the type ``kind`` (`ANNOTATION_TYPES`).

    Args:
        kind: ``mask``, ``clicks`` or ``box``.
        image: the frame, H×W×3 uint8 RGB.
        current: its current mask (H×W object ids; read by ``clicks`` only).
        truth: its ground truth (H×W object ids, 255 void).
        costs: annotation costs.
        model: the click-to-mask model of ``clicks`` and ``box``; None: the default model.
        known: object id → what the video tells the model of it (`annotation_priors`), or None.
    """
    if kind == "mask":
        return annotate_mask(truth, costs)
    if kind == "clicks":
        return annotate_clicks(image, current, truth, costs, model=model, known=known)
    if kind == "box":
        return annotate_box(image, truth, costs, model=model, known=known)
    raise ValueError(f"unknown annotation type {kind!r}; types: {', '.join(ANNOTATION_TYPES)}")


def annotation_priors(
    kind: str,
    state: VideoState | None,
    t: int,
    frames: Sequence[np.ndarray],
    current: np.ndarray,
    truth: np.ndarray,
) -> dict[int, ObjectPrior]:
    """What the video tells the model of each object when the simulated annotator gives frame ``t`` ``kind``.

    As a session tells it (`video_priors`): every object the frame's neighbour (its motion), and its mask
    on the nearest annotated frame where the person starts it from nothing. A box draws every object
    from nothing (as the page's box does); clicks correct ``current``, so only an object it does not show.

    Args:
        kind: the annotation type (``mask`` needs nothing).
        state: the video's loop state (its annotated masks), or None (the motion only).
        t: the frame's index in ``frames``.
        frames: the video's frames (RGB), read only for the frames used.
        current: frame ``t``'s current mask (H×W object ids).
        truth: its ground truth (H×W object ids, 255 void).
    """
    if kind == "mask":
        return {}
    if kind == "clicks":
        shown, objects = current, clicked_objects(truth, current)
    else:
        shown, objects = np.zeros_like(current), visible_objects(truth)
    return video_priors(state, t, shown, objects, frames.__getitem__, neighbouring_frame(frames, t))


def neighbour_index(t: int, num_frames: int) -> int | None:
    """The index of frame ``t``'s neighbour, whose motion the click models see: the one before (after, for 0).

    The loop's simulated annotator counts its loop frames (with a stride, ``stride`` frames apart: at 2
    the propagated DAVIS frames' NoC@90 still falls, 6.99 → 6.75 on two quarters, against 6.70 at 1); a
    session counts every frame of the sequence.

    Args:
        t: the frame's index.
        num_frames: how many frames the video has.

    Returns:
        The neighbour's index, or None for a video of one frame.
    """
    if num_frames < 2:
        return None
    return t - 1 if t > 0 else 1


def neighbouring_frame(frames: Sequence[np.ndarray], t: int) -> np.ndarray | None:
    """Frame ``t``'s neighbour among ``frames`` (`neighbour_index`), or None for a single frame."""
    index = neighbour_index(t, len(frames))
    return None if index is None else frames[index]


def video_priors(
    state: VideoState | None,
    t: int,
    current: np.ndarray,
    objects: Sequence[int],
    image: Callable[[int], np.ndarray],
    neighbour: np.ndarray | None = None,
) -> dict[int, ObjectPrior]:
    """What the video knows of each of ``objects`` on frame ``t`` (`graph_cut.ObjectPrior`).

    Every object gets the neighbouring frame: how each pixel moves towards it tells an object from a
    background of its colours. A person starting an object on a frame has drawn it on another:
    its mask on the nearest annotated frame, with that frame's image, teaches the click model its
    colours and its surroundings'. An object the frame already shows has its own colours there, and
    none without an annotated frame that shows it.

    Args:
        state: the video's loop state (None: nothing annotated yet, no colours).
        t: the frame's loop index.
        current: the frame's current mask (H×W object ids).
        objects: the object ids the person clicks on.
        image: loop index → that frame's image (H×W×3 uint8 RGB), read only for the frames used.
        neighbour: the frame next to ``t`` (`annotation_types.neighbour_index`); or None.
    """
    priors: dict[int, ObjectPrior] = {}
    for obj in objects:
        examples: list[tuple[np.ndarray, np.ndarray]] = []
        if state is not None and not (current == obj).any():
            shown = [k for k, mask in state.annotated.items() if k != t and (mask == obj).any()]
            if shown:
                nearest = min(shown, key=lambda k: (abs(k - t), k))
                examples.append((image(nearest), state.annotated[nearest] == obj))
        if examples or neighbour is not None:
            priors[obj] = ObjectPrior(examples=examples, neighbour=neighbour)
    return priors


def _click_seconds(made: dict[int, int], costs: AnnotationCosts) -> dict[int, float]:
    """Seconds per object for ``made`` clicks per object.

    The per-frame overhead (finding the objects) is booked on the first object, or on 0 if none.
    """
    seconds = {obj: costs.click_seconds * n for obj, n in made.items()}
    first = min(seconds, default=0)
    seconds[first] = seconds.get(first, 0.0) + costs.clicked_frame_seconds
    return seconds


def annotate_given_clicks(
    image: np.ndarray,
    current: np.ndarray,
    clicks: Sequence[GivenClick],
    costs: AnnotationCosts = DEFAULT_COSTS,
    *,
    model: ClickToMask | None = None,
    known: Mapping[int, ObjectPrior] | None = None,
) -> AnnotationResult:
    """The ``clicks`` type from a person's clicks: each clicked object's mask corrected by ``model``.

    Each clicked object's current mask is corrected by the model's ``correct``, with no truth to
    choose between candidates (the default ``starcut``: a click claims the region it is in, as far
    as its edges; ``grabcut`` changes the mask only near the clicks). The objects' masks are laid in
    the order of their last clicks, so that a later click takes back what an earlier click of another
    object took. Objects not clicked keep their current mask (255 becomes 0); the cost is that of
    `annotate_clicks`.

    Args:
        image: the frame, H×W×3 uint8 RGB.
        current: its current mask (H×W object ids).
        clicks: the person's clicks, on any objects.
        costs: annotation costs.
        model: the click-to-mask model (`click_models`); None: the default model.
        known: object id → what the video knows of it (`video_priors`), for the model.
    """
    model = get_click_model() if model is None else model
    known = {} if known is None else known
    mask = np.where(current == VOID, 0, current).astype(np.uint8)
    made: dict[int, int] = {}
    last = {c.object: i for i, c in enumerate(clicks)}
    for obj in sorted(last, key=last.__getitem__):
        own = [c for c in clicks if c.object == obj]
        found = model.correct(image, current == obj, own, known=known.get(obj))
        mask[(mask == obj) & ~found] = 0
        mask[found] = obj
        made[obj] = len(own)
    return AnnotationResult("clicks", mask, _click_seconds(made, costs), made)


def frame_quality(mask: np.ndarray, truth: np.ndarray, objects: Sequence[int]) -> tuple[float, float]:
    """(J, F) of one frame, each the mean over ``objects`` (void excluded); (1, 1) with no object."""
    if not objects:
        return 1.0, 1.0
    void = truth == VOID
    j = [region_similarity(mask == o, truth == o, void) for o in objects]
    f = [contour_accuracy(mask == o, truth == o, void) for o in objects]
    return float(np.mean(j)), float(np.mean(f))


ANNOTATION_TYPES = ("mask", "clicks", "box")
