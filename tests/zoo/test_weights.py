"""Published weights: publish → load by name with sha256 checked, tampering, wrong classes/architecture."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import frugalseg
from frugalseg.cli import main
from frugalseg.errors import WeightsError
from frugalseg.lightning_modules.publish import _training_record, publish_checkpoint
from frugalseg.zoo import (
    INDEX_FILE,
    checkpoints_dirs,
    get_model,
    load_pretrained,
    packaged_checkpoints,
    read_index,
    resolve,
    url_cache_path,
)

ARCH = "hrnetv2_w18_small"
CLASSES = ["road", "sidewalk", "building", "car"]


def _student(seed: int = 0) -> torch.nn.Module:
    """A small student with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = get_model(ARCH, num_classes=len(CLASSES))
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    return model.eval()


def _fake_run(tmp_path: Path, model: torch.nn.Module) -> Path:
    """A run folder as `frugalseg fit` leaves it: checkpoints/last.ckpt, samples.json, config.yaml."""
    run = tmp_path / "run" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = {
        "epoch": 2,
        "global_step": 30,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {f"student.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": {
            "student": ARCH,
            "student_args": None,
            "num_classes": len(CLASSES),
            "num_frames": 1,
            "class_names": CLASSES,
            "ignore_index": 255,
        },
        "datamodule_hyper_parameters": {"root": None, "recipe": {"name": "B3", "budget": 6, "seed": 0}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/mIoU'}": {
                "monitor": "val/mIoU",
                "current_score": torch.tensor(0.5),
            }
        },
    }
    torch.save(checkpoint, run / "checkpoints" / "last.ckpt")
    samples = [("a", -10, "pseudo"), ("a", 0, "fine"), ("a", 10, "pseudo"), ("b", 0, "fine")]
    (run / "samples.json").write_text(
        json.dumps(
            {
                "recipe": "B3",
                "cost": {"minutes": {"fine": 180.0, "pseudo": 0.0}, "total_hours": 3.0, "manual_frames": 2},
                "samples": [{"clip_id": c, "offset": o, "kind": k} for c, o, k in samples],
            }
        ),
        encoding="utf-8",
    )
    (run / "config.yaml").write_text("model:\n  student: hrnetv2_w18_small\n", encoding="utf-8")
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("FRUGALSEG_CHECKPOINTS", str(folder))
    return folder


@pytest.fixture
def published(tmp_path, zoo_dir) -> tuple[torch.nn.Module, dict]:
    model = _student()
    ckpt = _fake_run(tmp_path, model)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,step,val/mIoU,val/mAcc\n0,0,0.25,0.5\n", encoding="utf-8")
    card = publish_checkpoint(
        ckpt, "tiny-streets", metrics_file=metrics, metrics_command="frugalseg validate …"
    )
    return model, card


def _frames(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 1, 3, 32, 64, generator=torch.Generator().manual_seed(seed))


def _output(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(_frames())


def test_a_cards_palette_is_the_one_predict_colours_with() -> None:
    """A CamVid model's card had seeded colours (Sky was not CamVid's grey) beside `predict`'s maps."""
    from frugalseg.data.formats.camvid import CAMVID
    from frugalseg.data.formats.idd import IDD_LEVEL3
    from frugalseg.zoo import palette_for

    assert palette_for(list(CAMVID.names))[:2] == [[128, 128, 128], [128, 0, 0]]  # Sky, Building
    assert palette_for(list(IDD_LEVEL3.names)) == [list(colour) for colour in IDD_LEVEL3.palette]
    assert palette_for(["background", "object"]) == [[0, 0, 0], [128, 0, 0]]
    assert palette_for(["car", "road"]) == [[0, 0, 142], [128, 64, 128]]  # Cityscapes' by name


def test_publish_writes_named_file_card_and_index(published, zoo_dir):
    _, card = published
    path = zoo_dir / card["file"]
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    assert card["file"] == f"tiny-streets-{sha[:8]}.safetensors" and card["sha256"] == sha
    assert card["size_bytes"] == len(data)
    on_disk = json.loads((zoo_dir / card["card"]).read_text(encoding="utf-8"))
    assert on_disk == card
    assert card["architecture"] == ARCH and card["num_classes"] == 4 and card["num_frames"] == 1
    assert card["class_names"] == CLASSES
    # Cityscapes colours by class name: road (128, 64, 128), car (0, 0, 142).
    assert card["palette"][0] == [128, 64, 128] and card["palette"][3] == [0, 0, 142]
    assert card["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert (
        card["training"]["recipe"] == "B3"
        and card["training"]["budget"] == 6
        and card["training"]["seed"] == 0
    )
    assert card["training"]["label_sources"] == {"fine": 2, "pseudo": 2}
    assert card["training"]["annotation_cost"]["total_hours"] == 3.0
    assert card["metrics"] == {
        "values": {"val/mAcc": 0.5, "val/mIoU": 0.25},
        "command": "frugalseg validate …",
    }
    assert card["frugalseg_version"] == "0.1.0"
    index = read_index(zoo_dir)
    assert index["models"]["tiny-streets"]["sha256"] == sha
    assert index["models"]["tiny-streets"]["file"] == card["file"]
    markdown = (zoo_dir / card["card"].replace(".json", ".md")).read_text(encoding="utf-8")
    assert sha in markdown and "| pseudo | 2 |" in markdown and "frugalseg validate …" in markdown


def test_the_training_record_reads_the_data_options_grouped_and_as_earlier_releases_saved_them(tmp_path):
    grouped = {
        "root": "data/x",
        "format": "cityscapes",
        "recipe": {"name": "B3", "budget": 6, "seed": 1},
        "augment": {"crop_size": [64, 128], "scale_range": [0.5, 2.0], "flip_prob": 0.5},
        "loader": {"load_scale": 0.5, "batch_size": 2},
    }
    flat = {"root": "data/x", "format": "cityscapes", "recipe": "B3", "budget": 6, "seed": 1}
    flat |= {"crop_size": [64, 128], "load_scale": 0.5, "batch_size": 2}
    records = [
        _training_record(tmp_path / "last.ckpt", {"datamodule_hyper_parameters": data}, tmp_path)
        for data in (grouped, flat)
    ]
    expected = {"recipe": "B3", "budget": 6, "seed": 1, "crop_size": [64, 128], "load_scale": 0.5}
    assert records[0] == records[1]
    assert {key: records[0][key] for key in expected} == expected


def test_load_by_name_round_trip_gives_equal_outputs(published):
    model, card = published
    loaded = get_model(ARCH, weights="tiny-streets").eval()
    assert loaded.num_classes == 4
    reference = _output(model)
    assert torch.equal(_output(loaded), reference)
    assert not torch.equal(_output(get_model(ARCH, num_classes=4)), reference)  # loading did the work
    assert resolve("tiny-streets").verified == card["sha256"]
    # Built from the card alone, too.
    assert torch.equal(_output(load_pretrained("tiny-streets")), _output(model))


def test_checkpoint_score_is_the_metric_without_a_metrics_file(tmp_path, zoo_dir):
    ckpt = _fake_run(tmp_path, _student())
    card = publish_checkpoint(ckpt, "from-ckpt")
    assert card["metrics"]["values"] == {"val/mIoU": 0.5}
    assert card["metrics"]["command"].startswith("frugalseg fit --config ")


def test_a_checkpoint_kept_apart_from_its_run_folder_says_to_give_run_dir(tmp_path, zoo_dir, caplog):
    """A config fixing ``checkpoint.dirpath`` (tdnet_stage1) keeps the logger's version folder elsewhere: the
    card had lost its label sources and command without a word on the terminal."""
    import logging
    import shutil

    ckpt = _fake_run(tmp_path, _student())
    stage = tmp_path / "runs" / "stage1"
    (stage / "checkpoints").mkdir(parents=True)
    kept = shutil.copy(ckpt, stage / "checkpoints" / "last.ckpt")
    shutil.copytree(
        ckpt.parent.parent, stage / "td2_psp50_clips" / "version_0", ignore=shutil.ignore_patterns("*.ckpt")
    )
    with caplog.at_level(logging.WARNING, logger="frugalseg.lightning_modules.publish"):
        card = publish_checkpoint(kept, "kept-apart")
    assert "label_sources" not in card["training"]
    assert caplog.messages == [
        f"{stage / 'samples.json'} was not found: the label sources and their cost are unknown; give the "
        "run's log folder (the version_N of samples.json and config.yaml) as --run-dir (found under it: "
        f"{stage / 'td2_psp50_clips' / 'version_0'})"
    ]
    again = publish_checkpoint(kept, "kept-apart-2", run_dir=stage / "td2_psp50_clips" / "version_0")
    assert again["training"]["label_sources"] == {"fine": 2, "pseudo": 2}


def _validate_run(folder: Path, hparams: dict, ckpt_path: str | None) -> Path:
    """The metrics.csv of a `frugalseg validate` run, with its hparams.yaml and config.yaml beside it."""
    folder.mkdir(parents=True)
    (folder / "hparams.yaml").write_text(yaml.safe_dump(hparams), encoding="utf-8")
    (folder / "config.yaml").write_text(yaml.safe_dump({"ckpt_path": ckpt_path}), encoding="utf-8")
    (folder / "metrics.csv").write_text("epoch,step,val/mIoU\n0,0,0.6961\n", encoding="utf-8")
    return folder / "metrics.csv"


def test_metrics_measured_on_other_weights_are_refused(tmp_path, zoo_dir):
    ckpt = _fake_run(tmp_path, _student())
    other = _fake_run(tmp_path / "other", _student(seed=1))
    shipped = "streets-hrnetv2-w18s"
    cases = [
        (
            {"student": ARCH, "student_args": {"weights": shipped}, "init_weights": None},
            None,
            f"on {shipped} (student_args.weights in hparams.yaml), other weights than {ckpt}'s student",
        ),
        (
            {"student": ARCH, "init_weights": shipped},
            str(other),  # Lightning loads it last
            f"on {other} (ckpt_path in config.yaml), other weights than {ckpt}'s student",
        ),
        (
            {"student": ARCH, "init_weights": None},
            None,
            "on a student with no trained weights loaded (no ckpt_path, init_weights or "
            f"student_args.weights beside it), not on {ckpt}",
        ),
        (
            {"student": "pspnet_r18"},
            str(ckpt),
            f"on a pspnet_r18 student (hparams.yaml beside it), but {ckpt} holds a {ARCH}",
        ),
    ]
    advice = (
        f"give the metrics of `frugalseg validate --ckpt_path {ckpt}`, or --run-dir for its training run's"
    )
    for number, (hparams, ckpt_path, problem) in enumerate(cases):
        metrics = _validate_run(tmp_path / f"validate{number}", hparams, ckpt_path)
        with pytest.raises(WeightsError) as err:
            publish_checkpoint(ckpt, "mine", metrics_file=metrics, metrics_command="frugalseg validate …")
        assert str(err.value) == f"{metrics}: measured {problem}; {advice}"
    assert not zoo_dir.exists()  # nothing published


def test_metrics_measured_on_the_same_weights_are_published(tmp_path, zoo_dir, caplog):
    ckpt = _fake_run(tmp_path, _student())
    metrics = _validate_run(tmp_path / "validate", {"student": ARCH, "init_weights": None}, str(ckpt))
    card = publish_checkpoint(ckpt, "mine", metrics_file=metrics, metrics_command="frugalseg validate …")
    assert card["metrics"] == {"values": {"val/mIoU": 0.6961}, "command": "frugalseg validate …"}
    # published in float16, validated by its name, published again with the metrics: the same weights
    publish_checkpoint(ckpt, "half", dtype=torch.float16)
    metrics = _validate_run(tmp_path / "validate-half", {"student": ARCH, "init_weights": "half"}, None)
    card = publish_checkpoint(
        ckpt, "half", metrics_file=metrics, metrics_command="frugalseg validate …", dtype=torch.float16
    )
    assert card["metrics"]["values"] == {"val/mIoU": 0.6961}
    # a source that cannot be read any more is not checked, and said so
    metrics = _validate_run(tmp_path / "validate-moved", {"student": ARCH}, "moved.ckpt")
    with caplog.at_level("WARNING", logger="frugalseg.lightning_modules.publish"):
        publish_checkpoint(ckpt, "mine", metrics_file=metrics, metrics_command="frugalseg validate …")
    assert caplog.messages == [
        f"{metrics}: cannot check that it was measured on {ckpt} (ckpt_path in config.yaml): "
        "moved.ckpt: weights file does not exist"
    ]


def test_a_checkpoint_without_a_validation_score_is_published_as_not_measured(tmp_path, zoo_dir):
    ckpt = _fake_run(tmp_path, _student())
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["callbacks"]
    torch.save(checkpoint, ckpt)
    card = publish_checkpoint(ckpt, "mine")
    assert card["metrics"] == {"values": {}, "note": "not measured: the checkpoint holds no validation score"}
    assert read_index(zoo_dir)["models"]["mine"]["metrics"] == {}


def test_half_precision_halves_the_file(tmp_path, zoo_dir, published):
    model, card = published
    ckpt = tmp_path / "run" / "version_0" / "checkpoints" / "last.ckpt"
    half = publish_checkpoint(ckpt, "tiny-half", dtype=torch.float16)
    assert half["dtype"] == "float16" and card["dtype"] == "float32"
    assert 0.45 < half["size_bytes"] / card["size_bytes"] < 0.55
    loaded = get_model(ARCH, weights="tiny-half").eval()
    torch.testing.assert_close(_output(loaded), _output(model), atol=5e-2, rtol=5e-2)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # inside the last tensor
    path.write_bytes(bytes(data))


def test_tampered_file_is_refused_by_name_path_and_short_name(published, zoo_dir, tmp_path):
    _, card = published
    path = zoo_dir / card["file"]
    _flip_one_byte(path)
    with pytest.raises(WeightsError, match=r"sha256 is [0-9a-f]{64}, but .*index.json records") as err:
        get_model(ARCH, weights="tiny-streets")
    assert card["file"] in str(err.value)
    with pytest.raises(WeightsError, match="its card"):
        get_model(ARCH, weights=str(path))
    # Without the card beside it, the 8 hex digits of the name still catch it.
    alone = tmp_path / "copy" / card["file"]
    alone.parent.mkdir()
    alone.write_bytes(path.read_bytes())
    with pytest.raises(
        WeightsError, match="its name says its sha256 starts with [0-9a-f]{8}, but its content"
    ):
        get_model(ARCH, weights=str(alone))


def test_a_file_whose_name_and_content_disagree_is_called_renamed_or_damaged(published, zoo_dir, tmp_path):
    _, card = published
    renamed = tmp_path / "my-hr-full-deadbeef.safetensors"
    renamed.write_bytes((zoo_dir / card["file"]).read_bytes())
    with pytest.raises(WeightsError) as err:
        resolve(renamed)
    assert str(err.value) == (
        f"{renamed}: its name says its sha256 starts with deadbeef, but its content's starts with "
        f"{card['sha256'][:8]}: renamed or damaged (no card my-hr-full-deadbeef.json beside it tells which); "
        "refusing to load it"
    )
    shutil.copy(zoo_dir / card["card"], renamed.with_suffix(".json"))  # its card tells: only renamed
    assert resolve(renamed).verified == card["sha256"]


def test_card_that_disagrees_with_index_is_refused(published, zoo_dir):
    _, card = published
    card_path = zoo_dir / card["card"]
    changed = json.loads(card_path.read_text(encoding="utf-8"))
    changed["sha256"] = "0" * 64
    card_path.write_text(json.dumps(changed), encoding="utf-8")
    with pytest.raises(WeightsError, match="differs from the index"):
        get_model(ARCH, weights="tiny-streets")


def test_wrong_classes_architecture_or_frames_are_clear_errors(published):
    with pytest.raises(WeightsError, match="trained for 4 classes, but the model was asked for 19"):
        get_model(ARCH, num_classes=19, weights="tiny-streets")
    with pytest.raises(
        WeightsError, match="architecture 'hrnetv2_w18_small', but 'hrnetv2_w18' was asked for"
    ):
        get_model("hrnetv2_w18", weights="tiny-streets")
    with pytest.raises(WeightsError, match="trained with num_frames=1, but num_frames=3 was asked for"):
        get_model(ARCH, num_frames=3, weights="tiny-streets")


def test_tensor_of_the_wrong_shape_is_named(tmp_path):
    ckpt = _fake_run(tmp_path, _student())
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["state_dict"]["student.last_layer.3.bias"] = torch.zeros(5)
    del checkpoint["state_dict"]["student.last_layer.1.running_var"]
    torch.save(checkpoint, ckpt)
    with pytest.raises(WeightsError) as err:
        get_model(ARCH, weights=str(ckpt))
    message = str(err.value)
    assert "missing 1: last_layer.1.running_var" in message
    assert "last_layer.3.bias (5,) in the file, (4,) in the model" in message


def test_unknown_name_lists_what_is_published(published, tmp_path):
    with pytest.raises(WeightsError, match=r"not a published name .*published: tiny-streets"):
        get_model(ARCH, weights="no-such-model")
    with pytest.raises(WeightsError, match="weights file does not exist"):
        get_model(ARCH, weights="missing/weights.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError) as err:
        resolve(tmp_path / "empty")
    assert str(err.value) == (
        f"{tmp_path / 'empty'}: a folder, not a weights file, "
        "and no frugalseg Hub folder (it holds no config.json)"
    )


def test_lightning_checkpoint_path_loads_without_unpickling(tmp_path):
    model = _student(seed=3)
    ckpt = _fake_run(tmp_path, model)
    loaded = get_model(ARCH, weights=str(ckpt)).eval()
    assert torch.equal(_output(loaded), _output(model))
    with pytest.raises(WeightsError, match="trained for 4 classes"):
        get_model(ARCH, num_classes=5, weights=str(ckpt))


class _Payload:
    """An object a malicious checkpoint could carry; weights_only=True must refuse to build it."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with path.open("wb") as handle:
        pickle.dump({"state_dict": {}, "hyper_parameters": _Payload()}, handle, protocol=2)
    with pytest.raises(WeightsError, match=r"evil.ckpt: cannot be read with torch.load\(weights_only=True\)"):
        get_model(ARCH, weights=str(path))
    assert "unpickled!" not in capsys.readouterr().out


def test_url_is_downloaded_once_into_the_cache_and_verified(published, zoo_dir, tmp_path, monkeypatch):
    model, card = published
    cache = tmp_path / "cache"
    monkeypatch.setenv("FRUGALSEG_CACHE", str(cache))
    url = (zoo_dir / card["file"]).as_uri()
    loaded = get_model(ARCH, weights=url).eval()
    assert torch.equal(_output(loaded), _output(model))
    cached = url_cache_path(url)
    assert cached == cache / "weights" / hashlib.sha256(url.encode()).hexdigest()[:32] / card["file"]
    assert cached.is_file() and url_cache_path(url.replace(".safetensors", ".json")).is_file()
    _flip_one_byte(cached)  # a corrupted cache is caught as well
    with pytest.raises(WeightsError, match="refusing to load it"):
        get_model(ARCH, weights=url)


def test_zoo_list_and_verify_commands(published, zoo_dir, capsys, monkeypatch):
    _, card = published
    monkeypatch.chdir(Path(frugalseg.__file__).parents[1])  # the package's folder, as in a clone's root
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-streets" in out and card["sha256"][:8] in out and ARCH in out
    shipped = out.split(str(zoo_dir / "index.json"))[1]  # the shipped index, listed too
    assert (
        "published weights (frugalseg/checkpoints/index.json)" in shipped
        and "streets-hrnetv2-w18s" in shipped
    )
    assert main(["zoo", "verify", "tiny-streets"]) == 0
    assert card["sha256"] in capsys.readouterr().out
    # a local file no card records loads, but cannot be verified: said so, and exit 1 (it had said ok)
    local = zoo_dir.parent / "mine.safetensors"
    shutil.copyfile(zoo_dir / card["file"], local)
    assert main(["zoo", "verify", str(local)]) == 1
    assert capsys.readouterr().out.startswith(f"UNVERIFIED {local} ({local}): ")
    _flip_one_byte(zoo_dir / card["file"])
    assert main(["zoo", "verify", "tiny-streets"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_zoo_list_shows_the_weights_of_a_local_index_beside_the_shipped_ones(published, zoo_dir, capsys):
    index = json.loads((zoo_dir / INDEX_FILE).read_text(encoding="utf-8"))
    entry = {**index["models"]["tiny-streets"], "architecture": "pspnet_r18"}  # no weights ship for it
    index["models"]["tiny-pspnet"] = entry
    (zoo_dir / INDEX_FILE).write_text(json.dumps(index), encoding="utf-8")
    assert main(["zoo", "list", "--pretrained"]) == 0
    models = capsys.readouterr().out.split("published weights")[0]
    assert re.search(r"\bhrnetv2_w18_small\b.*│ streets-hrnetv2-w18s, tiny-streets +│", models)
    assert re.search(r"\bpspnet_r18\b.*│ tiny-pspnet +│", models)
    assert "pspnet_r101" not in models  # neither shipped nor published weights


def test_index_json_is_valid_after_each_publish(tmp_path, zoo_dir):
    ckpt = _fake_run(tmp_path, _student())
    for name in ("one", "two"):
        publish_checkpoint(ckpt, name)
    index = json.loads((zoo_dir / INDEX_FILE).read_text(encoding="utf-8"))
    assert sorted(index["models"]) == ["one", "two"]
    assert not list(zoo_dir.glob(".*.tmp"))


def test_publishing_a_name_again_says_which_weights_it_replaces(tmp_path, zoo_dir, capsys):
    """The index entry had been replaced without a word."""
    first = _fake_run(tmp_path / "a", _student(0))
    assert main(["zoo", "publish", str(first), "--name", "tiny"]) == 0
    sha = json.loads((zoo_dir / INDEX_FILE).read_text(encoding="utf-8"))["models"]["tiny"]["sha256"]
    assert "replaces" not in capsys.readouterr().out
    assert main(["zoo", "publish", str(_fake_run(tmp_path / "b", _student(1))), "--name", "tiny"]) == 0
    said = capsys.readouterr().out
    assert f"it replaces the weights published as tiny before (sha256 {sha})" in said
    old = [zoo_dir / f"tiny-{sha[:8]}.{suffix}" for suffix in ("safetensors", "json", "md")]
    assert f"their files are kept (the index no longer names them): {', '.join(map(str, old))}\n" in said
    assert all(path.is_file() for path in old)
    assert main(["zoo", "publish", str(first), "--name", "other"]) == 0
    assert "replaces" not in capsys.readouterr().out


def test_a_score_of_a_limited_validation_says_so_on_the_card_and_the_terminal(tmp_path, zoo_dir, capsys):
    """A run validating 1 batch an epoch had published its score as the validation split's, without a word."""
    ckpt = _fake_run(tmp_path, _student())
    config = ckpt.parent.parent / "config.yaml"
    config.write_text(
        "trainer:\n  limit_val_batches: 1\nmodel:\n  student: hrnetv2_w18_small\n", encoding="utf-8"
    )
    assert main(["zoo", "publish", str(ckpt), "--name", "limited"]) == 0
    note = (
        "validation during training, after epoch 3; on part of the validation split only "
        "(trainer.limit_val_batches 1)"
    )
    assert capsys.readouterr().out.endswith(f"val/mIoU = 0.5000\n({note})\n")
    card = json.loads((zoo_dir / "index.json").read_text(encoding="utf-8"))["models"]["limited"]
    assert json.loads((zoo_dir / card["card"]).read_text(encoding="utf-8"))["metrics"]["note"] == note
    markdown = (zoo_dir / card["card"]).with_suffix(".md").read_text(encoding="utf-8")
    assert f"({note})." in markdown  # the human-readable card had shown the score alone
    config.write_text("trainer:\n  limit_val_batches: 1.0\n", encoding="utf-8")  # the whole split
    assert main(["zoo", "publish", str(ckpt), "--name", "whole"]) == 0
    assert capsys.readouterr().out.endswith(
        "val/mIoU = 0.5000\n(validation during training, after epoch 3)\n"
    )


def test_invalid_published_name_is_refused(tmp_path, zoo_dir):
    ckpt = _fake_run(tmp_path, _student())
    with pytest.raises(ValueError, match="invalid published name 'Bad Name'"):
        publish_checkpoint(ckpt, "Bad Name")


def test_the_published_streets_model_loads_by_name_and_segments(tiny_streets):
    """The repository's own zoo entry: sha256 verified, and it recognises the synthetic streets."""
    from frugalseg.data.clips import LabelKind
    from frugalseg.data.formats import get_format
    from frugalseg.data.io import read_frame, read_label
    from frugalseg.datamodules.transforms import Normalize

    loaded = resolve("streets-hrnetv2-w18s")
    assert loaded.verified == loaded.card["sha256"] and loaded.path.stat().st_size < 5_000_000
    model = get_model("hrnetv2_w18_small", weights="streets-hrnetv2-w18s").eval()
    correct = total = 0
    for clip in get_format("cityscapes", tiny_streets).clips("val"):
        frame = torch.from_numpy(read_frame(clip.frame_path(0))).permute(2, 0, 1)
        label = torch.from_numpy(read_label(clip.label(0, LabelKind.FINE).path)).long()
        with torch.no_grad():
            pred = model(Normalize()(frame[None, None])).argmax(1)[0]
        valid = label != 255
        correct += int((pred[valid] == label[valid]).sum())
        total += int(valid.sum())
    assert correct / total > 0.7, correct / total


def test_torch_files_a_bare_state_dict_loads_and_a_foreign_checkpoint_is_named(tmp_path):
    model = _student(seed=3)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    loaded = get_model(ARCH, num_classes=len(CLASSES), weights=str(tmp_path / "bare.pt"))
    assert torch.equal(_output(loaded), _output(model))
    assert resolve(tmp_path / "bare.pt").card == {}  # nothing to check architecture or classes against
    with pytest.raises(WeightsError, match=r"bare\.pt: not a checkpoint of `frugalseg fit`"):
        publish_checkpoint(tmp_path / "bare.pt", "bare", out=tmp_path / "zoo")
    hparams = {"student": ARCH, "num_classes": len(CLASSES), "num_frames": 1}
    torch.save({"state_dict": {"net.w": torch.ones(1)}, "hyper_parameters": hparams}, tmp_path / "other.ckpt")
    with pytest.raises(WeightsError, match=r"other\.ckpt: state_dict has no 'student\.\*' tensors"):
        resolve(tmp_path / "other.ckpt")
    torch.save({"state_dict": {"w": "not a tensor"}}, tmp_path / "odd.ckpt")
    with pytest.raises(WeightsError, match=r"odd\.ckpt: state dict entries that are not tensors: w"):
        resolve(tmp_path / "odd.ckpt")


def test_a_name_published_without_out_is_found_from_the_same_folder(tmp_path, monkeypatch):
    """``zoo publish`` writes ``./checkpoints`` by default: ``get_model(weights=NAME)`` reads it there."""
    monkeypatch.delenv("FRUGALSEG_CHECKPOINTS", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    model = _student()
    card = publish_checkpoint(_fake_run(tmp_path, model), "mine")
    assert (work / "checkpoints" / card["file"]).is_file()
    assert checkpoints_dirs() == [Path("checkpoints"), packaged_checkpoints()]
    assert torch.equal(_output(get_model(ARCH, weights="mine")), _output(model))
    assert main(["zoo", "verify", "mine"]) == 0
    monkeypatch.chdir(tmp_path)  # elsewhere, only the shipped names
    assert checkpoints_dirs() == [packaged_checkpoints()]


def test_publishing_into_the_shipped_checkpoints_folder_says_so(tmp_path, zoo_dir, capsys, monkeypatch):
    """From a clone's root, ./checkpoints is the package's own folder: publishing there changes it."""
    ckpt = _fake_run(tmp_path, _student())
    assert main(["zoo", "publish", str(ckpt), "--name", "mine"]) == 0
    assert "note:" not in capsys.readouterr().err  # a folder of the person's own
    monkeypatch.setattr("frugalseg.zoo.packaged_checkpoints", lambda: zoo_dir)
    assert main(["zoo", "publish", str(ckpt), "--name", "mine"]) == 0
    assert capsys.readouterr().err == (
        f"note: {zoo_dir} is frugalseg's own checkpoints folder ({zoo_dir}), which ships with the package: "
        "give --out (or $FRUGALSEG_CHECKPOINTS) for a folder of your own\n"
    )


def test_publishing_without_out_in_a_clone_refuses_the_shipped_folder_before_reading(
    tmp_path, monkeypatch, capsys
):
    """A clone's ``checkpoints/`` is the package's own folder: `zoo publish` without ``--out`` wrote a user's
    weights into it (and its index), then said so; `zoo convert` without a word."""
    from frugalseg.errors import ConfigError

    monkeypatch.delenv("FRUGALSEG_CHECKPOINTS", raising=False)
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "checkpoints").symlink_to(packaged_checkpoints())
    monkeypatch.chdir(clone)
    shipped = {path.name: path.read_bytes() for path in packaged_checkpoints().iterdir()}
    ckpt = _fake_run(tmp_path / "run", _student())
    said = (
        f"error: --out: not given, and checkpoints/ here is frugalseg's own checkpoints folder "
        f"({packaged_checkpoints()}), which ships with the package: give --out (or $FRUGALSEG_CHECKPOINTS) "
        "for a folder of your own, or --out checkpoints to add to the package's"
    )
    for argv in (
        ["zoo", "publish", str(ckpt), "--name", "mine"],
        ["zoo", "convert", "--from", "hrnet", "gone.pth"],
    ):
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == said
    with pytest.raises(ConfigError, match="frugalseg's own checkpoints folder"):
        publish_checkpoint(ckpt, "mine")
    assert {path.name: path.read_bytes() for path in packaged_checkpoints().iterdir()} == shipped
    assert main(["zoo", "publish", str(ckpt), "--name", "mine", "--out", str(tmp_path / "mine")]) == 0


def test_a_publish_that_fails_leaves_no_weights_without_an_index_entry(tmp_path, capsys):
    """A damaged index was read after the weights and cards were written (they stayed, named by no index);
    a card path taken by a folder failed between the files (the weights and JSON stayed)."""
    ckpt = _fake_run(tmp_path / "run", _student())
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / INDEX_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(WeightsError, match="not valid JSON"):
        publish_checkpoint(ckpt, "mine", out=damaged)
    assert sorted(path.name for path in damaged.iterdir()) == [INDEX_FILE]
    blocked = tmp_path / "blocked"
    card = publish_checkpoint(ckpt, "mine", out=tmp_path / "first")
    (blocked / card["card"].replace(".json", ".md")).mkdir(parents=True)  # the Markdown card's path
    with pytest.raises(IsADirectoryError):
        publish_checkpoint(ckpt, "mine", out=blocked)
    assert sorted(path.name for path in blocked.iterdir()) == [card["card"].replace(".json", ".md")]
    # an entry that is no object is replaced: the command had published, then crashed reading it
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / INDEX_FILE).write_text('{"format": 1, "models": {"mine": 5}}', encoding="utf-8")
    assert main(["zoo", "publish", str(ckpt), "--name", "mine", "--out", str(odd)]) == 0
    assert "published mine" in capsys.readouterr().out
    assert (
        json.loads((odd / INDEX_FILE).read_text(encoding="utf-8"))["models"]["mine"]["sha256"]
        == card["sha256"]
    )


def test_list_models_pretrained_names_the_architectures_of_a_local_index_too(zoo_dir):
    """`zoo list --pretrained` listed a local index's weights, ``list_models(pretrained=True)`` only the
    shipped ones, though `get_model`'s hint names them alike."""
    from frugalseg.zoo import list_models

    assert "pspnet_r18_os8_small" not in list_models(pretrained=True)
    zoo_dir.mkdir()
    entry = {"architecture": "pspnet_r18_os8_small", "file": "mine-00000000.safetensors"}
    (zoo_dir / INDEX_FILE).write_text(json.dumps({"format": 1, "models": {"mine": entry}}), encoding="utf-8")
    assert list_models(pretrained=True) == ["hrnetv2_w18_small", "pspnet_r18_os8_small"]
    (zoo_dir / INDEX_FILE).write_text("{damaged", encoding="utf-8")  # listing models does not fail on it
    assert list_models(pretrained=True) == ["hrnetv2_w18_small"]
