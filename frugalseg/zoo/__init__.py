"""Model zoo: students by name (``get_model``), the ``Student`` interface and the registry."""

from frugalseg.zoo import hrnet, pspnet, smp_models, stm, tdnet, tmanet
from frugalseg.zoo.base import Student
from frugalseg.zoo.registry import get_model, list_models, register_model

__all__ = [
    "Student",
    "get_model",
    "list_models",
    "register_model",
    "hrnet",
    "pspnet",
    "smp_models",
    "stm",
    "tdnet",
    "tmanet",
]
