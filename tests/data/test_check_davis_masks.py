"""`check_dataset` on DAVIS sets: a mask missing between masked frames; a wrong-size mask named once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalseg.data.check import check_dataset

from .fake_davis import palette_png, write_davis


def _masks(frames: int) -> list[np.ndarray]:
    ids = np.zeros((48, 64), np.uint8)
    ids[10:20, 10:30] = 1
    return [ids] * frames


def test_a_mask_missing_between_masked_frames_is_a_warning(tmp_path: Path) -> None:
    """00007.png gone while 00000…00006 and 00008… exist: one warning naming it, nothing else."""
    root = write_davis(tmp_path / "davis", {"seq": _masks(10)})
    missing = root / "Annotations/480p/seq/00007.png"
    missing.unlink()
    problems = check_dataset(root, "davis")
    assert [(p.path, p.message, p.warning) for p in problems] == [
        (
            missing,
            "missing mask of sequence 'seq', between masked frames: `vos validate` and `vos test` score "
            "every frame and refuse the sequence",
            True,
        )
    ]


def test_a_sequence_with_only_its_first_mask_is_clean(tmp_path: Path) -> None:
    """The semi-supervised layout: frame 0 has a mask, the others none."""
    root = write_davis(tmp_path / "davis", {"seq": _masks(5)})
    for t in range(1, 5):
        (root / f"Annotations/480p/seq/{t:05d}.png").unlink()
    assert check_dataset(root, "davis") == []


def test_a_wrong_size_mask_is_reported_once(tmp_path: Path) -> None:
    """The header check of `DavisFormat.scan` names it; the decoding check does not repeat it."""
    root = write_davis(tmp_path / "davis", {"seq": _masks(4)})
    mask = root / "Annotations/480p/seq/00002.png"
    palette_png(mask, np.zeros((48, 40), np.uint8))
    problems = check_dataset(root, "davis")
    assert [(p.path, p.message, p.warning) for p in problems] == [
        (mask, "mask size 40×48 differs from the sequence's 64×48 (00000.jpg)", False)
    ]


def test_a_listed_sequence_without_frames_is_one_problem_among_the_others(tmp_path: Path) -> None:
    """A split's line naming a missing sequence had stopped the check there (not one pass)."""
    root = write_davis(tmp_path / "davis", {"a": _masks(3), "b": _masks(3)})
    listing = root / "ImageSets/2017/val.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text("a\nghost\nb\n", encoding="utf-8")
    mask = root / "Annotations/480p/b/00001.png"
    palette_png(mask, np.zeros((48, 40), np.uint8))
    problems = check_dataset(root, "davis")
    assert [(p.path, p.message, p.warning) for p in problems] == [
        (listing, f"line 2: sequence 'ghost' has no frame folder under {root / 'JPEGImages/480p'}", False),
        (mask, "mask size 40×48 differs from the sequence's 64×48 (00000.jpg)", False),
    ]


def test_a_mask_folder_without_frames_is_a_warning(tmp_path: Path) -> None:
    """Masks of a sequence whose frame folder was renamed had been passed over without a word."""
    root = write_davis(tmp_path / "davis", {"seq": _masks(3)})
    orphan = root / "Annotations/480p/renamed"
    orphan.mkdir()
    palette_png(orphan / "00000.png", _masks(1)[0])
    problems = check_dataset(root, "davis")
    assert [(p.path, p.message, p.warning) for p in problems] == [
        (orphan, f"masks of a sequence 'renamed' without frames in {root / 'JPEGImages/480p'}", True)
    ]
