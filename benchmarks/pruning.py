"""Student search against group-lasso pruning under GPED (Vadera et al. §3.3, Figure 2).

``python -m benchmarks pruning [--models fcnn cnn] [--masks 0 15] [--speed]
[--tabular] [--epochs 30] [--json FILE] [--plot FILE] [--save-students FILE]``, and
``python -m benchmarks pruning --speed-only FILE`` to time saved students alone (on an
idle machine, after the long quality run).

Data: the MNIST test split (``$SKDISTILL_DATA``), 8,000 images for the teacher and the
distillation set and 2,000 held out, as in ``gped_mnist``; ``--masks 15`` occludes one random
15 x 15 square per image (29 % of the pixels, the paper's occlusion setting).

For each mask one SGLD teacher (FCNN 784-400-400, 16,000 steps at 3e-5, burn-in 1,000, every
100th state kept) is run once; its kept samples are then distilled by GPED (predictive and
expected-entropy heads, U_o, 100 images per step, one sample per step, cycled) into:

- **width search**: every student of a K1 x K2 grid (FCNN ``784-400·K1-400·K2-10``, CNN
  ``Conv(⌊10·K1⌋,4)-Pool-Conv(⌊20·K1⌋,4)-Pool-FC(⌊80·K2⌋)-10``);
- **pruning**: the largest student (K1 = K2 = 1) trained with group lasso for each λ of a grid,
  pruned at ε = 1e-3 and fine-tuned (learning rate restarted at 1e-4 for FCNNs, 1e-3 for CNNs,
  as in the paper), the last fifth of the epochs.

Each row reports test NLL, accuracy and entropy MAE (against the teacher's Monte Carlo expected
entropy) with the deployed network's FLOPs per image and parameter count. ``--speed`` times
``predict_proba`` of each pruned student against the unpruned one (same process, one thread)
next to their FLOPs ratio; ``--tabular`` adds ``CrossFitDistiller`` with a pruned
``MLPStudent`` on HELOC. Results: ``benchmarks/RESULTS.md``, section "Pruning".
"""
import argparse
import copy
import json
import pickle
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from torch.nn.utils import vector_to_parameters

from skdistill.complexity import count_flops, count_parameters
from skdistill.datasets import occlude
from skdistill.distillers import GPEDDistiller
from skdistill.metrics import entropy_mae, negative_log_likelihood
from skdistill.model_selection import deployed_network, pareto_front
from skdistill.students import CNNStudent, MLPStudent
from skdistill.teachers import SGLDTeacher
from skdistill.teachers.sgld import PosteriorSample

from .gped_mnist import load

PAPER = ("CNN student, MNIST, 29 % occlusion (Vadera et al. Figure 2): baseline student "
         "(K1 = K2 = 1) NLL .469 at 0.48 MFLOPs; width search and pruning both reach about .30, "
         "pruning with models below 50 % of the baseline's FLOPs")
FCNN_GRID = (0.1, 0.25, 0.5, 1.0)
CNN_GRID = (0.25, 0.5, 1.0, 1.5)
LAMBDAS = {"fcnn": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
           "cnn": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)}


class KeptSamples(ClassifierMixin, BaseEstimator):
    """A fitted SGLD teacher's kept posterior samples as a fixed set of samples.

    GPED cycles a teacher without a chain, so many students can be distilled from one chain
    run (each student step takes the next kept sample).
    """

    def __init__(self, teacher=None):
        self.teacher = teacher

    def fit(self, X=None, y=None):
        self.classes_ = self.teacher.classes_
        self.module_ = copy.deepcopy(self.teacher.module_).eval()
        return self

    def iter_samples(self, X, y, sample_weight=None):
        params = [p for p in self.module_.parameters() if p.requires_grad]
        for theta in self.teacher.samples_:
            with torch.no_grad():
                vector_to_parameters(theta, params)
            yield PosteriorSample(self.module_)

    def predict_proba(self, X):
        return self.teacher.predict_proba(X)


def make_student(model, k1, k2, epochs, lam=0.0):
    prune = dict(group_lasso=lam, fine_tune_lr=1e-4 if model == "fcnn" else 1e-3) if lam else {}
    if model == "cnn":
        return CNNStudent("mnist", width_multiplier=(k1, k2), input_shape=(1, 28, 28), lr=1e-3,
                          max_epochs=epochs, **prune)
    return MLPStudent(hidden_layer_sizes=(400, 400), width_multiplier=(k1, k2), lr=1e-3,
                      max_epochs=epochs, **prune)


def distil(teacher, student, Xa, ya, Xb, yb, reference, seed):
    t0 = time.perf_counter()
    model = GPEDDistiller(teacher, student, target=["predictive", "entropy"],
                          distill_batch_size=100, random_state=seed).fit(Xa, ya)
    seconds = time.perf_counter() - t0
    s = model.student_
    p = model.predict_proba(Xb)
    return model, dict(
        nll=negative_log_likelihood(yb, p), accuracy=float(np.mean(p.argmax(1) == yb)),
        entropy_mae=entropy_mae(reference, model.predict_expectation(Xb, "entropy")),
        flops=count_flops(*deployed_network(s, Xb)), parameters=count_parameters(s),
        hidden=list(getattr(s, "channels_", ())) + list(s.hidden_layer_sizes_),
        n_pruned_units=s.n_pruned_units_, seconds=seconds)


def quality(args):
    Xtr, ytr, Xte, yte = load("mnist")
    if args.quick:  # a smoke run of every step (tests)
        Xtr, ytr, Xte, yte = Xtr[:800], ytr[:800], Xte[:300], yte[:300]
    rows, kept = [], {}
    for mask in args.masks:
        Xa = occlude(Xtr, mask, random_state=1) if mask else Xtr
        Xb = occlude(Xte, mask, random_state=2) if mask else Xte
        t0 = time.perf_counter()
        chain = SGLDTeacher(hidden_layer_sizes=(400, 400), step_size=3e-5, prior_precision=10.0,
                            batch_size=100, n_iter=args.n_iter, burn_in=args.burn_in,
                            thinning=100,
                            random_state=args.seed).fit(Xa, ytr)
        p_t = chain.predict_proba(Xb)
        teacher_nll = negative_log_likelihood(yte, p_t)
        reference = chain.predict_expectation(Xb, "entropy")
        # the entropy MAE of a head that outputs 0 everywhere: the reference for entropy MAE
        print(f"mask {mask}: teacher NLL {teacher_nll:.3f}, acc "
              f"{np.mean(p_t.argmax(1) == yte):.3f}, mean expected entropy "
              f"{reference.mean():.4f}, {len(chain.samples_)} samples, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        teacher = FrozenEstimator(KeptSamples(chain).fit())
        for model in args.models:
            grid = FCNN_GRID if model == "fcnn" else CNN_GRID
            lambdas = LAMBDAS[model]
            if args.quick:
                grid, lambdas = (0.25, 1.0), lambdas[-2:]
            runs = [("width", k1, k2, 0.0) for k1 in grid for k2 in grid]
            runs += [("pruning", 1.0, 1.0, lam) for lam in lambdas]
            for method, k1, k2, lam in runs:
                student = make_student(model, k1, k2, args.epochs, lam)
                fitted, row = distil(teacher, student, Xa, ytr, Xb, yte, reference, args.seed)
                row = dict(mask=mask, model=model, method=method, k1=k1, k2=k2, lam=lam,
                           teacher_nll=teacher_nll, **row)
                rows.append(row)
                if method == "pruning" or (k1, k2) == (1.0, 1.0):
                    kept[(mask, model, method, lam)] = fitted.student_
                print("| {mask} | {model} | {method} | {k1} | {k2} | {lam:g} | {hidden} | "
                      "{flops} | {parameters} | {nll:.3f} | {accuracy:.3f} | {entropy_mae:.4f} | "
                      "{seconds:.0f} |".format(**row), flush=True)
    return rows, kept, Xte


def speed(kept, Xte, repeats):
    """predict_proba time of each pruned student over the unpruned one, against FLOPs."""
    torch.set_num_threads(1)
    X = Xte[:2000]
    out = []
    for (mask, model, method, lam), student in kept.items():
        if method != "pruning":
            continue
        base = kept[(mask, model, "width", 0.0)]
        times = {"base": [], "pruned": []}
        for est in (base, student):
            est.predict_proba(X)
        for _ in range(repeats):  # interleaved, so drifts in the machine's load hit both
            for key, est in (("base", base), ("pruned", student)):
                t0 = time.perf_counter()
                est.predict_proba(X)
                times[key].append(time.perf_counter() - t0)
        f = count_flops(*deployed_network(student, X)) / count_flops(*deployed_network(base, X))
        t = float(np.median(times["pruned"]) / np.median(times["base"]))
        row = dict(mask=mask, model=model, lam=lam, flops_ratio=f, time_ratio=t,
                   time_over_flops=t / f, base_ms=1e3 * float(np.median(times["base"])))
        out.append(row)
        print("| {model} | {mask} | {lam:g} | {flops_ratio:.3f} | {time_ratio:.3f} | "
              "{time_over_flops:.2f} | {base_ms:.1f} |".format(**row), flush=True)
    return out


def tabular(args):
    """CrossFitDistiller with a pruned MLPStudent on HELOC (a forest teacher)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skdistill.datasets import load_heloc
    from skdistill.distillers import CrossFitDistiller

    X, y = load_heloc(return_X_y=True)
    Xa, Xb, ya, yb = train_test_split(np.asarray(X, dtype=np.float32), np.asarray(y),
                                      test_size=0.25, random_state=0, stratify=y)
    out = []
    for lam in (0.0, 1e-3, 3e-3, 1e-2):
        student = MLPStudent(hidden_layer_sizes=(64, 64), max_epochs=30, lr=1e-3,
                             group_lasso=lam, random_state=args.seed)
        model = make_pipeline(StandardScaler(), CrossFitDistiller(
            RandomForestClassifier(500, min_samples_leaf=5, n_jobs=1, random_state=0),
            student, n_folds=5, random_state=args.seed)).fit(Xa, ya)
        p = model.predict_proba(Xb)
        s = model[-1].student_
        row = dict(lam=lam, hidden=list(s.hidden_layer_sizes_), auc=roc_auc_score(yb, p[:, 1]),
                   nll=negative_log_likelihood(yb, p), flops=count_flops(s, (1, Xa.shape[1])),
                   parameters=count_parameters(s))
        out.append(row)
        print("| {lam:g} | {hidden} | {auc:.4f} | {nll:.4f} | {flops} | {parameters} |".format(
            **row), flush=True)
    return out


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skdistill.model_selection import plot_pareto

    frame = pd.DataFrame(rows)
    frame["neg_nll"] = -frame["nll"]  # greater is better for the frontier; drawn as the NLL
    panels = sorted({(r["model"], r["mask"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (model, mask) in zip(axes[0], panels):
        part = frame[(frame["model"] == model) & (frame["mask"] == mask)]
        for method, color in (("width", "tab:blue"), ("pruning", "tab:red")):
            sub = part[part["method"] == method]
            if len(sub):
                plot_pareto(sub, "flops", "neg_nll", ax=ax, label=f"{method} (ours)",
                            color=color)
        width = part.loc[part["method"] == "width", "nll"]
        if len(width):  # the width grid's range; the most pruned students lie above it
            span = width.max() - width.min()
            ax.set_ylim(width.min() - 0.15 * span, width.max() + 0.8 * span)
        if model == "cnn" and mask == 15:  # the paper gives the baseline point and a level
            ax.scatter([0.48e6], [0.469], marker="x", color="k", label="paper: baseline")
            ax.axhline(0.30, color="k", lw=0.8, ls=":", label="paper: ~.30 reached")
            bottom, top = ax.get_ylim()
            ax.set_ylim(min(bottom, 0.27), top)
            ax.legend(fontsize=7)
        ax.set_title(f"{model.upper()}, mask {mask}", fontsize=9)
        ax.set_xlabel("FLOPs per image")
        ax.set_ylabel("test NLL (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def replot(json_path, png_path):
    """Redraw the frontier plot from a ``--json`` file."""
    with open(json_path) as fh:
        plot(json.load(fh)["rows"], png_path)


def main(argv=()):
    parser = argparse.ArgumentParser(prog="python -m benchmarks pruning",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=["fcnn", "cnn"], default=["fcnn", "cnn"])
    parser.add_argument("--masks", type=int, nargs="+", default=[0, 15])
    parser.add_argument("--n-iter", type=int, default=16000, help="SGLD steps of the teacher")
    parser.add_argument("--burn-in", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30, help="student epochs (80 steps each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", action="store_true", help="time pruned vs unpruned students")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--save-students", default=None,
                        help="pickle the baseline and pruned students here (for --speed-only)")
    parser.add_argument("--speed-only", default=None, metavar="FILE",
                        help="time the students pickled by --save-students; train nothing")
    parser.add_argument("--tabular", action="store_true", help="also HELOC with CrossFit")
    parser.add_argument("--quick", action="store_true",
                        help="800 training images, 2 x 2 widths, 2 penalties (a smoke run)")
    parser.add_argument("--json", default=None, help="write all rows to this file")
    parser.add_argument("--plot", default=None, help="write the frontier plot (PNG) here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.speed_only:
        with open(args.speed_only, "rb") as fh:
            kept, Xte = pickle.load(fh)
        print("| model | mask | λ | FLOPs ratio | time ratio | time / FLOPs | base ms |\n"
              "|---|---|---|---|---|---|---|")
        out = speed(kept, Xte, args.repeats)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"speed": out}, fh, indent=1, default=float)
        return 0
    print("| mask | model | method | K1 | K2 | λ | widths | FLOPs | params | NLL | acc | "
          "entropy MAE | s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows, kept, Xte = quality(args)
    if args.save_students:
        with open(args.save_students, "wb") as fh:
            pickle.dump((kept, Xte[:2000]), fh)
    result = {"paper": PAPER, "rows": rows}
    for model in args.models:
        for mask in args.masks:
            part = [r for r in rows if r["model"] == model and r["mask"] == mask]
            for method in ("width", "pruning"):
                sub = [r for r in part if r["method"] == method]
                front = pareto_front(pd.DataFrame(sub).assign(neg_nll=lambda d: -d["nll"]),
                                     "flops", "neg_nll")
                print(f"{model} mask {mask} {method} front: "
                      + ", ".join(f"{r.flops}:{r.nll:.3f}" for r in front.itertuples()))
    if args.speed:
        print("| model | mask | λ | FLOPs ratio | time ratio | time / FLOPs | base ms |\n"
              "|---|---|---|---|---|---|---|")
        result["speed"] = speed(kept, Xte, args.repeats)
    if args.tabular:
        print("| λ | widths | AUC | NLL | FLOPs | params |\n|---|---|---|---|---|---|")
        result["tabular"] = tabular(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=float)
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
