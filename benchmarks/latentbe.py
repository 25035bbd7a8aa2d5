"""LatentBE benchmark (Nam et al. 2022) on Fashion-MNIST: ensemble distillation methods and cost.

``python -m benchmarks latentbe --part accuracy`` trains, per seed, a DE-4 teacher of
MLPs and distils it by KD, AE-KD, Proxy-EnD2, EnD2, LatentBE (one-to-one), LatentBE +
ConfODS and LatentBE + TDiv-SDiv; the unmerged BatchEnsemble of the last run is scored too
(KD + BE + TDiv-SDiv). The "DKD" row distils the same teacher into the same MLP by
decoupled KD (Zhao et al. 2022) with ``KnowledgeDistiller(FrozenEstimator(teacher), student,
loss="dkd")``: the paper's recipe ``CE + TCKD + beta NCKD`` (``alpha=0.5``, ``dkd_alpha=1``,
``dkd_beta`` from ``--dkd-beta``, 8 by default; up to a factor 2) at the rows' temperature;
"DKD, teacher only" drops the labels' term (``alpha=1``), as the KD row does. It prints ACC /
NLL / ECE / cNLL / cECE (temperature fitted on a held-out part of the training split) as mean
+- std over seeds, writes the per-seed numbers to JSON and an entropy histogram (Fashion-MNIST
test vs MNIST test as out-of-distribution) to PNG. ``--ood`` also scores how well each model
tells the MNIST test rows from the Fashion-MNIST ones (AUROC) by its predictive entropy, and
by its mutual information where it has one (the DE-4's members, a Dirichlet student).

``--part runtime`` (run it under ``flock /tmp/skdistill-bench.lock``) times inference per 1,000
rows of the DE-4, a single MLP, the merged LatentBE network and the unmerged BatchEnsemble with
``torch.set_num_threads(1)``, plus training time of each distiller for one seed.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score

from skdistill.calibration import apply_temperature, fit_temperature
from skdistill.datasets import load_fashion_mnist, load_mnist
from skdistill.distillers import EnsembleDistiller, KnowledgeDistiller
from skdistill.metrics import entropy, expected_calibration_error, negative_log_likelihood
from skdistill.students import CNNStudent, LatentBECNNStudent, LatentBEStudent, MLPStudent
from skdistill.teachers import DeepEnsembleTeacher

#: row label -> (student kind, method, perturbation)
METHODS = {
    "KD": ("mlp", "kd", None),
    "AE-KD": ("mlp", "ae-kd", None),
    "Proxy-EnD2": ("mlp", "proxy-end2", None),
    "DKD": ("mlp", "dkd", None),
    "DKD, teacher only": ("mlp", "dkd-teacher", None),
    "EnD2": ("mlp", "end2", None),
    "KD + LatentBE": ("be", "one-to-one", None),
    "KD + LatentBE + ConfODS": ("be", "one-to-one", "confods"),
    "KD + LatentBE + TDiv-SDiv": ("be", "one-to-one", "tdiv-sdiv"),
}
UNMERGED = "KD + BE (unmerged) + TDiv-SDiv"
#: Nam et al. (2022), WRN-28-4 on CIFAR-100, DE-4 teacher (the paper's figures).
PAPER = {
    "DE-4 teacher": (81.37, 0.706, None),
    "KD": (79.09, 1.038, 0.130),
    "KD + LatentBE": (79.46, 0.993, 0.124),
    "KD + LatentBE + TDiv-SDiv": (80.02, 0.792, 0.067),
}


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks latentbe")
    parser.add_argument("--part", choices=["accuracy", "runtime"], default="accuracy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-val", type=int, default=2000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--arch", choices=["mlp", "cnn"], default="mlp",
                        help="cnn: the GPED 'mnist' CNN (Conv10-Conv20-FC80) for every network")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                        metavar="METHOD", help="subset of the distillation rows")
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--student-epochs", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--prior-strength", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dkd-beta", type=float, default=8.0,
                        help="weight of DKD's non-target term (the paper's CIFAR-100 value)")
    parser.add_argument("--ood", action="store_true",
                        help="also score telling MNIST from Fashion-MNIST test rows (AUROC)")
    parser.add_argument("--out", default="benchmarks/latentbe")
    return parser.parse_args(argv)


def _data(n_train, n_val, seed):
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    Xt, yt = load_fashion_mnist(subset="test", return_X_y=True)
    Xo, _ = load_mnist(subset="test", return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(X))
    tr, va = idx[:n_train], idx[n_train:n_train + n_val]
    return X[tr], y[tr], X[va], y[va], Xt, yt, Xo


def _scores(p_val, y_val, p_test, y_test):
    T = fit_temperature(p_val, y_val)
    pc = apply_temperature(p_test, T)
    return {
        "acc": float(np.mean(p_test.argmax(1) == y_test)) * 100,
        "nll": negative_log_likelihood(y_test, p_test),
        "ece": expected_calibration_error(y_test, p_test),
        "cnll": negative_log_likelihood(y_test, pc),
        "cece": expected_calibration_error(y_test, pc),
    }


def _mlp(args, seed, epochs):
    if args.arch == "cnn":
        return CNNStudent(max_epochs=epochs, lr=1e-3, random_state=seed)
    return MLPStudent(hidden_layer_sizes=tuple(args.hidden), max_epochs=epochs, lr=1e-3,
                      random_state=seed)


def _be(args, seed):
    if args.arch == "cnn":
        return LatentBECNNStudent(n_members=4, max_epochs=args.student_epochs, lr=1e-3,
                                  prior_strength=args.prior_strength, random_state=seed)
    return LatentBEStudent(n_members=4, hidden_layer_sizes=tuple(args.hidden),
                           max_epochs=args.student_epochs, lr=1e-3,
                           prior_strength=args.prior_strength, random_state=seed)


def _distil(args, teacher, label, seed, X, y):
    kind, method, perturbation = METHODS[label]
    student = _mlp(args, seed, args.student_epochs) if kind == "mlp" else _be(args, seed)
    start = time.perf_counter()
    if method.startswith("dkd"):  # decoupled KD of the ensemble's mean
        # "dkd": the labels' CE as in the paper; "dkd-teacher": none, as the KD row
        alpha = 0.5 if method == "dkd" else 1.0
        model = KnowledgeDistiller(FrozenEstimator(teacher), student, loss="dkd",
                                   temperature=args.temperature, alpha=alpha, dkd_alpha=1.0,
                                   dkd_beta=args.dkd_beta, random_state=seed).fit(X, y)
        return model, time.perf_counter() - start
    model = EnsembleDistiller(FrozenEstimator(teacher), student, method=method,
                              perturbation=perturbation, temperature=args.temperature,
                              random_state=seed).fit(X, y)
    return model, time.perf_counter() - start


def _epistemic(model, X):
    """The mutual information of a model that has one (the ensemble's members, a Dirichlet
    student), else None."""
    if isinstance(model, DeepEnsembleTeacher):
        members = model.sample_proba(X)
        return entropy(members.mean(0)) - entropy(members).mean(0)
    if isinstance(model, EnsembleDistiller) and model.method in ("end2", "proxy-end2"):
        return model.predict_uncertainty(X).epistemic
    return None


def _ood(model, Xt, Xo):
    """AUROC of telling MNIST (out of distribution) from Fashion-MNIST test rows by the
    predictive entropy, and by the mutual information where the model has one."""
    is_ood = np.r_[np.zeros(len(Xt)), np.ones(len(Xo))]
    scores = {"ood_auroc_entropy": float(roc_auc_score(is_ood, np.r_[
        entropy(model.predict_proba(Xt)), entropy(model.predict_proba(Xo))]))}
    mi_t = _epistemic(model, Xt)
    if mi_t is not None:
        scores["ood_auroc_mi"] = float(roc_auc_score(is_ood, np.r_[mi_t, _epistemic(model, Xo)]))
    return scores


def _accuracy(args):
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results, entropies, train_time = [], {}, {}
    for seed in range(args.seeds):
        X, y, Xv, yv, Xt, yt, Xo = _data(args.n_train, args.n_val, seed)
        start = time.perf_counter()
        teacher = DeepEnsembleTeacher(_mlp(args, seed, args.teacher_epochs), n_members=4,
                                      random_state=seed).fit(X, y)
        train_time.setdefault("DE-4 teacher", []).append(time.perf_counter() - start)
        models = {"DE-4 teacher": teacher}
        for label in args.methods:
            models[label], seconds = _distil(args, teacher, label, seed, X, y)
            train_time.setdefault(label, []).append(seconds)
            print(f"seed {seed} {label}: {seconds:.0f} s", flush=True)
        row = {}
        for label, model in models.items():
            row[label] = _scores(model.predict_proba(Xv), yv, model.predict_proba(Xt), yt)
            if args.ood:
                row[label].update(_ood(model, Xt, Xo))
        if "KD + LatentBE + TDiv-SDiv" in models:
            be = models["KD + LatentBE + TDiv-SDiv"].student_
            row[UNMERGED] = _scores(be.ensemble_proba(Xv).mean(0), yv,
                                    be.ensemble_proba(Xt).mean(0), yt)
        results.append(row)
        if seed == 0:
            for label in ("DE-4 teacher", "KD", "KD + LatentBE + TDiv-SDiv"):
                if label not in models:
                    continue
                entropies[label] = (entropy(models[label].predict_proba(Xt)).tolist(),
                                    entropy(models[label].predict_proba(Xo)).tolist())
    _report(results, train_time)
    Path(f"{out}.json").write_text(json.dumps(
        {"args": vars(args), "results": results, "train_seconds": train_time}, indent=1))
    _plot_entropy(entropies, f"{out}_entropy.png")


def _report(results, train_time):
    labels = list(results[0])
    print("\n| method | ACC (%) | NLL | ECE | cNLL | cECE | train s (mean) |")
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        cells = []
        for key in ("acc", "nll", "ece", "cnll", "cece"):
            vals = np.array([r[label][key] for r in results])
            fmt = "{:.2f} ± {:.2f}" if key == "acc" else "{:.4f} ± {:.4f}"
            cells.append(fmt.format(vals.mean(), vals.std()))
        secs = train_time.get(label)
        cells.append(f"{np.mean(secs):.0f}" if secs else "(same model)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if "ood_auroc_entropy" in results[0][labels[0]]:
        print("\nMNIST test vs Fashion-MNIST test (out-of-distribution AUROC, mean ± std)")
        print("| method | by predictive entropy | by mutual information |")
        print("|---|---|---|")
        for label in labels:
            cells = []
            for key in ("ood_auroc_entropy", "ood_auroc_mi"):
                vals = np.array([r[label][key] for r in results if key in r[label]])
                cells.append(f"{vals.mean():.3f} ± {vals.std():.3f}" if vals.size else "–")
            print(f"| {label} | " + " | ".join(cells) + " |")


def _plot_entropy(entropies, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(entropies), figsize=(4 * len(entropies), 3), sharey=True,
                             squeeze=False)
    axes = axes[0]
    bins = np.linspace(0, np.log(10), 31)
    for ax, (label, (ind, ood)) in zip(axes, entropies.items()):
        ax.hist(ind, bins=bins, alpha=0.6, density=True, label="Fashion-MNIST test (ID)")
        ax.hist(ood, bins=bins, alpha=0.6, density=True, label="MNIST test (OOD)")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("predictive entropy (nats)")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def _time_per_1000(fn, X, repeats=20):
    fn(X)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 * 1000 / len(X)


def _runtime(args):
    torch.set_num_threads(args.threads)
    X, y, Xv, yv, Xt, yt, _ = _data(args.n_train, args.n_val, 0)
    train = {}
    start = time.perf_counter()
    teacher = DeepEnsembleTeacher(_mlp(args, 0, args.teacher_epochs), n_members=4,
                                  random_state=0).fit(X, y)
    train["DE-4 teacher"] = time.perf_counter() - start
    start = time.perf_counter()
    single = _mlp(args, 0, args.teacher_epochs).fit(X, y)
    train["single MLP (labels)"] = time.perf_counter() - start
    models = {}
    for label in ("KD", "KD + LatentBE", "KD + LatentBE + TDiv-SDiv"):
        models[label], train[label] = _distil(args, teacher, label, 0, X, y)
    be = models["KD + LatentBE + TDiv-SDiv"].student_
    Xb = torch.as_tensor(Xt[:1000])
    de_modules = teacher.modules_

    def de_forward(x):
        with torch.inference_mode():
            return torch.stack([torch.softmax(m(x), -1) for m in de_modules]).mean(0)

    def forward(module):
        def run(x):
            with torch.inference_mode():
                return torch.softmax(module(x), -1)
        return run

    rows = {
        "DE-4 (4 MLPs)": de_forward,
        "single MLP": forward(single.module_),
        "LatentBE (merged)": forward(be.merged_module_),
        "BE (unmerged, 4 members)": forward(be.module_),
    }
    base = None
    print(f"\ninference, torch threads={args.threads}, batch of 1000 Fashion-MNIST test rows")
    print("| model | ms / 1,000 rows (torch forward) | ratio to single MLP | "
          "ms / 1,000 rows (predict_proba) |")
    print("|---|---|---|---|")
    estimators = {"DE-4 (4 MLPs)": teacher, "single MLP": single,
                  "LatentBE (merged)": be, "BE (unmerged, 4 members)": None}
    timings = {}
    for label, fn in rows.items():
        ms = _time_per_1000(fn, Xb)
        base = ms if label == "single MLP" else base
        est = estimators[label]
        ms_est = _time_per_1000(est.predict_proba, Xt[:1000]) if est is not None else None
        timings[label] = (ms, ms_est)
    for label, (ms, ms_est) in timings.items():
        est_cell = f"{ms_est:.2f}" if ms_est is not None else "-"
        print(f"| {label} | {ms:.2f} | {ms / base:.2f}x | {est_cell} |")
    print(f"\ntraining (one seed, {len(X)} rows; teacher members {args.teacher_epochs} epochs, "
          f"students {args.student_epochs} epochs)")
    print("| model | wall s | s / epoch |\n|---|---|---|")
    for label, seconds in train.items():
        epochs = args.student_epochs if label.startswith("KD") else args.teacher_epochs
        print(f"| {label} | {seconds:.1f} | {seconds / epochs:.2f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}_runtime.json").write_text(json.dumps(
        {"args": vars(args), "inference_ms_per_1000": timings, "train_seconds": train},
        indent=1))


def main(argv):
    args = _parse(argv)
    if args.part == "accuracy":
        torch.set_num_threads(args.threads)
        _accuracy(args)
    else:
        _runtime(args)
    return 0
