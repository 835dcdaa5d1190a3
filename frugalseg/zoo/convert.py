"""Convert official checkpoints (TMANet, TDNet, STM, HRNet-Seg) into frugalseg published weights.

Each architecture module offers ``official_key(key) -> str | None``: the frugalseg state-dict key of
a key of its official checkpoint, None for a tensor that is deliberately not used (an ImageNet
classifier, a loss's class weights), and a KeyError for a key that its official layout does not
have. The conversion is strict: every official tensor is mapped or deliberately dropped, every
model tensor is filled exactly once, and every shape matches; anything else fails with a report
that names the keys. Checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from frugalseg.zoo.weights import (
    WeightsError,
    imagenet_normalization,
    palette_for,
    sha256_file,
    torch_load,
    write_weights,
)

OfficialKey = Callable[[str], "str | None"]
#: Wrapper entries of official checkpoints that hold the state dict (mmcv, TDNet training, others).
WRAPPERS = ("state_dict", "model_state", "model", "net", "module")
_LISTED = 20


@dataclass(frozen=True)
class Target:
    """What to build for an official checkpoint: a zoo name, its class count, clip length and arguments."""

    architecture: str
    num_classes: int
    num_frames: int | None = None
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Converter:
    """An official source: the module holding its ``official_key``, the layout, and how to pick a target."""

    source: str
    module: str
    layout: str
    infer: Callable[[Mapping[str, Tensor]], Target]

    def official_key(self) -> OfficialKey:
        return importlib.import_module(self.module).official_key


def _shape(state: Mapping[str, Tensor], key: str, path: str) -> torch.Size:
    if key not in state:
        raise KeyError(f"the checkpoint has no {key!r}, which the {path} layout always has")
    return state[key].shape


def _infer_hrnet(state: Mapping[str, Tensor]) -> Target:
    state = {k.removeprefix("model."): v for k, v in state.items()}
    width = int(_shape(state, "transition1.0.0.weight", "HRNet-Seg")[0])
    names = {48: "hrnetv2_w48", 18: "hrnetv2_w18", 16: "hrnetv2_w18_small"}
    if width not in names:
        raise ValueError(f"HRNet branch width {width} is not one of the zoo's ({sorted(names)})")
    return Target(names[width], int(_shape(state, "last_layer.3.weight", "HRNet-Seg")[0]), 1)


def _infer_tmanet(state: Mapping[str, Tensor]) -> Target:
    slots = {int(m[1]) for k in state if (m := re.match(r"^decode_head\.memory_key_conv\.0\.(\d+)\.", k))}
    head = "decode_head"
    args = {
        "key_channels": int(_shape(state, f"{head}.memory_key_conv.0.0.conv.weight", "TMANet")[0]),
        "value_channels": int(_shape(state, f"{head}.memory_value_conv.0.0.conv.weight", "TMANet")[0]),
        "channels": int(_shape(state, f"{head}.bottleneck.conv.weight", "TMANet")[0]),
        "aux_channels": int(_shape(state, "auxiliary_head.convs.0.conv.weight", "TMANet")[0]),
    }
    classes = int(_shape(state, f"{head}.conv_seg.weight", "TMANet")[0])
    return Target("tmanet_r50", classes, len(slots) + 1, args)


def _infer_tdnet(state: Mapping[str, Tensor]) -> Target:
    paths = {int(m[1]) for k in state if (m := re.match(r"^pretrained(\d+)\.", k))}
    architecture = {2: "tdnet_td2_psp50", 4: "tdnet_td4_psp18"}.get(len(paths))
    if architecture is None:
        raise ValueError(f"TDNet checkpoint has {len(paths)} sub-networks; the official models have 2 or 4")
    args: dict[str, Any] = {"aux_head": any(k.startswith("auxlayer") for k in state)}
    if "layer_norm1.ln.weight" in state:
        args["norm_affine_size"] = tuple(int(s) for s in state["layer_norm1.ln.weight"].shape)
    classes = int(_shape(state, "head1.conv5.4.weight", "TDNet")[0])
    return Target(architecture, classes, len(paths), args)


def _infer_stm(state: Mapping[str, Tensor]) -> Target:
    # Objects are classes of STM's soft aggregation: background + 10, as the official evaluation.
    return Target("stm_r50", 11, None)


CONVERTERS: dict[str, Converter] = {
    "hrnet": Converter(
        "hrnet",
        "frugalseg.zoo.hrnet",
        "HRNet-Semantic-Segmentation (FullModel 'model.' prefix)",
        _infer_hrnet,
    ),
    "tmanet": Converter(
        "tmanet",
        "frugalseg.zoo.tmanet",
        "mmseg 'state_dict': backbone./decode_head./auxiliary_head.",
        _infer_tmanet,
    ),
    "tdnet": Converter(
        "tdnet",
        "frugalseg.zoo.tdnet",
        "'model_state' with pretrained{i}./psp{i}./enc{i}./head{i}.",
        _infer_tdnet,
    ),
    "stm": Converter("stm", "frugalseg.zoo.stm", "DataParallel 'module.' state dict", _infer_stm),
}


class ConversionError(ValueError):
    """A checkpoint that does not convert strictly; carries the full report."""

    def __init__(self, path: str | Path, report: ConversionReport) -> None:
        super().__init__(f"{path}: does not convert strictly onto {report.model}:\n{report.problems()}")
        self.report = report


@dataclass
class ConversionReport:
    """Which official tensors went where, which were dropped, and every problem by key name."""

    model: str
    mapped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    duplicate: list[tuple[str, list[str]]] = field(default_factory=list)
    wrong_shape: list[tuple[str, str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unknown or self.extra or self.missing or self.duplicate or self.wrong_shape)

    def problems(self) -> str:
        """One block per kind of problem, each key named (the first 20 of each kind)."""

        def block(title: str, rows: list[str]) -> list[str]:
            if not rows:
                return []
            more = [f"  … and {len(rows) - _LISTED} more"] if len(rows) > _LISTED else []
            return [f"{title} ({len(rows)}):"] + [f"  {row}" for row in rows[:_LISTED]] + more

        lines = block("official keys not in the official layout", [f"{k}: {why}" for k, why in self.unknown])
        lines += block(
            "extra: official keys mapped to no tensor of the model", [f"{k} → {d}" for k, d in self.extra]
        )
        lines += block("missing: model tensors no official key fills", self.missing)
        lines += block("model tensors filled twice", [f"{d} ← {', '.join(s)}" for d, s in self.duplicate])
        lines += block(
            "wrong shape",
            [
                f"{s} → {d}: {list(a)} in the checkpoint, {list(b)} in the model"
                for s, d, a, b in self.wrong_shape
            ],
        )
        return "\n".join(lines)

    def summary(self) -> str:
        lines = [
            f"{len(self.mapped)} tensors mapped onto {self.model}, {len(self.dropped)} dropped by design"
            + (
                f" ({', '.join(self.dropped[:5])}{' …' if len(self.dropped) > 5 else ''})"
                if self.dropped
                else ""
            ),
        ]
        if self.counters:
            lines.append(
                f"{len(self.counters)} BatchNorm step counters absent from the checkpoint were set to 0"
            )
        if not self.ok:
            lines.append(self.problems())
        return "\n".join(lines)


def read_official_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The flat state dict of an official checkpoint: wrappers unwrapped, ``module.`` prefixes removed."""
    path = Path(path)
    content = torch_load(
        path, advice="; load it yourself in a trusted environment and save its state_dict with torch.save"
    )
    while isinstance(content, dict):
        inner = next((content[w] for w in WRAPPERS if isinstance(content.get(w), dict) and content[w]), None)
        if inner is None or all(isinstance(v, Tensor) for v in content.values()):
            break
        content = inner
    if not isinstance(content, dict) or not content:
        raise WeightsError(path, "holds no state dict (expected a dict of tensors, maybe under 'state_dict')")
    not_tensors = [k for k, v in content.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise WeightsError(
            path, f"state dict entries that are not tensors: {', '.join(map(str, not_tensors[:5]))}"
        )
    if all(k.startswith("module.") for k in content):
        content = {k.removeprefix("module."): v for k, v in content.items()}
    return content


def convert_state_dict(
    official: Mapping[str, Tensor], model: nn.Module, official_key: OfficialKey
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Map ``official`` onto ``model``'s state dict through ``official_key``; the report lists problems."""
    expected = model.state_dict()
    report = ConversionReport(type(model).__name__)
    sources: dict[str, list[str]] = {}
    state: dict[str, Tensor] = {}
    for key, tensor in official.items():
        try:
            target = official_key(key)
        except KeyError as err:
            report.unknown.append((key, str(err.args[0]) if err.args else "unknown key"))
            continue
        if target is None:
            report.dropped.append(key)
            continue
        if target not in expected:
            report.extra.append((key, target))
            continue
        sources.setdefault(target, []).append(key)
        if tuple(tensor.shape) != tuple(expected[target].shape):
            report.wrong_shape.append((key, target, tuple(tensor.shape), tuple(expected[target].shape)))
            continue
        report.mapped.append((key, target))
        state[target] = tensor.to(expected[target].dtype)
    report.duplicate = [(target, keys) for target, keys in sources.items() if len(keys) > 1]
    for key in expected:
        if key in sources:
            continue
        if key.endswith("num_batches_tracked"):
            report.counters.append(key)
            state[key] = torch.zeros_like(expected[key])
        else:
            report.missing.append(key)
    return state, report


def _class_names(num_classes: int) -> list[str]:
    from cityscapesscripts.helpers.labels import labels

    cityscapes = [label.name for label in sorted(labels, key=lambda x: x.trainId) if 0 <= label.trainId < 255]
    return cityscapes if num_classes == len(cityscapes) else [f"class_{i}" for i in range(num_classes)]


def convert_checkpoint(
    source: str,
    path: str | Path,
    out: str | Path,
    name: str | None = None,
    architecture: str | None = None,
    num_classes: int | None = None,
) -> tuple[dict[str, Any], ConversionReport]:
    """Convert an official ``source`` checkpoint at ``path`` into published weights in ``out``.

    The target architecture, classes and arguments are read from the checkpoint's tensors unless
    given. Raises :class:`ConversionError` (with the full report) when the conversion is not strict.
    """
    from frugalseg.zoo.registry import get_model

    if source not in CONVERTERS:
        raise ValueError(f"unknown converter {source!r}; converters: {', '.join(CONVERTERS)}")
    converter = CONVERTERS[source]
    official_key = converter.official_key()
    path = Path(path)
    official = read_official_checkpoint(path)
    try:
        target = converter.infer(official)
    except (KeyError, ValueError) as err:
        raise WeightsError(path, f"not an official {source} checkpoint ({err.args[0]})") from err
    architecture = architecture or target.architecture
    classes = num_classes or target.num_classes
    model = get_model(architecture, num_classes=classes, num_frames=target.num_frames, **target.args)
    state, report = convert_state_dict(official, model, official_key)
    if not report.ok:
        raise ConversionError(path, report)
    model.load_state_dict(state, strict=True)
    class_names = _class_names(classes)
    card = {
        "name": name or f"{architecture.replace('_', '-')}-official",
        "architecture": architecture,
        "architecture_args": {k: list(v) if isinstance(v, tuple) else v for k, v in target.args.items()},
        "num_classes": classes,
        "num_frames": model.num_frames,
        "class_names": class_names,
        "palette": palette_for(class_names),
        "ignore_index": 255,
        "normalization": imagenet_normalization(),
        "training": {"note": f"weights of the official {source} release; see its repository for its data"},
        "metrics": {},
        "source": {
            "official": source,
            "layout": converter.layout,
            "file": path.name,
            "sha256": sha256_file(path),
            "mapped": len(report.mapped),
            "dropped": report.dropped,
        },
    }
    return write_weights(model.state_dict(), card, out), report
