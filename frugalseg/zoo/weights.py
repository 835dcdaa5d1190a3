"""Weights in and out: every file of weights frugalseg reads, and the published form it writes.

Reading (:func:`resolve`, :func:`load_weights_into`, :func:`load_backbone_weights`) takes a
published name, a ``.safetensors`` file, a torch file (a ``frugalseg fit`` checkpoint or a bare
state dict) or a URL, and loads strictly: mismatches are named by key and shape with the file.

A published file is named ``<name>-<sha256[:8]>.safetensors`` and holds the student's state dict
only. Its card records what is needed to rebuild and trust it: architecture and arguments, classes
and palette, input normalisation, ``num_frames``, the labels it was trained on and what they cost,
metrics with the command that measured them, and the file's full sha256. Loading never unpickles:
safetensors, or ``torch.load(weights_only=True)`` for torch files (Lightning checkpoints); the
sha256 is checked before a single tensor is read.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import json
import os
import pickle
import re
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from frugalseg.datamodules.io import cache_dir, write_bytes_atomic, write_json_atomic

INDEX_FILE = "index.json"
INDEX_FORMAT = 1
CARD_FORMAT = 1
#: Key of the safetensors header entry that carries the build facts of the card.
METADATA_KEY = "frugalseg"
STUDENT_PREFIX = "student."

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHORT_SHA = re.compile(r"-([0-9a-f]{8})$")
_STATS = ("running_mean", "running_var")  # BatchNorm statistics: tensors, but not parameters


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem

    def __reduce__(self) -> tuple[type[WeightsError], tuple[str, str]]:
        return WeightsError, (self.path, self.problem)


def checkpoints_dir() -> Path:
    """The published-weights folder: ``$FRUGALSEG_CHECKPOINTS``, else ``checkpoints/`` of the repository."""
    env = os.environ.get("FRUGALSEG_CHECKPOINTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "checkpoints"


def weights_cache_dir() -> Path:
    """Where weights downloaded from a URL are kept: ``$FRUGALSEG_CACHE/weights``."""
    return cache_dir() / "weights"


def frugalseg_version() -> str:
    from frugalseg import __version__

    return __version__


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_name(name: str) -> str:
    """A published name is lower case letters, digits, ``.``, ``_`` and ``-`` (it becomes a file name)."""
    if not _NAME.match(name):
        raise ValueError(
            f"invalid published name {name!r}: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


# --------------------------------------------------------------------------------------------- index


def read_index(directory: str | Path | None = None) -> dict[str, Any]:
    """The index of a checkpoints folder (empty when it has none yet)."""
    path = Path(directory or checkpoints_dir()) / INDEX_FILE
    if not path.is_file():
        return {"format": INDEX_FORMAT, "models": {}}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise WeightsError(path, f"not valid JSON ({err})") from err
    if not isinstance(index, dict) or not isinstance(index.get("models"), dict):
        raise WeightsError(path, "not a frugalseg checkpoints index (no 'models' table)")
    return index


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder's index while it is read, changed and written."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory, os.O_RDONLY)  # the folder itself: the index file is replaced, not edited
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _index_entry(card: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "file": card["file"],
        "card": card["card"],
        "sha256": card["sha256"],
        "size_bytes": card["size_bytes"],
        "architecture": card["architecture"],
        "num_classes": card["num_classes"],
        "num_frames": card["num_frames"],
        "metrics": card.get("metrics", {}).get("values", {}),
    }


def update_index(directory: Path, card: Mapping[str, Any]) -> Path:
    """Add or replace ``card``'s entry in the folder's ``index.json`` (locked, written atomically)."""
    with _locked(directory):
        index = read_index(directory)
        index["format"] = INDEX_FORMAT
        index["models"][card["name"]] = _index_entry(card)
        index["models"] = dict(sorted(index["models"].items()))
        path = directory / INDEX_FILE
        write_json_atomic(path, index, sort_keys=False)
    return path


# ----------------------------------------------------------------------------------------- writing


def build_facts(card: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a card needed to rebuild the model, also stored in the safetensors header."""
    keys = ("name", "architecture", "architecture_args", "num_classes", "num_frames", "class_names")
    return {key: card[key] for key in keys}


def write_weights(
    state_dict: Mapping[str, Tensor], card: dict[str, Any], out: str | Path, dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """Write ``<name>-<sha8>.safetensors`` and its card (JSON + Markdown); update the folder's index.

    ``card`` must hold at least ``name`` and the build facts (:func:`build_facts`); the file name,
    size, dtype, sha256 and frugalseg version are added here. ``dtype`` casts floating tensors
    (e.g. ``torch.float16`` halves the file). Returns the completed card.
    """
    out = Path(out)
    check_name(card["name"])
    tensors: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    data = save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(build_facts(card), sort_keys=True)})
    sha = hashlib.sha256(data).hexdigest()
    stem = f"{card['name']}-{sha[:8]}"
    floating = sorted(
        {str(v.dtype).removeprefix("torch.") for v in tensors.values() if v.is_floating_point()}
    )
    card = {
        "card_format": CARD_FORMAT,
        **card,
        "file": f"{stem}.safetensors",
        "card": f"{stem}.json",
        "sha256": sha,
        "size_bytes": len(data),
        "dtype": ",".join(floating),
        "num_parameters": int(
            sum(v.numel() for k, v in tensors.items() if v.is_floating_point() and not k.endswith(_STATS))
        ),
        "frugalseg_version": frugalseg_version(),
        "published": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_bytes_atomic(out / card["file"], data)
    write_json_atomic(out / card["card"], card, sort_keys=False)
    write_bytes_atomic(out / f"{stem}.md", model_card_markdown(card).encode("utf-8"))
    update_index(out, card)
    return card


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """A short human-readable model card."""
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
        lines += ["", f"Measured with `{metrics['command']}`."]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from frugalseg.zoo import get_model",
        f"model = get_model({card['architecture']!r}, weights={card['name']!r})",
        "```",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- resolving


@dataclass
class LoadedWeights:
    """A verified state dict and the card it came with (build facts only when no card was found)."""

    state_dict: dict[str, Tensor]
    card: dict[str, Any]
    path: Path
    verified: str = field(default="")

    def load_into(self, model: nn.Module) -> None:
        """Load strictly; mismatches are reported by key name and shape."""
        load_state_dict_strictly(model, self.state_dict, self.path)


def load_state_dict_strictly(model: nn.Module, state: Mapping[str, Tensor], path: str | Path) -> None:
    """Load ``state`` into ``model`` strictly; any key or shape mismatch is a WeightsError naming ``path``."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} in the file, {tuple(expected[k].shape)} in the model"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:5])}")
        if wrong:
            parts.append(f"wrong shape {len(wrong)}: {'; '.join(wrong[:5])}")
        raise WeightsError(path, f"weights do not fit {type(model).__name__} ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)


def _verify(path: Path, expected: str, where: str) -> str:
    """Check the file's sha256 against a full hash or an 8-character prefix; returns the actual hash."""
    actual = sha256_file(path)
    if not actual.startswith(expected):
        raise WeightsError(
            path,
            f"sha256 is {actual}, but {where} records {expected}: the file is corrupt or was changed "
            "after it was published; refusing to load it",
        )
    return actual


def _header_facts(path: Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise WeightsError(path, f"not a readable safetensors file ({err})") from err
    text = metadata.get(METADATA_KEY)
    return json.loads(text) if text else {}


def _load_safetensors(
    path: Path, card: dict[str, Any] | None, expected: str | None, where: str
) -> LoadedWeights:
    if not path.is_file():
        raise WeightsError(path, "weights file does not exist")
    verified = _verify(path, expected, where) if expected else ""
    if card is None:
        beside = path.with_suffix(".json")
        if beside.is_file():
            card = _read_card(beside)
            verified = _verify(path, card["sha256"], f"its card {beside.name}")
        else:
            match = _SHORT_SHA.search(path.stem)
            if match:
                verified = _verify(path, match.group(1), "its file name")
            card = _header_facts(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise WeightsError(path, f"not a readable safetensors file ({err})") from err
    return LoadedWeights(state, card, path, verified)


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise WeightsError(path, f"cannot read the model card ({err})") from err
    if not isinstance(card, dict) or "sha256" not in card:
        raise WeightsError(path, "not a frugalseg model card (no sha256)")
    return card


def torch_load(path: str | Path, advice: str = "") -> Any:
    """``torch.load(weights_only=True)`` on CPU, so that no code in the file runs; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "weights file does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, … for foreign content
        raise WeightsError(path, _refusal(err) + advice) from err


def _refusal(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in frugalseg's words.

    torch's own message advises loading with ``weights_only=False``, which would run code from the
    file; frugalseg never does, so that advice is replaced by what to do instead.
    """
    needed = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if needed is None and "Unsupported operand" in str(err):
        return "cannot be read with torch.load(weights_only=True): not a torch file, or a damaged one"
    if needed is None and not isinstance(err, pickle.UnpicklingError):
        first = str(err).splitlines()[0] if str(err) else ""
        return f"cannot be read with torch.load(weights_only=True) ({type(err).__name__}: {first})"
    holds = f" (it needs {needed.group(1)})" if needed else ""
    return (
        "cannot be read with torch.load(weights_only=True): it holds Python objects other than "
        f"tensors{holds}, and frugalseg never unpickles them, as that could run code from the file; "
        "save the model's state dict alone (torch.save(model.state_dict(), path)), or publish a "
        "`frugalseg fit` checkpoint with `frugalseg zoo publish`"
    )


def read_torch_weights(path: str | Path) -> LoadedWeights:
    """The weights in a torch file: a frugalseg Lightning checkpoint's student, or a bare state dict.

    For a checkpoint of ``frugalseg fit`` the ``student.*`` tensors are the weights and the card holds
    the build facts from its hyper-parameters; a state dict (bare or under ``state_dict``) is taken
    as it is, with an empty card.
    """
    path = Path(path)
    content = torch_load(path)
    wrapped = isinstance(content, dict) and isinstance(content.get("state_dict"), dict)
    state = content["state_dict"] if wrapped else content
    if not isinstance(state, dict) or not state:
        raise WeightsError(path, "holds no state dict (expected a Lightning checkpoint or a dict of tensors)")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise WeightsError(path, f"state dict entries that are not tensors: {', '.join(not_tensors[:5])}")
    hparams = content.get("hyper_parameters") if wrapped else None
    card: dict[str, Any] = {}
    if isinstance(hparams, dict) and "student" in hparams:
        card = {
            "name": path.stem,
            "architecture": hparams["student"],
            "architecture_args": dict(hparams.get("student_args") or {}),
            "num_classes": int(hparams["num_classes"]),
            "num_frames": int(hparams["num_frames"]),
            "class_names": list(hparams.get("class_names") or []),
        }
        card["architecture_args"].pop("weights", None)
    student = {k[len(STUDENT_PREFIX) :]: v for k, v in state.items() if k.startswith(STUDENT_PREFIX)}
    if wrapped and student:
        state = student
    elif card:
        raise WeightsError(path, f"state_dict has no '{STUDENT_PREFIX}*' tensors")
    return LoadedWeights(state, card, path)


def read_weights_file(path: str | Path) -> LoadedWeights:
    """A local weights file: ``.safetensors`` (verified when a card or its name allows), else a torch file."""
    path = Path(path).expanduser()
    if path.suffix == ".safetensors":
        return _load_safetensors(path, None, None, "")
    return read_torch_weights(path)


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a local safetensors / torch state dict into a timm backbone, without its classifier ``fc.*``."""
    loaded = read_weights_file(path)
    state = {k: v for k, v in loaded.state_dict.items() if not k.startswith("fc.")}
    load_state_dict_strictly(backbone, state, loaded.path)


def load_weights_into(model: nn.Module, weights: str | Path, architecture: str | None = None) -> None:
    """Load weights given as to :func:`resolve` into a built ``model``, strictly.

    With ``architecture`` (its zoo name), weights whose card names another architecture, class count
    or clip length are refused before any key is compared, as :func:`get_model` does.
    """
    loaded = resolve(weights)
    if architecture is not None:
        num_classes, num_frames = getattr(model, "num_classes", None), getattr(model, "num_frames", None)
        check_compatible(loaded, architecture, num_classes, num_frames)
    loaded.load_into(model)


def _is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in ("http", "https", "file")


def download(url: str, destination: Path) -> Path:
    """Download ``url`` to ``destination`` atomically, with a progress bar; an existing file is kept."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    if destination.is_file():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = (TextColumn(destination.name), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task("download", total=total)
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    handle.write(chunk)
                    progress.advance(task, len(chunk))
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination


def _from_url(url: str) -> LoadedWeights:
    """Download a published file and its card (``<stem>.json`` beside it) into the cache, then verify."""
    name = Path(urllib.parse.urlparse(url).path).name
    if not name.endswith(".safetensors"):
        raise WeightsError(url, "a weights URL must name a .safetensors file")
    folder = weights_cache_dir()
    card_url = url[: -len(".safetensors")] + ".json"
    try:
        card_path = download(card_url, folder / (name[: -len(".safetensors")] + ".json"))
    except OSError as err:
        raise WeightsError(card_url, f"cannot download the model card that holds the sha256 ({err})") from err
    card = _read_card(card_path)
    try:
        path = download(url, folder / name)
    except OSError as err:
        raise WeightsError(url, f"cannot download ({err})") from err
    return _load_safetensors(path, card, card["sha256"], f"the card {card_url}")


def resolve(weights: str | Path, checkpoints: str | Path | None = None) -> LoadedWeights:
    """Read verified weights from a published name, a local path or a URL.

    * published name: looked up in ``checkpoints/index.json``; the sha256 of the index and the card
      must both match the file;
    * ``*.safetensors`` path: verified against a card beside it, else against the 8 hex digits in its
      name (``name-1a2b3c4d.safetensors``); a bare file without either is read unverified;
    * other paths (``*.ckpt``, ``*.pt``): a ``frugalseg fit`` checkpoint's student or a bare state
      dict, read with ``weights_only=True`` (:func:`read_torch_weights`);
    * ``http(s)://`` or ``file://`` URL: downloaded (only because it was asked for) with its card into
      ``$FRUGALSEG_CACHE/weights`` and verified.
    """
    text = str(weights)
    if isinstance(weights, str) and _is_url(text):
        return _from_url(text)
    path = Path(text).expanduser()
    if path.is_file():
        return read_weights_file(path)
    directory = Path(checkpoints or checkpoints_dir())
    index = read_index(directory)
    entry = index["models"].get(text)
    if entry is None:
        if path.suffix in (".safetensors", ".ckpt", ".pt", ".pth") or os.sep in text:
            raise WeightsError(path, "weights file does not exist")
        published = ", ".join(index["models"]) or "none"
        raise WeightsError(
            text,
            f"not a published name in {directory / INDEX_FILE} (published: {published}), a file or a URL",
        )
    card = _read_card(directory / entry["card"])
    if card["sha256"] != entry["sha256"]:
        raise WeightsError(
            directory / entry["card"],
            f"card sha256 {card['sha256']} differs from the index's {entry['sha256']}",
        )
    return _load_safetensors(directory / entry["file"], card, entry["sha256"], f"{directory / INDEX_FILE}")


def check_compatible(
    loaded: LoadedWeights, architecture: str, num_classes: int | None, num_frames: int | None
) -> None:
    """Fail clearly when the weights were made for another architecture, class count or clip length."""
    card = loaded.card
    theirs = card.get("architecture")
    if theirs is not None and theirs != architecture:
        raise WeightsError(
            loaded.path, f"holds weights of architecture {theirs!r}, but {architecture!r} was asked for"
        )
    if num_classes is not None and card.get("num_classes") not in (None, num_classes):
        raise WeightsError(
            loaded.path,
            f"was trained for {card['num_classes']} classes, but the model was asked for {num_classes}",
        )
    if num_frames is not None and card.get("num_frames") not in (None, num_frames):
        raise WeightsError(
            loaded.path,
            f"was trained with num_frames={card['num_frames']}, but num_frames={num_frames} was asked for",
        )


def load_pretrained(weights: str | Path, checkpoints: str | Path | None = None, **kwargs: Any) -> nn.Module:
    """The student a published name / path / URL describes, built from its card with its weights."""
    from frugalseg.zoo.registry import get_model

    loaded = resolve(weights, checkpoints)
    architecture = loaded.card.get("architecture")
    if architecture is None:
        raise WeightsError(loaded.path, "has no card naming its architecture; use get_model(name, weights=…)")
    return get_model(architecture, weights=loaded, **kwargs)


# --------------------------------------------------------------------------------------- publishing


def _cityscapes_colours() -> dict[str, tuple[int, int, int]]:
    from cityscapesscripts.helpers.labels import labels

    return {label.name: tuple(int(c) for c in label.color) for label in labels}


def palette_for(class_names: list[str]) -> list[list[int]]:
    """RGB colour per class: Cityscapes colours for Cityscapes class names, a seeded colour otherwise."""
    known = _cityscapes_colours()
    generator = torch.Generator().manual_seed(0)
    random = (torch.rand(len(class_names), 3, generator=generator) * 255).round().int().tolist()
    return [list(known[name]) if name in known else random[i] for i, name in enumerate(class_names)]


def imagenet_normalization() -> dict[str, Any]:
    """The card's ``normalization`` entry for the ImageNet statistics every zoo student expects."""
    from frugalseg.datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD

    return {
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "description": "RGB in [0, 1], minus ImageNet mean, divided by ImageNet std",
    }


def read_metrics(path: str | Path) -> dict[str, float]:
    """Metrics from a CSVLogger ``metrics.csv`` (last ``val/``/``test/`` value of each column) or JSON."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "metrics file does not exist")
    if path.suffix == ".json":
        values = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise WeightsError(path, "expected a JSON object of metric name → value")
        return {str(k): float(v) for k, v in values.items()}
    metrics: dict[str, float] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key and key.startswith(("val/", "test/")) and value not in ("", None):
                    metrics[key] = float(value)
    if not metrics:
        raise WeightsError(path, "no val/ or test/ metric found")
    return dict(sorted(metrics.items()))


def _checkpoint_metrics(checkpoint: dict[str, Any]) -> dict[str, float]:
    """The monitored validation score saved by ModelCheckpoint with this very checkpoint."""
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if (
            key.startswith("ModelCheckpoint")
            and state.get("current_score") is not None
            and state.get("monitor")
        ):
            return {state["monitor"]: round(float(state["current_score"]), 6)}
    return {}


def _training_record(ckpt: Path, checkpoint: dict[str, Any], run_dir: Path | None) -> dict[str, Any]:
    """Recipe, label sources and annotation hours from the run's ``samples.json``, and the fit command."""
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    run_dir = run_dir or ckpt.resolve().parent.parent
    record: dict[str, Any] = {
        "data": data.get("root") or "synthetic streets (generated)",
        "recipe": data.get("recipe"),
        "budget": data.get("budget"),
        "seed": data.get("seed"),
        "crop_size": data.get("crop_size"),
        "load_scale": data.get("load_scale"),
        "epochs": int(checkpoint.get("epoch", -1)) + 1,
        "steps": int(checkpoint.get("global_step", 0)),
    }
    samples_path = run_dir / "samples.json"
    if samples_path.is_file():
        samples = json.loads(samples_path.read_text(encoding="utf-8"))
        sources: dict[str, int] = {}
        for sample in samples["samples"]:
            sources[sample["kind"]] = sources.get(sample["kind"], 0) + 1
        record["recipe"] = samples["recipe"]
        record["label_sources"] = dict(sorted(sources.items()))
        record["annotation_cost"] = samples["cost"]
    else:
        record["note"] = f"{samples_path} was not found: the label sources and their cost are unknown"
    config = run_dir / "config.yaml"
    if config.is_file():
        record["config"] = config.read_text(encoding="utf-8")
        record["command"] = f"frugalseg fit --config {_display_path(config)}"
    return record


def _display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (cards should not hold home folders)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def publish_checkpoint(
    ckpt: str | Path,
    name: str,
    out: str | Path | None = None,
    metrics_file: str | Path | None = None,
    metrics_command: str | None = None,
    run_dir: str | Path | None = None,
    dtype: torch.dtype | None = None,
    train_command: str | None = None,
) -> dict[str, Any]:
    """Publish the student of a Lightning checkpoint: safetensors + card + index entry.

    Metrics come from ``metrics_file`` (a CSVLogger ``metrics.csv`` or JSON, measured by
    ``metrics_command``), else from the score ModelCheckpoint saved with the checkpoint.
    ``train_command`` is the command that trained it (default: ``fit`` on the run's saved config,
    whose text the card keeps).
    """
    ckpt = Path(ckpt)
    loaded = read_torch_weights(ckpt)
    if not loaded.card:
        raise WeightsError(ckpt, "not a checkpoint of `frugalseg fit` (no student hyper-parameters)")
    checkpoint = torch_load(ckpt)
    training = _training_record(ckpt, checkpoint, Path(run_dir) if run_dir else None)
    if train_command:
        training["command"] = train_command
    if metrics_file is not None:
        if not metrics_command:
            raise ValueError("--metrics needs --metrics-command: the command that measured them")
        metrics = {"values": read_metrics(metrics_file), "command": metrics_command}
    else:
        metrics = {
            "values": _checkpoint_metrics(checkpoint),
            "command": training.get("command", "frugalseg fit"),
            "note": f"validation during training, after epoch {training['epochs']}",
        }
    class_names = loaded.card["class_names"] or [f"class_{i}" for i in range(loaded.card["num_classes"])]
    card = {
        **loaded.card,
        "name": check_name(name),
        "class_names": class_names,
        "palette": palette_for(class_names),
        "ignore_index": int(checkpoint["hyper_parameters"].get("ignore_index", 255)),
        "normalization": imagenet_normalization(),
        "training": training,
        "metrics": metrics,
        "source": {"checkpoint": ckpt.name, "sha256": sha256_file(ckpt)},
    }
    return write_weights(loaded.state_dict, card, out or checkpoints_dir(), dtype=dtype)
