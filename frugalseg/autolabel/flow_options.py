"""The flow engine's options: one frozen `FlowOptions` made of named parts.

`frugalseg.autolabel.flow_propagate.FlowPropagator` is configured by one `FlowOptions`: which
optical flow it computes (`FlowEstimator`), how each step's flow is checked (`FlowChecks`), what
becomes of the pixels that fail the checks (`FlowOcclusion`), snapping each label to its frame
(`FlowSnap`), the object cut with the anchor's colour models (`FlowObjectCut`) and how much of the
work is done on smaller frames or fewer threads (`FlowSpeed`, named settings in `SPEEDS`). Every
default is the measured one (the engine's docstring; ``benchmarks/results/propagation_quality.md``).

Every field of a part is one option under its ``flat`` name (`frugalseg.options`): its key in the
engine's ``settings`` (what a label store's manifest and ``run.json`` record) and its flag
(``label propagate --snap-band``, ``annotate … --flow-snap-band``), all made from these classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from frugalseg.errors import ConfigError
from frugalseg.flow.dis import PRESETS as DIS_PRESETS
from frugalseg.flow.raft import MODELS as RAFT_MODELS
from frugalseg.options import flatten, unflatten

#: Optical flow methods: OpenCV DIS (weight-free) or torchvision's RAFT with the user's weights.
FLOW_METHODS = ("dis", "raft")
#: What the engine does with pixels that fail the flow checks (`FlowOcclusion.mode`).
OCCLUSION_MODES = ("ignore", "label")


def _flat(default: Any, name: str, **metadata: Any) -> Any:
    """A field with ``default`` whose flat name (settings key, flag) is ``name``; ``metadata``: its flag's."""
    return field(default=default, metadata={"flat": name, **metadata})


def _at_least(least: int, **values: int) -> None:
    """Raise `ConfigError` naming the first of ``values`` (flat name → value) below ``least``."""
    for key, value in values.items():
        if value < least:
            raise ConfigError(key, f"must be >= {least}, got {value}")


@dataclass(frozen=True)
class FlowEstimator:
    """Which optical flow the engine computes.

    Attributes:
        method: ``dis`` (OpenCV DIS, weight-free; ``preset`` applies) or ``raft`` (torchvision's
            RAFT, `frugalseg.flow.raft.RAFTFlow`, with ``raft_weights``).
        preset: DIS preset (``ultrafast``, ``fast``, ``medium``).
        raft_weights: the RAFT weights file (``raft`` only; never downloaded).
        raft_model: ``large`` or ``small``, the model the weights are of.
        device: where RAFT runs (``auto``: a GPU when there is one).
    """

    method: str = _flat("dis", "flow", choices=FLOW_METHODS)
    preset: str = _flat("medium", "preset", choices=DIS_PRESETS)
    raft_weights: str | None = _flat(None, "raft_weights", path=True)
    raft_model: str = _flat("large", "raft_model", choices=RAFT_MODELS)
    device: str = _flat("auto", "device")

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ConfigError("flow", f"unknown flow engine {self.method!r}; choose dis or raft")
        if self.method == "raft" and self.raft_weights is None:
            raise ConfigError("raft_weights", "the RAFT flow needs a weights file (--raft-weights FILE)")


@dataclass(frozen=True)
class FlowChecks:
    """How each step's flow is checked: a pixel that fails is unreliable (`FlowOcclusion` says what then).

    Attributes:
        fb_alpha: tolerance of the forward-backward check, relative to the flows' magnitude
            (Sundaram et al. 2010).
        fb_beta: tolerance of the forward-backward check (px).
        photo_tol: largest grey-level difference (0–255) between a pixel and its sample point in the
            nearer frame; it catches disoccluded pixels that the smooth flow filled with a
            neighbour's motion. None (255 on the command line) turns the check off.
    """

    fb_alpha: float = _flat(0.01, "fb_alpha")
    fb_beta: float = _flat(0.5, "fb_beta")
    photo_tol: float | None = _flat(16.0, "photo_tol")

    def __post_init__(self) -> None:
        for name, value in (("fb_alpha", self.fb_alpha), ("fb_beta", self.fb_beta)):
            if not 0.0 <= value < math.inf:  # nan had passed, and every pixel then failed the check
                raise ConfigError(name, f"must be a finite number >= 0, got {value}")
        if self.photo_tol is not None and not 0.0 <= self.photo_tol <= 255.0:
            raise ConfigError("photo_tol", f"must lie in 0…255 grey levels (255: none), got {self.photo_tol}")


@dataclass(frozen=True)
class FlowOcclusion:
    """What becomes of unreliable pixels: dropped, or labelled by a vote and the direct flow to the anchor.

    With ``label`` (the default) a moving object's trail is voted away and parts the chain lost are
    taken back from the direct flow: on DAVIS blackswan / car-shadow J at +10 is 0.93 / 0.87
    against 0.89 / 0.81 for plain chained warping.

    Attributes:
        mode: ``label`` or ``ignore`` (unreliable pixels become 255 and stay so down the chain:
            precise but sparse on real video).
        vote_size: side of the majority window (odd; ``label`` only; 1 keeps every sample).
        vote_margin: lead of the majority over the runner-up, as a fraction of the window's
            labelled pixels, below which a disputed unreliable pixel is output as 255 (``label`` only).
        direct: relabel pixels the chain lost along the flow straight to the anchor (``label`` only).
        chain_direct: those direct labels also feed the chain (``direct`` only; False: the output
            only, the engine before issue 10).
    """

    mode: str = _flat("label", "occlusion", choices=OCCLUSION_MODES)
    vote_size: int = _flat(9, "vote_size")
    vote_margin: float = _flat(0.5, "vote_margin")
    direct: bool = _flat(True, "direct")
    chain_direct: bool = _flat(True, "chain_direct")

    def __post_init__(self) -> None:
        if self.mode not in OCCLUSION_MODES:
            raise ConfigError("occlusion", f"occlusion must be one of {OCCLUSION_MODES}, got {self.mode!r}")
        if not 1 <= self.vote_size <= 255 or self.vote_size % 2 == 0:
            raise ConfigError("vote_size", f"must be an odd number from 1 to 255, got {self.vote_size}")
        if not 0.0 <= self.vote_margin <= 1.0:
            raise ConfigError("vote_margin", f"must lie in 0…1, got {self.vote_margin}")


@dataclass(frozen=True)
class FlowSnap:
    """Snapping each step's label to its own frame (`frugalseg.flow.refine.snap_labels`, ``label`` only).

    GrabCut re-decides the unreliable pixels near each class boundary with colour models learnt
    around it; the chain carries the snapped label on, so drift is corrected at each step (DAVIS
    J at +10: 0.749 with snapping against 0.678 without, issue 10).

    Attributes:
        enabled: snap at all.
        band: width (px) of the boundary band open to the cut wherever the flow was unreliable.
        reach: how far (px) from the boundary an unreliable pixel is still open to the cut.
        iterations: GrabCut iterations.
        max_classes: only label maps with at most this many classes are snapped or cut (object
            masks; street scenes are not). The object cut reads it too.
        downscale: snap on frames shrunk by this factor (2: the faster setting).
    """

    enabled: bool = _flat(True, "snap")
    band: int = _flat(3, "snap_band")
    reach: int = _flat(20, "snap_reach")
    iterations: int = _flat(2, "snap_iterations")
    max_classes: int = _flat(4, "snap_max_classes")
    downscale: int = _flat(1, "snap_downscale")

    def __post_init__(self) -> None:
        _at_least(1, snap_band=self.band, snap_reach=self.reach, snap_iterations=self.iterations)
        _at_least(1, snap_downscale=self.downscale)
        _at_least(2, snap_max_classes=self.max_classes)


@dataclass(frozen=True)
class FlowObjectCut:
    """Re-segmenting each object with the anchor's frozen colour models (`frugalseg.flow.refine.object_cut`).

    Gives back whole parts the flow lost (a limb in fast motion); ``label`` only, maps with at most
    ``FlowSnap.max_classes`` classes. DAVIS J at +10: 0.788 with the cut, 0.819 with the motion prior.

    Attributes:
        enabled: cut at all.
        grow: the object is cut over its mask grown by this many px.
        erode: its reliable pixels eroded by this many px are sure object.
        min_distance: the distance to the anchor (frames) from which the cut runs (at 1 the flow is
            trusted).
        motion_prior: before the cut, open the pixels where each object's previous mask, moved by
            its tracked whole-object motion, disagrees with the flow's label.
        drop_dragged: in each label output, each object's pixels that move as the background does are
            background (`frugalseg.flow.dragged.drop_dragged`; the label carried on keeps them).
    """

    enabled: bool = _flat(True, "object_cut")
    grow: int = _flat(15, "object_cut_grow")
    erode: int = _flat(1, "object_cut_erode")
    min_distance: int = _flat(2, "object_cut_from")
    motion_prior: bool = _flat(True, "motion_prior")
    drop_dragged: bool = _flat(True, "drop_dragged")

    def __post_init__(self) -> None:
        _at_least(1, object_cut_grow=self.grow, object_cut_from=self.min_distance)
        _at_least(0, object_cut_erode=self.erode)


@dataclass(frozen=True)
class FlowSpeed:
    """How fast the flow engine works: frames shrunk for some flows, a faster DIS preset, threads.

    `SPEEDS` names settings with their measured cost in J. The engine's settings record
    ``downscale`` (DIS only), and the direct and check factors and ``direct_preset`` only where
    they differ from their defaults.

    Attributes:
        downscale: compute every flow on frames shrunk by this factor.
        direct_downscale: the direct flows (anchor ↔ target, which only fill pixels the chain lost)
            on frames shrunk by this further factor (DIS only).
        check_downscale: the flows that only serve the forward-backward check on frames shrunk by
            this further factor (DIS only).
        direct_preset: the DIS preset of the direct flows (None: `FlowEstimator.preset`).
        workers: threads computing the DIS flows ahead of the labels (None: every core this process
            may use, or its share); the labels do not depend on it, so it is not recorded.
    """

    downscale: int = _flat(1, "downscale")
    direct_downscale: int = _flat(1, "direct_downscale")
    check_downscale: int = _flat(1, "check_downscale")
    direct_preset: str | None = _flat(None, "direct_preset", choices=DIS_PRESETS)
    workers: int | None = _flat(None, "flow_threads")

    def __post_init__(self) -> None:
        _at_least(1, direct_downscale=self.direct_downscale, check_downscale=self.check_downscale)
        if self.workers is not None:
            _at_least(1, flow_threads=self.workers)


SPEEDS: dict[str, FlowSpeed] = {
    "exact": FlowSpeed(),
    "fast": FlowSpeed(direct_preset="fast"),
    "fastest": FlowSpeed(downscale=2),
}
"""The flow engine's speed settings by name (``label propagate --speed``): ``exact`` is the default
engine; ``fast`` computes the direct flows to the anchor with DIS's ``fast`` preset, ``fastest``
every flow on half-size frames. What each costs in J and in agreement, and what it saves, is in
``benchmarks/results/propagation.md`` (issue 28)."""


@dataclass(frozen=True)
class FlowOptions:
    """Everything that configures the flow engine, by part (see the module docstring).

    Attributes:
        estimator: which optical flow is computed.
        checks: how each step's flow is checked.
        occlusion: what becomes of the pixels that fail the checks.
        snap: snapping each step's label to its frame.
        object_cut: re-segmenting each object with the anchor's colour models.
        speed: smaller frames, faster presets, threads.
    """

    estimator: FlowEstimator = FlowEstimator()
    checks: FlowChecks = FlowChecks()
    occlusion: FlowOcclusion = FlowOcclusion()
    snap: FlowSnap = FlowSnap()
    object_cut: FlowObjectCut = FlowObjectCut()
    speed: FlowSpeed = FlowSpeed()

    def __post_init__(self) -> None:
        if self.estimator.method == "raft":
            for key in ("direct_downscale", "check_downscale"):
                if getattr(self.speed, key) > 1:
                    raise ConfigError(key, "applies to the DIS flow only; RAFT runs at one size")
            if self.speed.direct_preset is not None:
                raise ConfigError("direct_preset", "applies to the DIS flow only")

    @classmethod
    def from_flat(cls, **values: Any) -> FlowOptions:
        """The options with ``values`` given by flat name (``snap_band=5``); the rest default.

        Raises:
            ConfigError: a name that is no option's flat name (they are listed).
        """
        options: FlowOptions = unflatten(cls, values)
        return options

    def flat(self) -> dict[str, Any]:
        """Every option by flat name (`from_flat` gives these options back)."""
        return flatten(self)
