"""Per-kind loss routing: which losses each label kind gets, and which rows of the batch they see."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from frugalseg.data.clips import LabelKind
from frugalseg.errors import ConfigError
from frugalseg.losses import LOSSES, RoutedLoss
from frugalseg.losses.gated_crf import GatedCRFLoss, PartialCrossEntropy
from frugalseg.losses.routing import parse_loss_spec, split_loss_args

FINE, PSEUDO, CLICKS = (LabelKind(k).code for k in ("fine", "pseudo", "clicks"))


class _Recorder(nn.Module):
    """A loss that remembers what it was given: ``scale`` × (mean logit + sum of ``image``)."""

    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __init__(self, scale: float = 1.0, ignore_index: int = 255) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, logits, target, *, image=None, valid=None) -> torch.Tensor:
        _Recorder.calls.append((logits, target, image))
        return self.scale * (logits.mean() + image.sum())


def _routed(monkeypatch, losses, loss_args=None) -> RoutedLoss:
    monkeypatch.setitem(LOSSES, "recorder", _Recorder)
    _Recorder.calls = []
    return RoutedLoss(losses, loss_args)


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
        "image": torch.arange(3 * 3 * 2 * 2, dtype=torch.float32).view(3, 3, 2, 2) / 100,
        "label": torch.tensor([[[0, 1], [2, 255]], [[1, 1], [0, 2]], [[255, 255], [2, 0]]]),
        "kinds": ["fine", "pseudo", "fine"],
    }
    return outputs, batch


def _route(loss: RoutedLoss, outputs: dict, batch: dict, aux_weights=None) -> tuple[float, dict[str, float]]:
    total, terms = loss(
        outputs, batch["label"], batch["kinds"], image=batch["image"], aux_weights=aux_weights
    )
    return float(total), {name: float(value) for name, (value, _) in terms.items()}


def test_two_kinds_route_to_their_losses_and_combine_by_share(monkeypatch):
    loss = _routed(
        monkeypatch,
        losses={"fine": "ce", "pseudo": {"ce": 1.0, "recorder": 0.5}},
        loss_args={"pseudo": {"recorder": {"scale": 2.0}}},
    )
    outputs, batch = _batch()
    total, terms = _route(loss, outputs, batch, aux_weights={"aux": 0.4})

    fine_rows, pseudo_row = [0, 2], [1]
    out, aux, label = outputs["out"], outputs["aux"], batch["label"]
    fine = _ce_by_hand(out[fine_rows], label[fine_rows]) + 0.4 * _ce_by_hand(aux[fine_rows], label[fine_rows])
    pseudo_ce = _ce_by_hand(out[pseudo_row], label[pseudo_row]) + 0.4 * _ce_by_hand(
        aux[pseudo_row], label[pseudo_row]
    )
    # The recorder sees only sample 1's image, not the whole batch's.
    image_sum = float(batch["image"][1].sum())
    recorder = 2.0 * (out[1].mean() + image_sum) + 0.4 * 2.0 * (aux[1].mean() + image_sum)
    pseudo = pseudo_ce + 0.5 * float(recorder)
    assert total == pytest.approx(fine * 2 / 3 + pseudo * 1 / 3, rel=1e-6)
    assert terms["fine"] == pytest.approx(fine, rel=1e-6)
    assert terms["fine_ce"] == pytest.approx(fine, rel=1e-6)
    assert terms["pseudo_ce"] == pytest.approx(pseudo_ce, rel=1e-6)
    assert terms["pseudo_recorder"] == pytest.approx(float(recorder), rel=1e-6)
    assert terms["pseudo"] == pytest.approx(pseudo, rel=1e-6)


def test_each_loss_gets_the_rows_of_its_own_samples(monkeypatch):
    loss = _routed(monkeypatch, losses={"fine": "recorder", "pseudo": "recorder"})
    outputs, batch = _batch()
    _route(loss, outputs, batch)
    assert len(_Recorder.calls) == 2
    (fine_logits, fine_target, fine_image), (pseudo_logits, _, pseudo_image) = _Recorder.calls
    assert torch.equal(fine_logits, outputs["out"][[0, 2]])
    assert torch.equal(fine_target, batch["label"][[0, 2]])
    assert torch.equal(fine_image, batch["image"][[0, 2]])
    assert torch.equal(pseudo_logits, outputs["out"][[1]])
    assert torch.equal(pseudo_image, batch["image"][[1]])


def test_a_batch_of_one_kind_is_passed_on_without_copies(monkeypatch):
    loss = _routed(monkeypatch, losses={"fine": "recorder"})
    outputs, batch = _batch()
    batch["kinds"] = ["fine"] * 3
    _route(loss, outputs, batch)
    logits, target, image = _Recorder.calls[0]
    assert logits is outputs["out"] and target is batch["label"] and image is batch["image"]


def test_clicks_get_partial_ce_plus_gated_crf_on_their_own_frames():
    loss = RoutedLoss(
        {"fine": "ce", "clicks": {"partial_ce": 1.0, "gated_crf": 0.1}},
        {"clicks": {"gated_crf": {"radius": 1}}},  # its own weight defaults to 1
    )
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 3, 6, 6, generator=generator)
    image = torch.randn(3, 3, 6, 6, generator=generator)
    label = torch.full((3, 6, 6), 255)
    label[0, 1, 1], label[0, 4, 4], label[1, 2, 3], label[2] = 0, 2, 1, 1
    label[2, 0, 0] = 255
    total, terms = loss({"out": logits}, label, ["clicks", "clicks", "fine"], image=image)

    clicks = [0, 1]
    partial = _ce_by_hand(logits[clicks], label[clicks])  # the 3 clicked pixels only
    gated = GatedCRFLoss(weight=1.0, radius=1)(logits[clicks], None, image=image[clicks])
    other_frames = GatedCRFLoss(weight=1.0, radius=1)(logits[clicks], None, image=image[[2, 2]])
    assert float(other_frames) != pytest.approx(float(gated))  # the frames matter, so routing is tested
    fine = _ce_by_hand(logits[[2]], label[[2]])
    expected = (partial + 0.1 * float(gated)) * 2 / 3 + fine / 3
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert float(terms["clicks_partial_ce"][0]) == pytest.approx(partial, rel=1e-6)
    assert float(terms["clicks_gated_crf"][0]) == pytest.approx(float(gated), rel=1e-6)
    assert terms["clicks"][1] == 2 and terms["fine"][1] == 1  # the samples behind each term
    assert isinstance(loss.losses["clicks"]["partial_ce"], PartialCrossEntropy)


def test_a_kind_without_a_loss_is_a_clear_error():
    outputs, batch = _batch()
    with pytest.raises(ValueError, match=r"\['pseudo'\] labels but the model has no loss"):
        RoutedLoss({"fine": "ce"})(outputs, batch["label"], batch["kinds"])


def test_config_shapes():
    assert parse_loss_spec("fine", "ce") == {"ce": 1.0}
    assert parse_loss_spec("clicks", {"partial_ce": 1, "gated_crf": 0.1}) == {
        "partial_ce": 1.0,
        "gated_crf": 0.1,
    }
    with pytest.raises(ValueError, match="fine labels have no loss"):
        parse_loss_spec("fine", {})
    assert split_loss_args("pseudo", ["phuber_ce"], {"tau": 3}) == {"phuber_ce": {"tau": 3}}
    assert split_loss_args("clicks", ["partial_ce", "gated_crf"], {"gated_crf": {"radius": 5}}) == {
        "partial_ce": {},
        "gated_crf": {"radius": 5},
    }
    with pytest.raises(ValueError, match="several losses"):
        split_loss_args("clicks", ["partial_ce", "gated_crf"], {"radius": 5})
    with pytest.raises(ValueError, match="unknown label kinds"):
        RoutedLoss({"scribbles": "ce"})
    # arguments of a misspelt kind, or of a kind without a loss, had been named under losses, or ignored
    with pytest.raises(ConfigError, match=r"unknown label kinds \['psuedo'\]") as misspelt:
        RoutedLoss({"fine": "ce", "pseudo": "phuber_ce"}, {"psuedo": {"tau": 3}})
    assert misspelt.value.option == "loss_args"
    with pytest.warns(UserWarning, match=r"loss_args of label kinds \['coarse'\] are not used: losses "):
        RoutedLoss({"fine": "ce", "pseudo": "ce"}, {"coarse": {"tau": 3}})


def _phuber_by_hand(logits: torch.Tensor, target: torch.Tensor, tau: float = 3.0) -> float:
    """Partially Huberised CE pixel by pixel: −τp + log τ + 1 where p ≤ 1/τ, else −log p."""
    losses = []
    for b, y, x in torch.nonzero(target != 255).tolist():
        p = float(logits[b, :, y, x].double().softmax(0)[target[b, y, x]])
        losses.append(-tau * p + math.log(tau) + 1 if p <= 1 / tau else -math.log(p))
    return sum(losses) / len(losses)


def test_pseudo_labels_default_to_partially_huberised_ce():
    loss = RoutedLoss()
    assert list(loss.weights["pseudo"]) == ["phuber_ce"]
    assert all(list(loss.weights[kind]) == ["ce"] for kind in ("fine", "coarse", "refined_coarse"))
    outputs, batch = _batch()
    outputs["out"][1, :, 0, 0] = torch.tensor([0.0, 4.0, 0.0])  # label 1 confident: the −log p branch
    outputs["out"][1, :, 0, 1] = torch.tensor([5.0, 0.0, 0.0])  # label 1 at p < 1/3: the linear branch
    del outputs["aux"]
    total, terms = _route(loss, outputs, batch)
    pseudo = _phuber_by_hand(outputs["out"][[1]], batch["label"][[1]])
    fine = _ce_by_hand(outputs["out"][[0, 2]], batch["label"][[0, 2]])
    assert pseudo != pytest.approx(_ce_by_hand(outputs["out"][[1]], batch["label"][[1]]), rel=1e-3)
    assert terms["pseudo_phuber_ce"] == pytest.approx(pseudo, rel=1e-6)
    assert total == pytest.approx(fine * 2 / 3 + pseudo / 3, rel=1e-6)


def test_the_gated_crf_warm_up_counts_steps_not_the_calls_of_each_head():
    loss = RoutedLoss({"clicks": "gated_crf"}, {"clicks": {"radius": 1, "stride": 1, "ramp_steps": 4}})
    generator = torch.Generator().manual_seed(2)
    outputs = {key: torch.randn(2, 3, 6, 6, generator=generator) for key in ("out", "aux")}
    image = torch.randn(2, 3, 6, 6, generator=generator)
    label = torch.full((2, 6, 6), 255)
    full = GatedCRFLoss(radius=1, stride=1)
    expected = float(full(outputs["out"], None, image=image) + 0.4 * full(outputs["aux"], None, image=image))

    def term(**kwargs) -> float:
        _, terms = loss(outputs, label, ["clicks"] * 2, image=image, aux_weights={"aux": 0.4}, **kwargs)
        return float(terms["clicks_gated_crf"][0])

    # Counted: the k-th call (k = 0, 1, …) is step k for the main and the auxiliary head alike.
    assert [term() for _ in range(3)] == pytest.approx([0.0, 0.25 * expected, 0.5 * expected], rel=1e-6)
    assert int(loss.losses["clicks"]["gated_crf"].calls) == 3
    # Told: the trainer's step, whatever the calls so far (gradient accumulation calls twice a step).
    assert term(step=1) == pytest.approx(0.25 * expected, rel=1e-6)
    assert term(step=1) == pytest.approx(0.25 * expected, rel=1e-6)
    assert int(loss.losses["clicks"]["gated_crf"].calls) == 2
    assert term(step=6) == pytest.approx(expected, rel=1e-6)
    loss.eval()
    assert term() == pytest.approx(expected, rel=1e-6)  # 7 steps done: full, evaluation counts none
    assert int(loss.losses["clicks"]["gated_crf"].calls) == 7
