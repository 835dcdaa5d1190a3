"""The learned annotation-type policy: features, choice, weights, training; videos ranked by gain."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data.fake_davis import squares, write_moving_squares

from frugalseg.active.objects.choosing.frame_selectors import ErrorModel, expected_jf_gain
from frugalseg.active.objects.choosing.type_policies import (
    ACCEPTED_ERROR,
    FEATURES,
    AutoTypePolicy,
    LearnedTypePolicy,
    TypeContext,
    TypeView,
    best_type,
    frame_features,
    get_policy,
    type_seconds,
)
from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.active.objects.state import Annotation, IterationRecord, VideoState
from frugalseg.cli import main
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.lightning_modules.type_policy import fit_type_gain
from frugalseg.zoo import TypeGainNet, load_type_gain, save_type_gain

TYPES = ["mask", "clicks", "box"]


def constant_policy(path: Path, mask_gain: float, clicks_gain: float, box_gain: float = 0.0) -> Path:
    """A policy file whose network predicts these gains of the three types whatever the frame."""
    net = TypeGainNet(len(FEATURES), len(TYPES))
    last = net.layers[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([mask_gain, clicks_gain, box_gain]))
    return save_type_gain(net, path, TYPES, list(FEATURES))


def context(objects: tuple[int, ...] = (1,), disagreement: float = 0.1, unsure: float = 0.05) -> TypeContext:
    mask = np.zeros((100, 100), np.uint8)
    mask[40:50, 20:30] = 1
    image = np.full((100, 100, 3), 50, np.uint8)
    image[mask == 1] = (250, 50, 50)
    return TypeContext(image, mask, disagreement, unsure, frozenset({0, 10}), 20, objects)


def view(ctx: TypeContext, frame: int = 4) -> TypeView:
    def never(kind: str):
        raise AssertionError("a learned policy must not try an annotation")

    return TypeView("clip", 3, frame, never, context=ctx)


def typed_context(unreliability: list[float], kinds: dict[int, str]) -> TypeContext:
    """A 20-frame video whose frames ``kinds`` are annotated, with the given unreliability per frame."""
    ctx = context()
    return dataclasses.replace(
        ctx, annotated=frozenset(kinds), unreliability=tuple(unreliability), kinds=kinds
    )


def test_auto_takes_the_cheapest_type_expected_to_leave_what_a_person_accepts() -> None:
    """Frame 1 beside a drawn frame: its small expected error, once clicked, is within 0.1: clicks.
    Frame 10, far from both anchors: only a mask leaves it within; with tools that leave a tenth of
    the error a box is enough, and with clicks as good, clicks (cheaper) win again."""
    doubt = [0.0] + [0.02] * 18 + [0.0]
    ctx = typed_context(doubt, {0: "mask", 19: "mask"})
    policy = AutoTypePolicy(residuals={"mask": 0.0, "clicks": 0.5, "box": 0.5})
    near, far = policy.expected_errors(ctx, 1), policy.expected_errors(ctx, 10)
    assert near["mask"] == far["mask"] == 0.0
    assert near["clicks"] == pytest.approx(near["box"]) and near["clicks"] <= ACCEPTED_ERROR < far["clicks"]
    assert policy.choose(view(ctx, 1)) == "clicks"
    assert policy.choose(view(ctx, 10)) == "mask"
    before = far["clicks"] / 0.5
    box_only = AutoTypePolicy(residuals={"mask": 0.0, "clicks": 0.9, "box": ACCEPTED_ERROR / before})
    assert box_only.choose(view(ctx, 10)) == "box"
    both = AutoTypePolicy(residuals={"mask": 0.0, "clicks": ACCEPTED_ERROR / before, "box": 0.0})
    assert both.choose(view(ctx, 10)) == "clicks"


def test_auto_needs_what_a_session_knows_of_the_video() -> None:
    with pytest.raises(ConfigError, match="needs the video's unreliability"):
        AutoTypePolicy().choose(view(context()))
    assert get_policy("auto").name == "auto" and not get_policy("auto").needs_ground_truth


def test_features_of_a_hand_made_frame() -> None:
    values = dict(zip(FEATURES, frame_features(context(), 4), strict=True))
    assert values["unreliability"] == pytest.approx(0.15)
    assert values["area"] == pytest.approx(100 / 10_000)
    # a 10×10 square: 4 × 10 label changes, per diagonal; roughness = 40 / sqrt(100) / 10
    assert values["boundary"] == pytest.approx(40 / np.hypot(100, 100))
    assert values["roughness"] == pytest.approx(0.4)
    assert values["log_distance"] == pytest.approx(np.log1p(4))  # nearest annotated: frame 0
    assert values["distance_share"] == pytest.approx(4 / 20)
    assert values["contrast"] > 0.5  # red square on grey
    assert values["objects"] == 1


def test_the_policy_picks_the_type_of_higher_predicted_gain_per_second(tmp_path: Path) -> None:
    seconds = type_seconds(1)
    assert seconds == {"mask": 80.0, "clicks": 5.5, "box": 12.5}
    # 0.5 / 80 s > 0.02 / 5.5 s: a mask; 0.5 / 80 s < 0.05 / 5.5 s: clicks
    assert (
        get_policy("learned", weights=constant_policy(tmp_path / "a", 0.5, 0.02)).choose(view(context()))
        == "mask"
    )
    policy = get_policy("learned", weights=constant_policy(tmp_path / "b", 0.5, 0.05))
    assert policy.choose(view(context())) == "clicks"
    # with 3 objects the mask costs 240 s and clicks 14.5 s: 0.5 / 240 > 0.003 / 14.5
    assert (
        get_policy("learned", weights=constant_policy(tmp_path / "c", 0.5, 0.003)).choose(
            view(context((1, 2, 3)))
        )
        == "mask"
    )
    assert (
        best_type({"mask": 0.8, "clicks": 0.055, "box": 0.0}, {"mask": 80.0, "clicks": 5.5, "box": 12.5})
        == "clicks"
    )  # tie: cheaper
    # 0.3 / 12.5 s > 0.5 / 80 s and > 0.05 / 5.5 s: the box
    policy = get_policy("learned", weights=constant_policy(tmp_path / "d", 0.5, 0.05, 0.3))
    assert policy.choose(view(context())) == "box"


def test_a_saved_and_reloaded_policy_predicts_the_same(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TypeGainNet(len(FEATURES), len(TYPES), hidden=16)
    net.set_normalisation(torch.rand(30, len(FEATURES)) * 5)
    features = torch.rand(7, len(FEATURES))
    save_type_gain(net, tmp_path / "p.safetensors", TYPES, list(FEATURES))
    loaded, types, names = load_type_gain(tmp_path / "p.safetensors")
    assert (types, names) == (TYPES, list(FEATURES))
    with torch.no_grad():
        assert torch.equal(loaded(features), net.eval()(features))
    policy = LearnedTypePolicy(tmp_path / "p.safetensors")
    again = LearnedTypePolicy(tmp_path / "p.safetensors")
    assert policy.gains(context(), 4) == again.gains(context(), 4)


def test_bad_policy_files_are_clear_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        WeightsError, match=r"nowhere\.safetensors: annotation-type policy file does not exist"
    ):
        get_policy("learned", weights=tmp_path / "nowhere.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match=r"junk\.safetensors: not a readable safetensors file"):
        LearnedTypePolicy(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match=r"other\.safetensors: not an annotation-type policy"):
        LearnedTypePolicy(tmp_path / "other.safetensors")
    # a policy trained before the box type: two types, other features
    save_type_gain(TypeGainNet(3, 2), tmp_path / "old.safetensors", ["mask", "clicks"], ["a", "b", "c"])
    old = r"old\.safetensors: made for types \['mask', 'clicks'\].*train it again"
    with pytest.raises(WeightsError, match=old):
        LearnedTypePolicy(tmp_path / "old.safetensors")
    with pytest.raises(ConfigError, match="needs its weights file"):
        get_policy("learned")
    with pytest.raises(ConfigError, match="unknown annotation type policy 'ppo'.*learned"):
        get_policy("ppo")


def test_training_through_lightning_learns_a_known_relation() -> None:
    rng = np.random.default_rng(0)
    features = rng.random((256, len(FEATURES))).astype(np.float32)
    # the mask gains what is unreliable; clicks a third of it
    gains = np.stack([features[:, 0], features[:, 0] / 3], 1).astype(np.float32)
    net = fit_type_gain(features, gains, epochs=60, seed=0)
    test = rng.random((64, len(FEATURES))).astype(np.float32)
    with torch.no_grad():
        predicted = net(torch.from_numpy(test)).numpy()
    assert np.abs(predicted[:, 0] - test[:, 0]).mean() < 0.05
    assert np.abs(predicted[:, 1] - test[:, 0] / 3).mean() < 0.05
    with pytest.raises(ConfigError, match="samples"):
        fit_type_gain(features[:0], gains[:0])


def test_the_expected_jf_gain_is_the_fall_of_the_model_s_summed_error_per_frame() -> None:
    """Three frames, frame 0 annotated, E = g/(g+1) on either side: 0.5 + 2/3 before; annotating frame 2
    leaves frame 1 between two annotated frames (0.5) and frame 2 exact (0): a gain of 2/3, 2/9 a frame."""
    model = ErrorModel(one_scale=1, one_half=1, two_scale=1, two_half=1, signs=0)
    assert expected_jf_gain([0.0, 0.3, 0.5], {0}, 2, model) == pytest.approx(2 / 9)
    assert expected_jf_gain([0.0, 0.3, 0.5], {0}, 1, model) == pytest.approx((0.5 + 2 / 3 - 0.5) / 3)


# Videos ranked by expected gain: hand-made states of the two moving-squares videos (no ground truth).


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    root = write_moving_squares(tmp_path_factory.mktemp("davis"))
    shutil.rmtree(root / "Annotations")
    return root


def hand_made(
    session: AnnotationSession,
    video: str,
    seq: int,
    unreliable: list[float],
    drawn: tuple[int, ...] = (0,),
    clicked: tuple[int, ...] = (),
) -> None:
    """Save a state of ``video``: frames ``drawn`` annotated (those ``clicked`` with clicks, the others
    drawn), every mask the truth, ``unreliable`` as its disagreement."""
    masks = [squares(t, seq) for t in range(10)]
    objects = {int(o): 0 for o in np.unique(masks[0]) if o}
    state = VideoState(video=video, num_frames=10, objects=objects, config=session._config)
    seconds = 80.0 * len(objects)
    state.annotations = [
        Annotation(t, o, "clicks", 4.0, 2, i) if t in clicked else Annotation(t, o, "mask", 80.0, 0, i)
        for i, t in enumerate(drawn)
        for o in objects
    ]
    state.annotated = {t: masks[t] for t in drawn}
    state.masks, state.disagreement, state.unsure = masks, unreliable, [0.0] * 10
    state.history = [
        IterationRecord(i, t, "mask", seconds, seconds * (i + 1), None, None, None)
        for i, t in enumerate(drawn)
    ]
    state.save(session.folder / video)


@pytest.fixture
def session(davis: Path, tmp_path: Path) -> AnnotationSession:
    folder = tmp_path / "session"
    folder.mkdir()
    opened = AnnotationSession.open(folder, root=str(davis), split="val")
    (folder / "session.json").write_text(json.dumps(dataclasses.asdict(opened.settings)), encoding="utf-8")
    return opened


def test_a_session_never_proposes_a_frame_a_person_clicked_again(session: AnnotationSession) -> None:
    # gain-fit replaces clicked frames in a simulated loop; a person's clicks are final
    hand_made(session, "squares-b", 1, [0.0] * 10, drawn=(0, 4), clicked=(4,))
    proposal = session.propose(video="squares-b")
    assert proposal.frame not in (0, 4)
    assert proposal.reason.startswith("gain-fit among 8 frames not annotated; ")
    hand_made(session, "squares-b", 1, [0.0] * 10, drawn=tuple(range(10)), clicked=(4,))
    assert session.propose(video="squares-b") is None


def test_propose_ranks_videos_by_expected_gain_per_second(session: AnnotationSession, tmp_path: Path) -> None:
    # squares-a: 2 objects (a mask costs 160 s and counts twice in the mean over objects); squares-b: 1
    # object (80 s). Frame 0 drawn in both, the uncertainty selector's frame 9 in both: the error model
    # expects the same rise of each video's mean J&F, so per object and second they tie and the video
    # with fewer seconds per frame so far is proposed (squares-b, 8 s against 16)
    hand_made(session, "squares-a", 0, [0.0] + [0.1] * 8 + [0.3])
    hand_made(session, "squares-b", 1, [0.0] + [0.1] * 8 + [0.3])
    proposal = session.propose(ProposalOptions(frames="uncertainty", types="mask"))
    assert (proposal.video, proposal.frame, proposal.kind) == ("squares-b", 9, "mask")
    assert "; the error model expects J&F 0.70 on this frame (propagated from annotated frame 0 alone)" in (
        proposal.reason
    )
    # squares-b drawn on frame 9 too: its frames lie nearer a drawn one, there is less to gain, so
    # squares-a is proposed whatever squares-b's doubted share (0.9 on frame 8); not so by that share
    hand_made(session, "squares-b", 1, [0.0] + [0.1] * 7 + [0.9, 0.0], drawn=(0, 9))
    proposal = session.propose(ProposalOptions(frames="uncertainty", types="mask"))
    assert (proposal.video, proposal.frame) == ("squares-a", 9)
    assert "; about 160 s with a drawn mask, as your last annotation" in proposal.reason  # two objects' masks
    # a disagreement near the annotated frame outweighs the distance: 1 − 0.4·5/7 > 1 − 0.9·5/14
    hand_made(session, "squares-b", 1, [0.0, 0.1, 0.6] + [0.1] * 7)
    assert session.propose(ProposalOptions(frames="uncertainty", types="mask"), video="squares-b").frame == 2
    # a learned policy's prediction ranks instead: the same gain everywhere, so the cheaper video
    # (one object) wins and the type is the policy's (0.5 / 80 s against 0.01 / 5.5 s: a mask)
    weights = constant_policy(tmp_path / "policy.safetensors", 0.5, 0.01)
    hand_made(session, "squares-b", 1, [0.0] + [0.01] * 9)
    proposal = session.propose(ProposalOptions(frames="uncertainty", types="learned", policy=weights))
    assert (proposal.video, proposal.kind) == ("squares-b", "mask")
    assert (
        main(
            [
                "annotate",
                "propose",
                "--state",
                str(session.folder),
                "--types",
                "learned",
                "--policy",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )


def test_train_policy_on_a_simulated_run_then_simulate_with_it(tmp_path: Path, capsys) -> None:
    root = write_moving_squares(tmp_path / "davis")
    run = ["annotate", "simulate", "--root", str(root), "--split", "val", "--budget-hours", "0.05"]
    assert (
        main([*run, "--frames", "uniform", "--types", "mask", "--out", str(tmp_path / "a"), "--no-progress"])
        == 0
    )
    weights = tmp_path / "policy.safetensors"
    train = [
        "annotate",
        "train-policy",
        "--runs",
        str(tmp_path / "a"),
        "--epochs",
        "3",
        "--out",
        str(weights),
    ]
    assert main([*train, "--videos", "squares-b"]) == 0
    out = capsys.readouterr().out
    assert "samples of 1 videos (squares-b)" in out
    assert LearnedTypePolicy(weights).net.num_features == len(FEATURES)
    learned = [*run, "--frames", "uniform", "--types", "learned", "--no-progress"]
    assert main([*learned, "--out", str(tmp_path / "b")]) == 2
    assert "needs its weights file" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main([*learned, "--policy", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "b")]) == 2
    assert "none.safetensors: annotation-type policy file does not exist" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main([*learned, "--policy", str(weights), "--out", str(tmp_path / "b")]) == 0
    assert "uniform-learned: J&F" in capsys.readouterr().out
    assert json.loads((tmp_path / "b" / "run.json").read_text(encoding="utf-8"))["policy"] == str(
        weights.resolve()
    )
