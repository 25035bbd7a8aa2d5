"""Estimators fitted on CUDA load and predict on a machine without it (skorch's pattern).

No GPU is needed: the pickles are made on the CPU with torch's location tag patched to
``'cuda:0'`` and every ``device`` set to ``"cuda"``, which is what a CUDA fit pickles. A bare
tensor pickled that way fails to load here ("Attempting to deserialize object on a CUDA
device"); each estimator must load onto the CPU, warn once naming itself, and predict the
numbers it predicted before.
"""
import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits
from skorch.exceptions import DeviceWarning

from skdistill import DeepEnsembleTeacher, MLPStudent
from skdistill._testing import fast_instance, labels_for
from skdistill.discovery import all_estimators
from skdistill._devices import device_available
from skdistill._validation import check_device

pytestmark = pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")

CUDA_ERROR = "Attempting to deserialize object on a CUDA device"


TINY = dict(hidden_layer_sizes=(8,), max_epochs=1, width_multiplier=0.25, n_iter=40,
            burn_in=10, thinning=10, n_samples=3, random_state=0)


def mlp():
    return MLPStudent(hidden_layer_sizes=(8,), max_epochs=2, lr=1e-2, random_state=0)


def _holding_torch_state(cls):
    """The tiny instance of ``cls``, with a network as teacher where its teacher would be a
    scikit-learn model: every estimator it holds pickles tensors."""
    estimator = fast_instance(cls, **TINY)
    teacher = estimator.get_params().get("teacher")
    if teacher is not None and not type(teacher).__module__.startswith("skdistill."):
        estimator.set_params(teacher=fast_instance(MLPStudent, **TINY))
    return estimator


# Every estimator class, fitted in a fraction of a second.
ESTIMATORS = {name: (lambda cls=cls: _holding_torch_state(cls)) for name, cls in all_estimators()}


def test_every_estimator_is_tested_holding_networks_only():
    for name, make in ESTIMATORS.items():
        held = [type(e).__name__ for e in _estimators_in(make())
                if not type(e).__module__.startswith("skdistill.")]
        assert not held, f"{name} holds {held}, which pickle no tensors"


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(n_class=3, return_X_y=True)
    return (X[:90] / 16).astype(np.float32), y[:90]


def _estimators_in(obj, seen=None):
    """``obj`` and every estimator (skorch nets included) reachable from its attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, BaseEstimator):
        yield obj
        children = list(vars(obj).values())
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, dict):
        children = list(obj.values())
    else:
        return
    for child in children:
        yield from _estimators_in(child, seen)


def cuda_pickle(obj, monkeypatch):
    """``pickle.dumps(obj)`` as on a CUDA machine: storages tagged 'cuda:0', devices "cuda"."""
    for est in _estimators_in(obj):
        if getattr(est, "device", None) == "cpu":
            est.device = "cuda"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        return pickle.dumps(obj)


def test_a_cuda_pickle_does_not_load_here_by_itself(monkeypatch):
    assert not torch.cuda.is_available()  # these tests are about a machine without CUDA
    with pytest.raises(RuntimeError, match=CUDA_ERROR):
        pickle.loads(cuda_pickle(torch.nn.Linear(2, 2), monkeypatch))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_an_estimator_fitted_on_cuda_loads_and_predicts_on_the_cpu(name, digits, monkeypatch):
    X, y = digits
    est = ESTIMATORS[name]()
    est.fit(X, labels_for(est, y))
    expected = est.predict_proba(X)
    blob = cuda_pickle(est, monkeypatch)
    assert b"cuda:0" in blob
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        again = pickle.loads(blob)
    device_warnings = [str(w.message) for w in record if w.category is DeviceWarning]
    assert len(device_warnings) == 1, device_warnings  # once, for all it holds
    assert device_warnings[0].startswith(f"{name} was pickled with tensors on cuda:0")
    assert "device='cuda'" in device_warnings[0]
    assert all(e.device == "cpu" for e in _estimators_in(again) if hasattr(e, "device"))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    # the mapping ended with the load: a CUDA pickle outside an estimator still fails
    with pytest.raises(RuntimeError, match=CUDA_ERROR):
        pickle.loads(cuda_pickle(torch.zeros(2), monkeypatch))


def test_an_unavailable_gpu_index_is_mapped_too(digits, monkeypatch):
    X, y = digits
    est = mlp().fit(X, y)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:7")
        blob = pickle.dumps(est)
    with pytest.warns(DeviceWarning, match="MLPStudent was pickled with tensors on cuda:7"):
        again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))


def test_pickles_and_deep_copies_made_here_are_unchanged(digits):
    X, y = digits
    est = DeepEnsembleTeacher(mlp(), n_members=2, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to map: no warning
        again = pickle.loads(pickle.dumps(est))
        copied = copy.deepcopy(est)
    for other in (again, copied):
        np.testing.assert_array_equal(other.predict_proba(X), est.predict_proba(X))
        assert "__skdistill_device_window__" not in vars(other)
        # objects shared inside the estimator stay shared
        assert all(m is member.module_ for m, member in zip(other.modules_, other.members_))


def test_device_available():
    assert device_available("cpu") and device_available(torch.device("cpu"))
    assert device_available("cuda") == torch.cuda.is_available()
    assert not device_available("cuda:99") and not device_available("no-such-device")


@pytest.mark.parametrize("device", ["cpu", "meta", "cuda", "cuda:1", "xpu", "xpu:0", "xpu:1",
                                    "mps", "no-such-device"])
@pytest.mark.parametrize("gpus", [0, 1])
def test_fitting_and_unpickling_agree_on_which_devices_exist(device, gpus, monkeypatch):
    # one predicate: a device the unpickling keeps is one a fit accepts ("meta" aside, which
    # exists but holds no data), for CUDA and for other backends, index included
    for backend in (torch.cuda, torch.xpu):
        monkeypatch.setattr(backend, "is_available", lambda: gpus > 0)
        monkeypatch.setattr(backend, "device_count", lambda: gpus)
    try:
        check_device("Est", device)
        accepted = True
    except ValueError as exc:
        assert str(exc).startswith(f"Est: parameter device={device!r} is invalid; expected ")
        accepted = False
    assert accepted == (device_available(device) and device != "meta")
    assert accepted == (device == "cpu" or (gpus == 1 and device in ("cuda", "xpu", "xpu:0")))


def _unloadable():
    raise RuntimeError("cannot rebuild this attribute here")


class _Unloadable:
    """An attribute whose unpickling fails (a class missing on the loading machine, ...)."""

    def __reduce__(self):
        return (_unloadable, ())


def test_a_failed_load_leaves_no_mapping_behind(digits, monkeypatch):
    # the estimator's state is read after its marker: a failure in between must not leave
    # CUDA tensors mapped to the CPU for the rest of the thread, nor silence later warnings
    X, y = digits
    est = mlp().fit(X, y)
    est.broken_ = _Unloadable()
    with pytest.raises(RuntimeError, match="cannot rebuild"):
        pickle.loads(cuda_pickle(est, monkeypatch))
    with pytest.raises(RuntimeError, match=CUDA_ERROR):
        pickle.loads(cuda_pickle(torch.zeros(2), monkeypatch))
    del est.broken_
    with pytest.warns(DeviceWarning, match="MLPStudent was pickled with tensors on cuda:0"):
        again = pickle.loads(cuda_pickle(est, monkeypatch))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
