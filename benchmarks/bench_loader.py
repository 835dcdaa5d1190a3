"""Per-sample loader cost of ``ClipSampleDataset`` at 2048×1024, without and with the caches.

"before" is the dataset with ``frame_cache=None, flow_cache=None``: every epoch decodes every
frame in full and computes every DIS flow, as the code was. "after" gives it ``frame_cache`` and
``flow_cache`` folders under a fresh temporary folder per setting and is timed from its second
epoch on, after one warm pass. Both run in this process, one after the other round by round, on
the real Cityscapes snippet ``../shared/data/cityscapes_dev`` (one clip of 30 frames, anchor
frame 19, a fine label at offset 0 only).

What is measured, honestly: every sample is ``Sample(clip, 0, LabelKind.FINE)``, the one labelled
frame, repeated; its window reads the frames at offsets −T+1 … 0 (−T with a temporal pair) and
its neighbours are drawn among offsets −1 … −4. So from the second epoch on the caches hold every
frame and flow a sample needs, as they would for each sample of a real training set from its
second epoch on, except that neighbours are drawn at random: a neighbour pair the warm pass did not
draw is computed in the timed epochs (counted in the table). The frame cache applies only when
``load_scale`` < 1 (at scale 1 there is nothing smaller to keep), so at scale 1 "after" still
decodes every frame in full and saves only the flows.

Times are per ``__getitem__`` (decode, resize, label, flows, tensors), medians over the timed
samples, with one torch thread and one OpenCV thread: the cost one loader worker pays on one
core. The second table reads batch size, ``num_frames``, ``load_scale`` (the datamodule's default
where the YAML is silent), the temporal pair and the neighbours from each paper config, measures
that setting the same way and gives the loader workers needed to feed a training step of
``--step`` seconds: ``ceil(batch_size × seconds per sample / step)``.

    .venv/bin/python benchmarks/bench_loader.py [--samples 3] [--rounds 2] [--step 0.15]
"""

from __future__ import annotations

import argparse
import inspect
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch
import yaml
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.dataset import ClipSampleDataset
from frugalseg.datamodules.options import LoaderOptions, TemporalOptions
from frugalseg.datamodules.recipes import Sample

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cityscapes_dev"
CONFIGS = ("temporal_finetune", "weclick_student_r18", "weclick_student_mbv2", "tdnet_stage2", "demo")


@dataclass(frozen=True)
class Setting:
    """What a dataset is asked to load per sample."""

    name: str
    num_frames: int
    scale: float
    temporal_pair: bool = False
    neighbours: int = 0
    neighbour_window: int = 4


@dataclass
class Measured:
    """Seconds per sample without and with the caches, and the work the caches did not save."""

    before: list[float]
    after: list[float]
    flows_computed: int  # in the timed "after" epochs
    frames_decoded: int  # in full, in the timed "after" epochs (cache misses; every frame at scale 1)


def _dataset(setting: Setting, samples: int, cache: Path | None) -> ClipSampleDataset:
    fmt = get_format("cityscapes", DATA)
    clips = fmt.clips("train")
    return ClipSampleDataset(
        fmt,
        clips,
        [Sample(clips[0].clip_id, 0, LabelKind.FINE)] * samples,
        setting.num_frames,
        scale=setting.scale,
        temporal_pair=setting.temporal_pair,
        neighbours=setting.neighbours,
        neighbour_window=setting.neighbour_window,
        frame_cache=None if cache is None else cache / "frames",
        flow_cache=None if cache is None else cache / "flows",
    )


def _epoch(dataset: ClipSampleDataset) -> list[float]:
    times = []
    for index in range(len(dataset)):
        start = time.perf_counter()
        dataset[index]
        times.append(time.perf_counter() - start)
    return times


def _frames_read(dataset: ClipSampleDataset) -> int:
    """Frames one sample reads: its window (and the temporal pair's frame) plus its neighbours."""
    return dataset.num_frames + int(dataset.temporal_pair) + dataset.neighbours


def measure(setting: Setting, samples: int, rounds: int, tmp: Path) -> Measured:
    """Time ``samples`` samples per epoch, ``rounds`` epochs per variant, the variants alternating."""
    cache = tmp / setting.name.replace(" ", "_").replace(",", "")
    before, after = _dataset(setting, samples, None), _dataset(setting, samples, cache)
    torch.manual_seed(0)
    _epoch(after)  # the warm pass: fills the caches
    computed = getattr(after.flow, "computed", 0)
    cached_frames = len(list((cache / "frames").rglob("*.png")))
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        times["before"] += _epoch(before)
        times["after"] += _epoch(after)
    if setting.scale < 1:
        decoded = len(list((cache / "frames").rglob("*.png"))) - cached_frames
    else:
        decoded = rounds * samples * _frames_read(after)
    flows = getattr(after.flow, "computed", 0) - computed
    return Measured(times["before"], times["after"], flows, decoded)


def grid_settings() -> list[Setting]:
    """T = 3 at load scale 1 and 0.5: plain, with a temporal pair, with 2 neighbours (WeClick)."""
    settings = []
    for scale in (1.0, 0.5):
        settings += [
            Setting(f"T=3 plain, scale {scale:g}", 3, scale),
            Setting(f"T=3 + temporal pair, scale {scale:g}", 3, scale, temporal_pair=True),
            Setting(f"T=3 + 2 neighbours, scale {scale:g}", 3, scale, neighbours=2),
        ]
    return settings


def config_setting(name: str) -> tuple[Setting, int]:
    """The loading setting and batch size of ``configs/<name>.yaml`` (datamodule defaults where silent)."""
    data = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text(encoding="utf-8"))["data"]
    num_frames = data.get(
        "num_frames", inspect.signature(VideoSegDataModule).parameters["num_frames"].default
    )
    loader = LoaderOptions(**data.get("loader", {}))
    temporal = TemporalOptions(**data.get("temporal", {}))
    setting = Setting(
        name,
        int(num_frames),
        loader.load_scale,
        temporal_pair=temporal.train_pair,
        neighbours=temporal.neighbours,
        neighbour_window=temporal.neighbour_window,
    )
    return setting, loader.batch_size


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3, help="samples per epoch")
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per variant")
    parser.add_argument("--step", type=float, default=0.15, help="training step to feed, seconds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    timed = args.samples * args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        grid = [
            (setting, measure(setting, args.samples, args.rounds, Path(tmp))) for setting in grid_settings()
        ]
        configs = [(config_setting(name), name) for name in CONFIGS]
        measured = {
            name: measure(setting, args.samples, args.rounds, Path(tmp)) for (setting, _), name in configs
        }
    print(
        f"2048×1024 Cityscapes snippet, one torch and one OpenCV thread, median of {timed} samples per cell"
    )
    print()
    print(
        "| setting | frames read | ms/sample before | ms/sample after | after speed-up "
        "| flows computed after warm-up | frames decoded in full after warm-up |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting, m in grid:
        frames = setting.num_frames + int(setting.temporal_pair) + setting.neighbours
        before, after = _ms(m.before), _ms(m.after)
        print(
            f"| {setting.name} | {frames} | {before:.0f} | {after:.0f} | {before / after:.1f}× "
            f"| {m.flows_computed} of {timed * _flows(setting)} | {m.frames_decoded} of {timed * frames} |"
        )
    print()
    print(f"Loader workers needed to feed a {args.step:g} s training step (one core each):")
    print()
    print(
        "| config | batch | num_frames | load_scale | temporal pair | neighbours | ms/sample before "
        "| ms/sample after | workers before | workers after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (setting, batch), name in configs:
        m = measured[name]
        before, after = statistics.median(m.before), statistics.median(m.after)
        print(
            f"| {name} | {batch} | {setting.num_frames} | {setting.scale:g} | {setting.temporal_pair} "
            f"| {setting.neighbours} | {before * 1000:.0f} | {after * 1000:.0f} "
            f"| {math.ceil(batch * before / args.step)} | {math.ceil(batch * after / args.step)} |"
        )


def _flows(setting: Setting) -> int:
    """DIS flows one sample needs: both directions of a temporal pair, one per neighbour."""
    return 2 * int(setting.temporal_pair) + setting.neighbours


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
