"""One training step on a label store exported from the page, as `test_label_store_training` reads one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import (
    LabelOptions,
    LoaderOptions,
    RecipeOptions,
    SplitOptions,
    TemporalOptions,
)


def annotated_view(root: Path, state: Path, out: Path) -> Path:
    """``root`` with only the videos the session in ``state`` annotated (links), for a store that holds
    labels of those alone."""
    for video in (p.parent.name for p in state.glob("*/state.json")):
        for part in ("JPEGImages", "Annotations"):
            (out / part / "480p").mkdir(parents=True, exist_ok=True)
            (out / part / "480p" / video).symlink_to(root / part / "480p" / video)
    return out


def first_batch(
    root: Path, state: Path, view: Path, recipe: RecipeOptions, labels: LabelOptions, batch_size: int
) -> dict[str, Any]:
    """The first training batch of the DAVIS datamodule with ``recipe`` and ``labels`` on the videos of
    ``root`` the session in ``state`` annotated (linked under ``view``), one frame a sample, whole frames."""
    data = VideoSegDataModule(
        root=str(annotated_view(root, state, view)),
        format="davis",
        num_frames=1,
        recipe=recipe,
        splits=SplitOptions(train="all", val="all"),
        loader=LoaderOptions(batch_size=batch_size, num_workers=0),
        labels=labels,
        temporal=TemporalOptions(consistency=False),
    )
    data.prepare_data()
    data.setup("fit")
    return next(iter(data.train_dataloader()))


def train_one_step(root: Path, store: Path, state: Path) -> float:
    """Recipe F2s (frame 0 fine, frame 1 pseudo) from ``store`` on the annotated videos of ``root``; the
    labels checked against ``state``'s masks, then one SGD step of a 1×1 convolution; its loss."""
    view = store.parent / "annotated-view"
    batch = first_batch(root, state, view, RecipeOptions("F2s", budget=4), LabelOptions(pseudo=str(store)), 4)
    for i, kind in enumerate(batch["meta"]["kind"]):
        if kind == "pseudo":
            clip, offset = batch["meta"]["clip_id"][i], int(batch["meta"]["offset"][i])
            mask = cv2.imread(str(state / clip / "masks" / f"{offset:05d}.png"), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(batch["label"][i].numpy(), (mask > 0).astype(np.int64))
    assert "pseudo" in batch["meta"]["kind"]
    model = torch.nn.Conv2d(3, 2, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    logits = model(batch["frames"][:, -1].float() / 255)
    loss = torch.nn.functional.cross_entropy(logits, batch["label"], ignore_index=255)
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss)
    return float(loss.detach())
