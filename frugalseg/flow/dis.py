"""OpenCV DIS optical flow: weight-free, fast on the CPU, good enough to carry labels a few frames."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from frugalseg.errors import ConfigError

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
#: The DIS presets by name, fastest first.
PRESETS: tuple[str, ...] = tuple(_PRESETS)


class DISFlow:
    """Dense flow between two frames with OpenCV's DIS (Kroeger et al. 2016).

    Frames need `MIN_SIDE` pixels a side: OpenCV raises (or crashes, on thin frames) below that.
    Safe to call from several threads at once (each thread keeps its own OpenCV object); OpenCV
    releases the GIL while it computes, so flows on a thread pool use several cores. A flow does not
    depend on the frames the thread saw before (no initial flow, the preset's finest scale each time).

    Args:
        preset: ``ultrafast``, ``fast`` or ``medium`` (the accuracy/speed trade-off of OpenCV).
        downscale: compute the flow on frames shrunk by this factor and upsample it (speed on
            2048×1024 frames); 1 keeps full resolution.
    """

    MIN_SIDE = 16

    def __init__(self, preset: str = "medium", downscale: int = 1) -> None:
        if preset not in _PRESETS:
            raise ConfigError("preset", f"unknown DIS preset {preset!r}; choose one of {sorted(_PRESETS)}")
        if downscale < 1:
            raise ConfigError("downscale", f"must be >= 1, got {downscale}")
        self.preset = preset
        self.downscale = downscale
        self._per_thread = threading.local()

    @property
    def settings(self) -> dict[str, object]:
        """What decides the flow it computes (for caches and records)."""
        return {"engine": "dis", "preset": self.preset, "downscale": self.downscale}

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Flow first→second as an H×W×2 float32 array; frames are H×W×3 uint8 (BGR or RGB) or H×W."""
        if first.shape[:2] != second.shape[:2]:
            raise ValueError(f"frames differ in size: {first.shape[:2]} vs {second.shape[:2]}")
        return self.between(self.gray(first), self.gray(second), first.shape[:2])

    def gray(self, frame: np.ndarray) -> np.ndarray:
        """The grey image the flow is computed on: ``frame``'s grey levels shrunk by ``downscale``.

        Prepare each frame once with it and pass the results to `between`, when a frame takes part
        in several flows.
        """
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.downscale > 1:
            gray = cv2.resize(
                gray,
                (gray.shape[1] // self.downscale, gray.shape[0] // self.downscale),
                interpolation=cv2.INTER_AREA,
            )
        return np.ascontiguousarray(gray)

    def between(self, gray0: np.ndarray, gray1: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The H×W×2 float32 flow between two `gray` images, for frames of ``size`` (H, W)."""
        dis = getattr(self._per_thread, "dis", None)
        if dis is None:
            dis = self._per_thread.dis = cv2.DISOpticalFlow.create(_PRESETS[self.preset])
            self._per_thread.finest = dis.getFinestScale()
        # OpenCV lowers the finest scale for a frame too small for it (under about 32 px a side) and keeps
        # it lowered: every later flow of the thread would then be computed at another scale.
        dis.setFinestScale(self._per_thread.finest)
        # None, not a buffer: calc takes a flow array handed in as its initial flow, and the object
        # keeps doing so on later calls, so flows would depend on the thread's history. (OpenCV's
        # stubs refuse the None.)
        flow: np.ndarray = dis.calc(gray0, gray1, None)  # type: ignore[call-overload]
        if self.downscale > 1:
            height, width = size
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * self.downscale
        return flow.astype(np.float32, copy=False)
