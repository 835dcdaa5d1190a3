"""Weights by the names the ecosystem uses, fetched through the Hugging Face Hub's own cache.

* ``hf-hub:ORG/NAME[@REVISION]``: a model repository, as timm writes it: a frugalseg one (its
  ``model.safetensors`` and the card ``config.json`` that ``frugalseg zoo publish --hub-folder``
  writes), or any repository of a state dict (``model.safetensors``, else ``pytorch_model.bin``);
* SAM 2's own ids (``facebook/sam2.1-hiera-tiny``), with the checkpoint file and the config that
  ``sam2.build_sam.HF_MODEL_ID_TO_FILENAMES`` names for the id;
* encoder tags: smp's ``imagenet`` (its ``pretrained_settings``: a pinned ``smp-hub`` repository) and
  timm's ``pretrained: true`` (its ``pretrained_cfg.hf_hub_id``).

Every file goes through ``huggingface_hub.hf_hub_download``, so the cache (``HF_HOME``,
``HF_HUB_CACHE``), ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` are the library's, and nothing is fetched
unless named. A cached file is checked before it is read: against the hash the Hub recorded for it
(the name of its blob in the cache: the sha256 of a weights file, the git sha1 of a small one), against
the full sha256 of a frugalseg card, and against one the user gives (``…#sha256=HEX``, pip's hash
fragment). Safetensors are preferred; a torch file is read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from frugalseg.errors import MissingPackageError, WeightsError
from frugalseg.zoo._cards import frugalseg_version
from frugalseg.zoo._loading import (
    LoadedWeights,
    load_safetensors,
    load_state_dict_strictly,
    read_card,
    read_torch_weights,
    read_weights_file,
    sha256_file,
    verify_sha256,
)

HUB_PREFIX = "hf-hub:"
WEIGHTS_FILE = "model.safetensors"
TORCH_WEIGHTS_FILE = "pytorch_model.bin"
CONFIG_FILE = "config.json"
README_FILE = "README.md"
#: What a Hub repository of frugalseg holds (``frugalseg zoo publish --hub-folder``).
HUB_FILES = (WEIGHTS_FILE, CONFIG_FILE, README_FILE)
#: Keys of an ImageNet classifier that the encoders and backbones frugalseg builds do not have.
CLASSIFIER_PREFIXES = ("fc.", "classifier.")
_SHA_FRAGMENT = "#sha256="
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAM2_FOLDER = "configs/sam2.1/"


@dataclass(frozen=True)
class HubId:
    """A model repository on the Hub at a revision, with the sha256 its weights must have.

    Attributes:
        repo_id: ``ORG/NAME``.
        revision: a branch, tag or commit (None: ``main``).
        sha256: the full sha256 the user expects of its weights file (None: not given).
    """

    repo_id: str
    revision: str | None = None
    sha256: str | None = None

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def split_sha256(text: str) -> tuple[str, str | None]:
    """``text`` without a trailing ``#sha256=HEX`` (pip's hash fragment), and that full hash."""
    head, sep, digest = text.partition(_SHA_FRAGMENT)
    if not sep:
        return text, None
    if not _SHA256.fullmatch(digest):
        raise WeightsError(text, "#sha256= must be followed by a full sha256 (64 lower-case hex digits)")
    return head, digest


def parse_hub_id(text: str, prefix: str = HUB_PREFIX) -> HubId | None:
    """The `HubId` of ``hf-hub:ORG/NAME[@REVISION][#sha256=HEX]``; None for text without ``prefix``."""
    if not text.startswith(prefix):
        return None
    body, sha256 = split_sha256(text)  # errors name the whole id, prefix included
    repo_id, at, revision = body[len(prefix) :].partition("@")
    if not _REPO_ID.fullmatch(repo_id) or (at and not revision):
        raise WeightsError(
            text, f"not a Hub id: write {prefix}ORG/NAME or {prefix}ORG/NAME@REVISION (branch, tag or commit)"
        )
    return HubId(repo_id, revision or None, sha256)


def hub_file(hub: HubId, filename: str, *, optional: bool = False) -> Path | None:
    """``filename`` of ``hub`` from the Hugging Face cache (downloaded into it first when online), checked.

    Args:
        hub: the repository and revision.
        filename: the file in it.
        optional: return None when the Hub says (or the cache remembers) that the file does not exist.

    Raises:
        WeightsError: naming the id, when the repository, revision or file is not on the Hub, when
            the file is neither cached nor downloadable (offline), or differs from the Hub's record.
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = Path(
            hf_hub_download(
                hub.repo_id,
                filename,
                revision=hub.revision,
                library_name="frugalseg",
                library_version=frugalseg_version(),
                local_files_only=not _hub_resolves(),
            )
        )
    except LocalEntryNotFoundError as err:
        cached = try_to_load_from_cache(hub.repo_id, filename, revision=hub.revision)
        if optional and cached is not None and not isinstance(cached, str):  # the cache knows it is absent
            return None
        raise _not_cached(hub, filename) from err
    except EntryNotFoundError as err:
        if optional:
            return None
        raise WeightsError(str(hub), f"has no file {filename} at revision {hub.revision or 'main'}") from err
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise WeightsError(str(hub), _download_problem(hub, filename, err)) from err
    check_blob(path, hub, filename)
    return path


def _hub_resolves() -> bool:
    """Whether the Hub's host name resolves (or a proxy would resolve it): without, the cache alone is read.

    Offline, ``huggingface_hub`` retried each request five times, some 25 s before the error.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True  # the library reads the cache alone itself, or the proxy resolves the name
    host = urllib.parse.urlparse(constants.ENDPOINT).hostname
    try:
        socket.getaddrinfo(host, 443)
    except (OSError, UnicodeError):
        return False
    return True


#: The environment variables that send requests through a proxy (`requests` and `httpx` read them).
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


class NotCachedError(WeightsError):
    """A Hub file neither in the Hugging Face cache nor to be downloaded now (offline)."""


def _not_cached(hub: HubId, filename: str) -> NotCachedError:
    """The error for a file that is not in the cache and cannot be downloaded now."""
    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    why = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached"
    what = "" if filename in (WEIGHTS_FILE, TORCH_WEIGHTS_FILE, CONFIG_FILE) else f" {filename}"
    revision = f" --revision {hub.revision}" if hub.revision else ""
    unset = " (or unset HF_HUB_OFFLINE)" if offline else ""
    return NotCachedError(
        str(hub),
        f"{filename} (revision {hub.revision or 'main'}) is not in the Hugging Face cache "
        f"{constants.HF_HUB_CACHE} and cannot be downloaded ({why}); fetch it where there is a network "
        f"with `hf download {hub.repo_id}{what}{revision}` into the same HF_HOME{unset}, or give a local "
        "file instead",
    )


def _download_problem(hub: HubId, filename: str, err: Exception) -> str:
    """What went wrong, in words, for an error of ``hf_hub_download`` other than a missing file."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(err, RevisionNotFoundError):
        return f"has no revision {hub.revision!r} on the Hub (name a branch, tag or commit it has)"
    if isinstance(err, GatedRepoError):
        return "is a gated repository: accept its terms on the Hub, then log in with `hf auth login`"
    if isinstance(err, RepositoryNotFoundError):
        return "is not a repository on the Hub (or a private one: log in with `hf auth login`)"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"cannot download {filename} ({first})"


def check_blob(path: Path, hub: HubId, filename: str) -> str:
    """Check a cached file against the hash the Hub recorded: the name of its blob in the cache.

    A weights (LFS) file's blob is named by its sha256, a small file's by its git blob sha1. Returns
    the sha256 checked, or "" when there is none to check (a small file, or a cache of copies).

    Raises:
        WeightsError: naming the id and the cached file, when its content differs from the record.
    """
    blob = path.resolve()
    if blob.parent.name != "blobs":
        return ""
    if _SHA256.fullmatch(blob.name):
        actual = sha256_file(blob)
    elif _GIT_SHA1.fullmatch(blob.name):
        data = blob.read_bytes()
        actual = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    else:
        return ""
    if actual != blob.name:
        raise WeightsError(
            str(hub),
            f"{filename} in the Hugging Face cache ({blob}) hashes to {actual}, not {blob.name} as the Hub "
            "recorded: the cached file was changed after download; delete it (`hf cache rm "
            f"model/{hub.repo_id}`) and fetch it again. Refusing to load it",
        )
    return actual if len(actual) == 64 else ""


def hub_weights_file(hub: HubId) -> Path:
    """The weights file of a repository: ``model.safetensors``, else ``pytorch_model.bin``; checked.

    A sha256 given with the id is compared in full.
    """
    path = hub_file(hub, WEIGHTS_FILE, optional=True) or hub_file(hub, TORCH_WEIGHTS_FILE, optional=True)
    if path is None:
        revision = hub.revision or "main"
        raise WeightsError(
            str(hub), f"holds neither {WEIGHTS_FILE} nor {TORCH_WEIGHTS_FILE} at revision {revision}"
        )
    if hub.sha256 is not None:
        verify_sha256(path, hub.sha256, f"{hub}#sha256= (the hash you gave)")
    return path


def hub_card(hub: HubId) -> dict[str, Any] | None:
    """The frugalseg card of a repository: its ``config.json`` when that says ``"library": "frugalseg"``.

    None for a repository without one, or whose ``config.json`` is another library's (timm's, smp's).
    """
    path = hub_file(hub, CONFIG_FILE, optional=True)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(str(hub), f"{CONFIG_FILE} is not valid JSON ({err})") from err
    return read_card(path) if isinstance(config, dict) and config.get("library") == "frugalseg" else None


def load_hub_weights(hub: HubId) -> LoadedWeights:
    """The verified state dict of a repository and its card (a frugalseg repository's ``config.json``).

    The weights must have the full sha256 of the card, of the Hub's record and of ``hub.sha256``;
    a ``pytorch_model.bin`` is read with ``weights_only=True`` and never unpickled.
    """
    card = hub_card(hub)
    path = hub_weights_file(hub)
    if path.suffix == ".safetensors":
        loaded = (
            load_safetensors(path, card, f"{hub}'s {CONFIG_FILE}")
            if card is not None
            else load_safetensors(path)
        )
    else:
        loaded = read_torch_weights(path)
        if card is not None:
            loaded.verified = verify_sha256(path, card["sha256"], f"{hub}'s {CONFIG_FILE}")
            loaded.card = card
    blob = path.resolve().name  # checked against the file by hub_file
    loaded.verified = loaded.verified or hub.sha256 or (blob if _SHA256.fullmatch(blob) else "")
    return loaded


def sam2_hub_checkpoint(name: str) -> tuple[str, Path] | None:
    """The config and cached checkpoint that a SAM 2 id names; None when ``name`` is no SAM 2 id.

    ``name`` is SAM 2's own id (``facebook/sam2.1-hiera-tiny``, as ``SAM2VideoPredictor.from_pretrained``
    takes it), optionally with ``hf-hub:``, ``@REVISION`` and ``#sha256=HEX``. The file is the one
    ``sam2.build_sam.HF_MODEL_ID_TO_FILENAMES`` names, and the config (``sam2.1_hiera_t``) its own.

    Raises:
        WeightsError: an ``hf-hub:`` id of no SAM 2 2.1 model, or a file that cannot be had or checked.
        MissingPackageError: the SAM 2 package is not installed.
    """
    try:
        from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES
    except ImportError as err:
        raise MissingPackageError(
            "SAM 2 ids need the SAM 2 package (rf-sam-2 wheel): pip install 'frugalseg[sam2]'"
        ) from err
    known = {k: v for k, v in HF_MODEL_ID_TO_FILENAMES.items() if v[0].startswith(_SAM2_FOLDER)}
    text = name if name.startswith(HUB_PREFIX) else HUB_PREFIX + name
    repo_id = split_sha256(text)[0][len(HUB_PREFIX) :].partition("@")[0]
    if repo_id not in known:
        if name.startswith(HUB_PREFIX) or repo_id in HF_MODEL_ID_TO_FILENAMES:
            raise WeightsError(name, f"not a SAM 2.1 model id; SAM 2.1 ids: {', '.join(known)}")
        return None
    hub = parse_hub_id(text)
    assert hub is not None  # text starts with the prefix
    config, filename = known[repo_id]
    path = hub_file(hub, filename)
    assert path is not None  # not optional
    if hub.sha256 is not None:
        verify_sha256(path, hub.sha256, f"{hub}#sha256= (the hash you gave)")
    return Path(config).stem, path


def weights_path(spec: str | Path) -> Path:
    """A local file for a weights option: a path as it is, an ``hf-hub:`` id's cached weights file.

    For the options read as files by code that needs no card (RAFT, QNet, the type policy, a SAM 2
    checkpoint given as a file): the commands call it before any work starts, so an id that cannot
    be had offline fails at once.
    """
    hub = parse_hub_id(str(spec))
    return Path(spec).expanduser() if hub is None else hub_weights_file(hub)


def encoder_hub_id(
    spec: str | bool, smp_encoder: str | None = None, timm_model: str | None = None
) -> HubId | None:
    """The repository an encoder option names; None for a local path.

    Args:
        spec: ``True`` (timm: the model's default pretrained weights, its ``pretrained_cfg.hf_hub_id``),
            an smp tag (``imagenet``: the pinned repository of smp's ``pretrained_settings``), an
            ``hf-hub:`` id, or a local path.
        smp_encoder: the smp encoder's name, when the encoder is smp's.
        timm_model: the timm model's name, when the network is timm's.
    """
    if spec is True and timm_model is not None:
        import timm

        config = timm.models.get_pretrained_cfg(timm_model)
        if config is None or not config.hf_hub_id:
            raise WeightsError(f"timm:{timm_model}", "timm names no pretrained weights on the Hub for it")
        repo_id, _, revision = config.hf_hub_id.partition("@")
        return HubId(repo_id, revision or None)
    if not isinstance(spec, str):
        raise WeightsError(str(spec), "encoder weights are a file, an hf-hub: id, an smp tag or true (timm)")
    hub = parse_hub_id(spec)
    is_tag = not Path(spec).suffix and "/" not in spec and not Path(spec).is_file()
    if hub is not None or smp_encoder is None or not is_tag:
        return hub
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders.get(smp_encoder, {}).get("pretrained_settings", {})
    if spec not in settings:
        unset = (
            "; a key given alone on the command line is text: for no weights write encoder_weights: null "
            "under model.student_args in the config file"
            if spec.lower() in ("none", "null")
            else ""
        )
        tags = ", ".join(settings)
        problem = f"neither a weights file nor a tag of smp encoder {smp_encoder} ({tags}){unset}"
        raise WeightsError(spec, problem)
    return HubId(settings[spec]["repo_id"], settings[spec].get("revision"))


def read_encoder_weights(
    spec: str | Path | bool, smp_encoder: str | None = None, timm_model: str | None = None
) -> LoadedWeights:
    """The weights an encoder option names (see `encoder_hub_id`): a local file or a Hub repository's."""
    hub = encoder_hub_id(str(spec) if isinstance(spec, Path) else spec, smp_encoder, timm_model)
    return read_weights_file(Path(str(spec))) if hub is None else load_hub_weights(hub)


def load_encoder_weights(
    encoder: nn.Module, spec: str | Path | bool, smp_encoder: str | None = None, timm_model: str | None = None
) -> None:
    """Load the weights an encoder option names into ``encoder`` strictly, without an ImageNet classifier.

    Args:
        encoder: the encoder or backbone (its own keys: ``conv1.weight``, ``layer1.0.bn1.running_mean`` …).
        spec: a local ``.safetensors`` / torch file, an ``hf-hub:`` id, smp's tag (``imagenet``) with
            ``smp_encoder``, or ``True`` with ``timm_model`` (timm's default pretrained weights).
        smp_encoder: the smp encoder's name.
        timm_model: the timm model's name.

    Raises:
        WeightsError: naming the file or id, when it cannot be had, checked or fitted (keys listed).
    """
    loaded = read_encoder_weights(spec, smp_encoder, timm_model)
    state = {k: v for k, v in loaded.state_dict.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    load_state_dict_strictly(encoder, state, loaded.path)
