"""Propagation engines of the annotation loop: the masks of every frame from all annotated frames.

Paper 002 predicts every frame's mask from the whole annotated set K at each iteration. A loop
engine does that for one video: ``propagate(frames, annotated, first_frames=…, cache=…)`` returns
the current masks (`Propagated`: object ids per frame, and how unreliable each frame is, which the
``uncertainty`` selector reads). Three engines, chosen by name (`get_loop_engine`):

* ``flow`` (default, weight-free) — `AnchorFusionEngine` over the ``flow`` engine of
  `frugalseg.autolabel.engines.PROPAGATORS` (`FlowPropagator`, with every option of `FlowOptions`):
  each frame takes the nearest annotated frame on each side, the single-anchor engine carries both
  masks to it, and the two are fused by their reliability
  (`frugalseg.active.propagation.propagate_annotations`). Any single-anchor engine
  (``propagate(frames, anchor_index, anchor_label, targets)``) can be wrapped the same way.
* ``sam2`` — `SAM2LoopEngine`: every annotated mask is a conditioning frame of one SAM 2 inference
  state of the registry's ``sam2`` engine (`SAM2Propagator.track_annotated`), with the user's checkpoint.
* ``stm`` — `STMLoopEngine`: STM keeps every annotated frame in its memory (and the previous
  frame, as STM does), with the user's weights.

An object is never output before the frame it first appears in (``first_frames``). The network
engines' unreliability is the share of a frame's object area where the winning object (or the
background) is less sure than `SURE` (its probability); their frames have no second direction to
disagree with, so their disagreement is 0.

``cache`` (from ``engine.new_cache()``) holds what one video's iterations can share: the flow
engine's single-anchor results, STM's memory encodings of the annotated frames. A cache belongs to
one video; the loop makes one per video and shares it between the strategies run on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugalseg.active.propagation import (
    FrameReady,
    Propagated,
    PropagationCache,
    object_share,
    propagate_annotations,
)
from frugalseg.autolabel.engines import PROPAGATORS, get_propagator
from frugalseg.autolabel.propagate import PropagationEngine
from frugalseg.autolabel.sam2_loading import SAM2Options
from frugalseg.autolabel.sam2_propagate import SAM2Propagator
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.files import array_sha1
from frugalseg.datamodules.frames import resize_by
from frugalseg.errors import ConfigError
from frugalseg.options import Configurable, build_options, flat_form

#: A pixel is sure when its winning object (or the background) has at least this probability.
SURE = 0.75


class LoopEngine(Configurable, ABC):
    """Masks of every frame of one video from its annotated frames (see the module docstring)."""

    #: The engine's name on the command line and in a run's settings.
    name: ClassVar[str] = ""
    #: Whether propagations of one video may run at once on threads, sharing its cache.
    concurrent_passes: bool = False

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """What decides the masks, recorded in a run's ``run.json`` (a rerun with others is refused)."""

    def new_cache(self) -> Any:
        """A fresh cache for one video (None: the engine keeps nothing between iterations)."""
        return None

    def to(self, device: str | torch.device) -> LoopEngine:
        """Move the engine's networks to ``device`` (a process of a multi-device run); weight-free: no-op."""
        return self

    @abstractmethod
    def propagate(
        self,
        frames: Sequence[np.ndarray],
        annotated: Mapping[int, np.ndarray],
        *,
        first_frames: Mapping[int, int] | None = None,
        cache: Any = None,
        on_frame: FrameReady | None = None,
    ) -> Propagated:
        """The masks of every frame from ``annotated`` (frame index → H×W object ids, at least one).

        Args:
            frames: the video, H×W×3 uint8 RGB.
            annotated: the annotated frames and the object-id masks their annotations produced.
            first_frames: object id → the first frame it appears in (never output before it).
            cache: from `new_cache`, for this video only (None: nothing is reused).
            on_frame: called with each frame's index, mask, disagreement and unsure share as soon
                as that frame is final (from any thread), so a caller can show frames as they come.
        """


def check_annotated(frames: Sequence[np.ndarray], annotated: Mapping[int, np.ndarray]) -> None:
    """Raise ValueError unless ``annotated`` names frames of ``frames`` with masks of their size."""
    if not annotated:
        raise ValueError("propagation needs at least one annotated frame")
    for t, mask in annotated.items():
        if not 0 <= t < len(frames):
            raise ValueError(f"annotated frame {t} outside the {len(frames)} frames given")
        if mask.shape != frames[t].shape[:2]:
            raise ValueError(f"the mask of frame {t} is {mask.shape}, its frame {frames[t].shape[:2]}")


@dataclass(frozen=True)
class STMOptions:
    """The options of the ``stm`` engine (see `STMLoopEngine`)."""

    model: str = field(default="stm_r50", metadata={"help": "STM model"})
    weights: str | None = field(
        default=None, metadata={"path": True, "help": "trained STM weights: a file or an hf-hub:ORG/NAME id"}
    )
    device: str = field(default="auto", metadata={"help": "torch device, auto: cuda if there is one"})
    scale: float | None = field(
        default=None,
        metadata={"help": "resize factor of the frames STM sees (default: its data.load_scale in training)"},
    )
    random_weights: bool = field(default=False, metadata={"cli": False})


class AnchorFusionEngine(LoopEngine):
    """The two nearest annotated frames of each frame, carried to it by a single-anchor engine and fused.

    Its options are those of the registry's ``flow`` engine (`FlowOptions`), one level (by flat name).

    Args:
        anchor_engine: a single-anchor engine (`FlowPropagator`), its confidence maps used where it
            ``makes_confidence``.
    """

    name = "flow"
    Options = flat_form(PROPAGATORS["flow"].Options)

    def __init__(self, anchor_engine: PropagationEngine) -> None:
        self.anchor_engine = anchor_engine
        self.concurrent_passes = anchor_engine.on_threads

    @classmethod
    def from_options(cls, options: Any) -> AnchorFusionEngine:
        """The two-anchor fusion over the registry's ``flow`` engine with these options."""
        return cls(get_propagator("flow", **asdict(options)))

    @property
    def settings(self) -> dict[str, Any]:
        """The single-anchor engine's name and settings."""
        return {"anchor_engine": self.anchor_engine.name, **self.anchor_engine.settings}

    def new_cache(self) -> PropagationCache:
        """The single-anchor results of one video, per (anchor, direction, mask)."""
        return PropagationCache()

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        annotated: Mapping[int, np.ndarray],
        *,
        first_frames: Mapping[int, int] | None = None,
        cache: Any = None,
        on_frame: FrameReady | None = None,
    ) -> Propagated:
        """`propagate_annotations` with the single-anchor engine."""
        return propagate_annotations(
            frames, annotated, self.anchor_engine, first_frames=first_frames, cache=cache, on_frame=on_frame
        )


def _objects(annotated: Mapping[int, np.ndarray], first_frames: Mapping[int, int] | None) -> list[int]:
    """The object ids of a video: those of ``first_frames``, else every id in the annotated masks."""
    if first_frames:
        return sorted(first_frames)
    ids = {int(v) for mask in annotated.values() for v in np.unique(mask)}
    return sorted(ids - {0, IGNORE_INDEX})


def _start(frames: Sequence[np.ndarray], annotated: Mapping[int, np.ndarray]) -> list[np.ndarray]:
    """Every frame's mask before tracking: the annotated ones, empty elsewhere."""
    return [
        np.asarray(annotated[t], np.uint8).copy() if t in annotated else np.zeros(frame.shape[:2], np.uint8)
        for t, frame in enumerate(frames)
    ]


def _finish(
    label: np.ndarray, sure: np.ndarray, t: int, first_frames: Mapping[int, int] | None
) -> tuple[np.ndarray, float]:
    """A network engine's mask of frame ``t`` (objects removed before they appear) and its unsure share."""
    for obj, first in (first_frames or {}).items():
        if t < first:
            label[label == obj] = 0
    return label, object_share(~sure, (label != 0) | ~sure)


class NetworkLoopEngine(LoopEngine):
    """A network that tracks every object from all annotated frames at once: SAM 2's and STM's scaffold.

    `propagate` starts every frame from its annotated mask (empty elsewhere), takes each other
    frame's object ids and sure pixels from `track`, removes objects before their first frame,
    reports each frame as it comes and the rest at the end; a subclass writes `track` alone.
    """

    @abstractmethod
    def track(
        self,
        frames: Sequence[np.ndarray],
        annotated: Mapping[int, np.ndarray],
        objects: Sequence[int],
        cache: Any,
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Each frame not annotated as ``(t, object ids H×W uint8, sure pixels H×W bool)``, as it is made.

        Args:
            frames: the video, H×W×3 uint8 RGB.
            annotated: frame → its annotated object-id mask.
            objects: the video's object ids (at least one).
            cache: what `new_cache` made for this video, or None.
        """

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        annotated: Mapping[int, np.ndarray],
        *,
        first_frames: Mapping[int, int] | None = None,
        cache: Any = None,
        on_frame: FrameReady | None = None,
    ) -> Propagated:
        """Every frame's mask from `track`, each reported to ``on_frame`` as soon as it is made."""
        check_annotated(frames, annotated)
        objects = _objects(annotated, first_frames)
        n = len(frames)
        masks = _start(frames, annotated)
        unsure = [0.0] * n
        reported: set[int] = set()
        if objects:
            for t, label, sure in self.track(frames, annotated, objects, cache):
                masks[t], unsure[t] = _finish(label, sure, t, first_frames)
                if on_frame is not None:
                    on_frame(t, masks[t], 0.0, unsure[t])
                    reported.add(t)
        return _report_rest(Propagated(masks, [0.0] * n, unsure), on_frame, reported)


class SAM2LoopEngine(NetworkLoopEngine):
    """SAM 2 with every annotated mask a conditioning frame of one inference state.

    Args:
        options: the SAM 2 model (None: `SAM2Options`'s defaults, which need a checkpoint).
        tracker: an already built `SAM2Propagator` whose model to use (``options`` unused).
    """

    name = "sam2"
    Options = SAM2Options

    def __init__(self, options: SAM2Options | None = None, *, tracker: SAM2Propagator | None = None) -> None:
        self.tracker = SAM2Propagator(options) if tracker is None else tracker

    @classmethod
    def from_options(cls, options: SAM2Options) -> SAM2LoopEngine:
        """SAM 2 built from its options."""
        return cls(options)

    @property
    def settings(self) -> dict[str, Any]:
        """The SAM 2 config, checkpoint (name and sha256) and input size."""
        return self.tracker.settings

    def to(self, device: str | torch.device) -> SAM2LoopEngine:
        """Move SAM 2 to ``device``."""
        self.tracker.to(device)
        return self

    def track(
        self,
        frames: Sequence[np.ndarray],
        annotated: Mapping[int, np.ndarray],
        objects: Sequence[int],
        cache: Any,
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Track every object from all annotated frames at once (`SAM2Propagator.track_annotated`)."""
        from frugalseg.autolabel.objects import merge_objects

        conditioning = {t: [mask == obj for obj in objects] for t, mask in annotated.items()}
        shape = frames[0].shape[:2]
        for t, logits in self.tracker.track_annotated(frames, conditioning):
            if t in annotated:
                continue
            label = merge_objects(logits, objects, shape)
            label[label == IGNORE_INDEX] = 0
            top = torch.sigmoid(torch.as_tensor(logits).float().amax(0)[0])  # the likeliest object
            yield t, label, _upsampled((top >= SURE) | (top <= 1 - SURE), shape)


def _report_rest(result: Propagated, on_frame: FrameReady | None, reported: set[int]) -> Propagated:
    """``result``, after reporting to ``on_frame`` the frames not ``reported`` yet."""
    if on_frame is not None:
        for t, mask in enumerate(result.masks):
            if t not in reported:
                on_frame(t, mask, result.disagreement[t], result.unsure[t])
    return result


def _upsampled(flags: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """A low-resolution bool map at ``shape`` (nearest)."""
    resized = torch.nn.functional.interpolate(
        flags[None, None].float(), size=tuple(shape[:2]), mode="nearest"
    )
    return resized[0, 0].bool().cpu().numpy()


def _resized(probs: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Probabilities 1×K×h×w at the frame's ``shape`` (bilinear)."""
    return torch.nn.functional.interpolate(probs, size=tuple(shape), mode="bilinear", align_corners=False)


class STMLoopEngine(NetworkLoopEngine):
    """STM reading every annotated frame (and the frame before) from its memory.

    Frames are segmented in order; a frame that is not annotated reads the memory of every annotated
    frame, before and after it, and of the previous frame with its soft estimate, as STM's own
    evaluation keeps the first and the previous frame. The annotated frames' memory encodings are
    cached per video (by frame and mask), so an iteration encodes only the new one.

    STM sees frames and masks resized by ``scale``, as `VOSDataModule` resized them for training, and
    its probabilities are resized back to the frame's size.

    Args:
        model: a registered STM model (``stm_r50``, ``stm_r18``).
        weights: its trained weights (a ``.safetensors`` or Lightning ``.ckpt`` file, or a published
            name); None only with ``random_weights``.
        device: torch device; ``auto`` takes CUDA when there is one.
        max_objects: object slots of the model when no weights say (``num_classes - 1``).
        scale: resize factor of the frames STM sees; None: the ``data.load_scale`` of a `vos fit`
            checkpoint, 1.0 for weights that record none (the official ones trained at 480p).
        random_weights: a randomly initialised model (tests).
    """

    name = "stm"
    Options = STMOptions

    def __init__(
        self,
        model: str = "stm_r50",
        weights: str | Path | None = None,
        device: str = "auto",
        *,
        max_objects: int = 10,
        scale: float | None = None,
        random_weights: bool = False,
    ) -> None:
        from frugalseg.autolabel.sam2_loading import resolve_device
        from frugalseg.zoo import STM, get_model, model_config, resolve

        if model_config(model).task != "vos":
            raise ConfigError("stm_model", f"{model!r} is not a video object segmentation model (STM)")
        if weights is None and not random_weights:
            raise ConfigError("stm_weights", "the stm engine needs trained STM weights (--stm-weights FILE)")
        if scale is not None and not 0 < scale < float("inf"):
            raise ConfigError("stm_scale", f"must be a positive resize factor, got {scale}")
        loaded = None if weights is None else resolve(weights)
        num_classes = None if loaded is not None else max_objects + 1
        net = get_model(model, num_classes=num_classes, weights=loaded)
        if not isinstance(net, STM):
            raise ConfigError("stm_model", f"{model!r} does not build an STM")
        self.net = net.eval()
        self.model = model
        self.weights = None if weights is None else str(weights)
        trained = loaded.card.get("load_scale", 1.0) if loaded is not None else 1.0
        self.scale = float(trained if scale is None else scale)
        self.device = torch.device(resolve_device(device))
        self.net.to(self.device)

    @property
    def settings(self) -> dict[str, Any]:
        """The model, its weights, object slots and the scale it sees frames at (named where not 1)."""
        settings = {
            "model": self.model,
            "weights": None if self.weights is None else Path(self.weights).name,
            "max_objects": self.net.max_objects,
        }
        return settings | ({"scale": self.scale} if self.scale != 1.0 else {})

    def to(self, device: str | torch.device) -> STMLoopEngine:
        """Move STM to ``device``."""
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    def new_cache(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Memory encodings of annotated frames, by frame, object ids and mask digest."""
        return {}

    def _tensor(self, frame: np.ndarray) -> torch.Tensor:
        """The frame at `scale`, normalised, 1×3×h×w."""
        from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD

        frame = resize_by(frame, self.scale)
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device).permute(2, 0, 1).float() / 255
        mean = torch.tensor(IMAGENET_MEAN, device=self.device)[:, None, None]
        std = torch.tensor(IMAGENET_STD, device=self.device)[:, None, None]
        return ((image - mean) / std)[None]

    def _masks(self, mask: np.ndarray, objects: Sequence[int]) -> torch.Tensor:
        """One 0/1 map per object of an object-id mask at `scale`, 1×O×h×w."""
        resized = resize_by(np.asarray(mask, np.uint8), self.scale, nearest=True)
        ids = torch.as_tensor(resized, device=self.device)
        return torch.stack([(ids == obj).float() for obj in objects])[None]

    def _memory(
        self,
        frame: np.ndarray,
        mask: np.ndarray,
        t: int,
        objects: Sequence[int],
        cache: dict[str, Any] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = f"{t}:{objects}:{mask.shape}:{array_sha1(mask)}"
        if cache is not None and key in cache:
            result: tuple[torch.Tensor, torch.Tensor] = cache[key]
            return result
        entry = self.net.encode_memory(self._tensor(frame), self._masks(mask, objects))
        if cache is not None:
            cache[key] = entry
        return entry

    @torch.no_grad()
    def track(
        self,
        frames: Sequence[np.ndarray],
        annotated: Mapping[int, np.ndarray],
        objects: Sequence[int],
        cache: Any,
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Segment every frame in order from the memory of the annotated frames and the previous one."""
        if len(objects) > self.net.max_objects:
            raise ConfigError(
                "stm_model",
                f"the video has {len(objects)} objects, the STM only {self.net.max_objects} slots",
            )
        fixed = [self._memory(frames[t], annotated[t], t, objects, cache) for t in sorted(annotated)]
        valid = torch.ones(1, len(objects), dtype=torch.bool, device=self.device)
        table = torch.as_tensor([0, *objects], dtype=torch.uint8, device=self.device)
        previous: tuple[torch.Tensor, torch.Tensor] | None = None
        for t in range(len(frames)):
            image = self._tensor(frames[t])
            if t in annotated:
                previous = (image, self._masks(annotated[t], objects))
                continue
            memory = fixed if previous is None else [*fixed, self.net.encode_memory(*previous)]
            keys = torch.stack([k for k, _ in memory], dim=3)
            values = torch.stack([v for _, v in memory], dim=3)
            probs = torch.softmax(self.net.segment(image, keys, values, valid), dim=1)
            previous = (image, probs[:, 1:])
            top, which = _resized(probs, frames[t].shape[:2])[0].max(0)
            yield t, table[which].cpu().numpy(), (top >= SURE).cpu().numpy()


#: The engines by name: a new engine is its class (with its ``Options``) and its line here.
ENGINES: dict[str, type[LoopEngine]] = {
    "flow": AnchorFusionEngine,
    "sam2": SAM2LoopEngine,
    "stm": STMLoopEngine,
}


def get_loop_engine(name: str = "flow", **options: Any) -> LoopEngine:
    """The loop engine called ``name`` (`ENGINES`) built from the fields of its ``Options``.

    Raises:
        ConfigError: an unknown name or option (the known ones listed), or a network engine
            without its weights.
        DataError: a SAM 2 checkpoint that is missing or of another size than ``config``.
        WeightsError: STM weights that are missing or of another model.
    """
    built = build_options(ENGINES, name, options, option="engine", noun="propagation engine")
    return ENGINES[name].from_options(built)
