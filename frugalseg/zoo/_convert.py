"""Convert official checkpoints (TMANet, TDNet, STM, HRNet-Seg) into frugalseg published weights.

Each architecture module declares its converter beside its ``official_key`` (as its configs sit
beside its entrypoints): ``official_key(key) -> str | None`` gives the frugalseg state-dict key of a
key of its official checkpoint, None for a tensor that is deliberately not used (an ImageNet
classifier, a loss's class weights), and a KeyError for a key that its official layout does not
have; ``official_target(state)`` reads from the official tensors which zoo model, class count and
arguments to build. The conversion is strict: every official tensor is mapped or deliberately
dropped, every model tensor is filled exactly once, and every shape matches; anything else fails
with a report that names the keys. Checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from frugalseg.data.classes import CITYSCAPES
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.zoo._cards import imagenet_normalization, palette_for
from frugalseg.zoo._checkpoints import write_weights
from frugalseg.zoo._loading import read_torch_weights, sha256_file, torch_load
from frugalseg.zoo._registry import get_model, list_models, model_config

OfficialKey = Callable[[str], "str | None"]
#: Wrapper entries of official checkpoints that hold the state dict (mmcv, TDNet training, others).
WRAPPERS = ("state_dict", "model_state", "model", "net", "module")
_LISTED = 20


@dataclass(frozen=True)
class Target:
    """What to build for an official checkpoint.

    Attributes:
        architecture: the zoo model name.
        num_classes: its output classes.
        num_frames: its clip length, or None for the model's default.
        args: its architecture arguments (widths, heads) read from the checkpoint.
    """

    architecture: str
    num_classes: int
    num_frames: int | None = None
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Converter:
    """An official source of weights (``frugalseg zoo convert --from SOURCE``).

    Attributes:
        source: the name ``--from`` takes (``hrnet``, ``tmanet``, ``tdnet``, ``stm``).
        layout: how its checkpoints are laid out, in words (shown in the card).
        official_key: official key → this model's key, None to drop it, KeyError if foreign.
        infer: the :class:`Target` an official state dict describes.
    """

    source: str
    layout: str
    official_key: OfficialKey
    infer: Callable[[Mapping[str, Tensor]], Target]


#: Converters by source, filled by the architecture modules with :func:`register_converter`.
CONVERTERS: dict[str, Converter] = {}


def register_converter(converter: Converter) -> Converter:
    """Make ``converter`` available to :func:`convert_checkpoint` and ``frugalseg zoo convert``."""
    if converter.source in CONVERTERS:
        raise ValueError(f"a converter for {converter.source!r} is already registered")
    CONVERTERS[converter.source] = converter
    return converter


def shape_of(state: Mapping[str, Tensor], key: str, layout: str) -> torch.Size:
    """The shape of ``state[key]``; a KeyError naming ``layout`` when the checkpoint lacks it."""
    if key not in state:
        raise KeyError(f"the checkpoint has no {key!r}, which the {layout} layout always has")
    return state[key].shape


class ConversionError(WeightsError):
    """A checkpoint that does not convert strictly; carries the full report.

    Args:
        path: the official checkpoint.
        report: the conversion's report, whose problems the message lists.
    """

    def __init__(self, path: str | Path, report: ConversionReport) -> None:
        super().__init__(path, f"does not convert strictly onto {report.model}:\n{report.problems()}")
        self.report = report

    def __reduce__(self) -> tuple[type, tuple[str | Path, ConversionReport]]:
        return type(self), (self.path, self.report)


@dataclass
class ConversionReport:
    """Which official tensors went where, which were dropped, and every problem by key name.

    Attributes:
        model: class name of the model converted onto.
        mapped: (official key, model key) of every tensor copied.
        dropped: official keys deliberately not used (``official_key`` gave None).
        counters: BatchNorm ``num_batches_tracked`` the checkpoint lacks, set to 0.
        unknown: (official key, why) for keys the official layout does not have.
        extra: (official key, model key) where the model has no such tensor.
        missing: model tensors no official key fills.
        duplicate: (model key, official keys) filled more than once.
        wrong_shape: (official key, model key, checkpoint shape, model shape).
    """

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
    """Cityscapes' class names for a 19-class checkpoint, ``class_i`` otherwise."""
    if num_classes == CITYSCAPES.num_classes:
        return list(CITYSCAPES.names)
    return [f"class_{i}" for i in range(num_classes)]


def _refuse_foreign(
    report: ConversionReport, keys: int, path: Path, source: str, architecture: str, official: str
) -> None:
    """One line, not the report's key lists, when most keys say the file or the architecture is another.

    Raises:
        WeightsError: most keys are not in the official layout (another release's file), or most map to
            no tensor of, or to one of another shape in, an ``architecture`` other than the official one.
    """
    if len(report.unknown) > keys / 2:
        key, why = report.unknown[0]
        raise WeightsError(
            path,
            f"not an official {source} checkpoint: {len(report.unknown)} of its {keys} keys are not in its "
            f"layout (the first, {key}: {why})",
        )
    unfit = len(report.extra) + len(report.wrong_shape)
    if architecture != official and unfit > keys / 2:
        raise WeightsError(
            path,
            f"an official {source} checkpoint holds {official}, not {architecture}: {unfit} of its {keys} "
            f"tensors fit no tensor of {architecture}",
        )


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

    Args:
        source: a registered converter (:data:`CONVERTERS`: ``hrnet``, ``tmanet``, ``tdnet``, ``stm``).
        path: the official checkpoint.
        out: the checkpoints folder to publish into.
        name: published name (default ``<architecture>-official``).
        architecture: zoo model to build (default: read from the checkpoint).
        num_classes: classes (default: from the checkpoint's classifier).
    """
    if source not in CONVERTERS:
        raise ValueError(f"unknown converter {source!r}; converters: {', '.join(CONVERTERS)}")
    converter = CONVERTERS[source]
    path = Path(path)
    official = read_official_checkpoint(path)
    if sum(key.startswith("student.") for key in official) > len(official) / 2:
        card = read_torch_weights(path).card
        vos = "one of `vos fit`: use the .ckpt as it is (get_model(weights=…), --stm-weights)"
        raise WeightsError(
            path,
            f"a frugalseg fit checkpoint (its tensors under 'student.'), not an official {source} one: "
            + (vos if card and "num_classes" not in card else "publish it with `frugalseg zoo publish`"),
        )
    try:
        target = converter.infer(official)
    except (KeyError, ValueError) as err:
        raise WeightsError(path, f"not an official {source} checkpoint ({err.args[0]})") from err
    architecture = architecture or target.architecture
    classes = num_classes or target.num_classes
    if architecture not in list_models():
        raise ConfigError(
            "--arch", f"unknown model {architecture!r}; available models: {', '.join(list_models())}"
        )
    try:
        model = get_model(architecture, num_classes=classes, num_frames=target.num_frames, **target.args)
    except ConfigError as err:  # another family's model cannot take the official one's clip length or args
        if architecture == target.architecture:
            raise
        raise WeightsError(
            path,
            f"an official {source} checkpoint holds {target.architecture}, not {architecture}: give --arch "
            f"{target.architecture} (or none)",
        ) from err
    state, report = convert_state_dict(official, model, converter.official_key)
    if not report.ok:
        _refuse_foreign(report, len(official), path, source, architecture, target.architecture)
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
            "license": model_config(architecture).license,
        },
    }
    return write_weights(model.state_dict(), card, out), report
