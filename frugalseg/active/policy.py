"""The learned annotation-type policy (paper 002, part 5 of issue 12) and the gain estimates behind it.

Paper 002 trains its type policy with PPO. This one is a lighter learner: a tiny MLP
(`frugalseg.zoo.TypeGainNet`) that predicts, from cheap features of the chosen frame and
its current mask, the J&F gain of the frame that each annotation type would bring; the policy
divides each by the type's cost on that frame and takes the larger gain per second. Why not PPO:
the type decision changes only the frame it is made on, and the simulator measures its effect
exactly (`OracleTypePolicy` tries both types), so the reward of every action is observed and
regression on it is a supervised problem; PPO would have to learn the same from sampled rewards with
far more episodes than a CPU can simulate here (one episode of one 20-frame clip costs minutes of
propagation). What regression gives up is planning: it cannot trade a cheap gain now against a
better one later.

Features of a frame (`FEATURES`, no ground truth needed, so a person's session can use them): the
propagation's disagreement and unsure shares and their sum, the objects' area share, their boundary
length (per image diagonal) and its ratio to the square root of the area, the distance in frames to
the nearest annotated frame (log and share of the video), the colour contrast of the objects against
a ring around them (CIELAB, /100) and how many objects may be on the frame.

Training samples (`episode_samples`) come from the states of simulated loops (`annotate simulate`):
on every frame a state leaves unannotated, both types are tried with the simulated annotator and
their J&F gains recorded. ``frugalseg annotate train-policy`` fits the network through Lightning
(`frugalseg.lightning_modules.type_policy`) and saves it as safetensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from frugalseg.active.annotation import (
    ANNOTATION_TYPES,
    CLICKS_PER_OBJECT,
    TypeContext,
    TypePolicy,
    TypeView,
    annotate_clicks,
    annotate_mask,
    frame_quality,
)
from frugalseg.active.state import VideoState
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.errors import ConfigError, WeightsError

if TYPE_CHECKING:
    from frugalseg.active.click_models import ClickToMask
    from frugalseg.active.loop import Video  # the loop builds on this module

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
    return {
        "mask": costs.vos_mask_seconds * objects,
        "clicks": costs.click_seconds * CLICKS_PER_OBJECT * objects + costs.clicked_frame_seconds,
    }


def best_type(gains: dict[str, float], seconds: dict[str, float]) -> str:
    """The type of the largest ``gains`` per ``seconds``; ties go to the cheaper type."""
    return max(ANNOTATION_TYPES, key=lambda k: (gains[k] / max(seconds[k], 1e-9), -seconds[k]))


def estimated_gain_per_second(
    context: TypeContext, kind: str, costs: AnnotationCosts = DEFAULT_COSTS
) -> float:
    """A weight-free guess of the gain per second of ``kind`` on a frame: its unreliable share per second.

    The share of the object area where the propagation disagrees or is unsure (at most 1) stands for
    what an annotation can still fix; it ranks videos when no learned policy is given.
    """
    gain = min(1.0, context.disagreement + context.unsure)
    return gain / max(type_seconds(len(context.objects), costs)[kind], 1e-9)


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


def episode_samples(
    video: Video,
    state: VideoState,
    costs: AnnotationCosts = DEFAULT_COSTS,
    click_model: ClickToMask | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N×F) and the J&F gain of each type (N×K) on every frame ``state`` left unannotated.

    Each type is tried with the simulated annotator on the frame's current mask; the gain is that of
    the frame's J&F over the video's objects, as `OracleTypePolicy` measures it.
    """
    truth = video.require_truth()
    objects = sorted(state.objects)
    features, gains = [], []
    for t in range(state.num_frames):
        if t in state.annotated:
            continue
        current = state.masks[t]
        before = sum(frame_quality(current, truth[t], objects)) / 2
        results = {
            "mask": annotate_mask(truth[t], costs),
            "clicks": annotate_clicks(video.frames[t], current, truth[t], costs, model=click_model),
        }
        after = {k: sum(frame_quality(r.mask, truth[t], objects)) / 2 for k, r in results.items()}
        features.append(frame_features(type_context(state, t, video.frames[t]), t))
        gains.append([after[k] - before for k in ANNOTATION_TYPES])
    width = len(FEATURES)
    return (
        np.asarray(features, np.float32).reshape(-1, width),
        np.asarray(gains, np.float32).reshape(-1, len(ANNOTATION_TYPES)),
    )


def run_samples(
    run: str | Path,
    videos: Sequence[str] | None = None,
    *,
    loops: Sequence[str] | None = None,
    costs: AnnotationCosts = DEFAULT_COSTS,
    click_model: ClickToMask | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`episode_samples` of every loop state of an ``annotate simulate`` run folder.

    Args:
        run: the run's folder (``run.json`` and ``runs/<strategy>/seed<k>/<video>/``).
        videos: use only these videos (None: all); e.g. the training clips of a split by clip.
        loops: use only the loops of these strategies and seeds, ``<frames>-<types>/seed<k>`` (None: all).
        costs: annotation costs.
        click_model: the click-to-mask model of the ``clicks`` type (None: GrabCut).

    Returns:
        The features, the gains, and the video of each sample.

    Raises:
        DataError: the folder holds no run, or a video's frames or masks cannot be read.
    """
    from frugalseg.active.simulate import run_loop_folders
    from frugalseg.errors import DataError

    features, gains, names = [], [], []
    for source, folders in run_loop_folders(run, videos, loops):
        video = source.load()
        for folder in folders:
            state, whole = VideoState.load(folder)
            if not whole or not state.masks:
                continue
            x, y = episode_samples(video, state, costs, click_model)
            features.append(x)
            gains.append(y)
            names += [source.name] * len(x)
    if not features:
        raise DataError(run, "holds no finished loop state of the videos asked for")
    return np.concatenate(features), np.concatenate(gains), names
