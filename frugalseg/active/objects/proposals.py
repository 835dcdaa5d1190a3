"""What a person's session proposes next: the frame of a started video, its objects and type, and why.

`ProposalOptions` holds the knobs a proposal is made with (the frame selector, the type policy and
what they read), the same for ``annotate propose``, the annotation page and `AnnotationSession.propose`;
`next_annotation` is one started video's candidate with its expected J&F gain per human second,
from what the session knows without ground truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frugalseg.active.objects.annotation_types import AnnotationResult
from frugalseg.active.objects.diversity_features import make_diversity_features
from frugalseg.active.objects.frame_selectors import (
    PROPOSAL_SELECTOR,
    FrameSelector,
    SelectionView,
    expected_jf_gain,
    make_selector,
)
from frugalseg.active.objects.state import VideoState
from frugalseg.active.objects.type_policies import (
    LearnedTypePolicy,
    TypePolicy,
    TypeView,
    make_policy,
    type_context,
    type_seconds,
)
from frugalseg.active.propagation import unreliability
from frugalseg.data.costs import AnnotationCosts
from frugalseg.errors import ConfigError


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
        diversity_features: what the ``diversity`` selector compares (`make_diversity_features`).
        diversity_weights: the QNet or encoder weights file of those features.
    """

    frames: str = PROPOSAL_SELECTOR
    types: str = "mask"
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
            make_diversity_features(self.diversity_features, self.diversity_weights)
            if self.frames == "diversity"
            else None
        )
        selector = make_selector(self.frames, self.seed, features=features)
        chooser = make_policy(self.types, self.seed, weights=self.policy)
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
        expected = f"expected J&F gain {gain * seconds:.3f} for about {seconds:.0f} s of work"
    else:
        gain = len(state.objects) * expected_jf_gain(doubt, view.annotated, t) / seconds
        share = context.disagreement + context.unsure
        expected = (
            f"{min(share, 1.0):.0%} of the object area left to fix "
            f"({context.disagreement:.0%} where the two directions disagree, {context.unsure:.0%} "
            f"where the flow lost track{'; counted as 100 %' if share > 1 else ''}) "
            f"for about {seconds:.0f} s of work"
        )
    reason = (
        f"{selector.name} among {len(view.candidates)} frames not annotated; {expected}; "
        f"{per_frame:.1f} s per frame so far"
    )
    proposal = Proposal(name, indices[t], str(frame_paths[t]), list(context.objects), kind, reason)
    return Candidate(proposal, gain, per_frame)
