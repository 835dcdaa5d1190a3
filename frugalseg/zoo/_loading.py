"""Reading weights without running code.

Sha256-verified safetensors, torch files read with ``weights_only=True``, and strict loading that
names every mismatching key.

A hash is a full-length, lower-case hex sha256 compared exactly; a card or index that records
anything else (empty, short, not a string) is refused rather than trusted.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from frugalseg.data.files import sha256_file
from frugalseg.errors import WeightsError

#: Key of the safetensors header entry that carries the build facts of the card.
METADATA_KEY = "frugalseg"
STUDENT_PREFIX = "student."
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHORT_SHA = re.compile(r"-([0-9a-f]{8})$")


def verify_sha256(path: Path, expected: Any, where: str) -> str:
    """Check the file's sha256 against the full hash ``where`` records; returns it.

    Raises:
        WeightsError: the recorded hash is not 64 lower-case hex digits, or the file's differs.
    """
    if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
        raise WeightsError(
            path,
            f"{where} records sha256 {expected!r}, which is not 64 lower-case hex digits; "
            "refusing to load it",
        )
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            path,
            f"sha256 is {actual}, but {where} records {expected}: the file is corrupt or was changed "
            "after it was published; refusing to load it",
        )
    return actual


@dataclass
class LoadedWeights:
    """A verified state dict and the card it came with (build facts only when no card was found).

    Attributes:
        state_dict: the tensors, by the model's state-dict keys.
        card: the model card (or the build facts a checkpoint or safetensors header gives).
        path: the file they were read from.
        verified: the sha256 checked against a card, empty when nothing recorded one.
    """

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


def read_card(path: Path) -> dict[str, Any]:
    """A model card (JSON) with its recorded sha256; `WeightsError` naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise WeightsError(path, f"cannot read the model card ({err})") from err
    return parse_card(data, path)


def parse_card(data: str | bytes, source: str | Path) -> dict[str, Any]:
    """The model card in ``data`` read from ``source`` (a file or URL, which errors name)."""
    try:
        card = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(source, f"cannot read the model card ({err})") from err
    if not isinstance(card, dict) or "sha256" not in card:
        raise WeightsError(source, "not a frugalseg model card (no sha256)")
    return card


def _header_facts(path: Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise WeightsError(path, f"not a readable safetensors file ({err})") from err
    text = metadata.get(METADATA_KEY)
    return json.loads(text) if text else {}


def load_safetensors(path: Path, card: dict[str, Any] | None = None, where: str = "") -> LoadedWeights:
    """A ``.safetensors`` file, verified against ``card`` (found beside the file when not given).

    With neither a given card nor one beside the file, the 8 hex digits of a published name
    (``name-1a2b3c4d.safetensors``) must start its sha256, a check against damage only: the weights
    count as unverified (``LoadedWeights.verified`` is empty).
    """
    if not path.is_file():
        problem = "a folder, not a weights file" if path.is_dir() else "weights file does not exist"
        raise WeightsError(path, problem)
    verified = ""
    if card is None and path.with_suffix(".json").is_file():
        card, where = read_card(path.with_suffix(".json")), f"its card {path.with_suffix('.json').name}"
    if card is not None:
        verified = verify_sha256(path, card["sha256"], where or "its card")
    else:
        _check_named_sha256(path)
        card = _header_facts(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise WeightsError(path, f"not a readable safetensors file ({err})") from err
    return LoadedWeights(state, card, path, verified)


def _check_named_sha256(path: Path) -> None:
    """The 8 hex digits of a published name (``name-1a2b3c4d``), when it has them, must start its sha256."""
    match = _SHORT_SHA.search(path.stem)
    if match is None:
        return
    named, actual = match.group(1), sha256_file(path)[:8]
    if actual != named:
        raise WeightsError(
            path,
            f"its name says its sha256 starts with {named}, but its content's starts with {actual}: "
            f"renamed or damaged (no card {path.with_suffix('.json').name} beside it tells which); "
            "refusing to load it",
        )


def torch_load(path: str | Path, advice: str = "") -> Any:
    """``torch.load(weights_only=True)`` on CPU, so that no code in the file runs; errors name the file."""
    path = Path(path)
    if not path.is_file():
        problem = "a folder, not a weights file" if path.is_dir() else "weights file does not exist"
        raise WeightsError(path, problem)
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
    foreign = "cannot be read with torch.load(weights_only=True): not a PyTorch checkpoint or weights file"
    if needed is None and "Unsupported operand" in str(err):
        return f"{foreign}, or a damaged one"
    if needed is None and not isinstance(err, pickle.UnpicklingError):
        first = str(err).splitlines()[0] if str(err) else ""
        detail = f"{type(err).__name__}: {first}" if first else type(err).__name__
        if isinstance(err, OSError):  # the file, not its content (permissions, a device error)
            return f"cannot be read with torch.load(weights_only=True) ({detail})"
        return f"{foreign}, or a damaged one ({detail})"
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
    the build facts from its hyper-parameters (a `vos fit` one's also its data's ``load_scale``); a state
    dict (bare or under ``state_dict``) is taken as it is, with an empty card.
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
            "class_names": list(hparams.get("class_names") or []),
        }
        for count in ("num_classes", "num_frames"):  # a `vos fit` checkpoint has neither
            if hparams.get(count) is not None:
                card[count] = int(hparams[count])
        if "num_classes" not in card and (scale := _vos_load_scale(content, path)) is not None:
            card["load_scale"] = scale
        for init_only in ("weights", "encoder_weights", "backbone_weights"):  # the checkpoint replaces them
            card["architecture_args"].pop(init_only, None)
    student = {k[len(STUDENT_PREFIX) :]: v for k, v in state.items() if k.startswith(STUDENT_PREFIX)}
    if wrapped and student:
        state = student
    elif card:
        raise WeightsError(path, f"state_dict has no '{STUDENT_PREFIX}*' tensors")
    return LoadedWeights(state, card, path)


def _vos_load_scale(checkpoint: dict[str, Any], path: Path) -> float | None:
    """The ``data.load_scale`` a `vos fit` checkpoint's frames were resized by (None: not recorded).

    STM's segmentation depends on the size of objects in pixels: it runs best at the scale it trained at.
    """
    data = checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(data, dict) or data.get("load_scale") is None:
        return None
    scale = data["load_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
        raise WeightsError(path, f"records data.load_scale {scale!r}, which is not a positive number")
    return float(scale)


def read_weights_file(path: str | Path) -> LoadedWeights:
    """A local weights file: ``.safetensors`` (verified when a card allows), else a torch file."""
    path = Path(path).expanduser()
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    return read_torch_weights(path)


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


def read_tagged_safetensors(path: Path, fmt: str, what: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file whose metadata ``format`` is ``fmt``.

    For the small networks frugalseg saves with their settings in the metadata (the type policy,
    QNet). Never unpickles.

    Args:
        path: the file.
        fmt: the ``format`` its metadata must name.
        what: what the file holds, in words, for the errors ("quality network").

    Raises:
        WeightsError: naming the file, when it is missing, not safetensors, or of another format.
    """
    if not path.is_file():
        raise WeightsError(path, f"{what} file does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise WeightsError(path, f"not a readable safetensors file ({err})") from err
    if metadata.get("format") != fmt:
        article = "an" if what[:1] in "aeiou" else "a"
        raise WeightsError(path, f"not {article} {what} (metadata format is not {fmt!r})")
    return state, metadata
