"""Model zoo: students by name (``get_model``) and everything about them.

Their configs (``model_config``), the ``Student`` interface, verified weights, and converters of
official checkpoints.

One module per architecture (``deeplabv3plus``, ``hrnet``, ``pspnet``, ``stm``, ``tdnet``, ``tmanet``);
the ``_``-prefixed modules are the infrastructure they share (``_hub``: weights by Hub ids, SAM 2
ids and encoder tags, through the Hugging Face cache), ``_type_gain`` the annotation
loop's tiny type-policy network (`TypeGainNet`) and ``_quality_net`` its frame-quality network
(`QualityNet`, EVA-VOS's QNet), which are no students.
"""

from frugalseg.zoo import _smp as smp_models  # the smp wrapper module's former name
from frugalseg.zoo import deeplabv3plus, hrnet, pspnet, stm, tdnet, tmanet
from frugalseg.zoo._base import StreamingStudent, Student
from frugalseg.zoo._cards import palette_for
from frugalseg.zoo._checkpoints import checkpoints_dirs, read_index
from frugalseg.zoo._convert import CONVERTERS, convert_checkpoint
from frugalseg.zoo._hub import (
    HUB_PREFIX,
    HubId,
    load_hub_weights,
    parse_hub_id,
    read_encoder_weights,
    sam2_hub_checkpoint,
    weights_path,
)
from frugalseg.zoo._inference import sliding_window
from frugalseg.zoo._loading import LoadedWeights, load_state_dict_strictly
from frugalseg.zoo._quality_net import QualityNet, load_quality_net, save_quality_net
from frugalseg.zoo._registry import (
    ModelConfig,
    PublishedWeights,
    get_model,
    list_models,
    load_pretrained,
    model_config,
    model_entrypoint,
    register_model,
    unregister_model,
)
from frugalseg.zoo._resolve import load_weights_into, resolve
from frugalseg.zoo._type_gain import TypeGainNet, load_type_gain, save_type_gain
from frugalseg.zoo.pspnet import paired_group
from frugalseg.zoo.stm import STM, masks_from_ids

__all__ = [
    "CONVERTERS",
    "HUB_PREFIX",
    "STM",
    "HubId",
    "LoadedWeights",
    "ModelConfig",
    "PublishedWeights",
    "QualityNet",
    "StreamingStudent",
    "Student",
    "TypeGainNet",
    "checkpoints_dirs",
    "convert_checkpoint",
    "deeplabv3plus",
    "get_model",
    "hrnet",
    "list_models",
    "load_hub_weights",
    "load_pretrained",
    "load_quality_net",
    "load_state_dict_strictly",
    "load_type_gain",
    "load_weights_into",
    "masks_from_ids",
    "model_config",
    "model_entrypoint",
    "paired_group",
    "parse_hub_id",
    "palette_for",
    "pspnet",
    "read_encoder_weights",
    "read_index",
    "register_model",
    "resolve",
    "sam2_hub_checkpoint",
    "save_quality_net",
    "save_type_gain",
    "sliding_window",
    "smp_models",
    "stm",
    "tdnet",
    "tmanet",
    "unregister_model",
    "weights_path",
]
