"""The package as a user installs it, outside the checkout.

``python -m build`` makes an sdist and, from it, a wheel (as pip builds from an sdist). The wheel
holds the library alone; installed into a new virtual environment, it fits, predicts and runs
``python -m skdistill demo --quick`` from a folder outside the checkout. The benchmark harness
(``benchmarks/`` at the checkout's root) is in neither.

The new environment takes the dependencies (torch, scikit-learn, ...) from this one, without
downloading or installing them again: after the wheel is installed, a ``.pth`` file appends this
environment's site-packages folders to its path. A ``.pth`` line adds the folder only; the
``.pth`` files inside it (among them the editable install of the checkout) are not processed,
and the test checks that skdistill is imported from the wheel.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

import skdistill

ROOT = Path(__file__).resolve().parents[1]
# Copied beside the package so that the build sees what a checkout has: the folders that must
# stay out of the sdist and the wheel (tests, examples, the benchmarks' harness and recorded
# results) are there too.
FOLDERS = ["skdistill", "tests", "examples", "benchmarks"]
NOT_SHIPPED = ("tests/", "examples/", "benchmarks/")
# What a user's fresh environment has of ours: no PYTHONPATH, no editable install, no pip index.
DROPPED = ("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA_PREFIX")


def _run(command, cwd, env=None, timeout=300):
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (f"{command} failed:\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-3000:]}")
    return result.stdout


def _copy_of_the_checkout(dest):
    """The checkout's top-level files and folders, without build outputs, caches and git."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_build", "*.png")
    for path in ROOT.iterdir():
        if path.name.startswith("."):
            continue
        if path.is_file():
            shutil.copy2(path, dest / path.name)
        elif path.name in FOLDERS:
            shutil.copytree(path, dest / path.name, ignore=ignore)


def _fresh_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    empty = tmp_path / "no_data"
    empty.mkdir()
    return {**env, "PYTHONNOUSERSITE": "1", "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "SKDISTILL_DATA": str(empty), "SKDISTILL_SYSTEM_DATA": "0"}


FIT_AND_PREDICT = """
    import importlib.metadata

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import skdistill
    from skdistill import CrossFitDistiller, MLPStudent

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = CrossFitDistiller(
        LogisticRegression(), MLPStudent(hidden_layer_sizes=(8,), max_epochs=100, random_state=0),
        n_folds=2, random_state=0).fit(X, y, X_unlabeled=rng.normal(size=(60, 4)))
    proba = model.predict_proba(X)
    print(skdistill.__file__)
    print(skdistill.__version__, importlib.metadata.version("skdistill"))
    print(proba.shape, np.allclose(proba.sum(axis=1), 1), np.mean(model.predict(X) == y) > 0.8)
"""


@pytest.mark.slow
def test_the_built_wheel_installs_fits_predicts_and_runs_the_demo_outside_the_checkout(tmp_path):
    version = skdistill.__version__
    src, dist, venv, cwd = (tmp_path / name for name in ["src", "dist", "venv", "run"])
    for folder in (src, cwd):
        folder.mkdir()
    _copy_of_the_checkout(src)

    # -- build: sdist, then the wheel from it, with this environment's setuptools -------------
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src], cwd=src)
    sdist = dist / f"skdistill-{version}.tar.gz"
    wheel = dist / f"skdistill-{version}-py3-none-any.whl"
    assert sorted(dist.iterdir()) == sorted([sdist, wheel])

    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    assert {name.split("/")[0] for name in in_wheel} == {"skdistill",
                                                         f"skdistill-{version}.dist-info"}
    library = {p.relative_to(ROOT).as_posix() for p in (ROOT / "skdistill").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert library <= in_wheel, sorted(library - in_wheel)
    assert not [name for name in in_wheel if "benchmarks" in name]

    with tarfile.open(sdist) as archive:
        in_sdist = {name.partition("/")[2] for name in archive.getnames()}
    assert {"PKG-INFO", "setup.cfg", "pyproject.toml", "README.md", "CHANGELOG.md"} <= in_sdist
    assert library <= in_sdist, sorted(library - in_sdist)
    assert not [name for name in in_sdist if name.startswith(NOT_SHIPPED)
                or "__pycache__" in name]

    # -- install into a new environment, then lend it this one's dependencies ----------------
    env = _fresh_env(tmp_path)
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=cwd, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--quiet", wheel], cwd=cwd, env=env)
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                               "'purelib'))"], cwd=cwd, env=env).strip())
    assert site_packages.is_relative_to(venv)
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (site_packages / "_skdistill_test_dependencies.pth").write_text("\n".join(ours) + "\n")

    # -- use it, from a folder outside the checkout ------------------------------------------
    printed = _run([python, "-c", textwrap.dedent(FIT_AND_PREDICT)], cwd=cwd, env=env)
    where, versions, checks = printed.splitlines()
    assert Path(where) == site_packages / "skdistill" / "__init__.py"
    assert versions == f"{version} {version}"
    assert checks == "(120, 2) True True"

    printed = _run([python, "-m", "skdistill", "demo", "--quick", "--seeds", "1", "--out",
                    "figures"], cwd=cwd, env=env)
    assert "student: CrossFitDistiller" in printed and "done in" in printed
    assert (cwd / "figures" / "skdistill_demo_digits.png").is_file()
    assert sorted(p.name for p in cwd.iterdir()) == ["figures"]

    # The benchmarks run from a checkout only: the installed command says so, without a traceback.
    done = subprocess.run([python, "-m", "skdistill", "benchmarks", "--help"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "python -m benchmarks NAME" in done.stderr
    assert "Traceback" not in done.stderr
