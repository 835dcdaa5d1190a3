"""The weight-free propagation engine: a label carried along chained DIS optical flow (CPU only).

`FlowPropagator` warps the anchor's label frame by frame, checks every step's flow (forward-backward,
photometric), lets the direct flow to the anchor take over where the chain loses track, votes
unreliable pixels by majority, optionally snaps labels to the frame's colours, and scores each
pixel's confidence. `frugalseg.autolabel.propagate.propagate_split` runs it over a data set.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import zip_longest
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from frugalseg.autolabel.flow_options import FlowOptions, FlowSnap
from frugalseg.autolabel.propagate import LabelReady, PropagationEngine, check_propagation_inputs
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.errors import ConfigError, DataError
from frugalseg.flow import DISFlow, backward_warp_np, forward_backward_mask_np, photometric_mask_np
from frugalseg.flow.ahead import FlowsAhead, opencv_threads, usable_cores
from frugalseg.flow.dragged import drop_dragged
from frugalseg.flow.motion import moved_masks
from frugalseg.flow.raft import RAFTFlow
from frugalseg.flow.refine import anchor_colour_models, object_cut, snap_labels
from frugalseg.flow.warp import points_flow, sample_points


@dataclass
class Evidence:
    """What the flow engine knows about a propagated label's pixels (H×W bool maps, None if not computed).

    Attributes:
        distance: frames between the target and the anchor.
        reliable: the last step's flow passed the forward-backward and photometric checks (or the
            direct flow to the anchor did, where it supplied the label).
        lost: the chain was unreliable here at some step and the direct flow did not take over.
        direct_disagrees: the direct flow to the anchor is reliable here and gives another label.
        snapped: the label was re-decided on the frame (snapping or the object cut changed it).
    """

    distance: int
    reliable: np.ndarray
    lost: np.ndarray | None = None
    direct_disagrees: np.ndarray | None = None
    snapped: np.ndarray | None = None


CONFIDENCE_WINDOW = 7  # side (px) of the window over which flow reliability is averaged
CONFIDENCE_EDGE = 6.0  # distance (px) to a label boundary from which the boundary no longer costs
CONFIDENCE_DECAY = 0.02  # confidence lost per frame of distance to the anchor


def label_confidence(label: np.ndarray, evidence: Evidence) -> np.ndarray:
    """A propagated label's per-pixel confidence in 0…1 (H×W float32; 0 where ``label`` is 255).

    The product of factors, each 1 where its evidence is clean:

    * reliability: ``0.3 + 0.7 ×`` the share of reliable pixels in a 7×7 window (a pixel among
      failed flow checks is suspect even where its own check passed);
    * boundary: ``0.5 + 0.5 × min(1, d / 6)`` with ``d`` the distance (px) to the nearest pixel of
      another label, since drift and snapping errors sit on boundaries;
    * history: ×0.6 where the chain lost track and the direct flow did not take over, ×0.5 where
      the reliable direct flow gives another label, ×0.5 where snapping changed the label;
    * distance: ``1 / (1 + 0.02 × (distance − 1))`` (errors accumulate along the chain).
    """
    # in place, one float32 map: the same products as one temporary per factor, in the same order
    confidence = cv2.blur(evidence.reliable.astype(np.float32), (CONFIDENCE_WINDOW, CONFIDENCE_WINDOW))
    np.multiply(confidence, np.float32(0.7), out=confidence)
    np.add(confidence, np.float32(0.3), out=confidence)
    edge = cv2.dilate(label, np.ones((3, 3), np.uint8)) != cv2.erode(label, np.ones((3, 3), np.uint8))
    boundary = cv2.distanceTransform((~edge).view(np.uint8), cv2.DIST_L2, 3)
    np.divide(boundary, np.float32(CONFIDENCE_EDGE), out=boundary)
    np.minimum(boundary, np.float32(1.0), out=boundary)
    np.multiply(boundary, np.float32(0.5), out=boundary)
    np.add(boundary, np.float32(0.5), out=boundary)
    confidence *= boundary
    for mask, factor in ((evidence.lost, 0.6), (evidence.direct_disagrees, 0.5), (evidence.snapped, 0.5)):
        if mask is not None:
            np.multiply(confidence, np.float32(factor), out=confidence, where=mask)
    decay = 1.0 / (1.0 + CONFIDENCE_DECAY * max(evidence.distance - 1, 0))
    np.multiply(confidence, np.float32(decay), out=confidence)
    np.copyto(confidence, np.float32(0.0), where=label == IGNORE_INDEX)
    result: np.ndarray = np.clip(confidence, 0.0, 1.0, out=confidence)
    return result


#: The least side (px) of frames shrunk by a downscale option: DIS needs it, and the snap's GrabCut,
#: whose colour models are learnt on boxes of the shrunk frame, has next to nothing to learn from below it.
MIN_SHRUNK_SIDE = DISFlow.MIN_SIDE


class FlowPropagator(PropagationEngine):
    """Carry a label to nearby frames by chained backward warping along DIS optical flow.

    For a target one step further from the anchor (frame ``t+1`` after ``t``, or ``t−1`` before it)
    the flows between it and the nearer frame are computed in both directions and the nearer
    frame's label is sampled at ``p + flow(p)`` with nearest sampling. A pixel is *unreliable* where
    the two flows fail the forward-backward check (occlusion, bad match) or, with ``photo_tol``,
    where its grey level differs from the nearer frame's at the sample point by more than
    ``photo_tol`` (disoccluded pixels that the smooth flow filled with a neighbour's motion pass the
    forward-backward check but land on the wrong texture). Samples from outside the frame are 255
    and stay 255 down the chain. What happens to unreliable pixels is chosen by ``occlusion``:

    * ``"ignore"``: they become 255 and stay 255 further down the chain. Precise (on 3 synthetic
      streets clips 99.8 % of the labelled pixels agree with the ground truth at ±10) but sparse:
      on real video the checks also reject many pixels whose flow is merely noisy (reflections on
      a car), so whole parts of objects go unlabelled (DAVIS car-shadow: J 0.75 at +1, 0.38 at +10,
      255 counted as not-object).
    * ``"label"``: an unreliable pixel takes the majority label of the ``vote_size`` ×
      ``vote_size`` window of sampled labels around it. A moving object's flow, smoothed into the
      background it uncovers, drags its label along as a thin trail that the majority removes,
      while a pixel inside an object whose flow is merely noisy keeps the object's label. With
      ``direct``, pixels that were unreliable at any step of the chain are then labelled, for
      targets two or more frames away, by sampling the anchor label along the flow straight from
      the target to the anchor where that flow passes the same checks: trails grow at every step
      of a chain, but not in one long-range match. A target's pixel is output as 255 where it was
      unreliable at the target's own step, the direct flow did not label it, and the majority both
      differs from its sample and leads the runner-up by less than ``vote_margin`` of the window.
      On DAVIS blackswan / car-shadow J (255 = not object) at +10 is 0.93 / 0.87 against
      0.89 / 0.81 for plain chained warping, at the same J at +1; figures for the synthetic set
      and the share of each feature in ``benchmarks/results/propagation_quality.md``.

    Two further features (defaults since issue 10) make the labels hold up on hard real video:

    * ``chain_direct``: the labels taken from the direct flow to the anchor also feed the chain
      (re-anchoring at every step two or more frames away), instead of only the output. The chain
      then restarts from the anchor's own label wherever the long-range match is reliable.
    * ``snap``: after each step the label is snapped to its own frame (`frugalseg.flow.refine.snap_labels`):
      GrabCut re-decides the unreliable pixels within ``snap_band`` px of a class boundary (and
      unreliable ones up to ``snap_reach`` px), with colour models of the class and its
      surroundings learned around it; reliable pixels are fixed, and the chain carries the snapped
      label on, so drift is corrected at each step rather than accumulated. Only label maps with at
      most ``snap_max_classes`` classes are snapped (object masks; street scenes with their many
      classes are not, so they cost nothing more there).

    A third (default since issue 10, round 2) gives back whole parts the flow lost:

    * ``object_cut``: from ``object_cut_from`` frames away from the anchor on, each object is
      re-segmented on its frame by GrabCut with colour models of the object and its surroundings
      learnt once on the annotated frame and kept frozen (`frugalseg.flow.refine.object_cut`),
      over the object grown by ``object_cut_grow`` px: its reliable pixels eroded by
      ``object_cut_erode`` px are sure object, reliable pixels outside it sure background, the rest
      open. Snapping's local models are learnt from the drifting label itself; the anchor's are
      not, so a limb the flow dropped (fast articulated motion) is recovered.
    * ``motion_prior`` (round 3): before the cut, each object's previous mask is moved by the
      object's own motion, a similarity transform fitted with RANSAC to corners on the object
      tracked by pyramidal Lucas-Kanade (`frugalseg.flow.motion`). Where the moved mask and the
      flow's label disagree the flow is not trusted: those pixels are open to the cut, and the ones
      the moved mask claims start as the object. Dense flow gives a small or fast object the
      background's motion (parts left behind, a trail where it was); the tracked corners follow it.
    * ``drop_dragged`` (issue 44): in each label output, an object's pixels that move as the background
      does, where the object's and the background's motions lie apart, are background
      (`frugalseg.flow.dragged`): a camera panning after the object had left the background beside it
      in the mask, carried along with the background. The label carried on keeps them, so a part taken
      wrongly (a foot planted on the ground) is not lost for the frames after. The loop's engine
      (``downscale=2``), mean J over frames 1-39 of the 8 clips: 0.732 → 0.753 (scooter-black 0.666 →
      0.757, car-shadow 0.713 → 0.745; no clip lower); over frames 41-79 from frame 40's truth, which the
      constants never saw: 0.752 → 0.754 (parkour 0.818 → 0.810, the rest level or higher).

    Measured on the 8 DAVIS-2016 clips of ``davis_dev`` + ``davis_hard`` (mean J at +1 / +5 / +10,
    255 = not object; ``benchmarks/results/propagation_quality.md``): plain chained DIS
    0.915 / 0.777 / 0.603; the engine before (``chain_direct=False, snap=False,
    object_cut=False``) 0.917 / 0.802 / 0.650; ``chain_direct`` alone 0.917 / 0.807 / 0.678; with
    snapping (``object_cut=False``, the default of round 1) 0.923 / 0.845 / 0.749; with the object
    cut (``motion_prior=False``, round 2) 0.923 / 0.860 / 0.788; the default 0.923 / 0.868 / 0.819,
    within 0.01 of chained DIS at +1 on every clip (0.923 / 0.869 / 0.820 since each direction seeds
    OpenCV's RNG, issue 28). Snapping and the object
    cut cost a GrabCut each per object and frame: at 854×480 (±3, one busy core) round 1's
    default labelled 1.5 frames/s against 2.7 before (this round's figures in the results file);
    at 2048×1024 street scenes are neither snapped nor cut and the cost is that of the engine
    before (0.41 vs 0.45 frames/s on the same busy core). The faster setting
    ``preset="fast", snap_downscale=2, snap_iterations=1`` labels about 3.6 frames/s at 854×480
    for 0.889 / 0.809 / 0.690 (worse than chained DIS at +1 on fast clips, better from +5 on).

    `propagate_with_confidence` also returns a confidence map per label (`label_confidence`): from
    the flow checks around the pixel, the distance to a label boundary, whether the chain lost
    track, whether the direct flow disagrees, whether snapping changed the label, and the distance
    in frames to the anchor.

    Re-sampling the label at every step was kept over composing the flows and sampling the anchor
    label once: on 3 synthetic streets clips (no photometric check) re-sampling agrees with the
    ground truth on 98.8 % of the labelled pixels at ±10 against 98.2 % for composition. Each flow
    is computed once per clip, only between the anchor and the farthest target on each side (and,
    with ``direct``, between the anchor and each target two or more frames away).

    Speed (issue 28). No flow depends on a label, so all of them are known before the first step:
    they are computed ahead on ``workers`` threads (every core by default; OpenCV releases the GIL),
    with each step's forward-backward and photometric checks, while the two directions (after and
    before the anchor) work on their labels at once on two more threads; each frame's grey image is
    made once, and each flow's sample points serve the warps and the checks. The labels do not
    depend on ``workers`` (each direction seeds OpenCV's RNG, which snapping's GrabCut draws from).
    At 2048×1024 the flows are 75 % of the work (20 DIS flows for ±3, against 6 for plain chained
    DIS): 1.9× the time of plain chained DIS on one core (both cores for this engine);
    `frugalseg.autolabel.flow_options.SPEEDS` names faster settings with their cost in J.

    The options are named here by their flat names (`FlowOptions.from_flat`), the keys of `settings`.

    Args:
        options: the engine's options by part (`FlowOptions`: the flow, its checks, what becomes of
            unreliable pixels, snapping, the object cut, speed); None: the defaults, the measured ones.
    """

    streams_labels = True
    makes_confidence = True
    Options = FlowOptions

    name = "flow"

    def __init__(self, options: FlowOptions | None = None) -> None:
        self.options = options = FlowOptions() if options is None else options
        estimator, speed = options.estimator, options.speed
        self.flow: DISFlow | RAFTFlow  # the chain's flows
        self.direct_flow: DISFlow | RAFTFlow  # the direct flows to the anchor
        self.check_flow: DISFlow | RAFTFlow  # the flows that check the chain's
        self.direct_check_flow: DISFlow | RAFTFlow  # the flows that check the direct ones
        if estimator.method == "dis":
            made: dict[tuple[str, int], DISFlow] = {}  # one engine (and its OpenCV objects) per setting

            def dis(name: str, factor: int) -> DISFlow:
                if (name, factor) not in made:
                    made[name, factor] = DISFlow(preset=name, downscale=speed.downscale * factor)
                return made[name, factor]

            to_anchor = estimator.preset if speed.direct_preset is None else speed.direct_preset
            self.flow = dis(estimator.preset, 1)
            self.direct_flow = dis(to_anchor, speed.direct_downscale)
            self.check_flow = dis(estimator.preset, speed.check_downscale)
            self.direct_check_flow = dis(to_anchor, speed.direct_downscale * speed.check_downscale)
        else:  # raft: FlowOptions checked that the weights are given and no DIS-only setting is
            assert estimator.raft_weights is not None
            self.flow = RAFTFlow(estimator.raft_weights, model=estimator.raft_model, device=estimator.device)
            self.direct_flow = self.check_flow = self.direct_check_flow = self.flow
        self.workers = usable_cores() if speed.workers is None else speed.workers
        self._workers_given = speed.workers is not None

    @classmethod
    def from_options(cls, options: FlowOptions) -> FlowPropagator:
        """The engine with these options."""
        return cls(options)

    def check_anchor(self, anchor_label: np.ndarray, instance_ids: np.ndarray | None, path: Path) -> None:
        """Refuse frames too small for a DIS flow, or that a downscale option shrinks below a least size.

        Raises:
            DataError: naming the anchor's label, when the frames themselves are too small.
            ConfigError: naming the option (flat name) whose factor shrinks them too far, and the
                largest factor these frames allow.
        """
        height, width = anchor_label.shape
        side = min(height, width)
        dis = isinstance(self.flow, DISFlow)
        if dis and side < DISFlow.MIN_SIDE:
            raise DataError(
                path,
                f"frames of {width}×{height} are too small for DIS optical flow: it needs {DISFlow.MIN_SIDE} "
                "px a side",
            )
        for option, factors, what in self._shrinking_options(dis):
            factor = int(np.prod(list(factors.values())))
            if side // factor >= MIN_SHRUNK_SIDE:
                continue
            others = int(np.prod([v for k, v in factors.items() if k != option]))
            given = " × ".join(f"{k} {v}" for k, v in factors.items() if v > 1)
            shrunk = f"{width // factor}×{height // factor}"
            verb = "shrink" if len(given.split(" × ")) > 1 else "shrinks"
            raise ConfigError(
                option,
                f"{given} {verb} the frames of {width}×{height} ({path}) to {shrunk} px, too small for "
                f"{what}, which needs {MIN_SHRUNK_SIDE} px a side: at most {option} "
                f"{max(1, side // (MIN_SHRUNK_SIDE * others))} for these frames",
            )

    def _shrinking_options(self, dis: bool) -> list[tuple[str, dict[str, int], str]]:
        """What shrinks frames, each as (the option to name, the factors by option, what for)."""
        speed, snap = self.options.speed, self.options.snap
        chain = {"downscale": speed.downscale}
        check, direct = (
            {"check_downscale": speed.check_downscale},
            {"direct_downscale": speed.direct_downscale},
        )
        shrinks = []
        if dis:
            flows = "DIS optical flow"
            shrinks += [
                ("downscale", chain, flows),
                ("check_downscale", {**chain, **check}, flows),
                ("direct_downscale", {**chain, **direct}, flows),
                ("direct_downscale", {**chain, **direct, **check}, flows),
            ]
        if snap.enabled and self.options.occlusion.mode == "label":
            shrinks.append(("snap_downscale", {"snap_downscale": snap.downscale}, "snapping (GrabCut)"))
        return shrinks

    @property
    def settings(self) -> dict[str, Any]:
        """The settings recorded in the manifest and ``run.json``."""
        flow_settings: dict[str, Any] = (
            {"preset": self.flow.preset, "downscale": self.flow.downscale}
            if isinstance(self.flow, DISFlow)
            else {"flow": self.flow.settings}
        )
        checks, occlusion, speed = self.options.checks, self.options.occlusion, self.options.speed
        settings = {
            **flow_settings,
            "fb_alpha": checks.fb_alpha,
            "fb_beta": checks.fb_beta,
            "photo_tol": checks.photo_tol,
            "occlusion": occlusion.mode,
        }
        if speed.check_downscale > 1:
            settings["check_downscale"] = speed.check_downscale
        if occlusion.mode == "label":
            settings.update(
                vote_size=occlusion.vote_size, vote_margin=occlusion.vote_margin, direct=occlusion.direct
            )
            if occlusion.direct:
                settings["chain_direct"] = occlusion.chain_direct
                if speed.direct_downscale > 1:
                    settings["direct_downscale"] = speed.direct_downscale
                if speed.direct_preset is not None:
                    settings["direct_preset"] = speed.direct_preset
            snap, cut = self.options.snap, self.options.object_cut
            settings["snap"] = snap.enabled
            if snap.enabled:
                settings.update(
                    snap_band=snap.band,
                    snap_reach=snap.reach,
                    snap_iterations=snap.iterations,
                    snap_max_classes=snap.max_classes,
                    snap_downscale=snap.downscale,
                )
            elif cut.enabled and snap.max_classes != FlowSnap().max_classes:
                # the cut's colour models take as many classes as the snap (the default, unrecorded before)
                settings["snap_max_classes"] = snap.max_classes
            settings["object_cut"] = cut.enabled
            if cut.enabled:
                settings.update(
                    object_cut_grow=cut.grow,
                    object_cut_erode=cut.erode,
                    object_cut_from=cut.min_distance,
                    motion_prior=cut.motion_prior,
                    drop_dragged=cut.drop_dragged,
                )
        return settings

    @property
    def on_threads(self) -> bool:  # type: ignore[override]
        """DIS flows run on a pool of threads; RAFT's on its device, one after the other."""
        return all(isinstance(compute, DISFlow) for compute in self.flow_engines.values())

    @property
    def flow_engines(self) -> dict[str, DISFlow | RAFTFlow]:
        """The flow engine of each kind of flow the chain asks for."""
        return {
            "chain": self.flow,
            "chain check": self.check_flow,
            "direct": self.direct_flow,
            "direct check": self.direct_check_flow,
        }

    def clips_at_once(self, clips: int) -> int:
        """How many of a job's ``clips`` `propagate_split` labels at once; the engine takes its core share.

        On object masks the calling thread's GrabCut keeps the flow threads waiting, so one clip per
        core, each with its share of the flow threads, uses the cores better. A ``workers`` count
        given to the constructor keeps one clip at a time on that many threads.
        """
        if self._workers_given:
            return 1
        at_once = max(1, min(clips, usable_cores()))
        self.share_cores(at_once)
        return at_once

    def share_cores(self, processes: int) -> None:
        """Compute flows on this process's share of the cores, when ``processes`` run on the machine.

        A ``workers`` count given to the constructor is kept.
        """
        if not self._workers_given:
            self.workers = max(1, usable_cores() // max(1, processes))

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
        *,
        on_label: LabelReady | None = None,
    ) -> dict[int, np.ndarray]:
        """Labels for the frames at indices ``targets``; the arguments are `PropagationEngine.propagate`'s.

        The confidence maps are not made (`propagate_with_confidence` makes them too). ``on_label``
        is called with each target's index, label and None as soon as that label is made.
        """
        found = self._propagate(
            frames, anchor_index, anchor_label, targets, confidence=False, on_label=on_label
        )
        return {index: label for index, (label, _) in found.items()}

    def propagate_with_confidence(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
        *,
        on_label: LabelReady | None = None,
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Labels for the frames at indices ``targets``, each with its confidence map.

        A confidence map is H×W float32 in 0…1, 0 where the label is 255 (see `label_confidence`);
        arguments as `propagate`'s.
        """
        found = self._propagate(
            frames, anchor_index, anchor_label, targets, confidence=True, on_label=on_label
        )
        return {index: (label, cast(np.ndarray, confidence)) for index, (label, confidence) in found.items()}

    def _propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
        *,
        confidence: bool,
        on_label: LabelReady | None = None,
    ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """Labels for the frames at indices ``targets``, each with its confidence map if ``confidence``.

        ``on_label(index, label, confidence)`` is called as each label is made, nearest the anchor
        first in each direction (from the thread of that direction).
        """
        check_propagation_inputs(frames, anchor_index, anchor_label, targets)
        wanted = set(targets)
        results: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        options = self.options
        models = (
            anchor_colour_models(anchor_label, frames[anchor_index], max_classes=options.snap.max_classes)
            if options.object_cut.enabled and options.occlusion.mode == "label"
            else {}
        )
        if anchor_index in wanted:
            labelled = (anchor_label != IGNORE_INDEX).astype(np.float32) if confidence else None
            results[anchor_index] = anchor_label.copy(), labelled
            if on_label is not None:
                on_label(anchor_index, *results[anchor_index])
        chains = [
            (anchor_index, farthest, step)
            for step, farthest in (
                (1, max(wanted, default=anchor_index)),
                (-1, min(wanted, default=anchor_index)),
            )
        ]
        clip = _ClipFlows(self, frames)
        workers = self.workers if self.on_threads else 1
        with (
            opencv_threads(1),
            FlowsAhead(clip.link, self._link_order(chains, wanted), workers) as clip.links,
        ):
            label = partial(
                self._chain,
                clip,
                anchor_label,
                wanted=wanted,
                models=models,
                confidence=confidence,
                on_label=on_label,
            )
            if workers == 1:
                for chain in chains:
                    results.update(label(*chain))
            else:  # both directions at once: while one waits for a flow or cuts, the other works
                with ThreadPoolExecutor(len(chains), thread_name_prefix="chain") as pool:
                    for found in pool.map(lambda chain: label(*chain), chains):
                        results.update(found)
        return results

    def _uses_direct(self, anchor_index: int, far: int, step: int, wanted: set[int]) -> bool:
        """Whether the step to ``far`` relabels the pixels the chain lost along the flow to the anchor."""
        occlusion = self.options.occlusion
        return (
            occlusion.direct
            and occlusion.mode == "label"
            and far != anchor_index + step
            and (occlusion.chain_direct or far in wanted)
        )

    def _link_order(self, chains: Sequence[tuple[int, int, int]], wanted: set[int]) -> list[_LinkKey]:
        """Every link (a sampled flow and its check) the chains need, in the order `_chain` asks for them.

        The chains run at once, so their links alternate.
        """
        per_chain: list[list[_LinkKey]] = []
        for anchor_index, farthest, step in chains:
            links: list[_LinkKey] = []
            for near in range(anchor_index, farthest, step):
                far = near + step
                links.append(("chain", near, far))
                if self._uses_direct(anchor_index, far, step, wanted):
                    links.append(("direct", anchor_index, far))
            per_chain.append(links)
        return [key for keys in zip_longest(*per_chain) for key in keys if key is not None]

    def _chain(
        self,
        clip: _ClipFlows,
        anchor_label: np.ndarray,
        anchor_index: int,
        farthest: int,
        step: int,
        wanted: set[int],
        models: dict[int, Any],
        confidence: bool,
        on_label: LabelReady | None,
    ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """Labels (and with ``confidence`` their maps) of the wanted frames, anchor to ``farthest``."""
        frames, options = clip.frames, self.options
        snap, cut = options.snap, options.object_cut
        results: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        label, lost = anchor_label, anchor_label == IGNORE_INDEX
        # snapping's GrabCut starts from k-means on OpenCV's RNG, one per thread: seeded, each chain
        # gives the same labels on any thread and whatever the other chain does
        cv2.setRNGSeed(0)
        for near in range(anchor_index, farthest, step):
            far = near + step
            previous = label
            label, lost, unsure, reliable, points = self._step(clip, label, lost, near, far)
            evidence = Evidence(distance=abs(far - anchor_index), reliable=reliable)
            fill = None
            if self._uses_direct(anchor_index, far, step, wanted):
                found, found_reliable, _, _ = self._sample(clip, "direct", anchor_label, anchor_index, far)
                evidence.direct_disagrees = found_reliable & (found != label)
                take = lost & found_reliable
                unsure &= ~take
                if options.occlusion.chain_direct:
                    label = np.where(take, found, label)
                    reliable |= take
                    evidence.direct_disagrees &= ~take
                else:
                    fill = take, found
                evidence.lost = lost & ~take
            else:
                evidence.lost = lost.copy()
            if snap.enabled and options.occlusion.mode == "label":
                label, evidence.snapped = snap_labels(
                    label,
                    reliable,
                    frames[far],
                    band=snap.band,
                    reach=snap.reach,
                    iterations=snap.iterations,
                    max_classes=snap.max_classes,
                    downscale=snap.downscale,
                )
            if models and abs(far - anchor_index) >= cut.min_distance:
                proposal, trusted = label, reliable
                if cut.motion_prior:
                    proposal, trusted = _with_motion_prior(
                        label,
                        reliable,
                        moved_masks(previous, frames[near], frames[far], list(models)),
                        list(models),
                    )
                cut_label, _ = object_cut(
                    proposal,
                    trusted,
                    frames[far],
                    models,
                    grow=cut.grow,
                    erode=cut.erode,
                )
                changed = cut_label != label
                label = cut_label
                evidence.snapped = changed if evidence.snapped is None else evidence.snapped | changed
            if far in wanted:
                filled = label if fill is None else np.where(fill[0], fill[1], label)
                if models and cut.drop_dragged:  # the output only: a part taken wrongly is not carried on
                    filled, dropped = drop_dragged(filled, points_flow(points), models)
                    evidence.snapped = dropped if evidence.snapped is None else evidence.snapped | dropped
                output = np.where(unsure, np.uint8(IGNORE_INDEX), filled)
                results[far] = output, label_confidence(output, evidence) if confidence else None
                if on_label is not None:
                    on_label(far, *results[far])
        return results

    def _sample(
        self,
        clip: _ClipFlows,
        kind: str,
        near_label: np.ndarray,
        near: int,
        far: int,
        near_lost: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """``near_label`` (frame ``near``'s) sampled along the flow from frame ``far``, and where reliable.

        ``kind`` names the link (``chain`` or ``direct``, `_ClipFlows.link`); ``near_lost`` is carried
        along the same flow (True outside the frame). Returns the label, where it is reliable, the lost
        map carried (or None) and the flow's sample points (`frugalseg.flow.sample_points`).
        """
        points, reliable = clip.links((kind, near, far))
        label = backward_warp_np(near_label, None, nearest=True, fill=IGNORE_INDEX, points=points)
        lost = None
        if near_lost is not None:
            carried = backward_warp_np(near_lost.view(np.uint8), None, nearest=True, fill=1, points=points)
            lost = carried.view(bool)
        return label, reliable & (label != IGNORE_INDEX), lost, points

    def _step(
        self, clip: _ClipFlows, near_label: np.ndarray, near_lost: np.ndarray, near: int, far: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One link of the chain, from frame ``near`` to frame ``far``.

        Returns the label of ``far``, where the chain has lost track (unreliable at this or an earlier
        step), where the label is unsure (to be output as 255), where this step's flow was reliable, and
        that flow's sample points.
        """
        label, reliable, lost, points = self._sample(clip, "chain", near_label, near, far, near_lost)
        assert lost is not None
        unreliable = ~reliable & (label != IGNORE_INDEX)
        unsure = np.zeros_like(unreliable)
        occlusion = self.options.occlusion
        if occlusion.mode == "ignore":
            label[unreliable] = IGNORE_INDEX
        elif occlusion.vote_size > 1 and unreliable.any():
            # in a window of one class the majority is the pixel's own label: vote where classes meet
            window = np.ones((occlusion.vote_size, occlusion.vote_size), np.uint8)
            mixed = cv2.dilate(label, window) != cv2.erode(label, window)
            where = np.flatnonzero(unreliable & mixed)
            majority, lead = _majority(label, occlusion.vote_size, where)
            unsure.ravel()[where] = (lead < occlusion.vote_margin) & (majority != label.ravel()[where])
            label.ravel()[where] = majority
        return label, lost | ~reliable, unsure, reliable, points


_FlowKey = tuple[str, int, int]  # (a key of FlowPropagator.flow_engines, from frame, to frame)
_LinkKey = tuple[str, int, int]  # ("chain" or "direct", nearer frame, farther frame)


class _ClipFlows:
    """One clip's frames, the links between them, and the grey images those are made from (once each)."""

    def __init__(self, engine: FlowPropagator, frames: Sequence[np.ndarray]) -> None:
        self.engine = engine
        self.frames = frames
        self.links: FlowsAhead[tuple[np.ndarray, np.ndarray]]
        self._flow_greys: dict[tuple[int, int], np.ndarray] = {}  # (the flow engine's downscale, frame)
        self._greys: dict[int, np.ndarray] = {}

    def link(self, key: Hashable) -> tuple[np.ndarray, np.ndarray]:
        """Sample points of the flow from a `_LinkKey`'s farther frame to its nearer; where it is reliable.

        Reliable: the flow passes the forward-backward check against the flow back and, with
        ``photo_tol``, the photometric check. Called on the flow threads: none of it depends on a label.
        """
        kind, near, far = cast(_LinkKey, key)
        checks = self.engine.options.checks
        flow_far_near = self.flow((kind, far, near))
        flow_near_far = self.flow((f"{kind} check", near, far))
        points = sample_points(flow_far_near)
        # samples landing outside the frame fail this check too
        reliable = forward_backward_mask_np(
            flow_far_near, flow_near_far, checks.fb_alpha, checks.fb_beta, points=points
        )
        if checks.photo_tol is not None:
            reliable &= photometric_mask_np(self.grey(far), self.grey(near), points, checks.photo_tol)
        return points, reliable

    def flow(self, key: _FlowKey) -> np.ndarray:
        """The flow of a `_FlowKey`."""
        kind, first, second = key
        compute = self.engine.flow_engines[kind]
        if not isinstance(compute, DISFlow):
            return compute(self.frames[first], self.frames[second])
        return compute.between(
            self._flow_grey(compute, first), self._flow_grey(compute, second), self.frames[first].shape[:2]
        )

    def _flow_grey(self, compute: DISFlow, index: int) -> np.ndarray:
        key = compute.downscale, index  # DIS presets at one size share the grey image
        if key not in self._flow_greys:  # two threads may both make it: same image, no harm
            self._flow_greys[key] = compute.gray(self.frames[index])
        return self._flow_greys[key]

    def grey(self, index: int) -> np.ndarray:
        """Frame ``index``'s grey levels as float32, for the photometric check."""
        if index not in self._greys:  # two threads may both make it: same image, no harm
            self._greys[index] = cv2.cvtColor(self.frames[index], cv2.COLOR_RGB2GRAY).astype(np.float32)
        return self._greys[index]


def _with_motion_prior(
    label: np.ndarray, reliable: np.ndarray, moved: dict[int, np.ndarray], objects: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The label and reliable map handed to the object cut, given each object's moved previous mask.

    Where a moved mask and the flow's label disagree, the flow is not trusted: those pixels become
    open to the cut (not reliable), and the ones the moved mask claims start as the object. Pixels
    the flow reliably gives to another of the ``objects`` are left to that object.
    """
    if not moved:
        return label, reliable
    taken = np.isin(label, list(objects)) & reliable
    label, reliable = label.copy(), reliable.copy()
    for value, prior in moved.items():
        current = label == value
        disputed = (prior ^ current) & ~(taken & ~current)
        reliable[disputed] = False
        label[disputed & prior] = value
    return label, reliable


def _majority(label: np.ndarray, size: int, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Majority label of the ``size`` × ``size`` window (255 left out) at the flat indices ``where``.

    Also returns its lead over the runner-up as a fraction of the window's labelled pixels (255 where
    none). Counts are 16-bit box sums of each class's mask (``size`` ≤ 255), read only at ``where``
    and computed only over the class's bounding box grown by twice the window's reach: farther
    pixels see none of the class, even through the box filter's mirrored border.
    """
    best = np.full(where.size, IGNORE_INDEX, np.uint8)
    top = np.zeros(where.size, np.uint16)
    second = np.zeros(where.size, np.uint16)
    total = np.zeros(where.size, np.uint16)
    height, width = label.shape
    ys, xs = np.divmod(where, width)
    margin = 2 * (size // 2)
    # presence only: calcHist's float32 counts never fall back to 0
    present = np.flatnonzero(cv2.calcHist([label], [0], None, [256], [0, 256]).ravel())
    # one mask and one count buffer for all classes: fresh full-frame arrays cost their page faults
    is_value, counts_buffer = np.empty(label.shape, bool), np.empty(label.size, np.uint16)
    for value in present[present != IGNORE_INDEX].tolist():  # Python ints: compared as uint8
        mask = np.equal(label, value, out=is_value).view(np.uint8)
        left, top_row, box_width, box_height = cv2.boundingRect(mask)
        top_row, bottom = max(top_row - margin, 0), min(top_row + box_height + margin, height)
        left, right = max(left - margin, 0), min(left + box_width + margin, width)
        inside = np.flatnonzero((ys >= top_row) & (ys < bottom) & (xs >= left) & (xs < right))
        if inside.size == 0:
            continue
        counts = counts_buffer[: (bottom - top_row) * (right - left)].reshape(bottom - top_row, right - left)
        cv2.boxFilter(mask[top_row:bottom, left:right], cv2.CV_16U, (size, size), counts, normalize=False)
        count = np.zeros(where.size, np.uint16)
        count[inside] = counts[ys[inside] - top_row, xs[inside] - left]
        total += count
        better = count > top
        np.maximum(second, np.where(better, top, count), out=second)
        np.copyto(top, count, where=better)
        best[better] = value
    return best, (top - second) / np.maximum(total, 1).astype(np.float32)
