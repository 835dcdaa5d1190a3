"""Checkpoints folders: published files, their cards and the ``index.json`` that lists them.

The package ships its published weights (``frugalseg.checkpoints``, the repository's
``checkpoints/`` folder), so a published name resolves from an installed wheel; users add folders
of their own with ``$FRUGALSEG_CHECKPOINTS`` or by naming one. Every file an index names must lie in
its folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors
from torch import Tensor

import frugalseg
from frugalseg.data.io import write_bytes_atomic, write_json_atomic
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.zoo._cards import (
    CARD_FORMAT,
    check_name,
    frugalseg_version,
    hub_readme,
    model_card_markdown,
    model_facts,
)
from frugalseg.zoo._hub import CONFIG_FILE as HUB_CONFIG_FILE
from frugalseg.zoo._hub import HUB_FILES
from frugalseg.zoo._hub import README_FILE as HUB_README_FILE
from frugalseg.zoo._hub import WEIGHTS_FILE as HUB_WEIGHTS_FILE
from frugalseg.zoo._loading import METADATA_KEY

INDEX_FILE = "index.json"
INDEX_FORMAT = 1
_STATS = ("running_mean", "running_var")  # BatchNorm statistics: tensors, but not parameters


def packaged_checkpoints() -> Path:
    """The folder of the published weights that ship with frugalseg (``frugalseg/checkpoints``).

    ``checkpoints/`` of the repository links to it.
    """
    return Path(frugalseg.__file__).parent / "checkpoints"


def checkpoints_dirs(directory: str | Path | None = None) -> list[Path]:
    """Folders searched for a published name.

    ``directory`` alone when given, else where publishing writes without ``--out`` (`publish_dir`:
    ``$FRUGALSEG_CHECKPOINTS``, or ``checkpoints/`` of the working folder when it holds an index) and
    then the packaged folder.
    """
    if directory is not None:
        return [Path(directory)]
    published = publish_dir()
    searched = (
        [published] if os.environ.get("FRUGALSEG_CHECKPOINTS") or (published / INDEX_FILE).is_file() else []
    )
    packaged = packaged_checkpoints()
    return [*(d for d in searched if d.resolve() != packaged.resolve()), packaged]


def publish_dir() -> Path:
    """Where publishing and converting write without ``--out``.

    ``$FRUGALSEG_CHECKPOINTS``, else ``checkpoints/`` of the working folder (in a clone, the shipped
    folder).
    """
    env = os.environ.get("FRUGALSEG_CHECKPOINTS")
    return Path(env) if env else Path("checkpoints")


def publish_target(out: str | Path | None) -> Path:
    """The folder publishing and converting write into: ``out``, else `publish_dir`.

    Raises:
        ConfigError: no ``out`` where `publish_dir` is the package's own folder (a clone's ``checkpoints/``
            is, and no ``$FRUGALSEG_CHECKPOINTS`` is set): weights written there ship with the package.
    """
    if out is not None:
        return Path(out)
    folder = publish_dir()
    packaged = packaged_checkpoints()
    if not os.environ.get("FRUGALSEG_CHECKPOINTS") and folder.resolve() == packaged.resolve():
        raise ConfigError(
            "--out",
            f"not given, and {folder}/ here is frugalseg's own checkpoints folder ({packaged}), which ships "
            f"with the package: give --out (or $FRUGALSEG_CHECKPOINTS) for a folder of your own, or --out "
            f"{folder} to add to the package's",
        )
    return folder


def checkpoints_dir() -> Path:
    """The first folder `checkpoints_dirs` searches: where listing and converting look by default."""
    return checkpoints_dirs()[0]


def inside(directory: Path, name: Any, where: Path) -> Path:
    """``directory / name`` for a plain file name.

    Raises `WeightsError` naming ``where`` for anything that could reach outside the folder (a path,
    ``..``, not a string).
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise WeightsError(where, f"names {name!r}, which is not a file name inside {directory}; refusing it")
    return directory / name


def read_index(directory: str | Path) -> dict[str, Any]:
    """The index of a checkpoints folder (empty when it has none yet); `WeightsError` for a file."""
    if Path(directory).exists() and not Path(directory).is_dir():
        raise WeightsError(directory, f"not a folder: a checkpoints folder holds {INDEX_FILE} and weights")
    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        return {"format": INDEX_FORMAT, "models": {}}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
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


def write_weights(
    state_dict: Mapping[str, Tensor], card: dict[str, Any], out: str | Path, dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """Write ``<name>-<sha8>.safetensors`` and its card (JSON + Markdown); update the folder's index.

    ``card`` must hold at least ``name`` and the model facts (:func:`model_facts`); the file name,
    size, dtype, sha256 and frugalseg version are added here. ``dtype`` casts floating tensors
    (e.g. ``torch.float16`` halves the file). Returns the completed card. A damaged index is refused
    before any file is written, and a failure on the way removes the files this call made.
    """
    out = Path(out)
    read_index(out)
    data, card = _weights_and_card(state_dict, card, dtype)
    stem = f"{card['name']}-{card['sha256'][:8]}"
    card = {**card, "file": f"{stem}.safetensors", "card": f"{stem}.json"}
    weights, card_file, markdown = out / card["file"], out / card["card"], out / f"{stem}.md"
    made = [path for path in (weights, card_file, markdown) if not path.exists()]
    try:
        write_bytes_atomic(weights, data)
        write_json_atomic(card_file, card, sort_keys=False)
        write_bytes_atomic(markdown, model_card_markdown(card).encode("utf-8"))
        update_index(out, card)
    except BaseException:
        for path in made:
            if path.is_file():
                path.unlink()
        raise
    return card


def write_hub_folder(
    state_dict: Mapping[str, Tensor],
    card: dict[str, Any],
    folder: str | Path,
    dtype: torch.dtype | None = None,
    repo_id: str | None = None,
) -> dict[str, Any]:
    """Write what a Hub repository of frugalseg holds: ``model.safetensors``, ``config.json``, ``README.md``.

    ``config.json`` is the card (architecture, classes, palette, normalisation, clip length, the
    weights' full sha256, training record and metrics) with ``"library": "frugalseg"``, which makes
    ``get_model("hf-hub:ORG/NAME")`` read it; ``README.md`` is the model card with the Hub's YAML
    metadata (`hub_readme`). ``folder`` must be new or empty, or hold only these files (replaced).
    Returns the completed card.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WeightsError(folder, "--hub-folder must be a folder (new or empty), not a file")
    others = sorted(p.name for p in folder.iterdir() if p.name not in HUB_FILES) if folder.is_dir() else []
    if others:
        held = ", ".join(others)
        raise WeightsError(folder, f"--hub-folder must be a new or empty folder; it holds {held}")
    data, card = _weights_and_card(state_dict, card, dtype)
    card = {"library": "frugalseg", **card, "file": HUB_WEIGHTS_FILE, "card": HUB_CONFIG_FILE}
    readme = hub_readme(card, repo_id or f"ORG/{card['name']}").encode("utf-8")
    write_bytes_atomic(folder / HUB_WEIGHTS_FILE, data)
    write_json_atomic(folder / HUB_CONFIG_FILE, card, sort_keys=False)
    write_bytes_atomic(folder / HUB_README_FILE, readme)
    return card


def _weights_and_card(
    state_dict: Mapping[str, Tensor], card: dict[str, Any], dtype: torch.dtype | None
) -> tuple[bytes, dict[str, Any]]:
    """The safetensors bytes of ``state_dict`` (build facts in its header) and the card completed for them."""
    check_name(card["name"])
    tensors: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    data = save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(model_facts(card), sort_keys=True)})
    floating = sorted(
        {str(v.dtype).removeprefix("torch.") for v in tensors.values() if v.is_floating_point()}
    )
    return data, {
        "card_format": CARD_FORMAT,
        **card,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "dtype": ",".join(floating),
        "num_parameters": int(
            sum(v.numel() for k, v in tensors.items() if v.is_floating_point() and not k.endswith(_STATS))
        ),
        "frugalseg_version": frugalseg_version(),
        "published": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
