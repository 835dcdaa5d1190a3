"""Building SAM 2 predictors from the `rf-sam-2` wheel (imported as ``sam2``) and a local checkpoint.

Every SAM 2 network of the package goes through here, so a config name, a checkpoint file and a
device are checked in one place and nothing is ever downloaded. The three SAM 2 members (the
propagation engine `frugalseg.autolabel.sam2_propagate.SAM2Propagator`, the loop engine
`frugalseg.active.objects.engines.SAM2LoopEngine` and the click model
`frugalseg.active.objects.tools.click_models.SAM2Clicks`) take one `SAM2Options` and load their model
with `load_sam2`, which also gives the first keys of their recorded ``settings``.

What the wheel allows, found by trying it (rf-sam-2 1.0.3):

- The model is built from the wheel's own hydra configs (``configs/sam2.1/<name>.yaml``, composed
  by name because ``import sam2`` registers the package as hydra's config module). Building needs
  no checkpoint: the modules come up randomly initialised, which is what the tests use.
- ``image_size`` (1024 in every config) can be overridden at build time: the parameter shapes do
  not depend on it (the Hiera position embedding is interpolated, the RoPE tables of the memory
  attention are recomputed for the feature size met), so a 1024 checkpoint loads into a 64 model.
  On an idle 2-core CPU, 5 frames of 3 objects take about 47 s at 1024, 1 s at 256 and 0.4 s at
  128; the tests use 64. On a busy CPU one torch thread is much faster than two for small sizes.
- The wheel has no compiled ``sam2._C`` extension; without it the video predictor's hole filling
  of mask scores only warns on every frame, so it is turned off unless asked for.
- Official checkpoints are ``{"model": state_dict}`` and load with ``weights_only=True``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from frugalseg.data.files import sha256_file
from frugalseg.errors import ConfigError, DataError, MissingPackageError, WeightsError

SAM2_CONFIGS: tuple[str, ...] = ("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l")
INSTALL_HINT = "pip install 'frugalseg[sam2]'"
_CONFIG_FOLDER = "configs/sam2.1"


@dataclass(frozen=True)
class SAM2Options:
    """The options of every SAM 2 network of the package (engines and click model), as one object.

    Attributes:
        config: SAM 2 config name (``sam2.1_hiera_t`` … ``sam2.1_hiera_l``).
        checkpoint: the local checkpoint file of that config; None only with ``random_weights``.
        image_size: the model's input size, a multiple of 64 (None: the config's, 1024).
        device: torch device; ``auto`` takes CUDA when there is one.
        random_weights: a randomly initialised model (tests and timings; not on the command line).
    """

    config: str = field(default="sam2.1_hiera_t", metadata={"choices": SAM2_CONFIGS, "help": "SAM 2 config"})
    checkpoint: str | None = field(
        default=None,
        metadata={
            "path": True,
            "help": "SAM 2 checkpoint: a local file of --sam2-config, or SAM 2's id "
            "(facebook/sam2.1-hiera-tiny, …-small, …-base-plus, …-large), fetched into the Hugging Face "
            "cache (it sets the config)",
        },
    )
    image_size: int | None = field(
        default=None, metadata={"type": int, "help": "SAM 2 input size, a multiple of 64 (default 1024)"}
    )
    device: str = field(default="auto", metadata={"help": "torch device, auto: cuda if there is one"})
    random_weights: bool = field(default=False, metadata={"cli": False})


@dataclass(frozen=True)
class SAM2Model:
    """A SAM 2 predictor loaded by `load_sam2`, with what a run records of its checkpoint.

    Attributes:
        predictor: the wheel's ``SAM2VideoPredictor`` or ``SAM2ImagePredictor``, in eval mode.
        config: its config name.
        checkpoint: the checkpoint file it was loaded from (None: random weights).
        checkpoint_sha256: that file's sha256 (None: random weights).
        device: the device it was loaded on (``auto`` resolved).
    """

    predictor: Any
    config: str
    checkpoint: Path | None
    checkpoint_sha256: str | None
    device: str

    @property
    def settings(self) -> dict[str, Any]:
        """Config and checkpoint (file name and sha256): the first keys of each SAM 2 member's settings."""
        return {
            "config": self.config,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.name,
            "checkpoint_sha256": self.checkpoint_sha256,
        }


def load_sam2(options: SAM2Options, kind: Literal["video", "image"], *, needed_by: str) -> SAM2Model:
    """The SAM 2 predictor of ``kind`` that ``options`` describe, its options checked before it is built.

    Args:
        options: config, checkpoint, input size, device and random weights.
        kind: ``video`` (`build_sam2_video_predictor`) or ``image`` (`build_sam2_image_predictor`).
        needed_by: the member, as the error without a checkpoint names it (``the sam2 engine``).

    Raises:
        ConfigError: an unknown config, an input size that is not a multiple of 64, or no checkpoint
            without ``random_weights``.
        DataError: a checkpoint file that is missing, unreadable or of another config.
    """
    config_file(options.config)  # unknown names fail before the checkpoint is read
    check_image_size(options.image_size)
    if options.checkpoint is None and not options.random_weights:
        raise ConfigError(
            "sam2_checkpoint", f"{needed_by} needs a SAM 2 checkpoint file (--sam2-checkpoint FILE)"
        )
    device = resolve_device(options.device)
    build = build_sam2_video_predictor if kind == "video" else build_sam2_image_predictor
    sizes = {} if options.image_size is None else {"image_size": options.image_size}
    predictor = build(
        options.config, options.checkpoint, device, random_weights=options.random_weights, **sizes
    )
    checkpoint = None if options.checkpoint is None else Path(options.checkpoint)
    sha256 = None if checkpoint is None else sha256_file(checkpoint)
    return SAM2Model(predictor, options.config, checkpoint, sha256, device)


def import_sam2() -> ModuleType:
    """The ``sam2`` package (with its builders loaded); a `MissingPackageError` when it is missing."""
    try:
        import sam2
        import sam2.build_sam  # noqa: F401  (registers the builders used below)
    except ImportError as err:
        raise MissingPackageError(
            f"the SAM 2 engines need the SAM 2 package (rf-sam-2 wheel, imported as `sam2`), which is not "
            f"installed: {INSTALL_HINT}"
        ) from err
    module: ModuleType = sam2
    return module


def resolve_device(device: str) -> str:
    """``device``, with ``"auto"`` read as CUDA when there is a GPU and the CPU otherwise."""
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def config_file(config: str) -> str:
    """The wheel's hydra config path for a config name such as ``sam2.1_hiera_t``."""
    if config not in SAM2_CONFIGS:
        raise ConfigError(
            "sam2_config", f"unknown SAM 2 config {config!r}; valid configs: {', '.join(SAM2_CONFIGS)}"
        )
    return f"{_CONFIG_FOLDER}/{config}.yaml"


def check_image_size(image_size: int | None) -> None:
    """Raise `ConfigError` unless ``image_size`` is None (the config's) or a positive multiple of 64."""
    if image_size is not None and (image_size < 64 or image_size % 64):
        raise ConfigError("sam2_image_size", f"must be a positive multiple of 64, got {image_size}")


def build_sam2_video_predictor(
    config: str,
    checkpoint: str | Path | None,
    device: str = "cpu",
    *,
    random_weights: bool = False,
    **options: Any,
) -> Any:
    """A ``sam2.sam2_video_predictor.SAM2VideoPredictor`` in eval mode on ``device``.

    The checkpoint is read and checked against ``config`` before the model is built, so a wrong
    file fails at once.

    Args:
        config: one of `SAM2_CONFIGS`.
        checkpoint: the local SAM 2 checkpoint file of that config; None only with ``random_weights``.
        device: torch device of the model.
        random_weights: allow ``checkpoint=None`` and keep the random initialisation (tests).
        **options: model settings that override the config, e.g. ``image_size=256``.
    """
    state = _checked_state(config, checkpoint, random_weights)
    build_sam = import_sam2().build_sam
    model = build_sam.build_sam2_video_predictor(
        config_file(config), None, device="cpu", hydra_overrides_extra=_overrides(options)
    )
    if "fill_hole_area" in options:
        model.fill_hole_area = options["fill_hole_area"]
    elif importlib.util.find_spec("sam2._C") is None:
        model.fill_hole_area = 0
    return _finish(model, config, checkpoint, state, device)


def build_sam2_image_predictor(
    config: str,
    checkpoint: str | Path | None,
    device: str = "cpu",
    *,
    random_weights: bool = False,
    **options: Any,
) -> Any:
    """A ``sam2.sam2_image_predictor.SAM2ImagePredictor`` over a SAM 2 model in eval mode on ``device``.

    Arguments as in `build_sam2_video_predictor`.
    """
    state = _checked_state(config, checkpoint, random_weights)
    import_sam2()
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    model = build_sam2(config_file(config), None, device="cpu", hydra_overrides_extra=_overrides(options))
    # Its resize-and-normalise transform runs as plain PyTorch: torch.jit.script is deprecated and
    # gains nothing on one image at a time.
    predictor = SAM2ImagePredictor(_finish(model, config, checkpoint, state, device), disable_torch_jit=True)
    # The wheel's predictor assumes 1024 px (feature maps of 256, 128, 64 a side, strides 4, 8, 16)
    # whatever the model's input size; set_image fails at any other size without these.
    size = int(model.image_size)
    predictor._bb_feat_sizes = [(size // stride, size // stride) for stride in (4, 8, 16)]
    return predictor


def read_sam2_checkpoint(checkpoint: str | Path, config: str) -> dict[str, Any]:
    """The state dict of a SAM 2 checkpoint file, checked to be a SAM 2 model of ``config``'s size.

    Raises `DataError` naming the file when it is missing, unreadable, not a SAM 2 model, or a SAM 2
    model of another size than ``config``.
    """
    import torch

    from frugalseg.zoo import torch_load

    config_file(config)
    path = Path(checkpoint)
    if not path.is_file():
        raise DataError(path, f"SAM 2 checkpoint file does not exist (config {config})")
    try:
        loaded = torch_load(path)  # weights only, in frugalseg's words (not torch's advice to unpickle)
    except WeightsError as err:
        raise DataError(path, err.problem) from err
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(
            path, "not a SAM 2 checkpoint: expected a state dict, or a dict with a 'model' state dict"
        )
    absent = [part for part in _SAM2_PARTS if not any(key.startswith(part) for key in state)]
    if absent:
        example = ", ".join(sorted(state)[:3]) or "no keys at all"
        raise DataError(
            path, f"not a SAM 2 model: it has no {', '.join(absent)} parameters (its first keys: {example})"
        )
    found = _trunk_size(state)
    if found != _config_trunk_size(config):
        other = [name for name in SAM2_CONFIGS if _config_trunk_size(name) == found]
        which = (
            f"a SAM 2 model of config {other[0]}" if other else f"a SAM 2 model with an unknown trunk {found}"
        )
        raise DataError(path, f"is {which}, not {config} (image encoder width and depth differ)")
    return state


def _checked_state(config: str, checkpoint: str | Path | None, random_weights: bool) -> dict[str, Any] | None:
    """The checked state dict of ``checkpoint`` (None for random weights)."""
    config_file(config)
    if checkpoint is None and not random_weights:
        raise ValueError("a SAM 2 checkpoint file is needed (random_weights=True only for tests)")
    if checkpoint is not None and random_weights:
        raise ValueError("give either a SAM 2 checkpoint or random_weights=True, not both")
    return None if checkpoint is None else read_sam2_checkpoint(checkpoint, config)


def _overrides(options: dict[str, Any]) -> list[str]:
    """Hydra overrides setting ``model.<key>`` for each option."""
    return [f"++model.{key}={value}" for key, value in options.items()]


def _finish(
    model: Any, config: str, checkpoint: str | Path | None, state: dict[str, Any] | None, device: str
) -> Any:
    """Load the checked state (if any) after comparing every parameter, move to ``device``, eval mode."""
    if state is not None:
        assert checkpoint is not None  # the state was read from it (_checked_state)
        problem = _mismatch(state, model.state_dict(), config)
        if problem is not None:
            raise DataError(
                Path(checkpoint), f"does not fit SAM 2 {config} (another SAM 2 version?): {problem}"
            )
        model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _mismatch(state: dict[str, Any], expected: dict[str, Any], config: str) -> str | None:
    """Which parameters of ``state`` are missing, unknown or of the wrong shape (None: it fits)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    parts = []
    if missing:
        parts.append(f"{len(missing)} parameters of {config} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unknown parameters (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        key = wrong[0]
        parts.append(
            f"{len(wrong)} parameters of the wrong shape (e.g. {key}: {tuple(state[key].shape)} "
            f"instead of {tuple(expected[key].shape)})"
        )
    return "; ".join(parts) or None


_TRUNK_PATCH = "image_encoder.trunk.patch_embed.proj.weight"
_TRUNK_BLOCKS = "image_encoder.trunk.blocks."
# Parts that every SAM 2 model has and SAM 1 or other networks have not.
_SAM2_PARTS = (_TRUNK_PATCH, "memory_attention.", "memory_encoder.", "sam_mask_decoder.")


def _trunk_size(state: dict[str, Any]) -> tuple[int, int]:
    """(embedding width, number of blocks) of the Hiera image encoder in a state dict."""
    width = int(state[_TRUNK_PATCH].shape[0]) if _TRUNK_PATCH in state else 0
    blocks = {key[len(_TRUNK_BLOCKS) :].split(".")[0] for key in state if key.startswith(_TRUNK_BLOCKS)}
    return width, len(blocks)


def _config_trunk_size(config: str) -> tuple[int, int]:
    """(embedding width, number of blocks) of the Hiera encoder that ``config`` describes."""
    import inspect

    from omegaconf import OmegaConf

    sam2 = import_sam2()
    from sam2.modeling.backbones.hieradet import Hiera

    trunk = OmegaConf.load(Path(inspect.getfile(sam2)).parent / config_file(config)).model.image_encoder.trunk
    # b+ leaves the stages to Hiera's default
    stages = trunk.get("stages", inspect.signature(Hiera).parameters["stages"].default)
    return int(trunk.embed_dim), int(sum(stages))
