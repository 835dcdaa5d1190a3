"""The weight-free core of the click models: one object's mask from clicks, a box and what is known of it.

An s–t graph cut (Boykov & Jolly 2001) on the image shrunk to at most `WORK_PIXELS` pixels, solved by
Boykov & Kolmogorov's maximum flow (`max_flow`), with:

* colour models as GrabCut's (Rother et al. 2004), here smoothed Lab histograms (`appearance`) re-learnt
  from the cut `ROUNDS` times; examples of the object from other frames (`ObjectPrior`) join them; from an
  empty mask and in a box, texture histograms too (local contrast and gradient direction, `TEXTURE_WEIGHT`);
* contrast-sensitive edges between 8-neighbours, ``LAMBDA`` · exp(−β‖ΔLab‖²) / distance;
* clicks as hard constraints, and each click's label spread along the image's geodesic distance
  (a path's summed gradient): the click claims the region it is in, as far as its edges, not a disc;
* geodesic star convexity (Gulshan et al. 2010): every object pixel's parent on the geodesic
  shortest-path forest from the positive clicks (and the prior mask) is object too, so one positive
  click starts a whole, connected object and nothing far away that merely shares its colours;
* a prior mask (a propagated mask, or the mask before the clicks), weighed by its confidence and
  released around each click as far as the click's region reaches; a correction changes only the
  connected parts of the change that hold a click, and a part larger than its clicks' distances to the
  prior's boundary explain keeps to a band along it (`bounded_change`: no blob beside a thin part), and
  a part whose positive click's own colour is not among its colours is dropped (`parts_unlike_their_clicks`:
  a click on a line thinner than a working pixel does not take the sky around it);
* a box: every pixel outside it is background (hard), colours outside learn the background; a negative
  click reaches as far as its depth in the box's first guess (`NEGATIVE_REACH_PER_DEPTH`): it takes the
  wrong part it is in, unless the cut then loses most of the guess (`BOX_KEEP`; cut again at the usual reach);
  a positive click reaches as far as its depth in what the guess left out (`POSITIVE_REACH_PER_DEPTH`);
  each click changes the box's answer to the clicks before it, beside itself (`BOX_CLICK_NEAR_PER_DEPTH`),
  and away from itself only in parts as large as a correction's budget (`the_clicks_part`);
* motion, where the session gives the neighbouring frame (`ObjectPrior.neighbour`): each pixel's optical
  flow towards it, binned, in histograms learnt from the cut as the colours are (`appearance`); and on a
  correction, a negative click's part of the prior that moves with the background is released
  (`dragged_parts`: background the propagation dragged along);
* clicks from an empty mask, each answer checked against the answer to the clicks before it: one that
  strays further than the last click explains (`strays`) is cut again, its colours learnt from that answer;
  a positive next click reaches as far as its depth in what that answer left out allows
  (`NEXT_POSITIVE_REACH_PER_DEPTH`): on a large object the rest of it had taught the background its colours;
* clicks from an empty mask, the answer to the last click bounded against the answer before it as a
  correction's is against its prior (`bounded_change`, `NEXT_CLICK_PER_DEPTH`), and only adding to it (a
  positive click) or only removing from it (a negative one): on parkour a negative click had added twice the
  mask's area elsewhere (`interactive_dev` clicks: NoC@90 8.68 → 8.45); a part of that change away from the
  click only as large as a correction's budget (`the_clicks_part`, `CHANGE_PER_DEPTH`): a click on parkour's
  missed arm had grown the grass under his feet;
* clicks from an empty mask with a negative click among them, a soft geodesic Voronoi of the clicks: a
  pixel geodesically nearer a negative click than every positive one costs more as object
  (`NEARER_NEGATIVE_COST`), so a spill of the object's colours beyond a negative click stays out.

Zoom-in (as RITM's; `zoom`): a correction is cut in a crop around the mask it corrects and the clicks, a box's
clicks in a crop around the box, and from an empty mask each click after the first in a crop around the answer
before it and the clicks, at the finer working scale the smaller image allows, while that crop is small: small
objects get more working pixels (a 6,000-px car of a 2048×1024 Cityscapes frame is 116 working pixels whole).
A first click, whose object's size nothing tells, is also cut in smaller and smaller crops around it while it
lies near the edge of the answer kept (`zoom.first_click`: a flood from a small object).

Large frames (`large_frames`): a frame over `large_frames.FULL_PIXELS` (2048×1080's) is cut shrunk to that
many pixels and the answer brought back where it changed the mask it changes: at 3840×2160 the full-size
passes below had made an answer take up to 1 s.

Coarse to fine: the mask is brought back to full size bilinearly where the cut changed the prior (the
prior keeps its full-size pixels elsewhere), then its boundary there is cut again at full size within
`FINE_BAND` pixels of it, with the coarse cut's colour models and full-size contrast-sensitive edges.
The click pixels themselves are set last (`honour_prompt`), so a positive click's pixel is always in the
mask (inside the box, with one) and a negative click's never.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import cv2
import numpy as np
from skimage.graph import MCP_Geometric

from frugalseg.active.objects.tools.appearance import (
    colour_bins,
    example_models,
    histogram,
    motion_bins,
    motion_costs,
    texture_bins,
    texture_costs,
    work_flow,
)
from frugalseg.active.objects.tools.change_bounds import (
    answer_before,
    bounded_change,
    clicked_parts,
    one_way,
    parts_unlike_their_clicks,
    strays,
    the_clicks_part,
)
from frugalseg.active.objects.tools.dragged_parts import release_dragged
from frugalseg.active.objects.tools.grabcut import honour_prompt
from frugalseg.active.objects.tools.large_frames import shrunk, shrunk_size
from frugalseg.active.objects.tools.max_flow import HARD, SCALE, MinCuts, contrast_weights, source_side
from frugalseg.active.objects.tools.zoom import first_click, zoom_window, zoomed
from frugalseg.data.files import array_sha1

#: The cut runs on the image shrunk to at most this many pixels (speed; 0.3 s a call at 854×480).
WORK_PIXELS = 40_000
#: Motion's costs (`appearance.motion_costs`) weigh this against the colours' (at 1, a flow smoothed over an
#: object's edge made a halo of its background object: `benchmarks/results/interactive.md`).
MOTION_WEIGHT = 0.5
#: Clicks from an empty mask and a box's: texture's costs (`appearance.texture_costs`) weigh this against the
#: colours' (`interactive_dev` clicks NoC@90 7.97 → 7.88 and a box's 5.90 → 5.79, lower on each quarter; the
#: DAVIS frames 0/10/20/30 12.72 → 12.25; at 1.5 or 2 worse; on corrections 0.5 lost frames:
#: `benchmarks/results/interactive.md`, stop 65).
TEXTURE_WEIGHT = 1.0
#: The weight of the contrast-sensitive edges (in nats of the colour term).
LAMBDA = 15.0
#: A geodesic step costs ``FLAT`` plus the local gradient over its image mean.
FLAT = 0.05
#: A click's own label weighs ``CLICK_WEIGHT`` nats on pixels geodesically near it, exp(−d / ``CLICK_REACH``).
CLICK_WEIGHT = 8.0
CLICK_REACH = 5.0
#: A click on a prior mask reaches this far instead: it corrects a region the prior got wrong, often large.
CORRECTION_REACH = 10.0
#: A prior mask weighs this many nats where its confidence is 1 and no click is near.
PRIOR_WEIGHT = 5.0
#: The cut learns its colour models from its own answer this many times (GrabCut's iterations).
ROUNDS = 2
#: A box's background colours are learnt in a ring this share of its longer side wide around it.
BOX_RING = 0.15
#: The full-size pass redraws the coarse boundary within this many pixels of it, its edges weighing this.
FINE_BAND = 4
FINE_LAMBDA = 30.0
#: A next click's round that strays from the answer before it (`strays`) is not refined: the cut starts
#: again from that answer and learns its colour models this many times (it is already a cut: one round is
#: as good as two on `interactive_dev`, at half the cost). Checked after each round, not after the last:
#: a straying cut costs the most (camel's, 0.13 s against 0.04), and the DAVIS first frames' answers over
#: 0.3 s went 17 % → 1 % with NoC@90 level (`benchmarks/results/interactive.md`, stop 68).
RESTART_ROUNDS = 1
#: Clicks from an empty mask with a negative click: a pixel geodesically nearer a negative click than every
#: positive one costs up to `NEARER_NEGATIVE_COST` nats more as object, the full cost once the negative click
#: is `NEARER_NEGATIVE_SPAN` nearer (the person's clicks split the image as a soft geodesic Voronoi: a spill
#: of the object's colours beyond a negative click stays out).
NEARER_NEGATIVE_COST = 2.0
NEARER_NEGATIVE_SPAN = 10.0
#: A correction's change holds at most `CHANGE_PER_DEPTH` · Σ d² pixels in each connected part, d the
#: distance from each click in it to the prior's other label (its depth); a larger part is kept only within
#: `change_bounds.BAND_PER_DEPTH` · d of the prior's boundary (`bounded_change`). A click beside the boundary
#: moves it: on kite-surf's 2-px lines a positive click 1.4 px from the prior grew 12,000 pixels of water
#: (IoU 0.71 to 0.37); of the first clicks on 203 propagated DAVIS frames, the 27 that changed more than 50 d²
#: made the mask worse (24) or left it level (3), none better (`benchmarks/results/interactive.md`).
CHANGE_PER_DEPTH = 20.0
#: Clicks from an empty mask: the answer to a click changes the answer before it as a correction does, with
#: `NEXT_CLICK_PER_DEPTH` · d² pixels for the click's part (spoon01's second click, 2.2 px beside the first
#: answer, had grown it to 5 times the spoon; `benchmarks/results/interactive.md`, stop 57).
NEXT_CLICK_PER_DEPTH = 50.0
#: Clicks from an empty mask: a next positive click reaches `NEXT_POSITIVE_REACH_PER_DEPTH` times its
#: depth in what the answer before it left out (its distance to that answer, working pixels), at least
#: `CLICK_REACH`: on a large object of many colours the rest of it had taught the background its colours,
#: and a click 105 px from truck01's first answer took 8,328 of its 137,480 px (`interactive_dev` NoC@85 /
#: NoC@90 5.73 / 7.84 → 5.65 / 7.72; on objects over 30 % of the image 5.42 / 6.96 → 4.75 / 6.37; at
#: 0.4–0.5 the DAVIS frames lost; `benchmarks/results/interactive.md`, stop 66).
NEXT_POSITIVE_REACH_PER_DEPTH = 0.3
#: A box: a negative click reaches `NEGATIVE_REACH_PER_DEPTH` times its depth in the box's first guess (its
#: distance to the guess's background, working pixels), at least `CORRECTION_REACH`: at the usual reach, a
#: click deep in the stone and water that blackswan's box had filled changed nothing (IoU 0.51 → 0.51). A cut
#: keeping less than `BOX_KEEP` of the guess is made again at the usual reach (a click in the stone beside a
#: bus took the bus: 0.65 → 0.16; `benchmarks/results/interactive.md`, stop 58).
NEGATIVE_REACH_PER_DEPTH = 1.0
BOX_KEEP = 0.4
#: A box: a positive click reaches `POSITIVE_REACH_PER_DEPTH` times its depth in the part of the box the first
#: guess left out, at least `CORRECTION_REACH`: at the usual reach, a click 83 px deep in the 74,399 px of
#: truck01 that GrabCut had left out took 353 of them (their colours learnt as background inside the box).
#: `interactive_dev` box NoC@85 / NoC@90 3.66 / 6.13 → 3.49 / 5.99, the DAVIS boxes unchanged; at 2, 3.41 /
#: 5.82 but the DAVIS boxes lose (`benchmarks/results/interactive.md`, stop 61).
POSITIVE_REACH_PER_DEPTH = 1.0
#: A box's click changes the answer to the box and the clicks before it (as a click from an empty mask does,
#: `NEXT_CLICK_PER_DEPTH`), a part larger than its budget only within `BOX_CLICK_NEAR_PER_DEPTH` · d of the
#: click: each answer from the box's guess and all the clicks at once had let a click 5 px inside a mask at
#: IoU 0.86–0.89 empty it (41 of 6,400 `interactive_dev` box clicks lost more than 0.3 IoU, 20 after;
#: NoC@90 on all 320 6.36 → 6.13, `benchmarks/results/interactive.md`, stop 61).
BOX_CLICK_NEAR_PER_DEPTH = 3.0
#: The constants a click model records in its settings (with the other tool modules' `SETTINGS`).
SETTINGS = (
    "WORK_PIXELS LAMBDA FLAT CLICK_WEIGHT CLICK_REACH "
    "CORRECTION_REACH PRIOR_WEIGHT ROUNDS BOX_RING FINE_BAND FINE_LAMBDA MOTION_WEIGHT TEXTURE_WEIGHT "
    "RESTART_ROUNDS "
    "NEARER_NEGATIVE_COST NEARER_NEGATIVE_SPAN CHANGE_PER_DEPTH NEXT_CLICK_PER_DEPTH "
    "NEXT_POSITIVE_REACH_PER_DEPTH "
    "NEGATIVE_REACH_PER_DEPTH BOX_KEEP POSITIVE_REACH_PER_DEPTH BOX_CLICK_NEAR_PER_DEPTH"
).split()


@dataclass(frozen=True)
class Point:
    """A click at pixel column ``x``, row ``y``; ``positive`` on the object."""

    x: int
    y: int
    positive: bool


@dataclass(frozen=True)
class ObjectPrior:
    """What a session already knows of the object, to help its next box or clicks on another frame.

    Attributes:
        examples: (image H×W×3 uint8 RGB, bool mask H×W) of the object on frames a person annotated
            (or confidently propagated pixels): their colours join the object's and the background's models.
        confidence: how sure the prior mask is, per pixel in [0, 1] (H×W float), or None (sure).
        neighbour: the neighbouring frame of the video (H×W×3 uint8 RGB), whose motion the cut sees
            (`motion_bins`: it tells the object from a background of its colours); or None.
    """

    examples: Sequence[tuple[np.ndarray, np.ndarray]] = ()
    confidence: np.ndarray | None = None
    neighbour: np.ndarray | None = None

    def reframed(self, frame: Callable[[np.ndarray], np.ndarray]) -> ObjectPrior:
        """This prior for a crop or resize of its frame: ``frame`` applied to the neighbour and confidence."""
        neighbour, confidence = self.neighbour, self.confidence
        return replace(
            self,
            neighbour=None if neighbour is None else frame(neighbour),
            confidence=None if confidence is None else frame(confidence),
        )


@dataclass(frozen=True)
class ImageFeatures:
    """What a cut needs of one image, computed once per image at the working scale."""

    scale: float
    shape: tuple[int, int]
    bins: np.ndarray  # each working pixel's colour bin (H·W int)
    texture: np.ndarray  # each working pixel's texture bin (H·W int)
    cost: np.ndarray  # the geodesic step cost (H×W float)
    edges: tuple[np.ndarray, np.ndarray]  # the pairwise terms: each 8-neighbour pair and its capacity
    #: Geodesic distances from the deep clicks asked for so far (`_deep_spread`), by (row, column).
    from_click: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, compare=False, repr=False)


def image_key(image: np.ndarray) -> tuple[object, ...]:
    """What tells an image from another (shape, type, a hash of its bytes): the key of per-image caches."""
    data = np.ascontiguousarray(image)
    return (data.shape, data.dtype.str, array_sha1(data))


def image_features(image: np.ndarray) -> ImageFeatures:
    """The working-scale colour bins, geodesic costs and contrast-sensitive edges of ``image`` (RGB)."""
    height, width = image.shape[:2]
    scale = min(1.0, float(np.sqrt(WORK_PIXELS / (height * width))))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.ascontiguousarray(image)
    if scale < 1:
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2LAB).astype(np.float32)
    smooth = cv2.GaussianBlur(lab, (0, 0), 1.0)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    gradient = np.sqrt((gx**2 + gy**2).sum(axis=2))
    cost = FLAT + gradient / max(float(gradient.mean()), 1e-6)
    return ImageFeatures(scale, lab.shape[:2], colour_bins(small), texture_bins(small), cost, _edges(lab))


def _edges(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contrast-sensitive 8-neighbour edges of a Lab image: each pair (2×N flat indices), integer capacity."""
    weights = contrast_weights(lab, LAMBDA)
    pairs = np.stack([np.concatenate([a for a, _, _ in weights]), np.concatenate([b for _, b, _ in weights])])
    capacity = np.maximum(1, np.round(np.concatenate([w for _, _, w in weights]))).astype(np.int64)
    return pairs, capacity


def geodesic(features: ImageFeatures, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic distance from ``seeds`` (bool, working scale) and each pixel's parent (flat; −1 at seeds).

    The search starts from the seeds' edge alone (those with an 8-neighbour that is no seed): every path
    out of the seeds leaves through it, and scikit-image's search pays for each start (a box's prior of
    35,000 working pixels took 0.12–0.4 s, its edge 0.01 s).
    """
    seeds = np.asarray(seeds, bool)
    inner = cv2.erode(seeds.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    starts = np.argwhere(seeds & ~inner.astype(bool))
    if not starts.size:  # every pixel a seed
        return np.zeros(seeds.shape), np.full(seeds.size, -1)
    mcp = MCP_Geometric(features.cost, fully_connected=True)
    distance, trace = mcp.find_costs(starts)
    return np.where(seeds, 0.0, distance), parents(np.where(seeds, -1, trace), np.asarray(mcp.offsets))


def parents(trace: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each pixel's parent (flat index; −1 where ``trace`` is −1) from `MCP_Geometric`'s traceback.

    Args:
        trace: `find_costs`' traceback (H×W): the index in ``offsets`` of each pixel's step from its parent.
        offsets: the search's steps (`MCP.offsets`, K×2 rows and columns).
    """
    height, width = trace.shape
    rows, cols = np.mgrid[:height, :width]
    step = offsets[np.maximum(trace, 0)]
    parent = (rows - step[..., 0]) * width + (cols - step[..., 1])
    parent[trace < 0] = -1
    result: np.ndarray = parent.ravel()
    return result


def _spread(
    features: ImageFeatures, seeds: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """How near each pixel is to ``seeds``, exp(−geodesic / ``reach``); the geodesic; each pixel's parent.

    Zero, infinity and None without seeds.
    """
    if not seeds.any():
        return np.zeros(features.shape, np.float32), np.full(features.shape, np.inf), None
    distance, parent = geodesic(features, seeds)
    near: np.ndarray = np.exp(-distance / reach).astype(np.float32)
    return near, distance, parent


def _deep_spread(
    features: ImageFeatures, clicks: Sequence[Point], part: np.ndarray, reach: float, per_depth: float
) -> tuple[np.ndarray, np.ndarray]:
    """`_spread` of ``clicks`` (one sign), each reaching ``per_depth`` × its depth in ``part``, ≥ ``reach``.

    ``part`` is where a box's first guess is wrong if the clicks are right (bool, working scale): its object
    for negative clicks, what it leaves out of the box for positive ones.
    """
    reaches = _deep_reaches(clicks, part, reach, per_depth)
    shallow = np.zeros(features.shape, bool)
    for click, own_reach in zip(clicks, reaches, strict=True):
        shallow[click.y, click.x] |= own_reach == reach
    near, distance, _ = _spread(features, shallow, reach)  # the usual reach: one pass for all
    for click, own_reach in zip(clicks, reaches, strict=True):
        if own_reach > reach:
            from_click = _from_click(features, click)
            near = np.maximum(near, np.exp(-from_click / own_reach).astype(np.float32))
            distance = np.minimum(distance, from_click)
    return near, distance


def _deep_reaches(clicks: Sequence[Point], part: np.ndarray, reach: float, per_depth: float) -> list[float]:
    """Each click's reach: ``per_depth`` × its depth in ``part`` (bool, working scale), at least ``reach``."""
    depth = cv2.distanceTransform(part.astype(np.uint8), cv2.DIST_L2, 5)
    return [max(reach, per_depth * float(depth[click.y, click.x])) for click in clicks]


def _from_click(features: ImageFeatures, click: Point) -> np.ndarray:
    """The geodesic distance from one click (working scale), kept in ``features`` for the clicks to come."""
    from_click = features.from_click.get((click.y, click.x))
    if from_click is None:  # the person's next click on the image asks for the same clicks again
        seed = np.zeros(features.shape, bool)
        seed[click.y, click.x] = True
        from_click = features.from_click[click.y, click.x] = geodesic(features, seed)[0]
    return from_click


def _min_cuts(features: ImageFeatures, parent: np.ndarray | None) -> MinCuts:
    """The graph of one `cut`'s rounds: contrast edges, and star convexity by ``parent`` (flat, −1: none)."""
    pairs, capacity = features.edges
    parts = [(pairs[0], pairs[1], capacity, capacity)]
    if parent is not None:  # an uncuttable arc from each child to its parent
        child = np.flatnonzero(parent >= 0)
        parts.append(
            (child, parent[child], np.full(child.size, HARD, np.int64), np.zeros(child.size, np.int64))
        )
    return MinCuts(features.shape[0] * features.shape[1], parts)


def _min_cut(cuts: MinCuts, object_cost: np.ndarray, background_cost: np.ndarray) -> np.ndarray:
    """The pixels on the object's side of the minimum cut of ``cuts``' graph (bool, working scale).

    ``object_cost`` is what labelling a pixel object costs (nats), ``background_cost`` background.
    """
    margin = np.minimum(object_cost, background_cost)
    side = cuts.source_side(
        np.round(SCALE * (background_cost - margin)).ravel(), np.round(SCALE * (object_cost - margin)).ravel()
    )
    result: np.ndarray = side.reshape(object_cost.shape)
    return result


def cut(
    features: ImageFeatures,
    clicks: Sequence[Point],
    *,
    prior: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    inside: np.ndarray | None = None,
    examples: tuple[np.ndarray, np.ndarray] | None = None,
    motion: np.ndarray | None = None,
    previous: np.ndarray | None = None,
    deep_clicks: bool = False,
    texture: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The object's mask at the working scale (bool) from clicks in working pixels and the priors.

    Returns the mask and the colour models (object, background) learnt from it.

    Args:
        features: the image's `image_features`.
        clicks: the clicks, in working-scale pixels.
        prior: the prior mask (float in [0, 1], working scale), or None.
        confidence: the prior's confidence (float in [0, 1], working scale), or None (sure).
        inside: the pixels that may be object (bool, working scale; a box), or None (all).
        examples: colour histograms (object, background) learnt on other frames, or None.
        motion: each working pixel's motion bin (`motion_bins`, flat), whose histograms join the
            colours' costs; or None.
        previous: without a prior, the answer to all the clicks but the last (float in [0, 1], working
            scale): a positive click outside it reaches `NEXT_POSITIVE_REACH_PER_DEPTH` of its distance to
            it, and a round whose cut strays from it (`strays`; checked after each round, so a straying
            first round is not refined) is replaced by `RESTART_ROUNDS` rounds that learn the colour models
            again, first from it beside the positive clicks' regions; or None.
        deep_clicks: a negative click reaches as far as its depth in ``prior``, a positive one as far as its
            depth in what ``prior`` leaves out (inside the box), as on a box's first guess (`_deep_spread`).
        texture: whether texture histograms (`ImageFeatures.texture`), learnt as the colours', join them.
    """
    height, width = features.shape
    object_seed = np.zeros((height, width), bool)
    background_seed = np.zeros((height, width), bool)
    for click in clicks:
        (object_seed if click.positive else background_seed)[click.y, click.x] = True
    reach = CLICK_REACH if prior is None else CORRECTION_REACH
    if deep_clicks and prior is not None:  # the parents come from the prior and the clicks below
        left_out = (prior < 0.5) if inside is None else (prior < 0.5) & inside
        positives, negatives = ([c for c in clicks if c.positive == sign] for sign in (True, False))
        spread_object, positive_distance = _deep_spread(
            features, positives, left_out, reach, POSITIVE_REACH_PER_DEPTH
        )
        spread_background, negative_distance = _deep_spread(
            features, negatives, prior >= 0.5, reach, NEGATIVE_REACH_PER_DEPTH
        )
        parent = None
    else:
        spread_object, positive_distance, parent = _spread(features, object_seed, reach)
        spread_background, negative_distance, _ = _spread(features, background_seed, reach)
    from_empty = prior is None and inside is None  # clicks alone bound the object
    if from_empty and previous is not None:  # a next positive click reaches its depth in what was left out
        positives = [c for c in clicks if c.positive]
        left_out = previous < 0.5
        for click, own_reach in zip(
            positives, _deep_reaches(positives, left_out, reach, NEXT_POSITIVE_REACH_PER_DEPTH), strict=True
        ):
            if own_reach > reach:
                near = np.exp(-_from_click(features, click) / own_reach).astype(np.float32)
                spread_object = np.maximum(spread_object, near)
    release = np.maximum(spread_object, spread_background)
    if prior is not None and object_seed.any():
        parent = geodesic(features, object_seed | (prior >= 0.5))[1]
    allowed = np.ones((height, width), bool) if inside is None else inside
    fixed_object_cost = CLICK_WEIGHT * spread_background
    fixed_background_cost = CLICK_WEIGHT * spread_object
    if prior is not None:
        trust = PRIOR_WEIGHT * (1.0 - release) * (1.0 if confidence is None else confidence)
        fixed_object_cost = fixed_object_cost + trust * (1.0 - prior)
        fixed_background_cost = fixed_background_cost + trust * prior
    if from_empty and object_seed.any() and background_seed.any():
        nearer = np.clip((positive_distance - negative_distance) / NEARER_NEGATIVE_SPAN, 0.0, 1.0)
        fixed_object_cost = fixed_object_cost + NEARER_NEGATIVE_COST * nearer
    fixed_object_cost = np.where(allowed & ~background_seed, fixed_object_cost, HARD / SCALE)
    fixed_background_cost = np.where(object_seed, HARD / SCALE, fixed_background_cost)
    around = _background_samples(allowed).ravel()

    def weighted(belief: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's weight (flat) in the object's models and in the background's."""
        weights = belief.ravel()
        return weights, (1.0 - weights) * around + spread_background.ravel()

    def models(weights: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The colour histograms (object, background) from `weighted`'s weights, with the examples'."""
        object_weights, background_weights = weights
        object_model = histogram(features.bins, object_weights)
        background_model = histogram(features.bins, background_weights)
        if examples is None:
            return object_model, background_model
        return 0.5 * (object_model + examples[0]), 0.5 * (background_model + examples[1])

    def initial(first: np.ndarray | None) -> np.ndarray:
        return _initial_belief(object_seed, first, allowed, spread_object) * (1.0 - spread_background)

    def rounds(belief: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(count):
            mask = cut_once(belief)
            belief = np.where(mask, 1.0, 0.0).astype(np.float32)
        return mask, belief

    def cut_once(belief: np.ndarray) -> np.ndarray:
        weights = weighted(belief)
        object_model, background_model = models(weights)
        object_cost = -np.log(object_model[features.bins]).reshape(height, width)
        background_cost = -np.log(background_model[features.bins]).reshape(height, width)
        if texture:
            textured_object, textured_background = texture_costs(features.texture, *weights)
            object_cost = object_cost + TEXTURE_WEIGHT * textured_object.reshape(height, width)
            background_cost = background_cost + TEXTURE_WEIGHT * textured_background.reshape(height, width)
        if motion is not None:
            moving_object, moving_background = motion_costs(motion, belief)
            object_cost = object_cost + MOTION_WEIGHT * moving_object.reshape(height, width)
            background_cost = background_cost + MOTION_WEIGHT * moving_background.reshape(height, width)
        return _min_cut(cuts, object_cost + fixed_object_cost, background_cost + fixed_background_cost)

    cuts = _min_cuts(features, parent)  # each round's cut starts from the flow of the one before
    before = previous if from_empty and clicks else None  # the answer a round may stray from
    belief = initial(prior)
    for _ in range(ROUNDS):
        mask, belief = rounds(belief, 1)
        if before is not None and strays(mask, before >= 0.5, positive=clicks[-1].positive):
            mask, belief = rounds(initial(before), RESTART_ROUNDS)  # not refined: cut again from ``before``
            break
    return mask, models(weighted(belief))


def _background_samples(allowed: np.ndarray) -> np.ndarray:
    """Where the background's colours are learnt (float): everywhere, or with a box, a ring around it.

    The ring is `BOX_RING` of the box's side wide, as GrabCut's margin: far parts of the image may
    show other objects of the same kind, which would teach the background the object's colours.
    """
    if allowed.all():
        return np.ones(allowed.shape, np.float32)
    rows, cols = np.nonzero(allowed)
    side = max(int(rows.max() - rows.min()), int(cols.max() - cols.min())) + 1
    width = max(3, round(BOX_RING * side))
    grown = cv2.dilate(allowed.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8))
    result: np.ndarray = (grown > 0).astype(np.float32)
    return result


def _initial_belief(
    object_seed: np.ndarray,
    prior: np.ndarray | None,
    allowed: np.ndarray,
    spread_object: np.ndarray,
) -> np.ndarray:
    """How much each pixel is object before the first cut: the prior (or previous answer), box, clicks."""
    if prior is not None and prior.any():
        belief = np.maximum(prior.astype(np.float32), spread_object)
    elif object_seed.any():
        belief = spread_object
    else:
        belief = allowed.astype(np.float32)
    result: np.ndarray = np.where(allowed, belief, 0.0).astype(np.float32)
    return result


def _prior_changes(
    image: np.ndarray,
    found: np.ndarray,
    small_prior: np.ndarray,
    full: np.ndarray,
    prior: np.ndarray,
    clicks: Sequence[Point],
    small_clicks: Sequence[Point],
    box: tuple[int, int, int, int] | None,
) -> np.ndarray:
    """Where the cut may change the prior (bool H×W): where it did, beside its changed pixels.

    A box's own first guess may be redrawn anywhere. A correction of a given mask changes only the parts of
    the change that hold a click (`clicked_parts`), within what the clicks' depths explain
    (`bounded_change`), and not a part whose positive click's colour is not among its own
    (`parts_unlike_their_clicks`).

    Args:
        image: the frame, H×W×3 uint8 RGB.
        found: the cut (bool, working scale).
        small_prior: the prior at the working scale (bool).
        full: the cut brought to full size (bool H×W).
        prior: the prior (bool H×W).
        clicks: the clicks, in full-size pixels.
        small_clicks: the clicks at the working scale.
        box: the box, or None.
    """
    height, width = full.shape
    changed = (found != small_prior).astype(np.uint8)
    if box is None:
        changed = clicked_parts(changed, small_clicks)
    changed = cv2.dilate(changed, np.ones((3, 3), np.uint8))
    region: np.ndarray = cv2.resize(changed, (width, height), interpolation=cv2.INTER_NEAREST) > 0
    if box is None:
        region = bounded_change(region, full, prior, clicks, per_depth=CHANGE_PER_DEPTH)
        region = parts_unlike_their_clicks(image, region, full, prior, clicks)
    return region


def _last_click_changes(
    full: np.ndarray, last: np.ndarray, click: Point, box: tuple[int, int, int, int] | None
) -> np.ndarray:
    """Where the last ``click`` may change ``last``, the answer to the clicks before it (bool H×W).

    As far as its depth explains (`bounded_change`, `NEXT_CLICK_PER_DEPTH`; a box's click also beside
    itself, `BOX_CLICK_NEAR_PER_DEPTH`), and away from its own part only in parts as large as a
    correction's budget (`the_clicks_part`).
    """
    near = None if box is None else BOX_CLICK_NEAR_PER_DEPTH
    kept = bounded_change(
        np.ones_like(full), full, last, [click], per_depth=NEXT_CLICK_PER_DEPTH, near_per_depth=near
    )
    kept &= the_clicks_part(np.where(kept, full, last), last, click, per_depth=CHANGE_PER_DEPTH)
    return kept


def segment(
    image: np.ndarray,
    clicks: Sequence[Point],
    *,
    features: ImageFeatures | None = None,
    prior: np.ndarray | None = None,
    box: tuple[int, int, int, int] | None = None,
    known: ObjectPrior | None = None,
    previous: np.ndarray | None = None,
    zoom: bool = True,
) -> np.ndarray:
    """One object's full-size mask (bool H×W) from clicks, a prior mask and a box (module docstring).

    Args:
        image: the frame, H×W×3 uint8 RGB.
        clicks: the clicks on the object, in pixels.
        features: ``image_features(image)`` if already computed (a cache), or None; a cut that zooms in
            computes its crop's own.
        prior: the object's current mask (bool H×W), or None (nothing known).
        box: (x0, y0, x1, y1), corners included: the object lies inside it; or None.
        known: what the session knows of the object (`ObjectPrior`), or None.
        previous: the answer to all the clicks but the last (bool H×W; with a box, the box's answer to
            them), or None: the last click changes it as far as its depth explains (`bounded_change`), a
            positive one only adding to it, a negative one only removing. Without a prior or box, an answer
            that strays from it further than the last click explains (`strays`) is cut again from it
            (`cut`'s ``previous``).
        zoom: cut in a crop around ``prior`` (with a box, around it too; from an empty mask, around
            ``previous``) and the clicks where that is small (`zoom_window`); a first positive click from an
            empty mask also in crops around it (`first_click`).
    """
    size = shrunk_size(*image.shape[:2])
    if size is not None:  # a frame over `large_frames.FULL_PIXELS`: cut shrunk
        small_cut = partial(segment, zoom=zoom)
        return shrunk(small_cut, image, clicks, known, size=size, prior=prior, previous=previous, box=box)
    if zoom and clicks:
        given = None if prior is None or not np.any(prior) else np.asarray(prior, bool)
        window = None
        if given is not None or box is not None:  # a correction, or a box's clicks: around what they change
            window = zoom_window(np.zeros(image.shape[:2], bool) if given is None else given, clicks, box=box)
        elif previous is not None and len(clicks) > 1:  # a next click from an empty mask
            window = zoom_window(np.asarray(previous, bool), clicks)
        elif previous is None and len(clicks) == 1 and clicks[0].positive:  # a first click: its scale
            whole = partial(segment, image, clicks, features=features, known=known, zoom=False)
            return first_click(whole, partial(segment, zoom=False), image, clicks[0], known)
        if window is not None:
            crop_cut = partial(segment, zoom=False)
            return zoomed(crop_cut, image, clicks, window, known, prior=given, previous=previous, box=box)
    height, width = image.shape[:2]
    features = image_features(image) if features is None else features
    work_height, work_width = features.shape
    size = (work_width, work_height)

    def shrink(mask: np.ndarray) -> np.ndarray:
        small: np.ndarray = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        return small

    def place(x: int, y: int) -> tuple[int, int]:
        return (
            min(work_width - 1, int((x + 0.5) * work_width / width)),
            min(work_height - 1, int((y + 0.5) * work_height / height)),
        )

    small_clicks = [Point(*place(c.x, c.y), c.positive) for c in clicks]
    inside_full: np.ndarray | None = None
    inside: np.ndarray | None = None
    if box is not None:
        x0, y0, x1, y1 = box
        inside_full = np.zeros((height, width), bool)
        inside_full[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1] = True
        inside = shrink(inside_full) > 0.5
        if not inside.any():
            column, row = place((x0 + x1) // 2, (y0 + y1) // 2)
            inside[row, column] = True
    small_prior = None if prior is None or not np.any(prior) else shrink(np.asarray(prior, bool))
    confidence = None
    if known is not None and known.confidence is not None and small_prior is not None:
        confidence = shrink(np.clip(known.confidence, 0.0, 1.0))
    examples = None if known is None else example_models(known.examples)
    neighbour = None if known is None else known.neighbour
    flow = None if neighbour is None else work_flow(features.shape, image, neighbour)
    motion = None if flow is None else motion_bins(flow)
    cut_prior = small_prior
    if flow is not None and small_prior is not None and box is None:  # a correction: dragged background
        cut_prior, confidence = release_dragged(flow, small_prior, confidence, small_clicks)
    from_empty = small_prior is None and inside is None
    last = answer_before(prior, previous, box=box, clicks=clicks)  # the answer the last click changes
    before = shrink(last) if from_empty and last is not None else None
    run = partial(
        cut,
        features,
        small_clicks,
        prior=cut_prior,
        confidence=confidence,
        inside=inside,
        examples=examples,
        motion=motion,
        previous=before,
        texture=box is not None or small_prior is None,  # every cut but a correction's
    )
    deep = inside is not None and small_prior is not None
    found, models = run(deep_clicks=deep)
    if deep and small_prior is not None:  # the reach crossed into the object: the usual reach
        guess = small_prior >= 0.5
        if (found & guess).sum() < BOX_KEEP * guess.sum():
            found, models = run()
    full = cv2.resize(found.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    region: np.ndarray | None = None
    if small_prior is not None and prior is not None:
        given = np.asarray(prior, bool)
        region = _prior_changes(image, found, small_prior >= 0.5, full, given, clicks, small_clicks, box)
        full = np.where(region, full, given)
    if last is not None and clicks:  # the last click changes the answer before it
        kept = _last_click_changes(full, last, clicks[-1], box)
        full = np.where(kept, full, last)
        region = kept if region is None else region & kept
    if inside_full is not None:
        full &= inside_full
    full = refine(image, full, clicks, models, region=region, inside=inside_full)
    if last is not None:
        full = one_way(full, last, positive=clicks[-1].positive)
    return honour_prompt(full, clicks, box)


def refine(
    image: np.ndarray,
    mask: np.ndarray,
    clicks: Sequence[Point],
    models: tuple[np.ndarray, np.ndarray],
    *,
    region: np.ndarray | None = None,
    inside: np.ndarray | None = None,
) -> np.ndarray:
    """``mask`` (bool H×W) with its boundary cut again at full size: the fine pass of coarse to fine.

    The pixels within `FINE_BAND` of the boundary (and in ``region`` and ``inside``, where given) are
    free; the rest keep their label and bound the cut. Colours cost as in ``models``, edges as
    `_edges` with `FINE_LAMBDA`; a click holds the 5×5 pixels around it.

    Args:
        image: the frame, H×W×3 uint8 RGB.
        mask: the coarse cut brought to full size (bool H×W).
        clicks: the clicks, in full-size pixels.
        models: the colour histograms (object, background) of the coarse cut (`cut`).
        region: where the boundary may move (bool H×W), or None (everywhere).
        inside: the pixels that may be object (a box, bool H×W), or None (all).
    """
    if not mask.any() or mask.all():
        return mask
    as_bytes = mask.astype(np.uint8)
    depth = np.where(
        mask,
        cv2.distanceTransform(as_bytes, cv2.DIST_L2, 3),
        cv2.distanceTransform(1 - as_bytes, cv2.DIST_L2, 3),
    )
    free = depth <= FINE_BAND
    for limit in (region, inside):
        if limit is not None:
            free &= limit
    if not free.any():
        return mask
    rows, cols = np.nonzero(free)
    top, left = max(int(rows.min()) - 1, 0), max(int(cols.min()) - 1, 0)
    bottom, right = min(int(rows.max()) + 2, mask.shape[0]), min(int(cols.max()) + 2, mask.shape[1])
    window = (slice(top, bottom), slice(left, right))
    crop = np.ascontiguousarray(image[window])
    labels, band = mask[window].ravel(), free[window].ravel()
    node = np.full(band.size, -1, np.int64)
    pixels = np.flatnonzero(band)
    node[pixels] = np.arange(pixels.size)
    bins = colour_bins(crop)[pixels]
    object_cost, background_cost = -np.log(models[0][bins]), -np.log(models[1][bins])
    held = np.zeros(crop.shape[:2], np.int8)
    for click in clicks:
        y, x = click.y - top, click.x - left  # may lie outside the window: clip both ends
        held[max(0, y - 2) : max(0, y + 3), max(0, x - 2) : max(0, x + 3)] = 1 if click.positive else -1
    held_here = held.ravel()[pixels]
    background_cost = np.where(held_here > 0, HARD / SCALE, background_cost)
    object_cost = np.where(held_here < 0, HARD / SCALE, object_cost)
    margin = np.minimum(object_cost, background_cost)
    to_object, to_background = SCALE * (background_cost - margin), SCALE * (object_cost - margin)
    edges = []
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    for a, b, weight in contrast_weights(lab, FINE_LAMBDA):
        node_a, node_b = node[a], node[b]
        both = (node_a >= 0) & (node_b >= 0)
        edges.append((node_a[both], node_b[both], np.round(weight[both]), np.round(weight[both])))
        for inner, outer in ((node_a, b), (node_b, a)):
            bound = (inner >= 0) & (node[outer] < 0)
            towards_object = bound & labels[outer]
            to_object += np.bincount(inner[towards_object], weight[towards_object], pixels.size)
            to_background += np.bincount(
                inner[bound & ~towards_object], weight[bound & ~towards_object], pixels.size
            )
    side = source_side(pixels.size, edges, np.round(to_object), np.round(to_background))
    refined = labels.copy()
    refined[pixels] = side
    result: np.ndarray = mask.copy()
    result[window] = refined.reshape(crop.shape[:2])
    return result
