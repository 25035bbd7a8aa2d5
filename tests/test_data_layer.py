"""The one data layer: the minibatch sampler, the device policy and the loss reads.

The engine, the SGLD chain and GPED's stream draw their minibatches from one sampler
(``skdistill.engine.Minibatches``) and place their data by one policy
(``RowDataset.placed``). Losses are read every step on the CPU and every ``k`` steps on an
accelerator (``skdistill.engine.divergence.CHECK_EVERY``); the tests below set ``k`` for the
CPU to run that path here.
"""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification
from skorch.callbacks import Callback

from skdistill import GPEDDistiller, MLPStudent, SGLDTeacher
from skdistill.engine import BatchIterator, Minibatches, Objective, RowDataset, data, divergence

pytestmark = pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")


@pytest.fixture(scope="module")
def Xy():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return X.astype(np.float32), y


def student(**kwargs):
    params = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=20, lr=1e-2,
                  random_state=0)
    return MLPStudent(**{**params, **kwargs})


def teacher(**kwargs):
    params = dict(hidden_layer_sizes=(16,), step_size=1e-3, prior_precision=1.0, n_iter=400,
                  burn_in=100, thinning=50, random_state=0)
    return SGLDTeacher(**{**params, **kwargs})


def read_every_k_on_the_cpu(monkeypatch, k):
    monkeypatch.setitem(divergence.CHECK_EVERY, "cpu", k)


# -- the sampler ----------------------------------------------------------------------------------

def draws(seed, n=10, size=3, count=8):
    stream = Minibatches(n, size, drop_last=True,
                         generator=torch.Generator().manual_seed(seed)).stream()
    return [next(stream).tolist() for _ in range(count)]


def test_the_sampler_draws_the_same_minibatches_under_the_same_seed():
    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    # without a generator: torch's global one, which the owner seeds
    with torch.random.fork_rng():
        torch.manual_seed(3)
        first = [b.tolist() for b in Minibatches(10, 4)]
        torch.manual_seed(3)
        assert [b.tolist() for b in Minibatches(10, 4)] == first


@pytest.mark.parametrize("n, size", [(10, 3), (9, 3), (5, 5), (7, 1)])
def test_a_pass_covers_every_row_once(n, size):
    gen = torch.Generator().manual_seed(0)
    batches = list(Minibatches(n, size, generator=gen))
    assert sorted(torch.cat(batches).tolist()) == list(range(n))
    assert [len(b) for b in batches[:-1]] == [size] * (len(batches) - 1)
    assert len(batches) == len(Minibatches(n, size))
    # every minibatch full: each pass takes n // size of them, no row twice, n % size left out
    sampler = Minibatches(n, size, drop_last=True, generator=gen)
    stream = sampler.stream()
    for _ in range(3):
        rows = torch.cat([next(stream) for _ in range(len(sampler))]).tolist()
        assert len(rows) == len(set(rows)) == n - n % size
    # in order, and over a subset's rows
    ordered = [rows for rows in Minibatches(n, size, shuffle=False)]
    assert [list(range(n))[s] for s in ordered] == [list(range(n))[i:i + size]
                                                   for i in range(0, n, size)]
    subset = torch.arange(n) * 7
    picked = torch.cat(list(Minibatches(n, size, generator=gen, indices=subset))).tolist()
    assert sorted(picked) == subset.tolist()


def test_the_sampler_refuses_full_minibatches_larger_than_the_data():
    with pytest.raises(ValueError, match="batch_size=4 is more than the 3 rows"):
        Minibatches(3, 4, drop_last=True)


# -- the device policy ----------------------------------------------------------------------------
# "meta" holds shapes without data: it shows where tensors go without an accelerator.

def test_small_dense_data_go_to_the_device_once_large_or_sparse_batch_by_batch(monkeypatch):
    X = np.ones((40, 3), np.float32)
    rows = RowDataset(X, {"y": np.arange(40), "weight": np.ones(40)})
    placed = rows.placed("meta")
    assert placed.device.type == "meta"
    assert {v.device.type for v in placed.fields.values()} == {"meta"}
    assert rows.device.type == "cpu" and rows.placed("cpu") is rows  # left as it was
    # the row numbers are drawn where the rows are: nothing crosses host and device
    for Xb, fields in BatchIterator(placed, 8, shuffle=True):
        assert Xb.device.type == fields["index"].device.type == "meta"
    for Xb, _ in BatchIterator(torch.utils.data.Subset(placed, [1, 5, 7]), 2, shuffle=True):
        assert Xb.device.type == "meta"
    # over the size limit, or sparse: kept on the host, batches go one at a time
    assert rows.placed("meta", max_bytes=rows.nbytes - 1) is rows
    assert rows.placed("meta", max_bytes=rows.nbytes).device.type == "meta"
    monkeypatch.setattr(data, "DEVICE_DATA_BYTES", rows.nbytes - 1)
    assert rows.placed("meta") is rows
    sparse = RowDataset(sp.csr_matrix(X))
    assert sparse.placed("meta") is sparse
    assert all(Xb.device.type == "cpu" for Xb, _ in BatchIterator(sparse, 8, shuffle=True))


def test_the_engine_the_chain_and_gped_place_their_data_by_the_one_policy(Xy, monkeypatch):
    X, y = Xy
    seen = []
    placed = RowDataset.placed

    def spy(self, device, max_bytes=None):
        seen.append((len(self), torch.device(device).type))
        return placed(self, device, max_bytes)

    monkeypatch.setattr(RowDataset, "placed", spy)
    student(max_epochs=1).fit(X, y)
    assert seen == [(200, "cpu")]
    teacher(n_iter=150).fit(X, y)
    assert seen[1:] == [(200, "cpu")]
    GPEDDistiller(teacher(), MLPStudent(hidden_layer_sizes=(8,)), n_iter=150,
                  burn_in=100, thinning=5, random_state=0).fit(X, y, X_unlabeled=X[:50])
    # the chain on X, the student on the distillation rows
    assert sorted(seen[2:]) == [(50, "cpu"), (200, "cpu")]


def test_a_per_batch_size_limit_changes_no_number(Xy, monkeypatch):
    X, y = Xy
    before = [student().fit(X, y).predict_proba(X), teacher().fit(X, y).predict_proba(X)]
    monkeypatch.setattr(data, "DEVICE_DATA_BYTES", 0)
    after = [student().fit(X, y).predict_proba(X), teacher().fit(X, y).predict_proba(X)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


# -- losses read every k steps --------------------------------------------------------------------

def test_reading_the_losses_every_k_steps_changes_no_number(Xy, monkeypatch):
    X, y = Xy

    def fits():
        mlp = student(validation_fraction=0.2).fit(X, y)
        chain = teacher().fit(X, y, sample_weight=np.r_[np.zeros(20), np.ones(180)])
        gped = GPEDDistiller(teacher(), MLPStudent(hidden_layer_sizes=(8,)),
                             target=["predictive", "entropy"], n_iter=400, burn_in=100,
                             thinning=2, input_noise=0.1, random_state=0).fit(X, y)
        return mlp, chain, gped

    every_step = fits()
    read_every_k_on_the_cpu(monkeypatch, 7)
    every_7 = fits()
    for a, b in zip(every_step, every_7):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # every batch's training and validation loss recorded, the same
    batches = [[row["batches"] for row in fit.history_] for fit in (every_step[0], every_7[0])]
    assert batches[0] == batches[1]
    assert ([r["valid_loss"] for r in every_step[0].history_]
            == [r["valid_loss"] for r in every_7[0].history_])
    assert every_step[2].loss_curve_ == every_7[2].loss_curve_


class NaNAt(Objective):
    """Cross-entropy, NaN at training step ``at`` only; keeps the network it trains."""

    def __init__(self, at):
        super().__init__(self.loss_fn)
        self.at, self.steps = at, 0

    def loss_fn(self, out, target):
        per_row = F.cross_entropy(out, target, reduction="none")
        if torch.is_grad_enabled():
            self.steps += 1
            if self.steps == self.at:
                return per_row * float("nan")
        return per_row

    def build(self, module):
        self.module = module
        return module


@pytest.mark.parametrize("at, batch", [(5, "epoch 1, batch 5"), (10, "epoch 1, batch 10"),
                                       (13, "epoch 2, batch 3")])
def test_a_non_finite_loss_read_every_k_steps_stops_within_k_with_the_same_error(
        Xy, monkeypatch, at, batch):
    X, y = Xy  # 10 batches of 20 rows an epoch

    def run():
        objective = NaNAt(at)
        with pytest.raises(ValueError, match="training diverged") as error:
            student().fit_objective(X, y, objective)
        params = torch.nn.utils.parameters_to_vector(objective.module.parameters())
        return str(error.value), objective.steps, params

    message, steps, params = run()
    assert f"the loss became nan at {batch};" in message and steps == at
    k = 3
    read_every_k_on_the_cpu(monkeypatch, k)
    message_k, steps_k, params_k = run()
    assert message_k == message
    # read after every k steps of an epoch (10 steps) and at its end
    start, p = 10 * ((at - 1) // 10), (at - 1) % 10 + 1
    assert steps_k == start + min(p + (-p) % k, 10) and at <= steps_k < at + k
    # the non-finite step applied no gradient: the network stayed finite
    assert torch.isfinite(params_k).all()


def test_a_callback_acting_on_every_batch_reads_every_loss_at_once(Xy, monkeypatch):
    X, y = Xy
    read_every_k_on_the_cpu(monkeypatch, 4)

    class Reads(Callback):
        seen = []

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.seen.append(net.history[-1, "batches", -1, "train_loss"])

    student(max_epochs=1, callbacks=[Reads()]).fit(X, y)
    assert len(Reads.seen) == 10 and all(np.isfinite(Reads.seen))


def test_a_chain_read_every_k_steps_stops_within_k_with_the_same_error(Xy, monkeypatch):
    X, y = Xy
    X = X * 100

    def run():
        seen = []

        def step(t):
            seen.append(t)
            return 50.0

        with pytest.raises(ValueError, match="diverged at iteration") as error:
            teacher(step_size=step).fit(X, y)
        return str(error.value), seen[-1]

    message, last = run()
    t_bad = int(message.split("diverged at iteration ")[1].split(" ")[0])
    assert last == t_bad
    k = 7
    read_every_k_on_the_cpu(monkeypatch, k)
    message_k, last_k = run()
    assert message_k == message and t_bad <= last_k < t_bad + k


def test_a_chain_read_every_k_steps_keeps_and_gives_out_no_diverged_state(Xy, monkeypatch):
    """The losses still on the device are read before a state is kept or handed to GPED:
    with k above the thinning, a diverging chain's samples are all finite."""
    X, y = Xy
    read_every_k_on_the_cpu(monkeypatch, 1000)
    kept = []
    chain = teacher(step_size=lambda t: 1e-3 if t < 120 else 1e3, burn_in=0, thinning=5)
    with pytest.raises(ValueError, match=r"diverged at iteration 1[23]\d \(.* is (nan|inf)\)"):
        for sample in chain.iter_samples(X, y, every=5):
            kept.append(torch.nn.utils.parameters_to_vector(sample.module.parameters()))
    assert kept and all(torch.isfinite(theta).all() for theta in kept)
