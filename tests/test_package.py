"""The top-level package: its public names, and submodules imported lazily on first use."""
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import skdistill
from skdistill.discovery import KINDS, all_estimators

SUBMODULES = [
    "datasets", "metrics", "complexity", "calibration", "losses", "samplers", "expectations",
    "perturbations", "nets", "teachers", "students", "distillers", "pruning",
    "model_selection", "inspection", "onnx", "augment", "base", "discovery", "streaming",
]
# Not needed by the estimators, so ``import skdistill`` alone must not import them.
NOT_IMPORTED_BY_THE_ESTIMATORS = ["datasets", "metrics", "complexity", "calibration",
                                  "model_selection", "inspection", "onnx",
                                  "augment"]


def _in_a_fresh_interpreter(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_submodules_are_imported_on_first_use_only():
    printed = _in_a_fresh_interpreter(f"""
        import sys
        import skdistill

        print(sorted(m for m in {NOT_IMPORTED_BY_THE_ESTIMATORS!r}
                     if f"skdistill.{{m}}" in sys.modules))
        ece = skdistill.metrics.expected_calibration_error([0, 1], [[0.9, 0.1], [0.3, 0.7]])
        print(round(ece, 6), "skdistill.metrics" in sys.modules)
        X, y, proba = skdistill.datasets.make_gaussian_mixture(n_samples=5, random_state=0)
        print(X.shape, callable(skdistill.datasets.load_fashion_mnist))
    """)
    assert printed.splitlines() == ["[]", "0.2 True", "(5, 2) True"]


@pytest.mark.parametrize("name", SUBMODULES)
def test_every_submodule_is_an_attribute_of_the_package(name):
    module = getattr(skdistill, name)
    assert isinstance(module, types.ModuleType) and module.__name__ == f"skdistill.{name}"
    assert module is sys.modules[f"skdistill.{name}"]


def test_unknown_attribute_raises_attribute_error_naming_the_module():
    with pytest.raises(AttributeError, match="module 'skdistill' has no attribute 'metrix'"):
        skdistill.metrix  # noqa: B018
    assert not hasattr(skdistill, "metrix")


def test_dir_lists_submodules_and_public_estimators():
    listed = dir(skdistill)
    assert set(SUBMODULES) <= set(listed)
    assert set(skdistill.__all__) <= set(listed) and "__version__" in listed
    assert listed == sorted(listed)


def test_every_estimator_imports_from_the_package():
    estimators = all_estimators()
    assert list(skdistill.__all__) == [name for kind in KINDS
                                       for name, _ in all_estimators(kind)]
    assert sorted(skdistill.__all__) == [name for name, _ in estimators]
    for name, cls in estimators:
        assert getattr(skdistill, name) is cls
    assert skdistill.CrossFitDistiller is skdistill.distillers.CrossFitDistiller
    # the bases of the subpackages are for extenders, not estimators
    assert not hasattr(skdistill, "BaseStudent") and not hasattr(skdistill, "BaseDistiller")
