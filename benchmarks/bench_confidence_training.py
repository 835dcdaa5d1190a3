"""Training on flow pseudo-labels with their low-confidence pixels ignored vs kept (issue 10).

    .venv/bin/python benchmarks/bench_confidence_training.py [--seeds 0,1] [--thresholds q10,q3]

What it measures, in one command, on the synthetic streets set (which has ground truth on every
frame), in a private cache (``--work``/cache, so nothing outside ``--work`` is touched):

1. generates the set (``--train-clips`` / ``--val-clips`` clips, 128×256, 30 frames);
2. labels its train split with ``frugalseg label propagate --engine flow`` into a label store
   (``--offsets``; default settings, so every label has a ``*_confidence.png`` beside it);
3. scores the store with ``frugalseg label report`` (J, mIoU, precision, mean confidence,
   wrong@low10 / wrong@high10 per offset);
4. picks the thresholds: ``qN`` is the confidence below which N % of the pseudo-labelled pixels of the
   training recipe's samples fall (read from their confidence maps; quantised to the map's 1/255
   steps, ``data.labels.min_confidence = b/255`` ignores the pixels whose 8-bit confidence is < b), a plain
   number is used as it is;
5. for each threshold, counts through the datamodule itself (``VideoSegDataModule`` with that
   ``min_confidence``, the training samples' labels as the loader returns them, before the random
   crop) how many pseudo-labelled pixels became ignore and how many of the ignored and of the kept
   ones were right against the ground truth (``SyntheticFormat.ground_truth``);
6. trains the same student with ``frugalseg fit --config configs/demo.yaml`` (recipe ``--recipe``, the
   demo's CE on pseudo-labels) once per threshold and seed with ``--data.labels.min_confidence 0`` (kept)
   or the threshold, and reports the last validation metrics the module logs (mIoU, mAcc, bIoU, TC
   on the ``--val-clips`` anchor frames of the val split), plus per-class IoU of the final weights
   on the same frames (computed here from ``last.ckpt``).

Runs of one seed see the same samples in the same order with the same crops and flips (the same
seed, the same data, only the label pixels differ), so the kept-vs-ignored difference of one seed is
a paired comparison; the spread between seeds says how much of it is noise.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

ROOT = Path(__file__).resolve().parents[1]
FRUGALSEG = str(Path(sys.executable).with_name("frugalseg"))
METRICS = ("val/mIoU", "val/mAcc", "val/bIoU", "val/TC")


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds the tables only."""
    print(message, file=sys.stderr, flush=True)


def run(command: list[str], env: dict[str, str]) -> str:
    """Run a command, fail with its output if it fails; its stdout and stderr together."""
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
    return output


def datamodule(args: argparse.Namespace, store: Path, min_confidence: float) -> Any:
    """The benchmark's datamodule, set up for fitting (samples drawn, labels attached, no trainer)."""
    from frugalseg.datamodules.datamodule import VideoSegDataModule
    from frugalseg.datamodules.options import LabelOptions, LoaderOptions, RecipeOptions, TemporalOptions

    dm = VideoSegDataModule(
        root=None,
        num_frames=args.num_frames,
        synthetic_clips=clip_counts(args),
        recipe=RecipeOptions(args.recipe, budget=args.budget),
        loader=LoaderOptions(num_workers=0, check_memory=False),
        labels=LabelOptions(pseudo=str(store), min_confidence=min_confidence),
        temporal=TemporalOptions(consistency=False),
    )
    dm.setup("fit")
    return dm


def clip_counts(args: argparse.Namespace) -> dict[str, int]:
    return {"train": args.train_clips, "val": args.val_clips}


def pseudo_items(dm: Any) -> list[tuple[Any, np.ndarray, np.ndarray, Path]]:
    """(sample, label as the loader gives it, ground truth, label path) of every pseudo sample."""
    from frugalseg.data.clips import LabelKind

    fmt = dm.format_reader()
    dataset = dm.datasets["train"]
    items = []
    for index, sample in enumerate(dataset.samples):
        if sample.kind is not LabelKind.PSEUDO:
            continue
        item = dataset[index]
        clip = dataset.clips[sample.clip_id]
        truth = fmt.read_label(fmt.ground_truth(clip)[sample.offset])
        items.append(
            (sample, item["label"].numpy().astype(np.uint8), truth, Path(item["meta"]["label_path"]))
        )
    return items


def pick_thresholds(specs: list[str], confidences: np.ndarray) -> list[tuple[str, float]]:
    """(how it was chosen, min_confidence) for each ``qN`` (N-th percentile, in 1/255 steps) or number."""
    chosen = []
    for spec in specs:
        if spec.startswith("q"):
            byte = int(np.quantile(confidences, float(spec[1:]) / 100.0))
            chosen.append((f"{spec[1:]} % quantile ({byte}/255)", byte / 255.0))
        else:
            chosen.append((f"fixed ({round(255 * float(spec))}/255)", float(spec)))
    return chosen


def label_accounting(kept: list, ignored: list, classes: Any) -> dict[str, Any]:
    """Pixels turned into ignore, and how right the ignored and kept ones are against ground truth."""
    from frugalseg.data.clips import IGNORE_INDEX

    total = dropped = dropped_right = kept_right = 0
    wrong_before = 0
    by_class: dict[int, list[int]] = {}
    for (_, before, truth, _), (_, after, _, _) in zip(kept, ignored, strict=True):
        labelled = before != IGNORE_INDEX
        gone = labelled & (after == IGNORE_INDEX)
        stays = labelled & ~gone
        right = before == truth
        total += int(labelled.sum())
        dropped += int(gone.sum())
        dropped_right += int((gone & right).sum())
        kept_right += int((stays & right).sum())
        wrong_before += int((labelled & ~right).sum())
        for train_id in np.unique(before[labelled]):
            counts = by_class.setdefault(int(train_id), [0, 0])
            counts[0] += int((before[labelled] == train_id).sum())
            counts[1] += int((before[gone] == train_id).sum())
    return {
        "labelled": total,
        "ignored": dropped,
        "ignored_acc": dropped_right / dropped if dropped else float("nan"),
        "kept_acc": kept_right / (total - dropped),
        "all_acc": 1.0 - wrong_before / total,
        "wrong_removed": (dropped - dropped_right) / wrong_before if wrong_before else float("nan"),
        "by_class": {classes.names[k]: v[1] / v[0] for k, v in sorted(by_class.items())},
    }


def last_metrics(csv_path: Path) -> dict[str, float]:
    """The last logged value of each validation metric in a CSVLogger's metrics.csv."""
    found: dict[str, float] = {}
    with csv_path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for name in METRICS:
                if row.get(name):
                    found[name] = float(row[name])
    return found


def per_class_iou(checkpoint: Path, args: argparse.Namespace, num_classes: int) -> np.ndarray:
    """IoU of each class (NaN where neither label nor prediction has it) of a checkpoint on the val split."""
    import torch

    from frugalseg.data.clips import IGNORE_INDEX
    from frugalseg.datamodules.datamodule import VideoSegDataModule
    from frugalseg.datamodules.options import LoaderOptions, TemporalOptions
    from frugalseg.zoo import get_model, load_weights_into

    student = get_model(args.student, num_classes=num_classes, num_frames=args.num_frames)
    load_weights_into(student, str(checkpoint), args.student)
    student.eval()
    dm = VideoSegDataModule(
        root=None,
        num_frames=args.num_frames,
        synthetic_clips=clip_counts(args),
        loader=LoaderOptions(num_workers=0),
        temporal=TemporalOptions(consistency=False),
    )
    dm.setup("validate")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    with torch.no_grad():
        for batch in dm.val_dataloader():
            batch = dm.on_after_batch_transfer(batch, 0)
            pred = student(batch["frames"]).argmax(1).numpy()
            label = batch["label"].numpy()
            valid = label != IGNORE_INDEX
            confusion += np.bincount(
                label[valid] * num_classes + pred[valid], minlength=num_classes**2
            ).reshape(num_classes, num_classes)
    inter = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def fit(args: argparse.Namespace, store: Path, seed: int, min_confidence: float, env: dict[str, str]) -> dict:
    """One ``frugalseg fit`` run; its last validation metrics, wall time and checkpoint."""
    name = f"seed{seed}_minconf{round(255 * min_confidence):03d}"
    runs = Path(args.work) / "fits"
    shutil.rmtree(runs / name, ignore_errors=True)
    command = [
        FRUGALSEG, "fit", "--config", "configs/demo.yaml",
        "--seed_everything", str(seed),
        "--model.student", args.student,
        "--data.num_frames", str(args.num_frames),
        "--data.recipe.name", args.recipe,
        "--data.recipe.budget", str(args.budget),
        "--data.synthetic_clips", f"{{train: {args.train_clips}, val: {args.val_clips}}}",
        "--data.labels.pseudo", str(store),
        "--data.labels.min_confidence", repr(min_confidence),
        "--data.loader.num_workers", str(args.num_workers),
        "--trainer.max_epochs", str(args.epochs),
        "--trainer.default_root_dir", str(runs),
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir", str(runs),
        "--trainer.logger.name", name,
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    start = time.perf_counter()
    run(command, env)
    seconds = time.perf_counter() - start
    version = runs / name / "version_0"
    return {
        "metrics": last_metrics(version / "metrics.csv"),
        "seconds": seconds,
        "checkpoint": version / "checkpoints" / "last.ckpt",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_confidence"), help="work folder")
    parser.add_argument("--fresh", action="store_true", help="delete the work folder first")
    parser.add_argument("--train-clips", type=int, default=24)
    parser.add_argument("--val-clips", type=int, default=24)
    parser.add_argument("--offsets", default="-10,-5,5,10", help="offsets propagated (and reported)")
    parser.add_argument("--recipe", default="B3", help="training recipe (B3: fine at 0, pseudo at ±10)")
    parser.add_argument("--budget", type=int, default=72, help="recipe budget (72: the demo's, every clip)")
    parser.add_argument("--student", default="pspnet_r18")
    parser.add_argument("--num-frames", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument(
        "--thresholds", default="q10,q3", help="qN: N-th percentile of confidence; or a number"
    )
    args = parser.parse_args()

    work = Path(args.work).resolve()
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["FRUGALSEG_CACHE"] = str(work / "cache")
    env = dict(os.environ)

    from frugalseg.autolabel.store import confidence_path
    from frugalseg.data.classes import CITYSCAPES
    from frugalseg.data.formats.synthetic import default_synthetic_root, generate_synthetic_streets
    from frugalseg.data.io import read_label

    clips = clip_counts(args)
    start = time.perf_counter()
    data_root = generate_synthetic_streets(default_synthetic_root(clips), clips)
    log(f"data: {data_root} ({time.perf_counter() - start:.1f} s)")

    store = work / "store"
    propagate = [
        FRUGALSEG, "label", "propagate", "--engine", "flow", "--format", "synthetic",
        "--root", str(data_root), "--split", "train", "--out", str(store),
        f"--offsets={args.offsets}", "--no-progress",
    ]  # fmt: skip
    propagated = run(propagate, env).strip().splitlines()[-1]
    log(propagated)
    report = run([FRUGALSEG, "label", "report", str(store), "--no-progress"], env)
    log("label report done")

    kept_dm = datamodule(args, store, 0.0)
    kept = pseudo_items(kept_dm)
    confidences = np.concatenate(
        [read_label(confidence_path(path))[label != 255] for _, label, _, path in kept]
    )
    thresholds = pick_thresholds(args.thresholds.split(","), confidences)
    accounting = []
    for how, value in thresholds:
        ignored = pseudo_items(datamodule(args, store, value))
        accounting.append((how, value, label_accounting(kept, ignored, CITYSCAPES)))
    log("label accounting done")

    seeds = [int(s) for s in args.seeds.split(",")]
    settings = [("kept (0)", 0.0)] + [(f"ignored < {v:.3f}", v) for _, v in thresholds]
    results: dict[tuple[int, float], dict] = {}
    for seed in seeds:
        for label, value in settings:
            result = fit(args, store, seed, value, env)
            result["iou"] = per_class_iou(result["checkpoint"], args, CITYSCAPES.num_classes)
            results[seed, value] = result
            log(
                f"seed {seed}, {label}: val/mIoU {result['metrics'].get('val/mIoU', float('nan')):.4f} "
                f"({result['seconds']:.0f} s)"
            )

    # ------------------------------------------------------------------------------------ tables
    print(
        f"## Setting\n\n{propagated}\n\nrecipe {args.recipe}, {len(kept)} pseudo-labelled samples "
        f"(+ {len(kept_dm.samples) - len(kept)} fine), student {args.student} (T={args.num_frames}), "
        f"{args.epochs} epochs of {len(kept_dm.samples) // 4} steps (batch 4), seeds {args.seeds}, "
        f"val: {args.val_clips} anchor frames\n"
    )
    lines = report.rstrip().splitlines()
    table = [line for line in lines if line.strip().startswith(("kind", "pseudo", "fine"))]
    print("## `frugalseg label report` of the store\n\n```")
    print("\n".join(line.rstrip() for line in table))
    print("```\n")

    print(f"## Thresholds and what they ignore ({len(kept)} pseudo labels of the recipe, full size)\n")
    print(
        f"{confidences.size} pseudo-labelled pixels, confidence: mean {confidences.mean() / 255:.3f}, "
        f"quantiles 3/10/50 % = {np.quantile(confidences, 0.03) / 255:.3f} / "
        f"{np.quantile(confidences, 0.10) / 255:.3f} / {np.quantile(confidences, 0.5) / 255:.3f}\n"
    )
    print(
        "| threshold | chosen as | ignored px | ignored share | accuracy of ignored | accuracy of kept |"
        " accuracy before | wrong px removed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for how, value, acc in accounting:
        print(
            f"| {value:.3f} | {how} | {acc['ignored']} of {acc['labelled']} | "
            f"{acc['ignored'] / acc['labelled']:.1%} | {acc['ignored_acc']:.3f} | {acc['kept_acc']:.4f} | "
            f"{acc['all_acc']:.4f} | {acc['wrong_removed']:.1%} |"
        )
    names = list(accounting[0][2]["by_class"])
    print("\nshare of each (pseudo-label) class's pixels ignored:\n")
    print("| threshold | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for _, value, acc in accounting:
        print(f"| {value:.3f} | " + " | ".join(f"{acc['by_class'][n]:.1%}" for n in names) + " |")

    print("\n## Training: last validation metrics\n")
    print("| seed | pseudo-label pixels | " + " | ".join(METRICS) + " | Δ mIoU vs kept | time |")
    print("|---|---|" + "---|" * len(METRICS) + "---|---|")
    for seed in seeds:
        base = results[seed, 0.0]["metrics"].get("val/mIoU", float("nan"))
        for label, value in settings:
            result = results[seed, value]
            cells = " | ".join(f"{result['metrics'].get(m, float('nan')):.4f}" for m in METRICS)
            delta = result["metrics"].get("val/mIoU", float("nan")) - base
            print(f"| {seed} | {label} | {cells} | {delta:+.4f} | {result['seconds']:.0f} s |")
    for label, value in settings:
        cells = " | ".join(
            f"{np.mean([results[s, value]['metrics'].get(m, float('nan')) for s in seeds]):.4f}"
            for m in METRICS
        )
        delta = np.mean(
            [results[s, value]["metrics"]["val/mIoU"] - results[s, 0.0]["metrics"]["val/mIoU"] for s in seeds]
        )
        print(f"| mean | {label} | {cells} | {delta:+.4f} | |")

    present = [k for k in range(CITYSCAPES.num_classes) if not np.isnan(results[seeds[0], 0.0]["iou"][k])]
    print("\n## Per-class val IoU of the final weights (mean over seeds)\n")
    print("| pseudo-label pixels | " + " | ".join(CITYSCAPES.names[k] for k in present) + " | mIoU |")
    print("|---|" + "---|" * (len(present) + 1))
    for label, value in settings:
        iou = np.mean([results[s, value]["iou"] for s in seeds], axis=0)
        print(f"| {label} | " + " | ".join(f"{iou[k]:.3f}" for k in present) + f" | {np.nanmean(iou):.4f} |")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
