"""Random-state helpers shared by students, teachers and distillers."""
import threading
from contextlib import contextmanager

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
    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        with _lock:
            _seeded_threads[me] -= 1
            if not _seeded_threads[me]:
                del _seeded_threads[me]


def draw_seed(random_state):
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


__all__ = ["seeded", "draw_seed"]
