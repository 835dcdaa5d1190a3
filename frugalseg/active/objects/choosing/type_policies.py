"""The annotation-type policies (``choose(view) -> type``) and their registry, `POLICIES` (paper 002).

`MaskPolicy`, `ClicksPolicy`, `BoxPolicy`, `RandomTypePolicy` (a seeded die), `OracleTypePolicy` (tries every
type on the frame and keeps the largest gain of the frame's J&F per second: paper 002's
cost-normalised oracle) and `LearnedTypePolicy`, which predicts that gain without ground truth.

Paper 002 trains its type policy with PPO. This one is a lighter learner: a tiny MLP
(`frugalseg.zoo.TypeGainNet`) that predicts, from cheap features of the chosen frame and
its current mask, the J&F gain of the frame that each annotation type would bring; the policy
divides each by the type's cost on that frame and takes the larger gain per second. Why not PPO:
the type decision changes only the frame it is made on, and the simulator measures its effect
exactly (`OracleTypePolicy` tries every type), so the reward of every action is observed and
regression on it is a supervised problem; PPO would have to learn the same from sampled rewards with
far more episodes than a CPU can simulate here (one episode of one 20-frame clip costs minutes of
propagation). What regression gives up is planning: it cannot trade a cheap gain now against a
better one later.

Features of a frame (`FEATURES`, no ground truth needed, so a person's session can use them): the
propagation's disagreement and unsure shares and their sum, the objects' area share, their boundary
length (per image diagonal) and its ratio to the square root of the area, the distance in frames to
the nearest annotated frame (log and share of the video), the colour contrast of the objects against
a ring around them (CIELAB, /100) and how many objects may be on the frame.

Its training samples (`training_samples.episode_samples`) come from the states of simulated loops
(`annotate simulate`): on every frame a state leaves unannotated, every type is tried with the
simulated annotator and their J&F gains recorded. The types are ``mask``, ``clicks`` and ``box``
(`annotation_types`); their seconds per frame are `type_seconds`. ``frugalseg annotate train-policy`` fits the
network through Lightning (`frugalseg.lightning_modules.type_policy`) and saves it as safetensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from frugalseg.active.objects.choosing.frame_selectors import (
    FITTED_ERROR,
    TYPE_RESIDUALS,
    anchored_errors,
    measured_shares,
)
from frugalseg.active.objects.simulation.annotation_types import (
    ANNOTATION_TYPES,
    CLICKS_PER_OBJECT,
    AnnotationResult,
)
from frugalseg.active.objects.state import VideoState
from frugalseg.active.propagation import unreliability
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.files import keyed_rng
from frugalseg.errors import ConfigError, WeightsError


@dataclass
class TypeContext:
    """What a policy may read of the chosen frame without ground truth (the learned policy's input).

    Attributes:
        image: the frame (H×W×3 uint8 RGB).
        mask: its current mask (H×W object ids).
        disagreement: share of its object area where the two propagation directions disagree.
        unsure: share of its object area where a propagation direction was unsure.
        annotated: the frames annotated so far.
        num_frames: frames of the video.
        objects: the objects that may be on the frame (annotated on it or before).
        unreliability: per frame of the video, the loop's `propagation.unreliability` (empty: not given).
        kinds: annotated frame → the type of its annotation.
    """

    image: np.ndarray
    mask: np.ndarray
    disagreement: float
    unsure: float
    annotated: frozenset[int]
    num_frames: int
    objects: tuple[int, ...]
    unreliability: tuple[float, ...] = ()
    kinds: Mapping[int, str] = field(default_factory=dict)


@dataclass
class TypeView:
    """What a type policy may look at: the frame chosen and a way to try a type there.

    ``attempt(kind)`` returns the `AnnotationResult` of that type (simulated; computed once),
    ``gain(result)`` the J&F gain it brings to the frame and ``video_gain(result)`` the one it brings
    to the whole video once propagated (both need ground truth), and ``context`` the frame, its mask
    and propagation scores (what a learned policy reads).
    """

    key: str
    iteration: int
    frame: int
    attempt: Callable[[str], AnnotationResult]
    gain: Callable[[AnnotationResult], float] | None = None
    context: TypeContext | None = None
    video_gain: Callable[[AnnotationResult], float] | None = None


class TypePolicy:
    """Base of the annotation-type policies: ``name``, a seed, ``choose(view) -> type``."""

    name = ""
    needs_ground_truth = False
    needs_weights = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def from_weights(cls, weights: str | Path, seed: int = 0) -> TypePolicy:
        """The policy with its network read from ``weights`` (policies that ``needs_weights``)."""
        raise NotImplementedError

    def choose(self, view: TypeView) -> str:
        """The annotation type (``mask`` or ``clicks``) to use on the frame that ``view`` shows."""
        raise NotImplementedError


class MaskPolicy(TypePolicy):
    """Always annotate with a mask."""

    name = "mask"

    def choose(self, view: TypeView) -> str:
        """``mask``."""
        return "mask"


class ClicksPolicy(TypePolicy):
    """Always annotate with clicks."""

    name = "clicks"

    def choose(self, view: TypeView) -> str:
        """``clicks``."""
        return "clicks"


class BoxPolicy(TypePolicy):
    """Always annotate with a box and corrective clicks."""

    name = "box"

    def choose(self, view: TypeView) -> str:
        """``box``."""
        return "box"


class RandomTypePolicy(TypePolicy):
    """A random annotation type per frame, seeded by (seed, video, iteration)."""

    name = "random"

    def choose(self, view: TypeView) -> str:
        """A type drawn from the generator of (seed, video, iteration)."""
        rng = keyed_rng(self.seed, view.key, view.iteration, 1)
        return ANNOTATION_TYPES[int(rng.integers(len(ANNOTATION_TYPES)))]


class OracleTypePolicy(TypePolicy):
    """The type of the largest J&F gain of the frame per human second (ties: the cheaper type)."""

    name = "oracle"
    needs_ground_truth = True

    def gain(self, view: TypeView) -> Callable[[AnnotationResult], float] | None:
        """What a type's result is scored by: the gain of the frame's J&F."""
        return view.gain

    def choose(self, view: TypeView) -> str:
        """The type of the largest gain per human second (needs ground truth)."""
        gain = self.gain(view)
        if gain is None:
            raise ConfigError("types", f"the {self.name!r} type policy needs ground truth")
        scored = []
        for kind in ANNOTATION_TYPES:
            result = view.attempt(kind)
            scored.append((gain(result) / max(result.total_seconds, 1e-9), -result.total_seconds, kind))
        return max(scored)[2]


class LookaheadTypePolicy(OracleTypePolicy):
    """The type of the largest gain of the *video's* J&F per human second, each type propagated (a ceiling).

    `OracleTypePolicy` scores a type by its own frame; an annotation is also an anchor its neighbours
    are propagated from, exact for a mask and inexact for clicks or a box. This policy propagates the
    video once per type and keeps the largest gain per second: what greedy type choice can reach.
    """

    name = "lookahead"

    def gain(self, view: TypeView) -> Callable[[AnnotationResult], float] | None:
        """What a type's result is scored by: the gain of the video's J&F once propagated."""
        return view.video_gain


FEATURES = (
    "unreliability",
    "disagreement",
    "unsure",
    "area",
    "boundary",
    "roughness",
    "log_distance",
    "distance_share",
    "contrast",
    "objects",
)


def type_context(state: VideoState, frame: int, image: np.ndarray) -> TypeContext:
    """The `TypeContext` of ``frame`` of a loop ``state`` (its masks propagated), ``image`` its pixels."""
    return TypeContext(
        image=image,
        mask=state.masks[frame],
        disagreement=float(state.disagreement[frame]),
        unsure=float(state.unsure[frame]),
        annotated=frozenset(state.annotated),
        num_frames=state.num_frames,
        objects=tuple(sorted(o for o, first in state.objects.items() if first <= frame)),
        unreliability=tuple(unreliability(state.disagreement, state.unsure, state.annotated)),
        kinds=state.kinds,
    )


def frame_features(context: TypeContext, frame: int) -> np.ndarray:
    """The `FEATURES` of ``frame`` seen through ``context`` (float32)."""
    mask = context.mask
    objects = (mask != 0) & (mask != 255)
    pixels = float(mask.size)
    area = float(np.count_nonzero(objects))
    ids = np.where(objects, mask, 0)
    boundary = float(np.count_nonzero(ids[1:] != ids[:-1]) + np.count_nonzero(ids[:, 1:] != ids[:, :-1]))
    diagonal = float(np.hypot(*mask.shape))
    distance = min((abs(frame - a) for a in context.annotated), default=context.num_frames)
    contrast = 0.0
    if area:
        lab = cv2.cvtColor(context.image, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
        reach = max(3, round(0.02 * diagonal))
        ring = cv2.dilate(objects.view(np.uint8), np.ones((reach, reach), np.uint8)).astype(bool) & ~objects
        if ring.any():
            inside, around = lab[objects.ravel()].mean(0), lab[ring.ravel()].mean(0)
            contrast = float(np.linalg.norm(inside - around)) / 100
    values = [
        context.disagreement + context.unsure,
        context.disagreement,
        context.unsure,
        area / pixels,
        boundary / diagonal,
        boundary / np.sqrt(area) / 10 if area else 0.0,
        float(np.log1p(distance)),
        distance / max(context.num_frames, 1),
        contrast,
        float(len(context.objects)),
    ]
    return np.asarray(values, np.float32)


def type_seconds(objects: int, costs: AnnotationCosts = DEFAULT_COSTS) -> dict[str, float]:
    """The expected human seconds of each type on a frame with ``objects`` objects (clicks: all made)."""
    if objects == 0:
        return dict.fromkeys(ANNOTATION_TYPES, costs.clicked_frame_seconds)
    clicks = costs.click_seconds * CLICKS_PER_OBJECT * objects
    return {
        "mask": costs.vos_mask_seconds * objects,
        "clicks": clicks + costs.clicked_frame_seconds,
        "box": costs.box_seconds * objects + clicks + costs.clicked_frame_seconds,
    }


def best_type(gains: dict[str, float], seconds: dict[str, float]) -> str:
    """The type of the largest ``gains`` per ``seconds``; ties go to the cheaper type."""
    return max(ANNOTATION_TYPES, key=lambda k: (gains[k] / max(seconds[k], 1e-9), -seconds[k]))


class LearnedTypePolicy(TypePolicy):
    """The type of the largest predicted J&F gain per second (a `TypeGainNet` read from ``weights``).

    Args:
        weights: the safetensors file `frugalseg annotate train-policy` wrote.
        seed: unused (the policy is deterministic); kept for the policies' common signature.
        costs: the annotation costs the gains are divided by.

    Raises:
        WeightsError: naming the file, when it is missing, not a type policy, or made for other
            features or types.
    """

    name = "learned"
    needs_weights = True

    @classmethod
    def from_weights(cls, weights: str | Path, seed: int = 0) -> LearnedTypePolicy:
        """The policy whose network `frugalseg annotate train-policy` saved in ``weights``."""
        return cls(weights, seed)

    def __init__(self, weights: str | Path, seed: int = 0, costs: AnnotationCosts = DEFAULT_COSTS) -> None:
        from frugalseg.zoo import load_type_gain  # the zoo (timm, smp) only when a policy is loaded

        super().__init__(seed)
        self.path = Path(weights)
        self.net, types, features = load_type_gain(self.path)
        if tuple(types) != ANNOTATION_TYPES or tuple(features) != FEATURES:
            raise WeightsError(
                self.path,
                f"made for types {types} and features {features}, not {list(ANNOTATION_TYPES)} and "
                f"{list(FEATURES)}; train it again",
            )
        self.costs = costs

    def gains(self, context: TypeContext, frame: int) -> dict[str, float]:
        """The predicted J&F gain of each type on ``frame``."""
        with torch.no_grad():
            out = self.net(torch.from_numpy(frame_features(context, frame))[None])[0]
        return {kind: float(value) for kind, value in zip(ANNOTATION_TYPES, out.tolist(), strict=True)}

    def gain_per_second(self, context: TypeContext, frame: int) -> dict[str, float]:
        """The predicted J&F gain per human second of each type on ``frame``."""
        gains = self.gains(context, frame)
        seconds = type_seconds(len(context.objects), self.costs)
        return {kind: gains[kind] / max(seconds[kind], 1e-9) for kind in ANNOTATION_TYPES}

    def choose(self, view: TypeView) -> str:
        """The type of the largest predicted gain per second (ties: the cheaper type)."""
        if view.context is None:
            raise ConfigError(
                "types", "the 'learned' type policy needs the frame's context, which is missing"
            )
        seconds = type_seconds(len(view.context.objects), self.costs)
        return best_type(self.gains(view.context, view.frame), seconds)


#: The error a person leaves on a frame they accept: a mask at IoU 0.9, the field's NoC@90 mark.
ACCEPTED_ERROR = 0.1


class AutoTypePolicy(TypePolicy):
    """The cheapest type expected to leave the frame within what a person accepts (weight-free).

    The frame's expected ``1 − J&F`` comes from what a session knows without ground truth: the
    fitted error model over the video's unreliability, every annotated frame counted with the error
    its type leaves (`anchored_errors`). Each type leaves a share of it (`TYPE_RESIDUALS`, measured
    on fold a with the weight-free tools); the cheapest type (`type_seconds`) expected to end within
    `ACCEPTED_ERROR` is chosen, a mask when neither clicks nor a box will.

    Args:
        seed: unused (the policy is deterministic); kept for the policies' common signature.
        residuals: type → the share of a frame's error it leaves (default `TYPE_RESIDUALS`).
        accepted: the expected error a frame may be left with (default `ACCEPTED_ERROR`).
        costs: the annotation costs the types are ranked by.
    """

    name = "auto"

    def __init__(
        self,
        seed: int = 0,
        residuals: Mapping[str, float] | None = None,
        accepted: float = ACCEPTED_ERROR,
        costs: AnnotationCosts = DEFAULT_COSTS,
    ) -> None:
        super().__init__(seed)
        self.residuals = TYPE_RESIDUALS if residuals is None else residuals
        self.accepted = accepted
        self.costs = costs

    def expected_errors(self, context: TypeContext, frame: int) -> dict[str, float]:
        """The ``1 − J&F`` each type is expected to leave on ``frame`` (the video's anchors counted)."""
        if not context.unreliability:
            raise ConfigError(
                "types", "the 'auto' type policy needs the video's unreliability, which is missing"
            )
        kinds = dict(context.kinds)
        measured = measured_shares(context.unreliability, kinds)
        before = float(anchored_errors(measured, kinds, FITTED_ERROR, self.residuals)[frame])
        return {kind: before * self.residuals[kind] for kind in ANNOTATION_TYPES}

    def choose(self, view: TypeView) -> str:
        """The cheapest type expected to leave at most `accepted` of error, else a mask."""
        if view.context is None:
            raise ConfigError("types", "the 'auto' type policy needs the frame's context, which is missing")
        left = self.expected_errors(view.context, view.frame)
        seconds = type_seconds(len(view.context.objects), self.costs)
        fitting = [kind for kind in ANNOTATION_TYPES if left[kind] <= self.accepted] or ["mask"]
        return min(fitting, key=lambda kind: (seconds[kind], kind))


#: The type policies by name: a new policy is its class and its line here (the CLI lists these).
POLICIES: dict[str, type[TypePolicy]] = {
    cls.name: cls
    for cls in (
        MaskPolicy,
        ClicksPolicy,
        BoxPolicy,
        RandomTypePolicy,
        OracleTypePolicy,
        LookaheadTypePolicy,
        LearnedTypePolicy,
        AutoTypePolicy,
    )
}
POLICY_NAMES = tuple(POLICIES)


def get_policy(name: str, seed: int = 0, *, weights: str | Path | None = None) -> TypePolicy:
    """The type policy called ``name``; one that ``needs_weights`` (``learned``) reads them from ``weights``.

    Raises:
        ConfigError: an unknown name (the known ones listed), or a policy that needs weights without them.
        WeightsError: a ``weights`` file that is missing or not a type policy.
    """
    if name not in POLICIES:
        raise ConfigError(
            "types", f"unknown annotation type policy {name!r}; choose from {', '.join(POLICY_NAMES)}"
        )
    cls = POLICIES[name]
    if not cls.needs_weights:
        return cls(seed)
    if weights is None:
        raise ConfigError("policy", f"the {name!r} type policy needs its weights file (--policy FILE)")
    return cls.from_weights(weights, seed)
