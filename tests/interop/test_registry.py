"""Each tool format registers itself in the file that implements it, with its name, suffix and version."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalseg.errors import ConfigError
from frugalseg.interop import READERS, WRITERS, read_export, write_export
from frugalseg.interop.registry import ToolFormat, register_reader
from frugalseg.interop.shapes import ToolExport


def test_every_format_file_registers_its_readers_and_writers():
    readers = {
        name: (reader.format.suffix, reader.format.version, reader.read.__module__)
        for name, reader in READERS.items()
    }
    assert readers == {
        "coco": (".json", "1.0", "frugalseg.interop.coco"),
        "coco-panoptic": (".json", "1.0", "frugalseg.interop.coco"),
        "cvat-video": (".xml", "1.1", "frugalseg.interop.cvat"),
        "cvat-images": (".xml", "1.1", "frugalseg.interop.cvat"),
        "cvat-mask": (".zip", "1.1", "frugalseg.interop.cvat_mask"),
        "label-studio": (".json", "1.x", "frugalseg.interop.label_studio"),
        "labelme": (".json", "3.0", "frugalseg.interop.labelme"),
        "mots": ("", "1.0", "frugalseg.interop.mots"),
    }
    writers = {name: (w.format.suffix, w.per_clip, w.write.__module__) for name, w in WRITERS.items()}
    assert writers == {
        "coco": (".json", False, "frugalseg.interop.coco"),
        "cvat-video": (".xml", True, "frugalseg.interop.cvat"),
        "label-studio": (".json", False, "frugalseg.interop.label_studio"),
    }
    assert all(WRITERS[name].format is READERS[name].format for name in WRITERS)


def test_a_registered_reader_is_read_by_its_name(tmp_path):
    toy = ToolFormat("toy", ".txt", "0.1")

    @register_reader(toy)
    def read_toy(path: Path) -> ToolExport:
        return ToolExport(path, "toy", [], (path.read_text(encoding="utf-8"),))

    try:
        (tmp_path / "export.txt").write_text("road", encoding="utf-8")
        assert read_export("toy", tmp_path / "export.txt").labels == ("road",)
        assert READERS["toy"].format == toy
    finally:
        del READERS["toy"]


def test_a_name_registered_twice_names_both_functions():
    def read_other(path: Path) -> ToolExport:
        raise AssertionError("never read")

    with pytest.raises(ValueError) as error:
        register_reader(ToolFormat("coco", ".json", "2.0"))(read_other)
    assert str(error.value) == (
        "tool format 'coco' is registered twice: by frugalseg.interop.coco.read_coco and "
        f"{__name__}.test_a_name_registered_twice_names_both_functions.<locals>.read_other"
    )
    assert READERS["coco"].format.version == "1.0"


def test_unknown_formats_are_refused_naming_the_choices(tmp_path):
    with pytest.raises(ConfigError) as unknown:
        read_export("voc", tmp_path / "export.xml")
    assert str(unknown.value) == (
        "--format: unknown tool format 'voc'; known: coco, coco-panoptic, cvat-video, cvat-images, "
        "cvat-mask, label-studio, labelme, mots"
    )
    with pytest.raises(ConfigError) as unwritten:
        write_export("mots", tmp_path / "export", [], [])
    assert (
        str(unwritten.value)
        == "--format: cannot write tool format 'mots'; written: coco, cvat-video, label-studio"
    )


def test_the_command_line_names_each_format_with_its_version(capsys):
    from frugalseg.cli import main

    for command in ("import", "export"):
        with pytest.raises(SystemExit):
            main(["label", command, "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert (
        "(versions read: coco 1.0, coco-panoptic 1.0, cvat-video 1.1, cvat-images 1.1, cvat-mask 1.1, "
        "label-studio 1.x, labelme 3.0, mots 1.0)" in printed
    )
    assert "(versions written: coco 1.0, cvat-video 1.1, label-studio 1.x)" in printed
