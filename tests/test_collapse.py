"""A student that learnt nothing says so; a diverged one names the parameter responsible.

After training, the engine warns (``TrainingFailureWarning``) when the network predicts nearly
the same for every training row while its targets vary, or when its training loss blew up,
naming the likely cause with its numbers. Divergence errors name the parameter that set the
failing term: a prior precision or group-lasso strength that swamps the data, ``fine_tune_lr``
during fine-tuning, ``lr`` otherwise. ``max_epochs=0`` and booleans given for numbers are
refused at the door.
"""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.dummy import DummyClassifier

from skdistill import (CNNStudent, KnowledgeDistiller, LaplaceTeacher, LatentBECNNStudent,
                       LatentBEStudent, MLPStudent, VITeacher)
from skdistill.engine import (Objective, TrainingFailureWarning, flat_predictions,
                              loss_blowup, spread)
from skdistill.losses import SoftTargetCrossEntropy


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


def _only_warning(record):
    [warning] = [w for w in record if w.category is TrainingFailureWarning]
    return str(warning.message)


@pytest.fixture
def no_failure_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingFailureWarning)
        yield


# -- the measure -----------------------------------------------------------------------------

def test_spread_is_zero_for_identical_rows_and_one_minus_one_over_c_for_balanced_labels():
    same = np.tile([0.2, 0.3, 0.5], (7, 1))  # a mean of 7 equal floats may round
    assert spread(same) == 0.0
    assert spread(np.eye(4)[np.arange(40) % 4]) == pytest.approx(0.75)
    # weights: a class without weight does not count
    labels = np.eye(2)[[0, 0, 1, 1]]
    assert spread(labels, weight=[1, 1, 0, 0]) == 0.0


def test_only_a_network_that_training_flattened_is_flat():
    labels = np.eye(2)[np.arange(100) % 2]  # spread 0.5
    assert flat_predictions(0.05, 1e-4, labels) == (1e-4, pytest.approx(0.5))
    assert flat_predictions(0.05, 0.01, labels) is None  # spread 2% of the targets'
    # a network that started flat and has not yet learnt was not flattened by training
    assert flat_predictions(2e-4, 1e-4 + 1e-6, labels) is None
    # near-uniform targets ask for nearly constant predictions
    near_uniform = np.full((100, 2), 0.5) + np.where(labels > 0, 0.01, -0.01)
    assert flat_predictions(0.05, 1e-6, near_uniform) is None


def test_loss_blowup_is_growth_by_orders_of_magnitude_or_a_huge_loss():
    def history(*losses):
        return [{"train_loss": loss} for loss in losses]

    assert loss_blowup(history(0.7, 0.5, 0.4)) is None
    assert loss_blowup(history(0.7, 5.0, 800.0)) == (
        "its training loss grew from 0.7 in the first epoch to 800 in epoch 3")
    assert loss_blowup(history(3e10, 1e10)) == "its training loss is 1e+10 after 2 epochs"


# -- students that learnt nothing --------------------------------------------------------------

def test_inputs_of_scale_1e3_with_lr_0_1_warn_with_the_numbers(digits):
    X, y = digits
    X = X * 1e3
    with pytest.warns(TrainingFailureWarning) as record:
        clf = MLPStudent((16,), lr=0.1, max_epochs=5, random_state=0).fit(X, y)
    message = _only_warning(record)
    assert message.startswith("MLPStudent: training learnt nothing usable: it predicts nearly "
                              "the same probabilities for every training row")
    assert "the learning rate lr=0.1 is probably too large" in message
    assert "max |X| = 1e+03" in message
    assert np.ptp(clf.predict_proba(X), axis=0).max() < 1e-6  # what the warning says


def test_group_lasso_that_wipes_out_the_signal_warns_naming_it(digits):
    X, y = digits
    with pytest.warns(TrainingFailureWarning) as record:
        MLPStudent((16,), lr=1e-2, max_epochs=20, group_lasso=10.0, fine_tune_epochs=0,
                   random_state=0).fit(X, y)
    message = _only_warning(record)
    assert "nearly the same probabilities for every training row" in message
    # the penalty swamped the data from the first batch: it is named first
    assert message.index("group_lasso=10 is probably too large") < message.index("lr=0.01")


def test_a_penalty_driving_the_loss_to_1e10_warns(digits):
    X, y = digits
    with pytest.warns(TrainingFailureWarning) as record:
        clf = MLPStudent((16,), lr=1e-2, max_epochs=5, group_lasso=1e9, fine_tune_epochs=0,
                         random_state=0).fit(X, y)
    assert 1e9 < clf.history_[-1, "train_loss"] < 1e11  # finite: no divergence error
    message = _only_warning(record)
    assert "its training loss is " in message and " after 5 epochs" in message
    assert "group_lasso=1e+09 is probably too large" in message


def test_a_loss_that_grows_during_fine_tuning_names_fine_tune_lr(digits):
    X, y = digits
    with pytest.warns(TrainingFailureWarning) as record:
        MLPStudent((16,), lr=1e-2, max_epochs=5, group_lasso=1e-2, fine_tune_epochs=2,
                   fine_tune_lr=1e12, random_state=0).fit(X, y)
    message = _only_warning(record)
    assert "its training loss grew from " in message
    assert "the learning rate fine_tune_lr=1e+12 is probably too large" in message


def test_a_laplace_prior_that_flattens_the_map_warns_naming_it(digits):
    X, y = digits
    with pytest.warns(TrainingFailureWarning) as record:
        LaplaceTeacher(MLPStudent((16,), max_epochs=30, lr=1e-2, random_state=0),
                       prior_precision=1e6, n_samples=2).fit(X, y)
    assert ("the prior precision of LaplaceTeacher (prior_precision=1e+06) is probably too "
            "large") in _only_warning(record)


# -- ... and students that did learn, or had nothing to learn -----------------------------------

def test_a_normal_fit_on_learnable_data_does_not_warn(digits, no_failure_warning):
    X, y = digits
    assert MLPStudent((16,), lr=1e-2, max_epochs=20, random_state=0).fit(X, y).score(X, y) > 0.9
    assert LatentBEStudent(n_members=2, hidden_layer_sizes=(16,), lr=1e-2, max_epochs=20,
                           random_state=0).fit(X, y).score(X, y) > 0.9


def test_a_network_that_starts_flat_and_has_not_learnt_yet_does_not_warn(digits,
                                                                          no_failure_warning):
    X, y = digits
    # one epoch of the default CNN: predictions still nearly uniform, as they started
    clf = CNNStudent(max_epochs=1, random_state=0).fit(X, y)
    assert spread(clf.predict_proba(X)) < 0.01


def test_near_uniform_targets_do_not_warn(digits, no_failure_warning):
    X, y = digits
    rng = np.random.default_rng(0)
    soft = np.full((len(y), 10), 0.1) + rng.uniform(-1e-3, 1e-3, (len(y), 10))
    soft /= soft.sum(1, keepdims=True)
    MLPStudent((16,), lr=1e-2, max_epochs=20, random_state=0).fit(X, y, soft_targets=soft)
    # the targets of a distiller are its teacher's: a teacher that knows only the prior
    KnowledgeDistiller(DummyClassifier(strategy="prior"),
                       MLPStudent((16,), lr=1e-2, max_epochs=20), random_state=0).fit(X, y)


def test_weights_on_one_class_only_do_not_warn(digits, no_failure_warning):
    X, y = digits
    weight = (y == 3).astype(float)
    clf = MLPStudent((16,), lr=1e-2, max_epochs=10, random_state=0).fit(X, y, sample_weight=weight)
    assert (clf.predict(X) == 3).all()


# -- divergence names the parameter responsible ------------------------------------------------

def test_laplace_prior_precision_that_overflows_is_named_not_lr(digits):
    X, y = digits
    with pytest.raises(ValueError, match="training diverged") as exc:
        LaplaceTeacher(MLPStudent((16,), max_epochs=2, lr=1e-2, random_state=0),
                       prior_precision=1e300).fit(X, y)
    message = str(exc.value)
    assert message.index("the prior precision of LaplaceTeacher (prior_precision=1e+300) is "
                         "probably too large") < message.index("lr=0.01")


def test_divergence_during_fine_tuning_names_fine_tune_lr(digits):
    X, y = digits
    with pytest.raises(ValueError, match="training diverged") as exc:
        MLPStudent((16,), lr=1e-2, max_epochs=10, group_lasso=1e-2, fine_tune_lr=1e12,
                   optimizer="sgd", random_state=0).fit(X, y)
    message = str(exc.value)
    assert "the learning rate fine_tune_lr=1e+12 is probably too large" in message
    assert "learning rate lr=" not in message


def test_an_exploding_group_lasso_penalty_is_named_first(digits):
    X, y = digits
    with pytest.raises(ValueError, match="training diverged") as exc:
        MLPStudent((16,), lr=1e-2, max_epochs=3, group_lasso=1e20, optimizer="sgd",
                   random_state=0).fit(X, y)
    message = str(exc.value)
    assert message.index("group_lasso=1e+20 is probably too large") < message.index("lr=0.01")


# -- refused at the door -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: MLPStudent(max_epochs=0),
    lambda: CNNStudent(max_epochs=0),
    lambda: LatentBEStudent(n_members=2, max_epochs=0),
    lambda: LatentBECNNStudent(n_members=2, max_epochs=0),
    lambda: VITeacher(max_epochs=0),
], ids=["MLPStudent", "CNNStudent", "LatentBEStudent", "LatentBECNNStudent", "VITeacher"])
def test_zero_epochs_are_refused(digits, make):
    X, y = digits
    estimator = make()
    with pytest.raises(ValueError, match=f"'max_epochs' parameter of {type(estimator).__name__}"
                                         " must be an int in the range \\[1, inf\\). Got 0"):
        estimator.fit(X, y)


def test_zero_fine_tune_epochs_still_mean_pruning_without_fine_tuning(digits):
    X, y = digits
    clf = MLPStudent((16,), lr=1e-2, max_epochs=3, group_lasso=1e-2, fine_tune_epochs=0,
                     random_state=0).fit(X, y)
    assert "n_pruned_units" in clf.history_[-1]  # pruned after the last epoch


def test_an_objective_asking_for_no_epoch_is_refused(digits):
    class NoEpochs(Objective):
        def n_epochs(self, dataset, batch_size, max_epochs):
            return 0

    X, y = digits
    with pytest.raises(ValueError, match=r"MLPStudent: parameter objective=.* is invalid; "
                                         r"expected an objective that trains for at least one "
                                         r"epoch \(its n_epochs gave 0\)"):
        MLPStudent(max_epochs=2).fit_objective(X, y, NoEpochs(
            SoftTargetCrossEntropy(reduction="none")))


@pytest.mark.parametrize("make, name", [
    (lambda: CNNStudent(width_multiplier=True), "width_multiplier"),
    (lambda: LatentBEStudent(n_members=True), "n_members"),
    (lambda: LatentBEStudent(prior_strength=True), "prior_strength"),
    (lambda: MLPStudent(hidden_layer_sizes=(True, 4)), "hidden_layer_sizes"),
])
def test_a_bool_is_not_a_number_for_any_student(digits, make, name):
    X, y = digits
    estimator = make()
    with pytest.raises(ValueError, match=f"{name}.*True"):
        estimator.fit(X, y)
