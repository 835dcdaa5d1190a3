"""Model cards: what a published file needs to be rebuilt and trusted, as JSON and as Markdown."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugalseg.data.classes import CITYSCAPES, seeded_palette
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.errors import ConfigError

CARD_FORMAT = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def frugalseg_version() -> str:
    """The installed frugalseg version, recorded on every card."""
    from frugalseg import __version__

    return __version__


def check_name(name: str) -> str:
    """A published name is lower case letters, digits, ``.``, ``_`` and ``-`` (it becomes a file name)."""
    if not _NAME.match(name):
        raise ConfigError(
            "--name",
            f"invalid published name {name!r}: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (it becomes a file name inside the checkpoints folder)",
        )
    return name


def model_facts(card: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a card needed to rebuild the model, also stored in the safetensors header."""
    keys = ("name", "architecture", "architecture_args", "num_classes", "num_frames", "class_names")
    return {key: card[key] for key in keys}


def palette_for(class_names: list[str]) -> list[list[int]]:
    """RGB colour per class, as `frugalseg predict` colours them.

    A data set's own palette for its class names (CamVid, IDD, DAVIS objects), else Cityscapes colours
    for Cityscapes class names and a seeded colour for the others.
    """
    from frugalseg.data.formats.camvid import CAMVID
    from frugalseg.data.formats.davis import OBJECTS
    from frugalseg.data.formats.idd import IDD_LEVEL3

    for table in (CAMVID, IDD_LEVEL3, OBJECTS):
        if list(table.names) == list(class_names):
            return [list(colour) for colour in table.palette]
    known = dict(zip(CITYSCAPES.names, CITYSCAPES.palette, strict=True))
    others = seeded_palette(len(class_names))
    return [list(known.get(name, others[i])) for i, name in enumerate(class_names)]


def imagenet_normalization() -> dict[str, Any]:
    """The card's ``normalization`` entry for the ImageNet statistics every zoo student expects."""
    return {
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "description": "RGB in [0, 1], minus ImageNet mean, divided by ImageNet std",
    }


def model_card_markdown(card: Mapping[str, Any], load: str | None = None) -> str:
    """A short human-readable model card; ``load`` is the Python line of its Use section."""
    lines = [
        f"# {card['name']}",
        "",
        f"`{card['architecture']}` student with {card['num_classes']} classes, "
        f"{card['num_frames']} frame(s) per prediction, {card['num_parameters'] / 1e6:.2f} M parameters "
        f"({card['dtype']}).",
        "",
        "| | |",
        "|---|---|",
        f"| file | `{card['file']}` ({card['size_bytes'] / 1e6:.2f} MB) |",
        f"| sha256 | `{card['sha256']}` |",
        f"| architecture arguments | `{json.dumps(card['architecture_args'])}` |",
        f"| input | {card['normalization']['description']} |",
        f"| frugalseg | {card['frugalseg_version']} |",
    ]
    training = card.get("training") or {}
    if training:
        lines += ["", "## Training labels", ""]
        if "recipe" in training:
            lines.append(
                f"Recipe `{training['recipe']}`, seed {training.get('seed')}, on `{training.get('data')}`."
            )
        sources = training.get("label_sources")
        if sources:
            lines += ["", "| label source | samples |", "|---|---|"]
            lines += [f"| {kind} | {count} |" for kind, count in sources.items()]
        cost = training.get("annotation_cost")
        if cost:
            lines += [
                "",
                f"Annotation cost: {cost['total_hours']:.1f} h "
                f"({cost['manual_frames']} manually labelled frames).",
            ]
        if training.get("command"):
            lines += ["", f"Trained with `{training['command']}`."]
        if training.get("note"):
            lines += ["", training["note"]]
    source = card.get("source") or {}
    if source.get("official"):
        lines += [
            "",
            "## Source",
            "",
            f"Converted from the official {source['official']} checkpoint "
            f"`{source['file']}` (sha256 `{source['sha256']}`).",
        ]
    metrics = card.get("metrics") or {}
    if metrics.get("values"):
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in metrics["values"].items()]
        note = f" ({metrics['note']})" if metrics.get("note") else ""
        lines += ["", f"Measured with `{metrics['command']}`{note}."]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from frugalseg.zoo import get_model",
        load or f"model = get_model({card['architecture']!r}, weights={card['name']!r})",
        "```",
        "",
    ]
    return "\n".join(lines)


def hub_readme(card: Mapping[str, Any], repo_id: str) -> str:
    """The ``README.md`` of a Hub repository holding ``card``'s weights: YAML metadata, then the model card.

    The metadata is written by ``huggingface_hub``'s ``ModelCardData``, so the Hub reads it: licence,
    library, data set, the metrics as a ``model-index`` with the command that measured them, and a
    ``frugalseg`` block with the recipe, its label sources and annotation hours.
    """
    from huggingface_hub import EvalResult, ModelCardData

    training = card.get("training") or {}
    metrics = card.get("metrics") or {}
    dataset = str(training.get("format") or Path(str(training.get("data") or "unknown")).name)
    results = [
        EvalResult(
            task_type="image-segmentation",
            task_name="Semantic segmentation of video frames",
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split=key.partition("/")[0] if "/" in key else None,
            metric_type=key.rpartition("/")[2],
            metric_name=key,
            metric_value=float(value),
        )
        for key, value in (metrics.get("values") or {}).items()
    ]
    cost = training.get("annotation_cost") or {}
    data = ModelCardData(
        license=str(card.get("license", "apache-2.0")).lower(),
        library_name="frugalseg",
        pipeline_tag="image-segmentation",
        tags=["frugalseg", "semantic-segmentation", "video", card["architecture"]],
        datasets=[dataset],
        model_name=card["name"],
        eval_results=results or None,
        frugalseg={
            "architecture": card["architecture"],
            "num_classes": card["num_classes"],
            "num_frames": card["num_frames"],
            "sha256": card["sha256"],
            "recipe": training.get("recipe"),
            "label_sources": training.get("label_sources"),
            "annotation_hours": cost.get("total_hours"),
            "train_command": training.get("command"),
            "metrics_command": metrics.get("command"),
        },
    )
    load = f'model = get_model("hf-hub:{repo_id}")'
    return f"---\n{data.to_yaml()}\n---\n\n{model_card_markdown(card, load)}"
