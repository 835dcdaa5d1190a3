"""STM: memory read and soft aggregation on known values, memory schedule, streaming = clip,
training, torch.export, bad input, and the official checkpoint's key layout."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from frugalseg.zoo import convert_state_dict, get_model
from frugalseg.zoo import stm as stm_module
from frugalseg.zoo.stm import STM, masks_from_ids, memory_read, official_key, soft_aggregate

from .official_layouts import official_stm_state_dict


def _video(frames: int, size: tuple[int, int] = (64, 64), batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, *size, generator=torch.Generator().manual_seed(seed))


def _masks(size: tuple[int, int] = (64, 64)) -> tuple[torch.Tensor, torch.Tensor]:
    """Two objects in sample 0, one in sample 1 (slot 2 of sample 1 is padding)."""
    ids = torch.zeros(2, *size, dtype=torch.long)
    ids[:, 8:24, 8:30] = 1
    ids[0, 30:50, 30:60] = 2
    return masks_from_ids(ids, 2), torch.tensor([2, 1])


@pytest.fixture(scope="module")
def small() -> STM:
    torch.manual_seed(0)
    return get_model("stm_r18", num_classes=4).eval()


def test_memory_read_is_a_scaled_softmax_over_all_memory_pixels() -> None:
    # Two memory pixels (keys e0 and 2·e0 in 4-d key space), one query pixel with key e0·sqrt(4)·ln 3.
    memory_key = torch.zeros(1, 4, 2)
    memory_key[0, 0] = torch.tensor([0.0, 1.0])
    memory_value = torch.tensor([[[10.0, 20.0]]])  # Cv = 1
    query_key = torch.zeros(1, 4, 1, 1)
    query_key[0, 0] = 2 * math.log(3)
    # Affinities 0 and (2 ln 3)/sqrt(4) = ln 3 → weights 1/4, 3/4.
    read = memory_read(memory_key, memory_value, query_key)
    assert read.shape == (1, 1, 1, 1)
    assert read.item() == pytest.approx(10 / 4 + 20 * 3 / 4)


def _materialised_read(
    memory_key: torch.Tensor, memory_value: torch.Tensor, query_key: torch.Tensor
) -> torch.Tensor:
    """The read as it was before SDPA: the whole M×hw affinity held, softmaxed over the memory (dim 1)."""
    n, ck, h, w = query_key.shape
    affinity = torch.bmm(memory_key.transpose(1, 2), query_key.flatten(2)) / math.sqrt(ck)  # N×M×hw
    weights = torch.softmax(affinity, dim=1)
    return torch.bmm(memory_value, weights).view(n, memory_value.shape[1], h, w)


@pytest.mark.parametrize(("ck", "cv", "memory"), [(8, 24, 70), (16, 16, 35), (24, 8, 70)])
def test_memory_read_equals_the_materialised_read_values_and_gradients(ck: int, cv: int, memory: int) -> None:
    generator = torch.Generator().manual_seed(3)
    n, h, w = 3, 5, 7  # hw = 35 query pixels; memory 70 (two frames) or 35
    memory_key = torch.randn(n, ck, memory, generator=generator).requires_grad_()
    memory_value = torch.randn(n, cv, memory, generator=generator).requires_grad_()
    query_key = torch.randn(n, ck, h, w, generator=generator).requires_grad_()
    inputs = (memory_key, memory_value, query_key)
    upstream = torch.randn(n, cv, h, w, generator=generator)
    new, old = memory_read(*inputs), _materialised_read(*inputs)
    assert torch.allclose(new, old, atol=1e-5)
    new_grads = torch.autograd.grad(new, inputs, upstream)
    old_grads = torch.autograd.grad(old, inputs, upstream)
    for new_grad, old_grad in zip(new_grads, old_grads, strict=True):
        assert torch.allclose(new_grad, old_grad, atol=1e-5)


def test_forward_and_step_equal_the_materialised_read(small: STM, monkeypatch) -> None:
    # With these random weights a read softmaxed over the query pixels instead of the memory
    # pixels moves the logits by ~3e-2, far above the tolerance.
    frames, (masks, num_objects) = _video(7, (48, 56)), _masks((48, 56))
    small.memory_every = 3

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            clip = small(frames, masks, num_objects)
        small.reset(frames[:, 0], masks, num_objects)
        return clip, torch.stack([small.step(frames[:, t]) for t in range(1, 7)], dim=1)

    try:
        new_clip, new_stream = run()
        monkeypatch.setattr(stm_module, "memory_read", _materialised_read)
        old_clip, old_stream = run()
    finally:
        small.memory_every = 5
    assert torch.allclose(new_clip, old_clip, atol=1e-5)
    assert torch.allclose(new_stream, old_stream, atol=1e-5)


def test_soft_aggregation_merges_objects_with_background_product() -> None:
    probs = torch.tensor([0.5, 0.5, 0.0]).view(1, 3, 1, 1)
    merged = torch.softmax(soft_aggregate(probs), dim=1).flatten()
    # bg = 0.25, odds (1/3, 1, 1, ~1e-7) → normalised (1/7, 3/7, 3/7, ~0).
    assert merged[:3].tolist() == pytest.approx([1 / 7, 3 / 7, 3 / 7], abs=1e-6)
    assert merged[3].item() < 1e-6


def test_masks_from_ids_one_hot_drops_void() -> None:
    ids = torch.tensor([[[0, 1, 2, 255]]])
    assert masks_from_ids(ids, 2)[0, :, 0].tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]


def test_memory_encoder_reads_frame_object_mask_and_other_objects(small: STM) -> None:
    frames, (masks, _) = _video(1), _masks()
    key, value = small.encode_memory(frames[:, 0], masks)
    assert key.shape == (2, 2, 32, 4, 4) and value.shape == (2, 2, 64, 4, 4)
    enc = small.memory_encoder
    frame = frames[:1, 0]
    stem = enc.conv1(frame) + enc.mask_conv(masks[:1, :1]) + enc.other_conv(masks[:1, 1:2])
    expected_key, expected_value = small.memory_kv(enc(stem)[0])
    assert torch.allclose(key[0, 0], expected_key[0], atol=1e-5)
    assert torch.allclose(value[0, 0], expected_value[0], atol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (50, 70)])
def test_forward_gives_object_probabilities_at_input_size(small: STM, size: tuple[int, int]) -> None:
    masks, num_objects = _masks(size)
    with torch.no_grad():
        logits = small(_video(3, size), masks, num_objects)
    assert logits.shape == (2, 2, 3, *size)  # frames 1, 2; background + 2 objects
    probs = torch.softmax(logits, dim=2)
    assert torch.isfinite(logits).all()
    assert torch.allclose(probs.sum(2), torch.ones(2, 2, *size))
    assert probs[1, :, 2].max() < 1e-6  # sample 1 has one object: slot 2 never wins


def test_streaming_step_equals_clip_forward(small: STM) -> None:
    frames, (masks, num_objects) = _video(8, (48, 56)), _masks((48, 56))
    small.memory_every = 3
    try:
        with torch.no_grad():
            clip = torch.softmax(small(frames, masks, num_objects), dim=2)
        small.reset(frames[:, 0], masks, num_objects)
        streamed = torch.stack([small.step(frames[:, t]) for t in range(1, 8)], dim=1)
    finally:
        small.memory_every = 5
    assert torch.allclose(clip, streamed, atol=1e-6)


def test_memory_holds_frame_zero_every_fifth_frame_and_the_previous_frame(small: STM, monkeypatch) -> None:
    sizes: list[int] = []

    def spy(memory_key: torch.Tensor, memory_value: torch.Tensor, query_key: torch.Tensor) -> torch.Tensor:
        sizes.append(memory_key.shape[-1] // query_key[0, 0].numel())
        return memory_read(memory_key, memory_value, query_key)

    monkeypatch.setattr(stm_module, "memory_read", spy)
    frames = _video(13, (32, 32), batch=1)
    small.reset(frames[:, 0], masks_from_ids(torch.ones(1, 32, 32, dtype=torch.long), 1))
    for t in range(1, 13):
        small.step(frames[:, t])
    # t = 1: {0}; 2…6: {0, t−1}; 7…11: {0, 5, t−1} (t = 6: {0, 5}); 12: {0, 5, 10, 11}.
    assert sizes == [1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4]


def test_training_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = get_model("stm_r18", num_classes=3).train()
    frames, (masks, num_objects) = _video(3, (48, 48), seed=1), _masks((48, 48))
    ids = (masks * torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)).sum(1).long()
    target = ids[:, None].expand(-1, 2, -1, -1).flatten(0, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        logits = model(frames, masks, num_objects).flatten(0, 1)
        loss = F.cross_entropy(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_clip_forward_exports_with_torch_export(small: STM) -> None:
    frames, (masks, num_objects) = _video(3, (32, 48)), _masks((32, 48))
    exported = torch.export.export(small, (frames, masks, num_objects))
    with torch.no_grad():
        expected = small(frames, masks, num_objects)
        assert torch.allclose(exported.module()(frames, masks, num_objects), expected)


def test_bad_input_is_refused_with_a_clear_error(small: STM) -> None:
    frames, (masks, _) = _video(3), _masks()
    with pytest.raises(ValueError, match="needs the object masks"):
        small(frames)
    with pytest.raises(ValueError, match="1 to 3 objects"):
        small(frames, masks_from_ids(torch.zeros(2, 64, 64, dtype=torch.long), 4))
    with pytest.raises(ValueError, match="matching frames"):
        small(frames, masks[..., :32])
    with pytest.raises(ValueError, match="T >= 2"):
        small(frames[:, :1], masks)
    fresh = get_model("stm_r18", num_classes=3)
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step(frames[:, 0])
    small.reset(frames[:, 0], masks)
    with pytest.raises(ValueError, match="call reset"):
        small.step(frames[:, 1, :, :32])
    with pytest.raises(ValueError, match="num_classes = max_objects"):
        STM(num_classes=1)


def test_official_checkpoint_keys_map_and_load_strictly() -> None:
    official = official_stm_state_dict()
    with torch.device("meta"):  # every tensor is assigned from the checkpoint: no random init to overwrite
        model = get_model("stm_r50", num_classes=11)
    state, report = convert_state_dict(official, model, official_key)
    assert report.ok, report.problems()
    assert report.counters == []  # every tensor of the model, BN counters too, comes from the checkpoint
    assert sorted(report.dropped) == sorted(
        f"module.Encoder_{e}.{b}" for e in ("M", "Q") for b in ("mean", "std")
    )
    model.load_state_dict(state, strict=True, assign=True)
    loaded = model.state_dict()
    for key, target in report.mapped:
        assert torch.equal(loaded[target], official[key]), key
    assert official_key("Decoder.RF2.ResFS.conv2.bias") == "decoder.refine2.skip_res.conv2.bias"


@pytest.mark.parametrize(
    "key", ["module.Encoder_Q.conv1_m.weight", "module.Decoder.RF4.convFS.weight", "module.Memory.x", "foo"]
)
def test_unknown_official_keys_are_named(key: str) -> None:
    with pytest.raises(KeyError, match="not a key of the official STM checkpoint"):
        official_key(key)


def test_a_vos_fit_checkpoint_loads_by_path_and_is_refused_by_publish_in_one_line(tmp_path):
    """A `vos fit` checkpoint's hyper-parameters have no class count nor clip length: reading it ended in
    ``KeyError: 'num_classes'`` (get_model, --stm-weights, zoo publish)."""
    from frugalseg.errors import WeightsError
    from frugalseg.lightning_modules.publish import publish_checkpoint

    torch.manual_seed(0)
    trained = get_model("stm_r18")
    ckpt = tmp_path / "last.ckpt"
    state = {f"student.{key}": value for key, value in trained.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"student": "stm_r18", "max_objects": 3}}, ckpt)
    loaded = get_model("stm_r18", weights=str(ckpt))
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(WeightsError, match=r"last.ckpt: a checkpoint of `frugalseg vos fit` \(stm_r18, "):
        publish_checkpoint(ckpt, "stm-test", out=tmp_path / "published")
    assert not (tmp_path / "published").exists()


def test_a_vos_fit_checkpoint_card_holds_the_load_scale_its_frames_trained_at(tmp_path):
    """`vos fit` saves the datamodule's hyper-parameters in the checkpoint; the card gives its ``load_scale``,
    which the STM engine runs at (a semantic checkpoint's card is unchanged)."""
    from frugalseg.zoo import read_torch_weights

    state = {f"student.{key}": value for key, value in get_model("stm_r18").state_dict().items()}
    ckpt = tmp_path / "last.ckpt"
    hparams = {"student": "stm_r18", "max_objects": 3}
    torch.save({"state_dict": state, "hyper_parameters": hparams, "datamodule_hyper_parameters": {
        "root": "data/davis_dev", "load_scale": 0.2}}, ckpt)  # fmt: skip
    assert read_torch_weights(ckpt).card["load_scale"] == 0.2
    torch.save({"state_dict": state, "hyper_parameters": {**hparams, "num_classes": 4},
                "datamodule_hyper_parameters": {"load_scale": 0.5}}, ckpt)  # fmt: skip
    assert "load_scale" not in read_torch_weights(ckpt).card


def test_weights_of_one_object_count_load_into_stm_of_any(tmp_path):
    """STM's weights hold no class count: converted official weights (11 'classes') had been refused for
    ``--data.max_objects 20`` ("trained for 11 classes, but the model was asked for 21")."""
    torch.manual_seed(0)
    trained = get_model("stm_r18")
    ckpt = tmp_path / "official.ckpt"
    state = {f"student.{key}": value for key, value in trained.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"student": "stm_r18", "num_classes": 11}}, ckpt)
    for objects in (20, 5):
        loaded = get_model("stm_r18", num_classes=objects + 1, weights=str(ckpt))
        assert loaded.max_objects == objects
        for key, value in trained.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def test_zoo_verify_of_a_vos_fit_checkpoint_does_not_send_it_to_zoo_publish(tmp_path, capsys):
    """It had said to publish it with `zoo publish`, which refuses `vos fit` checkpoints."""
    from frugalseg.cli import main

    state = {f"student.{key}": value for key, value in get_model("stm_r18").state_dict().items()}
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"student": "stm_r18", "max_objects": 3}}, ckpt)
    assert main(["zoo", "verify", str(ckpt)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"UNVERIFIED {ckpt} ({ckpt}): ")
    assert out.endswith(
        "records its sha256 to check it against (checkpoints of `frugalseg vos fit` are not published: they "
        "load by path as they are)\n"
    )
