"""The main job, ``make demo``: an expensive forest distilled into a small network.

You have a few labelled rows, more rows without labels, and an accurate but slow teacher (a
500-tree forest). :class:`~skdistill.CrossFitDistiller` trains a small network on the
teacher's probabilities: on the labelled rows those of a teacher that never saw the row
(cross-fitting), on the unlabelled rows those of the teacher fitted on all labels, all
through a temperature that the out-of-fold probabilities calibrate. The demo compares it,
averaged over seeds (a new split each), with the teacher, with plain knowledge distillation
(:class:`~skdistill.KnowledgeDistiller`, same teacher, same rows) and with the same network
trained on the labels alone, on accuracy, NLL, ECE, size and per-row latency, and writes a
reliability diagram.

The digits setting (200 labelled rows, a 32-unit student, temperature 1, every student 1,000
optimiser steps) was chosen on seeds 100-102, apart from the seeds 0, 1, ... it reports. On
the labelled rows alone (no unlabelled ones) the cross-fit student lost accuracy to the
labels-only network on digits and on ``make_classification`` data, and won only on a Gaussian
mixture with a 128-128 network that over-fits the labels: the unlabelled rows are where a
small student learns most from its teacher.
"""
import argparse
import math
import os
import sys
import textwrap
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .complexity import count_parameters, inference_time
from .distillers import CrossFitDistiller, KnowledgeDistiller
from .metrics import expected_calibration_error, negative_log_likelihood
from .students import MLPStudent

#: dataset -> rows per seed: labelled (teacher and students), unlabelled (distilled students
#: only), test (at most; the rest of the data when smaller), and a one-line description.
SETTINGS = {
    "digits": dict(labelled=200, unlabelled=1000, test=None,
                   about="scikit-learn's 8x8 handwritten digits, 10 classes"),
    "breast_cancer": dict(labelled=100, unlabelled=269, test=None,
                          about="scikit-learn's breast cancer data, 2 classes"),
    "heloc": dict(labelled=500, unlabelled=5000, test=3000,
                  about="FICO HELOC credit risk, 2 classes (file from SKDISTILL_DATA)"),
    "adult": dict(labelled=500, unlabelled=5000, test=3000,
                  about="UCI Adult income, 2 classes (file from SKDISTILL_DATA)"),
}
DATASETS = tuple(SETTINGS)
#: model key -> what the table calls it ({n} is the number of labelled rows).
MODELS = {
    "teacher": "teacher: extra trees",
    "crossfit": "student: CrossFitDistiller",
    "kd": "student: plain KD",
    "labels": "student: {n} labels only",
}
METRICS = ("accuracy", "confidence", "nll", "ece", "size", "ms_per_row", "ms_per_1000")


def load_demo_data(name, data_home=None):
    """``X, y`` for the demo: scikit-learn's bundled data, or the real HELOC / Adult files.

    Parameters
    ----------
    name : {"digits", "breast_cancer", "heloc", "adult"}
        Which data; HELOC and Adult (its official training file) are read from ``data_home``.
    data_home : str or path-like, default=None
        Data folder of the HELOC and Adult files (see :func:`skdistill.datasets.get_data_home`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from skdistill.demo import load_demo_data
    >>> X, y = load_demo_data("digits")
    >>> X.shape, len(set(y))
    ((1797, 64), 10)
    """
    _check_dataset(name)
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    from . import datasets

    if name == "heloc":
        return datasets.load_heloc(data_home=data_home, return_X_y=True)
    if name == "adult":
        import pandas as pd

        bunch = datasets.load_adult(subset="train", data_home=data_home, as_frame=True)
        X = pd.get_dummies(bunch.data, dummy_na=True, dtype=float)
        return X.to_numpy(dtype=np.float64), bunch.target.to_numpy()


def _check_dataset(name):
    if name not in SETTINGS:
        raise ValueError(f"demo: parameter dataset={name!r} is invalid; expected one of "
                         f"{DATASETS}.")


def split_demo_data(X, y, setting, seed):
    """Labelled, unlabelled and test rows for one seed, scaled on the rows a user would have.

    The scaler sees the labelled and unlabelled inputs (both are at hand when training),
    never the test rows. Returns ``X_lab, y_lab, X_unlab, X_test, y_test``.
    """
    X_lab, X_rest, y_lab, y_rest = train_test_split(
        X, y, train_size=setting["labelled"], stratify=y, random_state=seed)
    X_unlab, X_test, _, y_test = train_test_split(
        X_rest, y_rest, train_size=setting["unlabelled"], stratify=y_rest, random_state=seed)
    if setting["test"] is not None and len(y_test) > setting["test"]:
        X_test, _, y_test, _ = train_test_split(X_test, y_test, train_size=setting["test"],
                                                stratify=y_test, random_state=seed)
    scaler = StandardScaler().fit(np.vstack([X_lab, X_unlab]))
    return (scaler.transform(X_lab), y_lab, scaler.transform(X_unlab), scaler.transform(X_test),
            y_test)


def student_for(n_rows, steps, seed, hidden=(32,), batch_size=128):
    """The small network, trained for ``steps`` optimiser steps whatever its number of rows.

    Every student takes the same number of steps: one that sees only the labelled rows
    runs more epochs over them instead of stopping under-trained.
    """
    epochs = math.ceil(steps / math.ceil(n_rows / batch_size))
    return MLPStudent(hidden_layer_sizes=hidden, max_epochs=epochs, batch_size=batch_size,
                      random_state=seed)


def score(model, X, y, n_latency=20):
    """Test accuracy, NLL, ECE, size and latency of a fitted model (one row of the table).

    ``ms_per_row`` is the median time of ``predict_proba`` on one row (serving one request),
    ``ms_per_1000`` that of a batch of the test rows, per 1,000 rows; both in this process.
    """
    proba = model.predict_proba(X)
    classes = model.classes_
    return {
        "accuracy": float(np.mean(classes[proba.argmax(axis=1)] == y)),
        "confidence": float(np.mean(proba.max(axis=1))),
        "nll": negative_log_likelihood(y, proba, labels=classes),
        "ece": expected_calibration_error(y, proba, labels=classes),
        "size": count_parameters(model),
        "ms_per_row": 1000 * inference_time(model, X[:1], n_repeats=n_latency, per=1),
        "ms_per_1000": 1000 * inference_time(model, X, n_repeats=3),
    }


#: what the progress bar says while each fit of a seed runs
FITS = ("teacher, 5 fold teachers and cross-fit student", "plain KD student",
        "labels-only student")


def fit_models(X_lab, y_lab, X_unlab, seed, n_estimators=500, steps=1000):
    """Teacher, cross-fit student, plain KD student and labels-only student for one seed.

    A generator of ``{key: model}``: one dict per fit of :data:`FITS`, so that a caller can
    show progress. The teacher is the cross-fit distiller's ``teacher_`` (fitted on all
    labelled rows); plain KD distils that same fitted teacher, frozen, on the same rows.
    """
    n_all = len(y_lab) + X_unlab.shape[0]
    teacher = ExtraTreesClassifier(n_estimators=n_estimators, random_state=seed)
    crossfit = CrossFitDistiller(teacher, student_for(n_all, steps, seed), n_folds=5,
                                 teacher_calibration="temperature", random_state=seed)
    crossfit.fit(X_lab, y_lab, X_unlabeled=X_unlab)
    yield {"teacher": crossfit.teacher_, "crossfit": crossfit}
    kd = KnowledgeDistiller(FrozenEstimator(crossfit.teacher_), student_for(n_all, steps, seed),
                            random_state=seed)
    yield {"kd": kd.fit(X_lab, y_lab, X_unlabeled=X_unlab)}
    yield {"labels": student_for(len(y_lab), steps, seed).fit(X_lab, y_lab)}


def run_demo(dataset="digits", seeds=5, quick=False, out_dir=".", data_home=None,
             stream=None, progress=True):
    """Run the demo: fit, score and compare the four models over ``seeds`` splits.

    Parameters
    ----------
    dataset : {"digits", "breast_cancer", "heloc", "adult"}, default="digits"
        Bundled scikit-learn data, or the real HELOC / Adult files from ``data_home``.
    seeds : int, default=5
        Number of seeds (0, 1, ...): each draws a new split and seeds every model.
    quick : bool, default=False
        A 50-tree teacher and 150 student steps, for tests: the numbers mean little.
    out_dir : str or path-like, default="."
        Where the reliability diagram (PNG) is written; created if missing.
    data_home : str or path-like, default=None
        Data folder of the HELOC and Adult files.
    stream : file-like, default=None
        Where the table and the explanation are printed; ``None`` is ``sys.stdout``.
    progress : bool, default=True
        Show a progress bar (on stderr).

    Returns
    -------
    result : dict
        ``dataset``, ``setting`` (rows per split, teacher trees, student steps), ``seeds``,
        ``rows`` (one dict per model with ``key``, ``model`` and the mean and ``*_std`` of
        ``accuracy``, ``nll``, ``ece``, ``size``, ``ms_per_row``, ``ms_per_1000``),
        ``per_seed`` (model key -> one score dict per seed), ``figure`` (path of the PNG, or
        None without matplotlib) and ``seconds``.

    Notes
    -----
    The demo runs torch on one thread (restored afterwards): its networks are too small for
    a second one to help. The teacher is scored on one core too (``n_jobs=None``).

    Examples
    --------
    >>> import io, tempfile
    >>> from skdistill.demo import run_demo
    >>> with tempfile.TemporaryDirectory() as out:
    ...     result = run_demo("breast_cancer", seeds=1, quick=True, out_dir=out,
    ...                       stream=io.StringIO(), progress=False)
    >>> [row["key"] for row in result["rows"]]
    ['teacher', 'crossfit', 'kd', 'labels']
    """
    stream = sys.stdout if stream is None else stream
    _check_dataset(dataset)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"demo: parameter seeds={seeds!r} is invalid; expected an integer "
                         ">= 1.")
    threads = torch.get_num_threads()
    # The networks are tiny: a second intra-op thread only waits on the first, and on a busy
    # machine that waiting makes a fit many times slower and its timing erratic.
    torch.set_num_threads(1)
    try:
        return _run_demo(dataset, seeds, quick, out_dir, data_home, stream, progress)
    finally:
        torch.set_num_threads(threads)


def _run_demo(dataset, seeds, quick, out_dir, data_home, stream, progress):
    start = time.perf_counter()
    setting = dict(SETTINGS[dataset], n_estimators=50 if quick else 500,
                   steps=150 if quick else 1000)
    X, y = load_demo_data(dataset, data_home)
    names = {key: name.format(n=setting["labelled"]) for key, name in MODELS.items()}
    seed_list = list(range(seeds))
    per_seed = {key: [] for key in MODELS}
    first = None
    bar = tqdm(total=len(seed_list) * len(FITS), desc="demo", unit="fit",
               disable=not progress, file=sys.stderr)
    for seed in seed_list:
        X_lab, y_lab, X_unlab, X_test, y_test = split_demo_data(X, y, setting, seed)
        setting["test_rows"] = len(y_test)
        models = {}
        fits = fit_models(X_lab, y_lab, X_unlab, seed, setting["n_estimators"],
                          setting["steps"])
        for what in FITS:
            bar.set_postfix_str(f"seed {seed}: {what}")
            fitted = next(fits)
            for key, model in fitted.items():
                per_seed[key].append(score(model, X_test, y_test))
            models.update(fitted)
            bar.update()
        if first is None:
            first = (seed, models, X_test, y_test)
    bar.close()

    rows = []
    for key, name in names.items():
        row = {"key": key, "model": name}
        for metric in METRICS:
            values = [s[metric] for s in per_seed[key]]
            row[metric] = float(np.mean(values))
            row[f"{metric}_std"] = float(np.std(values))
        rows.append(row)
    result = {"dataset": dataset, "setting": setting, "seeds": seed_list, "rows": rows,
              "per_seed": per_seed}
    result["figure"] = save_reliability(first, names, dataset, out_dir)
    result["seconds"] = time.perf_counter() - start
    print(describe(result), file=stream)
    print(format_table(rows), file=stream)
    if result["figure"] is not None:
        print(f"\nreliability diagram (seed {first[0]}): {result['figure']}", file=stream)
    else:
        print("\nno reliability diagram: matplotlib is not installed (pip install matplotlib)",
              file=stream)
    print(explain(result), file=stream)
    return result


def save_reliability(first, names, dataset, out_dir):
    """Reliability diagram of one seed's four models, as a PNG in ``out_dir``; its path.

    ``names`` maps each model key to what the table calls it.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    from .inspection import plot_reliability

    seed, models, X_test, y_test = first
    n = len(models["labels"].classes_)
    named = {names[key]: model for key, model in models.items()}
    fig = Figure(figsize=(10, 5.2), layout="constrained")
    plot_reliability(named, X_test, y_test, n_bins=10, ax=fig.subplots(1, 2))
    fig.suptitle(f"skdistill demo: {dataset} ({n} classes), {len(y_test)} test rows, seed {seed}")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.abspath(os.path.join(out_dir, f"skdistill_demo_{dataset}.png"))
    fig.savefig(path, dpi=80)
    return path


def describe(result):
    """The lines above the table: data, split, models and training budget."""
    s = result["setting"]
    text = (f"{result['dataset']}: {s['about']}. Per seed: {s['labelled']:,} labelled rows, "
            f"{s['unlabelled']:,} unlabelled rows (labelled by the teacher for the distilled "
            f"students only), {s['test_rows']:,} test rows; {len(result['seeds'])} seed(s), a "
            f"new split each. Teacher: ExtraTreesClassifier({s['n_estimators']} trees), fitted "
            "on the labelled rows. Every student: MLPStudent(hidden_layer_sizes=(32,)), "
            f"{s['steps']:,} optimiser steps. Mean ± std over seeds, on the test rows:")
    return "\n" + textwrap.fill(text, 100) + "\n"


def _cell(row, metric, digits=3):
    return f"{row[metric]:.{digits}f} ± {row[metric + '_std']:.{digits}f}"


def format_table(rows):
    """A plain-text table of the demo rows (mean ± std over seeds).

    Examples
    --------
    >>> from skdistill.demo import format_table
    >>> row = dict(model="m", accuracy=0.5, nll=0.25, ece=0.125, size=7, ms_per_row=1.5,
    ...            ms_per_1000=20.0, accuracy_std=0.01, nll_std=0.02, ece_std=0.03)
    >>> cells = format_table([row]).splitlines()[-1].split()
    >>> cells[:4], cells[-3:]
    (['m', '0.500', '±', '0.010'], ['7', '1.500', '20.0'])
    """
    head = (f"{'model':<26}{'accuracy':>15}{'NLL':>15}{'ECE':>15}{'size':>9}{'ms/row':>9}"
            f"{'ms/1k rows':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<26}  {_cell(r, 'accuracy')}  {_cell(r, 'nll')}  "
                     f"{_cell(r, 'ece')}{round(r['size']):>9,}{r['ms_per_row']:>9.3f}"
                     f"{r['ms_per_1000']:>11.1f}")
    return "\n".join(lines)


def _wins(result, key, other, metric):
    """On how many seeds ``key`` beats ``other`` on ``metric`` (higher accuracy, lower loss)."""
    sign = 1 if metric == "accuracy" else -1
    return sum(sign * (a[metric] - b[metric]) > 0
               for a, b in zip(result["per_seed"][key], result["per_seed"][other]))


def _versus(result, key, other, metric):
    """``key`` against ``other`` on ``metric`` in words: the mean difference, seeds won."""
    rows = {r["key"]: r for r in result["rows"]}
    diff = rows[key][metric] - rows[other][metric]
    wins, n = _wins(result, key, other, metric), len(result["seeds"])
    if metric == "accuracy":
        amount = f"{abs(100 * diff):.1f} points {'higher' if diff > 0 else 'lower'}"
    else:
        amount = f"{abs(diff):.3f} {'lower' if diff < 0 else 'higher'}"
    better = "better on every seed" if wins == n else f"better on {wins} of {n} seeds"
    return f"{amount} ({better})"


def explain(result):
    """What the numbers mean and what the win is, in plain words, from the measured rows."""
    rows = {r["key"]: r for r in result["rows"]}
    t, cf, kd = rows["teacher"], rows["crossfit"], rows["kd"]
    n_lab = result["setting"]["labelled"]
    confidence = np.mean([s["confidence"] for s in result["per_seed"]["teacher"]])
    lines = [
        "",
        "What the columns mean:",
        "  accuracy  share of test rows whose most probable class is right (higher is better)",
        "  NLL       negative log-likelihood: -log of the probability given to the true class,",
        "            averaged; it punishes confident mistakes (lower is better)",
        "  ECE       expected calibration error: the gap between confidence and accuracy;",
        "            0 means that rows predicted with 80 % confidence are right 80 % of the time",
        "  size      tree nodes for the forest, trainable parameters for the networks",
        "  ms/row    median time of predict_proba on one row (one request), in this process;",
        "            ms/1k rows: on a batch of the test rows, per 1,000 rows",
        "",
        "What it shows:",
        f"  - The cross-fit student is {t['size'] / cf['size']:,.0f}x smaller than the forest "
        f"and answers a request {t['ms_per_row'] / cf['ms_per_row']:,.0f}x faster.",
        f"  - Against the same network trained on the {n_lab} labels alone, its accuracy is "
        f"{_versus(result, 'crossfit', 'labels', 'accuracy')}, its NLL "
        f"{_versus(result, 'crossfit', 'labels', 'nll')} and its ECE "
        f"{_versus(result, 'crossfit', 'labels', 'ece')}: the teacher's probabilities on the "
        "unlabelled rows teach it what the few labels cannot.",
        f"  - The forest's accuracy is {t['accuracy']:.3f} but its mean confidence "
        f"{confidence:.3f}: it is {'under' if confidence < t['accuracy'] else 'over'}-confident"
        f" (ECE {t['ece']:.3f}), and plain KD copies that (ECE {kd['ece']:.3f}). "
        "CrossFitDistiller fits a temperature on out-of-fold probabilities (each from a fold "
        "teacher that never saw the row), so against plain KD its student's NLL is "
        f"{_versus(result, 'crossfit', 'kd', 'nll')} and its accuracy "
        f"{_versus(result, 'crossfit', 'kd', 'accuracy')}.",
    ]
    gap = 100 * (t["accuracy"] - cf["accuracy"])
    if gap > 0:
        lines.append(f"  - The student stays {gap:.1f} accuracy points behind the forest: the "
                     "price of a network this small and fast.")
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line, width=92):
    """Wrap a bullet at ``width`` characters, continuation lines indented under its text."""
    if len(line) <= width or not line.startswith("  - "):
        return line
    return textwrap.fill(line, width, subsequent_indent="    ")


def main(argv=None):
    """``python -m skdistill demo [--dataset ...] [--seeds N] [--quick] [--out DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m skdistill demo",
        description="Distil a 500-tree forest into a small network with CrossFitDistiller, "
                    "from a few labelled and more unlabelled rows, and compare it with the "
                    "forest, plain knowledge distillation and the same network trained on the "
                    "labels alone: accuracy, NLL, ECE, size and latency, averaged over seeds.")
    parser.add_argument("--dataset", choices=DATASETS, default="digits",
                        help="bundled scikit-learn data (default digits, or breast_cancer) or the "
                             "real HELOC/Adult files from SKDISTILL_DATA or --data-home")
    parser.add_argument("--seeds", type=_positive_int, default=5,
                        help="number of seeds, each a new split (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="a 50-tree teacher and 150 student steps (a smoke test)")
    parser.add_argument("--out", default=".",
                        help="folder of the reliability-diagram PNG (default: the current one)")
    parser.add_argument("--data-home", default=None,
                        help="data folder of the HELOC and Adult files")
    args = parser.parse_args(argv)
    from .datasets import DataFileNotFoundError

    try:
        result = run_demo(args.dataset, args.seeds, args.quick, args.out, args.data_home)
    except DataFileNotFoundError as exc:
        # A missing data file is the user's to fix: the message says where and how, no trace.
        print(f"python -m skdistill demo: {exc}\nWithout data files, run the demo on bundled "
              "data: python -m skdistill demo --dataset digits", file=sys.stderr)
        return 2
    print(f"\ndone in {result['seconds']:.1f} s")
    return 0


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value
