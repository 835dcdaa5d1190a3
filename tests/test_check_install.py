"""``make setup`` checks that torch and torchvision work together and names the fix when they do not."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from frugalseg import check_install


def test_a_matching_pair_passes():
    done = subprocess.run([sys.executable, "-m", "frugalseg.check_install"], capture_output=True, text=True)
    assert done.returncode == 0 and "work together" in done.stdout


def test_a_mismatched_pair_is_named_with_the_command_that_fixes_it(monkeypatch, capsys):
    """As pip left it when the CPU index was unreachable: ``operator torchvision::nms does not exist``."""
    real = importlib.import_module

    def broken(name: str, *args, **kwargs):
        if name == "torchvision.ops":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", broken)
    assert check_install.main() == 1
    err = capsys.readouterr().err
    assert "do not work together" in err and "torchvision::nms does not exist" in err
    assert "torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu" in err


def test_the_pair_is_the_newest_the_project_allows():
    pyproject = (Path(check_install.__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"torch>=2.4,<={check_install.PAIR[0]}"' in pyproject
    assert f'"torchvision>=0.19,<={check_install.PAIR[1]}"' in pyproject
