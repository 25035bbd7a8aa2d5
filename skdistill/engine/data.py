"""The data layer: training rows, their minibatches and where they live."""
import numpy as np
import scipy.sparse as sp
import torch


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

    def __getitem__(self, i):  # torch's Dataset protocol; the engine batches with rows()
        x, fields = self.rows(torch.as_tensor([i]))
        return x[0], {k: v[0] for k, v in fields.items()}

    def dense(self, index):
        """Inputs of rows ``index`` (a LongTensor or slice) as one dense float32 tensor."""
        if sp.issparse(self.X):
            idx = index if isinstance(index, slice) else index.numpy()
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


class BatchIterator:
    """Minibatches ``(X rows, fields)`` of a :class:`RowDataset` (or a ``Subset`` of one).

    The engine's ``iterator_train``/``iterator_valid``: skorch's default ``DataLoader``
    collates rows one at a time, which costs more than the forward pass of a small network;
    slicing whole tensors keeps training within a few percent of a bare torch loop. The
    permutation is drawn from torch's global generator, which the student seeds.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False):
        indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            indices = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
            dataset = dataset.dataset
        self.dataset, self.indices = dataset, indices
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        n = len(self.dataset) if self.indices is None else len(self.indices)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.dataset) if self.indices is None else len(self.indices)
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None and self.indices is None:
                yield self.dataset.rows(slice(start, start + self.batch_size))
                continue
            idx = (torch.arange(start, min(start + self.batch_size, n)) if order is None
                   else order[start:start + self.batch_size])
            if self.indices is not None:
                idx = self.indices[idx]
            yield self.dataset.rows(idx)
