"""Unpickling where the GPU an estimator was fitted on is missing: onto the CPU (skorch's pattern).

A pickled torch tensor records its device (``'cuda:0'``); unpickling it on a machine without
that device fails ("Attempting to deserialize object on a CUDA device but
torch.cuda.is_available() is False"). skorch's ``NeuralNet`` maps its own modules to the CPU
in ``__setstate__``; :class:`DeviceFallbackMixin` does the same for everything a skdistill
estimator holds outside skorch: a student's network, a teacher's posterior samples and
precision matrix, a distiller's heads, the estimators inside it.

How: the pickled state of such an estimator begins with a marker. Unpickled first, the marker
opens a *window* (per thread) that the estimator's ``__setstate__`` closes. While a window is
open, a deserializer registered with torch (``torch.serialization.register_package``, ahead
of CUDA's) restores a storage whose device this machine lacks on the CPU, instead of failing,
and notes where it came from; ``__setstate__`` sets an unavailable ``device`` to ``"cpu"``.
The outermost estimator then warns once (``skorch.exceptions.DeviceWarning``), naming itself.
The thread's stack holds its windows by weak reference: an unpickling that fails before
``__setstate__`` frees its window with the unpickler, and leaves no mapping behind.
The pickle stays the caller's (pickle, cloudpickle, dask, joblib): nothing is serialised twice,
and objects shared inside it stay shared.
"""
import threading
import weakref
from typing import NamedTuple

import torch
from skorch.exceptions import DeviceWarning

from ._interrupt import warn_user

_local = threading.local()
#: Key of the marker in a pickled state; kept out of the estimator's attributes.
_KEY = "__skdistill_device_window__"


class DeviceProblem(NamedTuple):
    """Why a torch device cannot be used here (``why``), and what a parameter error says to
    pass instead (``expected``)."""

    why: str
    expected: str


def device_problem(device, training=False):
    """Why the torch ``device`` (a string or ``torch.device``) does not exist on this machine,
    or None where it does: the one check behind :func:`device_available`,
    :func:`skdistill._validation.check_device` and the warning of an unpickling onto the CPU.

    ``"cpu"`` and ``"meta"`` exist everywhere (``training=True`` refuses ``"meta"``, which
    holds no data); another backend must be available, and an index must be below its
    ``device_count()``.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return DeviceProblem("not a torch device",
                             "a torch device such as 'cpu' or 'cuda' (or 'cuda:N')")
    if dev.type == "cpu" or (dev.type == "meta" and not training):
        return None
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else "no CUDA GPU is visible")
        return DeviceProblem(why, f"'cpu' here ({why})")
    module = getattr(torch, dev.type, None)
    backend = torch.backends.mps if dev.type == "mps" else module
    if backend is None or not getattr(backend, "is_available", lambda: False)():
        why = f"'{dev.type}' is not available on this machine"
        return DeviceProblem(why, f"'cpu' or 'cuda' ({why})")
    count = getattr(module, "device_count", None)
    if dev.index is not None and count is not None and dev.index >= count():
        name = "GPU" if dev.type == "cuda" else f"'{dev.type}'"
        return DeviceProblem(f"torch.{dev.type}.device_count() is {count()}",
                             f"a {name} index below {count()}")
    return None


def device_available(device):
    """Whether the torch ``device`` (a string or ``torch.device``) exists on this machine.

    Examples
    --------
    >>> from skdistill._devices import device_available
    >>> device_available("cpu"), device_available("cuda:99")
    (True, False)
    """
    return device_problem(device) is None


class _Window:
    """What was moved to the CPU while this window was open."""

    def __init__(self):
        self.locations = set()  # storage locations restored on the CPU
        self.devices = set()  # ``device`` values set to "cpu"


def _windows():
    """This thread's open windows, outermost first (weak references to the live ones)."""
    stack = getattr(_local, "windows", None)
    if stack is None:
        stack = _local.windows = []
    # a window is alive while the pickled state holding it is being read; one whose unpickling
    # failed before ``__setstate__`` was freed with the unpickler: it is closed
    stack[:] = [ref for ref in stack if ref() is not None]
    return stack


def _open_window():
    window = _Window()
    _windows().append(weakref.ref(window))
    return window


class _Marker:
    """First entry of a pickled estimator's state: unpickled, it opens a window.

    One per pickled state: the pickle memo would make a shared marker one window.
    """

    def __reduce__(self):
        return (_open_window, ())

    def __deepcopy__(self, memo):
        return self  # a deep copy stays on this machine: nothing to map


def _close_window(window):
    """Close ``window``; return it if it was the outermost (it reports), else None.

    A nested window (an estimator inside another's state) hands what it saw to the one
    around it. Windows above ``window``, left open by an unpickling that failed, are dropped.
    """
    stack = _windows()
    if not any(ref() is window for ref in stack):
        return None
    while stack.pop()() is not window:
        pass
    outer = stack[-1]() if stack else None
    if outer is not None:
        outer.locations |= window.locations
        outer.devices |= window.devices
        return None
    return window


def _no_tag(storage):
    return None  # saving is torch's as usual


def _restore_on_cpu(storage, location):
    """Inside a window, keep a storage whose device is missing here on the CPU."""
    if not getattr(_local, "windows", None):
        return None
    stack = _windows()
    window = stack[-1]() if stack else None
    if window is None or device_available(location):
        return None
    window.locations.add(location)
    return storage  # torch hands the deserializer a CPU storage


# After the CPU's deserializer (priority 10), before CUDA's (20) and the other devices'.
torch.serialization.register_package(19.5, _no_tag, _restore_on_cpu)


def _why(window):
    problems = map(device_problem, window.locations | window.devices)
    return "; ".join(sorted({p.why for p in problems if p is not None}))


def _message(owner, window):
    where = []
    if window.locations:
        where.append("tensors on " + ", ".join(sorted(window.locations)))
    if window.devices:
        where.append("device=" + ", ".join(repr(d) for d in sorted(window.devices)))
    return (f"{type(owner).__name__} was pickled with {' and '.join(where)}, which this machine "
            f"does not have ({_why(window)}); it was loaded onto the CPU (device='cpu').")


class DeviceFallbackMixin:
    """Unpickle onto the CPU where the device the estimator was fitted on is missing.

    Tensors (networks, posterior samples, ...) pickled on a device this machine lacks are
    loaded onto the CPU, a ``device`` parameter naming such a device becomes ``"cpu"``, and
    one ``DeviceWarning`` names the estimator. Everything else pickles as before; a deep copy
    is unchanged.

    Examples
    --------
    >>> import pickle
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import MLPStudent
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPStudent(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    >>> again = pickle.loads(pickle.dumps(clf))  # fitted on "cuda", this would load on the CPU
    >>> bool((again.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """

    def __getstate__(self):
        return {_KEY: _Marker(), **super().__getstate__()}

    def __setstate__(self, state):
        window = state.pop(_KEY, None)
        if not isinstance(window, _Window):  # a deep copy, or a pickle older than the marker
            super().__setstate__(state)
            return
        try:
            device = state.get("device")
            if isinstance(device, (str, torch.device)) and not device_available(device):
                window.devices.add(str(device))
                state["device"] = "cpu" if isinstance(device, str) else torch.device("cpu")
            super().__setstate__(state)
        finally:
            outermost = _close_window(window)
        if outermost is not None and (outermost.locations or outermost.devices):
            warn_user(_message(self, outermost), DeviceWarning)


__all__ = ["DeviceFallbackMixin", "DeviceProblem", "device_available", "device_problem"]
