"""Frames for the interactive tools' tests: textured hand-made images, real DAVIS frames (propagated too),
`interactive_dev` and Cityscapes instances, and the field's clicks on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.simulation.simulated_annotator import CorrectiveClick, corrective_click
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.active.objects.tools.max_flow import HARD, MinCuts, contrast_weights, prepare


def textured(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Colour noise blurred over a pixel (RGB, ``shape`` rows × columns): two seeds give fields of the same
    colours, no region of either telling it from the other."""
    noise = np.random.default_rng(seed).uniform(0, 255, (*shape, 3)).astype(np.float32)
    return np.clip((cv2.GaussianBlur(noise, (0, 0), 1.0) - 127.5) * 2 + 127.5, 0, 255).astype(np.uint8)


def slow_cut(side: int) -> tuple[MinCuts, np.ndarray, np.ndarray]:
    """A graph, its capacities to the source and to the sink: a flat side × side image whose left column is
    held to the source and right column to the sink; every unit of its flow runs the image's width (a cut of
    about 2 s at 500 px). The solver is compiled first, so a test that times the cut times no compiler."""
    prepare()
    flat = np.zeros((side, side, 3))
    edges = [(a, b, np.round(w), np.round(w)) for a, b, w in contrast_weights(flat, 15.0)]
    to_object, to_background = np.zeros((side, side), np.int64), np.zeros((side, side), np.int64)
    to_object[:, 0], to_background[:, -1] = HARD, HARD
    return MinCuts(side * side, edges), to_object.ravel(), to_background.ravel()


def davis_frame(root: Path, clip: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A DAVIS clip's frame ``index`` (RGB) and its truth (bool: any object), from a DAVIS-layout root."""
    name = sorted((root / "JPEGImages" / "480p" / clip).glob("*.jpg"))[index]
    truth = cv2.imread(str(root / "Annotations" / "480p" / clip / f"{name.stem}.png"), cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(cv2.imread(str(name)), cv2.COLOR_BGR2RGB), truth > 0


def propagated_davis(
    root: Path, clip: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ObjectPrior]:
    """A DAVIS clip's frame ``index`` (RGB), its truth, its propagated mask (bool) and what a session knows.

    Propagated from frame 0's truth by the loop's weight-free flow engine at half size, as the interactive
    benchmark does, with the dragged background kept (``drop_dragged=False``: the masks these tests pin were
    made so, and the spill they correct is what the engine now drops itself); the session knows the frame
    before it (``ObjectPrior.neighbour``), as a correction has it.

    Args:
        root: a DAVIS-layout root (``JPEGImages/480p``, ``Annotations/480p``).
        clip: the clip's name.
        index: the frame whose mask is propagated (at least 1).
    """
    read = [davis_frame(root, clip, at) for at in range(index + 1)]
    frames, truth = [frame for frame, _ in read], read[index][1]
    engine = get_loop_engine("flow", downscale=2, drop_dragged=False)
    masks = engine.propagate(frames, {0: read[0][1].astype(np.uint8)}).masks
    return frames[index], truth, masks[index] == 1, ObjectPrior(neighbour=frames[index - 1])


def interactive_dev(shared_data: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One `interactive_dev` instance: its RGB image and its object's mask (bool)."""
    folder = shared_data / "interactive_dev"
    image = cv2.cvtColor(cv2.imread(str(folder / "images" / f"{name}.jpg")), cv2.COLOR_BGR2RGB)
    return image, cv2.imread(str(folder / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) == 255


def cityscapes_instance(shared_data: Path, instance: int) -> tuple[np.ndarray, np.ndarray]:
    """`cityscapes_dev`'s gtFine frame (aachen_000000_000019, 2048×1024 RGB) and one instance's mask (bool).

    ``instance`` is the instanceIds value: the label id × 1000 + the instance's number (26005: a car).
    """
    folder, name = shared_data / "cityscapes_dev", "train/aachen/aachen_000000_000019"
    image = cv2.imread(str(folder / "leftImg8bit" / f"{name}_leftImg8bit.png"))
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    instances = cv2.imread(str(folder / "gtFine" / f"{name}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    return image, instances == instance


def field_clicks(
    model: StarCutClicks,
    image: np.ndarray,
    start: np.ndarray,
    truth: np.ndarray,
    count: int,
    known: ObjectPrior,
) -> Iterator[tuple[CorrectiveClick, np.ndarray]]:
    """The field's ``count`` clicks on ``image`` from the mask ``start``, each with the answer to all so far.

    Each click is the simulator's on the answer before it (`corrective_click`); the answers correct ``start``.
    """
    found: np.ndarray = start
    clicks: list[CorrectiveClick] = []
    for _ in range(count):
        click = corrective_click(found, truth)
        assert click is not None
        clicks.append(click)
        found = model.correct(image, start, clicks, known=known)
        yield click, found


def clicks_from_empty(
    image: np.ndarray, truth: np.ndarray, count: int
) -> list[tuple[CorrectiveClick, np.ndarray]]:
    """The field's first ``count`` clicks from an empty mask on a single image, each with its answer."""
    return list(field_clicks(StarCutClicks(), image, np.zeros_like(truth), truth, count, ObjectPrior()))
