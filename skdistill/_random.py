"""Random-state helpers shared by students, teachers and distillers."""
import threading
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._interrupt import warn_user

_lock = threading.Lock()
_seeded_threads = {}  # thread id -> depth of the seeded blocks it is in


@contextmanager
def seeded(seed, device="cpu", owner=None):
    """Run a block under a fixed torch seed without touching the caller's random state.

    torch's generator belongs to the process: a seeded block running while another thread
    of the process is in one draws from the same stream, so neither is reproducible. That
    happens with fits run in threads (joblib's ``"threading"`` backend, a dask worker with
    several threads); ``owner`` (the estimator) is named in the warning it gets.
    """
    with _own_generator(_cuda_devices(device), owner):
        torch.manual_seed(seed)
        yield


@contextmanager
def _own_generator(devices, owner, state=None):
    """Run a block on torch's generator (from ``state`` when given: see :func:`_rng_state`),
    the caller's generator state given back after it; the thread counts as in a seeded block
    meanwhile, and is warned when another thread is in one."""
    me = threading.get_ident()
    with _lock:
        shared = any(thread != me for thread in _seeded_threads)
        _seeded_threads[me] = _seeded_threads.get(me, 0) + 1
    if shared:
        name = type(owner).__name__ if owner is not None else "skdistill"
        warn_user(f"{name}: another fit runs in a thread of this process at the same time; "
                  "torch's random generator is shared by the process, so random_state does not "
                  "make these fits reproducible. Fit in separate processes (joblib's default "
                  "loky backend, dask workers with threads_per_worker=1) to reproduce them.")
    try:
        caller = _rng_state(devices)
        if state is not None:
            _set_rng_state(state, devices)
        try:
            yield
        finally:
            _set_rng_state(caller, devices)
    finally:
        with _lock:
            _seeded_threads[me] -= 1
            if not _seeded_threads[me]:
                del _seeded_threads[me]


def _cuda_devices(device):
    dev = torch.device(device)
    return [dev.index or 0] if dev.type == "cuda" else []


def _rng_state(devices):
    return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]


def _set_rng_state(state, devices):
    cpu, cuda = state
    torch.set_rng_state(cpu)
    for d, s in zip(devices, cuda):
        torch.cuda.set_rng_state(s, d)


def seeded_steps(steps, seed, device="cpu", owner=None, context=nullcontext):
    """Run the generator ``steps`` as if in one :func:`seeded` block (and ``context()``),
    the caller's torch state in force whenever it waits at a ``yield``.

    torch's random generator, grad mode and thread count belong to the thread, not to a
    generator: a block held open across a ``yield`` stays in force in the consumer's code,
    and where the consumer leaves the generator half way (an error whose traceback is kept,
    as a notebook keeps the last one), until the generator is collected. Here each stretch
    between two yields runs in a block of its own; the generator's random state is carried
    from one stretch to the next, so it draws what one seeded block would, whatever the
    consumer draws in between.
    """
    devices = _cuda_devices(device)
    state, done = None, object()

    def resume():
        nonlocal state
        # torch.manual_seed costs about a millisecond (it visits every device backend): only
        # the first stretch seeds, the others swap the generator's state in and out
        with _own_generator(devices, owner, state), context():
            if state is None:
                torch.manual_seed(seed)
            try:
                return next(steps, done)
            finally:
                state = _rng_state(devices)

    try:
        while (item := resume()) is not done:
            yield item
    finally:
        # in the caller's state: closing only runs the generator's clean-up, which must not
        # draw, and may come at interpreter exit, when torch can no longer be seeded
        steps.close()


def draw_seed(random_state):
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


__all__ = ["seeded", "seeded_steps", "draw_seed"]
