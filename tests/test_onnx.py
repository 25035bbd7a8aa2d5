"""ONNX export (skdistill.onnx): onnxruntime gives predict_proba, labels and GPED uncertainty."""
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import skl2onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, load_iris
from sklearn.ensemble import (HistGradientBoostingClassifier, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdistill import (CNNStudent, CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller,
                       GPEDDistiller, KnowledgeDistiller, LatentBECNNStudent, LatentBEStudent,
                       MLPStudent, SGLDTeacher)
from skdistill._testing import fast_instance, labels_for
from skdistill.discovery import all_estimators
# importing skdistill.onnx registers the converters
from skdistill.onnx import MIN_OPSET, NO_LABEL_INT64, NO_LABEL_STRING, onnx_inputs, to_onnx

from test_package import _in_a_fresh_interpreter

ATOL = 1e-5


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


def session(onx):
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def run(onx_or_session, X):
    sess = onx_or_session if isinstance(onx_or_session, ort.InferenceSession) else session(
        onx_or_session)
    return sess.run(None, {sess.get_inputs()[0].name: X})


def last_step(model):
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def with_bad_rows(X):
    """``(rows, bad)``: X's first rows with NaN, +inf and -inf, each in one feature (the last,
    the first, the middle one) of rows 1, 3 and 4, and, in float64 rows, a value beyond
    float32's range in row 5; ``bad`` marks those rows."""
    rows = X[:7].copy()
    flat = rows.reshape(len(rows), -1)  # a view: images get their bad value in one pixel
    n = flat.shape[1]
    flat[1, -1], flat[3, 0], flat[4, n // 2] = np.nan, np.inf, -np.inf
    bad = np.isin(np.arange(len(rows)), [1, 3, 4])
    if X.dtype == np.float64:
        flat[5, 1], bad[5] = 1e300, True
    return rows, bad


def assert_bad_rows_marked(model, rows, bad, label, proba, *uncertainties):
    """The finite rows as ``predict_proba`` gives them; the bad ones NaN in every output and
    labelled by the marker of the label's type, while ``predict_proba`` refuses each."""
    proba = np.asarray(proba)
    np.testing.assert_allclose(proba[~bad], model.predict_proba(rows[~bad]), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label[~bad], model.predict(rows[~bad]))
    for out in (proba, *uncertainties):
        assert np.isnan(out[bad]).all() and np.isfinite(out[~bad]).all()
    marker = NO_LABEL_STRING if label.dtype.kind in "OSU" else NO_LABEL_INT64
    assert (label[bad] == marker).all() and not np.isin(model.classes_, [marker]).any()
    for row in rows[bad]:
        with pytest.raises(ValueError, match="NaN|infinity|float32's range"):
            model.predict_proba(row[None])


def assert_parity(model, X, **kwargs):
    """Labels and probabilities (zipmap off) equal the model's, on X, on one row and on the
    finite rows of a batch with NaN and inf rows, which are marked."""
    onx = skl2onnx.to_onnx(model, X[:1], options={id(last_step(model)): {"zipmap": False}},
                           **kwargs)
    sess = session(onx)
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    label, proba = run(sess, X)
    assert proba.dtype == X.dtype and proba.shape == (len(X), len(model.classes_))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, model.predict(X))
    label1, proba1 = run(sess, X[3:4])  # a batch of one row
    np.testing.assert_allclose(proba1, model.predict_proba(X[3:4]), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label1, model.predict(X[3:4]))
    rows, bad = with_bad_rows(X)
    assert_bad_rows_marked(model, rows, bad, *run(sess, rows))
    return onx


# -- students ----------------------------------------------------------------------------------
def test_mlp_student_with_string_classes(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, lr=1e-2, random_state=0)
    assert_parity(clf.fit(X, names), X)


def test_pruned_mlp_student(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X).astype(np.float32)
    clf = MLPStudent(hidden_layer_sizes=(32,), max_epochs=100, lr=1e-2, group_lasso=0.05,
                     random_state=0).fit(X, y)
    assert clf.n_pruned_units_ > 0  # the exported network is the smaller one
    onx = assert_parity(clf, X)
    widths = {tuple(t.dims) for t in onx.graph.initializer}
    assert (clf.hidden_layer_sizes_[0], 4) in widths and (32, 4) not in widths


def test_cnn_student_takes_flat_rows(digits):
    X, y = digits
    clf = CNNStudent(width_multiplier=0.5, max_epochs=2, random_state=0).fit(X, y)
    assert_parity(clf, X[:60])


def test_latentbe_students_export_the_merged_network(iris, digits):
    X, y = iris
    clf = LatentBEStudent(n_members=3, hidden_layer_sizes=(16,), max_epochs=20, lr=1e-2,
                          random_state=0).fit(X, y)
    onx = assert_parity(clf, X)
    # the merged network: weights of one plain MLP, not of n_members BatchEnsemble members
    assert {tuple(t.dims) for t in onx.graph.initializer} >= {(16, 4), (3, 16)}
    images = digits[0].reshape(-1, 1, 8, 8)  # images in, reshaped to rows in the graph
    cnn = LatentBECNNStudent(n_members=2, width_multiplier=0.5, max_epochs=1,
                             random_state=0).fit(images, digits[1])
    assert_parity(cnn, images[:40])


# -- distillers --------------------------------------------------------------------------------
def test_knowledge_distiller_pipeline_float64_input(iris):
    # the ecosystem's own call, on a pipeline with a scaler, with float64 rows as given
    X, y = iris
    X = X.astype(np.float64)
    pipe = Pipeline([("scale", StandardScaler()), ("kd", KnowledgeDistiller(
        RandomForestClassifier(n_estimators=10, random_state=0),
        MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, lr=1e-2), temperature=2.0,
        random_state=0))]).fit(X, y)
    assert_parity(pipe, X)


def test_crossfit_pipeline_with_a_network_student(iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("kd", CrossFitDistiller(
        RandomForestClassifier(n_estimators=10, random_state=0),
        MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, lr=1e-2), n_folds=2,
        gamma_alpha=0.1, random_state=0))]).fit(X, y)
    assert_parity(pipe, X)


def test_ensemble_distiller_latentbe_student(iris):
    X, y = iris
    model = EnsembleDistiller(
        DeepEnsembleTeacher(MLPStudent(hidden_layer_sizes=(8,), max_epochs=10, lr=1e-2),
                            n_members=2),
        LatentBEStudent(n_members=2, hidden_layer_sizes=(8,), max_epochs=5, lr=1e-2),
        random_state=0).fit(X, y)
    assert_parity(model, X)


@pytest.mark.parametrize("student, loss", [
    (RandomForestRegressor(n_estimators=5, random_state=0), "ce"),
    (Ridge(), "sel"),
    (Ridge(), "mse"),
])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_crossfit_regressor_student_goes_through_skl2onnx(iris, student, loss, n_classes):
    X, y = iris
    keep = y < n_classes
    X, y = X[keep], y[keep]
    model = CrossFitDistiller(RandomForestClassifier(n_estimators=10, random_state=0), student,
                              n_folds=2, loss=loss, gamma_alpha=1.0, random_state=0).fit(X, y)
    assert_parity(model, X)


def test_crossfit_regressor_with_clipped_and_empty_rows():
    # a regressor whose outputs fall outside [0, 1], with a row of no mass at all (uniform)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = np.arange(60) % 3
    model = CrossFitDistiller(RandomForestClassifier(n_estimators=5, random_state=0), Ridge(),
                              n_folds=2, random_state=0).fit(X, y)
    model.student_.coef_ = model.student_.coef_ * 5
    model.student_.intercept_ = np.array([-50.0, -50.0, -50.0])
    X[0] = 0  # every output -50: no mass
    assert np.allclose(model.predict_proba(X[:1]), 1 / 3)
    model.student_.intercept_ = np.array([0.2, 0.3, -0.1])
    assert_parity(model, X)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_gped_outputs_give_predict_uncertainty_in_one_call(iris, digits, kind):
    if kind == "mlp":
        X, y = iris
        X = StandardScaler().fit_transform(X).astype(np.float32)
        student = MLPStudent(hidden_layer_sizes=(16,), lr=1e-2)
    else:  # flat rows reshaped to images before the shared trunk
        X, y = digits
        student = CNNStudent(width_multiplier=0.5, lr=1e-2)

    def top(p):
        return p.max(dim=1).values

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short chain: the budget warning
        model = GPEDDistiller(
            SGLDTeacher(hidden_layer_sizes=(16,), step_size=1e-3, prior_precision=1.0),
            student, target=["entropy", "variance", top], n_iter=250, burn_in=50, thinning=1,
            distill_batch_size=50, random_state=0).fit(X, y)
    onx = skl2onnx.to_onnx(model, X[:1])  # skl2onnx's defaults: ZipMap
    sess = session(onx)
    names = ["output_label", "output_probability", "expected_entropy", "expected_variance",
             "expected_top", "total", "aleatoric", "epistemic"]
    assert [o.name for o in sess.get_outputs()] == names
    for rows in (X, X[5:6]):
        out = dict(zip(names, run(sess, rows)))
        np.testing.assert_array_equal(out["output_label"], model.predict(rows))
        proba = np.array([[d[c] for c in model.classes_] for d in out["output_probability"]])
        np.testing.assert_allclose(proba, model.predict_proba(rows), rtol=0, atol=ATOL)
        for name, target in [("entropy", "entropy"), ("variance", "variance"), ("top", top)]:
            np.testing.assert_allclose(out[f"expected_{name}"],
                                       model.predict_expectation(rows, target), atol=ATOL)
        u = model.predict_uncertainty(rows)
        for part in ("total", "aleatoric", "epistemic"):
            assert out[part].shape == (len(rows),)
            np.testing.assert_allclose(out[part], u[part], rtol=0, atol=ATOL)
    assert (model.predict_uncertainty(X).epistemic > 0).any()  # the identity is not trivial
    rows, bad = with_bad_rows(X)
    out = dict(zip(names, run(sess, rows)))
    proba = [[d[c] for c in model.classes_] for d in out["output_probability"]]
    assert_bad_rows_marked(model, rows, bad, out["output_label"], proba,
                           *(out[name] for name in names[2:]))


# -- what is refused ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regressor_crossfit(iris):
    X, y = iris
    return CrossFitDistiller(RandomForestClassifier(n_estimators=5, random_state=0), Ridge(),
                             n_folds=2, random_state=0).fit(X, y)


def test_bad_rows_are_marked_in_probability_columns(iris, regressor_crossfit):
    rows, bad = with_bad_rows(iris[0])
    onx = skl2onnx.to_onnx(regressor_crossfit, rows[:1],
                           options={id(regressor_crossfit): {"zipmap": "columns"}})
    label, *columns = run(onx, rows)
    proba = np.stack(columns, axis=1)
    assert proba.shape == (len(rows), 3) and np.isnan(proba[bad]).all()
    expected = regressor_crossfit.predict_proba(rows[~bad])
    np.testing.assert_allclose(proba[~bad], expected, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label[~bad], expected.argmax(axis=1))
    assert (label[bad] == NO_LABEL_INT64).all()


def test_regressor_without_a_skl2onnx_converter_is_named(iris):
    X, y = iris
    model = CrossFitDistiller(RandomForestClassifier(n_estimators=5, random_state=0),
                              KernelRidge(), n_folds=2, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match=r"CrossFitDistiller: parameter student=KernelRidge\(\) "
                                        r"is invalid; .*skl2onnx can convert"):
        skl2onnx.to_onnx(model, X[:1])


def test_unsupported_requests_get_clear_errors(iris, regressor_crossfit):
    X, y = iris
    with pytest.raises(NotFittedError, match="MLPStudent"):
        skl2onnx.to_onnx(MLPStudent(), X[:1])
    with pytest.raises(TypeError, match="CrossFitDistiller: parameter X='<StringTensorType>'"):
        skl2onnx.to_onnx(regressor_crossfit, initial_types=[("X", StringTensorType([None, 4]))])
    with pytest.raises(ValueError, match=r"CrossFitDistiller: target_opset=15 is too low.*"
                                         r"from 18"):
        skl2onnx.to_onnx(regressor_crossfit, X[:1], target_opset=MIN_OPSET - 3)
    clf = MLPStudent(hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"MLPStudent: parameter X='<input of shape "
                                         r"\[None, 5\]>' is invalid; expected rows of 4 "
                                         r"features"):
        skl2onnx.to_onnx(clf, initial_types=[("X", FloatTensorType([None, 5]))])
    # "" labels the rows with NaN or inf: a class "" could not be told from them
    clf = MLPStudent(hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(
        X, np.where(y == 0, "", "other"))
    with pytest.raises(ValueError, match=r"MLPStudent: parameter classes_=\['', 'other'\] is "
                                         r"invalid; expected no class '' for ONNX export"):
        skl2onnx.to_onnx(clf, X[:1])


def test_importing_skdistill_imports_no_onnx_package():
    printed = _in_a_fresh_interpreter("""
        import sys
        import skdistill

        onnx = ["onnx", "onnxruntime", "onnxscript", "skl2onnx", "skdistill.onnx"]
        print(sorted(m for m in onnx if m in sys.modules))
        skdistill.onnx  # the attribute imports it, and registers the converters
        from skl2onnx import get_model_alias
        print(get_model_alias(skdistill.GPEDDistiller))
    """)
    assert printed.splitlines() == ["[]", "SkdistillGPEDDistiller"]


# -- every student and distiller ----------------------------------------------------------------
EXPORTABLE = all_estimators(["student", "distiller"])


def test_every_student_and_distiller_has_a_converter_and_no_teacher_does():
    from skl2onnx import get_model_alias

    assert {name for name, _ in EXPORTABLE} >= {"MLPStudent", "CNNStudent",
                                                "KnowledgeDistiller", "GPEDDistiller"}
    for name, cls in EXPORTABLE:
        assert get_model_alias(cls) == f"Skdistill{name}"
    for name, cls in all_estimators("teacher"):
        with pytest.raises(RuntimeError, match="converter is likely missing"):
            get_model_alias(cls)


@pytest.mark.parametrize("name, cls", EXPORTABLE, ids=[name for name, _ in EXPORTABLE])
def test_every_student_and_distiller_exports_its_predictions(name, cls, digits):
    # digits: flat rows of a square image, which every student takes
    X, y = digits[0][:120], digits[1][:120]
    model = fast_instance(cls, hidden_layer_sizes=(8,), max_epochs=2, n_iter=60, burn_in=20,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "GPEDDistiller: .* only", UserWarning)
        model.fit(X, labels_for(model, y))
    assert_parity(model, X[:30])


# -- DataFrames of mixed dtypes ----------------------------------------------------------------
def mixed_frame(n, seed):
    """Floats with NaN, ints, bools, strings with NaN, string and integer categories."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 10, n),
        "age": rng.integers(18, 80, n),
        "owner": rng.random(n) > 0.5,
        "job": rng.choice(["clerk", "nurse", "pilot"], n).astype(object),
        "grade": pd.Categorical(rng.choice(["A", "B", "C"], n)),
        "rooms": pd.Categorical(rng.choice([1, 2, 3], n)),
    })
    frame.loc[::7, "income"] = np.nan
    frame.loc[3::9, "job"] = np.nan
    y = ((frame["income"].fillna(50) > 50) ^ (frame["job"] == "nurse")).astype(int).to_numpy()
    return frame, y


def frame_pipeline(max_epochs=15):
    numbers = make_pipeline(SimpleImputer(), StandardScaler())
    encode = ColumnTransformer([
        ("numbers", numbers, ["income", "age", "owner"]),
        ("categories", OneHotEncoder(handle_unknown="ignore"), ["job", "grade", "rooms"])])
    student = MLPStudent(hidden_layer_sizes=(16,), max_epochs=max_epochs, lr=1e-2,
                         random_state=0)
    return Pipeline([("encode", encode), ("student", student)])


@pytest.fixture(scope="module")
def frames():
    train, y = mixed_frame(150, 0)
    test, _ = mixed_frame(40, 1)
    test.loc[[2, 5], "job"] = ["astronaut", np.nan]  # unseen, and missing
    test.loc[[4, 6], "income"] = np.nan
    return train, y, test


@pytest.fixture(scope="module")
def fitted_frame_pipeline(frames):
    train, y, _ = frames
    return frame_pipeline().fit(train, y)


def assert_frame_parity(model, predictor, train, test):
    """One input per column of its dtype; onnxruntime's probabilities and labels equal
    ``predictor``'s on a frame with NaN, a missing and an unseen string."""
    onx = to_onnx(model, train, options={id(last_step(model)): {"zipmap": False}})
    STRING, FLOAT = 8, 1  # onnx.TensorProto's element types
    assert [(i.name, i.type.tensor_type.elem_type) for i in onx.graph.input] == [
        ("income", FLOAT), ("age", FLOAT), ("owner", FLOAT), ("job", STRING),
        ("grade", STRING), ("rooms", FLOAT)]
    sess = session(onx)
    label, proba = sess.run(None, onnx_inputs(test, sess))
    expected = predictor.predict_proba(test)
    assert proba.shape == (len(test), 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba, expected, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, predictor.predict(test))
    # the proto and a session give the same inputs; columns are taken by name
    shuffled = test[test.columns[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(sess.run(None, onnx_inputs(shuffled, onx))[1], expected,
                               rtol=0, atol=ATOL)
    return onx


def test_pipeline_on_a_mixed_frame(frames, fitted_frame_pipeline):
    train, _, test = frames
    assert_frame_parity(fitted_frame_pipeline, fitted_frame_pipeline, train, test)
    # in an outer Pipeline as well
    outer = Pipeline([("model", fitted_frame_pipeline)])
    assert_frame_parity(outer, fitted_frame_pipeline, train, test)


def test_onnx_inputs_types_and_missing_values(frames, fitted_frame_pipeline):
    train, _, test = frames
    feeds = onnx_inputs(test, to_onnx(fitted_frame_pipeline, train))
    assert {name: (a.dtype, a.shape) for name, a in feeds.items()} == {
        "income": (np.float32, (40, 1)), "age": (np.float32, (40, 1)),
        "owner": (np.float32, (40, 1)), "job": (object, (40, 1)),
        "grade": (object, (40, 1)), "rooms": (np.float32, (40, 1))}
    assert feeds["job"][[2, 5], 0].tolist() == ["astronaut", "nan"]
    assert np.isnan(feeds["income"][[4, 6], 0]).all()
    np.testing.assert_array_equal(feeds["owner"][:, 0], test["owner"].astype(np.float32))
    np.testing.assert_array_equal(feeds["rooms"][:, 0], test["rooms"].astype(np.float32))
    assert feeds["grade"][:, 0].tolist() == test["grade"].astype(str).tolist()
    # rows: the single input, cast to its type
    X = np.ones((3, 4))
    clf = MLPStudent(hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(X, [0, 1, 0])
    feeds = onnx_inputs(X, to_onnx(clf, X))
    assert list(feeds) == ["X"] and feeds["X"].dtype == np.float32


@pytest.mark.parametrize("distiller", ["kd", "crossfit"])
def test_distiller_with_a_pipeline_student_on_a_mixed_frame(frames, distiller):
    # fitted on the raw frame: a teacher with native categories, the student Pipeline encodes
    train, y, test = frames
    teacher = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=10,
                                             random_state=0)
    raw = train.astype({"job": "category"})  # HGB takes categories, not strings
    student = frame_pipeline(max_epochs=3)
    model = (KnowledgeDistiller(teacher, student, random_state=0) if distiller == "kd" else
             CrossFitDistiller(teacher, student, n_folds=2, random_state=0)).fit(raw, y)
    assert isinstance(model.student_, Pipeline)
    assert list(model.feature_names_in_) == list(train.columns)
    assert_frame_parity(model, model, raw, test)
    outer = Pipeline([("kd", model)])
    assert_frame_parity(outer, model, raw, test)


def test_student_on_a_frame_of_numbers(iris):
    X, y = iris
    frame = pd.DataFrame(X.astype(np.float64), columns=["a", "b", "c", "d"]).assign(
        d=lambda f: (f["d"] * 10).round().astype(int))
    clf = MLPStudent(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(frame, y)
    onx = to_onnx(clf, frame, options={"zipmap": False})
    assert [i.name for i in onx.graph.input] == ["a", "b", "c", "d"]
    label, proba = run_frame(onx, frame)
    np.testing.assert_allclose(proba, clf.predict_proba(frame), rtol=0, atol=ATOL)
    with pytest.raises(TypeError, match=r"MLPStudent: parameter X=<DataFrame with string "
                                        r"columns \['e'\]> is invalid"):
        to_onnx(clf, frame.assign(e="x"))


def run_frame(onx, frame):
    sess = session(onx)
    return sess.run(None, onnx_inputs(frame, sess))


def test_frames_onnx_cannot_take_are_named(frames, fitted_frame_pipeline):
    train, y, _ = frames
    when = train.assign(income=pd.Timestamp("2024-01-01"))
    with pytest.raises(TypeError, match=r"to_onnx: parameter X=<DataFrame with column "
                                        r"'income' of dtype datetime64.*> is invalid"):
        to_onnx(fitted_frame_pipeline, when)
    mixed = train.assign(job=[1, "a"] * 75)
    with pytest.raises(TypeError, match=r"to_onnx: parameter X=<DataFrame with column "
                                        r"'job' of dtype object> is invalid; expected "
                                        r"columns of numbers, bools, strings or categories"):
        to_onnx(fitted_frame_pipeline, mixed)
    with pytest.raises(TypeError, match=r"to_onnx: parameter X=<DataFrame with column 0> "):
        to_onnx(fitted_frame_pipeline, train.set_axis(range(6), axis=1))
    # skl2onnx's own refusal: a SimpleImputer of NaN strings has no converter
    strings = make_pipeline(SimpleImputer(strategy="most_frequent"),
                            OneHotEncoder(handle_unknown="ignore"))
    pipe = frame_pipeline(max_epochs=1).set_params(encode__categories=strings).fit(train, y)
    with pytest.raises(TypeError, match=r"to_onnx: parameter X=<DataFrame with columns "
                                        r"\['income'.*string columns \['job', 'grade'\]"):
        to_onnx(pipe, train)
    onx = to_onnx(fitted_frame_pipeline, train)
    with pytest.raises(ValueError, match=r"onnx_inputs: parameter X=.* expected a DataFrame "
                                         r"with the columns \['job'\]"):
        onnx_inputs(train.drop(columns="job"), onx)
    with pytest.raises(TypeError, match=r"onnx_inputs: parameter X=.* expected numbers in "
                                        r"column 'age'"):
        onnx_inputs(train.assign(age="old"), onx)


def test_columns_whose_names_are_not_identifiers_are_fed_by_name(frames):
    # skl2onnx renames the inputs ("hours-per-week" -> hours_per_week); onnx_inputs and the
    # recorded metadata map them back to the columns, for a proto and a session alike
    train, y, test = frames
    names = {"income": "capital-gain", "job": "job title", "grade": "1st grade"}
    train, test = train.rename(columns=names), test.rename(columns=names)
    encode = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()),
         ["capital-gain", "age", "owner"]),
        ("categories", OneHotEncoder(handle_unknown="ignore"),
         ["job title", "1st grade", "rooms"])])
    pipe = Pipeline([("encode", encode), ("student", MLPStudent(
        hidden_layer_sizes=(8,), max_epochs=2, random_state=0))]).fit(train, y)
    onx = to_onnx(pipe, train, options={id(pipe[-1]): {"zipmap": False}})
    assert "capital-gain" not in [i.name for i in onx.graph.input]
    for source in (onx, session(onx)):
        feeds = onnx_inputs(test, source)
        assert len(feeds) == 6
        label, proba = session(onx).run(None, feeds)
        np.testing.assert_allclose(proba, pipe.predict_proba(test), rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match=r"the columns \['capital-gain'\] that the model"):
        onnx_inputs(test.drop(columns="capital-gain"), onx)
