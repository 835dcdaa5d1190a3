"""Per-kind loss routing: which losses each label kind gets, and which rows of the batch they see."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from frugalseg.datamodules.clips import LabelKind
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.lightning_modules import VideoSegmentationModule
from frugalseg.lightning_modules.segmentation import (
    overlay_grid,
    parse_loss_spec,
    poly_schedule,
    select_batch,
    split_loss_args,
)
from frugalseg.losses import LOSSES, temporal_consistency_loss
from frugalseg.losses.gated_crf import GatedCRFLoss, PartialCrossEntropy
from frugalseg.zoo.base import Student

FINE, PSEUDO, CLICKS = (LabelKind(k).index for k in ("fine", "pseudo", "clicks"))




class _Recorder(nn.Module):
    """A loss that remembers what it was given: ``scale`` × (mean logit + sum of ``batch["extra"]``)."""

    calls: list[tuple[torch.Tensor, torch.Tensor, dict]] = []

    def __init__(self, scale: float = 1.0, ignore_index: int = 255) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, logits: torch.Tensor, target: torch.Tensor, batch: dict) -> torch.Tensor:
        _Recorder.calls.append((logits, target, batch))
        return self.scale * (logits.mean() + batch["extra"].sum())


class _TinyStudent(Student):
    """Only here for ``aux_weights``: the tests hand the outputs to ``routed_loss`` themselves."""

    def __init__(self, aux_weights: dict[str, float]) -> None:
        super().__init__(num_classes=3, num_frames=1, aux_weights=aux_weights)


def _module(monkeypatch, losses, loss_args=None, aux_weights=None) -> tuple[VideoSegmentationModule, dict]:
    monkeypatch.setitem(LOSSES, "recorder", _Recorder)
    _Recorder.calls = []
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", num_classes=3, num_frames=1, losses=losses, loss_args=loss_args
    )
    module.student = _TinyStudent(aux_weights or {})
    logged: dict[str, float] = {}
    monkeypatch.setattr(module, "log", lambda name, value, **kwargs: logged.__setitem__(name, float(value)))
    return module, logged


def _ce_by_hand(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean of −log softmax at the label over the labelled pixels, written out pixel by pixel."""
    total, count = 0.0, 0
    for b, y, x in torch.nonzero(target != 255).tolist():
        z = logits[b, :, y, x].double()
        total += float(torch.logsumexp(z, 0) - z[target[b, y, x]])
        count += 1
    return total / count


def _batch() -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(0)
    outputs = {
        "out": torch.randn(3, 3, 2, 2, generator=generator),
        "aux": torch.randn(3, 3, 2, 2, generator=generator),
    }
    batch = {
        "frames": torch.arange(3 * 1 * 3 * 2 * 2, dtype=torch.float32).view(3, 1, 3, 2, 2),
        "label": torch.tensor([[[0, 1], [2, 255]], [[1, 1], [0, 2]], [[255, 255], [2, 0]]]),
        "kind": torch.tensor([FINE, PSEUDO, FINE]),
        "extra": torch.tensor([10.0, 20.0, 30.0]),
        "meta": {"clip_id": ["a", "b", "c"], "offset": torch.tensor([0, -10, 0])},
    }
    return outputs, batch


def test_two_kinds_route_to_their_losses_and_combine_by_share(monkeypatch):
    module, logged = _module(
        monkeypatch,
        losses={"fine": "ce", "pseudo": {"ce": 1.0, "recorder": 0.5}},
        loss_args={"pseudo": {"recorder": {"scale": 2.0}}},
        aux_weights={"aux": 0.4},
    )
    outputs, batch = _batch()
    total = module.routed_loss(outputs, batch)

    fine_rows, pseudo_row = [0, 2], [1]
    out, aux, label = outputs["out"], outputs["aux"], batch["label"]
    fine = _ce_by_hand(out[fine_rows], label[fine_rows]) + 0.4 * _ce_by_hand(aux[fine_rows], label[fine_rows])
    pseudo_ce = _ce_by_hand(out[pseudo_row], label[pseudo_row]) + 0.4 * _ce_by_hand(
        aux[pseudo_row], label[pseudo_row]
    )
    # The recorder sees only sample 1: its extra is 20, not 10 + 20 + 30.
    recorder = 2.0 * (out[1].mean() + 20.0) + 0.4 * 2.0 * (aux[1].mean() + 20.0)
    pseudo = pseudo_ce + 0.5 * float(recorder)
    assert float(total) == pytest.approx(fine * 2 / 3 + pseudo * 1 / 3, rel=1e-6)
    assert logged["train/loss_fine"] == pytest.approx(fine, rel=1e-6)
    assert logged["train/loss_fine_ce"] == pytest.approx(fine, rel=1e-6)
    assert logged["train/loss_pseudo_ce"] == pytest.approx(pseudo_ce, rel=1e-6)
    assert logged["train/loss_pseudo_recorder"] == pytest.approx(float(recorder), rel=1e-6)
    assert logged["train/loss_pseudo"] == pytest.approx(pseudo, rel=1e-6)


def test_each_loss_gets_the_rows_of_its_own_samples(monkeypatch):
    module, _ = _module(monkeypatch, losses={"fine": "recorder", "pseudo": "recorder"})
    outputs, batch = _batch()
    module.routed_loss(outputs, batch)
    seen = {tuple(call[2]["meta"]["clip_id"]): call for call in _Recorder.calls}
    assert set(seen) == {("a", "c"), ("b",)}
    logits, target, part = seen[("a", "c")]
    assert torch.equal(logits, outputs["out"][[0, 2]])
    assert torch.equal(target, batch["label"][[0, 2]])
    assert torch.equal(part["frames"], batch["frames"][[0, 2]])
    assert torch.equal(part["extra"], torch.tensor([10.0, 30.0]))
    assert torch.equal(part["meta"]["offset"], torch.tensor([0, 0]))
    assert torch.equal(seen[("b",)][2]["frames"], batch["frames"][[1]])


def test_clicks_get_partial_ce_plus_gated_crf_on_their_own_frames(monkeypatch):
    module, logged = _module(
        monkeypatch,
        losses={"fine": "ce", "clicks": {"partial_ce": 1.0, "gated_crf": 0.1}},
        loss_args={"clicks": {"gated_crf": {"radius": 1}}},  # its own weight defaults to 1
    )
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 3, 6, 6, generator=generator)
    frames = torch.randn(3, 1, 3, 6, 6, generator=generator)
    label = torch.full((3, 6, 6), 255)
    label[0, 1, 1], label[0, 4, 4], label[1, 2, 3], label[2] = 0, 2, 1, 1
    label[2, 0, 0] = 255
    batch = {"frames": frames, "label": label, "kind": torch.tensor([CLICKS, CLICKS, FINE])}
    total = module.routed_loss({"out": logits}, batch)

    clicks = [0, 1]
    partial = _ce_by_hand(logits[clicks], label[clicks])  # the 3 clicked pixels only
    gated = GatedCRFLoss(weight=1.0, radius=1)(logits[clicks], None, {"frames": frames[clicks]})
    other_frames = GatedCRFLoss(weight=1.0, radius=1)(logits[clicks], None, {"frames": frames[[2, 2]]})
    assert float(other_frames) != pytest.approx(float(gated))  # the frames matter, so routing is tested
    fine = _ce_by_hand(logits[[2]], label[[2]])
    expected = (partial + 0.1 * float(gated)) * 2 / 3 + fine / 3
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert logged["train/loss_clicks_partial_ce"] == pytest.approx(partial, rel=1e-6)
    assert logged["train/loss_clicks_gated_crf"] == pytest.approx(float(gated), rel=1e-6)
    assert isinstance(module.losses["clicks"]["partial_ce"], PartialCrossEntropy)


def test_a_kind_without_a_loss_is_a_clear_error(monkeypatch):
    module, _ = _module(monkeypatch, losses={"fine": "ce"})
    outputs, batch = _batch()
    with pytest.raises(ValueError, match="'pseudo' labels but the model has no loss"):
        module.routed_loss(outputs, batch)


def test_config_shapes():
    assert parse_loss_spec("fine", "ce") == {"ce": 1.0}
    assert parse_loss_spec("clicks", {"partial_ce": 1, "gated_crf": 0.1}) == {
        "partial_ce": 1.0,
        "gated_crf": 0.1,
    }
    with pytest.raises(ValueError, match="model.losses.fine"):
        parse_loss_spec("fine", {})
    assert split_loss_args("pseudo", ["phuber_ce"], {"tau": 3}) == {"phuber_ce": {"tau": 3}}
    assert split_loss_args("clicks", ["partial_ce", "gated_crf"], {"gated_crf": {"radius": 5}}) == {
        "partial_ce": {},
        "gated_crf": {"radius": 5},
    }
    with pytest.raises(ValueError, match="several losses"):
        split_loss_args("clicks", ["partial_ce", "gated_crf"], {"radius": 5})
    with pytest.raises(ValueError, match="unknown label kinds"):
        VideoSegmentationModule(student="deeplabv3plus_mbv2", num_frames=1, losses={"scribbles": "ce"})


def _phuber_by_hand(logits: torch.Tensor, target: torch.Tensor, tau: float = 3.0) -> float:
    """Partially Huberised CE pixel by pixel: −τp + log τ + 1 where p ≤ 1/τ, else −log p."""
    losses = []
    for b, y, x in torch.nonzero(target != 255).tolist():
        p = float(logits[b, :, y, x].double().softmax(0)[target[b, y, x]])
        losses.append(-tau * p + math.log(tau) + 1 if p <= 1 / tau else -math.log(p))
    return sum(losses) / len(losses)


def test_pseudo_labels_default_to_partially_huberised_ce(monkeypatch):
    module, logged = _module(monkeypatch, losses=None)
    assert list(module.loss_weights["pseudo"]) == ["phuber_ce"]
    assert all(list(module.loss_weights[kind]) == ["ce"] for kind in ("fine", "coarse", "refined_coarse"))
    outputs, batch = _batch()
    outputs["out"][1, :, 0, 0] = torch.tensor([0.0, 4.0, 0.0])  # label 1 confident: the −log p branch
    outputs["out"][1, :, 0, 1] = torch.tensor([5.0, 0.0, 0.0])  # label 1 at p < 1/3: the linear branch
    del outputs["aux"]
    total = module.routed_loss(outputs, batch)
    pseudo = _phuber_by_hand(outputs["out"][[1]], batch["label"][[1]])
    fine = _ce_by_hand(outputs["out"][[0, 2]], batch["label"][[0, 2]])
    assert pseudo != pytest.approx(_ce_by_hand(outputs["out"][[1]], batch["label"][[1]]), rel=1e-3)
    assert logged["train/loss_pseudo_phuber_ce"] == pytest.approx(pseudo, rel=1e-6)
    assert float(total) == pytest.approx(fine * 2 / 3 + pseudo / 3, rel=1e-6)


TEMPORAL_MISSING = (
    r"model.temporal_weight is 2.0 but the training batches carry no frame pair with flows: "
    r"set data.train_temporal_pair: true"
)


def test_temporal_weight_without_a_frame_pair_is_an_error_not_a_silent_skip():
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", num_classes=3, num_frames=1, losses={"fine": "ce"}, temporal_weight=2.0
    )
    generator = torch.Generator().manual_seed(0)
    batch = {
        "frames": torch.randn(1, 1, 3, 32, 32, generator=generator),
        "label": torch.zeros(1, 32, 32, dtype=torch.long),
        "kind": torch.tensor([FINE]),
    }
    with pytest.raises(ValueError, match=TEMPORAL_MISSING):
        module.training_step(batch, 0)
    # Before the first batch: setup("fit") reads the real datamodule's options.
    module._trainer = SimpleNamespace(datamodule=VideoSegDataModule(num_frames=1))
    with pytest.raises(ValueError, match=TEMPORAL_MISSING):
        module.setup("fit")
    module.setup("validate")
    module._trainer = SimpleNamespace(datamodule=VideoSegDataModule(num_frames=1, train_temporal_pair=True))
    module.setup("fit")


def test_select_batch_keeps_entries_that_are_not_per_sample():
    chosen = torch.tensor([False, True])
    batch = {"x": torch.tensor([[1, 2], [3, 4]]), "ids": ("p", "q"), "scalar": torch.tensor(5.0), "n": 7}
    part = select_batch(batch, chosen)
    assert torch.equal(part["x"], torch.tensor([[3, 4]]))
    assert part["ids"] == ("q",) and part["n"] == 7 and float(part["scalar"]) == 5.0
    assert math.isclose(float(select_batch(torch.tensor([1.0, 2.0]), chosen)[0]), 2.0)


def test_temporal_pair_adds_lambda_times_consistency_and_label_weight_scales_the_labels(
    monkeypatch, tmp_path
):
    source = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", student_args={"decoder_channels": 16}, num_classes=3, num_frames=1
    )
    torch.save({"state_dict": source.state_dict()}, tmp_path / "run.ckpt")
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2",
        student_args={"decoder_channels": 16},
        num_classes=3,
        num_frames=1,
        losses={"fine": "ce"},
        init_weights=str(tmp_path / "run.ckpt"),
        label_weight=0.5,
        temporal_weight=2.0,
    )
    for key, value in source.student.state_dict().items():
        assert torch.equal(module.student.state_dict()[key], value), key
    logged: dict[str, float] = {}
    monkeypatch.setattr(
        module, "log", lambda name, value, **kw: logged.__setitem__(name, float(value.detach()))
    )
    module.eval()  # deterministic dropout and BN, so the sums below can be recomputed
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(2, 2, 3, 32, 32, generator=generator)
    flow = torch.zeros(2, 2, 32, 32)
    flow[:, 0] = 1.5
    batch = {
        "frames": frames,
        "label": torch.randint(0, 3, (2, 32, 32), generator=generator),
        "kind": torch.tensor([FINE, FINE]),
        "flow_to_prev": flow,
        "flow_from_prev": -flow,
    }
    total = module.training_step(batch, 0)
    with torch.no_grad():
        current, previous = module.student(frames[:, 1:]), module.student(frames[:, :1])
    label = _ce_by_hand(current, batch["label"])
    consistency = temporal_consistency_loss(current.softmax(1), previous.softmax(1), flow, -flow)
    assert float(consistency) > 0
    assert float(total) == pytest.approx(0.5 * label + 2.0 * float(consistency), rel=1e-5)
    assert logged["train/loss_temporal"] == pytest.approx(float(consistency), rel=1e-5)
    module.hparams.label_weight = 0.0
    assert float(module.training_step(batch, 0)) == pytest.approx(2.0 * float(consistency), rel=1e-5)


def test_poly_schedule_decays_to_the_floor_and_stays_there():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = poly_schedule(optimizer, total_steps=10, power=0.9, floor=0.1)["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.01)
    assert rates[5] == pytest.approx(0.01 * (0.9 * 0.5**0.9 + 0.1))
    assert rates[10] == rates[11] == pytest.approx(0.001)  # min_lr = floor × lr after the last step


def test_overlay_grid_rows_are_frame_label_prediction_in_the_palette():
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    frame = ((torch.full((3, 2, 3), 0.5) - mean) / std)[None]  # mid grey once un-normalised
    label = torch.tensor([[[0, 1, 255], [1, 1, 0]]])
    pred = torch.tensor([[[1, 1, 1], [0, 0, 0]]])
    grid = overlay_grid(frame, label, pred, [[255, 0, 0], [0, 0, 255]])
    assert grid.shape == (3, 2 + 2 + 2, 2 + 3 * (3 + 2))  # one row of three 2×3 tiles, 2 px apart
    tiles = [grid[:, 2:4, 2 + j * 5 : 5 + j * 5] for j in range(3)]
    torch.testing.assert_close(tiles[0], torch.full((3, 2, 3), 0.5))
    red, blue, black = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0]), torch.zeros(3)
    assert torch.equal(tiles[1][:, 0, 0], red) and torch.equal(tiles[1][:, 0, 1], blue)
    assert torch.equal(tiles[1][:, 0, 2], black)  # the ignore index
    assert torch.equal(tiles[2][:, 0, 0], blue) and torch.equal(tiles[2][:, 1, 2], red)
