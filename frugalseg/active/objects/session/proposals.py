"""What a person's session proposes next: the frame of a started video, its objects and type, and why.

`ProposalOptions` holds the knobs a proposal is made with (the frame selector, the type policy and
what they read), the same for ``annotate propose``, the annotation page and `AnnotationSession.propose`;
`next_annotation` is one started video's candidate with its expected J&F gain per human second,
from what the session knows without ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from frugalseg.active.objects.choosing.diversity_features import get_diversity_features
from frugalseg.active.objects.choosing.frame_selectors import (
    FITTED_ERROR,
    PROPOSAL_SELECTOR,
    TYPE_RESIDUALS,
    FrameSelector,
    SelectionView,
    anchored_errors,
    expected_jf_gain,
    get_selector,
    measured_shares,
)
from frugalseg.active.objects.choosing.type_policies import (
    LearnedTypePolicy,
    TypePolicy,
    TypeView,
    get_policy,
    type_context,
    type_seconds,
)
from frugalseg.active.objects.simulation.annotation_types import AnnotationResult
from frugalseg.active.objects.state import VideoState
from frugalseg.active.propagation import unreliability
from frugalseg.data.costs import AnnotationCosts
from frugalseg.errors import ConfigError

#: The expected error (1 − J&F, `filmstrip_scores`) from which the page's filmstrip marks a frame red.
LOOK_HERE = 0.2


def filmstrip_scores(
    disagreement: Sequence[float], unsure: Sequence[float], kinds: Mapping[int, str]
) -> list[float]:
    """Per frame, the fitted error model's expected 1 − J&F (`anchored_errors`; 0 on a frame given a mask).

    What the page's filmstrip colours, on one scale for every clip: red from `LOOK_HERE` up. It ranks
    a clip's frames by their real error better than `propagation.unreliability` stretched to the clip's
    own range did, and marks fewer frames (``benchmarks/results/filmstrip.md``).

    Args:
        disagreement: per frame, the propagation's disagreement.
        unsure: per frame, its unsure share.
        kinds: annotated frame → the type of its annotation.
    """
    doubt = unreliability(disagreement, unsure, kinds)
    errors = anchored_errors(measured_shares(doubt, kinds), kinds, FITTED_ERROR, TYPE_RESIDUALS)
    return [round(float(e), 4) for e in errors]


@dataclass(frozen=True)
class Proposal:
    """The next annotation to make: a frame of a video, the objects on it, and the type.

    Attributes:
        video: the video's name.
        frame: the frame's index in the sequence.
        frame_path: the frame's file.
        objects: the known objects that have appeared by this frame (empty on a video's first
            annotation: draw every object, which declares them).
        kind: the annotation type, ``mask``, ``clicks`` or ``box``.
        reason: why this video and frame, in words.
        provisional: made while a video still propagated, from what was known of it then (the
            choice the whole clip gives may differ).
    """

    video: str
    frame: int
    frame_path: str
    objects: list[int]
    kind: str
    reason: str
    provisional: bool = False


@dataclass(frozen=True)
class ProposalOptions:
    """How proposals are chosen: a frame selector and a type policy that need no ground truth.

    Attributes:
        frames: the frame selector (`frame_selectors.SELECTORS`); ``oracle`` and ``lookahead`` need
            ground truth and are refused.
        types: the annotation type policy (`type_policies.POLICIES`); ``oracle`` is refused.
        seed: seed of the random selector and policy.
        policy: the weights file of the ``learned`` type policy.
        diversity_features: what the ``diversity`` selector compares (`get_diversity_features`).
        diversity_weights: the QNet or encoder weights file of those features.
    """

    frames: str = PROPOSAL_SELECTOR
    types: str = "auto"
    seed: int = 0
    policy: str | Path | None = None
    diversity_features: str = "descriptor"
    diversity_weights: str | Path | None = None

    def build(self) -> tuple[FrameSelector, TypePolicy]:
        """The frame selector and type policy, refused when one needs ground truth (a person's data lack it).

        Raises:
            ConfigError: an unknown selector or policy, or one that needs ground truth.
            WeightsError: a ``policy`` file that is missing or not a type policy.
        """
        features = (
            get_diversity_features(self.diversity_features, self.diversity_weights)
            if self.frames == "diversity"
            else None
        )
        selector = get_selector(self.frames, self.seed, features=features)
        chooser = get_policy(self.types, self.seed, weights=self.policy)
        for option, chosen in (("frames", selector), ("types", chooser)):
            if chosen.needs_ground_truth:
                raise ConfigError(
                    option, f"{chosen.name!r} needs ground truth, which a real annotator's data lack"
                )
        return selector, chooser


@dataclass(frozen=True)
class Candidate:
    """A started video's next annotation, its expected J&F gain per second, and its seconds per frame."""

    proposal: Proposal
    gain_per_second: float
    per_frame: float


def next_annotation(
    state: VideoState,
    frame_paths: list[Path],
    indices: list[int],
    selector: FrameSelector,
    chooser: TypePolicy,
    costs: AnnotationCosts,
    load: Callable[[], list[np.ndarray]],
    read: Callable[[Path], np.ndarray],
) -> Candidate:
    """The next annotation of one started video and its expected J&F gain per second.

    A state without current masks (its propagation failed, or has not run) is proposed from what is
    known of it (`from_annotations`), and the reason says so.

    Args:
        state: the video's state (its current masks and their unreliability).
        frame_paths: the loop's frame files.
        indices: their indices in the sequence (what a person calls the frames).
        selector: chooses the frame.
        chooser: chooses the type.
        costs: the human seconds of each type.
        load: the loop's frames (read only by the ``diversity`` selector).
        read: one frame file as H×W×3 uint8 RGB.
    """
    name = state.video
    propagated = len(state.masks) == len(state.disagreement) == len(state.unsure) == state.num_frames
    if not propagated:
        shape = next((m.shape for m in state.annotated.values()), None) or read(frame_paths[0]).shape[:2]
        state = from_annotations(state, shape)
    doubt = unreliability(state.disagreement, state.unsure, state.annotated)
    view = SelectionView(
        key=name,
        iteration=state.iteration,
        num_frames=state.num_frames,
        annotated=set(state.annotated),
        frames=load() if selector.name == "diversity" else None,
        masks=state.masks,
        unreliability=doubt,
    )
    t = selector.select(view)
    context = type_context(state, t, read(frame_paths[t]))

    def refuse(kind: str) -> AnnotationResult:
        raise ConfigError("types", f"{chooser.name!r} tries a {kind} annotation, which needs ground truth")

    kind = chooser.choose(TypeView(name, state.iteration, t, refuse, context=context))
    per_frame = state.seconds / state.num_frames
    seconds = type_seconds(len(context.objects), costs)[kind]
    if isinstance(chooser, LearnedTypePolicy):
        gain = chooser.gain_per_second(context, t)[kind]
        expected = f"the type policy expects J&F to rise by {gain * seconds:.3f} on this frame"
    else:
        gain = len(state.objects) * expected_jf_gain(doubt, view.annotated, t) / seconds
        expected = expectation(state, t, indices, expected_jf_gain(doubt, view.annotated, t))
    reason = (
        f"{selector.name} among {len(view.candidates)} frames not annotated; {expected}; "
        f"{likely_cost(state, kind, len(context.objects), costs)}; {per_frame:.1f} s per frame so far"
    )
    if not propagated:
        reason += "; the video's masks are not propagated: known from its annotated frames alone"
    proposal = Proposal(name, indices[t], str(frame_paths[t]), list(context.objects), kind, reason)
    return Candidate(proposal, gain, per_frame)


def from_annotations(state: VideoState, shape: tuple[int, ...]) -> VideoState:
    """``state`` as far as its annotations tell: their masks, empty ones elsewhere, no doubt measured.

    Frames never propagated count by their distance alone (disagreement and unsure share 0), as
    the page counts a video while it propagates.
    """
    n = state.num_frames
    masks = [state.annotated[t] if t in state.annotated else np.zeros(shape[:2], np.uint8) for t in range(n)]
    return replace(state, masks=masks, disagreement=[0.0] * n, unsure=[0.0] * n)


def expectation(state: VideoState, frame: int, indices: list[int], rise: float) -> str:
    """What the fitted error model expects of ``frame``, and the signs of doubt a person can look at.

    The frame's expected J&F (`filmstrip_scores`) with the annotated frames it is propagated from
    (what the model reads), the rise of the video's mean J&F were it annotated next (``rise``), then
    the measured shares of the object's area where the two directions disagree (two sides only) and
    where the flow was unsure: each a share of its own, never added.
    """
    kinds = state.kinds
    error = filmstrip_scores(state.disagreement, state.unsure, kinds)[frame]
    keys = sorted(kinds)
    before = [a for a in keys if a < frame][-1:]
    after = [a for a in keys if a > frame][:1]
    sources = " and ".join(str(indices[a]) for a in before + after)
    alone = "" if before and after else " alone"
    plural = "s" if before and after else ""
    text = (
        f"the error model expects J&F {1 - error:.2f} on this frame (propagated from annotated frame{plural} "
        f"{sources}{alone}) and the video's mean J&F to rise by {rise:.3f} once it is annotated"
    )
    if state.masks and not state.masks[frame].any():  # no area to be unsure of (a frame left empty)
        return text + "; no object is propagated to this frame"
    if before and after:
        text += f"; the two directions disagree on {state.disagreement[frame]:.0%} of the object's area"
    where = "it" if before and after else "the object's area"
    return text + f"; the flow was unsure of {state.unsure[frame]:.0%} of {where}"


#: How a type is made, in the words of the page's tools.
TOOL_WORDS = {"mask": "a drawn mask", "clicks": "clicks", "box": "a box and its clicks"}


def likely_cost(state: VideoState, kind: str, objects: int, costs: AnnotationCosts) -> str:
    """The seconds of the type proposed, ``kind``, on a frame of ``objects`` objects.

    The person's own seconds per object of their last annotation of that type in the video (an
    object looked at and kept as propagated is no annotation of a type), times ``objects``; with none
    yet, the cost table's seconds of ``kind`` (`type_seconds`). Never another type's: a proposal of
    clicks priced as the mask drawn before had told the person two things at once.
    """
    # object 0: a frame submitted empty ("nothing here"), not the seconds of drawing an object
    own = [a for a in state.annotations if a.kind == kind and not a.kept and a.seconds > 0 and a.object]
    words = TOOL_WORDS.get(kind, kind)
    if own:
        last = max(a.iteration for a in own)
        made = [a for a in own if a.iteration == last]
        per_object = sum(a.seconds for a in made) / len({a.object for a in made})
        return (
            f"about {_seconds(per_object * max(objects, 1))} s with {words}, as your last annotation of "
            f"this video with {words} took {_seconds(per_object)} s per object"
        )
    seconds = type_seconds(objects, costs)[kind]
    count = f"{objects} object{'s' if objects != 1 else ''}"
    return f"about {_seconds(seconds)} s for {words} of {count} (the cost table's)"


def _seconds(value: float) -> str:
    """Seconds as a person reads them: whole from 10 s, one decimal below (2.5 s is not 2 s)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
