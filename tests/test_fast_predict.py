"""The fast predict path: a plain float array skips scikit-learn's checks, nothing else changes.

Every output is compared, bit for bit and dtype for dtype, with the checked path forced on
the same input (the fast path switched off), and every refusal with the checked path's.
"""
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skdistill._validation as validation
import skdistill.distillers._base as distiller_base
import skdistill.students._base as student_base
import skdistill.students.cnn as cnn_module
from skdistill import (CNNStudent, CrossFitDistiller, GPEDDistiller, KnowledgeDistiller,
                       LatentBEStudent, MLPStudent, SGLDTeacher)
from skdistill.students import LatentBECNNStudent

pytestmark = pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")

X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
IMAGES = np.random.default_rng(0).random((120, 64))  # 8 x 8 grey-scale images, flat
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _mlp(**kwargs):
    return MLPStudent(**{"hidden_layer_sizes": (8,), "max_epochs": 2, "lr": 1e-2,
                         "random_state": 0, **kwargs})


def _gped():
    teacher = SGLDTeacher(hidden_layer_sizes=(8,), step_size=1e-3, n_iter=60, burn_in=20,
                          thinning=10, random_state=0)
    return GPEDDistiller(teacher, MLPStudent(hidden_layer_sizes=(8,), random_state=0),
                         target=["predictive", "entropy"], n_iter=60, burn_in=20, thinning=1,
                         random_state=0)


FACTORIES = {
    "mlp": lambda: _mlp().fit(X, y),
    "mlp_dropout": lambda: _mlp(dropout=0.5).fit(X, y),
    "latent_be": lambda: LatentBEStudent(n_members=2, hidden_layer_sizes=(8,), max_epochs=2,
                                         random_state=0).fit(X, y),
    "kd": lambda: KnowledgeDistiller(LogisticRegression(), _mlp(), random_state=0).fit(X, y),
    "crossfit": lambda: CrossFitDistiller(LogisticRegression(), _mlp(), n_folds=2,
                                          random_state=0).fit(X, y),
    "crossfit_ridge": lambda: CrossFitDistiller(LogisticRegression(), Ridge(), n_folds=2,
                                                random_state=0).fit(X, y),
    "gped": lambda: _gped().fit(X, y),
    "scaled_kd": lambda: make_pipeline(StandardScaler(), KnowledgeDistiller(
        LogisticRegression(), _mlp(), random_state=0)).fit(X, y),
    "kd_student_pipeline": lambda: KnowledgeDistiller(
        LogisticRegression(), make_pipeline(StandardScaler(), _mlp()),
        random_state=0).fit(X, y),
}
IMAGE_FACTORIES = {
    "cnn": lambda: CNNStudent(width_multiplier=0.5, max_epochs=1, random_state=0),
    "latent_be_cnn": lambda: LatentBECNNStudent(n_members=2, width_multiplier=0.5,
                                                max_epochs=1, random_state=0),
}
_FITTED = {}


def fitted(name):
    if name not in _FITTED:
        if name in IMAGE_FACTORIES:
            _FITTED[name] = IMAGE_FACTORIES[name]().fit(IMAGES, y)
        else:
            _FITTED[name] = FACTORIES[name]()
    return _FITTED[name]


@contextmanager
def checked_path():
    """Every prediction through the checked path, the fast one switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(student_base.BaseStudent, "_fast_X", lambda self, X: None)
        mp.setattr(distiller_base.BaseDistiller, "_fast_student_rows",
                   lambda self, X, method: None)
        yield


@contextmanager
def counted_checks():
    """The names of scikit-learn's checks called inside the block, in order."""
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        for module, name in ((validation, "validate_data"), (distiller_base, "validate_data"),
                             (cnn_module, "check_array")):
            def spy(*args, _real=getattr(module, name), _name=name, **kwargs):
                calls.append(_name)
                return _real(*args, **kwargs)

            mp.setattr(module, name, spy)
        yield calls


def outputs(estimator, X):
    """Every prediction method of ``estimator`` on ``X``, by name."""
    out = {m: getattr(estimator, m)(X) for m in ("predict_proba", "predict_log_proba",
                                                  "predict")}
    if hasattr(estimator, "forward"):
        out["forward"] = estimator.forward(X)
    if hasattr(estimator, "ensemble_proba"):
        out["ensemble_proba"] = estimator.ensemble_proba(X)
    if hasattr(estimator, "predict_uncertainty"):
        for key, value in estimator.predict_uncertainty(X).items():
            out[f"uncertainty_{key}"] = value
        for target in ("predictive", "entropy"):
            out[f"expectation_{target}"] = estimator.predict_expectation(X, target)
    return out


def assert_identical(fast, slow):
    assert fast.keys() == slow.keys()
    for key in fast:
        a, b = fast[key], slow[key]
        assert type(a) is type(b), key
        if torch.is_tensor(a):
            assert a.dtype == b.dtype, key
            a, b = a.numpy(), b.numpy()
        assert a.dtype == b.dtype and a.shape == b.shape, key
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), key


def variants(X):
    """The same rows as float64, float32, one row, Fortran order, strided, read-only, and
    more than one 4096-row chunk."""
    X32 = X.astype(np.float32)
    read_only = X32.copy()
    read_only.flags.writeable = False
    wide = np.repeat(X, 2, axis=1)
    return {"float64": X, "float32": X32, "one_row": X[3:4], "one_row_32": X32[5:6],
            "fortran": np.asfortranarray(X), "fortran_32": np.asfortranarray(X32),
            "strided_columns": wide[:, ::2], "every_other_row": X32[::2],
            "read_only": read_only, "chunks": np.tile(X32, (35, 1))[:4096 + 7]}


def _same_everywhere(name, data):
    estimator = fitted(name)
    for label, rows in variants(data).items():
        fast = outputs(estimator, rows)
        with checked_path():
            slow = outputs(estimator, rows)
        try:
            assert_identical(fast, slow)
        except AssertionError as exc:
            raise AssertionError(f"{name}, {label} rows: {exc}") from None


@pytest.mark.parametrize("name", list(FACTORIES))
def test_outputs_are_those_of_the_checked_path(name):
    _same_everywhere(name, X)


@pytest.mark.parametrize("name", list(IMAGE_FACTORIES))
def test_image_students_flat_and_shaped_input(name):
    _same_everywhere(name, IMAGES)
    estimator = fitted(name)
    for shape in ((8, 8), (1, 8, 8)):
        rows = IMAGES.reshape((-1,) + shape)
        fast = outputs(estimator, rows)
        with checked_path():
            assert_identical(fast, outputs(estimator, rows))
        assert_identical(fast, outputs(estimator, IMAGES))


@pytest.mark.parametrize("name", ["mlp", "latent_be", "kd", "crossfit", "gped", "cnn",
                                  "latent_be_cnn"])
def test_a_plain_float_array_skips_scikit_learns_checks(name):
    estimator = fitted(name)
    data = IMAGES if name in IMAGE_FACTORIES else X
    with counted_checks() as calls:
        outputs(estimator, data)
        outputs(estimator, data[:1].astype(np.float32))
    assert calls == []
    with checked_path(), counted_checks() as calls:
        outputs(estimator, data)
    assert calls  # the spies see the checked path


@pytest.mark.parametrize("name", ["kd", "crossfit", "gped"])
def test_a_distiller_checks_the_rows_once(name, monkeypatch):
    calls = []

    def counted(X, _real=student_base.fast_float_rows):
        calls.append(len(X))
        return _real(X)

    monkeypatch.setattr(student_base, "fast_float_rows", counted)
    estimator = fitted(name)
    estimator.predict_proba(X)
    assert calls == [len(X)]
    if name == "gped":
        calls.clear()
        estimator.predict_uncertainty(X)
        assert calls == [len(X)]


def _refusal(call):
    """``(exception type, message, warnings)`` of ``call()``, which must raise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception) as info:
            call()
    return type(info.value), str(info.value), [(w.category, str(w.message)) for w in caught]


BAD = {
    "nan": np.where(np.arange(6) == 2, np.nan, X[:4]),
    "inf": np.where(np.arange(6) == 0, np.inf, X[:4]),
    "minus_inf_32": np.where(np.arange(6) == 5, -np.inf, X[:4]).astype(np.float32),
    "overflow": np.where(np.arange(6) == 1, 1e300, X[:4]),
    # beyond float32's range, yet rounded to its largest finite value in float32
    "just_beyond_float32": np.where(np.arange(6) == 1,
                                    np.nextafter(FLOAT32_MAX, np.inf), X[:4]),
    "no_rows": X[:0],
    "no_rows_32": X[:0].astype(np.float32),
    "too_few_features": X[:4, :5],
    "too_many_features": np.hstack([X[:4], X[:4]]),
    "one_dimensional": X[0],
    "three_dimensional": X[:4, :, None],
}


@pytest.mark.parametrize("name", ["mlp", "latent_be", "kd", "crossfit", "gped"])
@pytest.mark.parametrize("bad", list(BAD))
def test_refusals_are_those_of_the_checked_path(name, bad):
    estimator = fitted(name)
    rows = BAD[bad]
    method = estimator.predict_uncertainty if name == "gped" else estimator.predict_proba
    fast = _refusal(lambda: method(rows))
    with checked_path():
        slow = _refusal(lambda: method(rows))
    assert fast == slow
    # named (GPEDDistiller's student refuses an image on its own: as before)
    named = estimator.student_ if (name, bad) == ("gped", "three_dimensional") else estimator
    assert type(named).__name__ in fast[1]


@pytest.mark.parametrize("bad", ["nan", "overflow", "just_beyond_float32", "no_rows",
                                 "too_many_features", "one_dimensional"])
def test_image_student_refusals_are_those_of_the_checked_path(bad):
    estimator = fitted("cnn")
    rows = {"nan": np.where(np.arange(64) == 3, np.nan, IMAGES[:2]),
            "overflow": np.where(np.arange(64) == 3, 1e300, IMAGES[:2]),
            "just_beyond_float32": np.where(np.arange(64) == 3,
                                            np.nextafter(FLOAT32_MAX, np.inf), IMAGES[:2]),
            "no_rows": IMAGES[:0].reshape(0, 8, 8),
            "too_many_features": IMAGES[:2, :49].reshape(2, 7, 7).repeat(2, axis=1),
            "one_dimensional": IMAGES[0]}[bad]
    fast = _refusal(lambda: estimator.predict_proba(rows))
    with checked_path():
        assert fast == _refusal(lambda: estimator.predict_proba(rows))
    assert "CNNStudent" in fast[1]


def test_largest_float32_is_accepted_by_both_paths():
    rows = X[:3].astype(np.float32)
    rows[1, 2] = np.finfo(np.float32).max
    fast = outputs(fitted("kd"), rows)
    with checked_path():
        assert_identical(fast, outputs(fitted("kd"), rows))
    # two of them overflow a float32 sum: still finite values, still the fast path
    rows[2, 2] = np.finfo(np.float32).max
    with counted_checks() as calls:
        fast = outputs(fitted("kd"), rows)
    assert calls == []
    with checked_path():
        assert_identical(fast, outputs(fitted("kd"), rows))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, -1])
def test_many_float32_values_are_checked_by_min_and_max(value, where):
    """From validation._SUM_CHECK_MAX values on, float32 rows are checked by min and max, not
    by a sum: a NaN or an infinity anywhere is still refused as by the checked path, and
    large finite values whose sum overflows are still accepted."""
    estimator = fitted("kd")
    n_rows = validation._SUM_CHECK_MAX // X.shape[1] + 1
    rows = np.resize(X, (n_rows, X.shape[1])).astype(np.float32)
    assert rows.size >= validation._SUM_CHECK_MAX
    large = rows.copy()
    large[:, 0] = np.finfo(np.float32).max  # the sum overflows; every value is finite
    assert not np.isfinite(large.sum())
    with counted_checks() as calls:
        fast = outputs(estimator, large)
    assert calls == []
    with checked_path():
        assert_identical(fast, outputs(estimator, large))
    rows[where, 3] = value
    fast = _refusal(lambda: estimator.predict_proba(rows))
    with checked_path():
        assert fast == _refusal(lambda: estimator.predict_proba(rows))
    assert "KnowledgeDistiller" in fast[1]


def test_forward_returns_tensors_the_caller_may_modify():
    """predict_proba computes from one chunk's outputs as the network gave them (no copy);
    the public forward still returns ordinary tensors, which may be changed in place."""
    student = fitted("mlp")
    before = student.predict_proba(X[:5])
    logits = student.forward(X[:5].astype(np.float32))
    assert not logits.is_inference()
    logits += 1.0  # an inference tensor refuses this outside inference mode
    assert np.array_equal(student.predict_proba(X[:5]), before)
    heads = fitted("gped").student_.forward(X[:5], module=fitted("gped").module_)
    assert not any(v.is_inference() for v in heads.values())


def test_feature_names_take_the_checked_path():
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    for student in (_mlp().fit(frame, y),
                    KnowledgeDistiller(LogisticRegression(), _mlp(),
                                       random_state=0).fit(frame, y)):
        with counted_checks() as calls, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from_array = student.predict_proba(X)
        assert calls
        assert any("does not have valid feature names" in str(w.message) for w in caught)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(student.predict_proba(frame), from_array)
        renamed = frame.rename(columns={"f0": "other"})
        with pytest.raises(ValueError, match="other"):
            student.predict_proba(renamed)


def test_other_inputs_take_the_checked_path():
    student = fitted("mlp")
    expected = student.predict_proba(X)
    for rows in (X.tolist(), X.astype(np.int64), pd.DataFrame(X),
                 X.astype(np.float32).astype(">f4")):
        with counted_checks() as calls:
            result = student.predict_proba(rows)
        assert calls, type(rows)
        if not np.issubdtype(np.asarray(rows).dtype, np.integer):
            np.testing.assert_array_equal(result, expected)


def test_sparse_input_takes_the_checked_path():
    import scipy.sparse as sp

    student, kd = fitted("mlp"), fitted("kd")
    for estimator in (student, kd):
        with counted_checks() as calls:
            result = estimator.predict_proba(sp.csr_matrix(X))
        assert calls
        np.testing.assert_array_equal(result, estimator.predict_proba(X))


def test_a_subclass_with_its_own_check_takes_the_checked_path():
    class Rescaled(MLPStudent):
        def check_X(self, X, reset):
            return super().check_X(X, reset) * 2

    student = Rescaled(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    with counted_checks() as calls:
        proba = student.predict_proba(X)
    assert calls
    with torch.no_grad():
        logits = student.module_(torch.from_numpy((2 * X).astype(np.float32)))
    np.testing.assert_array_equal(proba, np.exp(torch.log_softmax(logits.double(), 1).numpy()))


def test_a_student_method_of_its_own_gets_the_array():
    class Noted(MLPStudent):
        def predict_proba(self, X):
            self.seen_ = type(X)
            return super().predict_proba(X)

    kd = KnowledgeDistiller(LogisticRegression(), Noted(hidden_layer_sizes=(8,), max_epochs=2,
                                                        random_state=0), random_state=0)
    kd.fit(X, y).predict_proba(X)
    assert kd.student_.seen_ is np.ndarray


def test_a_network_in_train_mode_is_restored_and_one_in_eval_mode_untouched(monkeypatch):
    student = fitted("mlp_dropout")
    expected = student.predict_proba(X)
    dropout = next(m for m in student.module_.modules() if isinstance(m, torch.nn.Dropout))
    dropout.train()
    try:
        np.testing.assert_array_equal(student.predict_proba(X), expected)
        assert dropout.training
        assert [m.training for m in student.module_.modules()].count(True) == 1
    finally:
        dropout.eval()

    def refused(self, mode=True):
        raise AssertionError("a network in eval mode was switched")

    monkeypatch.setattr(torch.nn.Module, "train", refused)
    monkeypatch.setattr(torch.nn.Module, "eval", refused)
    np.testing.assert_array_equal(student.predict_proba(X), expected)


def test_an_unfitted_estimator_is_refused_as_before():
    from sklearn.exceptions import NotFittedError

    for estimator in (_mlp(), KnowledgeDistiller(LogisticRegression(), _mlp()), _gped()):
        with pytest.raises(NotFittedError, match=type(estimator).__name__):
            estimator.predict_proba(X)


def test_the_module_walk_finds_what_torch_finds():
    from skdistill.nets import CNN, MLP, BatchEnsemble

    networks = [MLP(6, 3, (8, 8), dropout=0.5), CNN.from_architecture("mnist", (1, 8, 8), 3),
                BatchEnsemble(MLP(6, 3, (8,)), 2), fitted("gped").module_,
                torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2)).to("meta")]
    for network in networks:
        modules = list(network.modules())
        for training in [None] + modules:
            network.eval()
            if training is not None:
                training.train()
            expected = (next(network.parameters()).device, any(m.training for m in modules))
            assert student_base._device_and_mode(network) == expected
        network.eval()


def test_latent_be_forward_joins_chunks_along_the_rows():
    """The members' logits of more than one chunk: (members, rows, classes), each chunk's
    rows after the last's, as one call on each chunk gives them."""
    student = fitted("latent_be")
    rows = np.tile(X, (3, 1)).astype(np.float32)  # 360 rows, chunks of 100
    out = student.forward(rows, batch_size=100)
    assert out.shape == (2, 360, 3)
    parts = [student.forward(rows[i:i + 100]) for i in range(0, 360, 100)]
    assert torch.equal(out, torch.cat(parts, dim=1))
    assert np.array_equal(student.ensemble_proba(rows),
                          torch.softmax(out.double(), dim=-1).numpy())


@pytest.mark.parametrize("name", ["mlp", "kd", "cnn"])
def test_reversed_rows_are_predicted_as_their_copy(name):
    """A view with negative strides (``X[::-1]``), which torch refuses as it is, gives the
    predictions of its contiguous copy, not a torch error."""
    estimator = fitted(name)
    data = IMAGES if name in IMAGE_FACTORIES else X
    reversed_rows = data[::-1]
    assert min(reversed_rows.strides) < 0
    assert np.array_equal(estimator.predict_proba(reversed_rows),
                          estimator.predict_proba(np.ascontiguousarray(reversed_rows)))


@pytest.mark.parametrize("name", ["mlp", "latent_be"])
def test_probabilities_are_the_float64_softmax_of_the_logits(name):
    """The arithmetic of the earlier releases: the float32 logits, cast to float64, through
    log_softmax; predict_proba its exponential."""
    student = fitted(name)
    rows = np.tile(X, (40, 1))  # 4,800 rows: two chunks
    logits = student._logits(rows)
    expected = torch.log_softmax(logits.double(), dim=1).numpy()
    assert np.array_equal(student.predict_log_proba(rows), expected)
    assert np.array_equal(student.predict_proba(rows), np.exp(expected))
