"""Is distillation worth it? Distilled MLPs against the teachers' fastest runtimes and plain MLPs.

``python -m benchmarks serving [--datasets heloc adult] [--teachers rf lgbm]
[--seeds 0 1 2] [--widths 32 64x64] [--augment-size 2] [--parts quality latency]
[--repeats 2000] [--quick] [--json FILE] [--markdown FILE]``

What a user would deploy instead of a distilled student: the teacher itself, served through
the fastest runtime there is for it, or a small network trained on the labels. For each table
and teacher, on one numeric float32 matrix that every runtime takes:

- Data: FICO HELOC (special codes -7/-8 as -9, rows that are -9 everywhere dropped, as in
  ``dao_tabular``; 70/30 split stratified by class, seed 2357) and UCI Adult (the official
  train/test files; categories one-hot encoded, a missing category a category of its own,
  numbers standardised), both scaled with statistics of the training part.
- Teachers: ``RandomForestClassifier(--trees)`` and LightGBM's ``LGBMClassifier(--trees)``
  (``lightgbm`` is an optional benchmark-only extra, ``pip install skdistill[serving]``;
  without it that teacher is skipped with a note). LightGBM's defaults draw nothing at
  random: its seeds vary the folds and the students only.
- Distilled students: ``CrossFitDistiller(teacher, MLPStudent(w), n_folds=5)`` for each width
  ``w`` of ``--widths``, without augmentation and with ``augment="munge"``
  (``augment_size=--augment-size``; ``0``: no munge students).
- References: scikit-learn's ``MLPClassifier(w, early_stopping=True)`` and the same
  ``MLPStudent(w)`` trained on the labels alone.

Teachers are fitted once per (table, teacher, seed): every distiller of that seed gets the
teacher wrapped in :class:`SharedTeacher`, whose ``fit`` looks the fitted estimator up in a
:class:`TeacherCache` by the estimator's parameters and a digest of the rows and labels, and
fits it only the first time. The distillers draw the same folds from the same
``random_state``, so the five fold teachers and the full teacher are fitted once and shared
by all students of the seed (augmented rows are labelled by the shared full teacher).

Quality (``--parts quality``): test AUC, NLL, ECE and accuracy per model and seed; the summary
is mean ± sd over ``--seeds``. Serving (``--parts latency``, the first seed's models only): on
one thread everywhere (torch, BLAS/OpenMP through threadpoolctl, onnxruntime intra/inter op,
tl2cgen's predictor, lleaves, LightGBM's ``num_threads``), every runtime that applies to a
model:

- ``sklearn``: the estimator's own ``predict_proba`` (forest, LightGBM, ``MLPClassifier``);
- ``onnxruntime``: skl2onnx's conversion (forest, ``MLPClassifier``; LightGBM through
  onnxmltools when installed), and ``skdistill.onnx.to_onnx`` for the distillers and
  students, zipmap off;
- ``tl2cgen``: treelite's import compiled to a shared library by tl2cgen's ``export_lib``
  (gcc -O3, ``params={"parallel_comp": --parallel-comp}``, by default one C file per tree:
  gcc's time grows faster than a file's size, 7.5 times the CPU for 5 trees a file; compiled
  by ``os.cpu_count()`` processes);
- ``lleaves``: LightGBM's model compiled by lleaves (LLVM);
- ``skdistill``: the distiller's ``predict_proba`` and its ``student_``'s.

One row: the median over ``--repeats`` calls, each on the next of 256 test rows in turn (a
forest answering the same row every time would be flattered by the branch predictor and the
cache); 1,000 rows: the median per-row time over ``--repeats / 20`` calls. Each runtime's
probabilities on the 1,000 rows are compared with the model's own ``predict_proba`` (max abs
difference), and its conversion or compile time and artifact size are recorded (pickle bytes
of the fitted model, of the distiller without its teachers and of its ``student_``; ONNX
bytes; the ``.so``; lleaves' object file).

``--json FILE`` is rewritten after each model (a crash keeps what was measured);
``--markdown FILE`` gets, per table, the quality summary, the latency and size table, and the
goal check: a distilled student meets it when its mean AUC is at least the teacher's - 0.002
and its mean NLL at most the teacher's, and its single-row ONNX time is below the teacher's
fastest runtime. ``--from-json FILE`` renders the tables of an earlier run again.
"""
import argparse
import copy
import hashlib
import importlib
import itertools
import json
import os
import pickle
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from skdistill import CrossFitDistiller, MLPStudent
from skdistill.datasets import DataFileNotFoundError, load_adult, load_heloc

from . import group_rows, mean_sd, resolve_data_home, scores
from .onnx_latency import median_time

DATASETS = ("heloc", "adult")
TEACHERS = ("rf", "lgbm")
PARTS = ("quality", "latency")
RUNTIMES = ("sklearn", "onnxruntime", "tl2cgen", "lleaves", "skdistill")
SEED = 2357
#: Rows the single-row timing cycles through.
N_SINGLE = 256
#: Rows of the batch timing and of the parity check.
N_BATCH = 1000
#: The goal's AUC margin: a student may lose at most this much AUC against its teacher.
AUC_MARGIN = 0.002
TEACHER_NAMES = {"rf": "RandomForest", "lgbm": "LightGBM"}
#: The extras of ``pip install skdistill[serving]``; each is imported here only, lazily.
EXTRAS = {"lgbm": "lightgbm", "onnxmltools": "onnxmltools", "tl2cgen": "tl2cgen",
          "treelite": "treelite", "lleaves": "lleaves"}


def optional(module):
    """``module`` imported, or ``None`` when it (or something it needs) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# -- data ---------------------------------------------------------------------------------------
def load_table(name, data_home):
    """``(X_train, X_test, y_train, y_test, source)``: float32 matrices, int64 labels."""
    if name == "heloc":
        X, y = load_heloc(data_home=data_home, return_X_y=True)
        X = np.where(np.isin(X, [-7, -8]), -9, X)
        keep = (X != -9).any(axis=1)
        X_tr, X_te, y_tr, y_te = train_test_split(X[keep], y[keep], test_size=0.3,
                                                  stratify=y[keep], random_state=SEED)
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        source = (f"FICO HELOC, {keep.sum():,} rows with a value, 70/30 stratified split "
                  f"(seed {SEED}), standardised")
    else:
        adult = load_adult(data_home=data_home, as_frame=True)
        X, y, test = adult.data, np.asarray(adult.target), np.asarray(adult.is_test)
        categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        numeric = [c for c in X.columns if c not in categorical]
        prep = ColumnTransformer([
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)])
        X_tr = prep.fit_transform(X[~test])
        X_te = prep.transform(X[test])
        y_tr, y_te = y[~test], y[test]
        source = (f"UCI Adult, official train/test files, {len(numeric)} numbers standardised "
                  f"+ {len(categorical)} categories one-hot")
    return (np.ascontiguousarray(X_tr, dtype=np.float32),
            np.ascontiguousarray(X_te, dtype=np.float32),
            np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64), source)


def subsample(data, n_train, n_test, seed=0):
    """The first ``n_train`` / ``n_test`` rows of a shuffled ``(X_tr, X_te, y_tr, y_te)``."""
    X_tr, X_te, y_tr, y_te = data
    rng = np.random.default_rng(seed)
    tr = rng.permutation(len(X_tr))[:n_train]
    te = rng.permutation(len(X_te))[:n_test]
    return X_tr[tr], X_te[te], y_tr[tr], y_te[te]


# -- teachers shared across students ------------------------------------------------------------
def _digest(array):
    array = np.ascontiguousarray(array)
    return hashlib.blake2b(array.view(np.uint8), digest_size=16).hexdigest() + str(array.shape)


class TeacherCache:
    """Fitted teachers of one (table, teacher, seed), keyed by parameters and data.

    Shared, not copied: ``copy.deepcopy`` (what ``clone`` does to a parameter that is not an
    estimator) returns the cache itself, and a pickle of it is an empty cache (a fitted
    distiller's pickle does not carry every teacher of the run). ``fits`` counts the fits,
    ``seconds`` adds up their time.
    """

    def __init__(self):
        self.fitted = {}
        self.fits = 0
        self.seconds = 0.0

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return type(self), ()

    def fit(self, estimator, X, y):
        """``clone(estimator).fit(X, y)``, fitted only the first time these are seen."""
        key = (type(estimator).__name__, repr(sorted(estimator.get_params().items())),
               _digest(X), _digest(y))
        if key not in self.fitted:
            start = time.perf_counter()
            self.fitted[key] = clone(estimator).fit(X, y)
            self.seconds += time.perf_counter() - start
            self.fits += 1
        return self.fitted[key]


class SharedTeacher(ClassifierMixin, BaseEstimator):
    """A classifier whose fits go through a :class:`TeacherCache` (see the module docstring).

    Parameters
    ----------
    estimator : classifier
        The teacher; give it a fixed ``random_state``, so that equal rows give equal fits.
    cache : TeacherCache
        Where fitted teachers are kept.
    """

    def __init__(self, estimator, cache):
        self.estimator = estimator
        self.cache = cache

    def fit(self, X, y):
        """Take the fitted estimator for ``X, y`` from the cache, fitting it if missing."""
        self.estimator_ = self.cache.fit(self.estimator, X, y)
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict_proba(self, X):
        """The fitted estimator's ``predict_proba``."""
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        """The fitted estimator's ``predict``."""
        return self.estimator_.predict(X)


def make_teacher(kind, seed, args):
    """The unfitted teacher ``kind``, or ``None`` when its package is missing."""
    if kind == "rf":
        return RandomForestClassifier(n_estimators=args.trees, n_jobs=args.fit_jobs,
                                      random_state=seed)
    lightgbm = optional("lightgbm")
    if lightgbm is None:
        return None
    return lightgbm.LGBMClassifier(n_estimators=args.trees, n_jobs=args.fit_jobs,
                                   random_state=seed, verbose=-1)


def one_thread(model):
    """Set a fitted teacher to predict on one thread (it may have been fitted on more)."""
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)
    return model


def width_name(width):
    return "x".join(map(str, width))


def make_student(width, seed, args):
    return MLPStudent(hidden_layer_sizes=tuple(width), max_epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, random_state=seed)


def make_distiller(teacher, width, augment, seed, args):
    extra = {} if augment is None else {"augment": augment, "augment_size": args.augment_size}
    return CrossFitDistiller(teacher, make_student(width, seed, args), n_folds=args.folds,
                             random_state=seed, **extra)


# -- quality ------------------------------------------------------------------------------------
def quality(model, X, y):
    """Test AUC, accuracy, NLL and ECE under ``test_*``."""
    proba = model.predict_proba(X)
    return {"test_auc": float(roc_auc_score(y, proba[:, 1])), **scores(y, proba, "test")}


# -- latency ------------------------------------------------------------------------------------
def single_rows(X, n=N_SINGLE):
    """The first ``n`` rows of ``X``, each a C-contiguous ``(1, n_features)`` array."""
    return [np.ascontiguousarray(X[i:i + 1]) for i in range(min(n, len(X)))]


def cycling(predict, rows):
    """A call of ``predict`` on the next of ``rows`` each time, in turn."""
    rows = itertools.cycle(rows)
    return lambda: predict(next(rows))


def measure(predict, X, reference, repeats):
    """Single-row ms (cycling rows), per-row µs in a batch of 1,000, max abs diff to
    ``reference`` (the model's own probabilities of the batch)."""
    batch = np.ascontiguousarray(X[:N_BATCH])
    proba = np.asarray(predict(batch), dtype=np.float64)
    return {"one_row_ms": 1e3 * median_time(cycling(predict, single_rows(X)), repeats),
            "batch_us_per_row": 1e6 * median_time(lambda: predict(batch),
                                                  max(3, repeats // 20)) / len(batch),
            "max_abs_diff": float(np.abs(proba - reference).max())}


class Unavailable(Exception):
    """A runtime that does not apply here (a package missing, a conversion refused)."""


def _two_columns(out, n_rows):
    """Probabilities ``(n, 2)`` from a runtime's output of one or two columns."""
    out = np.asarray(out, dtype=np.float64).reshape(n_rows, -1)
    return np.column_stack([1 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out


def _session(onx):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    data = onx.SerializeToString()
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[1].name
    return (lambda rows: session.run([output], {name: rows})[0]), len(data)


def serve_sklearn(model, X, workdir, args):
    """The model's own ``predict_proba``; artifact: its pickle."""
    return model.predict_proba, 0.0, "pickle", len(pickle.dumps(model))


def serve_onnx(model, X, workdir, args):
    """onnxruntime on skl2onnx's (or onnxmltools', for LightGBM) conversion, zipmap off."""
    start = time.perf_counter()
    if type(model).__name__ == "LGBMClassifier":
        onnxmltools = optional("onnxmltools")
        if onnxmltools is None:
            raise Unavailable("onnxmltools is not installed")
        from onnxmltools.convert.common.data_types import FloatTensorType

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = onnxmltools.convert_lightgbm(
                model, initial_types=[("X", FloatTensorType([None, X.shape[1]]))],
                zipmap=False)
    else:
        from skdistill.onnx import to_onnx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}})
    convert_s = time.perf_counter() - start
    predict, size = _session(onx)
    return predict, convert_s, "ONNX", size


def serve_tl2cgen(model, X, workdir, args):
    """treelite's import of the forest compiled by tl2cgen into a shared library."""
    treelite, tl2cgen = optional("treelite"), optional("tl2cgen")
    if treelite is None or tl2cgen is None:
        raise Unavailable("treelite and tl2cgen are not installed")
    start = time.perf_counter()
    if type(model).__name__ == "LGBMClassifier":
        imported = treelite.frontend.from_lightgbm(model.booster_)
    else:
        imported = treelite.sklearn.import_model(model)
    path = Path(workdir) / f"{type(model).__name__}_{len(os.listdir(workdir))}.so"
    tl2cgen.export_lib(imported, toolchain=args.toolchain, libpath=str(path),
                       params={"parallel_comp": args.parallel_comp or args.trees},
                       nthread=os.cpu_count())
    convert_s = time.perf_counter() - start
    predictor = tl2cgen.Predictor(str(path), nthread=1)

    def predict(rows):
        return _two_columns(predictor.predict(tl2cgen.DMatrix(rows)), len(rows))

    return predict, convert_s, ".so", path.stat().st_size


def serve_lleaves(model, X, workdir, args):
    """LightGBM's model compiled by lleaves (LLVM); artifact: its cached object file."""
    lleaves = optional("lleaves")
    if lleaves is None:
        raise Unavailable("lleaves is not installed")
    start = time.perf_counter()
    text = Path(workdir) / f"lightgbm_{len(os.listdir(workdir))}.txt"
    model.booster_.save_model(str(text))
    compiled = lleaves.Model(model_file=str(text))
    cache = text.with_suffix(".o")
    compiled.compile(cache=str(cache))
    convert_s = time.perf_counter() - start

    def predict(rows):
        return _two_columns(compiled.predict(rows, n_jobs=1), len(rows))

    return predict, convert_s, "lleaves .o", cache.stat().st_size


SERVERS = {"sklearn": serve_sklearn, "onnxruntime": serve_onnx, "tl2cgen": serve_tl2cgen,
           "lleaves": serve_lleaves}
#: The runtimes of each kind of model (besides ``skdistill``'s for distillers and students).
MODEL_RUNTIMES = {"rf": ("sklearn", "onnxruntime", "tl2cgen"),
                  "lgbm": ("sklearn", "onnxruntime", "tl2cgen", "lleaves"),
                  "MLPClassifier": ("sklearn", "onnxruntime")}


def shipped(distiller):
    """The distiller as ``keep_teachers=False`` leaves it (what one ships), without a refit."""
    out = copy.copy(distiller).set_params(keep_teachers=False)
    out._drop_teachers()
    return out


def latency_rows(model, kind, X, args, workdir):
    """One row per runtime of ``model``: timings and parity, or why it was skipped."""
    reference = np.asarray(model.predict_proba(np.ascontiguousarray(X[:N_BATCH])))
    if kind in MODEL_RUNTIMES:
        runtimes = [(r, None) for r in MODEL_RUNTIMES[kind]]
    elif hasattr(model, "student_"):  # a distiller: its predict_proba, its student_'s, ONNX
        runtimes = [("skdistill", "distiller"), ("skdistill", "student_"),
                    ("onnxruntime", None)]
    else:  # a skdistill student fitted on the labels
        runtimes = [("skdistill", None), ("onnxruntime", None)]
    rows = []
    for runtime, part in runtimes:
        row = {"runtime": runtime if part is None else f"{runtime} ({part})"}
        if runtime not in args.runtimes:
            continue
        try:
            if runtime == "skdistill":
                target = model.student_ if part == "student_" else model
                artifact = shipped(model) if part == "distiller" else target
                served = (target.predict_proba, 0.0, "pickle", len(pickle.dumps(artifact)))
            else:
                served = SERVERS[runtime](model, X, workdir, args)
        except Unavailable as exc:
            rows.append({**row, "skipped": str(exc)})
            continue
        predict, convert_s, artifact, size = served
        row.update(convert_s=convert_s, artifact=artifact, artifact_bytes=size)
        row.update(measure(predict, X, reference, args.repeats))
        rows.append(row)
    return rows


# -- results ------------------------------------------------------------------------------------
class Recorder:
    """The run's results, rewritten to ``path`` (when given) after each addition."""

    def __init__(self, path, args):
        self.path = path
        self.results = {"args": {k: v for k, v in vars(args).items()},
                        "environment": environment(), "tables": {}, "quality": [],
                        "latency": [], "teacher_fits": [], "notes": []}

    def note(self, message):
        print(message, flush=True)
        self.results["notes"].append(message)
        self.write()

    def add(self, part, rows):
        self.results[part].extend(rows)
        self.write()

    def write(self):
        if self.path is None:
            return
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.results, fh, indent=1, default=str)
        os.replace(tmp, self.path)


def environment():
    versions = {}
    for name in ("torch", "sklearn", "onnxruntime", "skl2onnx", *EXTRAS.values()):
        module = optional(name)
        versions[name] = getattr(module, "__version__", None) if module else None
    return {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "versions": versions}


def model_label(model):
    """The display name of a model row."""
    if model["role"] == "teacher":
        return f"{TEACHER_NAMES[model['teacher']]} ({model['trees']} trees), teacher"
    if model["role"] == "distilled":
        aug = "" if model["augment"] == "none" else f" + {model['augment']}"
        return f"CrossFit {model['teacher']} → MLPStudent({model['width']}){aug}"
    return f"{model['kind']}({model['width']}) on labels"


# -- the run ------------------------------------------------------------------------------------
def run_table(dataset, data, args, recorder, workdir):
    """Quality (every seed) and serving (the first seed) of every model on one table."""
    X_tr, X_te, y_tr, y_te = data
    latency_seed = args.seeds[0]
    seeds = args.seeds if "quality" in args.parts else [latency_seed]
    augments = [None] + (["munge"] if args.munge else [])

    def record(model, fitted, seed, fit_s, kind=None):
        row = {"dataset": dataset, "seed": seed, "fit_s": fit_s, **model,
               **quality(fitted, X_te, y_te)}
        if hasattr(fitted, "n_augmented_"):
            row["n_augmented"] = int(fitted.n_augmented_)
        recorder.add("quality", [row])
        print(f"  {dataset} seed {seed}: {model_label(model)}: AUC {row['test_auc']:.4f}, "
              f"NLL {row['test_nll']:.4f} (fit {fit_s:.1f} s)", flush=True)
        if "latency" in args.parts and seed == latency_seed:
            rows = latency_rows(fitted, kind, X_te, args, workdir)
            recorder.add("latency", [{"dataset": dataset, "seed": seed, **model, **r}
                                     for r in rows])
            for r in rows:
                print(f"    {r['runtime']}: " + (f"skipped, {r['skipped']}" if "skipped" in r
                      else f"1 row {r['one_row_ms']:.4f} ms, {r['batch_us_per_row']:.2f} "
                           f"us/row, diff {r['max_abs_diff']:.1e}, {r['artifact']} "
                           f"{r['artifact_bytes'] / 1e3:,.0f} KB in {r['convert_s']:.1f} s"),
                      flush=True)

    for kind in args.teachers:
        if make_teacher(kind, 0, args) is None:
            recorder.note(f"{dataset}: teacher {kind} skipped: lightgbm is not installed "
                          "(pip install skdistill[serving])")
            continue
        for seed in seeds:
            cache = TeacherCache()
            teacher = make_teacher(kind, seed, args)
            fitted = one_thread(cache.fit(teacher, X_tr, y_tr))
            record({"role": "teacher", "teacher": kind, "trees": args.trees}, fitted, seed,
                   cache.seconds, kind)
            for width in args.widths:
                for augment in augments:
                    model = {"role": "distilled", "teacher": kind, "width": width_name(width),
                             "augment": augment or "none"}
                    start, shared_s = time.perf_counter(), cache.seconds
                    distiller = make_distiller(SharedTeacher(teacher, cache), width, augment,
                                               seed, args).fit(X_tr, y_tr)
                    # the student's own time: the shared fold teachers' fits are counted apart
                    record(model, distiller, seed,
                           time.perf_counter() - start - (cache.seconds - shared_s))
            recorder.results["teacher_fits"].append(
                {"dataset": dataset, "teacher": kind, "seed": seed, "fits": cache.fits,
                 "seconds": cache.seconds})
            del cache, fitted
    for seed in seeds:
        for width in args.widths:
            for kind, make in (("MLPClassifier", lambda: MLPClassifier(
                    hidden_layer_sizes=tuple(width), early_stopping=True, random_state=seed)),
                               ("MLPStudent", lambda: make_student(width, seed, args))):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning
                    fitted = make().fit(X_tr, y_tr)
                record({"role": "reference", "kind": kind, "width": width_name(width)},
                       fitted, seed, time.perf_counter() - start,
                       kind if kind == "MLPClassifier" else None)


# -- tables -------------------------------------------------------------------------------------
MODEL_FIELDS = ("role", "teacher", "trees", "kind", "width", "augment")


def model_key(row):
    return tuple(row.get(field) for field in MODEL_FIELDS)


def _groups(rows, dataset):
    groups = {}
    for row in rows:
        if row["dataset"] == dataset:
            groups.setdefault(model_key(row), []).append(row)
    return groups


def _label(key):
    return model_label(dict(zip(MODEL_FIELDS, key)))


def quality_table(results, dataset):
    lines = ["| model | seeds | AUC | NLL | ECE | accuracy | fit s |",
             "|---|---|---|---|---|---|---|"]
    for key, rows in _groups(results["quality"], dataset).items():
        lines.append(f"| {_label(key)} | {len(rows)} | " + " | ".join(
            mean_sd([r[f"test_{m}"] for r in rows]) for m in ("auc", "nll", "ece", "accuracy"))
            + f" | {np.mean([r['fit_s'] for r in rows]):.1f} |")
    return lines


def _ms(value):
    return f"{value:.4f}" if value < 1 else f"{value:.2f}"


def latency_table(results, dataset):
    lines = ["| model | runtime | 1 row ms | µs/row (1,000 rows) | max abs diff | "
             "convert/compile s | artifact | KB |", "|---|---|---|---|---|---|---|---|"]
    for key, rows in _groups(results["latency"], dataset).items():
        for row in rows:
            if "skipped" in row:
                lines.append(f"| {_label(key)} | {row['runtime']} | skipped: {row['skipped']} "
                             "| | | | | |")
                continue
            lines.append(f"| {_label(key)} | {row['runtime']} | {_ms(row['one_row_ms'])} | "
                         f"{row['batch_us_per_row']:.2f} | {row['max_abs_diff']:.1e} | "
                         f"{row['convert_s']:.1f} | {row['artifact']} | "
                         f"{row['artifact_bytes'] / 1e3:,.0f} |")
    return lines


def goal_lines(results, dataset, margin=AUC_MARGIN):
    """The goal check of each distilled student of ``dataset``: "met" / "NOT met"."""
    quality_groups = _groups(results["quality"], dataset)
    latency_groups = _groups(results["latency"], dataset)
    lines, n_quality, n_met, n_students, n_timed = [], 0, 0, 0, 0
    for key, rows in quality_groups.items():
        model = dict(zip(MODEL_FIELDS, key))
        if model["role"] != "distilled":
            continue
        teacher = [r for k, g in quality_groups.items() for r in g
                   if k[0] == "teacher" and k[1] == model["teacher"]]
        if not teacher:
            continue
        n_students += 1
        auc, nll = np.mean([r["test_auc"] for r in rows]), np.mean([r["test_nll"] for r in rows])
        t_auc = np.mean([r["test_auc"] for r in teacher])
        t_nll = np.mean([r["test_nll"] for r in teacher])
        quality_met = auc >= t_auc - margin and nll <= t_nll
        n_quality += quality_met
        text = (f"quality {'met' if quality_met else 'NOT met'} (AUC {auc:.4f} "
                f"{'≥' if auc >= t_auc - margin else '<'} teacher {t_auc:.4f} − {margin}; "
                f"NLL {nll:.4f} {'≤' if nll <= t_nll else '>'} teacher {t_nll:.4f})")
        onnx = [r["one_row_ms"] for r in latency_groups.get(key, [])
                if r["runtime"] == "onnxruntime" and "one_row_ms" in r]
        served = [r for k, g in latency_groups.items() for r in g
                  if k[0] == "teacher" and k[1] == model["teacher"] and "one_row_ms" in r]
        if onnx and served:
            n_timed += 1
            fastest = min(served, key=lambda r: r["one_row_ms"])
            latency_met = onnx[0] < fastest["one_row_ms"]
            n_met += quality_met and latency_met
            text += (f"; single row {'met' if latency_met else 'NOT met'} (ONNX "
                     f"{_ms(onnx[0])} ms {'<' if latency_met else '≥'} teacher's fastest, "
                     f"{fastest['runtime']}, {_ms(fastest['one_row_ms'])} ms)")
        else:
            text += "; single row not measured"
        lines.append(f"- {_label(key)}: {text}")
    goal = (f"(AUC ≥ teacher's − {margin}, NLL ≤ teacher's, single-row ONNX faster than the "
            "teacher's fastest runtime)")
    if n_timed == n_students:
        head = (f"Goal check, {dataset}: met by {n_met} of {n_students} distilled students "
                f"{goal}{'' if n_met else ': NOT met'}.")
    else:
        head = (f"Goal check, {dataset}: quality met by {n_quality} of {n_students} distilled "
                f"students; single-row latency not measured for {n_students - n_timed} of "
                f"them {goal}{'' if n_quality else ': quality NOT met'}.")
    return [head, ""] + lines


def markdown(results):
    """The tables for RESULTS.md: per table, quality, serving, the goal check."""
    args, env = results["args"], results["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    out = [f"Machine: {env['machine']}, {env['cpus']} CPUs, Python {env['python']}; {versions}. "
           f"One thread everywhere. Seeds {args['seeds']} (serving: seed {args['seeds'][0]}'s "
           f"models); {args['trees']} trees; {args['epochs']} epochs; munge augment_size "
           f"{args['augment_size']}; tl2cgen parallel_comp "
           f"{args['parallel_comp'] or 'one file per tree'}; "
           f"{args['repeats']} single-row calls."]
    for dataset, info in results["tables"].items():
        out += ["", f"### {dataset}", "", f"{info['source']}: train {info['train']}, test "
                f"{info['test']}, {info['features']} features.", "",
                "Quality on the test set (mean ± sd over seeds):", ""]
        out += quality_table(results, dataset)
        fits = [f for f in results.get("teacher_fits", []) if f["dataset"] == dataset]
        if fits:
            out += ["", "fit s: the teacher fitted on all rows; a student's own training "
                    "(the fold teachers, fitted once per seed and shared, apart): "
                    + "; ".join(f"{kind} {np.mean([f['fits'] for f in group]):.0f} teacher "
                                f"fits per seed, {np.mean([f['seconds'] for f in group]):.1f} s"
                                for kind, group in group_rows(fits, "teacher").items()) + "."]
        if any(r["dataset"] == dataset for r in results["latency"]):
            out += ["", "Serving, one thread (max abs diff: against the model's own "
                    "predict_proba on 1,000 test rows):", ""]
            out += latency_table(results, dataset)
        out += [""] + goal_lines(results, dataset)
    if results["notes"]:
        out += ["", "Notes:", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(out) + "\n"


# -- command line -------------------------------------------------------------------------------
def _width(text):
    try:
        width = tuple(int(w) for w in text.lower().split("x"))
    except ValueError:
        width = ()
    if not width or min(width) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a width such as 32 or 64x64")
    return width


def parse_args(argv=()):
    """The options; ``--quick`` shrinks everything (a smoke run)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks serving",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--teachers", nargs="+", choices=TEACHERS, default=list(TEACHERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="quality over every seed; serving with the first seed's models")
    parser.add_argument("--widths", nargs="+", type=_width, default=[(32,), (64, 64)],
                        help="hidden layer sizes of the MLPs, such as 32 or 64x64")
    parser.add_argument("--augment-size", type=float, default=2.0,
                        help="munge rows per labelled row (0: no munge students)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--repeats", type=int, default=2000,
                        help="timed single-row calls (1,000 rows: a 20th)")
    parser.add_argument("--trees", type=int, default=500, help="trees of each teacher")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30, help="MLPStudent's max_epochs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--fit-jobs", type=int, default=1,
                        help="n_jobs of the teachers' fits (they predict on one thread)")
    parser.add_argument("--parallel-comp", type=int, default=None,
                        help="tl2cgen's parallel_comp, the C files a forest is split into "
                             "(default: one per tree)")
    parser.add_argument("--toolchain", default="gcc", help="tl2cgen's C compiler")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="keep at most this many training rows (and test rows)")
    parser.add_argument("--data-home", default=None,
                        help="data folder; default $SKDISTILL_DATA, else ../shared/data")
    parser.add_argument("--quick", action="store_true",
                        help="10 trees, 2 epochs, one seed, 20 repeats, 2,000 rows (a smoke run)")
    parser.add_argument("--json", default=None, help="write results here, after each model")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    parser.add_argument("--from-json", default=None,
                        help="render the tables of an earlier --json run and stop")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.trees, args.epochs, args.repeats = args.seeds[:1], 10, 2, 20
        args.max_rows = min(args.max_rows or 2000, 2000)
    args.munge = args.augment_size > 0
    return args


def main(argv=()):
    args = parse_args(argv)
    if args.from_json:
        text = markdown(json.loads(Path(args.from_json).read_text(encoding="utf-8")))
        print(text)
        if args.markdown:
            Path(args.markdown).write_text(text, encoding="utf-8")
        return 0
    recorder = Recorder(args.json, args)
    results = recorder.results
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1), tempfile.TemporaryDirectory(prefix="serving-") as workdir:
            for dataset in args.datasets:
                try:
                    *data, source = load_table(dataset, resolve_data_home(args.data_home))
                except DataFileNotFoundError as exc:
                    recorder.note(f"{dataset}: skipped, {exc}")
                    continue
                if args.max_rows:
                    data = subsample(data, args.max_rows, args.max_rows)
                results["tables"][dataset] = {"source": source, "train": len(data[0]),
                                              "test": len(data[1]),
                                              "features": data[0].shape[1]}
                print(f"{dataset}: {source}; train {data[0].shape}, test {data[1].shape}",
                      flush=True)
                start = time.perf_counter()
                run_table(dataset, data, args, recorder, workdir)
                results["tables"][dataset]["seconds"] = time.perf_counter() - start
                recorder.write()
    finally:
        torch.set_num_threads(threads)
    if not results["tables"]:
        print("serving: no data, every table was skipped (see above); set --data-home or "
              "SKDISTILL_DATA to a folder with heloc/ and adult/")
        return 2
    text = markdown(results)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0
