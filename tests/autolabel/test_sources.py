"""Label sources: a store of any engine trains a student; partial snippets label and train; bad stores.

The stores are made with the real ``frugalseg label propagate`` command (the SAM 2 engine with random
weights: the pipeline, not the quality), then handed to ``frugalseg fit`` as ``data.labels.pseudo``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import lightning_args
from data.fake_cityscapes import write_partial_snippets

from frugalseg.autolabel.sources import FlowLabels, StoredLabels
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.cli.lightning import run_lightning_cli
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.errors import ConfigError, LabelStoreError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
SMALL = ["--model.student", "deeplabv3plus_mbv2", "--data.num_frames", "1", "--trainer.fast_dev_run", "true"]


def _propagate(root: Path, out: Path, *options: str, offsets: str = "-10,10") -> None:
    argv = ["label", "propagate", "--format", "synthetic", "--root", str(root), "--out", str(out)]
    assert main([*argv, f"--offsets={offsets}", "--no-progress", *options]) == 0


def _fit(root: Path, out: Path, recipe: str = "B3", **data: object) -> object:
    args = lightning_args(
        CONFIG, root, out, recipe={"name": recipe, "budget": 6}, augment={"crop_size": "null"}, **data
    )
    return run_lightning_cli(["fit", *args, *SMALL])


def _pseudo_paths(cli: object) -> set[Path]:
    dataset = cli.datamodule.datasets["train"]
    return {
        dataset.clips[s.clip_id].label(s.offset, LabelKind.PSEUDO).path
        for s in dataset.samples
        if s.kind is LabelKind.PSEUDO
    }


@pytest.mark.slow
def test_a_store_written_by_the_sam2_engine_trains_a_student(tiny_streets, sam2_checkpoint, tmp_path):
    store = tmp_path / "sam2_store"
    sam2 = ["--engine", "sam2", "--sam2-checkpoint", str(sam2_checkpoint), "--sam2-image-size", "64"]
    _propagate(tiny_streets, store, *sam2, "--sam2-device", "cpu", offsets="-1,1")  # SAM 2 tracks one frame
    assert {record["engine"] for record in LabelStore(store).records()} == {"sam2"}
    cli = _fit(tiny_streets, tmp_path / "run", recipe="B3s", labels={"pseudo": store})
    used = _pseudo_paths(cli)
    assert used and all(path.is_relative_to(store) for path in used)  # the SAM 2 labels, not flow's
    assert cli.trainer.state.finished and "train/loss_pseudo" in cli.trainer.callback_metrics


@pytest.mark.slow
def test_a_store_made_with_other_flow_settings_trains_a_student(tiny_streets, tmp_path):
    store = tmp_path / "fast_store"
    _propagate(tiny_streets, store, "--preset", "fast")
    cli = _fit(tiny_streets, tmp_path / "run", labels={"pseudo": store})
    assert all(path.is_relative_to(store) for path in _pseudo_paths(cli))
    assert cli.datamodule.hparams["labels"]["pseudo"]["store"] == str(store)


def test_a_store_of_another_data_set_or_split_is_refused_by_name(tiny_streets, tmp_path, shared_data):
    store = tmp_path / "store"
    _propagate(tiny_streets, store, offsets="-1,1")
    fmt = get_format("synthetic", tiny_streets)
    with pytest.raises(LabelStoreError, match=r"holds pseudo labels of split\(s\) train, none of 'val'"):
        StoredLabels(store).attach(fmt, "val", fmt.clips("val"))
    davis = get_format("davis", shared_data / "davis_dev")
    with pytest.raises(
        LabelStoreError, match="run.json: labels of a synthetic data set, but the data are read"
    ):
        StoredLabels(store).attach(davis, "all", davis.clips("all"))
    with pytest.raises(
        LabelStoreError,
        match=r"holds no clicks labels \(it holds pseudo labels: give it as "
        r"data.labels.pseudo\)",
    ):
        StoredLabels(store, "clicks").attach(fmt, "train", fmt.clips("train"))
    with pytest.raises(LabelStoreError, match="nothing: label store folder does not exist"):
        StoredLabels(tmp_path / "nothing").attach(fmt, "train", fmt.clips("train"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelStoreError, match="run.json: not found: .*empty is not a label store"):
        StoredLabels(tmp_path / "empty").attach(fmt, "train", fmt.clips("train"))


def test_a_boxes_store_given_for_pseudo_labels_says_what_it_holds(tiny_streets, tmp_path):
    """It said "holds no pseudo labels" alone: the store of `label boxes` trains no student."""
    store = LabelStore(tmp_path / "boxes")
    store.open_run({"engine": "sam-boxes", "settings": {}})
    clip = get_format("synthetic", tiny_streets).clips("train")[0]
    store.write(
        clip,
        0,
        LabelKind.BOXES,
        np.zeros((64, 128), np.uint8),
        engine="sam-boxes",
        settings={},
        source_offset=0,
        seconds=0,
    )
    fmt = get_format("synthetic", tiny_streets)
    with pytest.raises(LabelStoreError) as error:
        StoredLabels(store.root).attach(fmt, "train", fmt.clips("train"))
    assert str(error.value).endswith(
        "holds no pseudo labels (it holds boxes labels, which no data.labels option trains on)"
    )


def test_a_store_whose_labels_are_named_after_other_frames_is_refused(tiny_streets, tmp_path):
    store = tmp_path / "store"
    _propagate(tiny_streets, store, offsets="-1,1")
    manifest = store / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    records[0]["path"] = records[1]["path"]
    manifest.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    fmt = get_format("synthetic", tiny_streets)
    with pytest.raises(LabelStoreError, match="is not named after its frame"):
        StoredLabels(store).attach(fmt, "train", fmt.clips("train"))


def test_a_store_s_missing_or_cut_label_is_named_before_training(tiny_streets, tmp_path):
    """It had been found at its batch, mid-epoch, leaving a run folder without a checkpoint."""
    store = tmp_path / "store"
    _propagate(tiny_streets, store, offsets="-1,1")
    fmt = get_format("synthetic", tiny_streets)
    label = store / LabelStore(store).records()[0]["path"]
    damages = (
        label.unlink,
        lambda: label.write_bytes(label.read_bytes()[:100]),
        lambda: label.write_bytes(bytes(4096)),
    )
    for damage in damages:  # gone, cut short, zeros where a crashed copy stopped
        damage()
        with pytest.raises(LabelStoreError) as error:
            StoredLabels(store).attach(fmt, "train", fmt.clips("train"))
        assert str(error.value) == (
            f"{label}: recorded in the store but missing or cut short: run the command that made the store "
            f"again with the same --out ({store}): it makes such labels again"
        )
        _propagate(tiny_streets, store, offsets="-1,1")  # as the message says
    StoredLabels(store).attach(fmt, "train", fmt.clips("train"))


def test_a_store_records_each_frame_and_refuses_a_data_set_whose_frames_differ(tiny_streets, tmp_path):
    import hashlib
    import shutil

    store = tmp_path / "store"
    _propagate(tiny_streets, store, offsets="-1,1")
    fmt = get_format("synthetic", tiny_streets)
    clip = fmt.clips("train")[0]
    record = next(r for r in LabelStore(store).records() if r["clip_id"] == clip.clip_id and r["offset"] == 1)
    data = clip.frame_path(1).read_bytes()
    assert record["frame"] == f"{len(data)}:{hashlib.sha256(data[:65536]).hexdigest()[:16]}"
    copy = tmp_path / "copy"  # the same frames elsewhere (new modification times): attached
    shutil.copytree(tiny_streets, copy)
    copied = get_format("synthetic", copy)
    clips = copied.clips("train")
    assert StoredLabels(store).attach(copied, "train", clips) == 2 * len(clips)
    frame = copied.clips("train")[0].frame_path(1)
    frame.write_bytes(frame.read_bytes()[:-16] + bytes(16))  # one labelled frame changed, same size
    changed = get_format("synthetic", copy)
    with pytest.raises(LabelStoreError, match=f"made from other frames than the data set {copy}"):
        StoredLabels(store).attach(changed, "train", changed.clips("train"))


def test_a_source_of_the_wrong_kind_is_a_config_error(tiny_streets):
    from frugalseg.autolabel.sources import SimulatedClicks
    from frugalseg.datamodules.datamodule import VideoSegDataModule
    from frugalseg.datamodules.options import LabelOptions, RecipeOptions

    with pytest.raises(
        ConfigError, match="data.labels.pseudo: expects pseudo labels, but SimulatedClicks gives"
    ):
        VideoSegDataModule(root=str(tiny_streets), labels=LabelOptions(pseudo=SimulatedClicks()))
    with pytest.raises(ConfigError, match="data.labels.refined: recipe RC30 trains on refined_coarse labels"):
        VideoSegDataModule(root=str(tiny_streets), recipe=RecipeOptions("RC30")).source(
            LabelKind.REFINED_COARSE
        )
    flow = VideoSegDataModule(root=str(tiny_streets), labels=LabelOptions(pseudo=FlowLabels(preset="fast")))
    assert flow.hparams["labels"]["pseudo"]["settings"]["preset"] == "fast"


@pytest.mark.slow
def test_a_partial_snippet_checks_labels_and_trains(tmp_path, capsys, caplog):
    root = write_partial_snippets(tmp_path / "cityscapes")
    assert main(["data", "check", str(root), "--no-progress"]) == 0
    assert f"no problems found in {root} (15 warning(s))" in capsys.readouterr().out
    store = tmp_path / "store"
    argv = ["label", "propagate", "--format", "cityscapes", "--root", str(root), "--out", str(store)]
    assert main([*argv, "--offsets=-1,1", "--no-progress"]) == 0
    assert {(r["clip_id"], r["offset"]) for r in LabelStore(store).records()} == {
        (f"c_00000{seq}_000019", offset) for seq in (1, 2) for offset in (-1, 1)
    }
    cli = _fit(
        root, tmp_path / "run", format="cityscapes", splits={"val": "train"}, temporal={"consistency": False}
    )
    assert "recipe B3: 2 sample(s) left out" in caplog.text and "c_000002_000019-10" in caplog.text
    samples = {(s.clip_id, s.offset) for s in cli.datamodule.samples}
    assert samples == {("c_000001_000019", o) for o in (-10, 0, 10)} | {("c_000002_000019", 0)}
    assert cli.trainer.state.finished
