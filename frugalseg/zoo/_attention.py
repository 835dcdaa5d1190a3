"""Attention reads of the video students through ``scaled_dot_product_attention``."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def attention(query: Tensor, key: Tensor, value: Tensor, scale: float, dropout: float = 0.0) -> Tensor:
    """``dropout(softmax(scale · Q Kᵀ)) V`` over the key positions without holding the N×M weights.

    ``query`` B×N×Ck, ``key`` B×M×Ck, ``value`` B×M×Cv → B×N×Cv, through
    :func:`~torch.nn.functional.scaled_dot_product_attention` with one head (the fused CUDA kernels
    take only B×heads×N×C inputs; 3-D ones fall back to the math path). PyTorch's fused CPU kernel takes
    only equal query and value widths with unit-stride channels (and no dropout) and otherwise
    falls back to materialising the weights, so on the CPU the narrower side is zero-padded (a
    zero channel adds nothing to a dot product or to the read) and the inputs are made contiguous.
    """
    width = value.shape[-1]
    if query.device.type == "cpu" and query.shape[-1] != width:
        extra = width - query.shape[-1]
        if extra > 0:
            query, key = F.pad(query, (0, extra)), F.pad(key, (0, extra))
        else:
            value = F.pad(value, (0, -extra))
    query, key, value = (x.unsqueeze(1).contiguous() for x in (query, key, value))
    read = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scale)
    return read.squeeze(1)[..., :width]
