"""Transfer sets beyond memory: chunked X_unlabeled for KnowledgeDistiller and
CrossFitDistiller (skdistill.streaming)."""
import gc
import os
import threading
import tracemalloc
import weakref

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch.callbacks import EarlyStopping

from skdistill import CrossFitDistiller, KnowledgeDistiller, MLPStudent, RankingDistiller
from skdistill.streaming import Chunks, is_chunked

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(1600, 8, n_informative=5, random_state=0)
    return X[:400], y[:400], X[400:], X


def student(**kwargs):
    params = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=64, lr=3e-3,
                  random_state=0)
    return MLPStudent(**{**params, **kwargs})


def teacher():
    return HistGradientBoostingClassifier(max_iter=15, random_state=0)


def kd(**kwargs):
    return KnowledgeDistiller(teacher(), kwargs.pop("student", student()), random_state=0,
                              **kwargs)


def blocks(X, size):
    return [X[i:i + size] for i in range(0, len(X), size)]


def test_is_chunked():
    assert is_chunked(da.zeros((4, 2), chunks=2)) and is_chunked(Chunks([np.zeros((1, 2))]))
    assert is_chunked(iter([np.zeros((1, 2))]))
    assert not any(is_chunked(x) for x in (np.zeros((2, 2)), [[1, 2]], pd.DataFrame({"a": [1]}),
                                           None))


def crossfit(**kwargs):
    return CrossFitDistiller(teacher(), student(), n_folds=3, gamma_alpha=0.1, random_state=0,
                             **kwargs)


@pytest.mark.parametrize("make, weighted", [
    (kd, False), (kd, True), (crossfit, True),
    (lambda **kw: crossfit(refit_teacher=False, teacher_calibration="temperature", **kw),
     False),
], ids=["kd", "kd-weighted", "crossfit-weighted", "crossfit-folds-calibrated"])
def test_a_dask_array_gives_the_in_memory_student_when_the_order_is_the_same(data, make,
                                                                               weighted):
    # the whole pass in one shuffle buffer: the rows of X then those of the chunks, in order,
    # and one randperm, as the engine orders X and X_unlabeled stacked in memory
    X, y, X_unlabeled, X_all = data
    weight = np.linspace(0.5, 2, len(X)) if weighted else None
    memory = make().fit(X, y, sample_weight=weight, X_unlabeled=X_unlabeled)
    chunked = make().fit(X, y, sample_weight=weight,
                         X_unlabeled=da.from_array(X_unlabeled, chunks=300))
    np.testing.assert_array_equal(chunked.predict_proba(X_all), memory.predict_proba(X_all))
    stats = chunked.transfer_stats_
    assert (stats["rows"], stats["chunks"], stats["passes"]) == (1200, 4, 3)
    assert stats["labelled_chunks"] == 12  # each pass labels again without a cache
    assert memory.transfer_stats_ is None


def test_chunks_in_a_list_train_in_several_buffers(data):
    X, y, X_unlabeled, X_all = data
    memory = kd().fit(X, y, X_unlabeled=X_unlabeled)
    model = kd(shuffle_buffer=250).fit(X, y, X_unlabeled=Chunks(blocks(X_unlabeled, 150)))
    # another order of the same rows: a student as good, not the same one
    assert not np.array_equal(model.predict_proba(X_all), memory.predict_proba(X_all))
    assert abs(model.score(X_all, np.r_[y, memory.predict(X_unlabeled)]) -
               memory.score(X_all, np.r_[y, memory.predict(X_unlabeled)])) < 0.05
    assert model.transfer_stats_["chunks"] == 8
    assert len(model.history_) == 3


def test_the_cache_replaces_the_teacher_after_the_first_pass(data, tmp_path):
    X, y, X_unlabeled, X_all = data
    source = da.from_array(X_unlabeled, chunks=100)
    plain = kd(shuffle_buffer=300).fit(X, y, X_unlabeled=source)
    cached = kd(shuffle_buffer=300, teacher_cache=tmp_path).fit(X, y, X_unlabeled=source)
    np.testing.assert_array_equal(cached.predict_proba(X_all), plain.predict_proba(X_all))
    assert plain.transfer_stats_["labelled_chunks"] == 36
    assert cached.transfer_stats_["labelled_chunks"] == 12
    assert list(tmp_path.iterdir()) == []  # the fit's sub-directory is removed


def test_a_generator_is_read_once_through_the_cache(data, tmp_path):
    X, y, X_unlabeled, _ = data
    reads = []

    def read():
        for chunk in blocks(X_unlabeled, 200):
            reads.append(len(chunk))
            yield chunk

    model = kd(teacher_cache=str(tmp_path)).fit(X, y, X_unlabeled=read())
    assert sum(reads) == 1200 and model.transfer_stats_["passes"] == 3
    with pytest.raises(ValueError, match=r"KnowledgeDistiller: parameter X_unlabeled=<generator>"
                                         r" is invalid.*read 3 times.*teacher_cache"):
        kd().fit(X, y, X_unlabeled=read())
    kd(student=student(max_epochs=1)).fit(X, y, X_unlabeled=read())  # one pass: fine


def test_validation_early_stopping_and_history_as_for_arrays(data):
    X, y, X_unlabeled, _ = data
    stop = EarlyStopping(patience=1, threshold=10.0)  # stops at the second epoch
    model = kd(student=student(max_epochs=10, validation_fraction=0.25, callbacks=[stop]),
               shuffle_buffer=200).fit(X, y, X_unlabeled=da.from_array(X_unlabeled, 300))
    history = model.history_
    assert len(history) == 2 and all("valid_loss" in row for row in history)
    assert model.transfer_stats_["passes"] == 2
    # validation rows are 100 of the 400 rows of X; the rest and the stream train
    assert history[0]["valid_batch_count"] == 2
    assert sum(history[0]["batches"][i]["train_batch_size"]
               for i in range(history[0]["train_batch_count"])) == 300 + 1200


def test_a_ctrl_c_keeps_the_epochs_trained(data, monkeypatch):
    from skdistill import _interrupt

    X, y, X_unlabeled, _ = data
    passes = []

    def read():
        passes.append(1)
        for k, chunk in enumerate(blocks(X_unlabeled, 200)):
            if len(passes) == 2 and k == 3:
                monkeypatch.setattr(_interrupt, "user_interrupted", lambda: True)
                raise KeyboardInterrupt
            yield chunk

    with pytest.warns(RuntimeWarning, match="fit interrupted; keeping the student trained "
                                            "for 1 of 3 epochs"):
        model = kd().fit(X, y, X_unlabeled=Chunks(read))
    assert len(model.history_) == 1 and model.predict_proba(X).shape == (400, 2)


def test_a_student_pipeline_transforms_each_chunk(data):
    X, y, X_unlabeled, X_all = data
    pipe = make_pipeline(StandardScaler(), student())
    model = KnowledgeDistiller(teacher(), pipe, random_state=0).fit(
        X * 100, y, X_unlabeled=da.from_array(X_unlabeled * 100, chunks=300))
    scaler = model.student_[0]
    np.testing.assert_allclose(scaler.mean_, (X * 100).mean(axis=0))  # fitted on X alone
    assert model.score(X_all * 100, np.r_[y, model.teacher_.predict(X_unlabeled * 100)]) > 0.8


def test_a_dask_dataframe_with_strings_goes_to_a_table_teacher_and_student(data):
    X, y, X_unlabeled, _ = data
    frame = pd.DataFrame(X[:, :4], columns=list("abcd")).assign(
        colour=np.where(X[:, 4] > 0, "red", "blue"))
    more = pd.DataFrame(X_unlabeled[:, :4], columns=list("abcd")).assign(
        colour=np.where(X_unlabeled[:, 4] > 0, "red", "blue"))
    encode = make_column_transformer((OneHotEncoder(), ["colour"]), remainder="passthrough")
    t = make_pipeline(encode, HistGradientBoostingClassifier(max_iter=10))
    s = make_pipeline(make_column_transformer((OneHotEncoder(), ["colour"]),
                                              remainder=StandardScaler()), student())
    model = KnowledgeDistiller(t, s, random_state=0).fit(
        frame, y, X_unlabeled=dd.from_pandas(more, npartitions=3))
    assert model.transfer_stats_["rows"] == 1200 and model.transfer_stats_["chunks"] == 3
    proba = model.predict_proba(dd.from_pandas(more, npartitions=2))
    np.testing.assert_allclose(proba.compute(), model.predict_proba(more))


def test_predictions_on_chunked_rows(data):
    X, y, X_unlabeled, X_all = data
    model = kd().fit(X, y, X_unlabeled=X_unlabeled)
    lazy = model.predict_proba(da.from_array(X_all, chunks=500))
    assert isinstance(lazy, da.Array) and lazy.shape == (1600, 2)
    np.testing.assert_array_equal(lazy.compute(), model.predict_proba(X_all))
    labels = model.predict(da.from_array(X_all, chunks=500))
    np.testing.assert_array_equal(labels.compute(), model.predict(X_all))
    parts = list(model.predict_log_proba(Chunks(blocks(X_all, 700))))
    assert [len(p) for p in parts] == [700, 700, 200]
    np.testing.assert_allclose(np.concatenate(parts), model.predict_log_proba(X_all))


def test_a_dask_client_labels_the_chunks(data):
    distributed = pytest.importorskip("distributed")
    X, y, X_unlabeled, X_all = data
    local = kd().fit(X, y, X_unlabeled=da.from_array(X_unlabeled, chunks=300))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = kd().fit(X, y, X_unlabeled=da.from_array(X_unlabeled, chunks=300))
        # the labelling ran as tasks of the client's scheduler
        assert "label" in set(client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.task_prefixes)))
    np.testing.assert_array_equal(remote.predict_proba(X_all), local.predict_proba(X_all))


# -- bad chunked input: a clear error naming the chunk ------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (lambda X: X[:, :7], r"chunk 2 \(rows 400 to 599 of X_unlabeled\) has 7 columns, X has 8"),
    (lambda X: np.where(np.arange(len(X))[:, None] == 5, np.nan, X),
     r"chunk 2 \(rows 400 to 599 of X_unlabeled\) contains NaN at row 5 of the chunk"),
    (lambda X: np.where(np.arange(len(X))[:, None] == 0, np.inf, X),
     r"chunk 2 .* contains infinity at row 0"),
    (lambda X: X.astype(str).astype(object) + "x", r"chunk 2 .* values of dtype object"),
])
def test_a_bad_chunk_is_named(data, bad, message):
    X, y, X_unlabeled, _ = data
    chunks = blocks(X_unlabeled, 200)
    chunks[2] = bad(chunks[2])
    with pytest.raises(ValueError, match=r"^KnowledgeDistiller: parameter X_unlabeled is "
                                         r"invalid: " + message):
        kd(shuffle_buffer=100).fit(X, y, X_unlabeled=Chunks(chunks))


def test_a_bad_first_chunk_is_refused_before_the_teacher_is_fitted(data):
    X, y, X_unlabeled, _ = data

    class Refuses(LogisticRegression):
        def fit(self, X, y):
            raise AssertionError("fitted")

    with pytest.raises(ValueError, match="chunk 0 .* has 3 columns, X has 8"):
        KnowledgeDistiller(Refuses(), student(max_epochs=1)).fit(
            X, y, X_unlabeled=iter([X_unlabeled[:10, :3]]))


@pytest.mark.parametrize("source, message", [
    (lambda X: iter([]), r"X_unlabeled=<list_iterator> is invalid; expected an iterable of at "
                         r"least one chunk \(it gave none\)"),
    (lambda X: Chunks([]), r"X_unlabeled=Chunks\(<0 chunks>\) is invalid; expected an iterable "
                           r"of at least one chunk"),
    (lambda X: da.from_array(X[:, :5], chunks=100),
     r"X_unlabeled=<dask array of shape \(1200, 5\)> is invalid; expected rows shaped as those "
     r"of X: shape \(n_unlabeled, 8\)"),
    (lambda X: da.zeros((0, 8), chunks=10), r"X_unlabeled=<dask array of shape \(0, 8\)> is "
                                            r"invalid; expected at least one row"),
    (lambda X: dd.from_pandas(pd.DataFrame(X), npartitions=2),
     r"X_unlabeled=<dask DataFrame of 2 partitions> is invalid; expected a dask array "
     r"\(X is an array\)"),
])
def test_a_bad_source_is_refused_before_any_fit(data, source, message):
    X, y, X_unlabeled, _ = data
    with pytest.raises(ValueError, match=r"^KnowledgeDistiller: parameter " + message):
        kd(student=student(max_epochs=1)).fit(X, y, X_unlabeled=source(X_unlabeled))


def test_chunked_input_where_it_is_not_streamed_is_refused(data):
    X, y, X_unlabeled, _ = data
    with pytest.raises(ValueError, match=r"KnowledgeDistiller: parameter X=<dask array of shape "
                                         r"\(400, 8\)> is invalid; expected rows in memory.*"
                                         r"give a transfer set beyond memory as X_unlabeled"):
        kd().fit(da.from_array(X), y)
    with pytest.raises(ValueError, match=r"RankingDistiller: parameter X_unlabeled=<dask array"
                                         r".* does not stream a transfer set"):
        RankingDistiller(teacher(), MLPStudent(max_epochs=1)).fit(
            X, y, X_unlabeled=da.from_array(X_unlabeled))
    with pytest.raises(TypeError, match=r"CrossFitDistiller: parameter student=.* a skdistill "
                                        r"student .* when X_unlabeled is chunked"):
        from sklearn.ensemble import RandomForestRegressor

        CrossFitDistiller(teacher(), RandomForestRegressor(n_estimators=2)).fit(
            X, y, X_unlabeled=da.from_array(X_unlabeled))


def test_a_failed_fit_removes_its_cache(data, tmp_path):
    X, y, X_unlabeled, _ = data
    chunks = blocks(X_unlabeled, 200)
    chunks[4] = chunks[4][:, :7]
    with pytest.raises(ValueError, match="chunk 4"):
        kd(teacher_cache=tmp_path).fit(X, y, X_unlabeled=Chunks(chunks))
    assert list(tmp_path.iterdir()) == []


def test_the_fitted_distiller_pickles_without_its_stream(data):
    import pickle

    X, y, X_unlabeled, X_all = data
    model = kd(keep_teachers=False).fit(X, y, X_unlabeled=da.from_array(X_unlabeled, 300))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X_all), model.predict_proba(X_all))


# -- memory: bounded by the chunks in flight and the buffer, not by the data -------------------

def test_memory_is_bounded_by_chunks_and_buffer_not_by_the_data():
    n_chunks, rows, features = 100, 5000, 16   # 500,000 rows: 64 MB of float64
    alive, most = set(), [0]
    lock = threading.Lock()

    def read():
        for k in range(n_chunks):
            chunk = np.random.default_rng(k).normal(size=(rows, features))
            with lock:
                alive.add(k)
                most[0] = max(most[0], len(alive))
            weakref.finalize(chunk, alive.discard, k)
            yield chunk

    X, y = make_classification(2000, features, random_state=0)
    model = KnowledgeDistiller(LogisticRegression(), student(max_epochs=1, batch_size=1024),
                               shuffle_buffer=20_000, random_state=0)
    gc.collect()
    tracemalloc.start()
    try:
        model.fit(X, y, X_unlabeled=Chunks(read, n_rows=n_chunks * rows))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data_bytes = n_chunks * rows * features * 8
    assert model.transfer_stats_["rows"] == n_chunks * rows
    # a few chunks in flight (the window, the one being read), never the data
    assert most[0] <= 12, most[0]
    assert peak < data_bytes / 8, (peak, data_bytes)


def test_synthetic_rows_join_the_rows_in_memory(data):
    X, y, X_unlabeled, _ = data
    model = kd(augment="gaussian", augment_size=0.5, student=student(max_epochs=1)).fit(
        X, y, X_unlabeled=da.from_array(X_unlabeled, chunks=300))
    history = model.history_[0]
    trained = sum(history["batches"][i]["train_batch_size"]
                  for i in range(history["train_batch_count"]))
    assert model.n_augmented_ == 200 and trained == 400 + 200 + 1200


def test_empty_chunks_are_skipped_and_a_source_of_only_empty_ones_refused(data, tmp_path):
    X, y, X_unlabeled, _ = data
    chunks = blocks(X_unlabeled, 300)
    chunks.insert(2, X_unlabeled[:0])
    model = kd(shuffle_buffer=200, teacher_cache=tmp_path).fit(X, y, X_unlabeled=Chunks(chunks))
    assert (model.transfer_stats_["rows"], model.transfer_stats_["chunks"]) == (1200, 4)
    with pytest.raises(ValueError, match=r"X_unlabeled=Chunks\(<2 chunks>\) is invalid; expected "
                                         r"at least one row \(its chunks hold none\)"):
        kd().fit(X, y, X_unlabeled=Chunks([X_unlabeled[:0]] * 2))
