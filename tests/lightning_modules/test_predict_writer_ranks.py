"""`SegmentationPredictionWriter` under DDP, with a stand-in strategy: totals and sheet over all ranks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from frugalseg.lightning_modules import prediction_writer
from frugalseg.lightning_modules.prediction_writer import SegmentationPredictionWriter, contact_sheet

PALETTE = np.array([[0, 0, 0], [200, 40, 40]], np.uint8)


class TwoRanks:
    """Stand-in DDP strategy of two processes run one after the other: ``reduce`` sums ``counts``."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.barriers: list[str | None] = []

    def reduce(self, tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
        assert reduce_op == "sum"
        return torch.tensor(sum(self.counts))

    def barrier(self, name: str | None = None) -> None:
        self.barriers.append(name)


def _writer(root: Path) -> SegmentationPredictionWriter:
    writer = SegmentationPredictionWriter(output_dir=str(root), formats=["trainIds"], tile_width=8)
    writer._root, writer._palette = root, PALETTE
    return writer


def _batch(names: list[str]) -> tuple[dict, dict]:
    """One batch whose frame ``aK`` is the grey level 20·K and whose prediction marks column K."""
    frames = torch.stack([torch.full((2, 3, 4, 6), 0.2 * int(name[1:]) - 1.0) for name in names])
    pred = torch.zeros(len(names), 4, 6, dtype=torch.long)
    for i, name in enumerate(names):
        pred[i, :, int(name[1:])] = 1
    return {"pred": pred, "meta": {"name": names}}, {"frames": frames}


def test_ddp_predict_counts_every_rank_and_draws_the_sheet_from_all_ranks(tmp_path, monkeypatch) -> None:
    """Rank 0 writes a0, a2, a4 and rank 1 a1, a3, a5: the summary says 6 frames, not rank 0's 3,
    and the contact sheet holds the first 4 frames of both ranks by name, a0…a3."""
    said: list[str] = []
    monkeypatch.setattr(prediction_writer, "rank_zero_info", said.append)
    names = {0: ["a0", "a2", "a4"], 1: ["a1", "a3", "a5"]}
    strategy = TwoRanks([3, 3])
    module = SimpleNamespace(device=torch.device("cpu"))
    writers = {rank: _writer(tmp_path) for rank in names}
    for rank in (1, 0):  # rank 0 last: it reads what rank 1 left
        writers[rank].contact_sheet = 4
        prediction, batch = _batch(names[rank])
        writers[rank].write_on_batch_end(None, module, prediction, None, batch, 0, 0)  # type: ignore[arg-type]
        trainer = SimpleNamespace(strategy=strategy, world_size=2, global_rank=rank, is_global_zero=rank == 0)
        writers[rank].on_predict_end(trainer, module)  # type: ignore[arg-type]

    assert said[-1] == (  # rank 0's; `rank_zero_info` prints nothing on rank 1
        f"predict: 6 frames written to {tmp_path} (trainIds); contact sheet {tmp_path / 'contact_sheet.png'}"
    )
    assert strategy.barriers == ["contact_sheet_tiles"] * 2
    assert sorted(p.name for p in (tmp_path / "trainIds").iterdir()) == [f"a{k}.png" for k in range(6)]
    reference = _writer(tmp_path / "reference")
    prediction, batch = _batch(["a0", "a1", "a2", "a3"])
    pairs = [
        reference._tile_pair(batch["frames"][i, -1], PALETTE[prediction["pred"][i].numpy()], name)
        for i, name in enumerate(prediction["meta"]["name"])
    ]
    sheet = np.asarray(Image.open(tmp_path / "contact_sheet.png").convert("RGB"))
    np.testing.assert_array_equal(sheet, contact_sheet(pairs))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contact_sheet.png", "trainIds"]  # no tiles left


def test_a_run_into_a_folder_used_before_says_how_many_maps_are_not_its_own(tmp_path, monkeypatch) -> None:
    """The first run wrote a0…a2, the second a0 alone: its line says 2 maps are of the earlier run."""
    said: list[str] = []
    monkeypatch.setattr(prediction_writer, "rank_zero_info", said.append)
    module = SimpleNamespace(device=torch.device("cpu"))
    trainer = SimpleNamespace(strategy=TwoRanks([0]), world_size=1, global_rank=0, is_global_zero=True)
    for names in (["a0", "a1", "a2"], ["a0"]):
        writer = _writer(tmp_path)
        writer.contact_sheet = 0
        trainer.strategy.counts = [len(names)]
        prediction, batch = _batch(names)
        writer.write_on_batch_end(None, module, prediction, None, batch, 0, 0)  # type: ignore[arg-type]
        writer.on_predict_end(trainer, module)  # type: ignore[arg-type]
    assert said == [
        f"predict: 3 frames written to {tmp_path} (trainIds)",
        f"predict: 1 frame written to {tmp_path} (trainIds); 2 maps in {tmp_path / 'trainIds'} are of an "
        "earlier run, not this one",
    ]


def test_a_run_without_a_sheet_says_the_sheet_there_is_of_an_earlier_run(tmp_path, monkeypatch) -> None:
    """The first run drew a sheet, the second (``contact_sheet 0``) none: it had left it unnamed."""
    said: list[str] = []
    monkeypatch.setattr(prediction_writer, "rank_zero_info", said.append)
    module = SimpleNamespace(device=torch.device("cpu"))
    trainer = SimpleNamespace(strategy=TwoRanks([1]), world_size=1, global_rank=0, is_global_zero=True)
    for frames in (1, 0):
        writer = _writer(tmp_path)
        writer.contact_sheet = frames
        prediction, batch = _batch(["a0"])
        writer.write_on_batch_end(None, module, prediction, None, batch, 0, 0)  # type: ignore[arg-type]
        writer.on_predict_end(trainer, module)  # type: ignore[arg-type]
    sheet = tmp_path / "contact_sheet.png"
    assert said == [
        f"predict: 1 frame written to {tmp_path} (trainIds); contact sheet {sheet}",
        f"predict: 1 frame written to {tmp_path} (trainIds); {sheet} is of an earlier run, not this one",
    ]
