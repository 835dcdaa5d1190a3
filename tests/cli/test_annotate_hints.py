"""`annotate propose` / `export` say what to do: a data set without videos, a folder of clip folders,
and the `label import` (its --format and --map) of the tool files an export writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data.fake_davis import palette_png, squares, write_moving_squares

from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main

pytestmark = pytest.mark.usefixtures("one_cv_thread")


def test_propose_on_a_data_set_without_videos_says_so(tmp_path: Path, capsys) -> None:
    """An empty JPEGImages/ is no finished session: it is refused naming the folder (was exit 0)."""
    (tmp_path / "root" / "JPEGImages").mkdir(parents=True)
    capsys.readouterr()
    assert (
        main(["annotate", "propose", "--state", str(tmp_path / "s"), "--root", str(tmp_path / "root")]) == 2
    )
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'root' / 'JPEGImages'}: holds no videos (split 'all'): nothing to annotate\n"
    )


def test_a_folder_of_clip_folders_is_told_how_to_read_it(tmp_path: Path, capsys) -> None:
    """--root of one folder of frames per clip (format davis, the default) gets the two ways to read it."""
    davis = write_moving_squares(tmp_path / "davis")
    clips = davis / "JPEGImages" / "480p"
    capsys.readouterr()
    assert main(["annotate", "propose", "--state", str(tmp_path / "s"), "--root", str(clips)]) == 2
    assert capsys.readouterr().err == (
        f"error: {clips / 'JPEGImages'}: folder does not exist: not a DAVIS-style data set; its "
        f"sub-folders squares-a, squares-b hold frames, one clip per folder: read them all with --root a new "
        f"folder whose JPEGImages is this one (mkdir R && ln -s {clips} R/JPEGImages; then --root R), or "
        f"one clip with --format video --root {clips / 'squares-a'}\n"
    )
    assert (
        main(["annotate", "propose", "--state", str(tmp_path / "s"), "--root", str(clips / "squares-a")]) == 2
    )
    assert capsys.readouterr().err == (
        f"error: {clips / 'squares-a' / 'JPEGImages'}: folder does not exist: not a DAVIS-style data set; "
        f"{clips / 'squares-a'} holds frames or videos of its own: read it with --format video\n"
    )


def test_export_prints_the_label_import_of_its_tool_files(tmp_path: Path, capsys) -> None:
    """Run as printed, it imports the file; the name the person gave ("car") needs no --map."""
    davis = write_moving_squares(tmp_path / "davis")
    shutil.rmtree(davis / "Annotations")
    palette_png(tmp_path / "a0.png", squares(0, 0))
    state, out = tmp_path / "session", tmp_path / "ex"
    added = ["annotate", "add", "--state", str(state), "--root", str(davis), "--split", "val"]
    added += ["--video", "squares-a", "--frame", "0", "--mask", str(tmp_path / "a0.png"), "--name", "1=car"]
    assert main(added) == 0
    capsys.readouterr()
    assert main(["annotate", "export", "--state", str(state), "--out", str(out)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        "once edited in a tool, back to a label store (another tool file: its --tool): frugalseg label "
        f"import {tmp_path}/ex-tools/coco.json --tool coco --format davis --root {davis} --split val "
        "--out NEW_STORE"
    )
    command = last.split("frugalseg ", 1)[1].split()[:-1] + [str(tmp_path / "imported")]
    assert main(command) == 0
    assert {(r["clip_id"], r["offset"]) for r in LabelStore(tmp_path / "imported").records()} == {
        ("squares-a", t) for t in range(10)
    }


@pytest.mark.parametrize("name", ["camvid", "cityscapes"])
def test_another_data_set_read_as_davis_is_named(shared_data: Path, name: str) -> None:
    """CamVid's folders of stills had been offered as clip folders to link as JPEGImages; Cityscapes got no
    hint at all (`--format cityscapes` on a DAVIS tree already said "it looks like davis"). `annotate` and
    `vos`, which take no class-label format, say so themselves."""
    from frugalseg.data.formats.davis import DavisFormat
    from frugalseg.errors import DataError

    root = shared_data / f"{name}_dev"
    with pytest.raises(DataError) as refused:
        DavisFormat(root)
    assert str(refused.value) == (
        f"{root / 'JPEGImages'}: folder does not exist: not a DAVIS-style data set; it looks like {name} "
        f"(--format {name})"
    )


@pytest.mark.parametrize("name", ["camvid", "cityscapes"])
def test_annotate_on_a_class_label_set_says_it_takes_object_masks(
    shared_data: Path, name: str, tmp_path: Path, capsys
) -> None:
    """It had advised "--format camvid", which `annotate` refuses as an invalid choice."""
    root = shared_data / f"{name}_dev"
    assert main(["annotate", "propose", "--state", str(tmp_path / "s"), "--root", str(root)]) == 2
    assert capsys.readouterr().err == (
        f"error: --root: {root.resolve()}: not a DAVIS-style data set; it looks like {name}: a set of class "
        "labels: the annotation loop takes object masks (`annotate semantic` simulates a loop of class "
        "labels)\n"
    )
    assert not (tmp_path / "s").exists()
