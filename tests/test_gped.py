"""GPEDDistiller: online distillation of posterior expectations, its heads, estimators and errors."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.utils._param_validation import InvalidParameterError

from skdistill import CNNStudent, GPEDDistiller, LatentBEStudent, MLPStudent, SGLDTeacher
from skdistill.metrics import entropy_mae, negative_log_likelihood

# Most tests run short chains on purpose; the budget warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, class_sep=1.0, flip_y=0.05,
                               random_state=0)
    return X[:300].astype(np.float32), y[:300], X[300:].astype(np.float32), y[300:]


def gped(**kwargs):
    params = dict(teacher=SGLDTeacher(hidden_layer_sizes=(32,), step_size=5e-4,
                                      prior_precision=1.0, thinning=25,
                                      max_samples=200),
                  student=MLPStudent(hidden_layer_sizes=(32,), lr=1e-2),
                  target=["predictive", "entropy"], n_iter=3000, burn_in=500, thinning=2,
                  distill_batch_size=50, random_state=0)
    return GPEDDistiller(**{**params, **kwargs})


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return gped().fit(X, y)


def test_student_matches_the_teacher_predictive_and_entropy(data, fitted):
    _, _, X_test, y_test = data
    teacher_nll = negative_log_likelihood(y_test, fitted.teacher_.predict_proba(X_test))
    student_nll = negative_log_likelihood(y_test, fitted.predict_proba(X_test))
    assert student_nll - teacher_nll < 0.1
    h_teacher = fitted.teacher_.predict_expectation(X_test, "entropy")
    h_student = fitted.predict_expectation(X_test, "entropy")
    mae = entropy_mae(h_teacher, h_student)
    # a trivial student predicting the teacher's mean entropy everywhere does much worse
    assert mae < 0.5 * entropy_mae(h_teacher, np.full_like(h_teacher, h_teacher.mean()))
    assert mae < 0.1


def test_uncertainty_decomposition_from_one_forward_pass(data, fitted):
    _, _, X_test, _ = data
    calls = []
    hook = fitted.module_.trunk.register_forward_hook(lambda *a: calls.append(1))
    try:
        u = fitted.predict_uncertainty(X_test)
    finally:
        hook.remove()
    assert len(calls) == 1
    p = fitted.predict_proba(X_test)
    np.testing.assert_allclose(u.total, -(p * np.log(p)).sum(1), rtol=1e-6)


def test_uncertainty_parts_are_non_negative_and_add_up_exactly(data, fitted):
    _, _, X_test, _ = data
    u = fitted.predict_uncertainty(X_test)
    head = fitted.predict_expectation(X_test, "entropy")
    over, under = head > u.total + 1e-9, head < u.total - 1e-9
    # the entropy head overshoots the predictive entropy on some rows: not a vacuous test
    assert over.sum() >= 5 and under.sum() >= 5
    np.testing.assert_array_equal(u.total, u.aleatoric + u.epistemic)
    assert (u.aleatoric >= 0).all() and (u.epistemic >= 0).all()
    np.testing.assert_array_equal(u.aleatoric[under], head[under])
    np.testing.assert_array_equal(u.aleatoric[over], u.total[over])
    assert (u.epistemic[over] == 0).all() and (u.epistemic[under] > 0).all()


def test_student_is_a_fitted_estimator_for_the_predictive_head(data, fitted):
    X, _, X_test, _ = data
    np.testing.assert_allclose(fitted.student_.predict_proba(X_test), fitted.predict_proba(X_test))
    np.testing.assert_array_equal(fitted.student_.classes_, fitted.classes_)
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(clone.predict_uncertainty(X_test).total,
                               fitted.predict_uncertainty(X_test).total)
    assert fitted.n_student_steps_ == (3000 - 500) // 2 == len(fitted.loss_curve_)
    assert len(fitted.teacher_.samples_) == 100  # every 25th state after burn-in


def test_online_estimator_memory_and_unlabeled_distillation_set(data):
    X, y, X_test, _ = data
    online = gped(n_iter=700, target="predictive").fit(X, y, X_unlabeled=X_test)
    assert online.estimator_nbytes_ == 4 * len(X_test) * (3 + 1)
    stochastic = gped(n_iter=700, target="predictive", estimator="stochastic").fit(X, y)
    assert stochastic.estimator_nbytes_ == 0
    noisy = gped(n_iter=700, target="predictive", estimator="stochastic", input_noise=0.5)
    assert not np.allclose(noisy.fit(X, y).predict_proba(X), stochastic.predict_proba(X))


def test_online_mean_is_closer_to_the_posterior_expectation_than_one_sample(data):
    X, y, X_test, _ = data
    fits = {est: gped(estimator=est, target="entropy").fit(X, y, X_unlabeled=X_test)
            for est in ("online", "stochastic")}
    maes = {est: entropy_mae(m.teacher_.predict_expectation(X_test, "entropy"),
                             m.predict_expectation(X_test, "entropy"))
            for est, m in fits.items()}
    assert maes["online"] <= maes["stochastic"] * 1.1


def test_variance_and_callable_targets_get_their_own_heads(data):
    X, y, X_test, _ = data

    def top_probability(p):
        return p.max(dim=1).values

    model = gped(n_iter=800, target=["variance", top_probability]).fit(X, y)
    assert model.targets_ == ["predictive", "variance", "top_probability"]
    var = model.predict_expectation(X_test, "variance")
    assert var.shape == (100, 3) and (var >= 0).all() and (var <= 0.25).all()
    top = model.predict_expectation(X_test, top_probability)
    assert top.shape == (100,)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter target='entropy'"):
        model.predict_expectation(X_test, "entropy")
    with pytest.raises(ValueError, match=r"GPEDDistiller: parameter target=.* expected "
                                         r"target=\['variance', top_probability, 'entropy'\] "
                                         r"and a new fit"):
        model.predict_uncertainty(X_test)


def test_uncertainty_of_a_default_target_says_what_to_set(data):
    X, y, X_test, _ = data
    model = gped(n_iter=300, burn_in=100, target="predictive").fit(X, y)
    assert GPEDDistiller().target == "predictive"
    with pytest.raises(ValueError, match=r"expected target=\['predictive', 'entropy'\] and a "
                                         r"new fit for predict_uncertainty"):
        model.predict_uncertainty(X_test)


def test_default_teacher_step_is_a_quarter_over_its_training_rows(data):
    # the teacher's rows (X), not the distillation set's
    X, y, X_test, _ = data
    model = gped(teacher=SGLDTeacher(hidden_layer_sizes=(32,), prior_precision=1.0),
                 n_iter=300, burn_in=100).fit(X, y, X_unlabeled=X_test)
    assert model.teacher_.step_size_ == 0.25 / len(X)


def test_verbose_shows_one_progress_display(data, capsys):
    # the chain's bar alone: the student's epoch table interleaved with it line by line
    X, y, _, _ = data
    model = gped(n_iter=1500, burn_in=100, verbose=1).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") <= 1 and "SGLDTeacher" in err
    assert len(model.history_) > 1  # the student's epochs are recorded all the same


def test_callable_heads_get_unique_names_and_stay_reachable(data):
    X, y, X_test, _ = data
    first, second = (lambda p: p[:, 0]), (lambda p: 1 - p[:, 1:])
    model = gped(n_iter=300, burn_in=100, target=[first, second, first]).fit(X, y)
    assert model.targets_ == ["predictive", "<lambda>", "<lambda>_1"]
    a, b = model.predict_expectation(X_test, first), model.predict_expectation(X_test, second)
    assert a.shape == (100,) and b.shape == (100, 2)
    np.testing.assert_allclose(model.predict_expectation(X_test, "<lambda>_1"), b)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter target=.*distilled targets"):
        model.predict_expectation(X_test, lambda p: p[:, 0])  # never given to fit


def test_callable_named_like_a_builtin_does_not_replace_its_head(data):
    X, y, X_test, _ = data

    def entropy(p):
        return p[:, :2]

    for target, names in ((["entropy", entropy], ["predictive", "entropy", "entropy_1"]),
                          ([entropy, "entropy"], ["predictive", "entropy_1", "entropy"])):
        model = gped(n_iter=300, burn_in=100, target=target).fit(X, y)
        assert model.targets_ == names
        builtin = model.predict_expectation(X_test, "entropy")
        assert builtin.shape == (100,) and (builtin > 0).all()  # the softplus entropy head
        assert model.predict_expectation(X_test, entropy).shape == (100, 2)
        assert model.predict_uncertainty(X_test).aleatoric.shape == (100,)


def test_student_without_trunk_and_head_is_rejected(data):
    X, y, _, _ = data
    with pytest.raises(TypeError, match="GPEDDistiller: parameter student=.*trunk and a head"):
        gped(student=LatentBEStudent(), n_iter=10).fit(X, y)


def test_cnn_student_on_images():
    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    model = GPEDDistiller(
        SGLDTeacher(hidden_layer_sizes=(32,), step_size=1e-3, prior_precision=1.0),
        CNNStudent(lr=1e-2), n_iter=600, burn_in=100, thinning=1, distill_batch_size=50,
        random_state=0).fit(X, y)
    assert model.student_.input_shape_ == (1, 8, 8)
    assert model.score(X, y) > 0.3  # chance is 0.1


def test_ctrl_c_keeps_the_student_trained_so_far(data):
    X, y, _, _ = data
    calls = []

    def interrupting(p):
        calls.append(1)
        if len(calls) == 30:
            raise KeyboardInterrupt
        return p[:, :1]

    with pytest.warns(RuntimeWarning, match=r"GPEDDistiller: fit interrupted; keeping the student "
                                            r"after \d+ steps"):
        model = gped(n_iter=700, target=interrupting).fit(X, y)
    assert 0 < model.n_student_steps_ == len(model.loss_curve_) < 30
    assert model.predict_proba(X[:2]).shape == (2, 3)


def test_bad_input_gets_clear_errors(data):
    X, y, _, _ = data
    with pytest.raises(InvalidParameterError, match="'target' parameter of GPEDDistiller"):
        gped(target="mode").fit(X, y)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter target='mode'"):
        gped(target=["entropy", "mode"]).fit(X, y)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter target=\\[\\]"):
        gped(target=[]).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'estimator' parameter"):
        gped(estimator="mean").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'teacher' parameter"):
        gped(teacher=MLPStudent()).fit(X, y)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter X_unlabeled is invalid"):
        gped(n_iter=10).fit(X, y, X_unlabeled=X[:, :3])
    with pytest.raises(TypeError, match="GPEDDistiller: parameter target=.*callable mapping"):
        gped(target=lambda p: p.foo()).fit(X, y)


def test_budget_without_a_student_step_is_refused_before_the_chain_runs(data):
    X, y, _, _ = data
    iterations = []
    teacher = SGLDTeacher(hidden_layer_sizes=(8,), n_iter=400, burn_in=500,
                          step_size=lambda t: iterations.append(t) or 1e-3)
    student = MLPStudent(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match=r"GPEDDistiller: parameter n_iter=400 is invalid; "
                                         r"expected at least burn_in \+ thinning = 501 .*"
                                         r"n_iter=400 \(the teacher's\), burn_in=500 \(the "
                                         r"teacher's\), thinning=1 \(thinning=None\)"):
        GPEDDistiller(teacher, student).fit(X, y)
    with pytest.raises(ValueError, match=r"parameter n_iter=520 .* burn_in \+ thinning = 525 .*"
                                         r"give \(n_iter - burn_in\) // thinning = 0"):
        GPEDDistiller(teacher, student, n_iter=520, thinning=25).fit(X, y)
    assert iterations == []  # the chain never started


def test_short_student_budget_warns_with_the_number_of_steps(data):
    X, y, _, _ = data
    with pytest.warns(UserWarning, match=r"n_iter=700, burn_in=500, thinning=2 give the "
                                         r"student only 100 steps"):
        model = gped(n_iter=700, target="predictive").fit(X, y)
    assert model.n_student_steps_ == 100


def test_default_budget_gives_the_student_thousands_of_steps(data):
    X, y, _, _ = data

    class Stop(Exception):
        pass

    seen = {}

    def stop(t):
        seen["thinning"] = model.thinning_
        raise Stop

    # the teacher's default chain (20,000 iterations, 1,000 of burn-in), stopped at its first
    # step: the budget is settled before
    model = GPEDDistiller(SGLDTeacher(step_size=stop))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(Stop):
        warnings.simplefilter("always")
        model.fit(X, y)
    assert not [w for w in caught if "student only" in str(w.message)]
    assert seen["thinning"] == 9 and (20000 - 1000) // seen["thinning"] == 2111
