"""Menon et al. (2021): distilled bipartite ranking against the labels-only pairwise student.

``python -m benchmarks menon ranking [--datasets synthetic heloc adult] [--labels 200 1000 all]
[--seeds 5] [--steps 1000] [--json PATH]``

Menon, Rawat, Reddi, Kim, Kumar (*A statistical perspective on distillation*, ICML 2021) apply
their view of a teacher as an estimate of the Bayes probabilities ``p*`` to bipartite ranking:
weighting every pair of rows by ``p_i (1 - p_j)`` instead of using the labelled (positive,
negative) pairs alone lowers the variance of the pairwise risk, and with an accurate teacher
should give a student that ranks better. For each data set, labelled-set size and seed, the
test AUC of:

- ``labels only``: :class:`~skdistill.RankingDistiller` with ``alpha=0`` (the empirical
  pairwise risk on the labelled rows);
- ``distilled (HGB)``: ``alpha=1``, a histogram gradient-boosting teacher, the training rows
  without labels as ``X_unlabeled``;
- ``distilled (p*)``: the same with the exact ``p*`` as teacher (synthetic data only);
- ``KD log-loss (HGB)``: :class:`~skdistill.KnowledgeDistiller` (``alpha=1``) from the same
  teacher, same rows, the student's probability of the positive class as its score;
- ``teacher (HGB)``: the teacher itself.

Data: ``synthetic`` (a nonlinear logit of 8 Gaussian features whose ``p*`` is known), FICO
``heloc`` and ``adult`` (preprocessed as in ``dao_tabular``; a data set whose file is missing is
skipped with a message). Each is split once into a training pool, a validation set (for the
learning rates) and a test set; each seed draws its labelled rows (stratified) from the pool,
and the rest of the pool are the rows without labels. The teacher is fitted once per seed on
the labelled rows and given frozen to both distillers. Every student is the same
``MLPStudent`` trained for the same number of optimiser steps (``--steps``, batches of
``--batch-size``); its learning rate is chosen per data set, size and method from ``--lrs`` by
the validation AUC at the first seed. ``--quick`` runs a tiny version (seconds; for the tests).
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skdistill import KnowledgeDistiller, MLPStudent, RankingDistiller
from skdistill.datasets import DataFileNotFoundError

from . import resolve_data_home

SEED = 2357
METHODS = ["labels only", "distilled (HGB)", "distilled (p*)", "KD log-loss (HGB)",
           "teacher (HGB)"]
#: the methods that train a student (and so get a tuned learning rate)
STUDENT_METHODS = METHODS[:4]
#: RankingDistiller's default share of the labelled rows held out for its calibration map
CALIBRATION_FRACTION = 0.2


def bayes_proba(X):
    """``p*(y = 1 | x)`` of the synthetic data: a nonlinear logit of the first four features."""
    return expit(1.5 * np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + 0.5)


class BayesTeacher(ClassifierMixin, BaseEstimator):
    """The synthetic data's ``p*`` as a teacher: its ``fit`` learns nothing."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = bayes_proba(np.asarray(X))
        return np.column_stack([1 - p, p])


def _split(X, y, n_val, n_test, n_pool=None):
    """``{"pool", "val", "test"}`` of ``(X, y)``, standardised on the pool, stratified."""
    X_rest, X_te, y_rest, y_te = train_test_split(X, y, test_size=n_test, stratify=y,
                                                  random_state=SEED)
    X_pool, X_val, y_pool, y_val = train_test_split(X_rest, y_rest, test_size=n_val,
                                                    stratify=y_rest, random_state=SEED)
    if n_pool is not None and n_pool < len(y_pool):
        X_pool, _, y_pool, _ = train_test_split(X_pool, y_pool, train_size=n_pool,
                                                stratify=y_pool, random_state=SEED)
    scaler = StandardScaler().fit(X_pool)
    return {"pool": (scaler.transform(X_pool), y_pool), "val": (scaler.transform(X_val), y_val),
            "test": (scaler.transform(X_te), y_te), "scaler": scaler}


def load_data(name, args, data_home):
    """The split data set ``name``, or None (with a message) where its file is missing."""
    if name == "synthetic":
        rng = np.random.default_rng(SEED)
        n = args.synthetic_pool + args.n_val + args.n_test
        X = rng.normal(size=(n, 8))
        y = (rng.uniform(size=n) < bayes_proba(X)).astype(int)
        data = _split(X, y, args.n_val, args.n_test)
        data["bayes_test_auc"] = roc_auc_score(data["test"][1], bayes_proba(data["test"][0]))
        return data
    from .dao_tabular import load

    try:
        X, y = load(name, data_home, None)
    except DataFileNotFoundError as exc:
        print(f"menon ranking: {name} skipped: {exc}", flush=True)
        return None
    n_test = min(args.n_test, int(0.3 * len(y)))
    n_val = min(args.n_val, int(0.15 * len(y)))
    return _split(X, y, n_val, n_test, n_pool=args.max_pool)


def labelled_rows(y, n_labels, seed):
    """Row numbers of the labelled rows of the pool (stratified); all for ``"all"``."""
    rows = np.arange(len(y))
    if n_labels == "all" or int(n_labels) >= len(y):
        return rows
    chosen, _ = train_test_split(rows, train_size=int(n_labels), stratify=y,
                                 random_state=SEED + seed)
    return np.sort(chosen)


def _student_rows(method, y_lab, n_unlabeled):
    """Rows the student trains on: RankingDistiller holds out a share of each class."""
    n = n_unlabeled if method.startswith("distilled") or method.startswith("KD") else 0
    if method.startswith("KD"):
        return len(y_lab) + n
    held = sum(min(max(1, round(CALIBRATION_FRACTION * c)), c - 1)
               for c in np.bincount(y_lab))
    return len(y_lab) - held + n


def make_model(method, teacher, lr, epochs, seed, args):
    student = MLPStudent(hidden_layer_sizes=tuple(args.hidden), max_epochs=epochs, lr=lr,
                         batch_size=args.batch_size, random_state=seed)
    if method == "labels only":
        return RankingDistiller(teacher, student, alpha=0.0, random_state=seed)
    if method.startswith("distilled"):
        return RankingDistiller(teacher, student, alpha=1.0, random_state=seed)
    return KnowledgeDistiller(teacher, student, alpha=1.0, random_state=seed)


def score(model, X):
    """The ranking score: the decision function, or the probability of the positive class."""
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return model.predict_proba(X)[:, 1]


def fit_teacher(args, X, y, seed):
    teacher = HistGradientBoostingClassifier(max_iter=args.teacher_iter, learning_rate=0.05,
                                             random_state=seed)
    return teacher.fit(X, y)


def run_method(method, data, rows, teachers, lr, seed, args, evaluate="test"):
    """``(AUC on the evaluation rows, seconds, optimiser steps)`` of one method, one seed
    (0 steps for the teacher)."""
    X_pool, y_pool = data["pool"]
    X_lab, y_lab = X_pool[rows], y_pool[rows]
    unlabeled = np.setdiff1d(np.arange(len(y_pool)), rows)
    X_eval, y_eval = data[evaluate]
    start = time.perf_counter()
    if method == "teacher (HGB)":
        auc = roc_auc_score(y_eval, teachers["hgb"].predict_proba(X_eval)[:, 1])
        return auc, time.perf_counter() - start, 0
    teacher = FrozenEstimator(teachers["bayes" if method.endswith("(p*)") else "hgb"])
    uses_unlabeled = method != "labels only" and len(unlabeled) > 0
    n_rows = _student_rows(method, y_lab, len(unlabeled) if uses_unlabeled else 0)
    epochs = max(1, round(args.steps / math.ceil(n_rows / args.batch_size)))
    model = make_model(method, teacher, lr, epochs, seed, args)
    model.fit(X_lab, y_lab, X_unlabeled=X_pool[unlabeled] if uses_unlabeled else None)
    steps = sum(len(epoch["batches"]) for epoch in model.history_)
    return roc_auc_score(y_eval, score(model, X_eval)), time.perf_counter() - start, steps


def _teachers(name, data, rows, seed, args):
    X_pool, y_pool = data["pool"]
    teachers = {"hgb": fit_teacher(args, X_pool[rows], y_pool[rows], seed)}
    if name == "synthetic":
        teachers["bayes"] = _StandardisedBayes(data["scaler"]).fit(X_pool[rows], y_pool[rows])
    return teachers


class _StandardisedBayes(BayesTeacher):
    """``p*`` of rows standardised by ``scaler`` (the pool's)."""

    def __init__(self, scaler=None):
        self.scaler = scaler

    def predict_proba(self, X):
        p = bayes_proba(self.scaler.inverse_transform(np.asarray(X)))
        return np.column_stack([1 - p, p])


def methods_for(name):
    return [m for m in METHODS if name == "synthetic" or not m.endswith("(p*)")]


def tune(name, data, n_labels, args, log):
    """The learning rate of each student method: the best validation AUC at seed 0."""
    rows = labelled_rows(data["pool"][1], n_labels, 0)
    teachers = _teachers(name, data, rows, 0, args)
    chosen = {}
    for method in methods_for(name):
        if method not in STUDENT_METHODS:
            continue
        aucs = {lr: run_method(method, data, rows, teachers, lr, 0, args, "val")[0]
                for lr in args.lrs}
        chosen[method] = max(aucs, key=aucs.get)
        log(f"  tune {name} n={n_labels} {method}: "
            + ", ".join(f"lr {lr:g} -> {auc:.4f}" for lr, auc in aucs.items()))
    return chosen


def run_dataset(name, data, args, log):
    rows_out = []
    for n_labels in args.labels:
        lrs = tune(name, data, n_labels, args, log) if len(args.lrs) > 1 else {
            m: args.lrs[0] for m in STUDENT_METHODS}
        for seed in range(args.seeds):
            rows = labelled_rows(data["pool"][1], n_labels, seed)
            teachers = _teachers(name, data, rows, seed, args)
            for method in methods_for(name):
                lr = lrs.get(method)
                auc, seconds, steps = run_method(method, data, rows, teachers, lr, seed, args)
                rows_out.append({"dataset": name, "n_labels": n_labels,
                                 "n_labelled": int(len(rows)),
                                 "n_unlabeled": int(len(data["pool"][1]) - len(rows)),
                                 "seed": seed, "method": method, "lr": lr, "auc": auc,
                                 "steps": steps, "seconds": seconds})
                log(f"  {name} n={n_labels} seed {seed} {method:18s} AUC {auc:.4f} "
                    f"({seconds:.1f} s)")
    return rows_out


def summarise(rows):
    """Mean, std (ddof=1) and variance of the test AUC over seeds, per data set, size and
    method."""
    out = []
    keys = sorted({(r["dataset"], str(r["n_labels"]), r["method"]) for r in rows},
                  key=lambda k: (k[0], k[1], METHODS.index(k[2])))
    for dataset, n_labels, method in keys:
        aucs = np.array([r["auc"] for r in rows if (r["dataset"], str(r["n_labels"]),
                                                    r["method"]) == (dataset, n_labels,
                                                                     method)])
        std = float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0
        out.append({"dataset": dataset, "n_labels": n_labels, "method": method,
                    "n_seeds": len(aucs), "mean": float(aucs.mean()), "std": std,
                    "var": std ** 2})
    return out


def print_table(summary, bayes):
    print("\n| data | labels | method | test AUC (mean ± std) | seed variance |")
    print("|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['dataset']} | {s['n_labels']} | {s['method']} | "
              f"{s['mean']:.4f} ± {s['std']:.4f} | {s['var']:.2e} |")
    for name, auc in bayes.items():
        print(f"\n{name}: test AUC of p* itself {auc:.4f}")


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks menon ranking",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "heloc", "adult"],
                        choices=["synthetic", "heloc", "adult"])
    parser.add_argument("--labels", nargs="+", default=["200", "1000", "all"],
                        help="labelled rows per seed (ints, or 'all': the whole pool)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000,
                        help="optimiser steps of every student")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--teacher-iter", type=int, default=200)
    parser.add_argument("--synthetic-pool", type=int, default=8000)
    parser.add_argument("--max-pool", type=int, default=12000,
                        help="cap on the training pool of the real data sets")
    parser.add_argument("--n-val", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (seconds), for the tests: overrides the sizes above")
    parser.add_argument("--data-home", default=None,
                        help="data folder; default $SKDISTILL_DATA, else ../shared/data if present")
    parser.add_argument("--json", default=None, help="write the raw rows and summaries here")
    args = parser.parse_args(argv)
    for value in args.labels:
        if value != "all" and not value.isdigit():
            parser.error(f"--labels takes positive ints or 'all', not {value!r}")
    if args.quick:
        args.datasets = [d for d in args.datasets if d == "synthetic"] or ["synthetic"]
        args.labels, args.seeds, args.steps, args.lrs = ["60", "all"], 2, 20, args.lrs[:2]
        args.hidden, args.teacher_iter, args.synthetic_pool = [16], 20, 300
        args.n_val, args.n_test = 200, 500

    data_home = resolve_data_home(args.data_home)
    torch.set_num_threads(1)
    print(f"menon ranking: {vars(args)}", flush=True)
    results = {"args": vars(args), "rows": [], "bayes_test_auc": {}}
    start = time.perf_counter()
    with threadpool_limits(1):
        for name in args.datasets:
            data = load_data(name, args, data_home)
            if data is None:
                continue
            if name == "synthetic":
                results["bayes_test_auc"][name] = data["bayes_test_auc"]
            results["sizes"] = results.get("sizes", {})
            results["sizes"][name] = {part: int(len(data[part][1]))
                                      for part in ("pool", "val", "test")}
            print(f"{name}: pool {len(data['pool'][1])}, validation {len(data['val'][1])}, "
                  f"test {len(data['test'][1])} rows", flush=True)
            results["rows"] += run_dataset(name, data, args,
                                           lambda msg: print(msg, flush=True))
    results["summary"] = summarise(results["rows"])
    results["seconds"] = time.perf_counter() - start
    print_table(results["summary"], results["bayes_test_auc"])
    print(f"\nmenon ranking: {results['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0
