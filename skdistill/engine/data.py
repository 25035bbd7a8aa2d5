"""The data layer: training rows, their minibatches and the device they live on.

One dataset type (:class:`RowDataset`), one minibatch sampler (:class:`Minibatches`) and one
device policy (:meth:`RowDataset.placed`) serve every training loop: the engine's epochs
(:class:`BatchIterator`), the SGLD chain of :class:`~skdistill.SGLDTeacher` and GPED's stream
of posterior samples (:class:`SampleStream`, :class:`StreamBatches`).

The device policy: dense training data whose inputs and fields fit in
:data:`DEVICE_DATA_BYTES` are sent to the training device once, before the first step;
larger data, and sparse ``X``, stay on the host and go one minibatch at a time. The row numbers
of the minibatches are drawn where the data are (a random permutation there, from that device's
generator), so that picking a minibatch never moves an index between host and device.
"""
import inspect

import numpy as np
import scipy.sparse as sp
import torch

from .._interrupt import warn_user

#: Most bytes of training data (inputs and per-row fields together) sent to an accelerator at
#: once, before training; larger data stay on the host and go to it one minibatch at a time.
DEVICE_DATA_BYTES = 2 * 2**30


def as_device(device):
    """``device`` as a ``torch.device`` that compares equal to a tensor's ``.device``: a CUDA
    device without an index is the current one (``"cuda"`` is ``"cuda:0"`` on one GPU)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class RowDataset(torch.utils.data.Dataset):
    """Training rows: inputs ``X`` and per-row fields (targets, weights, labels, ...).

    ``X`` is a dense array (kept as one float32 tensor) or a scipy sparse matrix, kept sparse
    and densified one minibatch at a time (:meth:`rows`), never as a whole. ``row_shape``
    reshapes each dense row (e.g. ``(1, 28, 28)`` for a CNN fed flat sparse rows). ``fields``
    maps names to arrays with one entry per row; an ``"index"`` field (the row numbers) is
    added, so per-row state (an online estimate, a cached teacher output) can be looked up
    from a batch. ``keep`` limits the fields to those named (``"weight"`` is always kept):
    each field costs an indexing operation per batch.
    """

    def __init__(self, X, fields=None, row_shape=None, keep=None):
        if sp.issparse(X):
            self.X = sp.csr_matrix(X, dtype=np.float32)
        else:
            if not torch.is_tensor(X):
                X = np.require(X, dtype=np.float32, requirements="W")
                if X.ndim and min(X.strides) < 0:  # a reversed view (X[::-1]): torch refuses it
                    X = np.ascontiguousarray(X)
            self.X = torch.as_tensor(X, dtype=torch.float32)
        self.row_shape = tuple(row_shape) if row_shape is not None else None
        n = self.X.shape[0]
        self.fields = {"index": torch.arange(n)} if keep is None or "index" in keep else {}
        for name, value in (fields or {}).items():
            if value is None or (keep is not None and name not in keep and name != "weight"):
                continue
            tensor = torch.as_tensor(value)
            if tensor.dtype == torch.float64:
                tensor = tensor.float()
            if len(tensor) != n:
                raise ValueError(f"field {name!r} has {len(tensor)} rows, X has {n}")
            self.fields[name] = tensor

    def __len__(self):
        return self.X.shape[0]

    @property
    def device(self):
        """Where the rows are: that of ``X`` (the host for sparse ``X``)."""
        return self.X.device if torch.is_tensor(self.X) else torch.device("cpu")

    @property
    def nbytes(self):
        """Bytes of the inputs and the fields."""
        X = self.X
        size = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes if sp.issparse(X)
                else X.element_size() * X.numel())
        return size + sum(v.element_size() * v.numel() for v in self.fields.values())

    def placed(self, device, max_bytes=None):
        """These rows for training on ``device``: the device policy of the engine.

        Dense rows whose inputs and fields take at most ``max_bytes`` (default
        :data:`DEVICE_DATA_BYTES`) are copied to ``device`` once; larger data, and sparse
        ``X``, stay where they are (batches then go to ``device`` one at a time).

        Parameters
        ----------
        device : str or torch.device
        max_bytes : int, default=None

        Returns
        -------
        rows : RowDataset
            A dataset on ``device`` (sharing nothing with this one), or this dataset.

        Examples
        --------
        >>> import numpy as np
        >>> from skdistill.engine import RowDataset
        >>> data = RowDataset(np.zeros((4, 2)), {"y": np.arange(4)})
        >>> data.placed("meta").device.type, data.placed("meta", max_bytes=8).device.type
        ('meta', 'cpu')
        """
        device = as_device(device)
        limit = DEVICE_DATA_BYTES if max_bytes is None else max_bytes
        if self.device == device or sp.issparse(self.X) or self.nbytes > limit:
            return self
        rows = object.__new__(type(self))
        rows.__dict__.update(self.__dict__)
        rows.X = self.X.to(device)
        rows.fields = {k: v.to(device) for k, v in self.fields.items()}
        return rows

    def __getitem__(self, i):  # torch's Dataset protocol; the engine batches with rows()
        x, fields = self.rows(torch.as_tensor([i]))
        return x[0], {k: v[0] for k, v in fields.items()}

    def dense(self, index):
        """Inputs of rows ``index`` (a LongTensor or slice) as one dense float32 tensor."""
        if sp.issparse(self.X):
            idx = index if isinstance(index, slice) else index.cpu().numpy()
            x = torch.from_numpy(self.X[idx].toarray())
        else:
            x = self.X[index]
        if self.row_shape is not None:
            x = x.reshape((len(x),) + self.row_shape)
        return x

    def rows(self, index):
        """``(X rows, {field: rows})`` for ``index``."""
        return self.dense(index), {k: v[index] for k, v in self.fields.items()}


def dense_chunks(X, chunk=4096, row_shape=None):
    """Yield float32 tensors of at most ``chunk`` rows of ``X`` (dense or sparse)."""
    data = RowDataset(X, row_shape=row_shape) if not isinstance(X, RowDataset) else X
    for start in range(0, len(data), chunk):
        yield data.dense(slice(start, start + chunk))


class Minibatches:
    """Row numbers of minibatches: shuffled (or ordered) passes over ``n`` rows.

    The one minibatch sampler of the package: the engine's epochs (:class:`BatchIterator`),
    the SGLD chain and GPED's stream (:class:`StreamBatches`) draw their minibatches here.
    Iterating gives one pass; :meth:`stream` gives passes without end, each in a new order.

    Parameters
    ----------
    n : int
        Rows to sample from.
    batch_size : int
        Rows per minibatch.
    shuffle : bool, default=True
        Each pass in a new random order (``torch.randperm``); else in row order.
    drop_last : bool, default=False
        End a pass when fewer than ``batch_size`` rows are left, so that every minibatch has
        ``batch_size`` rows (``batch_size`` must then be at most ``n``); else the last
        minibatch of a pass holds the rows left.
    generator : torch.Generator, default=None
        Draws the orders; ``None`` draws from torch's global generator of ``device`` (the
        owner's seeded one). A generator must be on ``device``.
    device : str or torch.device, default="cpu"
        Where the row numbers are made: that of the data they index
        (:attr:`RowDataset.device`), so that no index moves between host and device.
    indices : torch.Tensor, default=None
        The rows of a subset (on ``device``): the minibatches hold ``indices[i]`` for
        positions ``i`` in ``range(n)``.

    Examples
    --------
    >>> import torch
    >>> from skdistill.engine import Minibatches
    >>> next(iter(Minibatches(5, 2, shuffle=False, indices=torch.arange(10, 15))))
    tensor([10, 11])
    >>> list(Minibatches(5, 2, shuffle=False))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    >>> batches = Minibatches(5, 2, drop_last=True, generator=torch.Generator().manual_seed(0))
    >>> stream = batches.stream()
    >>> [len(next(stream)) for _ in range(5)]
    [2, 2, 2, 2, 2]
    """

    def __init__(self, n, batch_size, shuffle=True, drop_last=False, generator=None,
                 device="cpu", indices=None):
        if drop_last and batch_size > n:
            raise ValueError(f"Minibatches: batch_size={batch_size} is more than the {n} rows "
                             "(drop_last=True would give no minibatch)")
        self.n, self.batch_size = n, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator, self.device, self.indices = generator, device, indices

    def __len__(self):
        """Minibatches per pass."""
        if self.drop_last:
            return self.n // self.batch_size
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        """One pass: a LongTensor of row numbers per minibatch (a ``slice`` for the rows of an
        ordered pass over all rows)."""
        n, size, indices = self.n, self.batch_size, self.indices
        stop = n - n % size if self.drop_last else n
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
            if indices is not None:
                order = indices[order]
            for start in range(0, stop, size):
                yield order[start:start + size]
        elif indices is not None:
            for start in range(0, stop, size):
                yield indices[start:start + size]
        else:
            for start in range(0, stop, size):
                yield slice(start, min(start + size, stop))

    def stream(self):
        """Minibatches without end: pass after pass, each in a new order.

        Yields
        ------
        rows : torch.Tensor or slice
            The row numbers of one minibatch, as in a pass.
        """
        if not len(self):
            raise ValueError("Minibatches: no minibatch in a pass over 0 rows")
        while True:
            yield from self


class BatchIterator:
    """Minibatches ``(X rows, fields)`` of a :class:`RowDataset` (or a ``Subset`` of one).

    The engine's ``iterator_train``/``iterator_valid``: skorch's default ``DataLoader``
    collates rows one at a time, which costs more than the forward pass of a small network;
    slicing whole tensors keeps training within a few percent of a bare torch loop. The
    row numbers come from :class:`Minibatches` on the dataset's device; the order is drawn
    from torch's global generator there, which the student seeds.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False):
        indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            indices = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
            dataset = dataset.dataset
            indices = indices.to(dataset.device)
        self.dataset = dataset
        n = len(dataset) if indices is None else len(indices)
        self.sampler = Minibatches(n, batch_size, shuffle=shuffle, device=dataset.device,
                                   indices=indices)

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        rows = self.dataset.rows
        for index in self.sampler:
            yield rows(index)


# -- GPED's stream: a posterior sample per student step ------------------------------------------

class SampleStream:
    """A teacher's posterior samples, one per student step, from its ``iter_samples``.

    A chain (``cycle=False``) is run once, yielding every ``every`` iterations where the
    teacher's ``iter_samples`` takes ``every``/``keep``; a fixed set of samples (an ensemble)
    is cycled, ``iter_samples`` being called again on the fitted teacher.

    Parameters
    ----------
    teacher : object
        A teacher with ``iter_samples(X, y, ...)``.
    X, y : array-like
        The teacher's training data.
    sample_weight : array-like or None
        Passed on where ``iter_samples`` takes it; else ignored, with a warning naming
        ``owner``.
    cycle : bool
        Cycle a fixed set of samples (True) or run a chain once (False).
    owner : estimator, default=None
        The estimator the stream serves, named in the warning.
    """

    def __init__(self, teacher, X, y, sample_weight, cycle, owner=None):
        self.teacher, self.X, self.y, self.cycle = teacher, X, y, cycle
        params = inspect.signature(teacher.iter_samples).parameters
        self.kwargs = {}
        if sample_weight is not None:
            if "sample_weight" in params:
                self.kwargs["sample_weight"] = sample_weight
            else:
                name = "GPEDDistiller" if owner is None else type(owner).__name__
                warn_user(f"{name}: the teacher {type(teacher).__name__}'s iter_samples "
                          "takes no sample_weight; its samples ignore the weights.")
        if "keep" in params:
            self.kwargs["keep"] = True
        self.generator = None
        self.done = False

    def next(self):
        """The next sample, or None when the stream has ended (samples are never None)."""
        if self.done:
            return None
        if self.generator is not None:
            sample = next(self.generator, None)
            if sample is not None or not self.cycle:
                self.done = sample is None
                return sample
        # the first pass, or the next one over a fixed set: an empty pass ends the stream
        self.generator = iter(self.teacher.iter_samples(self.X, self.y, **self.kwargs))
        sample = next(self.generator, None)
        self.done = sample is None
        return sample

    def close(self):
        """Stop the teacher's stream (a chain stores the samples it drew)."""
        if self.generator is not None and hasattr(self.generator, "close"):
            self.generator.close()
        self.generator = None


class StreamBatches:
    """The engine's training iterator for a stream of posterior samples (GPED): each epoch
    ``steps_per_epoch`` minibatches from ``sampler`` (a new pass at each epoch, reshuffled
    when a pass is used up), each carrying the next sample of ``stream`` in its field
    ``"sample"``, until ``n_steps`` steps or the end of the stream.

    Parameters
    ----------
    dataset : RowDataset
        The distillation rows.
    stream : SampleStream
    sampler : Minibatches
        Minibatches of ``dataset`` (``drop_last=True``), on its device.
    steps_per_epoch, n_steps : int
    """

    def __init__(self, dataset, stream, sampler, steps_per_epoch, n_steps):
        self.dataset, self.stream, self.sampler = dataset, stream, sampler
        self.steps_per_epoch, self.n_steps, self.steps_done = steps_per_epoch, n_steps, 0

    def __iter__(self):
        batches, rows = self.sampler.stream(), self.dataset.rows
        for _ in range(self.steps_per_epoch):
            if self.steps_done >= self.n_steps:
                return
            sample = self.stream.next()
            if sample is None:
                return
            self.steps_done += 1
            X, fields = rows(next(batches))
            fields["sample"] = sample
            yield X, fields


# -- a transfer set beyond memory: chunks mixed with the rows in memory ------------------------

class ChunkBatches:
    """One pass of training minibatches over rows in memory and a stream of chunks.

    The chunks (``feed.chunks(order)``: ``(rows, {field: per-row array})`` each) and the
    rows of ``dataset`` are mixed in a shuffle buffer of ``buffer_rows`` rows; each time it
    is full, its rows are put in a random order (``torch.randperm`` from torch's global
    generator, which the student seeds) and cut into minibatches of ``batch_size``, the
    rows left over going into the next buffer; the last minibatch of the pass holds what is
    left. The rows of ``dataset`` are spread over the pass in proportion to the chunks' rows
    (all in the first buffer while the number of rows of the stream is unknown), in a new
    random order at each pass, and so is the order of the chunks where the feed can read
    them in any order.

    When the whole pass fits in one buffer, the buffer holds the rows of ``dataset`` (in
    their order) then those of the chunks (in theirs), and one ``randperm`` orders them: the
    minibatches of :class:`BatchIterator` over the same rows stacked in one dataset.

    Parameters
    ----------
    dataset : RowDataset or torch.utils.data.Subset of one
        The rows in memory (their training part, after a validation split).
    feed : object
        ``chunks(order)`` (one pass), ``n_rows``, ``n_chunks`` (None where unknown) and
        ``random_access``: :class:`skdistill.streaming.Feed`.
    batch_size, buffer_rows : int
    """

    def __init__(self, dataset, feed, batch_size, buffer_rows):
        indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            indices = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
            dataset = dataset.dataset
        self.dataset, self.feed = dataset, feed
        self.indices = torch.arange(len(dataset)) if indices is None else indices
        self.batch_size, self.buffer_rows = batch_size, max(int(buffer_rows), 1)

    def __len__(self):
        n = self.feed.n_rows
        if n is None:
            raise TypeError("ChunkBatches: the number of rows of the stream is not known yet")
        return (n + len(self.indices) + self.batch_size - 1) // self.batch_size

    def _memory_rows(self, index):
        X, fields = self.dataset.rows(index.to(self.dataset.device))
        return X.cpu(), {k: v.cpu() for k, v in fields.items()}

    def _stream_rows(self, rows, fields):
        X = torch.as_tensor(rows, dtype=torch.float32)
        if self.dataset.row_shape is not None:
            X = X.reshape((len(X),) + self.dataset.row_shape)
        n, out = len(X), {}
        for name, ref in self.dataset.fields.items():
            if name in fields:
                value = torch.as_tensor(fields[name])
                out[name] = value.float() if value.dtype == torch.float64 else value
            elif name == "weight":
                out[name] = torch.ones(n, dtype=ref.dtype)
            elif name == "index":
                out[name] = torch.full((n,), -1, dtype=ref.dtype)
            else:
                raise ValueError(f"ChunkBatches: the stream's chunks have no field {name!r}")
        return X, out

    def __iter__(self):
        feed, size = self.feed, self.batch_size
        n_memory = len(self.indices)
        n_stream = feed.n_rows
        one_buffer = n_stream is not None and n_memory + n_stream <= self.buffer_rows
        memory, order = self.indices, None
        if not one_buffer:
            memory = self.indices[torch.randperm(n_memory)]
            if feed.random_access and feed.n_chunks:
                order = torch.randperm(feed.n_chunks).tolist()
        taken, seen = 0, 0
        pieces, buffered, carry = [], 0, None

        def flush(last):
            nonlocal taken, pieces, buffered, carry
            due = n_memory if last or not n_stream else min(
                n_memory, int(round(seen * n_memory / n_stream)))
            parts = [] if carry is None else [carry]
            if due > taken:
                parts.append(self._memory_rows(memory[taken:due]))
                taken = due
            parts += pieces
            pieces, buffered, carry = [], 0, None
            if not parts:
                return
            X = torch.cat([p[0] for p in parts])
            fields = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
            perm = torch.randperm(len(X))
            stop = len(X) if last else len(X) - len(X) % size
            for start in range(0, stop, size):
                rows = perm[start:start + size]
                yield X[rows], {k: v[rows] for k, v in fields.items()}
            if stop < len(X):
                rest = perm[stop:]
                carry = (X[rest], {k: v[rest] for k, v in fields.items()})

        for rows, fields in feed.chunks(order):
            piece = self._stream_rows(rows, fields)
            pieces.append(piece)
            buffered += len(piece[0])
            seen += len(piece[0])
            share = (n_memory if not n_stream else seen * n_memory / n_stream) - taken
            if buffered + share >= self.buffer_rows and not one_buffer:
                yield from flush(last=False)
        yield from flush(last=True)
