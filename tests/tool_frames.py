"""Frames for the interactive tools' tests: textured hand-made images, and real DAVIS frames propagated."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.tools.graph_cut import ObjectPrior


def textured(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Colour noise blurred over a pixel (RGB, ``shape`` rows × columns): two seeds give fields of the same
    colours, no region of either telling it from the other."""
    noise = np.random.default_rng(seed).uniform(0, 255, (*shape, 3)).astype(np.float32)
    return np.clip((cv2.GaussianBlur(noise, (0, 0), 1.0) - 127.5) * 2 + 127.5, 0, 255).astype(np.uint8)


def propagated_davis(
    root: Path, clip: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ObjectPrior]:
    """A DAVIS clip's frame ``index`` (RGB), its truth, its propagated mask (bool) and what a session knows.

    Propagated from frame 0's truth by the loop's weight-free flow engine at half size, as the interactive
    benchmark does; the session knows the frame before it (``ObjectPrior.neighbour``), as a correction has it.

    Args:
        root: a DAVIS-layout root (``JPEGImages/480p``, ``Annotations/480p``).
        clip: the clip's name.
        index: the frame whose mask is propagated (at least 1).
    """
    names = sorted((root / "JPEGImages" / "480p" / clip).glob("*.jpg"))[: index + 1]
    frames = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in names]
    annotations = root / "Annotations" / "480p" / clip
    first, truth = (
        cv2.imread(str(annotations / f"{names[at].stem}.png"), cv2.IMREAD_GRAYSCALE) > 0 for at in (0, index)
    )
    masks = get_loop_engine("flow", downscale=2).propagate(frames, {0: first.astype(np.uint8)}).masks
    return frames[index], truth, masks[index] == 1, ObjectPrior(neighbour=frames[index - 1])
