"""The house: imports run one way between the rooms, an installed wheel (not the source tree) trains
from its shipped config and loads its weights, and the suite's check that tests leave the checkout alone
sees what they add, change or remove. (The command line's dispatch is tested in tests/cli.)"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import frugalseg

PACKAGE = Path(frugalseg.__file__).parent
REPO = PACKAGE.parent

#: Each room may import, at module level, only rooms of a lower level (design: the flow of imports;
#: ``flow`` sits just above ``data``, whose atomic writer its cache uses).
LEVELS = {
    "errors": 0,
    "options": 1,  # the options mechanism of every family, beside errors
    "data": 1,
    "flow": 2,
    "autolabel": 3,
    "losses": 3,
    "zoo": 3,
    "metrics": 3,
    "datamodules": 4,
    "interop": 4,  # may read data and write label stores (autolabel); never datamodules or Lightning
    "lightning_modules": 5,
    "active": 5,
    "app": 6,
    "cli": 7,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(nodes: list[ast.AST]) -> set[str]:
    """The frugalseg modules (and ``module.name`` of from-imports) named by the imports among ``nodes``."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("frugalseg"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("frugalseg"))
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (imports for the type checker alone)."""
    return {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }


def _module_level_imports(path: Path) -> set[str]:
    """The frugalseg modules ``path`` imports at module level (not in functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    hidden = _type_checking_only(tree)
    top = [node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.ClassDef)]
    return _imported([child for node in top for child in ast.walk(node) if id(child) not in hidden])


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _module_level_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_rooms_import_only_downwards():
    wrong = []
    for module, imports in _graph().items():
        room = _room(module)
        for target in imports:
            other = _room(target)
            if room in LEVELS and other in LEVELS and other != room and LEVELS[other] >= LEVELS[room]:
                wrong.append(f"{module} → {target}")
    assert not wrong, "imports against the design's direction:\n" + "\n".join(sorted(wrong))


def _every_import(path: Path) -> set[str]:
    """The frugalseg modules ``path`` imports anywhere (in functions too), but under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    hidden = _type_checking_only(tree)
    return _imported([node for node in ast.walk(tree) if id(node) not in hidden])


def test_nothing_outside_the_zoo_imports_its_private_modules():
    """The zoo's ``_`` modules are its own: other rooms, tests and benchmarks use ``frugalseg.zoo``."""
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]
    wrong = [
        f"{path.relative_to(REPO)} → {name}"
        for path in sources
        if PACKAGE / "zoo" not in path.parents
        for name in sorted(_every_import(path))
        if name.startswith("frugalseg.zoo._")
    ]
    assert not wrong, "imports of the zoo's private modules:\n" + "\n".join(wrong)


def test_no_module_imports_itself_through_a_cycle():
    """Any import counts, in a function too (only TYPE_CHECKING is exempt): a lazy import that runs
    back up is a cycle all the same, it only fails later."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _every_import(path) if m in modules and m != name} for name, path in modules.items()
    }
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


#: The longest a module of the package may grow: past it, split it by what a reader looks for.
MAX_MODULE_LINES = 800


def test_no_module_is_over_800_lines():
    """A module past `MAX_MODULE_LINES` holds more than one thing; split it (the design's rooms)."""
    long = {
        str(path.relative_to(REPO)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


#: Functions named with another verb than ``get_``, each for a reason: the SAM 2 builders are named like
#: sam2's own, the two Starlette apps like Starlette's app factories, and ``build_options`` makes no
#: family member: it fills an options class from given values.
OTHER_VERB_FACTORIES = {
    "build_options",
    "build_sam2_image_predictor",
    "build_sam2_video_predictor",
    "create_app",
    "create_ml_backend",
}


def test_factories_are_named_get():
    """One verb for a function that makes a family member by name: ``get_`` as `frugalseg.zoo.get_model`,
    torchvision's and torchgeo's ``get_model`` (``get_loss``, ``get_recipe``, ``get_format``)."""
    factories = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith(("make_", "build_", "create_")):
                factories.add(node.name)
    assert factories == OTHER_VERB_FACTORIES


def test_the_checkout_check_names_files_added_changed_and_removed(tmp_path):
    from conftest import checkout_changes, checkout_files

    (tmp_path / "kept.txt").write_text("a", encoding="utf-8")
    (tmp_path / "edited.txt").write_text("a", encoding="utf-8")
    (tmp_path / "gone.txt").write_text("a", encoding="utf-8")
    (tmp_path / "__pycache__").mkdir()
    before = checkout_files(tmp_path)
    assert sorted(before) == ["edited.txt", "gone.txt", "kept.txt"]
    (tmp_path / "edited.txt").write_text("ab", encoding="utf-8")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "hparams.yaml").write_text("", encoding="utf-8")
    (tmp_path / "__pycache__" / "x.pyc").write_text("", encoding="utf-8")  # a tool's, not a test's
    assert checkout_changes(before, checkout_files(tmp_path)) == [
        "added runs/demo/hparams.yaml",
        "changed edited.txt",
        "removed gone.txt",
    ]


def test_the_checkout_check_leaves_out_what_gitignore_ignores(tmp_path):
    """``make demo`` writes ``runs/`` and ``lightning_logs/`` while ``make test`` runs: not a test's files."""
    from conftest import checkout_changes, checkout_files

    (tmp_path / ".gitignore").write_text(
        "# outputs\nruns/\n/lightning_logs/\n*.egg-info/\nnotes.txt\n", encoding="utf-8"
    )
    before = checkout_files(tmp_path)
    for name in ("runs/demo/hparams.yaml", "lightning_logs/version_0/metrics.csv", "src/written.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("", encoding="utf-8")
    assert checkout_changes(before, checkout_files(tmp_path)) == ["added src/written.txt"]


def source_copy(destination: Path, root: Path = REPO) -> Path:
    """A copy of the checkout's files that git keeps (tracked, or new and not ignored) at ``destination``.

    The wheel is built there: setuptools leaves ``build/`` where it builds and reuses its ``build/lib``
    in the next build, so a module deleted from the checkout would come back in a later wheel.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():  # a tracked file deleted in the work tree is left out
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def test_the_wheel_is_built_from_a_copy_of_the_files_git_keeps(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    repo = tmp_path / "repo"
    (repo / ".gitignore").write_text("build/\n", encoding="utf-8")
    for name in ("pkg/kept.py", "build/lib/pkg/deleted.py", "pkg/new.py"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("", encoding="utf-8")
    subprocess.run(["git", "add", ".gitignore", "pkg/kept.py"], cwd=repo, check=True)
    copy = source_copy(tmp_path / "copy", repo)
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file()) == [
        ".gitignore", "pkg/kept.py", "pkg/new.py"
    ]  # fmt: skip


@pytest.mark.slow
def test_an_installed_wheel_trains_from_its_config_and_loads_published_weights(tmp_path):
    """``pip install`` of the built wheel into a fresh venv, then everything from another folder: the
    package's place, its configs listed, and a fit from its shipped config (named as in the README)
    starting from its published weights.

    The fresh venv sees this venv's dependencies through a path file, but not the source tree:
    frugalseg itself comes from the wheel. It has no pip of its own (this venv's pip installs into
    it with ``--python``), and the wheel is built with this venv's setuptools where it has one, not in
    an isolated build environment: both would only install pip and setuptools again.
    """
    wheels = tmp_path / "wheels"
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels)]
    subprocess.run([*build, *isolation, str(source_copy(tmp_path / "source"))], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    (wheel,) = wheels.glob("frugalseg-*.whl")
    # --ignore-installed: the frugalseg seen through the dependencies (an editable install) is not the wheel
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet"]
    install.append("--ignore-installed")
    subprocess.run([*install, str(wheel)], check=True)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "FRUGALSEG_CACHE": str(tmp_path / "cache")}
    env.pop("FRUGALSEG_CHECKPOINTS", None)
    env.pop("PYTHONPATH", None)  # frugalseg from the wheel, never from a source tree on the path
    where = subprocess.run(
        [python, "-c", "import frugalseg, pathlib; print(pathlib.Path(frugalseg.__file__).parent)"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        check=True,
    ).stdout.strip()
    installed = Path(where)
    assert installed.is_relative_to(venv) and (installed / "configs" / "demo.yaml").is_file()
    listed = subprocess.run(
        [str(venv / "bin" / "frugalseg"), "configs", "list"],
        capture_output=True,
        text=True,
        cwd=outside,
        check=True,
    )
    assert listed.stdout.startswith("annotate/hvsa_paper.yaml ") and "\ndemo.yaml " in listed.stdout
    # The student starts from the wheel's published weights (19 classes, as the synthetic streets).
    fit = subprocess.run(
        [
            str(venv / "bin" / "frugalseg"),
            "fit",
            "--config",
            "configs/demo.yaml",  # as the README spells it: no such file here, so the shipped one
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--data.loader.num_workers",
            "0",
            "--data.synthetic_clips",
            '{"train": 2, "val": 1}',
            "--model.student",
            "hrnetv2_w18_small",
            "--model.student_args",
            '{"weights": "streets-hrnetv2-w18s"}',
            "--data.num_frames",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ],
        capture_output=True,
        text=True,
        cwd=outside,
        env={**env, "OMP_NUM_THREADS": "1"},
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "val/mIoU" in fit.stdout
