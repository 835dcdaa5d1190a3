"""Weights by Hub ids, read offline from a Hugging Face cache that ``huggingface_hub`` itself wrote.

Each test fills a temporary ``HF_HOME`` through ``hf_hub_download`` from a Hub served on localhost
(tests/hub_cache.py), then loads with ``HF_HUB_OFFLINE=1``: students, a random-weight SAM 2 and timm
/ smp encoders by the names their libraries use, a folder of ``zoo publish --hub-folder``, and the
refusals (a tampered blob, a wrong sha256, a missing revision, a pickle under a ``.bin`` name, an
empty cache).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import save as safetensors_bytes

from frugalseg.cli import main
from frugalseg.errors import WeightsError
from frugalseg.zoo import (
    get_model,
    load_hub_weights,
    parse_hub_id,
    resolve,
    sam2_hub_checkpoint,
    weights_path,
)

from .test_weights import ARCH, CLASSES, _fake_run, _output, _student

REPO = "frugalseg-tests/tiny-streets"


def _hub_folder(tmp_path: Path, model: torch.nn.Module, capsys: pytest.CaptureFixture[str]) -> Path:
    """``frugalseg zoo publish --hub-folder`` of ``model``'s fake run, with metrics and their command."""
    ckpt = _fake_run(tmp_path, model)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"val/mIoU": 0.25, "val/mAcc": 0.5}), encoding="utf-8")
    folder = tmp_path / "hub folder"  # a space: the printed command quotes it
    code = main(
        [
            "zoo",
            "publish",
            str(ckpt),
            "--name",
            "tiny-streets",
            "--hub-folder",
            str(folder),
            "--repo-id",
            REPO,
            "--metrics",
            str(metrics),
            "--metrics-command",
            "frugalseg validate --config run.yaml",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"hf upload {REPO} '{folder}' ." in out
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture
def published_on_hub(tmp_path, hub_cache, capsys) -> tuple[torch.nn.Module, Path, str]:
    """A student published with --hub-folder and placed in the cache as REPO (main); its commit."""
    model = _student()
    folder = _hub_folder(tmp_path, model, capsys)
    commit = hub_cache.add(REPO, _files(folder))
    return model, folder, commit


def test_hub_folder_holds_exactly_a_hub_repository(published_on_hub):
    _, folder, _ = published_on_hub
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["library"] == "frugalseg" and config["architecture"] == ARCH
    assert config["class_names"] == CLASSES and config["num_classes"] == 4 and config["num_frames"] == 1
    assert config["palette"][0] == [128, 64, 128] and config["palette"][3] == [0, 0, 142]
    assert config["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert config["sha256"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert config["file"] == "model.safetensors"
    card = ModelCard.load(folder / "README.md")  # the Hub's own reader of the metadata
    assert card.data.license == "apache-2.0" and card.data.library_name == "frugalseg"
    assert card.data.datasets == ["synthetic"]
    results = {
        r.metric_name: (r.metric_type, r.metric_value, r.dataset_split) for r in card.data.eval_results
    }
    assert results == {"val/mIoU": ("mIoU", 0.25, "val"), "val/mAcc": ("mAcc", 0.5, "val")}
    facts = card.data.to_dict()["frugalseg"]
    assert facts["metrics_command"] == "frugalseg validate --config run.yaml"
    assert "Measured with `frugalseg validate --config run.yaml`" in card.text
    assert facts["recipe"] == "B3" and facts["annotation_hours"] == 3.0
    assert facts["label_sources"] == {"fine": 2, "pseudo": 2}
    assert f'get_model("hf-hub:{REPO}")' in card.text


def test_the_cache_has_the_layout_huggingface_hub_writes(published_on_hub, hub_cache):
    _, folder, commit = published_on_hub
    repo = hub_cache.cache / "models--frugalseg-tests--tiny-streets"
    assert (repo / "refs" / "main").read_text(encoding="utf-8") == commit
    weights = repo / "snapshots" / commit / "model.safetensors"
    assert weights.is_symlink()
    assert weights.resolve() == repo / "blobs" / hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_published_repository_loads_by_its_hub_id_with_identical_outputs(published_on_hub):
    model, folder, _ = published_on_hub
    by_id = get_model(f"hf-hub:{REPO}")
    assert torch.equal(_output(by_id), _output(model))
    by_weights = get_model(ARCH, weights=f"hf-hub:{REPO}")
    assert torch.equal(_output(by_weights), _output(model))
    loaded = resolve(f"hf-hub:{REPO}")
    assert loaded.verified == json.loads((folder / "config.json").read_text(encoding="utf-8"))["sha256"]
    assert loaded.card["class_names"] == CLASSES
    from_folder = get_model(ARCH, weights=str(folder))  # the folder itself, as `hf download --local-dir`
    assert torch.equal(_output(from_folder), _output(model))
    assert resolve(folder).verified == loaded.verified


def test_zoo_verify_says_ok_for_the_id_and_fails_for_a_tampered_blob(published_on_hub, hub_cache, capsys):
    _, _, commit = published_on_hub
    assert main(["zoo", "verify", f"hf-hub:{REPO}"]) == 0
    assert "ok hf-hub:" in capsys.readouterr().out
    blob = (hub_cache.snapshot(REPO, commit) / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # a tensor byte: the file still parses
    blob.write_bytes(bytes(data))
    assert main(["zoo", "verify", f"hf-hub:{REPO}"]) == 1
    out = capsys.readouterr().out
    assert f"FAILED hf-hub:{REPO}: model.safetensors in the Hugging Face cache" in out
    assert "as the Hub recorded" in out and f"hf cache rm model/{REPO}" in out
    with pytest.raises(WeightsError, match="the cached file was changed after download"):
        get_model(f"hf-hub:{REPO}")


def test_another_process_finds_the_repository_through_hf_home_offline(published_on_hub):
    _, folder, _ = published_on_hub
    command = [sys.executable, "-m", "frugalseg", "zoo", "verify", f"hf-hub:{REPO}"]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    sha = json.loads((folder / "config.json").read_text(encoding="utf-8"))["sha256"]
    assert f"sha256 {sha} matches the Hub's record and its card" in result.stdout


def test_a_card_whose_sha256_differs_from_the_weights_is_refused(tmp_path, hub_cache, capsys):
    folder = _hub_folder(tmp_path, _student(), capsys)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["sha256"] = "0" * 64
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    hub_cache.add(REPO, _files(folder))
    with pytest.raises(WeightsError, match=f"hf-hub:{REPO}'s config.json records {'0' * 64}"):
        get_model(f"hf-hub:{REPO}")


def test_a_sha256_given_with_the_id_is_compared_in_full(published_on_hub):
    _, folder, _ = published_on_hub
    sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert resolve(f"hf-hub:{REPO}#sha256={sha}").verified == sha
    wrong = sha[:63] + ("0" if sha[63] != "0" else "1")  # differs in the last digit only
    with pytest.raises(WeightsError, match=r"the hash you gave.*refusing to load it"):
        resolve(f"hf-hub:{REPO}#sha256={wrong}")
    with pytest.raises(WeightsError) as err:
        resolve("hf-hub:me/x@v1#sha256=abc")
    assert str(err.value) == (
        "hf-hub:me/x@v1#sha256=abc: #sha256= must be followed by a full sha256 (64 lower-case hex digits)"
    )


def test_a_pinned_revision_loads_its_own_weights(tmp_path, hub_cache, capsys):
    first, second = _student(seed=1), _student(seed=2)
    old = hub_cache.add(REPO, _files(_hub_folder(tmp_path / "v1", first, capsys)), revision="v1")
    new = hub_cache.add(REPO, _files(_hub_folder(tmp_path / "v2", second, capsys)))
    assert old != new
    assert torch.equal(_output(get_model(f"hf-hub:{REPO}@v1")), _output(first))
    assert torch.equal(_output(get_model(f"hf-hub:{REPO}@{old}")), _output(first))
    assert torch.equal(_output(get_model(f"hf-hub:{REPO}")), _output(second))


def test_a_revision_or_a_repository_not_in_the_cache_is_named_with_how_to_get_it(published_on_hub):
    with pytest.raises(WeightsError) as caught:
        get_model(f"hf-hub:{REPO}@v9")
    message = str(caught.value)
    assert message.startswith(f"hf-hub:{REPO}@v9: ")
    assert "(revision v9) is not in the Hugging Face cache" in message and "HF_HUB_OFFLINE is set" in message
    assert f"`hf download {REPO} --revision v9`" in message
    assert "into the same HF_HOME (or unset HF_HUB_OFFLINE), or give" in message


def test_without_hf_hub_offline_the_error_does_not_tell_to_unset_it(monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args, **kwargs):  # what the library raises when the Hub cannot be reached
        raise LocalEntryNotFoundError("no connection")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(WeightsError) as caught:
        resolve("hf-hub:nobody/nothing")
    message = str(caught.value)
    assert "cannot be downloaded (the Hub cannot be reached)" in message
    assert "HF_HUB_OFFLINE" not in message
    with pytest.raises(WeightsError, match=r"hf-hub:nobody/nothing: .* is not in the Hugging Face cache"):
        resolve("hf-hub:nobody/nothing")
    with pytest.raises(WeightsError, match="not a Hub id"):
        resolve("hf-hub:no-slash")


def test_a_hub_whose_name_does_not_resolve_is_not_asked_at_all(monkeypatch):
    """Offline, huggingface_hub retried each request five times (some 25 s) before the one-line error."""
    import socket

    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    asked, cache_alone = [], []

    def no_dns(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    def download(*args, **kwargs):
        cache_alone.append(kwargs["local_files_only"])
        raise LocalEntryNotFoundError("not in the cache")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(WeightsError, match=r"cannot be downloaded \(the Hub cannot be reached\)"):
        resolve("hf-hub:nobody/nothing")
    assert set(asked) == {"huggingface.co"} and cache_alone and all(cache_alone)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")  # a proxy resolves the name: the library asks
    asked.clear()
    cache_alone.clear()
    with pytest.raises(WeightsError):
        resolve("hf-hub:nobody/nothing")
    assert not asked and cache_alone and not any(cache_alone)


class _Payload:
    """Pickles as a call of ``os.mkdir(path)``: what a hostile ``pytorch_model.bin`` could run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (str(self.path),)


def test_a_pickle_payload_under_a_bin_name_is_refused_without_running(tmp_path, hub_cache):
    marker = tmp_path / "payload_ran"
    buffer = io.BytesIO()
    torch.save({"conv.weight": torch.zeros(1), "x": _Payload(marker)}, buffer)
    absent = ("model.safetensors", "config.json")  # the Hub answers 404; the cache remembers it
    hub_cache.add("evil/model", {"pytorch_model.bin": buffer.getvalue()}, absent=absent)
    with pytest.raises(WeightsError, match=r"weights_only=True.*never unpickles"):
        resolve("hf-hub:evil/model")
    assert not marker.exists()
    raw = pickle.dumps({"w": _Payload(marker)}, protocol=2)  # a plain pickle, not a torch zip file
    hub_cache.add("evil/raw", {"pytorch_model.bin": raw}, absent=absent)
    with pytest.raises(WeightsError, match="pytorch_model.bin"):
        resolve("hf-hub:evil/raw")
    assert not marker.exists()


def test_a_state_dict_repository_without_a_card_loads_its_safetensors(hub_cache):
    state = {"weight": torch.arange(6.0).reshape(2, 3)}
    data = safetensors_bytes(state)
    hub_cache.add("someone/plain", {"model.safetensors": data, "config.json": b'{"architecture": "x"}'})
    loaded = load_hub_weights(parse_hub_id("hf-hub:someone/plain"))
    assert torch.equal(loaded.state_dict["weight"], state["weight"])
    assert loaded.verified == hashlib.sha256(data).hexdigest()  # the Hub's record, checked
    assert weights_path("hf-hub:someone/plain").read_bytes() == data
    assert weights_path("local.safetensors") == Path("local.safetensors")


def test_timm_encoders_take_timms_pretrained_weights_by_true(hub_cache):
    import timm

    from frugalseg.zoo import QualityNet
    from frugalseg.zoo.quality_net import load_encoder_weights

    repo = timm.models.get_pretrained_cfg("resnet18").hf_hub_id  # timm/resnet18.a1_in1k
    torch.manual_seed(5)
    state = timm.create_model("resnet18").state_dict()  # with its ImageNet classifier fc.*
    config = b'{"architecture": "resnet18", "num_classes": 1000}'  # timm's config.json: no card
    hub_cache.add(repo, {"model.safetensors": safetensors_bytes(state), "config.json": config})
    torch.manual_seed(6)
    full_width = {"backbone_channels": None, "num_classes": 3}
    student = get_model("pspnet_r18_os8_small", backbone_weights=True, **full_width)
    for key, value in student.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    by_id = get_model("pspnet_r18_os8_small", backbone_weights=f"hf-hub:{repo}", **full_width)
    assert torch.equal(by_id.backbone.conv1.weight, state["conv1.weight"])
    net = QualityNet("resnet18", input_size=64)
    load_encoder_weights(net, True)
    for part in (net.frame_encoder, net.mask_encoder):
        assert torch.equal(part.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])


def test_an_smp_encoder_takes_smps_imagenet_weights_by_tag(hub_cache):
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders["resnet18"]["pretrained_settings"]["imagenet"]
    torch.manual_seed(7)
    encoder = get_model("deeplabv3plus_r18", num_classes=3).net.encoder
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    files = {"model.safetensors": safetensors_bytes(state), "config.json": b"{}"}
    hub_cache.add(settings["repo_id"], files, revision=settings["revision"], commit=settings["revision"])
    torch.manual_seed(8)
    student = get_model("deeplabv3plus_r18", num_classes=3, encoder_weights="imagenet")
    assert torch.equal(student.net.encoder.conv1.weight, state["conv1.weight"])
    with pytest.raises(WeightsError, match=r"imagenet21k: neither a weights file nor a tag of smp encoder"):
        get_model("deeplabv3plus_r18", num_classes=3, encoder_weights="imagenet21k")
    # `--model.student_args.encoder_weights null` reaches the model as the text "None"
    unset = r"a key given alone on the command line is text: for no weights write encoder_weights: null under"
    with pytest.raises(WeightsError, match=unset):
        get_model("deeplabv3plus_r18", num_classes=3, encoder_weights="None")


@pytest.fixture(scope="module")
def sam2_state() -> dict[str, torch.Tensor]:
    """A randomly initialised SAM 2.1 tiny (64 px) state dict, in half precision to keep the file small."""
    from frugalseg.autolabel.sam2_loading import build_sam2_video_predictor

    torch.manual_seed(0)
    predictor = build_sam2_video_predictor("sam2.1_hiera_t", None, random_weights=True, image_size=64)
    return {k: v.half() for k, v in predictor.state_dict().items()}


def test_a_sam2_id_gives_its_config_and_checkpoint(hub_cache, sam2_state, tmp_path):
    buffer = io.BytesIO()
    torch.save({"model": sam2_state}, buffer)
    hub_cache.add("facebook/sam2.1-hiera-tiny", {"sam2.1_hiera_tiny.pt": buffer.getvalue()})
    config, path = sam2_hub_checkpoint("facebook/sam2.1-hiera-tiny")
    assert config == "sam2.1_hiera_t" and path.name == "sam2.1_hiera_tiny.pt"
    from frugalseg.autolabel.sam2_loading import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(config, path, image_size=64)
    key = "image_encoder.trunk.pos_embed"
    assert torch.equal(predictor.state_dict()[key], sam2_state[key].float())
    assert sam2_hub_checkpoint(str(path)) is None  # a local file is not an id
    with pytest.raises(WeightsError, match="sam2.1-hiera-small.*not in the Hugging Face cache"):
        sam2_hub_checkpoint("facebook/sam2.1-hiera-small")
    with pytest.raises(WeightsError, match="not a SAM 2.1 model id"):
        sam2_hub_checkpoint("hf-hub:facebook/sam2-hiera-tiny")


def test_the_cli_refuses_an_id_with_an_empty_cache_before_any_work(hub_cache, tiny_streets, tmp_path):
    out = tmp_path / "store"
    command = [sys.executable, "-m", "frugalseg", "label", "propagate", "--format", "synthetic"]
    command += ["--root", str(tiny_streets), "--out", str(out), "--engine", "sam2"]
    command += ["--sam2-checkpoint", "facebook/sam2.1-hiera-tiny", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert result.returncode == 2, result.stderr
    id_and_file = "hf-hub:facebook/sam2.1-hiera-tiny: sam2.1_hiera_tiny.pt (revision main)"
    assert f"{id_and_file} is not in the Hugging Face cache" in result.stderr
    assert "hf download facebook/sam2.1-hiera-tiny sam2.1_hiera_tiny.pt" in result.stderr
    assert f"cache {hub_cache.cache} and" in result.stderr  # the process's HF_HOME
    assert not out.exists()


@pytest.mark.slow
def test_a_shipped_config_names_its_encoder_and_fails_offline_before_writing(
    hub_cache, tiny_streets, tmp_path
):
    config = Path(__file__).resolve().parents[2] / "configs" / "weclick_camvid_dense.yaml"
    command = [sys.executable, "-m", "frugalseg", "fit", "--config", str(config)]
    command += ["--data.root", str(tiny_streets)]
    command += ["--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path / "run")]
    command += [
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "run"),
        "--data.loader.num_workers",
        "0",
    ]
    env = os.environ.copy()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "hf-hub:smp-hub/resnet18.imagenet@3f2325ff978283d47aa6a1d6878ca20565622683" in result.stderr
    assert "hf download smp-hub/resnet18.imagenet --revision 3f2325ff" in result.stderr
    assert result.stderr.rstrip().endswith("encoder_weights: null under model.student_args")
    assert list(tmp_path.iterdir()) == []  # no run folder, no runs/, not even the empty cache


def test_the_command_line_turns_hub_ids_of_file_options_into_cached_files(hub_cache):
    import argparse

    from frugalseg.cli.weights import resolve_weight_options

    data = safetensors_bytes({"weight": torch.ones(2)})
    commit = hub_cache.add("someone/raft", {"model.safetensors": data}, absent=("config.json",))
    args = argparse.Namespace(raft_weights="hf-hub:someone/raft", sam2_checkpoint=None, sam2_config=None)
    resolve_weight_options(args)
    assert args.raft_weights == str(hub_cache.snapshot("someone/raft", commit) / "model.safetensors")
    assert args.sam2_config == "sam2.1_hiera_t"  # the default, with no SAM 2 id to name another
    missing = argparse.Namespace(policy="hf-hub:someone/policy@v2")
    with pytest.raises(WeightsError, match=r"^hf-hub:someone/policy@v2: .*\(--policy\)$"):
        resolve_weight_options(missing)


def test_publish_hub_folder_refuses_a_folder_with_other_files_and_writes_nothing(tmp_path, capsys):
    ckpt = _fake_run(tmp_path, _student())
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    argv = ["zoo", "publish", str(ckpt), "--name", "tiny", "--hub-folder", str(folder)]
    assert main(argv) == 2
    assert "--hub-folder must be a new or empty folder; it holds notes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert main([*argv[:-1], str(tmp_path / "new"), "--out", str(tmp_path / "index")]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not (tmp_path / "index").exists()
