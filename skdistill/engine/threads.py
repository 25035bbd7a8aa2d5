"""Threads: each fit's share of torch's threads where several fits share a process."""
import sys
import threading
from contextlib import contextmanager

import torch


def _dask_worker_threads():
    """Threads of the dask worker running this code, or None outside a dask worker."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None


#: Fits inside :func:`limit_threads` in this process, and torch's threads before the first.
_threads_lock = threading.Lock()
_threads_state = {"active": 0, "total": None}


def _thread_share(nthreads):
    """``(each fit's share, the count it is a share of)`` on a worker running ``nthreads``
    tasks at once: the count is torch's before the fits running in :func:`limit_threads`
    lowered it. Called with ``_threads_lock`` held."""
    total = (_threads_state["total"] if _threads_state["active"]
             else torch.get_num_threads())
    return max(1, total // nthreads), total


def worker_threads():
    """torch intra-op threads that suit where this code runs, or None to leave them.

    - a dask worker running ``nthreads`` tasks at once: each fit's share of the threads torch
      has there, ``torch.get_num_threads() // nthreads`` (at least 1), counted before the
      fits running in the process lowered them (fits at once, or nested, get the same
      share). dask's nanny starts workers with ``OMP_NUM_THREADS=MKL_NUM_THREADS=1``, so
      that is 1 unless the cluster raised both; a worker with one thread and both at ``k``
      gives its one fit ``k``;
    - a process started by joblib's loky backend: joblib already caps it
      (``OMP_NUM_THREADS = cores // n_jobs``) and torch follows, so nothing is changed;
    - elsewhere: unchanged.
    """
    nthreads = _dask_worker_threads()
    if nthreads is None:
        return None
    with _threads_lock:
        return _thread_share(nthreads)[0]


@contextmanager
def limit_threads():
    """Cap torch's threads for the duration of a fit (see :func:`worker_threads`).

    torch keeps a thread count per thread, and a thread's first use copies the count last
    set by any thread: the first fit to enter records the process's count, each fit sets
    its thread to its share of that count, and each sets its thread back to that count when
    it leaves (not to what it found, which may be another fit's share). Each setting is made
    under the same lock as the bookkeeping: a fit entering between another's leaving and its
    setting back would otherwise record that fit's share as the process's count.
    """
    nthreads = _dask_worker_threads()
    if nthreads is None:
        yield
        return
    with _threads_lock:
        n, total = _thread_share(nthreads)
        if not _threads_state["active"]:
            _threads_state["total"] = total
        _threads_state["active"] += 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_state["active"] -= 1
            if torch.get_num_threads() != total:
                torch.set_num_threads(total)
