"""Menon et al. (2021): a teacher's calibration predicts its student better than its accuracy.

``python -m benchmarks teacher_quality [--part synthetic digits heloc] [--json PATH]``

Menon, Rawat, Reddi, Kim, Kumar (*A statistical perspective on distillation*, ICML 2021) read
distillation as training on the teacher's estimate of the Bayes class probabilities ``p*``
instead of one-hot labels: a good ``p*`` lowers the variance of the student's risk, and an
imperfect teacher adds the bias ``E ||p_t - p*||^2``, which accuracy does not measure but
calibration partly does. Parts (``--part``, several allowed):

- ``synthetic``: a Gaussian mixture whose ``p*`` is known exactly
  (:func:`~skdistill.datasets.make_gaussian_mixture`, 4 classes in 10 dimensions, one
  covariance per class). One :class:`~skdistill.MLPStudent` setting is distilled by
  :class:`~skdistill.KnowledgeDistiller` from frozen teachers: ``p*`` itself; ``p*`` distorted
  to ``softmax(log p* / T)`` (same predicted classes, so the same accuracy); classifiers fitted
  on the training rows (logistic regression, random forests of three depths, kNN with 5 and 50
  neighbours, an MLP, the same MLP's Laplace posterior over all its weights with a
  Kronecker-factored GGN, ``LaplaceTeacher(hessian_structure="kron")``, prior by marginal
  likelihood, 30 Monte Carlo draws, the same MLP trained with dropout 0.1 as an
  :class:`~skdistill.MCDropoutTeacher`, its dropout kept on for 30 samples, and the same MLP
  as a :class:`~skdistill.SWAGTeacher`, trained by SGD with momentum for ``--swag-epochs``,
  the second half its SWA phase); and the labels-only student. Each seed draws a new
  training sample from the same mixture; the test set is one large sample. The Spearman
  correlations, across teachers, of the student's test NLL with the teacher's accuracy, ECE,
  NLL and ``||p_t - p*||^2`` say which property predicts the student.
- ``digits``: sklearn's digits (50/50 split per seed), an under-confident forest
  (``RandomForestClassifier(max_depth=6)``) distilled by
  :class:`~skdistill.CrossFitDistiller` with ``teacher_calibration`` None, "temperature" and
  "isotonic", beside the labels-only student.
- ``heloc``: the same on FICO HELOC (preprocessing and 70/30 split of ``dao_tabular``;
  forests of depths ``--heloc-depths``); skipped with a message when the file is missing.

For the real data the score is the fraction of the NLL gap (uncalibrated-teacher student minus
labels-only student) that calibration closes; the aim is at least half.
``--quick`` runs a tiny version (seconds; used by the tests).
"""
import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import log_softmax
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

TEMPERATURES = [0.5, 0.7, 1.5, 2.0, 3.0]
#: teacher properties correlated with the student's test NLL (row key -> label)
PROPERTIES = {
    "teacher_accuracy": "accuracy (test)",
    "teacher_ece": "ECE (test)",
    "teacher_nll": "NLL (test)",
    "teacher_ece_train": "ECE (training rows)",
    "teacher_sqdist_train": "||p_t - p*||^2 (training rows)",
}
CALIBRATIONS = [None, "temperature", "isotonic"]

from skdistill import (CrossFitDistiller, KnowledgeDistiller, LaplaceTeacher,
                       MCDropoutTeacher, MLPStudent, SWAGTeacher)
from skdistill.datasets import DataFileNotFoundError, make_gaussian_mixture
from skdistill.datasets.synthetic import bayes_log_proba
from skdistill.metrics import expected_calibration_error, negative_log_likelihood

from . import group_rows, mean_sqdist, resolve_data_home, scores


class BayesTeacher(ClassifierMixin, BaseEstimator):
    """The Bayes probabilities of a Gaussian mixture, tempered: ``softmax(log p*(x) / T)``.

    ``params`` is the Bunch of ``make_gaussian_mixture(return_params=True)``; ``fit`` learns
    nothing from the data, so the teacher is exact (``temperature=1``) or distorted by ``T``
    without changing its predicted classes.
    """

    def __init__(self, params=None, temperature=1.0):
        self.params = params
        self.temperature = temperature

    def fit(self, X=None, y=None):
        self.classes_ = np.arange(len(self.params.weights))
        return self

    def predict_proba(self, X):
        log_proba = bayes_log_proba(X, self.params.means, self.params.covariances,
                                    self.params.weights)
        return np.exp(log_softmax(log_proba / self.temperature, axis=1))


def synthetic_teachers(args, params, seed):
    """Name -> (kind, unfitted teacher) for one seed."""
    teachers = {"p*": ("bayes", BayesTeacher(params))}
    for T in TEMPERATURES:
        teachers[f"p* at T={T:g}"] = ("tempered", BayesTeacher(params, T))
    fitted = {
        "logistic regression": LogisticRegression(max_iter=1000),
        "forest depth 3": RandomForestClassifier(args.forest_trees, max_depth=3,
                                                 random_state=seed),
        "forest depth 8": RandomForestClassifier(args.forest_trees, max_depth=8,
                                                 random_state=seed),
        "forest full depth": RandomForestClassifier(args.forest_trees, random_state=seed),
        "kNN k=5": KNeighborsClassifier(5),
        "kNN k=50": KNeighborsClassifier(50),
        "MLP 128-128": MLPClassifier((128, 128), max_iter=args.mlp_teacher_iter,
                                     random_state=seed),
        "Laplace KFAC MLP 128-128": LaplaceTeacher(
            MLPStudent(hidden_layer_sizes=(128, 128), max_epochs=args.mlp_teacher_iter,
                       lr=1e-3, batch_size=200, random_state=seed),
            subset_of_weights="all", hessian_structure="kron", prior_precision="marglik",
            n_samples=30, link_approx="mc", random_state=seed),
        # the same network, optimiser and epochs, with dropout kept on at prediction
        "MC dropout MLP 128-128": MCDropoutTeacher(
            MLPStudent(hidden_layer_sizes=(128, 128), dropout=0.1,
                       max_epochs=args.mlp_teacher_iter, lr=1e-3, batch_size=200,
                       random_state=seed), n_samples=30, random_state=seed),
        "SWAG MLP 128-128": SWAGTeacher(
            MLPStudent((128, 128), max_epochs=args.swag_epochs, lr=0.05, optimizer="momentum",
                       batch_size=64, random_state=seed),
            swa_lr=0.01, n_samples=30, random_state=seed),
    }
    teachers.update({name: ("fitted", t) for name, t in fitted.items()})
    return teachers


def synthetic_student(args, seed):
    return MLPStudent(hidden_layer_sizes=tuple(args.hidden), max_epochs=args.epochs, lr=1e-3,
                      batch_size=64, random_state=seed)


def part_synthetic(args, log):
    n_train, n_test = args.n_train, args.n_test
    X, y, bayes, params = make_gaussian_mixture(
        n_samples=args.synthetic_seeds * n_train + n_test, n_classes=4, n_features=10,
        class_sep=0.7, covariance="per_class", random_state=0, return_params=True)
    X_te, y_te, bayes_te = X[-n_test:], y[-n_test:], bayes[-n_test:]
    log(f"synthetic: 4 classes, 10 features, {n_train} training rows per seed, {n_test} test "
        f"rows; Bayes test NLL {negative_log_likelihood(y_te, bayes_te):.4f}, accuracy "
        f"{np.mean(bayes_te.argmax(1) == y_te):.4f}; student MLP {args.hidden}, "
        f"{args.epochs} epochs")
    rows = []
    for seed in range(args.synthetic_seeds):
        rows_ = slice(seed * n_train, (seed + 1) * n_train)
        X_tr, y_tr, bayes_tr = X[rows_], y[rows_], bayes[rows_]
        start = time.perf_counter()
        student = synthetic_student(args, seed).fit(X_tr, y_tr)
        rows.append({"part": "synthetic", "teacher": "labels only", "kind": "labels",
                     "seed": seed, **{key: None for key in PROPERTIES},
                     **scores(y_te, student.predict_proba(X_te), "student", bayes_te),
                     "seconds": time.perf_counter() - start})
        for name, (kind, teacher) in synthetic_teachers(args, params, seed).items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                teacher.fit(X_tr, y_tr)
            p_tr, p_te = teacher.predict_proba(X_tr), teacher.predict_proba(X_te)
            model = KnowledgeDistiller(FrozenEstimator(teacher), synthetic_student(args, seed))
            model.fit(X_tr, y_tr)
            rows.append({
                "part": "synthetic", "teacher": name, "kind": kind, "seed": seed,
                **scores(y_te, p_te, "teacher"),
                "teacher_ece_train": expected_calibration_error(y_tr, p_tr),
                "teacher_sqdist_train": mean_sqdist(p_tr, bayes_tr),
                **scores(y_te, model.predict_proba(X_te), "student", bayes_te),
                "seconds": time.perf_counter() - start})
        log(f"seed {seed}: {len(rows)} rows so far")
    return rows


def mean_by(rows, key):
    """``{rows[key]: {metric: mean over seeds}}`` in first-seen order."""
    return {name: {metric: (None if group[0][metric] is None
                            else float(np.mean([r[metric] for r in group])))
                   for metric, value in group[0].items()
                   if metric not in ("part", "teacher", "kind", "seed", "method")
                   and (value is None or isinstance(value, float))}
            for name, group in group_rows(rows, key).items()}


def correlations(rows):
    """Spearman rho (and p-value) of the student's test NLL with each teacher property.

    Across teachers (their means over seeds), and per seed (the range says how steady it is).
    """
    taught = [r for r in rows if r["kind"] != "labels"]
    means = mean_by(taught, "teacher")
    out = {}
    for key in PROPERTIES:
        rho, pvalue = spearmanr([m[key] for m in means.values()],
                                [m["student_nll"] for m in means.values()])
        per_seed = [spearmanr([r[key] for r in taught if r["seed"] == s],
                              [r["student_nll"] for r in taught if r["seed"] == s])[0]
                    for s in sorted({r["seed"] for r in taught})]
        out[key] = {"rho": float(rho), "pvalue": float(pvalue), "per_seed": per_seed}
    return out


def print_synthetic(rows, corr):
    means = mean_by(rows, "teacher")
    n_seeds = len({r["seed"] for r in rows})
    print(f"\nsynthetic Gaussian mixture, means over {n_seeds} seeds (teacher metrics on the "
          "test set unless marked 'train')")
    print("| teacher | acc | ECE | NLL | ECE train | ‖p_t−p*‖² train | student NLL | "
          "student acc | student ECE | student ‖p_s−p*‖² |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cell = (lambda v: "–" if v is None else f"{v:.4f}")
    for name, m in means.items():
        print(f"| {name} | " + " | ".join(cell(m[k]) for k in (
            "teacher_accuracy", "teacher_ece", "teacher_nll", "teacher_ece_train",
            "teacher_sqdist_train", "student_nll", "student_accuracy", "student_ece",
            "student_sqdist")) + " |")
    print(f"\nSpearman correlation with the student's test NLL, across the {len(means) - 1} "
          "teachers (means over seeds; per-seed range in brackets)")
    print("| teacher property | rho | p-value | per seed |")
    print("|---|---|---|---|")
    for key, label in PROPERTIES.items():
        c = corr[key]
        print(f"| {label} | {c['rho']:+.3f} | {c['pvalue']:.3g} | "
              f"[{min(c['per_seed']):+.2f}, {max(c['per_seed']):+.2f}] |")


def splits(name, data_home, seeds):
    """Per seed, the training and test split of ``digits`` (a new 50/50 split each seed) or
    ``heloc`` (dao_tabular's one 70/30 split and scaling)."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return [train_test_split(X / 16.0, y, test_size=0.5, stratify=y, random_state=seed)
                for seed in range(seeds)]
    from .dao_tabular import load, split

    return [split(*load("heloc", data_home, None))] * seeds


def real_student(name, args, seed):
    if name == "digits":
        return MLPStudent(hidden_layer_sizes=(128,), max_epochs=args.digits_epochs, lr=1e-3,
                          batch_size=64, random_state=seed)
    return MLPStudent(hidden_layer_sizes=(64,), max_epochs=args.heloc_epochs, lr=1e-3,
                      batch_size=128, random_state=seed)


def part_real(name, args, log, data_home):
    depths = args.digits_depths if name == "digits" else args.heloc_depths
    try:
        data = splits(name, data_home, args.seeds)
    except DataFileNotFoundError as exc:
        log(f"teacher_quality: skipping {name}: {exc}")
        return []
    rows = []
    for seed, (X_tr, X_te, y_tr, y_te) in enumerate(data):
        start = time.perf_counter()
        student = real_student(name, args, seed).fit(X_tr, y_tr)
        labels_only = {"part": name, "method": "labels only", "depth": None, "seed": seed,
                       **scores(y_te, student.predict_proba(X_te), "student"),
                       "seconds": time.perf_counter() - start}
        for depth in depths:
            rows.append({**labels_only, "depth": depth})
            for calibration in CALIBRATIONS:
                start = time.perf_counter()
                teacher = RandomForestClassifier(args.forest_trees, max_depth=depth)
                model = CrossFitDistiller(teacher, real_student(name, args, seed),
                                          n_folds=args.folds, teacher_calibration=calibration,
                                          random_state=seed).fit(X_tr, y_tr)
                p_te = model.teacher_.predict_proba(X_te)
                oof = model.oof_proba_
                if model.teacher_calibrator_ is not None:
                    p_te = model.teacher_calibrator_.transform(p_te)
                    oof = model.teacher_calibrator_.transform(oof)
                rows.append({
                    "part": name, "method": str(calibration).lower(), "depth": depth,
                    "seed": seed, **scores(y_te, p_te, "teacher"),
                    "teacher_oof_ece": expected_calibration_error(y_tr, oof),
                    "teacher_temperature": getattr(model.teacher_calibrator_, "temperature_",
                                                   None),
                    **scores(y_te, model.predict_proba(X_te), "student"),
                    "seconds": time.perf_counter() - start})
        log(f"{name} seed {seed}: train {X_tr.shape}, test {X_te.shape}, {len(rows)} rows")
    return rows


def gap_closed(rows):
    """Per depth: fraction of the NLL gap (uncalibrated − labels only) each calibration closes.

    From the means over seeds, and per seed; ``None`` where there is no gap to close (the
    uncalibrated teacher's student is not worse than the labels-only one).
    """
    out = {}
    for depth in sorted({r["depth"] for r in rows}):
        nll = {}
        for r in rows:
            if r["depth"] == depth:
                nll.setdefault(r["method"], {})[r["seed"]] = r["student_nll"]
        seeds = sorted(nll["none"])

        def closed(cal, ss):
            gap = np.mean([nll["none"][s] - nll["labels only"][s] for s in ss])
            gain = np.mean([nll["none"][s] - nll[cal][s] for s in ss])
            return float(gain / gap) if gap > 0 else None

        out[str(depth)] = {cal: {"mean": closed(cal, seeds),
                                 "per_seed": [closed(cal, [s]) for s in seeds],
                                 "gap": float(np.mean([nll["none"][s] - nll["labels only"][s]
                                                       for s in seeds]))}
                           for cal in ("temperature", "isotonic")}
    return out


def print_real(name, rows, closed):
    n_seeds = len({r["seed"] for r in rows})
    fmt = (lambda vals: f"{np.mean(vals):.4f} ± {np.std(vals):.4f}")
    print(f"\n{name}: random-forest teacher cross-fitted into an MLP student, mean ± std over "
          f"{n_seeds} seeds (teacher columns after the calibration map)")
    print("| forest depth | student | NLL | acc | ECE | teacher NLL | teacher acc | "
          "teacher ECE | teacher OOF ECE |")
    print("|---|---|---|---|---|---|---|---|---|")
    for depth in sorted({r["depth"] for r in rows}):
        for method in ["labels only", "none", "temperature", "isotonic"]:
            group = [r for r in rows if r["depth"] == depth and r["method"] == method]
            cells = [fmt([r[k] for r in group]) for k in
                     ("student_nll", "student_accuracy", "student_ece")]
            if method == "labels only":
                cells += ["–"] * 4
            else:
                cells += [fmt([r[k] for r in group]) for k in
                          ("teacher_nll", "teacher_accuracy", "teacher_ece", "teacher_oof_ece")]
            label = method if method == "labels only" else f"teacher_calibration={method}"
            print(f"| {depth} | {label} | " + " | ".join(cells) + " |")
    print(f"\n{name}: fraction of the NLL gap (uncalibrated − labels only) closed "
          "(target ≥ 0.5)")
    print("| forest depth | gap (nats) | temperature | isotonic | per seed (temperature; "
          "isotonic) |")
    print("|---|---|---|---|---|")
    show = (lambda v: "–" if v is None else f"{v:.2f}")
    for depth, c in closed.items():
        print(f"| {depth} | {c['temperature']['gap']:+.4f} | {show(c['temperature']['mean'])} | "
              f"{show(c['isotonic']['mean'])} | "
              f"{', '.join(map(show, c['temperature']['per_seed']))}; "
              f"{', '.join(map(show, c['isotonic']['per_seed']))} |")


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks teacher_quality",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=["synthetic", "digits", "heloc"],
                        choices=["synthetic", "digits", "heloc"])
    parser.add_argument("--synthetic-seeds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of digits and heloc")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=20000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--forest-trees", type=int, default=100)
    parser.add_argument("--mlp-teacher-iter", type=int, default=300)
    parser.add_argument("--swag-epochs", type=int, default=100,
                        help="SGD epochs of the SWAG teacher (SWA phase: the second half)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--digits-depths", type=int, nargs="+", default=[6])
    parser.add_argument("--digits-epochs", type=int, default=100)
    parser.add_argument("--heloc-depths", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--heloc-epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (seconds), for the tests: overrides the sizes above")
    parser.add_argument("--data-home", default=None,
                        help="data folder; default $SKDISTILL_DATA, else ../shared/data if present")
    parser.add_argument("--json", default=None, help="write the raw rows and summaries here")
    args = parser.parse_args(argv)
    if args.quick:
        args.synthetic_seeds, args.seeds, args.n_train, args.n_test = 1, 1, 500, 2000
        args.hidden, args.epochs, args.forest_trees, args.mlp_teacher_iter = [32], 60, 10, 50
        args.digits_epochs, args.heloc_epochs, args.folds = 10, 3, 2
        args.swag_epochs = 10
        args.heloc_depths = args.heloc_depths[:1]

    data_home = resolve_data_home(args.data_home)
    torch.set_num_threads(1)
    print(f"teacher_quality: {vars(args)}", flush=True)
    log = (lambda msg: print(msg, flush=True))
    results = {"args": vars(args), "torch_threads": torch.get_num_threads(), "rows": []}
    start = time.perf_counter()
    with threadpool_limits(1):
        if "synthetic" in args.part:
            rows = part_synthetic(args, log)
            results["rows"] += rows
            results["synthetic_spearman"] = correlations(rows)
            print_synthetic(rows, results["synthetic_spearman"])
        for name in ("digits", "heloc"):
            if name in args.part:
                rows = part_real(name, args, log, data_home)
                if rows:
                    results["rows"] += rows
                    results[f"{name}_gap_closed"] = gap_closed(rows)
                    print_real(name, rows, results[f"{name}_gap_closed"])
    results["seconds"] = time.perf_counter() - start
    print(f"\nteacher_quality: {results['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0
