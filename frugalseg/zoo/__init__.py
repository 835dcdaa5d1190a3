"""Model zoo: students by name (``get_model``) and everything about them.

Their configs (``model_config``), the ``Student`` interface, verified weights, and converters of
official checkpoints.

One module per architecture (``deeplabv3plus``, ``hrnet``, ``pspnet``, ``stm``, ``tdnet``, ``tmanet``),
and two public modules of networks that are no students: ``quality_net`` (`QualityNet`, EVA-VOS's
QNet, whose embedding selects frames in the annotation loop) and ``type_gain`` (`TypeGainNet`, the
loop's learned annotation-type policy). The ``_``-prefixed modules are the infrastructure they share
(``_hub``: weights by Hub ids, SAM 2 ids and encoder tags, through the Hugging Face cache);
what of it other rooms use (reading and verifying weights, the published checkpoints' folders and
index, cards, downloads, converters) is re-exported here, as timm does, and nothing outside the zoo
imports a ``_`` module.
"""

from frugalseg.data.files import sha256_file
from frugalseg.zoo import _smp as smp_models  # the smp wrapper module's former name
from frugalseg.zoo import deeplabv3plus, hrnet, pspnet, stm, tdnet, tmanet
from frugalseg.zoo._base import ImageStudent, StreamingStudent, Student
from frugalseg.zoo._cards import check_name, imagenet_normalization, palette_for
from frugalseg.zoo._checkpoints import (
    INDEX_FILE,
    checkpoints_dir,
    checkpoints_dirs,
    packaged_checkpoints,
    publish_dir,
    publish_target,
    read_index,
    write_hub_folder,
    write_weights,
)
from frugalseg.zoo._convert import (
    CONVERTERS,
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    read_official_checkpoint,
)
from frugalseg.zoo._hub import (
    HUB_FILES,
    HUB_PREFIX,
    HubId,
    load_hub_weights,
    parse_hub_id,
    read_encoder_weights,
    sam2_hub_checkpoint,
    weights_path,
)
from frugalseg.zoo._inference import sliding_window
from frugalseg.zoo._loading import (
    LoadedWeights,
    load_state_dict_strictly,
    read_tagged_safetensors,
    read_torch_weights,
    read_weights_file,
    torch_load,
)
from frugalseg.zoo._registry import (
    TASKS,
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
from frugalseg.zoo._resolve import download, load_weights_into, missing_weights_file, resolve, url_cache_path
from frugalseg.zoo.pspnet import paired_group
from frugalseg.zoo.quality_net import QualityNet, load_quality_net, save_quality_net
from frugalseg.zoo.stm import STM, masks_from_ids
from frugalseg.zoo.type_gain import TypeGainNet, load_type_gain, save_type_gain

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "HUB_FILES",
    "HUB_PREFIX",
    "HubId",
    "INDEX_FILE",
    "ImageStudent",
    "LoadedWeights",
    "ModelConfig",
    "PublishedWeights",
    "QualityNet",
    "STM",
    "StreamingStudent",
    "Student",
    "TASKS",
    "TypeGainNet",
    "check_name",
    "checkpoints_dir",
    "checkpoints_dirs",
    "convert_checkpoint",
    "convert_state_dict",
    "deeplabv3plus",
    "download",
    "get_model",
    "hrnet",
    "imagenet_normalization",
    "list_models",
    "load_hub_weights",
    "load_pretrained",
    "load_quality_net",
    "load_state_dict_strictly",
    "load_type_gain",
    "load_weights_into",
    "masks_from_ids",
    "missing_weights_file",
    "model_config",
    "model_entrypoint",
    "packaged_checkpoints",
    "paired_group",
    "palette_for",
    "parse_hub_id",
    "pspnet",
    "publish_dir",
    "publish_target",
    "read_encoder_weights",
    "read_index",
    "read_official_checkpoint",
    "read_tagged_safetensors",
    "read_torch_weights",
    "read_weights_file",
    "register_model",
    "resolve",
    "sam2_hub_checkpoint",
    "save_quality_net",
    "save_type_gain",
    "sha256_file",
    "sliding_window",
    "smp_models",
    "stm",
    "tdnet",
    "tmanet",
    "torch_load",
    "unregister_model",
    "url_cache_path",
    "weights_path",
    "write_hub_folder",
    "write_weights",
]
