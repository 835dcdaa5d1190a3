"""What the ``annotate`` commands share: data set layouts, engine and click model, the diversity selector."""

from __future__ import annotations

import argparse
from typing import Any

FORMATS = ("davis", "mose", "video")


def comma_names(text: str) -> list[str]:
    """A comma-separated list of names (an option's type); empty parts dropped, none at all refused."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def diversity_options(parser: argparse.ArgumentParser) -> None:
    """What the ``diversity`` frame selector compares."""
    parser.add_argument(
        "--diversity-features",
        default="descriptor",
        help="features of the diversity selector: descriptor (weight-free, default), qnet (from `annotate "
        "train-qnet`) or timm:<model> (a pretrained image encoder), the last two with --diversity-weights",
    )
    parser.add_argument("--diversity-weights", default=None, help="the QNet or encoder weights file")


def engine_options(
    parser: argparse.ArgumentParser, *, defaults: bool, engine: bool = True, clicks: bool = True
) -> None:
    """The propagation engine (``engine``), the click-to-mask model (``clicks``) and their options.

    The choices and the ``--<member>-<field>`` flags come from the registries and each member's
    ``Options`` (`frugalseg.options`). ``defaults``: the names default to ``flow`` and
    `DEFAULT_CLICK_MODEL` (else None: a session's own settings apply).
    """
    from frugalseg.active.objects.engines import ENGINES
    from frugalseg.active.objects.tools.click_models import CLICK_MODELS, DEFAULT_CLICK_MODEL
    from frugalseg.options import add_option_flags, registry_options

    families = [
        (option, registry, default, noun)
        for option, registry, default, noun, used in (
            ("engine", ENGINES, "flow", "propagation engine", engine),
            ("click_model", CLICK_MODELS, DEFAULT_CLICK_MODEL, "click-to-mask model", clicks),
        )
        if used
    ]
    nouns = " and ".join(noun for *_, noun in families)
    group = parser.add_argument_group(nouns + ("" if defaults else " (to start a session)"))
    for option, registry, default, noun in families:
        group.add_argument(
            f"--{option.replace('_', '-')}",
            default=default if defaults else None,
            choices=tuple(registry),
            help=f"the {noun} (default {default}); its options are the --<name>-… flags below",
        )
    add_option_flags(group, registry_options(registry for _, registry, *_ in families))
    # Unset SAM 2 options stay unset (None): SAM2Options' default, or a saved session's, applies.
    parser.set_defaults(sam2_default_config=None)


def chosen_options(
    args: argparse.Namespace, option: str, registry: Any, *, per_process: bool = False
) -> dict[str, Any]:
    """The options the command line gives the member ``--engine`` / ``--click-model`` names.

    ``per_process``: a ``device`` left at ``auto`` is this process's own GPU (`process_device`).
    """
    import dataclasses

    from frugalseg.cli.label import process_device
    from frugalseg.options import given_options, options_class

    name = getattr(args, option)
    options_type = options_class(registry, name, option=option, noun=option.replace("_", " "))
    options = given_options(vars(args), name, options_type)
    if per_process and "device" in {f.name for f in dataclasses.fields(options_type)}:
        options["device"] = process_device(options.get("device", "auto"), args)
    return options
