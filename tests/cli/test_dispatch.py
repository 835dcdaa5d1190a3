"""Dispatch: ``frugalseg --help`` lists every command, ``--version`` prints, and ``label --help`` stays light
(it imports neither Lightning nor timm nor smp)."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

import pytest

import frugalseg
from frugalseg.cli import TOOLS, main

#: A locale whose encoding is ASCII: the C locale, with Python's UTF-8 mode and locale coercion off.
ASCII_LOCALE = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_label_help_imports_no_lightning_timm_or_smp():
    code = (
        "import sys\n"
        "from frugalseg.cli import main\n"
        "try:\n    main(['label', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['lightning', 'pytorch_lightning', 'timm', 'segmentation_models_pytorch']\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    out = _run(code)
    assert "propagate" in out and "refine-coarse" in out and "HEAVY []" in out


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_tools_help_imports_no_torch(tool):
    """``frugalseg annotate --help`` took 8.5 s importing torch and torchmetrics to list the names in its
    commands' options; a group's help lists its commands, whose options are added when one is named."""
    code = (
        "import sys\n"
        "from frugalseg.cli import main\n"
        f"try:\n    main([{tool!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['torch', 'torchmetrics', 'torchvision', 'lightning', 'scipy']\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    out = _run(code)
    assert f"usage: frugalseg {tool}" in out and "HEAVY []" in out


def test_the_annotation_session_loads_without_lightning_or_torchmetrics():
    """Each `annotate add` spent 4 s of its 7 importing Lightning and torchmetrics (torchvision, scipy's
    signal and stats) through the eager ``__init__`` of two packages; the session, its click tools and
    engines, which the page and the ML backend run too, need none of them."""
    code = (
        "import sys\n"
        "import frugalseg.active.objects.session.session\n"
        "heavy = ['lightning', 'torchmetrics', 'torchvision']\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    assert "HEAVY []" in _run(code)


@pytest.mark.parametrize("package", ["frugalseg.datamodules", "frugalseg.metrics"])
def test_a_package_that_imports_on_first_use_gives_each_name_it_lists(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name).__name__ == name
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'Nope'"):
        module.Nope  # noqa: B018


def test_a_command_named_gets_its_options_before_it_reads_its_words(capsys):
    with pytest.raises(SystemExit):
        main(["annotate", "simulate", "--help"])
    out = capsys.readouterr().out
    assert "--budget-hours" in out and "frame selectors, comma-separated: random, uniform" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "list", "--task", "nope"])
    assert exit_info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_help_lists_every_command_and_version_prints():
    overview = _run("from frugalseg.cli import main; main(['--help'])")
    for command in ("fit", "validate", "test", "predict", "vos", "label", "data", "zoo"):
        assert f"\n  {command} " in overview
    assert (
        _run("from frugalseg.cli import main; main(['--version'])").strip()
        == f"frugalseg {frugalseg.__version__}"
    )


def test_a_terminal_whose_encoding_lacks_a_character_gets_a_question_mark_not_an_error():
    """Under an ASCII locale, '…' in the overview printed as '?' (it raised UnicodeEncodeError)."""
    done = subprocess.run(
        [sys.executable, "-m", "frugalseg", "--help"], capture_output=True, env={**os.environ, **ASCII_LOCALE}
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"usage: frugalseg COMMAND ? (frugalseg" in done.stdout and done.stdout.isascii()


@pytest.mark.parametrize("words", [["configs", "list"], ["zoo", "list"], ["--help"]], ids=" ".join)
def test_a_reader_that_goes_away_stops_the_output_quietly(words):
    """`frugalseg configs list | head -1`: exit 141 as a shell reports it, no 'error: Broken pipe' (nor, for
    the overview, a BrokenPipeError traceback; nor, for `zoo list`'s tables, rich's exit 1)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "frugalseg", *words], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # before the command has printed a line: its first write meets a closed pipe
    assert process.wait(120) == 141
    assert process.stderr.read() == b""


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """Every (words, parser) of a tool's command tree, the tool's own parser first."""
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*words, name))


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_command_prints_its_help(tool):
    """`frugalseg TOOL … --help` formats for every command (a bare ``%`` in a help text breaks it)."""
    parser = argparse.ArgumentParser(prog="frugalseg")
    importlib.import_module(TOOLS[tool][0]).register(parser.add_subparsers(dest="group"))
    commands = dict(_commands(parser))
    assert len(commands) > 2, sorted(commands)
    for words, command in commands.items():
        assert command.format_help().startswith("usage: frugalseg"), words


def test_an_abbreviated_option_is_an_error_not_another_option(capsys):
    """``--device`` (the old spelling) is not read as ``--devices``: no command takes abbreviations."""
    argv = ["annotate", "simulate", "--root", "r", "--budget-hours", "1", "--out", "o", "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-2:] == [
        "tip: for the accepted options run: frugalseg annotate simulate --help",  # the command's tip
        "error: unrecognized arguments: --device cpu",
    ]


def test_predicts_help_says_what_return_predictions_and_ckpt_path_do_here(capsys):
    """Lightning's help said predictions are kept "True by default"; frugalseg keeps them only when asked."""
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "keep every prediction in memory as well (default: false: the prediction writer saves each" in text
    assert "'last' (the newest last.ckpt of the run's version folders)" in text


def test_vos_help_lists_each_subcommand_by_a_whole_sentence(capsys):
    """The Trainer's docstring gave test's line as "… It's separated from fit to make sure you never run on
    your", cut there."""
    with pytest.raises(SystemExit):
        main(["vos", "--help"])
    out = capsys.readouterr().out
    assert "test                score the model on the test split\n" in out
    assert "never run on your" not in out
