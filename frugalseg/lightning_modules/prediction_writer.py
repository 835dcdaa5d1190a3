"""Writes what `frugalseg predict` segments: label PNGs for tools and a contact sheet for people.

For each frame, three PNGs named after it (``city_seq_frame.png`` for Cityscapes-layout splits,
the relative path for a folder of frames):

* ``trainIds/``: one byte per pixel, the class index the model predicts;
* ``color/``: the classes in the data set's palette;
* ``labelIds/``: Cityscapes label ids, the format the Cityscapes benchmark server takes (only when
  the classes are the 19 Cityscapes train classes).

``contact_sheet.png`` shows the first frames as frame | prediction overlay pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from frugalseg.data.files import nearest_existing
from frugalseg.data.io import write_png_atomic
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.datamodules.options import NonNegativeInt, PositiveInt, Probability
from frugalseg.errors import ConfigError
from frugalseg.lightning_modules.segmentation import module_palette

FORMATS = ("trainIds", "color", "labelIds")


def cityscapes_label_id_table(class_names: list[str]) -> np.ndarray | None:
    """256-entry table train id → Cityscapes label id, or None unless the classes are Cityscapes' 19."""
    from cityscapesscripts.helpers.labels import labels

    train = sorted((label for label in labels if 0 <= label.trainId < 255), key=lambda label: label.trainId)
    if [label.name for label in train] != list(class_names):
        return None
    table = np.zeros(256, dtype=np.uint8)  # 0 = 'unlabeled', also for the ignore index
    for label in train:
        table[label.trainId] = label.id
    return table


def colorize(train_ids: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB of an H×W class map; values outside the palette are black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = palette
    return table[train_ids]


class SegmentationPredictionWriter(BasePredictionWriter):
    """Writes the predictions of ``predict_step`` (``pred`` B×H×W and ``meta['name']``) as PNGs.

    Args:
        output_dir: where to write; default ``<log dir>/predictions`` of the run.
        formats: which of ``trainIds``, ``color``, ``labelIds`` to write.
        contact_sheet: frames shown on ``contact_sheet.png`` (0: none).
        tile_width: width of each tile of the contact sheet, in pixels.
        overlay_alpha: weight of the prediction colours over the frame in the overlay.
    """

    def __init__(
        self,
        output_dir: str | None = None,
        formats: list[str] | None = None,
        contact_sheet: NonNegativeInt = 16,
        tile_width: PositiveInt = 320,
        overlay_alpha: Probability = 0.5,
    ) -> None:
        super().__init__(write_interval="batch")
        self.formats = list(FORMATS if formats is None else formats)
        if not self.formats:  # an empty list had written every format
            raise ConfigError("predict_writer.formats", f"give at least one of {list(FORMATS)}")
        unknown = set(self.formats) - set(FORMATS)
        if unknown:
            raise ConfigError(
                "predict_writer.formats",
                f"unknown prediction formats {sorted(unknown)}; formats are {list(FORMATS)}",
            )
        if output_dir is not None and not (there := nearest_existing(Path(output_dir))).is_dir():
            # refused before any prediction is made
            raise ConfigError("predict_writer.output_dir", f"{there} is a file, not a folder")
        self.output_dir = output_dir
        self.contact_sheet = contact_sheet
        self.tile_width = tile_width
        self.overlay_alpha = overlay_alpha
        self._tiles: list[tuple[str, tuple[np.ndarray, np.ndarray]]] = []
        self._written = 0
        self._names: set[str] = set()
        self._palette = np.zeros((0, 3), dtype=np.uint8)
        self._label_ids: np.ndarray | None = None
        self._root = Path(".")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Resolve the output folder, the palette and the label-id table; forget any earlier run."""
        root = self.output_dir or Path(trainer.log_dir or trainer.default_root_dir) / "predictions"
        self._root = Path(root)
        frames = getattr(getattr(trainer, "datamodule", None), "prediction", None)
        frames = getattr(frames, "frames", None)
        if frames and Path(frames).is_dir() and self._root.resolve().is_relative_to(Path(frames).resolve()):
            # a second run had segmented the first one's PNGs and contact sheet as frames
            raise ConfigError(
                "predict_writer.output_dir",
                f"{self._root} is inside the frames folder {frames}: write the predictions elsewhere",
            )
        class_names = list(pl_module.hparams.get("class_names") or [])
        self._palette = np.asarray(module_palette(pl_module), dtype=np.uint8).reshape(-1, 3)
        self._label_ids = cityscapes_label_id_table(class_names) if class_names else None
        if "labelIds" in self.formats and self._label_ids is None:
            if set(self.formats) == {"labelIds"}:  # it had predicted every frame and written none
                raise ConfigError(
                    "predict_writer.formats",
                    "labelIds are Cityscapes' ids, and the model's classes are not the 19 Cityscapes classes:"
                    " give trainIds or color",
                )
            rank_zero_info("predict: the classes are not the 19 Cityscapes classes; no labelIds PNGs written")
        self._tiles = []
        self._written = 0
        self._names = set()

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write the class maps of a batch in every format asked."""
        pred = prediction["pred"].to(torch.uint8).cpu().numpy()
        names = prediction["meta"]["name"]
        for i, name in enumerate(names):
            train_ids = pred[i]
            color = colorize(train_ids, self._palette)
            if "trainIds" in self.formats:
                write_png_atomic(self._root / "trainIds" / f"{name}.png", train_ids)
            if "color" in self.formats:
                write_png_atomic(self._root / "color" / f"{name}.png", color)
            if "labelIds" in self.formats and self._label_ids is not None:
                write_png_atomic(self._root / "labelIds" / f"{name}.png", self._label_ids[train_ids])
            if len(self._tiles) < self.contact_sheet:
                self._tiles.append((name, self._tile_pair(batch["frames"][i, -1], color, name)))
            self._written += 1
            self._names.add(name)

    def _tile_pair(self, frame: torch.Tensor, color: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The frame (denormalised) and the frame with the prediction blended over it, at tile size."""
        mean = torch.tensor(IMAGENET_MEAN, device=frame.device).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=frame.device).view(3, 1, 1)
        rgb = ((frame.float() * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        height = max(1, round(color.shape[0] * self.tile_width / color.shape[1]))
        size = (self.tile_width, height)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        color = cv2.resize(color, size, interpolation=cv2.INTER_NEAREST)
        overlay = cv2.addWeighted(rgb, 1 - self.overlay_alpha, color, self.overlay_alpha, 0)
        cv2.putText(rgb, name[-40:], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        return rgb, overlay

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the contact sheet and say where everything is, counting the frames of every rank.

        Under DDP each rank saves its tiles next to the predictions; after a barrier rank 0 draws the
        sheet from all ranks' tiles (the first ``contact_sheet`` frames by name) and removes them.
        """
        strategy = trainer.strategy
        written = int(strategy.reduce(torch.tensor(self._written, device=pl_module.device), reduce_op="sum"))
        tiles = self._tiles
        if trainer.world_size > 1:
            tiles = self._gather_tiles(trainer)
        formats = [f for f in self.formats if f != "labelIds" or self._label_ids is not None]
        if tiles and trainer.is_global_zero:
            write_png_atomic(self._root / "contact_sheet.png", contact_sheet([pair for _, pair in tiles]))
        frames = f"{written} frame" + ("" if written == 1 else "s")
        earlier = self._earlier_maps(formats[0]) if formats and trainer.world_size == 1 else 0
        sheet = self._root / "contact_sheet.png"
        rank_zero_info(
            f"predict: {frames} written to {self._root} ({', '.join(formats)})"
            + (f"; contact sheet {sheet}" if tiles else "")
            + (f"; {sheet} is of an earlier run, not this one" if not tiles and sheet.exists() else "")
            + (
                f"; {earlier} maps in {self._root / formats[0]} are of an earlier run, not this one"
                if earlier
                else ""
            )
        )

    def _earlier_maps(self, kind: str) -> int:
        """How many ``kind`` maps in the output folder this run did not write (a run before it did)."""
        folder = self._root / kind
        return sum(
            p.relative_to(folder).with_suffix("").as_posix() not in self._names for p in folder.rglob("*.png")
        )

    def _gather_tiles(self, trainer: L.Trainer) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
        """On rank 0, the first ``contact_sheet`` tiles of all ranks by frame name; elsewhere []."""
        own = self._root / f".contact_sheet_tiles.{trainer.global_rank}.npz"
        own.parent.mkdir(parents=True, exist_ok=True)
        names = np.array([name for name, _ in self._tiles], dtype=str)
        np.savez(own, names, *(image for _, pair in self._tiles for image in pair))  # arr_0 names, then pairs
        trainer.strategy.barrier("contact_sheet_tiles")
        if not trainer.is_global_zero:
            return []
        tiles = []
        for rank in range(trainer.world_size):
            path = self._root / f".contact_sheet_tiles.{rank}.npz"
            with np.load(path) as saved:
                pairs = [
                    (saved[f"arr_{2 * i + 1}"], saved[f"arr_{2 * i + 2}"]) for i in range(len(saved["arr_0"]))
                ]
                tiles += [(str(name), pair) for name, pair in zip(saved["arr_0"], pairs, strict=True)]
            path.unlink()
        return sorted(tiles, key=lambda tile: tile[0])[: self.contact_sheet]


def contact_sheet(
    pairs: list[tuple[np.ndarray, np.ndarray]], pairs_per_row: int = 2, gap: int = 4
) -> np.ndarray:
    """A grid of frame | overlay pairs on a dark background, ``pairs_per_row`` pairs per row."""
    tile_h = max(frame.shape[0] for frame, _ in pairs)
    tile_w = max(frame.shape[1] for frame, _ in pairs)
    columns = min(pairs_per_row, len(pairs)) * 2
    rows = -(-len(pairs) // pairs_per_row)
    sheet = np.full((rows * (tile_h + gap) + gap, columns * (tile_w + gap) + gap, 3), 32, dtype=np.uint8)
    for index, (frame, overlay) in enumerate(pairs):
        row, col = divmod(index, pairs_per_row)
        for j, tile in enumerate((frame, overlay)):
            top = gap + row * (tile_h + gap)
            left = gap + (col * 2 + j) * (tile_w + gap)
            sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return sheet
