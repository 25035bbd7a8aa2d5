"""SGLDTeacher: posterior sampling, Monte Carlo expectations, chain control and input errors."""
import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from bayes_logistic import logistic_data, metropolis, proba_1
from posterior_checks import assert_uncertainty_decomposes
from skdistill import SGLDTeacher
from skdistill.nets import CNN
from skdistill.teachers.sgld import SAMPLE_BUDGET_BYTES


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return X.astype(np.float32), y


def small_teacher(**kwargs):
    params = dict(hidden_layer_sizes=(16,), step_size=1e-3, prior_precision=1.0, n_iter=600,
                  burn_in=200, thinning=50, random_state=0)
    return SGLDTeacher(**{**params, **kwargs})


@pytest.fixture(scope="module")
def logistic():
    """A 2-D Bayesian logistic regression, test points and their Metropolis predictive."""
    X, y, X_test = logistic_data()
    samples = metropolis(X, y, precision=1.0, n_steps=3000, keep_every=10)
    return X, y, X_test, proba_1(samples, X_test).mean(axis=0)


def test_bayesian_logistic_regression_predictive_matches_metropolis(logistic):
    X, y, X_test, reference = logistic
    teacher = SGLDTeacher(hidden_layer_sizes=(), prior_precision=1.0, step_size=4e-3,
                          batch_size=20, n_iter=12000, burn_in=1000, thinning=20,
                          max_samples=1000, random_state=0).fit(X, y)
    np.testing.assert_allclose(teacher.predict_proba(X_test)[:, 1], reference, atol=0.035)
    # A point estimate (the plug-in of the posterior mean) misses by more than that tolerance.
    plug_in = torch.nn.Linear(2, 2)
    torch.nn.utils.vector_to_parameters(teacher.samples_.mean(0), plug_in.parameters())
    with torch.no_grad():
        p_plug = torch.softmax(plug_in(torch.tensor(X_test, dtype=torch.float32)), 1)[:, 1]
    assert np.abs(p_plug.numpy() - reference).max() > 0.05


def test_capped_samples_keep_the_predictive_of_the_whole_chain(logistic):
    # A slowly mixing chain (11,500 states, autocorrelation ~30 iterations at the worst test
    # point): its latest 100 states are a few independent draws, 100 states spread over it
    # are nearly independent.
    X, y, X_test, reference = logistic
    params = dict(hidden_layer_sizes=(), prior_precision=1.0, step_size=0.02, batch_size=20,
                  n_iter=12000, burn_in=500, thinning=1, random_state=0)
    capped = SGLDTeacher(max_samples=100, **params).fit(X, y)
    uncapped = SGLDTeacher(**params).fit(X, y)
    assert len(uncapped.samples_) == 11500 and uncapped.sample_thinning_ == 1
    # 11,500 states halved 7 times fit 100: every 128th state, 89 of them
    assert capped.sample_thinning_ == 128 and len(capped.samples_) == 89
    assert torch.equal(capped.samples_, uncapped.samples_[127::128])

    assert np.abs(capped.predict_proba(X_test)[:, 1] - reference).max() < 0.05  # 0.019
    # Keeping the latest 100 states instead (a ring buffer) misses: 0.14.
    latest = uncapped.sample_proba(X_test)[-100:, :, 1].mean(0)
    assert np.abs(latest - reference).max() > 0.1


def test_samples_are_the_uncapped_chain_at_a_doubled_thinning(data):
    X, y = data
    full = small_teacher().fit(X, y)
    n_params = 16 * 5 + 16 + 16 * 2 + 2
    assert full.samples_.shape == (8, n_params)  # (600 - 200) / 50
    assert full.samples_.dtype == torch.float32
    assert full.sample_thinning_ == 50
    assert full.max_samples_ == SAMPLE_BUDGET_BYTES // (4 * n_params)  # max_samples=None
    last_state = torch.nn.utils.parameters_to_vector(full.module_.parameters())
    torch.testing.assert_close(full.samples_[-1], last_state)
    # 8 states on the grid of 50: a cap of 7 keeps every 100th (4), 3 every 200th (2),
    # 1 the 400th
    for cap, thinning in ((7, 100), (3, 200), (1, 400)):
        capped = small_teacher(max_samples=cap).fit(X, y)
        every = thinning // 50
        assert capped.sample_thinning_ == thinning and capped.max_samples_ == cap
        assert torch.equal(capped.samples_, full.samples_[every - 1::every])
        # stored compact: no unused buffer rows kept (or pickled) behind the samples
        assert capped.samples_.untyped_storage().nbytes() == 4 * capped.samples_.numel()


def test_continued_chain_keeps_its_samples_spread_over_the_whole_chain(data):
    X, y = data
    uncapped = small_teacher(warm_start=True).fit(X, y)
    uncapped.set_params(n_iter=600).fit(X, y)
    assert len(uncapped.samples_) == 20  # (1200 - 200) / 50
    # 6 samples: the first fit keeps every 100th state (4), the second every 200th (5)
    capped = small_teacher(warm_start=True, max_samples=6).fit(X, y)
    assert capped.sample_thinning_ == 100
    capped.set_params(n_iter=600).fit(X, y)
    assert capped.n_iter_ == 1200 and capped.sample_thinning_ == 200
    assert torch.equal(capped.samples_, uncapped.samples_[3::4])
    # a lower cap on the continued chain thins the old samples the same way
    lowered = small_teacher(warm_start=True, max_samples=6).fit(X, y)
    lowered.set_params(n_iter=600, max_samples=2).fit(X, y)
    assert lowered.sample_thinning_ == 400
    assert torch.equal(lowered.samples_, uncapped.samples_[7::8])
    with pytest.raises(ValueError, match=r"warm_start=True continues .*thinning=25.*"
                                         r"expected burn_in=200, thinning=50"):
        lowered.set_params(thinning=25).fit(X, y)


def test_expectations_are_monte_carlo_averages_over_samples(data):
    X, y = data
    teacher = small_teacher().fit(X, y)
    S = teacher.sample_proba(X[:7])
    assert S.shape == (8, 7, 2)
    np.testing.assert_allclose(teacher.predict_proba(X[:7]), S.mean(0), rtol=1e-12)
    entropy = -(S * np.log(S)).sum(-1).mean(0)
    np.testing.assert_allclose(teacher.predict_expectation(X[:7], "entropy"), entropy, rtol=1e-6)
    np.testing.assert_allclose(teacher.predict_expectation(X[:7], "variance"),
                               (S * (1 - S)).mean(0), rtol=1e-9)
    top = teacher.predict_expectation(X[:7], lambda p: p.max(dim=1).values)
    np.testing.assert_allclose(top, S.max(-1).mean(0), rtol=1e-9)
    # the chain state is restored after evaluating the samples
    torch.testing.assert_close(teacher.samples_[-1], torch.nn.utils.parameters_to_vector(
        teacher.module_.parameters()))


def test_uncertainty_is_the_entropy_of_the_predictive_split_over_the_samples(data):
    X, y = data
    teacher = small_teacher().fit(X, y)
    u = assert_uncertainty_decomposes(teacher, X[:7])
    assert (u.epistemic > 0).all()  # the kept samples disagree: mutual information > 0


def test_teacher_beats_the_majority_class_and_pickles(data):
    X, y = data
    teacher = small_teacher().fit(X, y)
    assert teacher.score(X, y) > 0.85
    clone = pickle.loads(pickle.dumps(teacher))
    np.testing.assert_allclose(clone.predict_proba(X), teacher.predict_proba(X))


def test_iter_samples_yields_thinned_states_without_storing(data):
    X, y = data
    teacher = small_teacher()
    seen, proba = [], []
    for sample in teacher.iter_samples(X, y):  # callables: a batch -> class probabilities
        seen.append(torch.nn.utils.parameters_to_vector(sample.module.parameters()).clone())
        proba.append(sample(torch.as_tensor(X[:5], dtype=torch.float32)).numpy())
    assert len(seen) == 8 and len(teacher.samples_) == 0
    fitted = small_teacher().fit(X, y)
    torch.testing.assert_close(torch.stack(seen), fitted.samples_)
    np.testing.assert_allclose(np.stack(proba), fitted.sample_proba(X[:5]), atol=1e-6)


def test_warm_start_continues_the_chain(data):
    X, y = data
    teacher = small_teacher(warm_start=True).fit(X, y)
    state = torch.nn.utils.parameters_to_vector(teacher.module_.parameters()).clone()
    first = teacher.samples_.clone()
    teacher.set_params(n_iter=300).fit(X, y)
    assert teacher.n_iter_ == 900 and len(teacher.samples_) == 14
    torch.testing.assert_close(teacher.samples_[:8], first)
    # the continued chain moved on from the last state (one step away, not a restart)
    assert torch.dist(teacher.samples_[8], state) < torch.dist(teacher.samples_[8], first[0]) * 5
    cold = small_teacher().fit(X, y)
    assert cold.n_iter_ == 600


def test_ctrl_c_stops_cleanly_and_keeps_the_samples(data):
    X, y = data

    def schedule(t):
        if t == 420:
            raise KeyboardInterrupt
        return 1e-3

    teacher = small_teacher(step_size=schedule)
    with pytest.warns(RuntimeWarning, match="interrupted at iteration 420"):
        teacher.fit(X, y)
    assert teacher.n_iter_ == 420 and len(teacher.samples_) == 4
    assert teacher.predict_proba(X[:2]).shape == (2, 2)
    capped = small_teacher(step_size=schedule, max_samples=3)
    with pytest.warns(RuntimeWarning, match="interrupted at iteration 420"):
        capped.fit(X, y)
    assert capped.sample_thinning_ == 100
    assert torch.equal(capped.samples_, teacher.samples_[1::2])


def test_diverging_chain_names_the_iteration_and_suggests_a_smaller_step(data):
    X, y = data
    with pytest.raises(ValueError, match=r"diverged at iteration \d+.*smaller step_size=0.00125 "):
        small_teacher(step_size=50.0).fit(X * 100, y)  # 0.25 / N, N = 200
    # a step already below 0.25 / N that still diverges: the data's scale is the culprit
    with pytest.raises(ValueError, match=r"diverged .*scale X.*smaller step_size=0.0001\."):
        small_teacher(step_size=1e-3).fit(X * 1e4, y)


def suggested_step(message):
    return float(re.search(r"try a smaller step_size=([0-9.e+-]+) ", message).group(1))


def test_chain_far_above_chance_stops_early_with_a_step_that_works():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]
    # No NaN here: the chain wanders at huge parameters with chance accuracy.
    seen = {}

    def step(t):  # a constant 0.1 that looks at the chain's parameters as it goes
        seen["t"] = t
        seen["theta"] = torch.nn.utils.parameters_to_vector(teacher.module_.parameters())
        return 0.1

    teacher = SGLDTeacher(hidden_layer_sizes=(32,), step_size=step, random_state=0)
    with pytest.raises(ValueError, match=r"diverged at iteration 199 \(mean minibatch "
                                         r"negative log-likelihood .* 10 x chance log\(10\)"
                       ) as far:
        teacher.fit(X_train, y_train)
    assert seen["t"] == 199  # judged at its second window of 100, not after 20,000
    assert torch.isfinite(seen["theta"]).all() and seen["theta"].abs().max() > 100  # prior sd .32
    with pytest.raises(NotFittedError):  # no diverged sample is kept to predict from
        teacher.predict_proba(X_test)
    hint = suggested_step(str(far.value))
    assert hint == pytest.approx(0.25 / 1400, rel=0.01)
    # The default network goes to NaN within a few steps instead: the same hint.
    with pytest.raises(ValueError, match=r"diverged at iteration \d \(.* is nan\)") as nan:
        SGLDTeacher(step_size=0.1, random_state=0).fit(X_train, y_train)
    assert suggested_step(str(nan.value)) == hint
    # The suggested step (1.8e-4; verified also at 0.25 / N on all 1,797 digits and on
    # make_classification) samples a useful posterior with the default network.
    teacher = SGLDTeacher(step_size=hint, n_iter=600, burn_in=300, thinning=50,
                          random_state=0).fit(X_train, y_train)
    assert teacher.score(X_test, y_test) > 0.8  # chance is 0.1


def test_cnn_module_on_images():
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(np.float32)
    y = y[:300]
    teacher = SGLDTeacher(module=CNN.from_architecture("mnist", (1, 8, 8), 10),
                          step_size=5e-4, prior_precision=1.0, n_iter=400, burn_in=200,
                          thinning=50, batch_size=50, random_state=0).fit(X, y)
    assert teacher.sample_proba(X[:5]).shape == (4, 5, 10)
    assert teacher.score(X, y) > 0.3  # chance is 0.1


def test_bad_module_and_parameters_get_clear_errors(data):
    X, y = data
    with pytest.raises(ValueError, match=r"SGLDTeacher: parameter module=.*logits of shape"):
        small_teacher(module=torch.nn.Linear(5, 3)).fit(X, y)
    with pytest.raises(TypeError, match=r"SGLDTeacher: parameter module=.*accepting X rows"):
        small_teacher(module=torch.nn.Linear(4, 2)).fit(X, y)
    with pytest.raises(InvalidParameterError, match="step_size"):
        small_teacher(step_size=-1.0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="thinning"):
        small_teacher(thinning=0).fit(X, y)
    with pytest.raises(ValueError, match=r"parameter step_size=.*iteration 0 gave 0"):
        small_teacher(step_size=lambda t: 0.0).fit(X, y)
    teacher = small_teacher().fit(X, y)
    with pytest.raises(ValueError, match="SGLDTeacher: parameter target='mode'"):
        teacher.predict_expectation(X, "mode")
    with pytest.raises(ValueError, match="kept no posterior sample"):
        small_teacher(n_iter=100).fit(X, y).predict_proba(X)
    with pytest.raises(ValueError, match="warm_start=True needs the classes"):
        small_teacher(warm_start=True).fit(X, y).fit(X, y + 1)


def test_default_step_is_a_quarter_over_the_number_of_training_rows(data):
    # the paper's 4e-6 suits 60,000 rows; on 200 it would barely move the chain
    X, y = data
    assert SGLDTeacher().step_size == "auto"
    for n in (200, 50):
        teacher = small_teacher(step_size="auto", n_iter=300).fit(X[:n], y[:n])
        assert teacher.step_size_ == teacher.step_sizes_[-1] == 0.25 / n
    assert small_teacher(n_iter=300).fit(X, y).step_size_ == 1e-3
    with pytest.raises(InvalidParameterError, match=r"step_size.*'auto'"):
        small_teacher(step_size="fast").fit(X, y)


def test_verbose_shows_a_progress_bar(data, capsys):
    X, y = data
    small_teacher(verbose=1).fit(X, y)
    assert "SGLDTeacher" in capsys.readouterr().err


def test_short_chain_that_diverges_is_judged_at_its_end():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    teacher = SGLDTeacher(hidden_layer_sizes=(32,), step_size=0.1, n_iter=150, burn_in=10,
                          thinning=10, random_state=0)
    with pytest.raises(ValueError, match=r"diverged at iteration 149 \(mean minibatch negative "
                                         r"log-likelihood .* over the last 50 iterations"):
        teacher.fit(X, y)
    with pytest.raises(NotFittedError):
        teacher.predict_proba(X)


def test_zero_weight_rows_do_not_count_in_the_divergence_check():
    """Rows of weight 0 take no part in the chain's NLL monitor: a chain that rightly gives the
    kept class probability ~1 is not reported as diverged because the dropped class's rows
    (same inputs region, no influence) have a huge NLL. Before the fix this raised at
    iteration 199 (seen as a flaky check_classifiers_one_label_sample_weights under GPED)."""
    rnd = np.random.RandomState(0)
    X, y = rnd.uniform(size=(10, 10)), np.arange(10) % 2
    teacher = small_teacher(step_size=2e-2, prior_precision=1e-3, n_iter=1000, burn_in=100)
    teacher.fit(X, y, sample_weight=y.astype(float))
    np.testing.assert_array_equal(teacher.predict(X), np.ones(10))
    # an all-ones weight is still judged as before: a truly diverging chain raises
    with pytest.raises(ValueError, match="SGLDTeacher: the chain diverged"):
        small_teacher(step_size=50.0, n_iter=300, burn_in=100).fit(
            X, y, sample_weight=np.ones(10))
