"""VideoSegDataModule: a dataset folder + a recipe → batches of clips with mixed-source labels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import torch
from kornia.geometry.transform import warp_affine
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from frugalseg.autolabel import FlowPropagator, LabelStore, propagate_split
from frugalseg.autolabel.clicks import click_split, clicks_json_path, read_clicks_json
from frugalseg.datamodules.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.datamodules.dataset import ClipSampleDataset
from frugalseg.datamodules.formats import get_format
from frugalseg.datamodules.formats.cityscapes import CityscapesFormat
from frugalseg.datamodules.formats.synthetic import default_synthetic_root, generate_synthetic_streets
from frugalseg.datamodules.io import cache_dir
from frugalseg.datamodules.predict import PredictDataset, folder_items, split_items
from frugalseg.datamodules.recipes import Sample, annotation_cost, draw_samples, get_recipe, write_samples
from frugalseg.datamodules.transforms import ClipRandomGeometry, Normalize

#: Batch entries that hold flow fields (…×2×H×W, in pixels): geometry moves and rescales them.
FLOW_KEYS = ("neighbour_flows", "flow_to_prev", "flow_from_prev")


class VideoSegDataModule(L.LightningDataModule):
    """Training clips drawn by a named recipe; validation and test on manual labels only.

    Batches are dicts: ``frames`` B×T×3×H×W (float, normalised, past frames first), ``label``
    B×H×W (long, 255 = ignore), ``kind`` B (index of the :class:`LabelKind` of each label), ``meta``
    (clip id, offset, label file) and, for validation with ``temporal_consistency`` (and training
    with ``train_temporal_pair``), one more past frame plus ``flow_to_prev``/``flow_from_prev``
    B×2×H×W. With ``neighbours`` K, training batches also carry ``neighbours`` B×K×3×H×W,
    ``neighbour_offsets`` B×K and ``neighbour_flows`` B×K×2×H×W (see :class:`ClipSampleDataset`).
    Augmented training batches carry ``valid`` B×H×W, the pixels inside the scaled frame.

    Args:
        root: a Cityscapes-layout dataset folder. ``None`` generates the synthetic streets set
            into the cache (``$FRUGALSEG_CACHE``, default ``~/.cache/frugalseg``) and uses it.
        recipe: frame-mix or coarse-mix recipe name (``N1``, ``B3``, ``C30``, …).
        budget: total training samples the recipe keeps (default: one per manually labelled clip).
        seed: seed of the recipe's draw.
        num_frames: frames the student reads (linked to the model).
        crop_size: training crop (height, width) after a random scale in ``scale_range``;
            ``None`` trains on whole frames without geometric augmentation.
        load_scale: resize factor applied on load to every split (0.25 turns 2048×1024 into 512×256).
        pseudo_labels: label store with the propagated labels; default a folder in the cache keyed by
            the dataset root. Missing pseudo-labels are made there by ``prepare_data``.
        propagation_preset: DIS preset of the flow engine that makes them.
        propagation_occlusion: what the flow engine does with pixels that fail its checks
            (``label`` by their neighbours, or ``ignore``; see `FlowPropagator`).
        temporal_consistency: compute TC on validation/test (one more frame and two flows per sample).
        train_temporal_pair: the same frame pair and flows for training samples (temporal
            consistency fine-tuning, paper 000).
        train_same_frame: training windows repeat the labelled frame (TDNet's first stage).
        neighbours: unlabelled earlier frames per training sample, with flows (WeClick's MFD: 2).
        neighbour_window: the neighbours are drawn among this many frames before the sample's (4).
        click_labels: label store with the simulated clicks of the ``clicks`` recipe; default a
            folder in the cache keyed by the dataset root. Missing clicks are made by ``prepare_data``.
        click_radius: clicks label a disc of this radius (0: the clicked pixel only).
        synthetic_clips: clips per split of the generated set (only with ``root=None``).
        predict_split: split whose anchor frames ``frugalseg predict`` segments (default ``val_split``);
            no labels are needed.
        predict_frames: a folder of frames to segment instead (each sub-folder one video).
        predict_stream: segment ``predict_frames`` frame by frame with the student's ``step()``,
            which keeps its memory (one frame's work per frame, on one device; whole frames, no
            sliding window).
    """

    def __init__(
        self,
        root: str | None = None,
        recipe: str = "B3",
        budget: int | None = None,
        seed: int = 0,
        num_frames: int = 3,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        crop_size: tuple[int, int] | None = None,
        scale_range: tuple[float, float] = (0.5, 2.0),
        flip_prob: float = 0.5,
        load_scale: float = 1.0,
        batch_size: int = 4,
        val_batch_size: int | None = None,
        num_workers: int = 2,
        pseudo_labels: str | None = None,
        propagation_preset: str = "medium",
        propagation_occlusion: str = "label",
        temporal_consistency: bool = True,
        synthetic_clips: dict[str, int] | None = None,
        train_temporal_pair: bool = False,
        train_same_frame: bool = False,
        neighbours: int = 0,
        neighbour_window: int = 4,
        click_labels: str | None = None,
        click_radius: float = 0,
        predict_split: str | None = None,
        predict_frames: str | None = None,
        predict_stream: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.recipe = get_recipe(recipe)
        self.synthetic_params = {"clips_per_split": synthetic_clips or {"train": 24, "val": 6}}
        self.root = Path(root) if root is not None else default_synthetic_root(**self.synthetic_params)
        self.num_frames = num_frames
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        engine = f"flow-{propagation_preset}-{propagation_occlusion}"
        self.pseudo_root = Path(pseudo_labels) if pseudo_labels else _default_store(self.root, engine)
        self.click_root = (
            Path(click_labels) if click_labels else _default_store(self.root, f"clicks-r{click_radius:g}")
        )
        if not 0 <= neighbours <= neighbour_window:
            raise ValueError(
                f"data.neighbours must lie in 0…neighbour_window ({neighbour_window}), got {neighbours}"
            )
        self.normalize = Normalize()
        self.geometry = ClipGeometry(crop_size, scale_range, flip_prob) if crop_size else None
        self.samples: list[Sample] = []
        self._train_clips: dict[str, Clip] = {}
        self.datasets: dict[str, ClipSampleDataset] = {}

    # Properties linked to the model by the CLI.
    @property
    def num_classes(self) -> int:
        return CityscapesFormat.num_classes

    @property
    def ignore_index(self) -> int:
        return IGNORE_INDEX

    @property
    def class_names(self) -> list[str]:
        return list(CityscapesFormat.class_names)

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return list(CityscapesFormat.palette)

    def _format(self):
        return get_format("cityscapes", self.root)

    @property
    def uses_clicks(self) -> bool:
        """Whether the recipe trains on simulated clicks at the anchor frame."""
        return self.recipe.anchor_kind is LabelKind.CLICKS

    def prepare_data(self) -> None:
        """Generate the synthetic set if it is the data; make missing pseudo-labels and clicks (rank 0)."""
        if self.hparams.root is None:
            generate_synthetic_streets(self.root, **self.synthetic_params)
        fitting = self.trainer is None or self.trainer.state.fn == "fit"
        if fitting and self.recipe.pseudo_offsets:
            summary = propagate_split(
                self._format(),
                self.hparams.train_split,
                LabelStore(self.pseudo_root),
                self.recipe.pseudo_offsets,
                FlowPropagator(
                    preset=self.hparams.propagation_preset, occlusion=self.hparams.propagation_occlusion
                ),
            )
            rank_zero_info(
                f"pseudo-labels in {self.pseudo_root}: "
                f"{summary.written} written, {summary.skipped} already there"
            )
        if fitting and self.uses_clicks:
            summary = click_split(
                self._format(),
                self.hparams.train_split,
                LabelStore(self.click_root),
                radius=self.hparams.click_radius,
            )
            rank_zero_info(
                f"clicks in {self.click_root}: {summary.written} written, {summary.skipped} already there"
            )

    def setup(self, stage: str) -> None:
        fmt = self._format()
        temporal = self.hparams.temporal_consistency
        if stage == "fit":
            clips = fmt.clips(self.hparams.train_split)
            if self.recipe.pseudo_offsets:
                LabelStore(self.pseudo_root).attach(clips)
            if self.uses_clicks:
                LabelStore(self.click_root).attach(clips)
            self.samples = draw_samples(self.recipe, clips, self.hparams.budget, self.hparams.seed)
            self.datasets["train"] = self._dataset(
                clips,
                self.samples,
                temporal=self.hparams.train_temporal_pair,
                neighbours=self.hparams.neighbours,
                same_frame=self.hparams.train_same_frame,
            )
            self._train_clips = {clip.clip_id: clip for clip in clips}
            self._write_samples()
        if stage in ("fit", "validate"):
            self.datasets["val"] = self._manual_dataset(fmt, self.hparams.val_split, temporal)
        if stage == "test":
            self.datasets["test"] = self._manual_dataset(
                fmt, self.hparams.test_split or self.hparams.val_split, temporal
            )
        if stage == "predict":
            if self.hparams.predict_stream:
                self._check_streaming()
                items = folder_items(self.hparams.predict_frames, self.num_frames, stream=True)
            elif self.hparams.predict_frames:
                items = folder_items(self.hparams.predict_frames, self.num_frames)
            else:
                split = self.hparams.predict_split or self.hparams.val_split
                items = split_items(fmt.clips(split), self.num_frames)
            self.datasets["predict"] = PredictDataset(items, scale=self.hparams.load_scale)

    def _dataset(
        self,
        clips: list[Clip],
        samples: list[Sample],
        temporal: bool,
        neighbours: int = 0,
        same_frame: bool = False,
    ) -> ClipSampleDataset:
        return ClipSampleDataset(
            clips,
            samples,
            self.num_frames,
            self.num_classes,
            scale=self.hparams.load_scale,
            temporal_pair=temporal,
            neighbours=neighbours,
            neighbour_window=self.hparams.neighbour_window,
            same_frame=same_frame,
        )

    def _manual_dataset(self, fmt, split: str, temporal: bool) -> ClipSampleDataset:
        clips = [clip for clip in fmt.clips(split) if clip.label(0, LabelKind.FINE) is not None]
        if not clips:
            raise ValueError(
                f"{self.root}: split {split!r} has no manually labelled (gtFine) frame to evaluate on"
            )
        samples = [Sample(clip.clip_id, 0, LabelKind.FINE) for clip in clips]
        return self._dataset(clips, samples, temporal=temporal and all(len(c.frames) > 1 for c in clips))

    def _write_samples(self) -> None:
        """Write the drawn (clip, offset, kind) list and its annotation cost next to the run's logs."""
        cost = annotation_cost(self.samples, clicks=self._click_counts())
        rank_zero_info(
            f"recipe {self.recipe.name}: {len(self.samples)} samples, {cost.manual_frames} manual frames, "
            f"{cost.total_hours:.1f} h of annotation"
        )
        trainer = self.trainer
        if trainer is None:
            return
        # every rank asks: `log_dir` is broadcast from rank 0, so asking on rank 0 alone deadlocks DDP
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not trainer.is_global_zero:
            return
        path = Path(log_dir) / "samples.json"
        hp = self.hparams
        write_samples(self.samples, path, self.recipe, cost, seed=hp.seed, budget=hp.budget)

    def _click_counts(self) -> dict[Sample, int]:
        """Number of clicks behind each ``clicks`` sample, read from the points beside its label."""
        counts = {}
        for sample in self.samples:
            if sample.kind is LabelKind.CLICKS:
                ref = self._train_clips[sample.clip_id].label(sample.offset, LabelKind.CLICKS)
                counts[sample] = len(read_clicks_json(clicks_json_path(ref.path)))
        return counts

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        dataset = self.datasets[split]
        sampler = None
        if not shuffle and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default sampler pads evaluation sets with repeated samples, which would
            # count them twice in the metrics; this one splits the set without repeats.
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=shuffle and len(self.datasets[split]) > batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, batch_size=self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, batch_size=self.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        # streaming feeds the frames of a video one at a time, in order
        batch_size = 1 if self.hparams.predict_stream else self.val_batch_size
        return self._loader("predict", shuffle=False, batch_size=batch_size)

    def _check_streaming(self) -> None:
        """Streaming needs a folder of videos and one process (each keeps one video's memory)."""
        if not self.hparams.predict_frames:
            raise ValueError("data.predict_stream needs data.predict_frames (a folder of videos to stream)")
        if self.trainer is not None and self.trainer.world_size > 1:
            raise ValueError(
                f"data.predict_stream runs on one device, got {self.trainer.world_size} processes; "
                "stream each video folder in its own run instead"
            )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Normalise on the device; random clip-consistent geometry for training batches."""
        normalize = self.normalize.to(batch["frames"].device)
        batch["frames"] = normalize(batch["frames"])
        if "neighbours" in batch:
            batch["neighbours"] = normalize(batch["neighbours"])
        if self.geometry is not None and self.trainer is not None and self.trainer.training:
            batch = self.geometry.apply(batch)
        return batch


class ClipGeometry(ClipRandomGeometry):
    """:class:`ClipRandomGeometry` that also moves a batch's neighbour frames and flow fields.

    Neighbours get the same scale, crop and flip as the sample's frames. A flow field is resampled
    like an image and its vectors are multiplied by the linear part of the transform (scaled, and
    dx negated by a flip), so that it still maps the transformed frames onto each other.
    """

    def sample_matrices(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        self.last_matrices = super().sample_matrices(batch, height, width, device)
        return self.last_matrices

    def apply(self, batch: dict) -> dict:
        """Transform ``frames``, ``label``, ``neighbours`` and the flows of ``FLOW_KEYS``; add ``valid``."""
        frames, neighbours = batch["frames"], batch.get("neighbours")
        count = 0 if neighbours is None else neighbours.shape[1]
        joint = frames if neighbours is None else torch.cat([neighbours, frames], dim=1)
        joint, batch["label"] = self(joint, batch["label"])
        matrices = self.last_matrices
        batch["frames"] = joint[:, count:]
        if neighbours is not None:
            batch["neighbours"] = joint[:, :count]
        ones = frames.new_ones(frames.shape[0], 1, *frames.shape[-2:])
        inside = warp_affine(ones, matrices, dsize=self.crop_size, mode="nearest", align_corners=True)
        batch["valid"] = inside.squeeze(1) > 0.5
        for key in FLOW_KEYS:
            if key in batch:
                batch[key] = transform_flow(batch[key], matrices, self.crop_size)
        return batch


def transform_flow(flow: torch.Tensor, matrices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Flows B×2×H×W or B×K×2×H×W under per-sample pixel affine maps B×2×3, cropped to ``size``.

    A pixel p with flow f maps to A·p and its match p + f to A·(p + f), so the new flow at A·p is
    L·f with L the 2×2 linear part of A; the field itself is resampled bilinearly.
    """
    stacked = flow.dim() == 5
    flows = flow if stacked else flow.unsqueeze(1)
    batch, count = flows.shape[:2]
    repeated = matrices.to(flows.dtype).repeat_interleave(count, dim=0)
    moved = warp_affine(flows.flatten(0, 1), repeated, dsize=size, mode="bilinear", align_corners=True)
    moved = torch.einsum("nij,njhw->nihw", repeated[:, :, :2], moved).view(batch, count, 2, *size)
    return moved if stacked else moved.squeeze(1)


def _default_store(root: Path, name: str) -> Path:
    """Cache folder ``name`` for the labels made from a dataset root (never inside the dataset itself)."""
    cache = cache_dir()
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return cache / "labels" / f"{root.name}-{key}" / name
