"""QualityNet (EVA-VOS's QNet): quality bins, inputs, the embedding its head reads, encoder weights,
saving and loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.zoo import QualityNet, TypeGainNet, load_quality_net, save_quality_net, save_type_gain
from frugalseg.zoo.quality_net import (
    batch_inputs,
    bin_centres,
    load_encoder_weights,
    prepare_inputs,
    quality_bins,
)

SIZE = 32


@pytest.fixture(scope="module")
def net() -> QualityNet:
    torch.manual_seed(0)
    return QualityNet(input_size=SIZE).eval()


def inputs(n: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        masks[i, 4 * i : 4 * i + 12, 8:20] = 1
    return batch_inputs(frames, masks)


def test_quality_bins_are_of_width_one_over_bins_with_j_1_in_the_last() -> None:
    j = torch.tensor([0.0, 0.049, 0.05, 0.3, 0.35, 0.999, 1.0])
    assert quality_bins(j).tolist() == [0, 0, 1, 6, 7, 19, 19]  # 0.35 is 0.3499999940 in float32
    assert quality_bins(torch.tensor([0.0, 0.25, 0.5, 0.74, 1.0], dtype=torch.float64), 4).tolist() == [
        0,
        1,
        2,
        2,
        3,
    ]
    assert bin_centres(20)[[0, 1, 19]].tolist() == pytest.approx([0.025, 0.075, 0.975])


def test_prepare_inputs_resizes_and_normalises_with_imagenet_statistics() -> None:
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = 255  # left half black, right half white
    mask = np.zeros((48, 64), bool)
    mask[:24] = True  # the top half
    x, m = prepare_inputs(frame, mask, SIZE)
    assert x.shape == (3, SIZE, SIZE) and m.shape == (1, SIZE, SIZE)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    assert torch.allclose(x[:, :, :16], ((0 - mean) / std).view(3, 1, 1).expand(3, SIZE, 16))
    assert torch.allclose(x[:, :, 16:], ((1 - mean) / std).view(3, 1, 1).expand(3, SIZE, 16))
    expected = torch.zeros(1, SIZE, SIZE)
    expected[:, :16] = 1
    assert torch.equal(m, expected)


def test_the_embedding_is_both_branches_concatenated_and_what_the_head_reads(net: QualityNet) -> None:
    frames, masks = inputs()
    with torch.no_grad():
        embedding = net.embed(frames, masks)
        assert embedding.shape == (3, 1024) and net.embedding_size == 1024
        assert torch.equal(embedding[:, :512], net.frame_encoder(frames))
        # the 1-channel mask is repeated to 3 channels, not normalised
        assert torch.equal(embedding[:, 512:], net.mask_encoder(masks.repeat(1, 3, 1, 1)))
        assert torch.equal(net.head(embedding), net(frames, masks))
        assert net(frames, masks).shape == (3, 20)


def test_inputs_of_another_shape_and_bad_settings_are_refused(net: QualityNet) -> None:
    frames, masks = inputs()
    with pytest.raises(ValueError, match=r"frames of shape B×3×32×32, received 3×3×64×64"):
        net.embed(torch.zeros(3, 3, 64, 64), masks)
    with pytest.raises(ValueError, match=r"masks of shape 3×1×32×32 \(one per frame\), received 2×1×32×32"):
        net(frames, masks[:2])
    with pytest.raises(ConfigError, match="unknown timm model 'resnet_nope'"):
        QualityNet("resnet_nope")
    with pytest.raises(ConfigError, match="bins: quality needs at least 2 bins, got 1"):
        QualityNet(bins=1, input_size=SIZE)
    with pytest.raises(ConfigError, match="input_size: must be ≥ 32 pixels, got 16"):
        QualityNet(input_size=16)


def test_saved_and_loaded_network_gives_the_same_outputs_and_settings(tmp_path: Path) -> None:
    torch.manual_seed(3)
    original = QualityNet(bins=10, input_size=SIZE).eval()
    meta = {"runs": ["runs/davis"], "videos": 3, "epochs": 2}
    path = save_quality_net(original, tmp_path / "qnet.safetensors", meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qnet.safetensors"]  # no temporary file left
    loaded, loaded_meta = load_quality_net(path)
    assert loaded_meta == meta
    assert (loaded.encoder, loaded.bins, loaded.input_size) == ("resnet18", 10, SIZE)
    assert not loaded.training
    frames, masks = inputs(4, seed=1)
    with torch.no_grad():
        assert torch.equal(loaded(frames, masks), original(frames, masks))
        assert torch.equal(loaded.embed(frames, masks), original.embed(frames, masks))


def test_bad_quality_network_files_are_refused_naming_the_file(tmp_path: Path, net: QualityNet) -> None:
    with pytest.raises(WeightsError, match=r"nowhere\.safetensors: quality network file does not exist"):
        load_quality_net(tmp_path / "nowhere.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match=r"junk\.safetensors: not a readable safetensors file"):
        load_quality_net(tmp_path / "junk.safetensors")
    save_type_gain(TypeGainNet(3), tmp_path / "policy.safetensors", ["mask", "clicks"], ["a", "b", "c"])
    with pytest.raises(WeightsError, match=r"policy\.safetensors: not a quality network"):
        load_quality_net(tmp_path / "policy.safetensors")
    good = save_quality_net(net, tmp_path / "good.safetensors")
    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
    state = load_file(str(good))
    save_file(state, str(tmp_path / "other_bins.safetensors"), {**metadata, "bins": "10"})
    with pytest.raises(WeightsError, match=r"other_bins\.safetensors: weights do not fit QualityNet.*head"):
        load_quality_net(tmp_path / "other_bins.safetensors")
    save_file(state, str(tmp_path / "damaged.safetensors"), {**metadata, "input_size": "big"})
    with pytest.raises(WeightsError, match=r"damaged\.safetensors: metadata of a quality network is damaged"):
        load_quality_net(tmp_path / "damaged.safetensors")
    assert json.loads(metadata["meta"]) == {}


def test_encoder_weights_from_a_file_land_in_both_branches(tmp_path: Path) -> None:
    torch.manual_seed(7)
    resnet = timm.create_model("resnet18", pretrained=False)  # with its ImageNet classifier fc.*
    state = {k: v.contiguous() for k, v in resnet.state_dict().items()}
    save_file(state, str(tmp_path / "resnet18.safetensors"))
    torch.save(state, tmp_path / "resnet18.pth")
    for name in ("resnet18.safetensors", "resnet18.pth"):
        torch.manual_seed(0)
        net = QualityNet(input_size=SIZE)
        load_encoder_weights(net, tmp_path / name)
        for branch in (net.frame_encoder, net.mask_encoder):
            loaded = branch.state_dict()
            assert sorted(loaded) == sorted(k for k in state if not k.startswith("fc."))
            assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    del state["layer4.1.bn2.weight"]
    save_file(state, str(tmp_path / "partial.safetensors"))
    missing = r"partial\.safetensors: weights do not fit .*missing 1: layer4\.1\.bn2\.weight"
    with pytest.raises(WeightsError, match=missing):
        load_encoder_weights(QualityNet(input_size=SIZE), tmp_path / "partial.safetensors")
    with pytest.raises(WeightsError, match=r"none\.pth: weights file does not exist"):
        load_encoder_weights(QualityNet(input_size=SIZE), tmp_path / "none.pth")
