"""An installed wheel is enough: built from this tree, installed into a fresh virtual environment (its
dependencies from the running environment), it exports a variant with its card from outside the repository."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORT = """
import sys
import luma_builders
from luma import export
assert luma_builders.__file__.startswith(sys.prefix), luma_builders.__file__
export(["clean"], sys.argv[1], data_dir=sys.argv[2], cache_dir=sys.argv[3])
"""


def run(*argv, cwd=None):
    return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=cwd)


def test_the_wheel_exports_with_its_card_from_a_fresh_venv(mini_source, tmp_path):
    tree = tmp_path / "tree"  # a copy: building writes build/ and *.egg-info into the tree
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*cache"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(tree))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", str(venv))
    python = str(venv / "bin" / "python")
    run(python, "-m", "pip", "install", "--no-deps", "-q", str(next(tmp_path.glob("luma_for_datasets-*.whl"))))
    out = tmp_path / "export"
    run(python, "-I", "-c", EXPORT, str(out), str(mini_source), str(tmp_path / "cache"), cwd=tmp_path)
    card = (out / "README.md").read_text()
    assert "# LUMA" in card and "config_name: clean" in card
    assert list((out / "data" / "clean").glob("train-*.parquet"))
