"""How much memory a training batch needs at least, and how much a device has free."""

from __future__ import annotations

import torch

#: A lower bound of the bytes a training step holds per input pixel of every frame (fp32 activations
#: and their gradients of a small student, about 2 KiB; paper-sized students hold several times more).
BYTES_PER_PIXEL = 2048


def batch_bytes(batch_size: int, frames: int, height: int, width: int) -> int:
    """A rough lower bound of the memory one training step of this batch shape holds."""
    return batch_size * frames * height * width * BYTES_PER_PIXEL


def free_memory(device: torch.device) -> int | None:
    """Free bytes of ``device``: the GPU's free memory, or the host's available memory; None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
