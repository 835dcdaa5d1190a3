"""VOSDataModule: video object segmentation clips (DAVIS / MOSE layout) for STM-style training.

Training samples follow STM's main training: a clip of ``clip_length`` (3) annotated frames in time
order whose gaps are drawn from 1 … ``max_skip + 1``, ``max_skip`` growing over the epochs (the
reproduced STM training raises it from 0 to 25), and up to ``train_objects`` objects of the first
frame picked at random and renumbered 1…k (other objects become background, void stays 255).
Every draw depends only on (seed, epoch, sample index), so a run is reproducible whatever the
number of workers. Validation and test give whole sequences: the model is given the first
frame's masks and segments the rest, scored by J&F.

Batches are dicts: ``frames`` B×T×3×H×W (float, ImageNet-normalised on the device), ``labels``
B×T×H×W (long object ids, 255 = void), ``num_objects`` B, ``meta`` (sequence, frame indices).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.formats.davis import DavisFormat, MoseFormat, first_mask_only, other_layout
from frugalseg.data.io import image_size, read_frame
from frugalseg.data.normalization import IMAGENET_MEAN
from frugalseg.datamodules.datamodule import unrepeated_sampler
from frugalseg.datamodules.frames import resize_by
from frugalseg.datamodules.options import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from frugalseg.datamodules.transforms import Normalize, in_precision
from frugalseg.errors import ConfigError, DataError
from frugalseg.options import keep_plain_hyperparameters

PAD_COLOUR = tuple(round(255 * m) for m in IMAGENET_MEAN)  # 0 after normalisation


def _resize(frame: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    return resize_by(frame, scale), resize_by(mask, scale, nearest=True)


def _read_pair(frame_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB frame and object-id mask of one frame, checked to have the same size."""
    frame, mask = read_frame(frame_path), DavisFormat.read_mask(mask_path)
    if frame.shape[:2] != mask.shape:
        raise DataError(
            mask_path,
            f"mask size {mask.shape[1]}×{mask.shape[0]} differs from its frame's "
            f"{frame.shape[1]}×{frame.shape[0]} ({frame_path.name})",
        )
    return frame, mask


def _object_ids(mask: np.ndarray) -> np.ndarray:
    ids = np.unique(mask)
    return ids[(ids != 0) & (ids != IGNORE_INDEX)]


class Sequence:
    """One sequence's annotated frames: parallel lists of frame and mask paths."""

    def __init__(self, name: str, frames: list[Path], masks: list[Path]):
        self.name, self.frames, self.masks = name, frames, masks

    def __len__(self) -> int:
        return len(self.frames)


#: The fewest frames of a sequence J&F can score (its first and last are left out).
MIN_EVALUATED_FRAMES = 3


def read_sequences(fmt: DavisFormat, split: str, need_all_masks: bool) -> list[Sequence]:
    """The sequences of ``split`` with their annotated frames.

    ``need_all_masks`` (evaluation) requires a mask on every frame and raises a `DataError` naming
    the first missing one; otherwise frames without a mask are left out. A root without ``Annotations/``
    (frames only) is refused as such.
    """
    if not fmt.mask_dir.is_dir():
        raise DataError(
            fmt.mask_dir,
            "folder does not exist: training and scoring objects need their masks (Annotations/<sequence>/"
            "*.png beside JPEGImages/); `frugalseg annotate` makes them from frames alone",
        )
    sequences = []
    for name in fmt.sequences(split):
        frames, masks = fmt.frame_paths(name), fmt.mask_paths(name)
        if need_all_masks:
            missing = [f for f, m in zip(frames, masks, strict=True) if m is None]
            if missing:
                raise DataError(
                    fmt.mask_dir / name / (missing[0].stem + ".png"),
                    f"evaluation needs a mask on every frame; {len(missing)} of sequence {name!r} have none"
                    + first_mask_only(fmt.name, masks),
                )
            if len(frames) < MIN_EVALUATED_FRAMES:
                raise DataError(
                    fmt.image_dir / name,
                    f"{len(frames)} frame(s): J&F leaves out a sequence's first and last frame, as DAVIS "
                    f"does, so a sequence to evaluate needs at least {MIN_EVALUATED_FRAMES}",
                )
        kept = [(f, m) for f, m in zip(frames, masks, strict=True) if m is not None]
        sequences.append(Sequence(name, [f for f, _ in kept], [m for _, m in kept]))
    return sequences


class EpochSampler(DistributedSampler):
    """The training clips in a new order each epoch, and the epoch told to the dataset (one process: world 1).

    Lightning calls ``set_epoch`` before every epoch, also without ``reload_dataloaders_every_n_epochs``,
    and the dataset draws each clip's frames, crop, flip and objects from (seed, epoch, index): they had
    been the first epoch's for the whole run unless the loader was rebuilt every epoch. Lightning keeps a
    `DistributedSampler` it is given, so each rank reads its own share.
    """

    dataset: VOSClipDataset

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for ``epoch`` and let the dataset draw that epoch's clips."""
        super().set_epoch(epoch)
        self.dataset.epoch = epoch


class VOSClipDataset(Dataset):
    """Random training clips: ``clips_per_sequence`` per sequence and epoch (see module docstring)."""

    def __init__(
        self,
        sequences: list[Sequence],
        clip_length: int,
        max_skip: int,
        train_objects: int,
        crop_size: tuple[int, int] | None,
        scale_range: tuple[float, float],
        load_scale: float,
        flip_prob: float,
        clips_per_sequence: int,
        seed: int,
        epoch: int,
    ):
        self.sequences = [s for s in sequences if len(s) >= clip_length]
        if not self.sequences:
            longest = max((len(s) for s in sequences), default=0)
            raise ConfigError(
                "data.clip_length",
                f"{clip_length} frames, and no training sequence has as many annotated frames (the most "
                f"is {longest}): a shorter clip or sequences with more masks",
            )
        self.clip_length, self.max_skip, self.train_objects = clip_length, max_skip, train_objects
        self.crop_size, self.scale_range, self.load_scale = crop_size, scale_range, load_scale
        self.flip_prob, self.clips_per_sequence = flip_prob, clips_per_sequence
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.sequences) * self.clips_per_sequence

    def frame_indices(self, length: int, rng: np.random.Generator) -> list[int]:
        """Increasing indices into ``length`` frames, each gap in 1 … max_skip + 1, room kept for the rest."""
        t = self.clip_length
        chosen = [int(rng.integers(0, length - t + 1))]
        for k in range(1, t):
            low = chosen[-1] + 1
            high = min(chosen[-1] + 1 + self.max_skip, length - (t - k))
            chosen.append(int(rng.integers(low, high + 1)))
        return chosen

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        seq = self.sequences[index % len(self.sequences)]
        for _attempt in range(10):
            indices = self.frame_indices(len(seq), rng)
            pairs = [_read_pair(seq.frames[i], seq.masks[i]) for i in indices]
            present = _object_ids(pairs[0][1])
            if present.size:
                break
        scale = self.load_scale * (float(rng.uniform(*self.scale_range)) if self.crop_size else 1.0)
        pairs = [_resize(frame, mask, scale) for frame, mask in pairs]
        frames = np.stack([f for f, _ in pairs])
        masks = np.stack([m for _, m in pairs])
        frames, masks = self._crop(frames, masks, present, rng)
        if rng.random() < self.flip_prob:
            frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
        chosen = rng.permutation(_object_ids(masks[0]))[: self.train_objects]
        labels = np.zeros_like(masks)
        for new_id, old_id in enumerate(chosen, start=1):
            labels[masks == old_id] = new_id
        labels[masks == IGNORE_INDEX] = IGNORE_INDEX
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2),
            "labels": torch.from_numpy(np.ascontiguousarray(labels)).long(),
            "num_objects": len(chosen),
            "meta": {"sequence": seq.name, "frames": ",".join(seq.frames[i].stem for i in indices)},
        }

    def _crop(
        self, frames: np.ndarray, masks: np.ndarray, objects: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random crop_size window (padded if the frame is smaller) that, if it can, shows an object."""
        if self.crop_size is None:
            return frames, masks
        ch, cw = self.crop_size
        t, h, w = masks.shape
        if h < ch or w < cw:
            ph, pw = max(0, ch - h), max(0, cw - w)
            padded_frames = np.empty((t, h + ph, w + pw, 3), np.uint8)
            padded_frames[:] = PAD_COLOUR
            padded_frames[:, :h, :w] = frames
            padded_masks = np.full((t, h + ph, w + pw), IGNORE_INDEX, np.uint8)
            padded_masks[:, :h, :w] = masks
            frames, masks, (h, w) = padded_frames, padded_masks, (h + ph, w + pw)
        for _attempt in range(5):
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            window = masks[0, top : top + ch, left : left + cw]
            if not objects.size or np.isin(window, objects).any():
                break
        return frames[:, top : top + ch, left : left + cw], masks[:, top : top + ch, left : left + cw]


class VOSSequenceDataset(Dataset):
    """Whole sequences for evaluation: every frame and its mask, objects counted on the first mask."""

    def __init__(self, sequences: list[Sequence], load_scale: float, max_objects: int):
        self.sequences, self.load_scale, self.max_objects = sequences, load_scale, max_objects

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict:
        seq = self.sequences[index]
        pairs = [
            _resize(*_read_pair(f, m), self.load_scale) for f, m in zip(seq.frames, seq.masks, strict=True)
        ]
        labels = np.stack([m for _, m in pairs])
        first = labels[0]
        num_objects = int(first[first != IGNORE_INDEX].max(initial=0))
        if num_objects > self.max_objects:
            raise DataError(
                seq.masks[0],
                f"sequence {seq.name!r} has {num_objects} objects, more than max_objects={self.max_objects}",
            )
        if num_objects == 0:
            raise DataError(seq.masks[0], f"the first mask of sequence {seq.name!r} shows no object")
        return {
            "frames": torch.from_numpy(np.stack([f for f, _ in pairs])).permute(0, 3, 1, 2),
            "labels": torch.from_numpy(labels).long(),
            "num_objects": num_objects,
            "meta": {"sequence": seq.name},
        }


class VOSDataModule(L.LightningDataModule):
    """DAVIS / MOSE-layout data for video object segmentation (STM training, J&F evaluation).

    Args:
        root: the data set folder (``JPEGImages/``, ``Annotations/``, optional ``ImageSets/``).
        format: ``davis`` or ``mose`` (same layout; MOSE has no resolution folder).
        resolution: resolution folder of DAVIS (``480p``).
        train_split: split that training clips are drawn from (``all`` when the folder has no ImageSets).
        val_split: split whose whole sequences validation segments (``all`` without ImageSets).
        test_split: split whose whole sequences testing segments (``test`` needs it: no default).
        clip_length: frames per training clip (3 in STM).
        max_skip: (start, end) of the largest gap between clip frames; it grows by one every
            ``skip_every_epochs`` epochs (needs ``trainer.reload_dataloaders_every_n_epochs=1``).
        skip_every_epochs: epochs between two steps of the ``max_skip`` curriculum.
        train_objects: most objects per training clip.
        max_objects: most objects in one evaluated sequence (the model gets ``max_objects + 1`` classes).
        crop_size: training crop (height, width) after a random scale in ``scale_range``; None trains on
            whole frames (at ``load_scale``, no random scale).
        scale_range: range of the random scale applied to a training clip before the crop.
        flip_prob: probability of a horizontal flip of a training clip.
        load_scale: resize factor applied on load to every split (0.5 turns 854×480 into 427×240).
        clips_per_sequence: training clips drawn per sequence and epoch.
        batch_size: training clips per batch (per device); validation and test take one sequence.
        num_workers: data-loader processes per device.
        seed: seed of the clips' draws (each draw depends on seed, epoch and sample index only).
    """

    def __init__(
        self,
        root: str,
        format: str = "davis",
        resolution: str = "480p",
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        clip_length: PositiveInt = 3,
        max_skip: tuple[NonNegativeInt, NonNegativeInt] = (0, 25),
        skip_every_epochs: PositiveInt = 1,
        train_objects: PositiveInt = 3,
        max_objects: PositiveInt = 10,
        crop_size: tuple[PositiveInt, PositiveInt] | None = (384, 384),
        scale_range: tuple[PositiveFloat, PositiveFloat] = (0.8, 1.2),
        flip_prob: Probability = 0.5,
        load_scale: PositiveFloat = 1.0,
        clips_per_sequence: PositiveInt = 8,
        batch_size: PositiveInt = 4,
        num_workers: NonNegativeInt = 2,
        seed: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        keep_plain_hyperparameters(self)
        if format not in ("davis", "mose"):
            raise ConfigError("data.format", f"must be 'davis' or 'mose', got {format!r}")
        if clip_length < 2:
            raise ConfigError(
                "data.clip_length",
                f"data.clip_length must be >= 2 (a memory frame and a query), got {clip_length}",
            )
        if not 1 <= train_objects <= max_objects:
            raise ConfigError(
                "data.train_objects",
                f"data.train_objects must lie in 1…max_objects ({max_objects}), got {train_objects}",
            )
        if max_skip[0] < 0 or max_skip[1] < max_skip[0] or skip_every_epochs < 1:
            raise ConfigError(
                "data.max_skip",
                f"data.max_skip must be (start, end) with 0 <= start <= end and skip_every_epochs >= 1, "
                f"got {max_skip} and {skip_every_epochs}",
            )
        self.root = Path(root)
        if not self.root.is_dir():  # before the trainer starts, naming the option
            problem = (
                "a file, not a DAVIS- or MOSE-layout folder (JPEGImages/<clip>/, Annotations/<clip>/)"
                if self.root.exists()
                else "data set folder does not exist"
            )
            raise ConfigError("data.root", f"{root}: {problem}")
        self.max_objects = max_objects
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.normalize = Normalize()
        self.sequences: dict[str, list[Sequence]] = {}

    def _format(self) -> DavisFormat:
        if not (self.root / "JPEGImages").is_dir():  # the reader's hints name what `vos` does not take
            raise ConfigError(
                "data.root",
                f"{self.root}: no JPEGImages/ folder: vos trains on DAVIS- or MOSE-layout sets of object "
                f"masks (JPEGImages/<clip>/, Annotations/<clip>/){other_layout(self.root, flag=False)}",
            )
        if self.hparams["format"] == "mose":
            return MoseFormat(self.root)
        return DavisFormat(self.root, resolution=self.hparams["resolution"])

    def max_skip_at(self, epoch: int) -> int:
        """The curriculum: the largest frame gap allowed in training clips of ``epoch``."""
        start, end = self.hparams["max_skip"]
        return min(end, start + epoch // self.hparams["skip_every_epochs"])

    def setup(self, stage: str) -> None:
        """Read the sequences of the splits that ``stage`` needs."""
        fmt = self._format()
        if stage == "fit":
            train = self._split(fmt, "train_split")
            self.sequences["train"] = read_sequences(fmt, train, need_all_masks=False)
            self._warn_of_a_crop_larger_than_the_frames()
        if stage in ("fit", "validate"):
            self.sequences["val"] = read_sequences(fmt, self._split(fmt, "val_split"), need_all_masks=True)
        if stage == "test":
            if self.hparams["test_split"] is None:
                raise ConfigError(
                    "data.test_split",
                    "`test` needs a split whose frames all have masks: give --data.test_split "
                    "(`all` for a folder without ImageSets)",
                )
            self.sequences["test"] = read_sequences(fmt, self._split(fmt, "test_split"), need_all_masks=True)

    def _warn_of_a_crop_larger_than_the_frames(self) -> None:
        """Say when the crop exceeds the training frames at their largest scale: the clips are mostly fill.

        A 600×600 crop of 427×240 frames had trained on padding, at six times the time, without a word.
        """
        crop, sequences = self.hparams["crop_size"], self.sequences["train"]
        if not crop or not sequences or not sequences[0].frames:
            return
        path = sequences[0].frames[0]
        width, height = image_size(path)
        largest = self.hparams["load_scale"] * max(self.hparams["scale_range"])
        if crop[0] > round(height * largest) or crop[1] > round(width * largest):
            rank_zero_warn(
                f"data.crop_size {crop[0]}×{crop[1]} (height×width) is larger than the training frames, "
                f"{round(height * largest)}×{round(width * largest)} at their largest ({path.name} is "
                f"{height}×{width}, data.load_scale {self.hparams['load_scale']:g}): the clips are padded"
            )

    def _split(self, fmt: DavisFormat, option: str) -> str:
        """The split ``option`` names; `ConfigError` naming the option and the splits found when none is."""
        split, found = self.hparams[option], fmt.splits()
        if split not in found:
            raise ConfigError(
                f"data.{option}",
                f"split {split!r} does not exist in {fmt.root}; splits found: {', '.join(found)}",
            )
        return str(split)

    def train_dataset(self, epoch: int) -> VOSClipDataset:
        """The training clips of ``epoch`` (the skip curriculum and the draws depend on it)."""
        hp = self.hparams
        return VOSClipDataset(
            self.sequences["train"],
            hp["clip_length"],
            self.max_skip_at(epoch),
            hp["train_objects"],
            tuple(hp["crop_size"]) if hp["crop_size"] else None,
            tuple(hp["scale_range"]),
            hp["load_scale"],
            hp["flip_prob"],
            hp["clips_per_sequence"],
            hp["seed"],
            epoch,
        )

    def train_dataloader(self) -> DataLoader:
        """Training clips of the current epoch (its maximum skip)."""
        epoch = 0
        if self.trainer is not None:
            epoch = self.trainer.current_epoch
            growing = self.hparams["max_skip"][0] != self.hparams["max_skip"][1]
            # Lightning's DataConnector sets this Trainer attribute, which Trainer's class does not declare.
            reload_every = self.trainer.reload_dataloaders_every_n_epochs  # type: ignore[attr-defined]
            if growing and epoch == 0 and reload_every != 1:
                rank_zero_warn(
                    "data.max_skip grows per epoch only with trainer.reload_dataloaders_every_n_epochs=1; "
                    f"training stays at max skip {self.max_skip_at(0)}"
                )
        dataset = self.train_dataset(epoch)
        rank_zero_info(f"VOS training epoch {epoch}: {len(dataset)} clips, max skip {dataset.max_skip}")
        crop = self.hparams["crop_size"]
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = EpochSampler(dataset, num_replicas=world, rank=rank, seed=self.hparams["seed"])
        sampler.set_epoch(epoch)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=len(dataset) // world > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=None if crop else _collate_one_size,
        )

    def _sequence_loader(self, split: str) -> DataLoader:
        dataset = VOSSequenceDataset(self.sequences[split], self.hparams["load_scale"], self.max_objects)
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            # Split the sequences over processes without the repeats that would count twice in J&F.
            world_size, rank = self.trainer.world_size, self.trainer.global_rank
            sampler = unrepeated_sampler(dataset, split, world_size, rank, unit="sequences")
        return DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        """One whole validation sequence per batch."""
        return self._sequence_loader("val")

    def test_dataloader(self) -> DataLoader:
        """One whole test sequence per batch."""
        return self._sequence_loader("test")

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Normalise the uint8 frames on the device, in a true precision's dtype (``bf16-true``)."""
        batch["frames"] = in_precision(
            self.normalize.to(batch["frames"].device)(batch["frames"]), self.trainer
        )
        return batch


def _collate_one_size(samples: list[dict]) -> dict:
    """Default collation, with a clear error when uncropped frames of different sizes meet in a batch."""
    sizes = {tuple(s["frames"].shape[-2:]) for s in samples}
    if len(sizes) > 1:
        raise ValueError(
            f"training frames of different sizes {sorted(sizes)} cannot share a batch; "
            "set data.crop_size or data.batch_size=1"
        )
    return torch.utils.data.default_collate(samples)
