"""Distilling on a transfer set that is never in memory
=====================================================

A teacher fitted on 2,000 labelled rows labels a transfer set of 400,000 rows held as a lazy
dask array: each of its chunks is drawn when it is needed, labelled by the teacher, mixed with
the labelled rows in a shuffle buffer, and dropped once the student has trained on it. The
same code runs on a transfer set a hundred times larger, or on a dask cluster (the labelling
runs on the active ``Client``), with the memory of a few chunks and the buffer.

With ``teacher_cache``, the first pass writes each labelled chunk to disk and the second pass
reads it back instead of running the teacher again.

Prints the test AUC of a student trained on the labelled rows alone, of one distilled on them
alone, of one distilled on the transfer set too, and of the teacher; what the stream cost
(``transfer_stats_``); and predicts a dask array lazily. It reads no data file.
"""
import tempfile

import dask.array as da
import numpy as np
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from skdistill import KnowledgeDistiller, MLPStudent

N_FEATURES = 12
N_TRANSFER = 400_000
CHUNK = 20_000
# sphinx_gallery_start_ignore
import os  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
N_TRANSFER = 40_000 if QUICK else N_TRANSFER
CHUNK = 5_000 if QUICK else CHUNK
# sphinx_gallery_end_ignore


def bayes_proba(X):
    """``p*(y = 1 | x)``: a nonlinear function of the first five features."""
    return expit(2 * np.sin(2 * X[:, 0]) + 1.5 * X[:, 1] * X[:, 2] - X[:, 3] ** 2 + X[:, 4])


def draw(n, seed):
    """``n`` rows and their labels, from their own seed."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    return X, (rng.uniform(size=n) < bayes_proba(X)).astype(int)


def transfer_chunk(block_id=None):
    """One chunk of the transfer set, drawn when dask computes it (seeded by its number)."""
    return draw(CHUNK, 1_000 + block_id[0])[0]


X, y = draw(2_000, 0)
X_test, y_test = draw(50_000, 1)
transfer = da.map_blocks(transfer_chunk, dtype=np.float32,
                         chunks=((CHUNK,) * (N_TRANSFER // CHUNK), (N_FEATURES,)))
print(f"labelled rows: {len(X):,}; transfer set: {transfer.shape[0]:,} rows in "
      f"{transfer.numblocks[0]} chunks of {transfer.nbytes / transfer.numblocks[0] / 1e6:.1f} "
      f"MB, {transfer.nbytes / 1e6:.0f} MB in all, never held at once")


def student():
    return MLPStudent(hidden_layer_sizes=(64, 64), max_epochs=2, batch_size=512, lr=2e-3,
                      random_state=0)


def teacher():
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)


alone = MLPStudent(hidden_layer_sizes=(64, 64), max_epochs=200, batch_size=128, lr=2e-3,
                   random_state=0).fit(X, y)
labelled_only = KnowledgeDistiller(teacher(), MLPStudent(
    hidden_layer_sizes=(64, 64), max_epochs=200, batch_size=128, lr=2e-3, random_state=0),
    random_state=0).fit(X, y)
with tempfile.TemporaryDirectory() as cache:
    streamed = KnowledgeDistiller(teacher(), student(), shuffle_buffer=50_000,
                                  teacher_cache=cache, random_state=0)
    streamed.fit(X, y, X_unlabeled=transfer)

auc = {
    "student on the labels alone": roc_auc_score(y_test, alone.predict_proba(X_test)[:, 1]),
    "KD on the labelled rows": roc_auc_score(y_test,
                                             labelled_only.predict_proba(X_test)[:, 1]),
    "KD on the streamed transfer set": roc_auc_score(y_test,
                                                     streamed.predict_proba(X_test)[:, 1]),
    "teacher": roc_auc_score(y_test, streamed.teacher_.predict_proba(X_test)[:, 1]),
    "p* (Bayes)": roc_auc_score(y_test, bayes_proba(X_test)),
}
for name, value in auc.items():
    print(f"test AUC, {name:<32s} {value:.3f}")

stats = streamed.transfer_stats_
print(f"stream: {stats['passes']} passes over {stats['rows']:,} rows in {stats['chunks']} "
      f"chunks; the teacher labelled {stats['labelled_chunks']} chunks (the second pass read "
      f"the cache) in {stats['label_seconds']:.1f} s; the student trained for "
      f"{stats['fit_seconds']:.1f} s, of which {stats['wait_seconds']:.1f} s waiting for a "
      "labelled chunk")

lazy = streamed.predict_proba(da.from_array(X_test, chunks=10_000))
gap = np.abs(lazy.compute() - streamed.predict_proba(X_test)).max()
print(f"predict_proba on a dask array: a lazy {type(lazy).__name__} of shape {lazy.shape}; "
      f"computed chunk by chunk, it differs from the in-memory one by {gap:.1e}")
