"""Click supervision on real CamVid (paper 004): dense CE, clicks + partial CE, clicks + pCE + Gated CRF.

Each run trains DeepLabV3+-R18 from random initialisation through the package's own path — a
Lightning ``Trainer`` on `VideoSegmentationModule` with `VideoSegDataModule` (``format="camvid"``)
— for the same steps, seed, crops and learning rate, and differs only in its labels and losses:

- ``dense``: the fine labels (recipe ``N1``), CE;
- ``clicks``: simulated clicks (recipe ``clicks``, `SimulatedClicks`: one click per 8-connected
  region of ≥ 512 px of every class, CamVid having no instance ids), partial CE;
- ``gcrf``: the same clicks, partial CE + λ·Gated CRF with the package's default Gated CRF
  (``--gcrf-weight`` λ, ``--gcrf-normalize``, ``--gcrf-ramp`` warm-up calls);
- further runs ``name:normalize:weight:ramp`` with ``--extra`` (e.g. ``pixels01:pixels:0.1:0``).

Training uses random 192×256 crops of the 480×360 frames at scale 1 (no rescaling: a sparse click
label resized with nearest neighbours loses most of its clicks) with horizontal flips; validation
segments the 101 whole val frames and scores them on one confusion matrix (mIoU over the classes
that occur, pixel accuracy over all labelled pixels). Clicks are simulated once into ``--store``.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_clicks_camvid.py \\
        --root ../shared/data/camvid_dev --steps 250 --runs dense clicks gcrf \\
        --json /work/experiments/clicks/results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from provenance import provenance, provenance_line  # benchmarks/ is the script's own folder

from frugalseg.autolabel.clicks import clicks_per_class_path
from frugalseg.autolabel.sources import SimulatedClicks
from frugalseg.autolabel.store import LabelStore
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import (
    AugmentOptions,
    LabelOptions,
    LoaderOptions,
    RecipeOptions,
    TemporalOptions,
)
from frugalseg.lightning_modules import VideoSegmentationModule
from frugalseg.metrics.segmentation import ConfusionMatrix, iou_from_confmat


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default="../shared/data/camvid_dev")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=[192, 256])
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="a run per seed")
    parser.add_argument("--student", default="deeplabv3plus_r18")
    parser.add_argument("--load-scale", type=float, default=1.0, help="frames and labels resized on load")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", nargs="*", default=["dense", "clicks", "gcrf"])
    parser.add_argument("--gcrf-weight", type=float, default=0.1, help="λ of the gcrf run")
    parser.add_argument("--gcrf-normalize", default=None, help="default: the package's")
    parser.add_argument("--gcrf-ramp", type=int, default=0)
    parser.add_argument(
        "--extra", nargs="*", default=[], help="more Gated CRF runs name:normalize:weight:ramp"
    )
    parser.add_argument("--store", default="/tmp/frugalseg_clicks_camvid", help="the simulated clicks' store")
    parser.add_argument("--json", default=None, help="append each run's result here (one JSON per line)")
    parser.add_argument("--summary", default=None, help="write the mean ± spread table (markdown) here")
    return parser.parse_args()


def run_settings(args: argparse.Namespace) -> dict[str, dict]:
    """Name → (recipe, losses, loss_args) of every run asked for."""
    gcrf_args = {}
    if args.gcrf_normalize:
        gcrf_args["normalize"] = args.gcrf_normalize
    if args.gcrf_ramp:
        gcrf_args["ramp_steps"] = args.gcrf_ramp
    known = {
        "dense": {"recipe": "N1", "losses": {"fine": "ce"}, "loss_args": None},
        "clicks": {"recipe": "clicks", "losses": {"clicks": "partial_ce"}, "loss_args": None},
        "gcrf": {
            "recipe": "clicks",
            "losses": {"clicks": {"partial_ce": 1.0, "gated_crf": args.gcrf_weight}},
            "loss_args": {"clicks": {"gated_crf": gcrf_args}},
        },
    }
    for spec in args.extra:
        name, normalize, weight, ramp = spec.split(":")
        known[name] = {
            "recipe": "clicks",
            "losses": {"clicks": {"partial_ce": 1.0, "gated_crf": float(weight)}},
            "loss_args": {"clicks": {"gated_crf": {"normalize": normalize, "ramp_steps": int(ramp)}}},
        }
        args.runs.append(name)
    return {name: known[name] for name in args.runs}


@torch.no_grad()
def evaluate(module: VideoSegmentationModule, datamodule: VideoSegDataModule) -> dict[str, object]:
    """mIoU, pixel accuracy, per-class IoU and predicted class shares of the student on the val frames."""
    module.eval()
    matrix = ConfusionMatrix(datamodule.num_classes, datamodule.ignore_index)
    predicted = torch.zeros(datamodule.num_classes, dtype=torch.long)
    for batch in datamodule.val_dataloader():
        batch = datamodule.on_after_batch_transfer(batch, 0)  # normalised, as validation sees it
        pred = module.student(batch["frames"]).argmax(1)
        matrix.update(pred, batch["label"])
        predicted += torch.bincount(pred.flatten(), minlength=datamodule.num_classes)
    confmat = matrix.compute()
    iou = iou_from_confmat(confmat)
    return {
        "mIoU": 100 * float(iou.nanmean()),
        "pixel_acc": 100 * float(confmat.diag().sum() / confmat.sum().clamp(min=1)),
        "iou": {name: round(100 * float(v), 2) for name, v in zip(datamodule.class_names, iou, strict=True)},
        "predicted_share": {
            name: round(100 * float(n) / float(predicted.sum()), 2)
            for name, n in zip(datamodule.class_names, predicted, strict=True)
        },
    }


def camvid_datamodule(
    recipe: str, seed: int, args: argparse.Namespace, clicks: SimulatedClicks
) -> VideoSegDataModule:
    """camvid_dev's stills with ``recipe``'s labels, cropped and loaded as the options say."""
    return VideoSegDataModule(
        root=args.root,
        format="camvid",
        num_frames=1,
        recipe=RecipeOptions(recipe, seed=seed),
        augment=AugmentOptions(crop_size=tuple(args.crop), scale_range=(1.0, 1.0)),
        loader=LoaderOptions(
            batch_size=args.batch_size,
            val_batch_size=4,
            num_workers=args.workers,
            load_scale=args.load_scale,
            check_memory=False,
        ),
        labels=LabelOptions(clicks=clicks),
        temporal=TemporalOptions(consistency=False),
    )


def run(
    name: str, settings: dict, seed: int, args: argparse.Namespace, clicks: SimulatedClicks
) -> dict[str, object]:
    """Train one run with ``seed`` and score it."""
    L.seed_everything(seed, workers=True)
    datamodule = camvid_datamodule(settings["recipe"], seed, args, clicks)
    module = VideoSegmentationModule(
        student=args.student,
        num_classes=datamodule.num_classes,
        num_frames=1,
        class_names=datamodule.class_names,
        losses=settings["losses"],
        loss_args=settings["loss_args"],
        lr=args.lr,
        weight_decay=1e-4,
        min_lr=0.0,
        log_images=0,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    train_seconds = time.perf_counter() - start
    datamodule.setup("validate")
    scores = evaluate(module, datamodule)
    return {
        "run": name,
        **settings,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "crop": args.crop,
        "lr": args.lr,
        "seed": seed,
        "student": args.student,
        "load_scale": args.load_scale,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - start, 1),
        **scores,
    }


def summarise(results: list[dict[str, object]]) -> str:
    """Markdown table of each setting's val mIoU and pixel accuracy over its seeds (mean ± sample std)."""
    lines = [
        "| run | seeds | mIoU mean ± std | mIoU min–max | pixel acc. mean ± std | per seed mIoU |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in dict.fromkeys(str(r["run"]) for r in results):
        mine = [r for r in results if r["run"] == name]
        miou = torch.tensor([float(r["mIoU"]) for r in mine], dtype=torch.float64)  # type: ignore[arg-type]
        acc = torch.tensor([float(r["pixel_acc"]) for r in mine], dtype=torch.float64)  # type: ignore[arg-type]
        spread = float(miou.std()) if len(mine) > 1 else float("nan")
        acc_spread = float(acc.std()) if len(mine) > 1 else float("nan")
        per_seed = ", ".join(f"{r['seed']}: {float(r['mIoU']):.2f}" for r in mine)  # type: ignore[arg-type]
        lines.append(
            f"| {name} | {len(mine)} | {float(miou.mean()):.2f} ± {spread:.2f} | "
            f"{float(miou.min()):.2f}–{float(miou.max()):.2f} | "
            f"{float(acc.mean()):.2f} ± {acc_spread:.2f} | {per_seed} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    runs = run_settings(args)
    clicks = SimulatedClicks(store=args.store, progress=False)
    environment = provenance()
    print(provenance_line(environment), flush=True)
    results = []
    for seed in args.seeds:
        for name, settings in runs.items():
            result = run(name, settings, seed, args, clicks) | {"provenance": environment}
            if settings["recipe"] == "clicks":
                result["clicks_per_class"] = json.loads(
                    clicks_per_class_path(LabelStore(args.store), "train").read_text(encoding="utf-8")
                )
            results.append(result)
            line = json.dumps(result)
            print(line, flush=True)
            if args.json:
                with Path(args.json).open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
    table = summarise(results)
    print(table)
    if args.summary:
        Path(args.summary).write_text(provenance_line(environment) + "\n\n" + table, encoding="utf-8")


if __name__ == "__main__":
    main()
