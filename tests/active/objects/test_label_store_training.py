"""The annotation loop's final masks are a label store that `VideoSegDataModule` trains from.

Both writers: ``annotate simulate`` (``labels/<strategy>-seed<k>/``) and ``annotate export`` of a
person's session, whose drawn masks ``labels.manual`` makes the manual labels trained on. The data
are the two moving-squares videos (squares-a holds two objects, whose ids would lie outside DAVIS's
two classes if the store kept them).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import palette_png, squares, write_moving_squares

from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import (
    LabelOptions,
    LoaderOptions,
    RecipeOptions,
    SplitOptions,
    TemporalOptions,
)

pytestmark = pytest.mark.usefixtures("one_cv_thread")


def batches(root: Path, store: Path, manual: Path | None = None) -> list[dict]:
    """Every training batch of recipe F2s (frame 0 fine, frame 1 pseudo) on both videos from ``store``."""
    data = VideoSegDataModule(
        root=str(root),
        format="davis",
        num_frames=1,
        recipe=RecipeOptions("F2s", budget=4),
        splits=SplitOptions(train="val", val="val"),
        loader=LoaderOptions(batch_size=4, num_workers=0),
        labels=LabelOptions(pseudo=str(store), manual=None if manual is None else str(manual)),
        temporal=TemporalOptions(consistency=False),
    )
    data.prepare_data()
    data.setup("fit")
    return list(data.train_dataloader())


def test_simulate_writes_a_store_the_datamodule_trains_from(tmp_path: Path) -> None:
    root = write_moving_squares(tmp_path / "davis")
    out = tmp_path / "run"
    options = ["--budget-hours", "0.1", "--frames", "uniform", "--types", "mask", "--no-progress"]
    assert (
        main(["annotate", "simulate", "--root", str(root), "--split", "val", "--out", str(out), *options])
        == 0
    )
    store = out / "labels" / "uniform-mask-seed0"
    (batch,) = batches(root, store)
    assert sorted(zip(batch["meta"]["clip_id"], batch["meta"]["kind"], strict=True)) == [
        ("squares-a", "fine"),
        ("squares-a", "pseudo"),
        ("squares-b", "fine"),
        ("squares-b", "pseudo"),
    ]
    for i, path in enumerate(batch["meta"]["label_path"]):
        seq = 0 if batch["meta"]["clip_id"][i] == "squares-a" else 1
        offset = int(batch["meta"]["offset"][i])
        truth = (squares(offset, seq) > 0).astype(
            np.int64
        )  # every frame drawn: the loop's masks are the truth
        assert np.array_equal(batch["label"][i].numpy(), truth), path
    pseudo = [r for r in LabelStore(store).records() if r["kind"] == "pseudo"]
    assert pseudo and all(r["engine"] == "annotation-loop" for r in pseudo)


def test_a_sessions_export_is_a_store_the_datamodule_trains_from(tmp_path: Path, capsys) -> None:
    root = write_moving_squares(tmp_path / "davis")
    truth = {seq: [squares(t, i) for t in range(10)] for i, seq in enumerate(("squares-a", "squares-b"))}
    # a person's data: no ground truth but the masks they drew of frame 0, kept in the DAVIS layout
    # (the format reader refuses a clip without its first frame's mask; the datamodule reads manual
    # labels from the data set, not from a store)
    for path in (root / "Annotations").rglob("*.png"):
        if path.stem != "00000":
            path.unlink()
    state, store = tmp_path / "session", tmp_path / "store"
    for seq in truth:
        palette_png(tmp_path / f"{seq}.png", truth[seq][0])
        start = ["--root", str(root), "--split", "val"] if seq == "squares-a" else []
        add = ["annotate", "add", "--state", str(state), *start, "--video", seq, "--frame", "0"]
        assert main([*add, "--mask", str(tmp_path / f"{seq}.png")]) == 0
    assert main(["annotate", "export", "--state", str(state), "--out", str(store)]) == 0
    assert "20 labels written" in capsys.readouterr().out
    (batch,) = batches(root, store)
    kinds = sorted(zip(batch["meta"]["clip_id"], batch["meta"]["kind"], strict=True))
    assert kinds == [
        ("squares-a", "fine"),
        ("squares-a", "pseudo"),
        ("squares-b", "fine"),
        ("squares-b", "pseudo"),
    ]
    for i in range(4):
        seq, offset = batch["meta"]["clip_id"][i], int(batch["meta"]["offset"][i])
        mask = cv2.imread(str(state / seq / "masks" / f"{offset:05d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(batch["label"][i].numpy(), (mask > 0).astype(np.int64))
    # the same export again writes nothing; after another addition the store is refused
    assert main(["annotate", "export", "--state", str(state), "--out", str(store)]) == 0
    assert "0 labels written" in capsys.readouterr().out
    palette_png(tmp_path / "a9.png", truth["squares-a"][9])
    add = ["annotate", "add", "--state", str(state), "--video", "squares-a", "--frame", "9"]
    assert main([*add, "--mask", str(tmp_path / "a9.png")]) == 0
    assert main(["annotate", "export", "--state", str(state), "--out", str(store)]) == 2
    assert str(store) in capsys.readouterr().err


def test_manual_labels_from_a_store_replace_the_data_sets(tmp_path: Path) -> None:
    """``labels.manual``: the fine labels a person made (here a session's export) are the ones trained on."""
    root = write_moving_squares(tmp_path / "davis")
    for path in (root / "Annotations").rglob("*.png"):  # the data set holds only empty first masks
        if path.stem == "00000":
            palette_png(path, np.zeros_like(squares(0, 0)))
        else:
            path.unlink()
    state, store = tmp_path / "session", tmp_path / "store"
    for i, seq in enumerate(("squares-a", "squares-b")):
        palette_png(tmp_path / f"{seq}.png", squares(0, i))
        start = ["--root", str(root), "--split", "val"] if i == 0 else []
        add = ["annotate", "add", "--state", str(state), *start, "--video", seq, "--frame", "0"]
        assert main([*add, "--mask", str(tmp_path / f"{seq}.png")]) == 0
    assert main(["annotate", "export", "--state", str(state), "--out", str(store)]) == 0

    def fine_labels(batch: dict) -> dict[str, np.ndarray]:
        return {
            batch["meta"]["clip_id"][i]: batch["label"][i].numpy()
            for i in range(len(batch["meta"]["kind"]))
            if batch["meta"]["kind"][i] == "fine"
        }

    (own,) = batches(root, store)
    assert all(not label.any() for label in fine_labels(own).values())  # the data set's empty masks
    (person,) = batches(root, store, manual=store)
    for i, seq in enumerate(("squares-a", "squares-b")):
        assert np.array_equal(fine_labels(person)[seq], (squares(0, i) > 0).astype(np.int64))
