"""Morad et al. (2026): Bayesian teachers give better students and steadier SGD.

``python -m benchmarks bayes_teachers [--seeds 3] [--n-train N] [--json PATH]``

Morad, Shlezinger, Eldar (*SGD-based knowledge distillation with Bayesian teachers*, ICLR
2026) read the teacher's soft labels as an estimate of the Bayes class probabilities: the closer
they are, the lower the noise floor of the student's SGD (the per-row gradient of the
cross-entropy is ``p_student - target``, and a one-hot target never matches), so Bayesian
teachers (VI, Laplace) should give better students with less gradient noise than a
deterministic teacher, which in turn beats one-hot labels.

Protocol: Fashion-MNIST (60k training, 10k test images; ``--n-train`` subsamples the
training rows). Teachers of one architecture (``--teacher-hidden``, default 784-200-200-10),
fitted once on the training rows (``--teacher-per-seed`` refits them for every seed):

- ``deterministic``: an :class:`~skdistill.MLPStudent` (Adam, no weight decay);
- ``laplace``: :class:`~skdistill.LaplaceTeacher` on that very network (frozen, post hoc, as
  the paper Bayesianizes a pretrained network): last layer, full GGN, prior precision by
  marginal likelihood, Monte Carlo GLM predictive;
- ``laplace_kfac`` (Laplace KFAC, all weights): the same post hoc Laplace over all the
  network's weights, its GGN Kronecker-factored per layer (``hessian_structure="kron"``);
- ``vi``: :class:`~skdistill.VITeacher` (mean-field Bayes by backprop);
- ``sgld``: :class:`~skdistill.SGLDTeacher` (step ``0.25 / N``, the paper's 4e-6 at N=60k);
- ``de4``: :class:`~skdistill.DeepEnsembleTeacher` of 4 such networks;
- ``mcdropout``: :class:`~skdistill.MCDropoutTeacher`, the same network trained as the
  deterministic one (same epochs, batch and learning rate) with dropout ``--mc-dropout``
  (0.1 by default: a light rate, for a network of this size trained in the same 20 epochs,
  whose samples still spread) after each hidden layer, kept on for ``--n-samples`` passes.
- ``swag``: :class:`~skdistill.SWAGTeacher` on such a network trained by SGD with momentum
  (``--swag-epochs`` in all, the SWA phase from epoch ``--swag-start``, at rate
  ``--swag-lr`` after ``--swag-lr-init``; rank 20).

One small student setting (``--student-hidden``, default 784-32-10, ``--student-epochs``)
is trained for every seed on the one-hot labels and, by
:class:`~skdistill.KnowledgeDistiller` (``alpha=1``, ``T=1``: the teacher's probabilities
replace the labels), from each frozen teacher; same seed, same initialisation and shuffling.

Learning stability, measured on the student's training loss (soft-target cross-entropy with
the labels or the teacher's probabilities as targets): ``grad_var_*`` is the total variance
(trace of the covariance, ``ddof=1``) of the gradient over ``--grad-batches`` minibatches of the
training batch size, at the final network (``end``) and at the end of epoch
``--early-epoch`` (``early``); ``loss_std_last_epoch`` the standard deviation of the per-batch
training losses of the last epoch (from ``history_``). The per-batch loss includes the
entropy of the batch's targets, which varies with soft targets even for a perfect fit, so
``kl_std_end`` gives the spread of ``loss - H(target)`` over the same minibatches.
``--quick`` runs a tiny version in seconds (used by the tests).
"""
import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from skdistill import (DeepEnsembleTeacher, KnowledgeDistiller, LaplaceTeacher,
                       MCDropoutTeacher, MLPStudent, SGLDTeacher, SWAGTeacher, VITeacher)
from skdistill.datasets import load_fashion_mnist
from skdistill.metrics import entropy

from . import group_rows, resolve_data_home, scores

TEACHERS = ["deterministic", "laplace", "laplace_kfac", "vi", "sgld", "de4", "mcdropout",
            "swag"]
#: Morad et al., ResNet50 -> WRN-16-2 (accuracy in %); "–" where the paper has no such row.
PAPER = {
    "one-hot": {"student_accuracy": 67.70},
    "deterministic": {"teacher_accuracy": 75.41, "student_accuracy": 69.36},
    "laplace": {"teacher_accuracy": 74.83, "student_accuracy": 72.52},
    "vi": {"teacher_accuracy": 75.67, "student_accuracy": 73.63},
}


class EpochSnapshot(Callback):
    """Keep a copy of the module's parameters at the end of epoch ``epoch`` (1-based)."""

    def __init__(self, epoch=1):
        self.epoch = epoch

    def initialize(self):
        self.state_dict_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.state_dict_ = copy.deepcopy(net.module_.state_dict())


class KnownProba(ClassifierMixin, BaseEstimator):
    """A fitted ``teacher`` whose ``predict_proba`` of the rows ``X`` is already known
    (``proba``): every seed's student is distilled from it without another posterior pass
    over the training rows. Other rows go to the teacher."""

    def __init__(self, teacher=None, X=None, proba=None):
        self.teacher = teacher
        self.X = X
        self.proba = proba

    def fit(self, X=None, y=None):
        self.classes_ = self.teacher.classes_
        return self

    def predict_proba(self, X):
        if X is self.X or (X.dtype == self.X.dtype and np.array_equal(X, self.X)):
            return self.proba.copy()
        return self.teacher.predict_proba(X)


def gradient_noise(module, X, targets, batch_size, n_batches, seed):
    """Total variance of the minibatch gradient of the soft-target cross-entropy, and the
    standard deviation over the same minibatches of ``loss - H(target)`` (the KL part).

    ``targets`` are ``(n, C)`` probabilities (one-hot rows for labels). The minibatches are
    disjoint, drawn by a permutation seeded by ``seed``; the module is used as it is
    (no dropout in these networks, so train and eval modes agree).
    """
    order = np.random.RandomState(seed).permutation(len(X))
    n_batches = min(n_batches, len(X) // batch_size)
    grads, kls = [], []
    params = [p for p in module.parameters() if p.requires_grad]
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb = torch.as_tensor(X[idx])
        tb = torch.as_tensor(targets[idx], dtype=torch.float32)
        log_p = torch.log_softmax(module(xb), dim=1)
        loss = -(tb * log_p).sum(dim=1).mean()
        grad = torch.autograd.grad(loss, params)
        grads.append(torch.cat([g.reshape(-1) for g in grad]).double())
        h = -torch.special.xlogy(tb, tb).sum(dim=1).mean()
        kls.append(float(loss.detach() - h))
    G = torch.stack(grads)
    var = float(((G - G.mean(dim=0)) ** 2).sum() / (len(G) - 1))
    return {"grad_var": var, "grad_mean_sqnorm": float(G.mean(dim=0).square().sum()),
            "kl_std": float(np.std(kls, ddof=1)), "kl_mean": float(np.mean(kls))}


def make_teachers(args, seed, n_train):
    """Name -> a function fitting that teacher on ``(X, y)`` (Laplace reuses the
    deterministic network, so the order matters)."""
    hidden = tuple(args.teacher_hidden)

    def network(s, dropout=0.0):
        return MLPStudent(hidden_layer_sizes=hidden, max_epochs=args.teacher_epochs, lr=1e-3,
                          batch_size=128, dropout=dropout, random_state=s)

    fitted = {}

    def deterministic(X, y):
        fitted["deterministic"] = network(seed).fit(X, y)
        return fitted["deterministic"]

    def post_hoc_laplace(subset_of_weights, hessian_structure):
        def fit(X, y):  # on the deterministic network, frozen
            return LaplaceTeacher(FrozenEstimator(fitted["deterministic"]),
                                  subset_of_weights=subset_of_weights,
                                  hessian_structure=hessian_structure,
                                  prior_precision=args.laplace_prior, n_samples=args.n_samples,
                                  link_approx="mc", random_state=seed).fit(X, y)
        return fit

    def vi(X, y):
        return VITeacher(hidden, prior_precision=1.0, n_samples=args.n_samples,
                         max_epochs=args.vi_epochs, batch_size=128, lr=1e-3,
                         kl_weight=args.vi_kl_weight, random_state=seed).fit(X, y)

    def sgld(X, y):
        steps = args.sgld_epochs * n_train // 100
        return SGLDTeacher(hidden, prior_precision=10.0, step_size=0.25 / n_train,
                           batch_size=100, n_iter=steps, burn_in=steps // 6,
                           thinning=max(1, steps // 120), max_samples=args.n_samples,
                           random_state=seed).fit(X, y)

    def de4(X, y):
        return DeepEnsembleTeacher(network(None), n_members=4, n_jobs=1,
                                   random_state=seed).fit(X, y)

    def mcdropout(X, y):
        return MCDropoutTeacher(network(seed, args.mc_dropout), n_samples=args.n_samples,
                                random_state=seed).fit(X, y)

    def swag(X, y):
        sgd = MLPStudent(hidden_layer_sizes=hidden, max_epochs=args.swag_epochs,
                         lr=args.swag_lr_init, optimizer="momentum", batch_size=128,
                         random_state=seed)
        return SWAGTeacher(sgd, swa_start=args.swag_start, swa_lr=args.swag_lr, max_rank=20,
                           n_samples=args.n_samples, random_state=seed).fit(X, y)

    return {"deterministic": deterministic, "laplace": post_hoc_laplace("last_layer", "full"),
            "laplace_kfac": post_hoc_laplace("all", "kron"), "vi": vi, "sgld": sgld, "de4": de4,
            "mcdropout": mcdropout, "swag": swag}


def student(args, seed, early):
    return MLPStudent(hidden_layer_sizes=tuple(args.student_hidden),
                      max_epochs=args.student_epochs, lr=1e-3, batch_size=args.batch_size,
                      callbacks=[("snapshot", EpochSnapshot(early))], random_state=seed)


def stability(args, fitted, X, targets, seed):
    """Gradient noise at the final network and at the early snapshot, loss-curve spread."""
    net = fitted.net_
    module = copy.deepcopy(fitted.module_)
    end = gradient_noise(module, X, targets, args.batch_size, args.grad_batches, seed)
    out = {"grad_var_end": end["grad_var"], "grad_mean_sqnorm_end": end["grad_mean_sqnorm"],
           "kl_std_end": end["kl_std"], "kl_mean_end": end["kl_mean"]}
    snapshot = dict(net.callbacks_)["snapshot"].state_dict_
    if snapshot is not None:
        module.load_state_dict(snapshot)
        out["grad_var_early"] = gradient_noise(module, X, targets, args.batch_size,
                                               args.grad_batches, seed)["grad_var"]
    else:
        out["grad_var_early"] = None
    losses = [b["train_loss"] for b in fitted.history_[-1]["batches"]]
    out["loss_std_last_epoch"] = float(np.std(losses))
    out["loss_mean_last_epoch"] = float(np.mean(losses))
    return out


def load(args, data_home):
    X, y = load_fashion_mnist(subset="train", data_home=data_home, return_X_y=True)
    X_te, y_te = load_fashion_mnist(subset="test", data_home=data_home, return_X_y=True)
    if args.n_train < len(X):
        rows = np.random.RandomState(0).permutation(len(X))[:args.n_train]
        X, y = X[rows], y[rows]
    if args.n_test < len(X_te):
        rows = np.random.RandomState(1).permutation(len(X_te))[:args.n_test]
        X_te, y_te = X_te[rows], y_te[rows]
    return X, y, X_te, y_te


def run_benchmark(args, log, data_home):
    X, y, X_te, y_te = load(args, data_home)
    onehot = np.eye(10, dtype=np.float32)[y]
    log(f"bayes_teachers: Fashion-MNIST {len(X)} training / {len(X_te)} test images; teachers "
        f"784-{'-'.join(map(str, args.teacher_hidden))}-10, student "
        f"784-{'-'.join(map(str, args.student_hidden))}-10, {args.student_epochs} epochs")
    rows, teachers = [], {}
    for seed in range(args.seeds):
        if seed == 0 or args.teacher_per_seed:
            teachers = {}
            for name, fit in make_teachers(args, seed, len(X)).items():
                if name not in args.teachers and not (
                        name == "deterministic"
                        and {"laplace", "laplace_kfac"} & set(args.teachers)):
                    continue
                start = time.perf_counter()
                teacher = fit(X, y)
                proba = teacher.predict_proba(X)
                p_train = proba.astype(np.float32)
                p_train /= p_train.sum(axis=1, keepdims=True)
                info = {"teacher_seed": seed, **scores(y_te, teacher.predict_proba(X_te),
                                                       "teacher"),
                        **{k.replace("teacher_", "teacher_train_"): v
                           for k, v in scores(y, p_train, "teacher").items()},
                        "target_entropy": float(entropy(p_train).mean()),
                        "teacher_seconds": time.perf_counter() - start}
                if name in ("laplace", "laplace_kfac"):
                    info["laplace_prior_precision"] = teacher.prior_precision_
                if name == "mcdropout":
                    info["mc_dropout"] = teacher.dropout_
                teachers[name] = (KnownProba(teacher, X, proba).fit(), p_train, info)
                log(f"teacher {name}: test acc {info['teacher_accuracy']:.4f}, NLL "
                    f"{info['teacher_nll']:.4f}, ECE {info['teacher_ece']:.4f}; train acc "
                    f"{info['teacher_train_accuracy']:.4f}, target entropy "
                    f"{info['target_entropy']:.4f} ({info['teacher_seconds']:.0f} s)")
        runs = [("one-hot", None, onehot, {"target_entropy": 0.0})]
        runs += [(name, teacher, p_train, info)
                 for name, (teacher, p_train, info) in teachers.items()
                 if name in args.teachers]
        for name, teacher, targets, info in runs:
            start = time.perf_counter()
            if teacher is None:
                fitted = student(args, seed, args.early_epoch).fit(X, y)
            else:
                fitted = KnowledgeDistiller(FrozenEstimator(teacher),
                                            student(args, seed, args.early_epoch),
                                            temperature=1.0, alpha=1.0).fit(X, y).student_
            seconds = time.perf_counter() - start
            row = {"teacher": name, "seed": seed, "n_train": len(X), "n_test": len(X_te),
                   **{k: None for k in ("teacher_accuracy", "teacher_nll", "teacher_ece")},
                   **info, **scores(y_te, fitted.predict_proba(X_te), "student"),
                   **stability(args, fitted, X, targets, seed), "seconds": seconds}
            rows.append(row)
            log(f"seed {seed} {name}: student acc {row['student_accuracy']:.4f}, NLL "
                f"{row['student_nll']:.4f}, grad var {row['grad_var_end']:.4g} "
                f"({seconds:.0f} s)")
    return rows


def summary(rows):
    """Per teacher: mean and std over seeds of every numeric column."""
    return {name: {key: {"mean": float(np.mean([r[key] for r in group])),
                         "std": float(np.std([r[key] for r in group]))}
                   for key, value in group[0].items()
                   if isinstance(value, float) and all(r[key] is not None for r in group)}
            for name, group in group_rows(rows, "teacher").items()}


def print_table(summ, n_seeds):
    def cell(m, key, scale=1.0, digits=4):
        if key not in m:
            return "–"
        return f"{scale * m[key]['mean']:.{digits}f} ± {scale * m[key]['std']:.{digits}f}"

    print(f"\nmean ± std over {n_seeds} student seeds (teacher columns: test set; target "
          "entropy: mean entropy of the student's targets on the training rows)")
    print("| targets | teacher acc % | teacher NLL | teacher ECE | target entropy | "
          "student acc % | student NLL | student ECE |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in summ.items():
        print(f"| {name} | {cell(m, 'teacher_accuracy', 100, 2)} | {cell(m, 'teacher_nll')} | "
              f"{cell(m, 'teacher_ece')} | {cell(m, 'target_entropy')} | "
              f"{cell(m, 'student_accuracy', 100, 2)} | {cell(m, 'student_nll')} | "
              f"{cell(m, 'student_ece')} |")
    print("\nlearning stability (gradient variance: trace of the covariance of minibatch "
          "gradients; ratio: to one-hot)")
    print("| targets | grad var, end | ratio | grad var, early | ratio | loss std, last epoch | "
          "std of loss − H(target), end |")
    print("|---|---|---|---|---|---|---|")
    base = summ.get("one-hot", {})
    for name, m in summ.items():
        ratio = (lambda key: f"{m[key]['mean'] / base[key]['mean']:.2f}"
                 if key in m and key in base else "–")
        print(f"| {name} | {cell(m, 'grad_var_end', 1, 5)} | {ratio('grad_var_end')} | "
              f"{cell(m, 'grad_var_early', 1, 5)} | {ratio('grad_var_early')} | "
              f"{cell(m, 'loss_std_last_epoch')} | {cell(m, 'kl_std_end')} |")
    print("\npaper (Morad et al., ResNet50 -> WRN-16-2, accuracy %): " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in fig.items())
        for name, fig in PAPER.items()))


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks bayes_teachers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="student seeds")
    parser.add_argument("--teacher-per-seed", action="store_true",
                        help="refit the teachers for every seed (default: once, seed 0)")
    parser.add_argument("--teachers", nargs="+", default=TEACHERS, choices=TEACHERS)
    parser.add_argument("--n-train", type=int, default=60000,
                        help="training rows (a fixed random subset when < 60000)")
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--teacher-hidden", type=int, nargs="+", default=[200, 200])
    parser.add_argument("--teacher-epochs", type=int, default=20,
                        help="epochs of the deterministic network and of each DE member")
    parser.add_argument("--vi-epochs", type=int, default=20)
    parser.add_argument("--vi-kl-weight", type=float, default=1.0,
                        help="VITeacher kl_weight (1: the ELBO; < 1: a tempered posterior)")
    parser.add_argument("--sgld-epochs", type=int, default=20,
                        help="SGLD passes over the data (batch 100)")
    parser.add_argument("--swag-epochs", type=int, default=20,
                        help="SGD epochs of the SWAG network, the SWA phase included")
    parser.add_argument("--swag-start", type=int, default=10,
                        help="SWAG swa_start: epochs before the SWA phase")
    parser.add_argument("--swag-lr-init", type=float, default=0.05,
                        help="SGD (momentum 0.9) rate of the SWAG network before the SWA phase")
    parser.add_argument("--swag-lr", type=float, default=0.01, help="SWAG swa_lr")
    parser.add_argument("--laplace-prior", default="marglik",
                        help="LaplaceTeacher prior_precision: 'marglik' or a float")
    parser.add_argument("--n-samples", type=int, default=30,
                        help="posterior samples of the Laplace, VI, SGLD, MC dropout and "
                             "SWAG teachers")
    parser.add_argument("--mc-dropout", type=float, default=0.1,
                        help="dropout rate of the MC dropout teacher's network")
    parser.add_argument("--student-hidden", type=int, nargs="+", default=[32])
    parser.add_argument("--student-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128, help="student batch size")
    parser.add_argument("--early-epoch", type=int, default=1,
                        help="epoch after which the early gradient variance is measured")
    parser.add_argument("--grad-batches", type=int, default=50)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (seconds), for the tests: overrides the sizes above")
    parser.add_argument("--data-home", default=None,
                        help="data folder; default $SKDISTILL_DATA, else ../shared/data if present")
    parser.add_argument("--json", default=None, help="write the raw rows and summary here")
    args = parser.parse_args(argv)
    if args.laplace_prior != "marglik":
        args.laplace_prior = float(args.laplace_prior)
    if args.quick:
        args.seeds, args.n_train, args.n_test, args.teacher_hidden = 1, 1500, 1000, [32]
        args.teacher_epochs, args.vi_epochs, args.sgld_epochs, args.n_samples = 5, 5, 5, 10
        args.swag_epochs, args.swag_start = 5, 2
        args.student_hidden, args.student_epochs, args.grad_batches = [16], 4, 10

    data_home = resolve_data_home(args.data_home)
    torch.set_num_threads(1)
    print(f"bayes_teachers: {vars(args)}", flush=True)
    log = (lambda msg: print(msg, flush=True))
    start = time.perf_counter()
    with threadpool_limits(1):
        rows = run_benchmark(args, log, data_home)
    summ = summary(rows)
    print_table(summ, args.seeds)
    seconds = time.perf_counter() - start
    print(f"\nbayes_teachers: {seconds:.0f} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "torch_threads": torch.get_num_threads(), "paper": PAPER,
             "rows": rows, "summary": summ, "seconds": seconds}, indent=1, default=float))
    return 0
