"""Every registered model, as timm's ``tests/test_models.py``: the parametrisation reads the registry.

A model is tested the day it is registered: its config against the built model, forward and
backward on its own clip length with a gradient on every parameter, per-sample logits at the input
size, the clear error for a wrong clip length, and, for video models, streaming (``reset`` +
``step``) equal to the clip forward. Random weights, tiny frames; models of more than
:data:`HEAVY` million parameters (their config's ``param_count``) run in the slow tier, the small
ones on every ``make test``.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from frugalseg.zoo import Student, get_model, list_models, model_config, model_entrypoint
from frugalseg.zoo.stm import masks_from_ids

#: Millions of parameters above which a model's tests run in the slow tier only.
HEAVY = 15.0
#: Frame sizes of the per-sample test: a multiple of every stride (32), and one not even of 4.
SIZES = [(32, 64), (38, 46)]


def _params(names: list[str]) -> list:
    """``names`` as test parameters, the heavy models marked slow."""
    return [
        pytest.param(name, id=name, marks=pytest.mark.slow)
        if (model_config(name).param_count or 0.0) > HEAVY
        else pytest.param(name, id=name)
        for name in names
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``name`` over the registry when the tests are collected (not at import), so a
    model registered before collection is in the list; ``semantic_name`` / ``video_name`` /
    ``implementation_name`` restrict it to the models such a test applies to."""
    fixtures = metafunc.fixturenames
    if "name" in fixtures:
        metafunc.parametrize("name", _params(list_models()))
    elif "semantic_name" in fixtures:
        metafunc.parametrize("semantic_name", _params(list_models(task="semantic")))
    elif "video_name" in fixtures:
        metafunc.parametrize("video_name", _params([n for n in list_models() if model_config(n).video]))
    elif "implementation_name" in fixtures:
        metafunc.parametrize("implementation_name", _smallest_of_each_implementation())


def _smallest_of_each_implementation() -> list[str]:
    """The semantic model with the fewest parameters of each implementation (its entrypoint's module
    and the code it follows): the variants of one implementation differ only in encoder, widths and
    depths, so the costly checks (training steps, ``torch.export``) run once per implementation."""
    smallest: dict[tuple[str, str], str] = {}
    for name in list_models(task="semantic"):
        key = (model_entrypoint(name).__module__, model_config(name).code)
        if key not in smallest or (model_config(name).param_count or 0.0) < (
            model_config(smallest[key]).param_count or 0.0
        ):
            smallest[key] = name
    return sorted(smallest.values())


def _build(name: str, num_classes: int = 4) -> Student:
    torch.manual_seed(0)
    return get_model(name, num_classes=model_config(name).num_classes or num_classes)


_SHARED: dict[tuple[str, object], Student] = {}
#: The last heavy model built, kept until another heavy one is asked for: the tests of one model at
#: two sizes run one after the other, and a heavy build takes about a second.
_LAST_HEAVY: dict[tuple[str, object], Student] = {}


def _shared(name: str) -> Student:
    """An eval-mode model for the tests that do not change weights: built once per registered
    entrypoint (builds are slow); of the heavy ones only the last is kept in memory."""
    key = (name, model_entrypoint(name))
    if key in _SHARED:
        return _SHARED[key].eval()
    if key in _LAST_HEAVY:
        return _LAST_HEAVY[key].eval()
    _LAST_HEAVY.clear()
    model = _build(name).eval()
    if (model_config(name).param_count or 0.0) <= HEAVY:
        _SHARED[key] = model
    else:
        _LAST_HEAVY[key] = model
    return model


def _clip(frames: int, h: int, w: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _objects(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First-frame masks of two objects in sample 0 and one in sample 1 (slot 2 is padding)."""
    ids = torch.zeros(2, h, w, dtype=torch.long)
    ids[:, h // 8 : h // 2, w // 8 : w // 2] = 1
    ids[0, h // 2 :, w // 2 :] = 2
    return masks_from_ids(ids, 2), torch.tensor([2, 1])


def test_config_matches_the_built_model(name: str) -> None:
    """Frames, aux weights, the entrypoint's defaults and the parameter count are what the config says
    (counted on the meta device: shapes only, so the paper-size models are checked in the fast tier)."""
    config = model_config(name)
    with torch.device("meta"):
        model = get_model(name, num_classes=config.num_classes or 19)
    assert isinstance(model, Student)
    assert model.num_frames == config.num_frames
    assert model.aux_weights == dict(config.aux_weights)
    if config.param_count is not None:
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == config.param_count
    defaults = inspect.signature(model_entrypoint(name)).parameters
    assert defaults["num_frames"].default == config.num_frames
    if config.num_classes is not None:
        assert defaults["num_classes"].default == config.num_classes
    if not config.video:
        with pytest.raises(ValueError, match="is an image model and takes num_frames=1, got num_frames=2"):
            get_model(name, num_classes=3, num_frames=2)


def test_forward_backward_reaches_every_parameter(name: str) -> None:
    """Training outputs of the model's own clip length at the input size, finite, and a gradient on
    every parameter; a model whose config declares ``unused_parameters`` (TDNet: one sub-network's
    head per step) leaves some without one after a step, and reaches all within ``num_frames`` steps."""
    config = model_config(name)
    model = _build(name).train()
    t, classes = model.num_frames, model.num_classes
    frames = _clip(t, 32, 32)
    if config.task == "vos":
        masks, num_objects = _objects(32, 32)
        logits = model(frames, masks, num_objects)
        assert logits.shape == (2, t - 1, masks.shape[1] + 1, 32, 32)  # background + the objects
        assert torch.isfinite(logits).all()
        logits.mean().backward()
    else:
        for step in range(t if config.unused_parameters else 1):
            outputs = model.forward_train(frames)
            assert set(outputs) == {"out", *model.aux_weights}
            for key, value in outputs.items():
                assert value.shape == (2, classes, 32, 32), key
                assert torch.isfinite(value).all(), key
            sum(value.mean() for value in outputs.values()).backward()
            if step == 0:
                unused = [n for n, p in model.named_parameters() if p.grad is None]
                assert bool(unused) == config.unused_parameters, unused[:5]
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_is_per_sample_at_the_input_size(semantic_name: str, size: tuple[int, int]) -> None:
    """Logits B×C×H×W at the input size (also one not a multiple of the stride); each sample's
    logits equal those it gets alone (no batch mixing), and differ from the other sample's.

    Random weights through eval-mode BatchNorm can grow the logits to ~1e6 (HRNet-W18), so the
    tolerance is relative to their magnitude."""
    model = _shared(semantic_name)
    frames = _clip(model.num_frames, *size)
    with torch.no_grad():
        logits = model(frames)
        alone = model(frames[1:])
    assert logits.shape == (2, model.num_classes, *size)
    assert torch.isfinite(logits).all()
    scale = max(1.0, logits.abs().max().item())
    assert torch.allclose(logits[1:], alone, atol=1e-4 * scale)
    assert (logits[0] - logits[1]).abs().max() > 1e-6 * scale


def test_a_wrong_clip_length_is_a_clear_error(semantic_name: str) -> None:
    """The check comes before any computation, so a model of shapes only (meta device) shows it."""
    with torch.device("meta"):
        model = get_model(semantic_name, num_classes=model_config(semantic_name).num_classes or 4)
    t = model.num_frames
    expected = rf"expects frames of shape B×{t}×3×H×W \({t} frames per clip\), received 2×{t + 1}×3×32×32"
    with pytest.raises(ValueError, match=expected):
        model(_clip(t + 1, 32, 32))


def test_streaming_equals_the_clip_forward(video_name: str) -> None:
    """``reset()`` then ``step(frame)`` over the clip gives what ``forward`` gives on the whole clip:
    the last frame's logits (semantic), or every later frame's probabilities (VOS, from the first
    frame's masks)."""
    model = _shared(video_name)
    frames = _clip(model.num_frames, 32, 48)
    if model_config(video_name).task == "vos":
        masks, num_objects = _objects(32, 48)
        model.reset(frames[:, 0], masks, num_objects)
        streamed = torch.stack([model.step(frames[:, t]) for t in range(1, model.num_frames)], dim=1)
        with torch.no_grad():
            clip = torch.softmax(model(frames, masks, num_objects), dim=2)
    else:
        model.reset()
        streamed = [model.step(frames[:, t]) for t in range(model.num_frames)][-1]
        with torch.no_grad():
            clip = model(frames)
    assert streamed.shape == clip.shape
    assert torch.allclose(streamed, clip, atol=1e-5)


def test_step_refuses_a_frame_that_does_not_match_its_memory(video_name: str) -> None:
    """On the meta device (shapes only): the memory of the first frame is all the checks look at."""
    with torch.device("meta"):
        model = get_model(video_name, num_classes=model_config(video_name).num_classes or 4).eval()
        first = torch.randn(1, 3, 48, 64)
        if model_config(video_name).task == "vos":
            model.reset(first, masks_from_ids(torch.ones(1, 48, 64, dtype=torch.long), 1))
        else:
            model.reset()
            model.step(first)
        with pytest.raises(ValueError, match="reset"):
            model.step(torch.randn(1, 3, 32, 32))
        with pytest.raises(ValueError, match="B×3×H×W"):
            model.step(torch.randn(1, 1, 3, 48, 64))


@pytest.mark.slow
def test_sgd_steps_lower_the_loss_on_a_fixed_batch(implementation_name: str) -> None:
    """SGD on one batch with the student's weighted aux losses: the last 4 steps' mean loss falls
    below 80 % of the first 4 steps' (TDNet rotates its current sub-network every step)."""
    model = _build(implementation_name, num_classes=3)
    frames = _clip(model.num_frames, 32, 48)
    target = torch.zeros(2, 32, 48, dtype=torch.long)
    target[:, :16] = 1
    target[:, :, 24:] = 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    model.train()
    losses = []
    for _ in range(12):
        outputs = model.forward_train(frames)
        loss = F.cross_entropy(outputs["out"], target)
        for key, weight in model.aux_weights.items():
            loss = loss + weight * F.cross_entropy(outputs[key], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-4:]) < 0.8 * sum(losses[:4]), losses


@pytest.mark.slow
def test_torch_export_of_the_clip_forward_matches_eager(implementation_name: str) -> None:
    """``torch.export`` of ``forward`` (a clip of ``num_frames`` frames; one frame for image models).

    Streaming ``step`` keeps Python state between calls and is not exported; TDNet's export fixes
    ``path`` to its default (N−1).
    """
    model = _shared(implementation_name)
    frames = _clip(model.num_frames, 32, 64)
    exported = torch.export.export(model, (frames,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(frames), model(frames), atol=1e-5)
