"""The main job: distil a random-forest teacher into an MLP student and compare the three."""
import argparse
import sys
import time

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .complexity import count_parameters, inference_time
from .distillers import KnowledgeDistiller
from .metrics import expected_calibration_error, negative_log_likelihood
from .students import MLPStudent

DATASETS = ("digits", "breast_cancer", "heloc", "adult")


def load_demo_data(name, data_home=None):
    """``X, y`` for the demo: scikit-learn's bundled data, or the real HELOC / Adult files."""
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    from . import datasets

    if name == "heloc":
        return datasets.load_heloc(data_home=data_home, return_X_y=True)
    if name == "adult":
        import pandas as pd

        bunch = datasets.load_adult(data_home=data_home, as_frame=True)
        X = pd.get_dummies(bunch.data, dummy_na=True, dtype=float)
        return X.to_numpy(dtype=np.float64), bunch.target.to_numpy()
    raise ValueError(f"demo: parameter dataset={name!r} is invalid; expected one of {DATASETS}.")


def run_demo(dataset="breast_cancer", n_estimators=300, hidden=(64,), max_epochs=100,
             random_state=0, data_home=None, out=sys.stdout):
    """Fit teacher, distilled student and label-trained student; return the result rows."""
    X, y = load_demo_data(dataset, data_home)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=random_state)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(f"dataset {dataset}: {len(X_train)} training rows, {len(X_test)} test rows, "
          f"{X.shape[1]} features, {len(np.unique(y))} classes", file=out)

    student = MLPStudent(hidden_layer_sizes=hidden, max_epochs=max_epochs,
                         random_state=random_state)
    stages = tqdm(total=3, desc="fitting", file=out)
    stages.set_postfix_str("teacher: random forest")
    teacher = RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=2,
                                     n_jobs=-1, random_state=random_state)
    teacher.fit(X_train, y_train)
    # Predict on one core: on small batches a worker pool's start-up dwarfs the trees' work.
    teacher.set_params(n_jobs=None)
    stages.update()
    stages.set_postfix_str("distilled student")
    distilled = KnowledgeDistiller(FrozenEstimator(teacher), student).fit(X_train, y_train)
    stages.update()
    stages.set_postfix_str("student on labels")
    on_labels = clone(student).fit(X_train, y_train)
    stages.update()
    stages.close()

    rows = []
    for name, model in [("teacher (random forest)", teacher),
                        ("distilled student (MLP)", distilled),
                        ("student on labels (MLP)", on_labels)]:
        proba = model.predict_proba(X_test)
        classes = model.classes_
        rows.append({
            "model": name,
            "accuracy": float(np.mean(classes[proba.argmax(axis=1)] == y_test)),
            "nll": negative_log_likelihood(y_test, proba, labels=classes),
            "ece": expected_calibration_error(y_test, proba, labels=classes),
            "size": count_parameters(model),
            "ms_per_1000": 1000 * inference_time(model, X_test, n_repeats=5),
        })
    print(format_table(rows), file=out)
    print("size: trainable parameters for the networks, total tree nodes for the forest.",
          file=out)
    return rows


def format_table(rows):
    """A plain-text table of the demo rows."""
    head = f"{'model':<26}{'accuracy':>9}{'NLL':>8}{'ECE':>8}{'size':>10}{'ms/1000 rows':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<26}{r['accuracy']:>9.4f}{r['nll']:>8.4f}{r['ece']:>8.4f}"
                     f"{r['size']:>10d}{r['ms_per_1000']:>14.3f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m skdistill demo",
        description="Distil a random forest into an MLP and compare it with the same MLP "
                    "trained on labels.")
    parser.add_argument("--dataset", choices=DATASETS, default="breast_cancer",
                        help="bundled scikit-learn data (default breast_cancer) or real HELOC/Adult "
                             "files from SKDISTILL_DATA")
    parser.add_argument("--n-estimators", type=int, default=300)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    from .datasets import DataFileNotFoundError

    try:
        run_demo(args.dataset, args.n_estimators, tuple(args.hidden), args.max_epochs,
                 args.random_state, args.data_home)
    except DataFileNotFoundError as exc:
        # A missing data file is the user's to fix: the message says where and how, no trace.
        print(f"python -m skdistill demo: {exc}\nWithout data files, run the demo on bundled "
              "data: python -m skdistill demo --dataset breast_cancer", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
