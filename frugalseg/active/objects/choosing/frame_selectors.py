"""Which frame to annotate next: small seeded strategies with one method, ``select(view) -> frame``.

* `RandomSelector` — a frame drawn uniformly from those not yet annotated.
* `UniformSelector` — the traditional evenly spread frames, made incremental so that it works under
  any budget: the frame farthest in time from every annotated frame (0, the last frame, the middle,
  the quarters, …; ties go to the earlier frame).
* `OracleSelector` — the frame whose current mask has the worst J&F (needs ground truth).
* `UncertaintySelector` — the frame whose propagated mask is least reliable: the share of its
  object area where the two propagation directions disagree plus the share where a direction was
  unsure (forward-backward or photometric failures). No weights, no ground truth.
* `DiversitySelector` — eq. 1 of paper 002: ``argmax_i min_{j∈K} d(E_i, E_j)``, the frame farthest
  in feature space from its nearest annotated frame, with L2 distance. The default features are
  weight-free (`frame_descriptor`): a downscaled frame whose object region (the current mask,
  dilated) counts four times the rest, the object's colour histogram and the downscaled mask — the
  mask-weighted features of XMem++'s frame recommendation; any other embedding can be passed in.
* `GainSelector` — the frame whose annotation is expected to remove the most unreliability summed
  over the whole video (a one-step lookahead on the loop's `unreliability`): a mask also fixes its
  neighbours by bringing them closer to an annotated frame, and the video's J&F is the mean over
  all frames. No weights, no ground truth.
* `DecayGainSelector` (``gain-decay``) — `GainSelector` where a mask also mends its neighbours'
  propagated masks (a fixed decay in time) and a frame with an annotated frame on one side only
  counts as twice as far from it (`decay_gains`). No weights, no ground truth.
* `FittedGainSelector` (``gain-fit``) — the frame whose annotation lowers the video's expected error
  most under a five-constant `ErrorModel` (distance to the nearest annotated frame, one- or two-sided,
  measured signs) fit on measured propagation errors of other clips (`fit_error_model`). A frame
  annotated with clicks or a box keeps the share of its error its type leaves (`TYPE_RESIDUALS`,
  measured) and passes it on (`anchored_errors`), and a mask may replace it: the selector chooses
  among those frames too. No weights.
* `LookaheadSelector` — a ceiling, not a method: the frame whose ground-truth mask, once every frame
  is propagated again, gives the video the highest J&F (a greedy one-step lookahead that runs the
  propagation for each candidate; needs ground truth and the engine, so the simulation only).

The engine does not depend on video objects: a view offers frames, masks and per-frame scores, and
a selector returns an index into them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from frugalseg.active.propagation import COVERAGE_FRAMES
from frugalseg.data.files import keyed_rng
from frugalseg.errors import ConfigError

THUMBNAIL = (32, 18)
HISTOGRAM_BINS = 8


@dataclass
class SelectionView:
    """What a selector may look at on one iteration of one video.

    Attributes:
        key: the video's name (seeds differ per video).
        iteration: the iteration about to be made (seeds differ per iteration).
        num_frames: frames of the video.
        annotated: the frames annotated so far.
        frames: the video's frames (H×W×3 uint8), or None for selectors that do not read them.
        masks: the current masks (H×W object ids), or None.
        quality: per frame J&F of the current masks (ground truth needed), or None.
        unreliability: per frame, from the propagation, or None.
        lookahead: frame → the video's J&F were that frame annotated next with its ground-truth
            mask and every frame propagated again (the simulation only: ground truth and the
            engine are needed), or None.
        kinds: annotated frame → the type it was annotated with (``mask``, ``clicks``, ``box``), or
            None where every annotation is a mask.
    """

    key: str
    iteration: int
    num_frames: int
    annotated: set[int]
    frames: Sequence[np.ndarray] | None = None
    masks: Sequence[np.ndarray] | None = None
    quality: Sequence[float] | None = None
    unreliability: Sequence[float] | None = None
    lookahead: Callable[[int], float] | None = None
    kinds: Mapping[int, str] | None = None

    @property
    def candidates(self) -> list[int]:
        """Frames not annotated yet, in order."""
        return [t for t in range(self.num_frames) if t not in self.annotated]

    @property
    def replaceable(self) -> list[int]:
        """Annotated frames a mask may still replace (annotated with clicks or a box), in order."""
        kinds = self.kinds or {}
        return sorted(t for t in self.annotated if kinds.get(t, "mask") != "mask")

    def rng(self, seed: int) -> np.random.Generator:
        """A generator for this video and iteration only, so a resumed loop draws what it would have."""
        return keyed_rng(seed, self.key, self.iteration)


def _best(candidates: Sequence[int], scores: Sequence[float]) -> int:
    """The candidate of the highest score; ties to the earliest frame."""
    order = np.argmax(np.asarray(scores, np.float64))
    return int(candidates[int(order)])


def _need(view: SelectionView, what: str, selector: FrameSelector) -> list[int]:
    """``selector``'s choices in ``view`` (`FrameSelector.choices`); errors without ``what`` or a choice."""
    if getattr(view, what) is None:
        lacking = f"the {selector.name!r} frame selector needs {what}, which this loop lacks"
        raise ConfigError("frames", lacking)
    choices = selector.choices(view)
    if not choices:
        exact = " with a mask" if selector.replaces else ""
        raise ValueError(f"every frame is annotated{exact}: nothing left to select")
    return choices


class FrameSelector:
    """Base of the frame selectors: ``name``, a seed, and ``select(view) -> frame index``.

    ``replaces``: whether it may also choose a frame annotated with clicks or a box, for a mask to
    replace them (``view.replaceable``); the others choose among ``view.candidates`` only.
    """

    name = ""
    needs_ground_truth = False
    replaces = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def choices(self, view: SelectionView) -> list[int]:
        """The frames it may choose, in order: the candidates, and the replaceable ones if it ``replaces``."""
        return sorted([*view.candidates, *view.replaceable]) if self.replaces else view.candidates

    def select(self, view: SelectionView) -> int:
        """The frame to annotate next, among `choices`."""
        raise NotImplementedError


class RandomSelector(FrameSelector):
    """A random frame not yet annotated, seeded."""

    name = "random"

    def select(self, view: SelectionView) -> int:
        """A frame drawn among the candidates by the seeded generator."""
        candidates = view.candidates
        if not candidates:
            raise ValueError("every frame is annotated: nothing left to select")
        return int(candidates[int(view.rng(self.seed).integers(len(candidates)))])


def farthest_point(distances: np.ndarray, annotated: Sequence[int], candidates: Sequence[int]) -> int:
    """Eq. 1 of paper 002 on a distance matrix: the candidate whose nearest annotated item is farthest."""
    nearest = distances[np.ix_(list(candidates), list(annotated))].min(1)
    return _best(candidates, nearest)


class UniformSelector(FrameSelector):
    """The frame farthest in time from every annotated frame."""

    name = "uniform"

    def select(self, view: SelectionView) -> int:
        """The candidate farthest in time from the annotated frames."""
        _need(view, "annotated", self)
        t = np.arange(view.num_frames, dtype=np.float64)
        return farthest_point(np.abs(t[:, None] - t[None, :]), sorted(view.annotated), view.candidates)


class OracleSelector(FrameSelector):
    """The frame whose current quality is lowest (needs ground truth)."""

    name = "oracle"
    needs_ground_truth = True

    def select(self, view: SelectionView) -> int:
        """The candidate of the lowest quality."""
        _need(view, "quality", self)
        quality = view.quality
        assert quality is not None  # _need raised otherwise
        candidates = view.candidates
        return _best(candidates, [-quality[t] for t in candidates])


class UncertaintySelector(FrameSelector):
    """The frame whose propagated masks are least reliable."""

    name = "uncertainty"

    def select(self, view: SelectionView) -> int:
        """The candidate of the highest unreliability."""
        _need(view, "unreliability", self)
        unreliability = view.unreliability
        assert unreliability is not None  # _need raised otherwise
        candidates = view.candidates
        return _best(candidates, [unreliability[t] for t in candidates])


def coverage_free_reliability(unreliability: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Each frame's reliability apart from coverage, ``r_t = (1 − U_t)(g_t + k) / k`` (in 0…1).

    The inverse of `propagation.unreliability`'s coverage term (``k = COVERAGE_FRAMES``, ``g_t`` the
    distance to the nearest annotated frame): what the gain selectors keep of a frame when they move
    its annotated neighbours.
    """
    k = float(COVERAGE_FRAMES)
    reliable: np.ndarray = np.clip((1 - unreliability) * (gap + k) / k, 0.0, 1.0)
    return reliable


def expected_gains(unreliability: Sequence[float], annotated: Collection[int]) -> np.ndarray:
    """Per frame ``c``, the unreliability the video is expected to lose were ``c`` annotated next.

    Each frame's unreliability is ``U_t = 1 − r_t · k / (g_t + k)`` (`propagation.unreliability`, with
    ``k = COVERAGE_FRAMES`` and ``g_t`` the distance to the nearest annotated frame, the number of
    frames when none is), so its reliability apart from coverage is ``r_t = (1 − U_t)(g_t + k) / k``.
    Annotating ``c`` is taken to leave every ``r_t`` as it is, bring each ``g_t`` down to
    ``min(g_t, |t − c|)`` and make ``U_c`` 0; the gain of ``c`` is ``Σ_t U_t − U'_t(c)``. What a new
    annotation does to the propagated masks themselves (``r_t``) is not foreseen.

    Args:
        unreliability: per frame, in 0…1 (`propagation.unreliability`).
        annotated: the annotated frames.

    Returns:
        N gains (an annotated frame's is 0, or what it would change were its ``g`` stale).
    """
    u = np.clip(np.asarray(unreliability, np.float64), 0.0, 1.0)
    n = len(u)
    t = np.arange(n, dtype=np.float64)
    distance = np.abs(t[:, None] - t[None, :])  # [c, t]
    gap, _ = error_features(n, annotated)
    k = float(COVERAGE_FRAMES)
    reliable = coverage_free_reliability(u, gap)
    after = 1 - reliable[None, :] * k / (np.minimum(gap[None, :], distance) + k)
    np.fill_diagonal(after, 0.0)
    gains: np.ndarray = (u[None, :] - after).sum(1)
    return gains


class ExpectedGainSelector(FrameSelector):
    """The candidate of the largest expected gain (`gains`) from the loop's unreliability.

    Ties go to the earliest frame (gains rounded to 9 places, so float noise does not break them).
    """

    def gains(self, unreliability: Sequence[float], annotated: Collection[int]) -> np.ndarray:
        """Per frame, what annotating it next is expected to gain."""
        raise NotImplementedError

    def select(self, view: SelectionView) -> int:
        """The candidate of the largest `gains`."""
        _need(view, "unreliability", self)
        assert view.unreliability is not None  # _need raised otherwise
        gains = self.gains(view.unreliability, view.annotated)
        return _best(view.candidates, [round(float(gains[t]), 9) for t in view.candidates])


class GainSelector(ExpectedGainSelector):
    """The frame whose annotation is expected to remove the most unreliability over the video."""

    name = "gain"

    def gains(self, unreliability: Sequence[float], annotated: Collection[int]) -> np.ndarray:
        """`expected_gains`."""
        return expected_gains(unreliability, annotated)


def decay_gains(unreliability: Sequence[float], annotated: Collection[int]) -> np.ndarray:
    """`expected_gains` with two changes, for the ``gain-decay`` selector.

    * A mask mends its neighbours: annotating ``c`` also removes a share ``2^(−|t − c| / k)`` of each
      frame's unreliability apart from coverage, ``r'_t = 1 − (1 − r_t)(1 − 2^(−|t − c| / k))``
      (half of it ``k = COVERAGE_FRAMES`` frames away), where `expected_gains` keeps ``r_t``.
    * A frame before the first or past the last annotated frame has one propagation direction,
      nothing to disagree with, so its ``r_t`` is optimistic: it counts as ``2 g_t`` frames from an
      annotation (as uncertain as the middle of a gap of ``2 g_t`` between two annotated frames).
      ``r_t`` is backed out with the loop's own ``g_t``, then ``U_t = 1 − r_t k / (s_t g_t + k)`` before
      and after, with ``s_t`` 2 on one side only, else 1.

    Args:
        unreliability: per frame, in 0…1 (`propagation.unreliability`).
        annotated: the annotated frames (none: every frame is as far as the video is long, on no side).

    Returns:
        N gains, ``Σ_t U_t − U'_t(c)``.
    """
    u = np.clip(np.asarray(unreliability, np.float64), 0.0, 1.0)
    n = len(u)
    t = np.arange(n, dtype=np.float64)
    distance = np.abs(t[:, None] - t[None, :])  # [c, t]
    keys = sorted(annotated)
    k = float(COVERAGE_FRAMES)
    if keys:
        gap = distance[keys].min(0)
        lo, hi = float(keys[0]), float(keys[-1])
        sides = np.where((t < lo) | (t > hi), 2.0, 1.0)
        outside = (t[None, :] < np.minimum(lo, t)[:, None]) | (t[None, :] > np.maximum(hi, t)[:, None])
    else:
        gap, sides = np.full(n, float(n)), np.ones(n)
        outside = np.zeros((n, n), bool)
    reliable = coverage_free_reliability(u, gap)
    before = 1 - reliable * k / (sides * gap + k)
    mended = 1 - (1 - reliable[None, :]) * (1 - 2.0 ** (-distance / k))
    after = 1 - mended * k / (np.where(outside, 2.0, 1.0) * np.minimum(gap[None, :], distance) + k)
    gains: np.ndarray = (before[None, :] - after).sum(1)
    return gains


class DecayGainSelector(ExpectedGainSelector):
    """`GainSelector` on `decay_gains`: neighbours mended, one-sided frames counted as farther."""

    name = "gain-decay"

    def gains(self, unreliability: Sequence[float], annotated: Collection[int]) -> np.ndarray:
        """`decay_gains`."""
        return decay_gains(unreliability, annotated)


def error_features(num_frames: int, annotated: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the distance ``g`` to the nearest annotated frame and its sides.

    Sides: 2 for a frame between the first and the last annotated frame (propagated from both
    directions), 1 before the first or past the last (one direction); an annotated frame has ``g = 0``.
    With nothing annotated every frame is ``num_frames`` away, on one side.
    """
    t = np.arange(num_frames, dtype=np.float64)
    keys = sorted(annotated)
    if not keys:
        return np.full(num_frames, float(num_frames)), np.ones(num_frames)
    gap = np.abs(t[:, None] - np.asarray(keys, np.float64)[None, :]).min(1)
    sides = np.where((t >= keys[0]) & (t <= keys[-1]), 2.0, 1.0)
    return gap, sides


@dataclass(frozen=True)
class ErrorModel:
    """A propagated frame's expected error ``1 − J&F``, from where it lies and how unsure it looks.

    ``E = a_s · g / (g + b_s) · (1 + β m)``: ``g`` the distance to the nearest annotated frame, ``s``
    its sides (`error_features`; one scale ``a`` and half-distance ``b`` for one-sided frames and one
    pair for two-sided ones) and ``m = 1 − (1 − d)(1 − u)`` the frame's measured share apart from
    coverage (disagreement ``d``, unsure ``u``; 0 were it not measured). Five constants, fit by least
    squares on measured frames (`fit_error_model`).
    """

    one_scale: float
    one_half: float
    two_scale: float
    two_half: float
    signs: float

    def error(
        self, distance: np.ndarray, sides: np.ndarray, measured: np.ndarray | float = 0.0
    ) -> np.ndarray:
        """Expected ``1 − J&F`` per frame (0 where the distance is 0)."""
        g = np.asarray(distance, np.float64)
        one = self.one_scale * g / (g + self.one_half)
        two = self.two_scale * g / (g + self.two_half)
        base: np.ndarray = np.where(np.asarray(sides) == 2, two, one)
        return base * (1 + self.signs * np.asarray(measured, np.float64))


FIT_HALVES = tuple(float(b) for b in np.geomspace(0.25, 256.0, 81))
FIT_SIGNS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def fit_error_model(records: Sequence[dict[str, Any]]) -> ErrorModel:
    """`ErrorModel` fit by least squares on measured frames, by grid on ``b`` and ``β``, closed form on ``a``.

    Args:
        records: one per video and annotated set: ``annotated`` (frames), ``quality`` (per frame J&F),
            ``disagreement`` and ``unsure`` (per frame, the propagation's), as
            `benchmarks/bench_error_model.py` writes them. Annotated frames are left out.
    """
    rows: dict[float, list[np.ndarray]] = {1.0: [], 2.0: []}
    for r in records:
        n = len(r["quality"])
        gap, sides = error_features(n, r["annotated"])
        measured = 1 - (1 - np.clip(r["disagreement"], 0, 1)) * (1 - np.clip(r["unsure"], 0, 1))
        error = 1 - np.asarray(r["quality"], np.float64)
        for t in range(n):
            if gap[t] > 0:
                rows[float(sides[t])].append(np.array([gap[t], measured[t], error[t]]))
    best: tuple[float, ErrorModel] | None = None
    for beta in FIT_SIGNS:
        constants: list[float] = []
        total = 0.0
        for side in (1.0, 2.0):
            data = np.asarray(rows[side]).reshape(-1, 3)
            g, m, y = data[:, 0], data[:, 1], data[:, 2]
            fits = []
            for b in FIT_HALVES:
                x = g / (g + b) * (1 + beta * m)
                a = float(x @ y / max(float(x @ x), 1e-12))
                fits.append((float(((a * x - y) ** 2).sum()), a, b))
            sse, a, b = min(fits)
            constants += [a, b]
            total += sse
        if best is None or total < best[0]:
            best = (total, ErrorModel(constants[0], constants[1], constants[2], constants[3], beta))
    assert best is not None
    return best[1]


def measured_shares(unreliability: Sequence[float], annotated: Collection[int]) -> np.ndarray:
    """Each frame's measured share apart from coverage, ``m_t = 1 − r_t`` (0 on an annotated frame).

    ``r_t = (1 − U_t)(g_t + k) / k`` is backed out of the loop's unreliability (`coverage_free_reliability`),
    so that it stays when annotations move the frame's distance ``g_t``.
    """
    u = np.clip(np.asarray(unreliability, np.float64), 0.0, 1.0)
    gap, _ = error_features(len(u), annotated)
    measured: np.ndarray = 1 - coverage_free_reliability(u, gap)
    measured[gap == 0] = 0.0
    return measured


def anchored_errors(
    measured: np.ndarray,
    kinds: Mapping[int, str],
    model: ErrorModel,
    residuals: Mapping[str, float],
) -> np.ndarray:
    """Per frame, the expected ``1 − J&F`` with the frames of ``kinds`` annotated, each with its type.

    A mask is exact. A frame annotated with another type keeps the share ``residuals[type]`` of the
    error the model gives it from the exact (mask) anchors alone (without any, `FROM_SCRATCH_ERROR`:
    the page's box may start a video), and passes that error on: a frame's
    error is ``1 − (1 − E)(1 − ρ)``, ``E`` the model's for its distance and sides (`ErrorModel`) and
    ``ρ`` the residual error of its nearest annotated frame (the earlier on a tie).

    Args:
        measured: per frame, the measured share apart from coverage (`measured_shares`).
        kinds: annotated frame → its type.
        model: the error model.
        residuals: type → the share of a frame's error it leaves (`TYPE_RESIDUALS`; a mask's 0).
    """
    n = len(measured)
    gap, sides = error_features(n, kinds)
    errors: np.ndarray = model.error(gap, sides, measured)
    inexact = {a: residuals[k] for a, k in kinds.items() if residuals[k] > 0}
    if not inexact:
        return errors
    exact = [a for a in kinds if a not in inexact]
    residual = np.zeros(n)
    if exact:
        own = model.error(*error_features(n, exact), measured)
        for a, share in inexact.items():
            residual[a] = min(share * own[a], 1.0)
    else:  # no mask to have a share of: what the type leaves starting from nothing
        for a in inexact:
            residual[a] = FROM_SCRATCH_ERROR[kinds[a]]
    keys = np.asarray(sorted(kinds))
    nearest = keys[np.abs(np.arange(n)[:, None] - keys[None, :]).argmin(1)]
    carried: np.ndarray = 1 - (1 - errors) * (1 - residual[nearest])
    return carried


def typed_gains(
    unreliability: Sequence[float],
    kinds: Mapping[int, str],
    model: ErrorModel,
    residuals: Mapping[str, float],
    types: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per type and frame ``c``, the fall in the summed expected error were ``c`` annotated next with it.

    Expected errors are `anchored_errors`; each frame's measured share (`measured_shares`) is kept.
    A frame not annotated may take any type; an annotated one only a type that leaves less of its
    error (a mask replacing clicks or a box); the gain is 0 elsewhere.

    Args:
        unreliability: per frame, in 0…1 (`propagation.unreliability`).
        kinds: annotated frame → its type.
        model: the error model.
        residuals: type → the share of a frame's error it leaves (a mask's 0).
        types: the types to score (None: every type of ``residuals``).
    """
    measured = measured_shares(unreliability, kinds)
    before = anchored_errors(measured, kinds, model, residuals).sum()
    gains = {kind: np.zeros(len(measured)) for kind in (residuals if types is None else types)}
    for kind in gains:
        for c in range(len(measured)):
            if c not in kinds or residuals[kinds[c]] > residuals[kind]:
                after = anchored_errors(measured, {**kinds, c: kind}, model, residuals)
                gains[kind][c] = before - after.sum()
    return gains


def fitted_gains(unreliability: Sequence[float], annotated: Collection[int], model: ErrorModel) -> np.ndarray:
    """Per frame ``c``, the fall in the summed expected error (`ErrorModel`) were ``c`` given a mask next.

    Every annotated frame a mask (`typed_gains` with masks only): annotating ``c`` changes every
    frame's distance and sides (`error_features`), keeps its measured share (`measured_shares`) and
    makes ``c``'s error 0. The gain of ``c`` is ``Σ_t E_t − E'_t(c)``: ``-Σ`` of the video's expected
    mean error change, times the frame count.
    """
    return typed_gains(unreliability, dict.fromkeys(annotated, "mask"), model, {"mask": 0.0})["mask"]


# Fit on four development clips only (blackswan, breakdance, camel, car-shadow: every 2nd of the first
# 40 frames, DIS flow at half size; 30 annotated sets each: frame 0, plus each other frame, plus pairs of
# a grid), so that the other four are held out: `benchmarks/bench_error_model.py`. β came out 0: the
# measured signs did not lower the squared error beyond distance and sides.
FITTED_ERROR = ErrorModel(one_scale=0.5600, one_half=8.0, two_scale=0.2560, two_half=2.3784, signs=0.0)


#: The share of a frame's expected error each annotation type leaves on it: a mask none. The weight-free
#: tools' (`annotation_types` with the default ``starcut`` click model: 3 corrective clicks; a box and 3
#: clicks, told what a session tells, `annotation_priors`), measured on the propagated frames of fold a
#: (blackswan, breakdance, camel, car-shadow; 148 frames, the geometric mean of after / before:
#: `benchmarks/bench_error_model.py fit-residuals`; fold b, held out: clicks 0.65, a box 0.74): clicks mend
#: a third of a frame's error, and a box from scratch leaves more than the propagated mask it replaces on
#: fold a (blackswan and camel, whose propagation is near exact). Were 0.79 and 2.3 before issue 44's
#: later rounds (`benchmarks/results/annotation_loop.md`).
TYPE_RESIDUALS: Mapping[str, float] = MappingProxyType({"mask": 0.0, "clicks": 0.64, "box": 1.6})
#: The error (1 − IoU) clicks and a box leave on a video none of whose frames has a mask: the median after 3
#: clicks from an empty frame, and of a box and 3 clicks, on the 8 development clips' first frames (0.805 and
#: 0.861, `bench_interactive.py --first-frames`, `benchmarks/results/interactive.md` stop 79). The share of
#: `TYPE_RESIDUALS` had taken the no-anchor error for it: a page whose first annotation was a box at IoU 0.89
#: showed that frame at 0.64 expected error, and every other frame worse.
FROM_SCRATCH_ERROR: Mapping[str, float] = MappingProxyType({"clicks": 0.195, "box": 0.139})


def expected_jf_gain(
    unreliability: Sequence[float], annotated: Collection[int], frame: int, model: ErrorModel = FITTED_ERROR
) -> float:
    """The rise of a video's mean J&F expected were ``frame`` annotated next: `fitted_gains` per frame.

    What a session ranks videos by (per human second): unlike a frame's doubted share, it counts what
    the annotation does to every frame of the video and is in units of J&F.
    """
    return float(fitted_gains(unreliability, annotated, model)[frame]) / max(len(unreliability), 1)


class FittedGainSelector(FrameSelector):
    """The frame whose mask lowers the video's expected error most under a fitted `ErrorModel`.

    Frames annotated with clicks or a box count with the error their type leaves (`TYPE_RESIDUALS`,
    `anchored_errors`), and a mask may replace them: the selector chooses among the frames not
    annotated and those (`typed_gains` of a mask; ties to the earliest frame).
    """

    name = "gain-fit"
    replaces = True

    def __init__(
        self, seed: int = 0, model: ErrorModel | None = None, residuals: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(seed)
        self.model = FITTED_ERROR if model is None else model
        self.residuals = TYPE_RESIDUALS if residuals is None else residuals

    def select(self, view: SelectionView) -> int:
        """The frame of the largest expected gain of a mask, among the candidates and replaceable frames."""
        choices = _need(view, "unreliability", self)
        assert view.unreliability is not None  # _need raised otherwise
        kinds = dict(view.kinds) if view.kinds is not None else dict.fromkeys(view.annotated, "mask")
        gains = typed_gains(view.unreliability, kinds, self.model, self.residuals, ("mask",))["mask"]
        return _best(choices, [round(float(gains[t]), 9) for t in choices])


class LookaheadSelector(FrameSelector):
    """The frame whose mask would give the video the highest J&F after propagation (needs ground truth).

    Exact and greedy: every candidate is annotated in turn with its ground-truth mask, the video is
    propagated again and scored (``view.lookahead``); one propagation per candidate, made cheap by
    the engine's cache where it has one (a candidate's segments are reused when it is chosen and on
    later iterations). A ceiling on what one-step frame choice can do, not a method.
    """

    name = "lookahead"
    needs_ground_truth = True

    def select(self, view: SelectionView) -> int:
        """The candidate of the highest J&F after its annotation; ties to the earliest frame."""
        _need(view, "lookahead", self)
        lookahead = view.lookahead
        assert lookahead is not None  # _need raised otherwise
        candidates = view.candidates
        return _best(candidates, [round(float(lookahead(t)), 9) for t in candidates])


def frame_descriptor(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Weight-free features of a frame and its current mask (see the module docstring), float32."""
    small = cv2.resize(frame, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    objects = (mask != 0) & (mask != 255)
    region = cv2.dilate(objects.view(np.uint8), np.ones((15, 15), np.uint8)) if objects.any() else None
    weight = np.ones(THUMBNAIL[::-1], np.float32)
    shape = np.zeros(THUMBNAIL[::-1], np.float32)
    if region is not None:
        shape = cv2.resize(objects.astype(np.float32), THUMBNAIL, interpolation=cv2.INTER_AREA)
        weight += 3 * cv2.resize(region.astype(np.float32), THUMBNAIL, interpolation=cv2.INTER_AREA)
    appearance = (small * weight[..., None]).ravel()
    hist = cv2.calcHist([frame], [0, 1, 2], region, [HISTOGRAM_BINS] * 3, [0, 256] * 3).ravel()
    parts = [appearance, hist, shape.ravel()]
    return np.concatenate([p / max(float(np.linalg.norm(p)), 1e-6) for p in parts]).astype(np.float32)


def descriptors(view: SelectionView) -> np.ndarray:
    """`frame_descriptor` of every frame of ``view`` with its current mask (N×D)."""
    if view.frames is None or view.masks is None:
        raise ConfigError("frames", "the 'diversity' frame selector needs the frames and the current masks")
    return np.stack([frame_descriptor(f, m) for f, m in zip(view.frames, view.masks, strict=True)])


class DiversitySelector(FrameSelector):
    """Eq. 1 of paper 002 on ``features(view)`` (N×D; default `descriptors`)."""

    name = "diversity"

    def __init__(self, seed: int = 0, features: Callable[[SelectionView], np.ndarray] = descriptors) -> None:
        super().__init__(seed)
        self.features = features

    def select(self, view: SelectionView) -> int:
        """The candidate farthest in feature space from the annotated frames."""
        if not view.candidates:
            raise ValueError("every frame is annotated: nothing left to select")
        embeddings = np.asarray(self.features(view), np.float64)
        annotated = sorted(view.annotated)
        candidates = view.candidates
        diff = embeddings[candidates][:, None, :] - embeddings[annotated][None, :, :]
        nearest = np.sqrt((diff**2).sum(-1)).min(1)
        return _best(candidates, nearest)


SELECTORS: dict[str, type[FrameSelector]] = {
    cls.name: cls
    for cls in (
        RandomSelector,
        UniformSelector,
        OracleSelector,
        UncertaintySelector,
        DiversitySelector,
        GainSelector,
        DecayGainSelector,
        FittedGainSelector,
        LookaheadSelector,
    )
}

#: What a person's session proposes with unless told: the best weight-free selector measured, with every
#: development clip held out from its fit (``benchmarks/results/annotation_loop.md``: 1.37× random frames
#: to J&F 0.85, 1.39 ± 0.15 over six-clip subsets, against 1.18× and 1.19 ± 0.11 for ``uncertainty``).
PROPOSAL_SELECTOR = FittedGainSelector.name


def get_selector(
    name: str, seed: int = 0, *, features: Callable[[SelectionView], np.ndarray] | None = None
) -> FrameSelector:
    """The frame selector called ``name``.

    Args:
        name: one of `SELECTORS`.
        seed: its seed.
        features: the diversity selector's features (`diversity_features`; None: the descriptor).

    Raises:
        ConfigError: an unknown name (the known ones listed), or features for another selector.
    """
    if name not in SELECTORS:
        raise ConfigError("frames", f"unknown frame selector {name!r}; choose from {', '.join(SELECTORS)}")
    if name == "diversity":
        return DiversitySelector(seed, descriptors if features is None else features)
    if features is not None:
        raise ConfigError("diversity_features", f"the {name!r} frame selector reads no features")
    return SELECTORS[name](seed)
