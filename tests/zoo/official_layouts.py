"""Official checkpoint layouts, generated from the reference implementations' module trees.

One generator per official layout (as torchgeo's ``tests/data/<dataset>/data.py``), shared by the
architecture tests and the converter tests instead of being rebuilt in each: HRNet-Semantic-
Segmentation (``official_hrnet_shapes``, ``official_hrnet_checkpoint``), mmseg TMANet
(``official_tmanet_shapes``), TDNet training/test checkpoints (``official_tdnet_shapes``) and the
official ``STM_weights.pth`` (``official_stm_state_dict``). The layouts are written from the
references' structure, independently of timm and of the zoo's own modules.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from frugalseg.zoo import convert_state_dict

# Stage plans of the official experiment configs (``experiments/cityscapes/seg_hrnet_*.yaml``):
# (layer1 bottleneck blocks, layer1 planes, [(modules, blocks per branch, channels per branch) per stage]).
W18_SMALL = (1, 32, [(1, 2, (16, 32)), (1, 2, (16, 32, 64)), (1, 2, (16, 32, 64, 128))])
W18 = (4, 64, [(1, 4, (18, 36)), (4, 4, (18, 36, 72)), (3, 4, (18, 36, 72, 144))])
W48 = (4, 64, [(1, 4, (48, 96)), (4, 4, (48, 96, 192)), (3, 4, (48, 96, 192, 384))])


def official_hrnet_shapes(config, num_classes: int) -> dict[str, tuple[int, ...]]:
    """Key → shape of ``seg_hrnet.py``'s HighResolutionNet, following its module tree.

    Written from the reference's structure (``_make_layer``, ``_make_transition_layer``,
    ``HighResolutionModule._make_branches/_make_fuse_layers``, ``last_layer``), independently of timm.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, out: int, inp: int, k: int, bias: bool = False) -> None:
        shapes[f"{name}.weight"] = (out, inp, k, k)
        if bias:
            shapes[f"{name}.bias"] = (out,)

    def bn(name: str, c: int) -> None:
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{part}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 3)
    bn("bn1", 64)
    conv("conv2", 64, 64, 3)
    bn("bn2", 64)
    blocks, planes, stages = config
    inplanes = 64
    for b in range(blocks):  # Bottleneck, expansion 4
        prefix = f"layer1.{b}"
        conv(f"{prefix}.conv1", planes, inplanes, 1)
        bn(f"{prefix}.bn1", planes)
        conv(f"{prefix}.conv2", planes, planes, 3)
        bn(f"{prefix}.bn2", planes)
        conv(f"{prefix}.conv3", planes * 4, planes, 1)
        bn(f"{prefix}.bn3", planes * 4)
        if b == 0:
            conv(f"{prefix}.downsample.0", planes * 4, inplanes, 1)
            bn(f"{prefix}.downsample.1", planes * 4)
        inplanes = planes * 4
    previous = [inplanes]
    for s, (modules, nblocks, channels) in enumerate(stages, start=2):
        t = f"transition{s - 1}"
        for i, c in enumerate(channels):
            if i < len(previous):
                if c != previous[i]:
                    conv(f"{t}.{i}.0", c, previous[i], 3)
                    bn(f"{t}.{i}.1", c)
            else:
                for j in range(i + 1 - len(previous)):
                    inp = previous[-1]
                    out = c if j == i - len(previous) else inp
                    conv(f"{t}.{i}.{j}.0", out, inp, 3)
                    bn(f"{t}.{i}.{j}.1", out)
        for m in range(modules):
            prefix = f"stage{s}.{m}"
            for i, c in enumerate(channels):
                for b in range(nblocks):  # BasicBlock
                    conv(f"{prefix}.branches.{i}.{b}.conv1", c, c, 3)
                    bn(f"{prefix}.branches.{i}.{b}.bn1", c)
                    conv(f"{prefix}.branches.{i}.{b}.conv2", c, c, 3)
                    bn(f"{prefix}.branches.{i}.{b}.bn2", c)
            for i in range(len(channels)):
                for j in range(len(channels)):
                    fuse = f"{prefix}.fuse_layers.{i}.{j}"
                    if j > i:
                        conv(f"{fuse}.0", channels[i], channels[j], 1)
                        bn(f"{fuse}.1", channels[i])
                    elif j < i:
                        for k in range(i - j):
                            out = channels[i] if k == i - j - 1 else channels[j]
                            conv(f"{fuse}.{k}.0", out, channels[j], 3)
                            bn(f"{fuse}.{k}.1", out)
        previous = list(channels)
    width = sum(previous)
    conv("last_layer.0", width, width, 1, bias=True)
    bn("last_layer.1", width)
    conv("last_layer.3", num_classes, width, 1, bias=True)
    return shapes


def official_hrnet_checkpoint(config, num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors in the layout official training saves: ``FullModel`` keys ``model.*`` and ``loss.*``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_hrnet_shapes(config, num_classes).items():
        if key.endswith("num_batches_tracked"):
            state[f"model.{key}"] = torch.tensor(1000)
        else:
            state[f"model.{key}"] = torch.randn(shape, generator=generator)
    state["loss.criterion.weight"] = torch.rand(num_classes, generator=generator)  # class weights
    return state


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def _resnet(prefix: str, stem: dict[str, tuple[int, ...]], inplanes: int, bottleneck: bool, blocks, fc: bool):
    """Shapes of a torchvision-style ResNet (``layer{1..4}.{i}.conv/bn/downsample``) after ``stem``."""
    shapes = {f"{prefix}.{k}": v for k, v in stem.items()}
    expansion = 4 if bottleneck else 1
    for layer, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
        for i in range(count):
            p = f"{prefix}.layer{layer}.{i}"
            if bottleneck:
                convs = [(planes, inplanes, 1), (planes, planes, 3), (planes * 4, planes, 1)]
            else:
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            for c, (out_c, in_c, k) in enumerate(convs, start=1):
                shapes[f"{p}.conv{c}.weight"] = (out_c, in_c, k, k)
                shapes.update(_bn(f"{p}.bn{c}", out_c))
            if i == 0 and (layer == 2 or inplanes != planes * expansion):
                shapes[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", planes * expansion))
            inplanes = planes * expansion
    if fc:
        shapes[f"{prefix}.fc.weight"] = (1000, inplanes)
        shapes[f"{prefix}.fc.bias"] = (1000,)
    return shapes


def _conv_module(prefix: str, out_c: int, in_c: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.conv.weight": (out_c, in_c, k, k), **_bn(f"{prefix}.bn", out_c)}


def official_tmanet_shapes(num_classes: int, memory: int) -> dict[str, tuple[int, ...]]:
    """mmseg ``tmanet_r50-d8``: ResNetV1c-50 (stem 32-32-64), TMAHead (64/256/512), FCNHead aux 256."""
    stem = {"stem.0.weight": (32, 3, 3, 3), "stem.3.weight": (32, 32, 3, 3), "stem.6.weight": (64, 32, 3, 3)}
    stem |= _bn("stem.1", 32) | _bn("stem.4", 32) | _bn("stem.7", 64)
    shapes = _resnet("backbone", stem, 64, True, (3, 4, 6, 3), fc=False)
    head = "decode_head"
    for name, channels in (("key", 64), ("value", 256)):
        for t in range(memory):
            shapes |= _conv_module(f"{head}.memory_{name}_conv.0.{t}", channels, 2048, 1)
            shapes |= _conv_module(f"{head}.memory_{name}_conv.1.{t}", channels, channels, 3)
        shapes |= _conv_module(f"{head}.query_{name}_conv.0", channels, 2048, 1)
        shapes |= _conv_module(f"{head}.query_{name}_conv.1", channels, channels, 3)
    shapes |= _conv_module(f"{head}.bottleneck", 512, 512, 3)
    shapes |= {f"{head}.conv_seg.weight": (num_classes, 512, 1, 1), f"{head}.conv_seg.bias": (num_classes,)}
    shapes |= _conv_module("auxiliary_head.convs.0", 256, 1024, 3)
    shapes |= {
        "auxiliary_head.conv_seg.weight": (num_classes, 256, 1, 1),
        "auxiliary_head.conv_seg.bias": (num_classes,),
    }
    return shapes


def official_tdnet_shapes(paths: int, r50: bool, num_classes: int, aux: bool) -> dict[str, tuple[int, ...]]:
    """``td2_psp`` (R50, d_v 512, head ↓2) / ``td4_psp`` (R18, d_v 512, head ↓4) state-dict shapes."""
    if r50:
        stem = {
            "conv1.0.weight": (64, 3, 3, 3),
            "conv1.3.weight": (64, 64, 3, 3),
            "conv1.6.weight": (128, 64, 3, 3),
        }
        stem |= _bn("conv1.1", 64) | _bn("conv1.4", 64) | _bn("bn1", 128)
        c3, c4, inplanes, blocks, down = 1024, 2048, 128, (3, 4, 6, 3), 2
    else:
        stem = {"conv1.weight": (64, 3, 7, 7)} | _bn("bn1", 64)
        c3, c4, inplanes, blocks, down = 256, 512, 64, (2, 2, 2, 2), 4
    d_model, d_v = c4, 512
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, paths + 1):
        shapes |= _resnet(f"pretrained{i}", stem, inplanes, r50, blocks, fc=True)
        for b in range(1, 5):
            shapes[f"psp{i}.conv{b}.0.weight"] = (c4 // 4, c4, 1, 1)
            shapes |= _bn(f"psp{i}.conv{b}.1", c4 // 4)
        for w in ("w_qs", "w_ks"):
            shapes |= {f"enc{i}.{w}.0.conv.weight": (64, d_model, 1, 1), f"enc{i}.{w}.0.conv.bias": (64,)}
            shapes |= _bn(f"enc{i}.{w}.0.bn", 64)
            shapes |= {f"enc{i}.{w}.1.conv.weight": (64, 64, 1, 1), f"enc{i}.{w}.1.conv.bias": (64,)}
        shapes |= {f"enc{i}.w_vs.0.conv.weight": (d_v, d_model, 1, 1), f"enc{i}.w_vs.0.conv.bias": (d_v,)}
        shapes |= {f"layer_norm{i}.ln.weight": (97, 193), f"layer_norm{i}.ln.bias": (97, 193)}
        shapes[f"head{i}.conv5.0.weight"] = (d_v // down, d_v, 3, 3)
        shapes |= _bn(f"head{i}.conv5.1", d_v // down)
        shapes |= {
            f"head{i}.conv5.4.weight": (num_classes, d_v // down, 1, 1),
            f"head{i}.conv5.4.bias": (num_classes,),
        }
        if aux:
            shapes[f"auxlayer{i}.conv5.0.weight"] = (c3 // 4, c3, 3, 3)
            shapes |= _bn(f"auxlayer{i}.conv5.1", c3 // 4)
            shapes |= {f"auxlayer{i}.conv5.4.weight": (num_classes, c3 // 4, 1, 1)}
            shapes |= {f"auxlayer{i}.conv5.4.bias": (num_classes,)}
    names = (
        [f"atn{c}" for c in (1, 2)]
        if paths == 2
        else [f"atn{c}_{s}" for c in range(1, 5) for s in range(1, 5) if s != c]
    )
    for name in names:
        shapes |= {f"{name}.fc.0.conv.weight": (d_v, d_v, 1, 1), f"{name}.fc.0.conv.bias": (d_v,)}
    return shapes


def convert_and_load(shapes: dict[str, tuple[int, ...]], official_key, model: nn.Module) -> set[str]:
    """Random tensors in the official layout, converted and loaded strictly; returns the dropped keys.

    The tensors are assigned, not copied, so ``model`` may be built on the meta device (its random
    initialisation would only be overwritten): a missing, unexpected or wrongly shaped key fails as well.
    """
    generator = torch.Generator().manual_seed(0)
    official = {
        k: torch.randint(0, 100, s, generator=generator)
        if k.endswith("num_batches_tracked")
        else torch.randn(s, generator=generator)
        for k, s in shapes.items()
    }
    state, report = convert_state_dict(official, model, official_key)
    assert report.ok and not report.counters, report.problems()  # every model tensor from the layout
    model.load_state_dict(state, strict=True, assign=True)
    loaded = model.state_dict()
    for key, target in report.mapped:
        assert torch.equal(loaded[target], official[key]), key
    return set(report.dropped)


def random_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Random tensors of the given shapes (BatchNorm step counters 7), seeded."""
    generator = torch.Generator().manual_seed(0)
    return {
        key: torch.tensor(7)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }


def official_stm_state_dict() -> dict[str, torch.Tensor]:
    """A state dict laid out like the official ``STM_weights.pth`` (``nn.DataParallel(STM())``).

    Module tree of the official ``model.py``: ``Encoder_M``/``Encoder_Q`` hold torchvision
    ResNet-50's ``conv1``, ``bn1`` and ``layer1..3`` as ``res2..res4`` (+ ``conv1_m``/``conv1_o`` and
    the ``mean``/``std`` buffers); ``KV_M_r4``/``KV_Q_r4`` hold 3×3 ``Key`` (1024→128) and ``Value``
    (1024→512); ``Decoder(256)`` holds ``convFM``, ``ResMM``, ``RF3``/``RF2`` (``convFS``, ``ResFS``,
    ``ResMM``) and ``pred2``, each residual block two 3×3 biased convs ``conv1``/``conv2``.
    """
    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}

    def put(name: str, *shape: int) -> None:
        state[f"module.{name}"] = torch.randn(*shape, generator=generator)

    resnet = torchvision.models.resnet50(weights=None).state_dict()
    renames = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "conv1": "conv1", "bn1": "bn1"}
    for encoder in ("Encoder_M", "Encoder_Q"):
        for key, tensor in resnet.items():
            head = key.split(".")[0]
            if head in renames:
                tail = key[len(head) :]
                state[f"module.{encoder}.{renames[head]}{tail}"] = tensor + torch.rand(
                    tensor.shape, generator=generator
                ).to(tensor.dtype)
        state[f"module.{encoder}.mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        state[f"module.{encoder}.std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    put("Encoder_M.conv1_m.weight", 64, 1, 7, 7)
    put("Encoder_M.conv1_o.weight", 64, 1, 7, 7)
    for kv in ("KV_M_r4", "KV_Q_r4"):
        for name, out in (("Key", 128), ("Value", 512)):
            put(f"{kv}.{name}.weight", out, 1024, 3, 3)
            put(f"{kv}.{name}.bias", out)

    def conv(name: str, cin: int, cout: int) -> None:
        put(f"{name}.weight", cout, cin, 3, 3)
        put(f"{name}.bias", cout)

    def res_block(name: str) -> None:
        conv(f"{name}.conv1", 256, 256)
        conv(f"{name}.conv2", 256, 256)

    conv("Decoder.convFM", 1024, 256)
    res_block("Decoder.ResMM")
    for refine, skip in (("RF3", 512), ("RF2", 256)):
        conv(f"Decoder.{refine}.convFS", skip, 256)
        res_block(f"Decoder.{refine}.ResFS")
        res_block(f"Decoder.{refine}.ResMM")
    conv("Decoder.pred2", 256, 2)
    return state
