"""The weight options of the tool commands, resolved before any work starts.

A SAM 2 id (``--sam2-checkpoint facebook/sam2.1-hiera-tiny``) becomes its cached checkpoint and sets
``--sam2-config`` from the id; an ``hf-hub:ORG/NAME[@REVISION]`` id given to ``--raft-weights``,
``--policy``, ``--diversity-weights`` or ``--encoder-weights`` becomes its cached weights file, and
one given to ``--stm-weights`` or ``--init-weights`` (a student's, with its card) is fetched and
verified. So an id that cannot be had (offline with an empty cache, a missing revision, a
tampered file) fails with exit code 2 before a data set is read or a folder is made, and the code
below the command line reads local files only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from frugalseg.errors import ConfigError, WeightsError

#: The SAM 2 config of a checkpoint file given without ``--sam2-config``.
DEFAULT_SAM2_CONFIG = "sam2.1_hiera_t"
#: A SAM 2 id as typed: ``ORG/NAME`` (``@REVISION``, ``#sha256=HEX``) without a weights file's suffix.
SAM2_ID_FORM = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w.-]+)?(#sha256=\w+)?")
WEIGHTS_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
#: Options read as plain weights files: a Hub id among them becomes its cached file.
FILE_OPTIONS = ("raft_weights", "flow_raft_weights", "policy", "diversity_weights", "encoder_weights")
#: Options of a student's weights, read with their card by the zoo: a Hub id is fetched and verified
#: here, and kept (the zoo reads it again from the cache).
STUDENT_OPTIONS = ("stm_weights", "init_weights")


def resolve_weight_options(args: argparse.Namespace) -> None:
    """Replace the Hub ids among ``args``' weight options by cached local files, in place.

    ``args.sam2_config`` left unset (None) becomes the config a SAM 2 id names, else
    ``args.sam2_default_config`` (`DEFAULT_SAM2_CONFIG` unless a command sets another, or None for
    commands that take it from a saved session).

    Raises:
        ConfigError: ``--sam2-config`` names another model than the SAM 2 id.
        WeightsError: an id that cannot be had or checked (it names the id and how to get the file).
    """
    checkpoint = getattr(args, "sam2_checkpoint", None)
    found = _sam2_id(checkpoint) if checkpoint is not None and not Path(checkpoint).is_file() else None
    if found is not None:
        config, path = found
        if args.sam2_config not in (None, config):
            raise ConfigError(
                "--sam2-config",
                f"{args.sam2_config} is not the model {checkpoint} names ({config}); leave --sam2-config out",
            )
        args.sam2_config, args.sam2_checkpoint = config, str(path)
    if hasattr(args, "sam2_config") and args.sam2_config is None:
        args.sam2_config = getattr(args, "sam2_default_config", DEFAULT_SAM2_CONFIG)
    for option in FILE_OPTIONS + STUDENT_OPTIONS:
        value = getattr(args, option, None)
        if isinstance(value, str) and value.startswith("hf-hub:"):
            from frugalseg.zoo import resolve, weights_path

            try:
                if option in FILE_OPTIONS:
                    setattr(args, option, str(weights_path(value)))
                else:
                    resolve(value)
            except WeightsError as err:
                raise WeightsError(err.path, f"{err.problem} (--{option.replace('_', '-')})") from err


def _sam2_id(checkpoint: str) -> tuple[str, Path] | None:
    """The config and cached file the SAM 2 id ``checkpoint`` names, None when it names none.

    Without the SAM 2 package, text that reads as an id (``hf-hub:…`` or ``ORG/NAME``) is refused with
    the install hint; other text is taken as a path, whose missing file is named where it is read.

    Raises:
        ConfigError: an id without the SAM 2 package.
    """
    from frugalseg.zoo import sam2_hub_checkpoint  # the zoo only when an id may need it

    try:
        return sam2_hub_checkpoint(checkpoint)
    except ImportError as err:
        if checkpoint.startswith("hf-hub:") or (
            SAM2_ID_FORM.fullmatch(checkpoint) and not checkpoint.lower().endswith(WEIGHTS_SUFFIXES)
        ):
            raise ConfigError(
                "--sam2-checkpoint",
                f"{checkpoint} is no file here, and a SAM 2 id needs the SAM 2 package (rf-sam-2 wheel): "
                "pip install 'frugalseg[sam2]'",
            ) from err
        return None
