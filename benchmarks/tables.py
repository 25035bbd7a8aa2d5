"""Raw tables: CrossFitDistiller from a DataFrame teacher into a student pipeline, with costs.

``python -m benchmarks tables [--datasets adult heloc] [--teachers hgb rf]
[--seeds 0 1 2] [--quick] [--json FILE]``

The practitioner's path, on the raw tables: UCI Adult as read (string categories, ``"?"`` as
missing) and FICO HELOC with its special codes -7/-8/-9 as missing (rows missing everything
dropped, as in ``dao_tabular``). Nothing is encoded by hand: each side gets the table and
brings its own preprocessing.

- Teachers: ``HistGradientBoostingClassifier(categorical_features="from_dtype")`` (native
  categories and NaN) and a 100-tree random forest behind a one-hot pipeline.
- Distiller: ``CrossFitDistiller(teacher, student, n_folds=5)`` whose student is a
  ``Pipeline(ColumnTransformer(impute + scale | one-hot), MLPStudent((64, 64)))``;
  beside it the same student pipeline fitted on the labels alone.
- Split: Adult's official train/test files; HELOC 70/30 stratified (seed 2357).

For teacher and student: test AUC, NLL, ECE; size (:func:`~skdistill.complexity.count_parameters`:
tree nodes, or weights and preprocessing statistics) and pickle bytes; and the latency of
``predict_proba`` and of onnxruntime (skl2onnx's conversion) on one row (median of
``--repeats`` calls) and per row in a batch of 1,000, with one thread for torch, OpenMP and
onnxruntime. Seeds vary the teacher, the folds and the student.
"""
import argparse
import copy
import json
import pickle
import platform
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from skdistill import CrossFitDistiller, MLPStudent
from skdistill.complexity import count_parameters
from skdistill.datasets import DataFileNotFoundError, load_adult, load_heloc

from . import mean_sd, resolve_data_home, scores
from .onnx_latency import median_time

DATASETS = ("adult", "heloc")
TEACHERS = ("hgb", "rf")
#: The array-based figures already recorded (``dao_tabular --part mlp``, 5 seeds): test AUC of
#: a cross-fitted MLPStudent((32,)) from a 500-tree forest on pre-encoded, scaled arrays.
ARRAY_AUC = {"adult": 0.9020, "heloc": 0.7946}


def load_table(name, data_home):
    """``(X_train, X_test, y_train, y_test, source)`` as raw DataFrames."""
    if name == "adult":
        adult = load_adult(data_home=data_home, as_frame=True)
        X, y = adult.data, np.asarray(adult.target)
        test = np.asarray(adult.is_test)
        return (X[~test].reset_index(drop=True), X[test].reset_index(drop=True), y[~test],
                y[test], "UCI Adult, official train/test split (32,561 / 16,281 rows)")
    heloc = load_heloc(data_home=data_home, as_frame=True)
    X, y = heloc.data.astype(np.float64), np.asarray(heloc.target)
    X = X.mask(X.isin([-7, -8, -9]))  # the special codes: no record, no usable value...
    keep = X.notna().any(axis=1).to_numpy()
    X, y = X[keep].reset_index(drop=True), y[keep]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=2357)
    return (X_train.reset_index(drop=True), X_test.reset_index(drop=True), y_train, y_test,
            f"FICO HELOC, -7/-8/-9 as NaN, {keep.sum():,} rows with a value, 70/30 split")


def _columns(X):
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    return [c for c in X.columns if c not in categorical], categorical


def preprocessor(X, scale=True):
    """Impute (+ scale) numeric columns, one-hot the categorical ones."""
    numeric, categorical = _columns(X)
    num = make_pipeline(SimpleImputer(strategy="median"), *([StandardScaler()] if scale else []))
    parts = [("num", num, numeric)]
    if categorical:
        # a missing category is a category of its own (what skl2onnx's encoder converts)
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore"), categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def make_teacher(kind, X, seed, quick):
    if kind == "hgb":
        return HistGradientBoostingClassifier(categorical_features="from_dtype",
                                              max_iter=50 if quick else 200,
                                              early_stopping=False, random_state=seed)
    return Pipeline([("prep", preprocessor(X, scale=False)),
                     ("forest", RandomForestClassifier(n_estimators=10 if quick else 100,
                                                       min_samples_leaf=5, n_jobs=1,
                                                       random_state=seed))])


def make_student(X, seed, quick):
    return Pipeline([("prep", preprocessor(X)), ("mlp", MLPStudent(
        hidden_layer_sizes=(64, 64), max_epochs=3 if quick else 30, batch_size=256, lr=1e-3,
        random_state=seed))])


def pickled_bytes(obj):
    return len(pickle.dumps(obj))


def onnx_session(model, X):
    """An onnxruntime session of ``model`` converted with skl2onnx, and a feed builder; or
    ``(None, reason)`` when the conversion fails."""
    import onnxruntime as ort

    from skdistill.onnx import onnx_inputs, to_onnx

    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = to_onnx(model, X, options={id(final): {"zipmap": False}})
    except Exception as exc:  # a teacher skl2onnx cannot convert is reported, not fatal
        return None, str(exc).split("skl2onnx: ")[-1].splitlines()[0][:160]
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(onx.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return (session, lambda rows: onnx_inputs(rows, onx)), len(onx.SerializeToString())


def costs(model, X_test, repeats):
    """Latency (ms) of ``predict_proba`` and onnxruntime: one row, and per row in 1,000."""
    one, batch = X_test.iloc[:1], X_test.iloc[:1000]
    out = {"proba_1_ms": 1e3 * median_time(lambda: model.predict_proba(one), repeats),
           "proba_1000_us_per_row": 1e6 * median_time(lambda: model.predict_proba(batch),
                                                      max(3, repeats // 20)) / len(batch)}
    session, info = onnx_session(model, X_test)
    if session is None:
        out["onnx_error"] = info
        return out
    session, feed = session
    out["onnx_bytes"] = info
    feed_one, feed_batch = feed(one), feed(batch)
    proba = session.run(None, feed_batch)[1]
    out["onnx_max_abs_diff"] = float(np.abs(proba - model.predict_proba(batch)).max())
    out["onnx_1_ms"] = 1e3 * median_time(lambda: session.run(None, feed_one), repeats)
    out["onnx_1000_us_per_row"] = 1e6 * median_time(
        lambda: session.run(None, feed_batch), max(3, repeats // 20)) / len(batch)
    return out


def quality(model, X, y, prefix):
    """Test AUC, accuracy, NLL and ECE under keys ``prefix_*``."""
    proba = model.predict_proba(X)
    return {f"{prefix}_auc": float(roc_auc_score(y, proba[:, 1])), **scores(y, proba, prefix)}


def run_one(dataset, kind, seed, data, args):
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    distiller = CrossFitDistiller(make_teacher(kind, X_train, seed, args.quick),
                                  make_student(X_train, seed, args.quick), n_folds=5,
                                  random_state=seed).fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    labels_only = clone(make_student(X_train, seed, args.quick)).fit(X_train, y_train)
    teacher, student = distiller.teacher_, distiller.student_
    row = {"dataset": dataset, "teacher": kind, "seed": seed, "fit_s": fit_s}
    for name, model in (("teacher", teacher), ("student", student),
                        ("labels_only", labels_only)):
        row.update(quality(model, X_test, y_test, name))
    for name, model in (("teacher", teacher), ("student", student)):
        row[f"{name}_size"] = int(count_parameters(model))
        row[f"{name}_pickle_bytes"] = pickled_bytes(model)
        for key, value in costs(model, X_test, args.repeats).items():
            row[f"{name}_{key}"] = value
    row["distiller_pickle_bytes"] = pickled_bytes(distiller)
    shipped = copy.copy(distiller).set_params(keep_teachers=False)
    shipped._drop_teachers()  # what fit(..., keep_teachers=False) keeps, without a refit
    row["shipped_pickle_bytes"] = pickled_bytes(shipped)
    return row


def _mean_std(rows, key, digits=3):
    return mean_sd([r[key] for r in rows if key in r], digits)


def report(rows):
    """Markdown tables: quality, then size and latency (means over seeds)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["teacher"]), []).append(row)
    lines = ["| data | teacher | model | AUC | NLL | ECE |", "|---|---|---|---|---|---|"]
    for (dataset, kind), group in groups.items():
        for name in ("teacher", "student", "labels_only"):
            lines.append(f"| {dataset} | {kind} | {name.replace('_', ' ')} | "
                         + " | ".join(_mean_std(group, f"{name}_{m}", 4)
                                      for m in ("auc", "nll", "ece")) + " |")
    lines += ["", "| data | teacher | model | size | pickle KB | predict_proba 1 row ms | "
              "predict_proba µs/row (1,000) | ONNX 1 row ms | ONNX µs/row (1,000) | ONNX KB |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, kind), group in groups.items():
        for name in ("teacher", "student"):
            first = group[0]
            onnx = (["n/a"] * 3 if f"{name}_onnx_error" in first else
                    [_mean_std(group, f"{name}_onnx_1_ms"),
                     _mean_std(group, f"{name}_onnx_1000_us_per_row", 2),
                     f"{first[f'{name}_onnx_bytes'] / 1e3:.0f}"])
            lines.append(
                f"| {dataset} | {kind} | {name} | {first[f'{name}_size']:,} | "
                f"{np.mean([r[f'{name}_pickle_bytes'] for r in group]) / 1e3:,.0f} | "
                f"{_mean_std(group, f'{name}_proba_1_ms')} | "
                f"{_mean_std(group, f'{name}_proba_1000_us_per_row', 2)} | "
                + " | ".join(onnx) + " |")
    lines += ["", "| data | teacher | fitted distiller KB | keep_teachers=False KB | student_ KB |",
              "|---|---|---|---|---|"]
    for (dataset, kind), group in groups.items():
        lines.append(f"| {dataset} | {kind} | " + " | ".join(
            f"{np.mean([r[key] for r in group]) / 1e3:,.0f}"
            for key in ("distiller_pickle_bytes", "shipped_pickle_bytes",
                        "student_pickle_bytes")) + " |")
    errors = {f"{r['teacher']} {name}": r[f"{name}_onnx_error"] for r in rows
              for name in ("teacher", "student") if f"{name}_onnx_error" in r}
    lines += [f"ONNX not available for the {k}: {v}" for k, v in errors.items()]
    return "\n".join(lines)


def main(argv=()):
    parser = argparse.ArgumentParser(prog="python -m benchmarks tables",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--teachers", nargs="+", choices=TEACHERS, default=list(TEACHERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=500,
                        help="timed calls per single-row latency (1,000 rows: a 20th)")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--quick", action="store_true",
                        help="small teachers, 3 epochs, one seed, 20 repeats (a smoke run)")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.repeats = args.seeds[:1], 20
    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for dataset in args.datasets:
            try:
                *data, source = load_table(dataset, resolve_data_home(args.data_home))
            except DataFileNotFoundError as exc:
                print(f"{dataset}: skipped, {exc}")
                continue
            print(f"{dataset}: {source}", flush=True)
            for kind in args.teachers:
                for seed in args.seeds:
                    rows.append(run_one(dataset, kind, seed, data, args))
                    print(f"  {kind} seed {seed}: student AUC {rows[-1]['student_auc']:.4f}, "
                          f"teacher {rows[-1]['teacher_auc']:.4f} ({rows[-1]['fit_s']:.0f} s)",
                          flush=True)
    if not rows:
        print("no data: every dataset was skipped")
        return 2
    import onnxruntime

    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, 1 thread; seeds {args.seeds}")
    print(report(rows))
    print("array-based cross-fit MLP student AUC recorded by dao_tabular: "
          + ", ".join(f"{k} {v:.4f}" for k, v in ARRAY_AUC.items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)
    return 0
