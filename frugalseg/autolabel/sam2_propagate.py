"""SAM 2 propagation engine: the annotated frame's objects tracked forward, then backward, by SAM 2.

As in paper 001 (section 4): the manual label of the anchor frame is the initial mask, SAM 2 tracks
it to later frames, then runs again on the reversed frame order for earlier frames. The label map
is split into objects (`frugalseg.autolabel.objects`), all of them go into one inference state and
each direction is one pass over the frames, so the image encoder runs once per frame whatever the
number of objects (this predictor still runs memory attention and the mask decoder object by
object; `benchmarks/bench_sam2_objects.py` measures what the shared state saves). The object
logits are merged back by argmax; pixels that no object claims are ignore (255), so objects that
enter the scene after the anchor frame stay unlabelled.

How the predictor is driven (rf-sam-2 1.0.3):

- Frames come from the arrays the caller holds: ``init_state`` is run with the wheel's frame
  loader swapped for one that returns `_FrameSequence`, which resizes and normalises a frame only
  when the predictor reads it (the same resize and normalisation as the wheel's JPEG loader). No
  JPEG folder is written and at most one converted frame is alive at a time, so there is no video
  to offload.
- The state's video size is set to the mask resolution (``image_size / 4``), so the predictor
  hands back low-resolution logits and `merge_objects` upsamples them in chunks of objects: memory
  stays at a few frame-sized maps instead of one per object.
- Each pass keeps only the frame outputs that the model can still read (its memory frames and
  object pointers), and the backward pass starts from the anchor alone, as a separate run on the
  reversed frames would; the state therefore stays bounded on long clips.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalseg.autolabel.objects import STUFF_MODES, LabelObjects, merge_objects, split_objects
from frugalseg.autolabel.propagate import PropagationEngine, check_propagation_inputs
from frugalseg.autolabel.sam2_loading import SAM2Options, load_sam2
from frugalseg.errors import DataError


@dataclass(frozen=True)
class SAM2PropagationOptions(SAM2Options):
    """The SAM 2 model's options, and how the engine makes objects and where it keeps its state.

    Attributes:
        stuff: pixels outside instances: one object per connected component of a class, or per class.
        offload_state_to_cpu: keep SAM 2's tracking state in CPU memory (less GPU memory, somewhat slower).
    """

    stuff: str = field(default="components", metadata={"choices": STUFF_MODES})
    offload_state_to_cpu: bool = False

    def sam2_options(self) -> SAM2Options:
        """The SAM 2 model's options (all but the engine's own)."""
        return SAM2Options(**{spec.name: getattr(self, spec.name) for spec in fields(SAM2Options)})


class SAM2Propagator(PropagationEngine):
    """Propagation engine (``--engine sam2``) over a SAM 2 video predictor.

    On CUDA the model runs under bfloat16 autocast, as SAM 2's own examples do.

    Args:
        options: the SAM 2 model (config, checkpoint, input size, device; None: `SAM2Options`'s
            defaults, which need a checkpoint); a smaller input size is faster and coarser.
        stuff: how pixels outside instances become objects (``components`` or ``class``).
        offload_state_to_cpu: keep the tracking state (memories, masks) in CPU memory.
        merge_chunk: objects upsampled at once when merging logits.
    """

    name = "sam2"
    uses_instance_ids = True
    loads_weights = True
    Options = SAM2PropagationOptions

    def __init__(
        self,
        options: SAM2Options | None = None,
        *,
        stuff: str = "components",
        offload_state_to_cpu: bool = False,
        merge_chunk: int = 16,
    ) -> None:
        if stuff not in STUFF_MODES:
            raise ValueError(f"unknown stuff mode {stuff!r}; modes: {', '.join(STUFF_MODES)}")
        self.options = SAM2Options() if options is None else options
        self.model = load_sam2(self.options, "video", needed_by="the sam2 engine")
        self.predictor = self.model.predictor
        self.device = torch.device(self.model.device)
        self.stuff = stuff
        self.offload_state_to_cpu = offload_state_to_cpu
        self.merge_chunk = merge_chunk

    @classmethod
    def from_options(cls, options: SAM2PropagationOptions) -> SAM2Propagator:
        """The engine with these options."""
        return cls(
            options.sam2_options(), stuff=options.stuff, offload_state_to_cpu=options.offload_state_to_cpu
        )

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the labels, recorded in the manifest and ``run.json`` (not where it ran)."""
        return {
            **self.model.settings,
            "image_size": self.predictor.image_size,
            "stuff": self.stuff,
            "autocast": "bfloat16" if self.device.type == "cuda" else None,
        }

    def to(self, device: str | torch.device) -> SAM2Propagator:
        """Move the predictor to ``device`` (a labelling process on its own GPU)."""
        self.device = torch.device(device)
        self.predictor.to(self.device)
        return self

    def check_anchor(self, anchor_label: np.ndarray, instance_ids: np.ndarray | None, path: Path) -> None:
        """Raise a `DataError` naming ``path`` if the anchor label has no object to track."""
        if not split_objects(anchor_label, instance_ids, stuff=self.stuff).classes:
            raise DataError(path, "the annotated frame has no objects to track (every pixel is ignore)")

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
        instance_ids: np.ndarray | None = None,
    ) -> dict[int, np.ndarray]:
        """Labels for the frames at indices ``targets`` (255 where no object is tracked).

        The arguments are `PropagationEngine.propagate`'s, plus ``instance_ids``: the anchor's
        Cityscapes instance-id map, or None.
        """
        check_propagation_inputs(frames, anchor_index, anchor_label, targets)
        objects = split_objects(anchor_label, instance_ids, stuff=self.stuff)
        if not objects.classes:
            raise ValueError("the annotated frame has no objects to track (every pixel is ignore)")
        wanted = set(targets)
        results: dict[int, np.ndarray] = {}
        if anchor_index in wanted:
            results[anchor_index] = anchor_label.copy()
        if not wanted - {anchor_index}:
            return results
        for index, logits in self._track(frames, anchor_index, objects, min(wanted), max(wanted)):
            if index != anchor_index and index in wanted:
                results[index] = merge_objects(
                    logits, objects.classes, anchor_label.shape, chunk=self.merge_chunk
                )
        return results

    def track_annotated(
        self, frames: Sequence[np.ndarray], annotated: Mapping[int, Sequence[np.ndarray]]
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Low-resolution logits (objects×1×h×w) of every frame from several annotated frames.

        ``annotated`` maps each annotated frame to one bool mask per object, the objects in the same
        order on every frame (an object absent from a frame has an empty mask there: SAM 2 learns
        from it that the object is not there). Every annotated mask is a conditioning frame of one
        inference state, and SAM 2 attends to all of them when it tracks any frame; one pass runs
        forward from the first annotated frame to the last frame, one backward from it to frame 0.
        Each frame is yielded once (annotated frames with their masks as SAM 2 encodes them).
        """
        if not annotated:
            raise ValueError("tracking needs at least one annotated frame")
        counts = {len(masks) for masks in annotated.values()}
        if len(counts) != 1 or 0 in counts:
            raise ValueError(f"every annotated frame needs one mask per object, got counts {sorted(counts)}")
        yield from self._track_conditioned(frames, annotated, 0, len(frames) - 1)

    def _track(
        self, frames: Sequence[np.ndarray], anchor_index: int, objects: LabelObjects, first: int, last: int
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Low-resolution logits (objects×1×h×w) of the frames ``first…last`` around the anchor.

        The anchor's own logits come first (its masks as SAM 2 encodes them), then the forward pass,
        then the backward pass; all objects share one inference state.
        """
        masks = [objects.mask(obj_id) for obj_id in range(len(objects))]
        yield from self._track_conditioned(frames, {anchor_index: masks}, first, last)

    def _track_conditioned(
        self,
        frames: Sequence[np.ndarray],
        conditioning: Mapping[int, Sequence[np.ndarray]],
        first: int,
        last: int,
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Logits of the frames ``first…last`` with every mask of ``conditioning`` in one state.

        The passes start at the first conditioning frame: forward to ``last``, then backward to
        ``first``; the start frame is yielded once, by the forward pass.
        """
        anchor_index = min(conditioning)
        first, last = min(first, anchor_index), max(last, max(conditioning))
        predictor = self.predictor
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        )
        with _frames_from_arrays(frames[first : last + 1], predictor), autocast:
            state = predictor.init_state(video_path="", offload_state_to_cpu=self.offload_state_to_cpu)
            start = anchor_index - first
            for frame, masks in sorted(conditioning.items()):
                for obj_id, mask in enumerate(masks):
                    predictor.add_new_mask(state, frame - first, obj_id, mask)
            passes = [(False, last - anchor_index), (True, anchor_index - first)]
            for number, (reverse, steps) in enumerate(passes):
                if steps == 0 and number > 0:
                    continue
                _forget_tracked_frames(state, keep=start)
                passed = predictor.propagate_in_video(
                    state, start_frame_idx=start, max_frame_num_to_track=steps, reverse=reverse
                )
                for frame_idx, _, logits in passed:
                    if frame_idx != start or number == 0:
                        yield first + frame_idx, logits
                    _forget_frame(state, frame_idx + (1 if reverse else -1) * _reach(predictor))


class _FrameSequence:
    """In-memory RGB frames as the predictor's ``inference_state["images"]``.

    Item ``i`` is frame ``i`` resized to ``image_size``² and normalised as the wheel's JPEG loader
    does (same PIL resize, same mean and std), made when the predictor asks for it.
    """

    def __init__(self, frames: Sequence[np.ndarray], image_size: int, mean: torch.Tensor, std: torch.Tensor):
        self.frames = frames
        self.image_size = image_size
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        resized = Image.fromarray(self.frames[index]).resize((self.image_size, self.image_size))
        image = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (image - self.mean) / self.std


@contextmanager
def _frames_from_arrays(frames: Sequence[np.ndarray], predictor: Any) -> Iterator[None]:
    """Within the block, ``predictor.init_state`` takes ``frames`` instead of reading a video path.

    The wheel's predictor module gets a frame loader that returns a `_FrameSequence` and a video
    size equal to the mask resolution, and a silent ``tqdm`` (the caller shows its own progress).
    """
    module = _predictor_module()
    defaults = inspect.signature(module.load_video_frames).parameters
    mean = torch.tensor(defaults["img_mean"].default, dtype=torch.float32)[:, None, None]
    std = torch.tensor(defaults["img_std"].default, dtype=torch.float32)[:, None, None]
    mask_size = predictor.image_size // 4

    def load(video_path: Any, image_size: int, **_: Any) -> tuple[_FrameSequence, int, int]:
        return _FrameSequence(frames, image_size, mean, std), mask_size, mask_size

    def quiet(iterable: Any, *args: Any, **kwargs: Any) -> Any:
        return iterable

    saved = module.load_video_frames, module.tqdm
    module.load_video_frames, module.tqdm = load, quiet
    try:
        yield
    finally:
        module.load_video_frames, module.tqdm = saved


def _predictor_module() -> Any:
    """``sam2.sam2_video_predictor`` (untyped: its loader and progress bar are swapped for ours)."""
    import sam2.sam2_video_predictor as module

    if not hasattr(module, "load_video_frames") or not hasattr(module, "tqdm"):
        raise ImportError(
            "this SAM 2 package does not load video frames through "
            "sam2.sam2_video_predictor.load_video_frames; frugalseg supports rf-sam-2 1.0.x"
        )
    return module


def _reach(predictor: Any) -> int:
    """A bound on how far back along a pass the model reads memories and object pointers.

    Mask memories come from the last ``num_maskmem − 1`` frames (every ``stride``-th one), object
    pointers from the last ``max_obj_ptrs_in_encoder − 1`` frames; older outputs are never read.
    """
    stride = max(1, int(predictor.memory_temporal_stride_for_eval))
    result: int = max(predictor.num_maskmem * stride, predictor.max_obj_ptrs_in_encoder)
    return result


def _forget_frame(state: dict[str, Any], frame_idx: int) -> None:
    """Drop every object's tracked output on ``frame_idx`` (its conditioning input stays)."""
    for obj_idx, outputs in state["output_dict_per_obj"].items():
        outputs["non_cond_frame_outputs"].pop(frame_idx, None)
        state["frames_tracked_per_obj"][obj_idx].pop(frame_idx, None)


def _forget_tracked_frames(state: dict[str, Any], keep: int) -> None:
    """Drop the tracked outputs of every frame but ``keep`` (the anchor), so a pass starts afresh."""
    frames = {
        f for outputs in state["output_dict_per_obj"].values() for f in outputs["non_cond_frame_outputs"]
    }
    for tracked in state["frames_tracked_per_obj"].values():
        frames.update(tracked)
    for frame_idx in frames - {keep}:
        _forget_frame(state, frame_idx)
