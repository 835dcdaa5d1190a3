"""Resolving weights named by a published name, a path, a URL or a Hub id, and loading them into a model."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from torch import nn

from frugalseg.data.io import cache_dir, write_bytes_atomic
from frugalseg.errors import WeightsError
from frugalseg.zoo._checkpoints import INDEX_FILE, checkpoints_dirs, inside, read_index
from frugalseg.zoo._hub import CONFIG_FILE as HUB_CONFIG_FILE
from frugalseg.zoo._hub import WEIGHTS_FILE as HUB_WEIGHTS_FILE
from frugalseg.zoo._hub import load_hub_weights, parse_hub_id
from frugalseg.zoo._loading import (
    LoadedWeights,
    check_compatible,
    load_safetensors,
    parse_card,
    read_card,
    read_weights_file,
    sha256_file,
    verify_sha256,
)


def weights_cache_dir() -> Path:
    """Where weights downloaded from a URL are kept: ``$FRUGALSEG_CACHE/weights``."""
    return cache_dir() / "weights"


def _is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in ("http", "https", "file")


def url_cache_path(url: str, folder: Path | None = None) -> Path:
    """Where ``url`` is kept: ``folder/<sha256 of the full URL, 32 hex digits>/<its file name>``.

    Keyed by the whole URL, never by its last path segment alone, so ``…/a/model.ckpt`` and
    ``…/b/model.ckpt`` are two files. ``folder`` defaults to `weights_cache_dir`.
    """
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    return (folder or weights_cache_dir()) / key / name


def download(url: str, folder: Path | None = None) -> Path:
    """The file at ``url``, downloaded atomically (with a progress bar) into its `url_cache_path`.

    A cached copy is reused only while its content has the sha256 recorded when it was fetched
    (``<name>.sha256`` beside it). A failed download leaves nothing behind, not even its folder.

    Raises:
        WeightsError: naming the cached copy, when it changed after it was downloaded.
        OSError: the URL cannot be read.
    """
    destination = url_cache_path(url, folder)
    record = _record(destination)
    if destination.is_file() and record.is_file():
        recorded, actual = record.read_text(encoding="utf-8").strip(), sha256_file(destination)
        if actual != recorded:
            raise WeightsError(
                destination,
                f"changed after it was downloaded from {url} (sha256 {recorded} then, {actual} now); "
                "refusing to load it: delete it to download the file again",
            )
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as handle:
            _copy_with_progress(response, handle, destination.name)
        write_bytes_atomic(record, sha256_file(tmp).encode("ascii"))
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        _discard_download(destination)
        raise
    return destination


def _record(path: Path) -> Path:
    """The file beside a download that records its sha256 when it was fetched."""
    return path.with_name(path.name + ".sha256")


def _discard_download(path: Path) -> None:
    """Remove a downloaded file, its sha256 record, and its folder once empty, so that it is fetched again."""
    path.unlink(missing_ok=True)
    _record(path).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the folder still holds another download
        path.parent.rmdir()


def _copy_with_progress(response: Any, handle: Any, name: str) -> None:
    """Copy an HTTP response into ``handle`` in 1 MiB chunks with a transient progress bar."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    total = int(response.headers.get("Content-Length") or 0) or None
    columns = (TextColumn(name), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("download", total=total)
        for chunk in iter(lambda: response.read(1 << 20), b""):
            handle.write(chunk)
            progress.advance(task, len(chunk))


def _from_url(url: str) -> LoadedWeights:
    """A published file downloaded into the cache, verified against its card (``<stem>.json`` beside it).

    The card is read from its URL each time (a card published again is seen) and kept in the cache,
    which serves it when the URL cannot be read (offline). A cached copy the card does not describe
    is downloaded again; a download that fails the check is deleted, so the next call fetches it again.
    """
    name = Path(urllib.parse.urlparse(url).path).name
    if not name.endswith(".safetensors"):
        raise WeightsError(url, "a weights URL must name a .safetensors file")
    card_url = url[: -len(".safetensors")] + ".json"
    card = _fresh_card(card_url)
    cached = url_cache_path(url)
    record = _record(cached)
    if record.is_file() and record.read_text(encoding="utf-8").strip() != card["sha256"]:
        _discard_download(cached)  # fetched before the card was published again, or a bad download
    try:
        path = download(url)
    except OSError as err:
        raise WeightsError(url, f"cannot download ({err})") from err
    try:
        return load_safetensors(path, card, f"the card {card_url}")
    except WeightsError as err:
        _discard_download(path)
        raise WeightsError(
            url, f"{err.problem}; the download was deleted, so the next try fetches it again"
        ) from err


def _fresh_card(card_url: str) -> dict[str, Any]:
    """The model card at ``card_url``, read anew and cached; the cached one when the URL cannot be read."""
    cached = url_cache_path(card_url)
    try:
        with urllib.request.urlopen(card_url, timeout=60) as response:
            data = response.read()
    except OSError as err:
        if not cached.is_file():
            weights = card_url[: -len(".json")] + ".safetensors"
            raise WeightsError(
                card_url,
                f"cannot download the model card that holds the sha256 of {weights} ({err}); the card is "
                "read beside the weights, and kept in the cache for later runs offline",
            ) from err
        return read_card(cached)
    card = parse_card(data, card_url)
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(cached, data)
    return card


def resolve(weights: str | Path, checkpoints: str | Path | None = None) -> LoadedWeights:
    """Read verified weights from a published name, a local path or a URL.

    * published name: looked up in the ``index.json`` of each folder of `checkpoints_dirs`
      (``checkpoints`` alone when given; else ``$FRUGALSEG_CHECKPOINTS``, then the weights that ship
      with frugalseg); the index and the card must record the same full sha256, and the file must have it;
    * ``*.safetensors`` path: verified against a card beside it (see `load_safetensors`);
    * a folder of a frugalseg Hub repository (``zoo publish --hub-folder``, ``hf download --local-dir``):
      its ``model.safetensors`` verified against its ``config.json``;
    * other paths (``*.ckpt``, ``*.pt``): a ``frugalseg fit`` checkpoint's student or a bare state
      dict, read with ``weights_only=True``;
    * ``http(s)://`` or ``file://`` URL: downloaded (only because it was asked for) into
      ``$FRUGALSEG_CACHE/weights`` (keyed by the full URL) and verified against its card, read from
      the URL each time and cached for when it cannot be (`_from_url`);
    * ``hf-hub:ORG/NAME[@REVISION][#sha256=HEX]``: a Hub repository through the Hugging Face cache
      (a frugalseg one, as ``frugalseg zoo publish --hub-folder`` writes it, or a state dict), verified
      against its card, the Hub's record and the given sha256 (`load_hub_weights`).
    """
    text = str(weights)
    hub = parse_hub_id(text) if isinstance(weights, str) else None
    if hub is not None:
        return load_hub_weights(hub)
    if isinstance(weights, str) and _is_url(text):
        return _from_url(text)
    path = Path(text).expanduser()
    if path.is_file():
        return read_weights_file(path)
    card_path = path / HUB_CONFIG_FILE
    if card_path.is_file():
        return load_safetensors(path / HUB_WEIGHTS_FILE, read_card(card_path), str(card_path))
    folders = checkpoints_dirs(checkpoints)
    published: list[str] = []
    for directory in folders:
        index = read_index(directory)
        entry = index["models"].get(text)
        if entry is not None:
            return _published(directory, text, entry)
        published += list(index["models"])
    if path.is_dir():
        raise WeightsError(
            path, f"a folder, not a weights file, and no frugalseg Hub folder (it holds no {HUB_CONFIG_FILE})"
        )
    if path.suffix in (".safetensors", ".ckpt", ".pt", ".pth") or os.sep in text:
        raise WeightsError(path, "weights file does not exist")
    where = ", ".join(str(folder / INDEX_FILE) for folder in folders)
    raise WeightsError(
        text,
        f"not a published name in {where} (published: {', '.join(published) or 'none'}), a file, a URL "
        "or an hf-hub:ORG/NAME id",
    )


def missing_weights_file(weights: str | Path) -> bool:
    """Whether ``weights`` names a local weights file (by its suffix, or a folder in it) that does not exist.

    `resolve` refuses it when it loads it; a module checks it when it is built, before a run prepares data.
    """
    text = str(weights)
    if parse_hub_id(text) is not None or _is_url(text):
        return False
    path = Path(text).expanduser()
    named = path.suffix in (".safetensors", ".ckpt", ".pt", ".pth") or os.sep in text
    return named and not path.exists()


def _published(directory: Path, name: str, entry: Any) -> LoadedWeights:
    """The weights an index entry names, with its card; both hashes must be full and agree with the file."""
    index_path = directory / INDEX_FILE
    if not isinstance(entry, dict):
        raise WeightsError(index_path, f"entry {name!r} is not a table")
    card_path = inside(directory, entry.get("card"), index_path)
    file_path = inside(directory, entry.get("file"), index_path)
    card = read_card(card_path)
    verify_sha256(file_path, entry.get("sha256"), str(index_path))
    if card["sha256"] != entry["sha256"]:
        raise WeightsError(
            card_path, f"card sha256 {card['sha256']!r} differs from the index's {entry['sha256']}"
        )
    return load_safetensors(file_path, card, str(index_path))


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
