"""torch's global state (grad and inference mode, random generator, threads, default dtype)
is the caller's again after every public call, however it ends: an error in a user's
callable, Ctrl-C, or a generator left half way while something still holds it (a notebook
keeps the last exception, and with it every frame of its traceback)."""
import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from sklearn.datasets import make_classification

from skdistill import (DeepEnsembleTeacher, GPEDDistiller, LaplaceTeacher, MLPStudent,
                       SGLDTeacher, VITeacher)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    return X.astype(np.float32), y


def student(**kwargs):
    return MLPStudent(**{**dict(hidden_layer_sizes=(4,), max_epochs=2, random_state=0),
                         **kwargs})


def sgld(**kwargs):
    return SGLDTeacher(**{**dict(hidden_layer_sizes=(4,), step_size=1e-3, n_iter=300,
                                 burn_in=100, thinning=50, random_state=0), **kwargs})


def gped(**kwargs):
    return GPEDDistiller(**{**dict(teacher=sgld(), student=MLPStudent(hidden_layer_sizes=(4,)),
                                   n_iter=300, burn_in=100, thinning=20, random_state=0),
                            **kwargs})


TEACHERS = {
    "sgld": sgld,
    "laplace": lambda: LaplaceTeacher(student(), n_samples=4, random_state=0),
    "vi": lambda: VITeacher(hidden_layer_sizes=(4,), max_epochs=2, n_samples=4,
                            random_state=0),
}


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {name: make().fit(X, y) for name, make in TEACHERS.items()}


def snapshot():
    return dict(grad=torch.is_grad_enabled(), inference=torch.is_inference_mode_enabled(),
                rng=torch.get_rng_state(), threads=torch.get_num_threads(),
                dtype=torch.get_default_dtype())


def assert_state_is(before, X, y):
    after = snapshot()
    assert after.pop("rng").equal(before.pop("rng")), "torch's random generator moved"
    assert after == before
    student().fit(X, y)  # needs grad mode: "element 0 of tensors does not require grad"


class Raise(Callback):
    def __init__(self, exc=RuntimeError):
        self.exc = exc

    def on_epoch_end(self, net, **kwargs):
        raise self.exc("raised by a callback")


def raising_target(proba):
    raise RuntimeError("raised by a target")


def string_target(proba):
    return "not a number"


@pytest.mark.parametrize("target", [raising_target, string_target])
@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_predict_expectation_with_a_failing_target_keeps_global_state(fitted, data, name,
                                                                      target):
    X, y = data
    before = snapshot()
    with pytest.raises((RuntimeError, TypeError, ValueError)) as kept:
        fitted[name].predict_expectation(X, target=target)
    assert_state_is(before, X, y)
    assert kept.value is not None  # the traceback, with every frame, outlives the checks


def after_calls(n, exc=RuntimeError):
    """A step-size schedule that raises ``exc`` at iteration ``n``."""
    def step(t):
        if t >= n:
            raise exc("raised by a schedule")
        return 1e-3
    return step


def target_failing_on_batches(proba):
    if len(proba) > 1:  # GPED probes a target on one row before the chain
        raise RuntimeError("raised by a target")
    return proba[:, :1]


FAILING_FITS = {
    "student callback": lambda: student(callbacks=[Raise()]),
    "sgld schedule": lambda: sgld(step_size=after_calls(150)),
    "laplace estimator": lambda: LaplaceTeacher(student(callbacks=[Raise()])),
    "ensemble member": lambda: DeepEnsembleTeacher(student(callbacks=[Raise()]), n_members=2),
    "gped student callback": lambda: gped(student=MLPStudent(callbacks=[Raise()])),
    "gped target": lambda: gped(target=["predictive", target_failing_on_batches]),
    "gped chain": lambda: gped(teacher=sgld(step_size=after_calls(150))),
}


@pytest.mark.parametrize("name", sorted(FAILING_FITS))
def test_fit_that_fails_in_a_user_callable_keeps_global_state(data, name):
    X, y = data
    before = snapshot()
    with pytest.raises(RuntimeError) as kept:
        FAILING_FITS[name]().fit(X, y)
    assert_state_is(before, X, y)
    assert kept.value is not None


@pytest.mark.parametrize("make", [lambda: sgld(step_size=after_calls(250, KeyboardInterrupt)),
                                  lambda: gped(teacher=sgld(step_size=after_calls(
                                      250, KeyboardInterrupt)))], ids=["sgld", "gped"])
def test_ctrl_c_keeps_global_state(data, make):
    X, y = data
    before = snapshot()
    kept = None
    try:
        make().fit(X, y)  # keeps what the chain drew, or re-raises when nothing is usable
    except KeyboardInterrupt as exc:
        kept = exc
    assert_state_is(before, X, y)
    del kept


def test_a_successful_gped_fit_gives_back_the_callers_random_generator(data):
    # the chain's seeded generator was left in place when the student's fit ended first
    X, y = data
    before = snapshot()
    gped().fit(X, y)
    assert_state_is(before, X, y)


@pytest.mark.parametrize("name", ["sgld", "laplace", "vi", "ensemble"])
def test_sample_stream_left_half_way_keeps_global_state(fitted, data, name):
    X, y = data
    teacher = (DeepEnsembleTeacher(student(), n_members=2, random_state=0) if name == "ensemble"
               else sgld() if name == "sgld" else fitted[name])
    before = snapshot()
    stream = teacher.iter_samples(X, y)
    next(stream)(torch.as_tensor(X))
    assert_state_is(before, X, y)
    assert stream.gi_frame is not None  # still suspended, not collected


def test_chain_draws_the_same_whatever_its_consumer_draws(data):
    X, y = data
    reference = sgld().fit(X, y).samples_
    teacher = sgld()
    for _ in teacher.iter_samples(X, y, keep=True):
        torch.rand(100)  # the consumer's draws, e.g. a student's dropout
    assert torch.equal(teacher.samples_, reference)


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_prediction_blocks_left_half_way_keep_global_state(fitted, data, name):
    # the blocks every prediction (predict_proba, predict_expectation, ...) is computed from
    X, y = data
    before = snapshot()
    blocks = fitted[name]._sample_blocks(X)
    next(iter(next(blocks)))
    assert_state_is(before, X, y)
    assert blocks.gi_frame is not None
