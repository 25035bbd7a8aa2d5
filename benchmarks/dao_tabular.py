"""Dao et al. (2021) tabular protocol: cross-fitting and gamma correction with random-forest students.

``python -m benchmarks dao_tabular --dataset heloc|adult|magic|higgs [--part ...]``

Parts (``--part``, several allowed):

- ``main``: teacher RandomForest (``--teacher-trees``, 500 in the paper) cross-fitted over
  ``--folds`` folds with :class:`~skdistill.CrossFitDistiller` (``n_jobs``), random-forest
  regressor students of ``--student-trees`` trees, ``--repeats`` repeats: scratch (regressor on
  the labels), KD (log p of the teacher fitted on everything, no cross-fitting), cross-fit KD
  (out-of-fold p) and enhanced (gamma-corrected out-of-fold p, ``gamma_alpha`` chosen by
  inner cross-validated AUC).
- ``underfit``: teacher RandomForest(100 trees, ``max_depth`` in ``--depths``), cross-fitted,
  student of 10 trees: KD (cross-fit, p scale) against enhanced.
- ``mlp``: the ``main`` comparison with an :class:`~skdistill.MLPStudent` instead of the forest.
- ``speed``: wall time of the fold-teacher fits with ``n_jobs=2`` over ``n_jobs=1`` (each
  forest single-threaded), in one process; run it under ``flock``.

The teachers are fitted once per part; every student then reuses the distiller's
``oof_proba_`` through :func:`skdistill.losses.corrected_targets`, exactly the targets
``CrossFitDistiller.fit`` hands its student (the same arrays), so that
5 repeats x 4 student sizes do not refit 10 teachers each.

Data follow the authors' code (``microsoft/semiparametric-distillation``): 70/30 split with seed
2357 and StandardScaler fitted on the training part. HELOC: special codes -7 and -8 set to -9,
rows where every feature is -9 dropped. Adult: the 48,842 rows of adult.data + adult.test (the
OpenML "Adult" v2 set the authors fetched), categoricals as ordinal codes and "?" mean-imputed
(their SimpleImputer), not one-hot. MAGIC and HIGGS are skipped with a message when their files
are missing.
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from skdistill import CrossFitDistiller, MLPStudent
from skdistill.datasets import (DataFileNotFoundError, load_adult, load_heloc, load_higgs,
                                load_magic)
from skdistill.engine import Objective
from skdistill.losses import SoftTargetCrossEntropy, corrected_targets

from . import REPO, resolve_data_home

SEED = 2357
ALPHAS = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
#: The paper's figures (Dao et al. 2021, via DESIGN.md): AUC at 1 and 10 student trees.
PAPER = {
    "adult": {"teacher": .910, "scratch": (.740, .882), "kd": (.888, .908),
              "crossfit": (.899, .911), "enhanced": (.900, .910)},
    "heloc": {"teacher": .792, "scratch": (.625, .753), "kd": (.737, .780),
              "crossfit": (.776, .790), "enhanced": (.776, .790)},
}


def load(name, data_home, higgs_rows):
    """``X, y`` of a benchmark set, preprocessed as in the authors' code."""
    if name == "heloc":
        X, y = load_heloc(data_home=data_home, return_X_y=True)
        X = np.where(np.isin(X, [-7, -8]), -9, X)
        keep = (X != -9).any(axis=1)
        return X[keep], y[keep]
    if name == "adult":
        X, y = load_adult(data_home=data_home, return_X_y=True)
        return SimpleImputer().fit_transform(X), y
    if name == "magic":
        return load_magic(data_home=data_home, return_X_y=True)
    X, y = load_higgs(data_home=data_home, return_X_y=True, n_rows=higgs_rows)
    return SimpleImputer().fit_transform(X), y


def split(X, y):
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=SEED)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def regressor_auc(X, t, X_te, y_te, n_trees, seed, scale, n_jobs):
    """Test AUC of a random-forest regressor student fitted to targets ``t``."""
    student = RandomForestRegressor(n_estimators=n_trees, random_state=seed, n_jobs=n_jobs)
    out = student.fit(X, t).predict(X_te)
    return roc_auc_score(y_te, out if scale == "p" else np.exp(out))


def choose_alpha(X, y, proba, n_trees, n_jobs, alphas=ALPHAS, n_splits=3):
    """``gamma_alpha`` with the best inner cross-validated AUC (the paper's GridSearchCV)."""
    onehot = np.eye(2)[y]
    scores = []
    for alpha in alphas:
        t = corrected_targets(onehot, proba, alpha, "p")[:, 1]
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=SEED).split(X, y)
        scores.append(np.mean([regressor_auc(X[tr], t[tr], X[va], y[va], n_trees, 0, "p",
                                             n_jobs) for tr, va in folds]))
    return alphas[int(np.argmax(scores))], dict(zip(map(str, alphas), scores))


def crossfit_teachers(teacher, X, y, folds, n_jobs):
    """Fit the fold teachers and the full teacher once with CrossFitDistiller."""
    model = CrossFitDistiller(teacher, DummyRegressor(), n_folds=folds, stratify=False,
                              n_jobs=n_jobs, random_state=SEED).fit(X, y)
    return model


_FULL_TEACHERS = {}


def full_teachers(args, X, y):
    """The ``--teacher-trees`` forests, cross-fitted once per run (``main`` and ``mlp`` share)."""
    if "model" not in _FULL_TEACHERS:
        teacher = RandomForestClassifier(n_estimators=args.teacher_trees, n_jobs=1)
        _FULL_TEACHERS["model"] = crossfit_teachers(teacher, X, y, args.folds, args.n_jobs)
    return _FULL_TEACHERS["model"]


def part_main(args, data, log):
    X, X_te, y, y_te = data
    t0 = time.perf_counter()
    model = full_teachers(args, X, y)
    log(f"teachers fitted in {time.perf_counter() - t0:.0f} s")
    p_in = model.teacher_.predict_proba(X)[:, 1]  # vanilla KD: the teacher saw these points
    p_oof = model.oof_proba_[:, 1]
    onehot = np.eye(2)[y]
    teacher_auc = roc_auc_score(y_te, model.teacher_.predict_proba(X_te)[:, 1])
    alpha, cv = choose_alpha(X, y, np.column_stack([1 - p_oof, p_oof]), 10, args.n_jobs)
    log(f"teacher AUC {teacher_auc:.4f}; gamma_alpha chosen {alpha} (inner CV {cv})")
    targets = {
        "scratch": (y.astype(float), "p"),
        "kd": (corrected_targets(onehot, np.column_stack([1 - p_in, p_in]), 0, "logp")[:, 1],
               "logp"),
        "crossfit": (p_oof, "p"),
        "enhanced": (corrected_targets(onehot, model.oof_proba_, alpha, "p")[:, 1], "p"),
    }
    results = {"teacher": teacher_auc, "gamma_alpha": alpha, "alpha_cv": cv,
               "student_trees": args.student_trees}
    for name, (t, scale) in targets.items():
        results[name] = [[regressor_auc(X, t, X_te, y_te, n, r, scale, args.n_jobs)
                          for n in args.student_trees] for r in range(args.repeats)]
        log(f"{name:9s} " + " ".join(f"{m:.4f}" for m in np.mean(results[name], axis=0)))
    results["seconds"] = time.perf_counter() - t0
    return results


def part_underfit(args, data, log):
    X, X_te, y, y_te = data
    t0 = time.perf_counter()
    results = {"depths": args.depths, "teacher": [], "kd": [], "enhanced": [], "gamma_alpha": []}
    for depth in args.depths:
        teacher = RandomForestClassifier(n_estimators=100, max_depth=depth, n_jobs=1)
        model = crossfit_teachers(teacher, X, y, args.folds, args.n_jobs)
        onehot = np.eye(2)[y]
        alpha, _ = choose_alpha(X, y, model.oof_proba_, 10, args.n_jobs)
        kd = model.oof_proba_[:, 1]
        enhanced = corrected_targets(onehot, model.oof_proba_, alpha, "p")[:, 1]
        results["teacher"].append(
            roc_auc_score(y_te, model.teacher_.predict_proba(X_te)[:, 1]))
        results["gamma_alpha"].append(alpha)
        for name, t in (("kd", kd), ("enhanced", enhanced)):
            results[name].append([regressor_auc(X, t, X_te, y_te, 10, r, "p", args.n_jobs)
                                  for r in range(args.repeats)])
        log(f"depth {depth}: teacher {results['teacher'][-1]:.4f} "
            f"KD {np.mean(results['kd'][-1]):.4f} enhanced {np.mean(results['enhanced'][-1]):.4f}"
            f" (gamma_alpha {alpha})")
    results["seconds"] = time.perf_counter() - t0
    return results


def part_mlp(args, data, log):
    X, X_te, y, y_te = data
    t0 = time.perf_counter()
    model = full_teachers(args, X, y)
    onehot = np.eye(2)[y]
    p_in = model.teacher_.predict_proba(X)
    alpha, _ = choose_alpha(X, y, model.oof_proba_, 10, args.n_jobs)
    targets = {
        "scratch": onehot,
        "kd": p_in,
        "crossfit": model.oof_proba_,
        "enhanced": corrected_targets(onehot, model.oof_proba_, alpha, "p"),
    }
    results = {"gamma_alpha": alpha, "hidden_layer_sizes": args.mlp_hidden,
               "max_epochs": args.mlp_epochs}
    for name, t in targets.items():
        aucs = []
        for r in range(args.repeats):
            student = MLPStudent(hidden_layer_sizes=tuple(args.mlp_hidden), lr=1e-3,
                                 max_epochs=args.mlp_epochs, batch_size=256, random_state=r)
            student.fit_objective(X, y, Objective(SoftTargetCrossEntropy(reduction="none"),
                                                  t.astype(np.float32)))
            aucs.append(roc_auc_score(y_te, student.predict_proba(X_te)[:, 1]))
        results[name] = aucs
        log(f"MLP {name:9s} {np.mean(aucs):.4f} +- {np.std(aucs):.4f}")
    results["seconds"] = time.perf_counter() - t0
    return results


def part_speed(args, data, log):
    X, _, y, _ = data
    teacher = RandomForestClassifier(n_estimators=args.speed_trees, n_jobs=1)
    base = CrossFitDistiller(teacher, DummyRegressor(), n_folds=args.folds, stratify=False,
                             refit_teacher=False, random_state=SEED)
    times = {1: [], 2: []}
    load_before = os.getloadavg()
    clone(base).set_params(n_jobs=2, n_folds=2).fit(X[:500], y[:500])  # start joblib's workers
    for _ in range(args.speed_rounds):
        for n_jobs in (1, 2):
            start = time.perf_counter()
            clone(base).set_params(n_jobs=n_jobs).fit(X, y)
            times[n_jobs].append(time.perf_counter() - start)
    ratio = float(np.median(times[2]) / np.median(times[1]))
    # The ratio only means something when the other jobs on the machine leave both cores free.
    load = (load_before, os.getloadavg())
    log(f"fold teachers ({args.folds} x RF {args.speed_trees} trees): n_jobs=1 "
        f"{np.median(times[1]):.1f} s, n_jobs=2 {np.median(times[2]):.1f} s, ratio {ratio:.3f}; "
        f"load average (1/5/15 min) before {load[0]}, after {load[1]}")
    return {"n_jobs_1": times[1], "n_jobs_2": times[2], "ratio": ratio,
            "trees": args.speed_trees, "loadavg": load}


def plot(name, results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = results["main"]
    trees = main["student_trees"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    labels = {"scratch": "Student without KD", "kd": "KD student (log p, no cross-fit)",
              "crossfit": "Cross-fit KD student", "enhanced": "Enhanced KD student"}
    for (key, label), color in zip(labels.items(), "bcgr"):
        runs = np.asarray(main[key])
        mean, se = runs.mean(0), runs.std(0) / np.sqrt(len(runs))
        ax.plot(trees, mean, color=color, label=label)
        ax.fill_between(trees, mean - se, mean + se, color=color, alpha=0.15)
        if name in PAPER:
            ax.scatter([1, 10], PAPER[name][key], color=color, marker="x")
    ax.axhline(main["teacher"], color="m", ls="--", label="Teacher (ours)")
    if name in PAPER:
        ax.axhline(PAPER[name]["teacher"], color="m", ls=":", label="Teacher (paper)")
    ax.set_xscale("log")
    ax.set_xticks(trees, [str(t) for t in trees])
    ax.set_xlabel("student's number of trees")
    ax.set_ylabel("test AUC")
    ax.set_title(f"{name}: lines ours, x = Dao et al. (2021) figures")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks dao_tabular",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["heloc", "adult", "magic", "higgs"],
                        default="heloc")
    parser.add_argument("--part", nargs="+", default=["main", "underfit", "mlp"],
                        choices=["main", "underfit", "mlp", "speed"])
    parser.add_argument("--teacher-trees", type=int, default=500)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--student-trees", type=int, nargs="+", default=[1, 5, 10, 40])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 5, 10, 20])
    parser.add_argument("--mlp-hidden", type=int, nargs="+", default=[32])
    parser.add_argument("--mlp-epochs", type=int, default=10)
    parser.add_argument("--speed-trees", type=int, default=100)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--higgs-rows", type=int, default=100_000)
    parser.add_argument("--data-home", default=None,
                        help="data folder; default $SKDISTILL_DATA, else ../shared/data if present")
    parser.add_argument("--out", default=str(REPO / "benchmarks"))
    args = parser.parse_args(argv)

    data_home = resolve_data_home(args.data_home)
    torch.set_num_threads(1)
    try:
        X, y = load(args.dataset, data_home, args.higgs_rows)
    except DataFileNotFoundError as exc:
        print(f"dao_tabular: skipping {args.dataset}: {exc}")
        return 0
    data = split(X, y)
    print(f"dao_tabular {args.dataset}: train {data[0].shape}, test {data[1].shape}; "
          f"{vars(args)}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"args": vars(args), "torch_threads": torch.get_num_threads()}
    parts = {"main": part_main, "underfit": part_underfit, "mlp": part_mlp, "speed": part_speed}
    for part in args.part:
        results[part] = parts[part](args, data, lambda msg: print(msg, flush=True))
        suffix = "_".join(args.part)
        with open(out / f"dao_tabular_{args.dataset}_{suffix}.json", "w") as f:
            json.dump(results, f, indent=1, default=float)
    if "main" in results:
        plot(args.dataset, results, out / f"dao_tabular_{args.dataset}.png")
    return 0
