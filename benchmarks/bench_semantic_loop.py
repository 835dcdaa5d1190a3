"""The semantic annotation loop of paper 000 (HVSA) on a generated synthetic streets clip, sized for the CPU.

    python benchmarks/bench_semantic_loop.py loop     frame / rectangle / superpixel × diversity / random
    python benchmarks/bench_semantic_loop.py timing   one fine-tuning iteration against the video's length
    python benchmarks/bench_semantic_loop.py cityscapes   the loop on the real Cityscapes snippet

Without a part it runs ``timing`` (what `make bench` runs).

``loop`` annotates one synthetic clip (ground truth on every frame; ``--frames`` frames of
``--size``) with every granularity × selector at one click budget in 3 iterations, fine-tuning
``--student`` from ``--init-weights`` (default: the published ``streets-hrnetv2-w18s``, trained on
other synthetic clips) for ``--epochs`` epochs per iteration at the paper's rate (0.004); it prints
per iteration the clicks %, hours and the generated labels' mIoU / pixel accuracy / boundary IoU
(d = 2) / TC, the flow-propagation baseline of the same labelled frames (frame granularity), and
the Table-3-style summary. ``timing`` fine-tunes one iteration (1 epoch, one labelled frame) on the
first 4, 8 and 16 frames of a clip and reports the seconds for the flows and for the fine-tuning.

``cityscapes`` runs the same loops on ``--frames`` frames of ``../shared/data/cityscapes_dev``
around frame 19 (shrunk by ``--scale``): the simulated annotator labels from gtFine on frame 19 and
from the network labels of ``pseudo_labelIds_sequence/`` elsewhere (a rough yardstick, not ground
truth); it prints the same table, plus every loop's mIoU on frame 19 against gtFine alone.

Output goes to ``--out`` (default a folder under the system's temporary folder; a rerun of ``loop``
resumes its loops) and is printed as Markdown.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.semantic.loop import SemanticLoop, SemanticVideo, read_video, score_labels, video_flows
from frugalseg.active.semantic.samples import Granularity
from frugalseg.active.semantic.simulate import configs, curves, simulate_semantic
from frugalseg.data.formats import CityscapesFormat, generate_synthetic_streets, get_format
from frugalseg.data.io import read_label
from frugalseg.lightning_modules.semantic_learner import FineTuningLearner

METRICS = ("miou", "pixel_accuracy", "boundary_iou", "tc")


def _learner(args: argparse.Namespace, epochs: int) -> FineTuningLearner:
    return FineTuningLearner(
        student=args.student,
        num_classes=19,
        init_weights=args.init_weights or None,
        epochs=epochs,
        lr=args.lr,
        batch_size=2,
        trainer_args={"accelerator": "cpu"},
    )


def _data(args: argparse.Namespace, frames: int) -> tuple:
    root = generate_synthetic_streets(
        Path(args.out) / "data", {"val": 1}, size=tuple(args.size), num_frames=max(20, frames), seed=7
    )
    fmt = get_format("synthetic", root)
    return fmt, fmt.clips("val")


def _granularities(args: argparse.Namespace) -> list[Granularity]:
    """Whole frames, ``--rect-size`` rectangles and about ``--segments`` superpixels per frame."""
    return [
        Granularity("frame"),
        Granularity("rectangle", size=args.rect_size),
        Granularity("superpixel", segments=args.segments),
    ]


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def loop(args: argparse.Namespace) -> None:
    """Every granularity × selector at one budget; the curves, the baseline and Table 3 as Markdown."""
    fmt, clips = _data(args, args.frames)
    granularities = _granularities(args)
    loop_configs = configs(granularities, ["diversity", "random"], [args.budget], iterations=3)
    started = time.perf_counter()
    times: dict[str, float] = {}

    def report(done: SemanticLoop) -> None:
        times[done.config.name] = time.perf_counter() - started - sum(times.values())
        print(f"- {done.config.name}: {times[done.config.name]:.0f} s", flush=True)

    data, loops = simulate_semantic(
        fmt,
        clips,
        Path(args.out) / "loop",
        loop_configs,
        _learner(args, args.epochs),
        max_frames=args.frames,
        report=report,
    )
    print(f"\nwall: {time.perf_counter() - started:.0f} s\n")
    _print_results(loops, data["table3"])


def _print_results(loops: list[SemanticLoop], table3: list[dict]) -> None:
    """Per iteration of every loop: clicks, hours, quality and the flow baseline; Table 3; who wins."""
    header = "| strategy | iteration | samples | clicks % | hours | mIoU | pixel acc | bIoU | TC |"
    print(header + " flow prop. mIoU / bIoU / TC |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in loops:
        for record in run.history:
            quality = record.quality
            base = record.baseline
            baseline = "–" if base is None else f"{base.miou:.3f} / {base.boundary_iou:.3f} / {base.tc:.3f}"
            print(
                f"| {run.config.name} | {record.iteration} | {record.samples} | {record.clicks_percent:.2f} "
                f"| {record.hours:.3f} | {quality.miou:.3f} | {quality.pixel_accuracy:.3f} "
                f"| {quality.boundary_iou:.3f} | {quality.tc:.3f} | {baseline} |"
            )
    print("\nTable-3-style summary (cheapest point reaching each mIoU):\n")
    print("| mIoU | strategy | clicks % | mIoU reached |")
    print("|---|---|---|---|")
    for row in table3:
        best = row["cheapest"]
        if best is None:
            print(f"| {row['miou']:.2f} | not reached | – | – |")
        else:
            cheapest = f"{best['strategy']} | {best['clicks_percent']:.2f} | {best['miou']:.3f}"
            print(f"| {row['miou']:.2f} | {cheapest} |")
    frames = [run for run in loops if run.config.granularity.name == "frame"]
    wins = [
        (r.quality.miou, r.baseline.miou) for run in frames for r in run.history if r.baseline is not None
    ]
    better = sum(fine > flow for fine, flow in wins)
    print(f"\nfine-tuning beats flow propagation of the same frames (mIoU) in {better} of {len(wins)}")


def cityscapes(args: argparse.Namespace) -> None:
    """The loops on the real Cityscapes snippet: gtFine on frame 19, network labels on the others."""
    root = Path(args.cityscapes)
    last = args.first + args.frames - 1
    fmt = CityscapesFormat(root, frames_before=19 - args.first, frames_after=last - 19)
    (split,) = fmt.splits()
    (clip,) = fmt.clips(split)
    video = read_video(fmt, clip, scale=args.scale)  # gtFine on the annotated frame, None elsewhere
    fine_index = clip.present_offsets.index(0)
    table = CityscapesFormat.classes.label_id_to_train_id
    truth = []
    for offset, label in zip(clip.present_offsets, video.ground_truth, strict=True):
        if label is None:
            frame = clip.frame_path(offset)
            pseudo = root / "pseudo_labelIds_sequence" / frame.relative_to(root / "leftImg8bit_sequence")
            network = read_label(
                pseudo.with_name(frame.name.replace("leftImg8bit", "pseudo_labelIds")), 19, table
            )
            size = video.frames[0].shape[1::-1]
            label = cv2.resize(network, size, interpolation=cv2.INTER_NEAREST)
        truth.append(label)
    # Named after the sequence (aachen_000000), as in the recorded results: the name seeds the
    # random selector.
    video = SemanticVideo(clip.clip_id.rsplit("_", 1)[0], video.frames, truth, fmt.num_classes)
    frames = video.frames
    granularities = _granularities(args)
    out = Path(args.out) / "cityscapes"
    learner = _learner(args, args.epochs)
    loops = []
    started = time.perf_counter()
    for config in configs(granularities, ["diversity", "random"], [args.budget], iterations=3):
        loop = SemanticLoop(video, out / config.name, config, learner, flow_cache=out / "flows")
        loop.run()
        loops.append(loop)
        print(f"- {config.name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(
        f"\n{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, wall: "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    _print_results(loops, curves([loop.result for loop in loops])["table3"])
    print("\nFrame 19 against gtFine (mIoU of the generated label after the last iteration):\n")
    for loop in loops:
        fine = truth[fine_index]
        # The loop keeps only its last labels; the last iteration's is the one a user gets.
        score = score_labels([loop.labels[fine_index]], [fine], 19, [])
        print(f"- {loop.config.name}: {score.miou:.3f} (pixel acc {score.pixel_accuracy:.3f})")


def timing(args: argparse.Namespace) -> None:
    """Seconds of the flows and of one fine-tuning iteration (1 epoch) against the video's length."""
    lengths = [int(n) for n in args.lengths.split(",")]
    fmt, clips = _data(args, max(lengths))
    print("| frames | flows (s) | fine-tuning, 1 epoch + prediction (s) | per frame (s) |")
    print("|---|---|---|---|")
    for length in lengths:
        video = read_video(fmt, clips[0], max_frames=length)
        cache = Path(tempfile.mkdtemp(prefix="flows-", dir=args.out))
        start = time.perf_counter()
        video_flows(video.frames, cache)
        flows = time.perf_counter() - start
        labels = [np.full(f.shape[:2], 255, np.uint8) for f in video.frames]
        truth = video.ground_truth[0]
        assert truth is not None
        labels[0] = truth
        learner = _learner(args, 1)
        learner.reset()
        start = time.perf_counter()
        learner.fit(video.frames, labels, 0, cache)
        seconds = time.perf_counter() - start
        print(f"| {length} | {flows:.1f} | {seconds:.1f} | {seconds / length:.2f} |", flush=True)


def main() -> None:
    """Parse the part and its options, run it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "part", nargs="?", default="timing", choices=("loop", "timing", "cityscapes"), help="default: timing"
    )
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bench_semantic_loop"))
    parser.add_argument("--size", type=int, nargs=2, default=(48, 96), help="frame height and width")
    parser.add_argument("--frames", type=int, default=12, help="frames of the clip the loop annotates")
    parser.add_argument("--student", default="hrnetv2_w18_small")
    parser.add_argument("--init-weights", default="streets-hrnetv2-w18s", help="'' for none")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.004)
    parser.add_argument("--budget", type=float, default=25.0, help="clicks, % of labelling every frame")
    parser.add_argument("--rect-size", type=int, default=16)
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--lengths", default="4,8,16", help="video lengths of the timing part")
    parser.add_argument(
        "--cityscapes", default=str(Path(__file__).resolve().parents[2] / "shared/data/cityscapes_dev")
    )
    parser.add_argument("--first", type=int, default=12, help="cityscapes: first frame number")
    parser.add_argument("--scale", type=float, default=1 / 16, help="cityscapes: frame scale")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    {"loop": loop, "timing": timing, "cityscapes": cityscapes}[args.part](args)


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
