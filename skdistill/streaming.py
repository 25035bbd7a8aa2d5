"""Transfer sets beyond memory: chunked inputs, labelled by the teacher block by block.

A distiller that streams (:class:`~skdistill.KnowledgeDistiller`,
:class:`~skdistill.CrossFitDistiller`) takes as ``X_unlabeled`` a chunked source of rows
instead of an array: a :class:`dask.array.Array`, a :class:`dask.dataframe.DataFrame`, a
:class:`Chunks` (a list of arrays or DataFrames, or a function giving an iterator of them), or
a one-pass iterator (a generator). The whole set is never held in memory:

- the teacher (through its calibration map, and a student Pipeline's transformers) labels it
  chunk by chunk, on the active :class:`dask.distributed.Client` when there is one, on local
  threads otherwise, a few chunks ahead of the student, which trains meanwhile;
- the student trains from a shuffle buffer of ``shuffle_buffer`` rows: the chunks (in a new
  random order at each pass where the source can be read in any order) and the rows of ``X``
  are mixed there, and its minibatches drawn from it in a random order; a pass over the
  transfer set is one of the student's epochs (``max_epochs`` passes);
- with ``teacher_cache`` set, each labelled chunk is written to disk at the first pass and
  read back by the later ones, which then run neither the teacher nor the source's
  computations.

Predictions on a dask collection are a lazy dask array (``map_blocks``); on a :class:`Chunks`
or an iterator, an iterator of arrays, one per chunk.
"""
import collections.abc
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import scipy.sparse as sp

from ._validation import Shown, float32_overflow, param_error

#: Threads that label chunks on this machine when no dask client is active (each teacher
#: call may use several threads of its own, as scikit-learn's OpenMP code does).
LABEL_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))

#: Chunks labelled ahead of the student, per labelling thread (or dask worker thread).
CHUNKS_AHEAD = 2


class Chunks:
    """Chunks of rows, read again at each pass: rows that need not fit in memory.

    A transfer set for a distiller's ``X_unlabeled``, or rows to predict, one chunk at a time.

    Parameters
    ----------
    source : sequence or callable
        The chunks: a list (or tuple) of arrays, sparse matrices or DataFrames, each holding
        some rows; or a function of no argument that returns a new iterator over them at
        each call (each call a pass), e.g. one reading a file part by part.
    n_rows : int, default=None
        The number of rows over all chunks, when known: a distiller then spreads the rows of
        ``X`` evenly over its first pass too (else they all go in its first shuffle buffer,
        and are spread from the second pass on, once the rows are counted).

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.streaming import Chunks
    >>> def read():
    ...     for seed in range(3):
    ...         yield np.random.default_rng(seed).normal(size=(4, 2))
    >>> chunks = Chunks(read, n_rows=12)
    >>> [len(c) for c in chunks], [len(c) for c in chunks]
    ([4, 4, 4], [4, 4, 4])
    """

    def __init__(self, source, n_rows=None):
        self.source = source
        self.n_rows = n_rows

    def __iter__(self):
        chunks = self.source() if callable(self.source) else self.source
        return iter(chunks)

    def __repr__(self):
        what = (getattr(self.source, "__name__", type(self.source).__name__)
                if callable(self.source) else f"<{len(self.source)} chunks>")
        return f"Chunks({what})"


def _dask_kind(X):
    """``"array"``, ``"frame"`` or None: what dask collection ``X`` is (dask is not imported
    here: a dask collection's module is, if ``X`` is one)."""
    if "dask" not in sys.modules:
        return None
    import dask

    if not dask.is_dask_collection(X):
        return None
    module = type(X).__module__
    if module.startswith("dask.array") or hasattr(X, "blocks") and hasattr(X, "chunks"):
        return "array"
    if hasattr(X, "npartitions") and hasattr(X, "columns"):
        return "frame"
    return None


def is_chunked(X):
    """Whether ``X`` is a chunked source of rows.

    A dask Array or DataFrame, a :class:`Chunks`, or an iterator (a generator); an array,
    a sparse matrix, a DataFrame or a list is not.

    Parameters
    ----------
    X : object

    Returns
    -------
    chunked : bool

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.streaming import Chunks, is_chunked
    >>> is_chunked(np.zeros((2, 2))), is_chunked(iter([np.zeros((2, 2))]))
    (False, True)
    >>> is_chunked(Chunks([np.zeros((2, 2))]))
    True
    """
    if type(X) is np.ndarray or isinstance(X, (np.ndarray, list, tuple, str)) or X is None:
        return False
    if isinstance(X, Chunks) or _dask_kind(X) is not None:
        return True
    if sp.issparse(X) or hasattr(X, "iloc"):
        return False
    return isinstance(X, collections.abc.Iterator)


def describe(X):
    """A short name of a chunked source, for messages."""
    kind = _dask_kind(X)
    if kind == "array":
        return f"<dask array of shape {X.shape}>"
    if kind == "frame":
        return f"<dask DataFrame of {X.npartitions} partitions>"
    if isinstance(X, Chunks):
        return repr(X)
    return f"<{type(X).__name__}>"


def by_rows(X):
    """A dask array chunked along its rows only: one block per chunk of rows."""
    rest = {axis: -1 for axis in range(1, X.ndim)}
    return X.rechunk(rest) if rest else X


def is_delayed(payload):
    """Whether a chunk's payload is a dask ``Delayed`` (computed where it is labelled)."""
    return hasattr(payload, "dask") and hasattr(payload, "compute")


# -- the source: chunks in order, or in any order ----------------------------------------------

class Source:
    """A chunked input as the distiller reads it: numbered chunks, pass after pass.

    ``items(order)`` yields ``(number, first row or None, payload)`` per chunk, in ``order``
    where the source can be read in any order (``random_access``); the payload is a dask
    ``Delayed`` (computed where the chunk is labelled) or the chunk itself.
    """

    def __init__(self, X, owner, name="X_unlabeled"):
        self.X, self.owner, self.name = X, owner, name
        self.kind = _dask_kind(X)
        self.passes = 0
        self._first = None
        if self.kind == "array":
            self.blocks = list(by_rows(X).to_delayed().ravel())
            sizes = X.chunks[0]
            self.starts = None if any(np.isnan(s) for s in sizes) else \
                np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
            self.n_rows = None if self.starts is None else int(sum(sizes))
        elif self.kind == "frame":
            self.blocks = list(X.to_delayed())
            self.starts, self.n_rows = None, None
        else:
            self.blocks = None
            self.n_rows = getattr(X, "n_rows", None)
        self.random_access = self.blocks is not None
        self.n_chunks = None if self.blocks is None else len(self.blocks)
        self.one_shot = self.kind is None and not isinstance(X, Chunks)

    def peek(self):
        """The first chunk of an iterable source (kept for its first pass), None for dask;
        an error naming the parameter when there is none."""
        if self.blocks is not None:
            if not self.blocks or self.n_rows == 0:
                raise source_error(self.owner, self.name, self.X, "at least one row (it has "
                                   "none)")
            return None
        iterator = iter(self.X)
        first = next(iterator, None)
        if first is None:
            raise source_error(self.owner, self.name, self.X,
                               "an iterable of at least one chunk (it gave none)")
        self._first = (first, iterator)
        return first

    def items(self, order=None):
        """One pass: ``(number, first row or None, payload)`` per chunk."""
        self.passes += 1
        if self.blocks is not None:
            numbers = range(len(self.blocks)) if order is None else order
            for k in numbers:
                yield k, None if self.starts is None else self.starts[k], self.blocks[k]
            return
        if self._first is not None:
            first, iterator = self._first
            self._first = None
            chunks = _chain(first, iterator)
        elif self.one_shot and self.passes > 1:
            raise source_error(self.owner, self.name, self.X,
                               "a source that can be read again (Chunks, a dask collection), "
                               "or teacher_cache set: an iterator is read once")
        else:
            chunks = iter(self.X)
        start = 0
        for k, chunk in enumerate(chunks):
            yield k, start, chunk
            start += _n_rows(chunk)


def _chain(first, iterator):
    yield first
    yield from iterator


def _n_rows(chunk):
    shape = getattr(chunk, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(chunk)


def source_error(owner, name, X, expected):
    """The error for a chunked source ``X`` given as parameter ``name``, shown as
    :func:`describe` names it."""
    return param_error(owner, name, Shown(describe(X)), expected)


# -- labelling a chunk ---------------------------------------------------------------------------

class Labeler:
    """Labels one chunk: checks it, runs the teacher(s) and a student Pipeline's transformers.

    Picklable (sent to dask workers once per fit); the probabilities are checked, calibrated
    and turned into targets by the distiller, in the training process.

    Parameters
    ----------
    owner : str
        The distiller's name, for errors.
    teachers : list of classifiers
        Fitted; each one's probabilities are returned (the distiller averages them).
    row_shape : tuple
        The shape of one row of ``X`` (after the first dimension).
    columns : list of str or None
        The column names of a DataFrame ``X``: each chunk must be a DataFrame with them.
    numeric : bool
        Whether ``X`` is numeric (each chunk then converted to floats and checked finite).
    transform : transformer or None
        A student Pipeline's fitted transformers (``student[:-1]``), applied to each chunk.
    name : str
        The parameter that gave the chunks.
    """

    def __init__(self, owner, teachers, row_shape, columns, numeric, transform=None,
                 name="X_unlabeled"):
        self.owner, self.teachers, self.row_shape = owner, teachers, tuple(row_shape)
        self.columns, self.numeric, self.transform, self.name = columns, numeric, transform, name

    def __call__(self, payload, number, start):
        """``{"rows", "proba", "seconds"}`` for one chunk (``payload``: the chunk, or a dask
        ``Delayed`` that computes it): the student's float32 rows, each teacher's
        ``predict_proba`` and the seconds the teachers took."""
        if is_delayed(payload):
            payload = payload.compute(scheduler="sync")
        chunk = self.check(payload, number, start)
        if not _n_rows(chunk):  # an empty chunk (a filtered partition): nothing to label
            return {"rows": None, "proba": None, "seconds": 0.0}
        tic = time.perf_counter()
        proba = [teacher.predict_proba(chunk) for teacher in self.teachers]
        seconds = time.perf_counter() - tic
        rows = chunk if self.transform is None else self.transform.transform(chunk)
        rows = self.student_rows(rows, number, start)
        return {"rows": rows, "proba": proba, "seconds": seconds}

    def where(self, number, start, n=None):
        """``"chunk 3 (rows 300 to 399)"``: a chunk named for an error."""
        text = f"chunk {number}"
        if start is not None and n:
            text += f" (rows {start:,} to {start + n - 1:,} of {self.name})"
        return text

    def fail(self, number, start, n, problem):
        """The error for a bad chunk, naming it."""
        return ValueError(f"{self.owner}: parameter {self.name} is invalid: "
                          f"{self.where(number, start, n)} {problem}.")

    def check(self, chunk, number, start):
        """The chunk as the teacher takes it, or an error naming it."""
        n = _n_rows(chunk) if hasattr(chunk, "shape") or hasattr(chunk, "__len__") else None
        if self.columns is not None:
            got = list(getattr(chunk, "columns", []))
            if not hasattr(chunk, "iloc") or got != self.columns:
                raise self.fail(number, start, n,
                                f"has columns {got} (a {type(chunk).__name__}); expected a "
                                f"DataFrame with the columns of X, in order ({self.columns})")
            return chunk
        if sp.issparse(chunk):
            chunk = sp.csr_matrix(chunk)
            values = chunk.data
        else:
            chunk = np.asarray(chunk)
            values = chunk
        if chunk.ndim != len(self.row_shape) + 1 or tuple(chunk.shape[1:]) != self.row_shape:
            if chunk.ndim == 2 and len(self.row_shape) == 1:
                problem = f"has {chunk.shape[1]} columns, X has {self.row_shape[0]}"
            else:
                problem = (f"has rows of shape {tuple(chunk.shape[1:])}, those of X are "
                           f"{self.row_shape}")
            raise self.fail(number, start, n, problem)
        if not self.numeric:
            return chunk
        if values.dtype.kind not in "fiub":
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                raise self.fail(number, start, n,
                                f"holds values of dtype {values.dtype} that are not "
                                "numbers") from None
            if sp.issparse(chunk):
                chunk.data = values
            else:
                chunk = values
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values)
            if bad.any():
                row = ""
                if sp.issparse(chunk):
                    value = values[bad][0]
                else:
                    flat = bad.reshape(len(chunk), -1)
                    r = int(np.flatnonzero(flat.any(axis=1))[0])
                    value = chunk.reshape(len(chunk), -1)[r][flat[r]][0]
                    row = f" at row {r} of the chunk"
                raise self.fail(number, start, n,
                                f"contains {'NaN' if np.isnan(value) else 'infinity'}{row}")
            if float32_overflow(values) is not None:
                raise self.fail(number, start, n,
                                "has values beyond float32's range (rescale the data, e.g. "
                                "with StandardScaler)")
        return chunk

    def student_rows(self, rows, number, start):
        """The student's float32 rows of a chunk (dense); finite, or an error naming it."""
        if sp.issparse(rows):
            rows = rows.toarray()
        try:
            rows = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise self.fail(number, start, None,
                            f"gives the student rows that are not numbers ({exc}); give the "
                            "student a Pipeline that encodes them") from None
        if not np.isfinite(rows).all():
            raise self.fail(number, start, len(rows),
                            "gives the student NaN or infinity (after its Pipeline's "
                            "transformers, if any)")
        return rows


def _label(labeler, payload, number, start):
    """A dask task: ``labeler(payload, number, start)``."""
    return labeler(payload, number, start)


# -- the feed: labelled chunks, a few ahead, cached on disk -----------------------------------

def _active_client():
    """The active ``dask.distributed`` client, or None (distributed is not imported here)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


class Feed:
    """The labelled chunks of a transfer set, pass after pass: what a streaming objective
    trains on.

    Each chunk is labelled by ``labeler`` (on the active dask client, else on
    :data:`LABEL_THREADS` local threads), :data:`CHUNKS_AHEAD` chunks per thread ahead of
    the consumer; ``finish(result, number, start)`` (in this process) turns a labelled chunk
    into ``(rows, {field: per-row array})``. With ``cache`` (a directory), the first pass
    writes each chunk's rows and fields as ``.npy`` files in a fresh sub-directory, which
    later passes read instead; :meth:`close` removes it.

    ``stats`` counts rows and chunks per pass, passes, the chunks the teacher labelled, the
    teacher's seconds (summed over workers) and the seconds the consumer waited for a chunk.
    """

    def __init__(self, source, labeler, finish, cache=None):
        self.source, self.labeler, self.finish = source, labeler, finish
        self.cache_root, self.cache = cache, None
        self.cached = {}  # chunk number -> the names of its fields in the cache
        self.n_rows, self.n_chunks = source.n_rows, source.n_chunks
        self.random_access = source.random_access
        self.stats = {"rows": source.n_rows, "chunks": source.n_chunks, "passes": 0,
                      "labelled_chunks": 0, "label_seconds": 0.0, "wait_seconds": 0.0,
                      "cache": cache is not None}
        self._client = _active_client()
        self._pool = None
        self._scattered = None
        self._pending = deque()

    # -- where the work runs
    def _workers(self):
        if self._client is not None:
            return max(1, sum(self._client.nthreads().values()))
        return LABEL_THREADS

    def _local_pool(self):
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(LABEL_THREADS, 1),
                                            thread_name_prefix="skdistill-label")
        return self._pool

    def _submit_label(self, number, start, payload):
        client = self._client
        if client is None:
            return self._local_pool().submit(self.labeler, payload, number, start)
        if self._scattered is None:
            self._scattered = client.scatter(self.labeler, broadcast=True, hash=False)
        if is_delayed(payload):
            payload = client.compute(payload)
        return client.submit(_label, self._scattered, payload, number, start, pure=False)

    def _result(self, future):
        tic = time.perf_counter()
        try:
            return future.result()
        finally:
            self.stats["wait_seconds"] += time.perf_counter() - tic

    # -- passes
    def chunks(self, order=None):
        """One pass: ``(rows, fields)`` per chunk, in ``order`` (chunk numbers) where the
        source (or the cache) is read in any order, else in the source's order."""
        self.stats["passes"] += 1
        if self.cache is not None and self.stats["passes"] > 1:
            yield from self._from_cache(order)
            return
        if self.cache_root is not None and self.cache is None:
            os.makedirs(self.cache_root, exist_ok=True)
            self.cache = tempfile.mkdtemp(prefix="skdistill-teacher-", dir=self.cache_root)
        rows = chunks = 0
        ahead = self._ahead(self.source.items(order), lambda item: self._submit_label(*item),
                            CHUNKS_AHEAD * self._workers())
        for (number, start, _), result in ahead:
            if result["rows"] is None:
                continue
            self.stats["label_seconds"] += result["seconds"]
            self.stats["labelled_chunks"] += 1
            out = self.finish(result, number, start)
            if self.cache is not None:
                self._store(number, out)
            rows += len(out[0])
            chunks += 1
            yield out
        if rows == 0:
            raise source_error(self.labeler.owner, self.labeler.name, self.source.X,
                               "at least one row (its chunks hold none)")
        self.n_rows, self.n_chunks = rows, chunks
        self.stats.update(rows=rows, chunks=chunks)
        if self.cache is not None:
            self.random_access = True

    def _ahead(self, items, submit, window):
        """``(item, result)`` in the order of ``items``, ``submit(item)`` giving a future of
        the result, at most ``window`` of them in flight (cancelled if the pass is left)."""
        pending, items = self._pending, iter(items)
        try:
            while True:
                while len(pending) < window:
                    item = next(items, None)
                    if item is None:
                        break
                    pending.append((item, submit(item)))
                if not pending:
                    return
                item, future = pending.popleft()
                yield item, self._result(future)
        finally:
            self._cancel()

    def _store(self, number, out):
        rows, fields = out
        base = os.path.join(self.cache, f"chunk-{number:07d}")
        np.save(base + "-rows.npy", rows)
        for name, value in fields.items():
            np.save(f"{base}-{name}.npy", np.asarray(value))
        self.cached[number] = sorted(fields)

    def _load(self, number):
        names = self.cached[number]
        base = os.path.join(self.cache, f"chunk-{number:07d}")
        return (np.load(base + "-rows.npy"),
                {name: np.load(f"{base}-{name}.npy") for name in names})

    def _from_cache(self, order):
        numbers = [k for k in (sorted(self.cached) if order is None else order)
                   if k in self.cached]  # an empty chunk has no file
        pool = self._local_pool()
        for _, out in self._ahead(numbers, lambda k: pool.submit(self._load, k),
                                  CHUNKS_AHEAD * LABEL_THREADS):
            yield out

    def _cancel(self):
        while self._pending:
            self._pending.popleft()[1].cancel()

    def close(self):
        """Stop the work in flight and remove the cache."""
        self._cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._scattered is not None:
            self._scattered.release()
            self._scattered = None
        if self.cache is not None:
            shutil.rmtree(self.cache, ignore_errors=True)
            self.cache = None


# -- predictions on chunked rows ---------------------------------------------------------------

def _call(owner, method, rows):
    return getattr(owner, method)(rows)


def predict_chunks(owner, method, X, n_outputs):
    """``owner.<method>`` on chunked ``X``: a lazy dask array for a dask collection (one block
    per chunk of rows), else an iterator of arrays, one per chunk.

    ``n_outputs`` is the number of columns of the result (None: one value per row).
    """
    kind = _dask_kind(X)
    if kind is None:
        return (getattr(owner, method)(chunk) for chunk in X)
    import dask
    import dask.array as da

    fn = partial(_call, owner, method)
    dtype = np.float64 if method != "predict" else np.asarray(owner.classes_).dtype
    if kind == "array":
        X = by_rows(X)
        if n_outputs is None:
            return X.map_blocks(fn, dtype=dtype, drop_axis=list(range(1, X.ndim)),
                                chunks=(X.chunks[0],))
        blocks = X.map_blocks(fn, dtype=dtype, chunks=(X.chunks[0], (n_outputs,)),
                              drop_axis=list(range(2, X.ndim)))
        return blocks
    shape = (np.nan,) if n_outputs is None else (np.nan, n_outputs)
    parts = [da.from_delayed(dask.delayed(fn)(part), shape=shape, dtype=dtype)
             for part in X.to_delayed()]
    return da.concatenate(parts)


__all__ = ["Chunks", "is_chunked"]
