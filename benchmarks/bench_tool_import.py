"""Importing annotation tools' files: a 10,000-shape COCO file and a 1,000-frame CVAT for video track file.

Both are generated for one DAVIS-layout clip of 1,000 frames at 854×480 (flat grey JPEGs: only
their headers are read; an empty first-frame mask, which the DAVIS layout requires). COCO: 10
annotations per frame, 5 polygons of 12 vertices and 5 compressed RLE masks (pycocotools). CVAT:
10 tracks over the 1,000 frames, 5 of boxes and 5 of 12-vertex polygons, with a keyframe every 25
frames, so 960 of each track's shapes are interpolated. Each is measured twice: reading the file
into shapes (`read_export`), and the whole import into a label store (reading, checking, drawing
and writing every label PNG with its instance ids and side files, `import_export`).

Each measurement runs in a fresh subprocess; memory is the peak resident set size during the
measured call (``VmHWM``, reset just before it through ``/proc/self/clear_refs``) minus the
resident size just before it (modules imported, data generated), and
``tracemalloc``'s peak of Python and NumPy allocations in a second, traced run (slower, so its
time is not reported).

    .venv/bin/python benchmarks/bench_tool_import.py [--frames 1000] [--shapes-per-frame 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from frugalseg.autolabel.store import LabelStore
from frugalseg.data.formats import get_format
from frugalseg.interop import ClassMapping, import_export, read_export
from frugalseg.interop.rle import coco_encode

SIZE = (480, 854)
KEY_EVERY = 25


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text(encoding="utf-8").split()[1])
    return pages * resource.getpagesize()


def _reset_peak() -> None:
    """Set this process's peak resident size (VmHWM) to its current size (Linux ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5", encoding="utf-8")


def _peak() -> int:
    """This process's peak resident size since `_reset_peak`, in bytes (VmHWM)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _polygon(rng: np.random.Generator, cx: float, cy: float, radius: float) -> np.ndarray:
    angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
    r = radius * rng.uniform(0.6, 1.0, 12)
    points = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
    return np.clip(points, 0, [SIZE[1], SIZE[0]])


def make_data(root: Path, frames: int, per_frame: int) -> tuple[Path, Path, Path]:
    """The clip, the COCO file and the CVAT file (module docstring)."""
    davis = root / "davis"
    folder = davis / "JPEGImages" / "480p" / "bench"
    folder.mkdir(parents=True)
    grey = np.full((*SIZE, 3), 128, np.uint8)
    for t in range(frames):
        cv2.imwrite(str(folder / f"{t:05d}.jpg"), grey)
    (davis / "Annotations" / "480p" / "bench").mkdir(parents=True)
    cv2.imwrite(str(davis / "Annotations" / "480p" / "bench" / "00000.png"), np.zeros(SIZE, np.uint8))
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for t in range(frames):
        images.append({"id": t + 1, "file_name": f"bench/{t:05d}.jpg", "width": SIZE[1], "height": SIZE[0]})
        for k in range(per_frame):
            cx, cy = rng.uniform(100, SIZE[1] - 100), rng.uniform(100, SIZE[0] - 100)
            polygon = _polygon(rng, cx, cy, 60)
            if k % 2:
                mask = np.zeros(SIZE, np.uint8)
                cv2.fillPoly(mask, [polygon.astype(np.int32)], 1)
                segmentation: object = coco_encode(mask.astype(bool))
            else:
                segmentation = [polygon.reshape(-1).round(2).tolist()]
            annotations.append({"id": len(annotations) + 1, "image_id": t + 1, "category_id": 1,
                                "segmentation": segmentation, "iscrowd": k % 2})  # fmt: skip
    coco = root / "coco.json"
    categories = [{"id": 1, "name": "object"}]
    coco.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}), encoding="utf-8"
    )
    cvat = root / "cvat.xml"
    cvat.write_text(_cvat_xml(rng, frames, per_frame), encoding="utf-8")
    return davis, coco, cvat


def _cvat_xml(rng: np.random.Generator, frames: int, tracks: int) -> str:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task>',
        f"<name>bench</name><size>{frames}</size><start_frame>0</start_frame>",
        f"<stop_frame>{frames - 1}</stop_frame>",
        "<labels><label><name>object</name></label></labels>",
        f"<original_size><width>{SIZE[1]}</width><height>{SIZE[0]}</height></original_size></task></meta>",
    ]
    for track in range(tracks):
        lines.append(f'<track id="{track}" label="object">')
        for t in [*range(0, frames, KEY_EVERY), frames - 1]:
            cx, cy = rng.uniform(100, SIZE[1] - 100), rng.uniform(100, SIZE[0] - 100)
            if track % 2:
                points = ";".join(
                    f"{x:.2f},{y:.2f}" for x, y in _polygon(np.random.default_rng(track), cx, cy, 50)
                )
                lines.append(f'<polygon frame="{t}" outside="0" keyframe="1" points="{points}"/>')
            else:
                lines.append(
                    f'<box frame="{t}" outside="0" keyframe="1" xtl="{cx - 40:.2f}" ytl="{cy - 30:.2f}" '
                    f'xbr="{cx + 40:.2f}" ybr="{cy + 30:.2f}"/>'
                )
        lines.append("</track>")
    lines.append("</annotations>")
    return "\n".join(lines)


def _child(tool: str, file: str, davis: str, what: str, traced: bool, out: str) -> None:
    """One measurement in this fresh process; writes its figures to ``out``."""
    fmt = get_format("davis", davis)
    before = _rss()
    _reset_peak()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    export = read_export(tool, file)
    if what == "import":
        store = LabelStore(Path(out).with_suffix(".store"))
        summary = import_export(export, fmt, "all", store, ClassMapping(fmt.class_names))
        labels = sum(summary.written.values())
    else:
        labels = 0
    seconds = time.perf_counter() - start
    peak_traced = tracemalloc.get_traced_memory()[1] if traced else None
    peak = _peak() - before
    result = {"seconds": seconds, "rss_mib": peak / 2**20, "frames": len(export.frames),
              "shapes": export.shape_count(), "labels": labels,
              "traced_mib": None if peak_traced is None else peak_traced / 2**20}  # fmt: skip
    Path(out).write_text(json.dumps(result), encoding="utf-8")


def _measure(tool: str, file: Path, davis: Path, what: str, traced: bool, tmp: Path) -> dict[str, float]:
    out = tmp / f"{tool}-{what}-{int(traced)}.json"
    command = [
        sys.executable,
        __file__,
        "--child",
        tool,
        str(file),
        str(davis),
        what,
        str(int(traced)),
        str(out),
    ]
    subprocess.run(command, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--shapes-per-frame", type=int, default=10)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, file, davis, what, traced, out = args.child
        _child(tool, file, davis, what, traced == "1", out)
        return
    from importlib.metadata import version

    print(
        f"numpy {np.__version__}, opencv {cv2.__version__}, pycocotools {version('pycocotools')}; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS "
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        davis, coco, cvat = make_data(tmp, args.frames, args.shapes_per_frame)
        print(
            f"COCO file {coco.stat().st_size / 2**20:.1f} MiB, "
            f"CVAT file {cvat.stat().st_size / 2**20:.2f} MiB"
        )
        print(f"{'file':<10} {'step':<7} {'frames':>6} {'shapes':>7} {'labels':>6} {'seconds':>8} "
              f"{'ms/frame':>8} {'peak RSS':>10} {'traced peak':>12}")  # fmt: skip
        for tool, file in (("coco", coco), ("cvat-video", cvat)):
            for what in ("read", "import"):
                timed = _measure(tool, file, davis, what, False, tmp)
                traced = _measure(tool, file, davis, what, True, tmp)
                print(
                    f"{tool:<10} {what:<7} {timed['frames']:>6} {timed['shapes']:>7} {timed['labels']:>6} "
                    f"{timed['seconds']:>8.2f} {1000 * timed['seconds'] / timed['frames']:>8.2f} "
                    f"{timed['rss_mib']:>6.0f} MiB {traced['traced_mib']:>8.0f} MiB"
                )


if __name__ == "__main__":
    main()
