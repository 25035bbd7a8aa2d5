"""Student overhead: MLPStudent fit and predict_proba against a bare torch loop, same process.

``python -m benchmarks students [--epochs 5] [--repeats 3] [--threads 2]
[--data mnist|heloc] [--grid]``

``--data heloc`` times the tiny tabular network 23-32-2 on FICO HELOC (standardised), where a
fixed per-batch cost of the wrapper shows most. ``--grid`` instead times
``GridSearchCV(MLPStudent, n_jobs=2)`` against ``n_jobs=1`` on the same data (torch threads
per worker: see the threads section of ``doc/extending.md``).

``python -m benchmarks students --part predict [--calls 2000] [--batch-calls 200]
[--threads 1] [--models ...] [--quick] [--json FILE]`` times serving calls instead: the
median latency of one call on one row (cycling through the rows from call to call) and on
1,000 rows, for each model against the bare torch forward of the same network, called in
turn in one process (torch and BLAS at ``--threads`` threads). The data are synthetic,
shaped like FICO HELOC (23 standardised float32 features, two classes; latency does not
depend on accuracy). The models (``--models``): ``MLPStudent`` (64, 64) and (32,), scikit-learn's
``MLPClassifier`` of the same widths (its ``predict_proba``, as a reference, against the
bare forward of the student of those widths), a ``KnowledgeDistiller`` with the (64, 64)
student, ``Pipeline(StandardScaler, that distiller)`` (bare: the scaling in NumPy, then the
network), a ``GPEDDistiller``'s ``predict_uncertainty`` (bare: the multi-head network and
the same decomposition of its outputs) and a ``LatentBEStudent`` (bare: its merged network).
The goals, for the skdistill models but the scaled one (whose call includes
``StandardScaler``'s own checks): one row within 2 x the bare forward (and faster than
``MLPClassifier`` of the same widths), 1,000 rows within 1.2 x.
"""
import argparse
import json
import platform
import time
import warnings

import numpy as np
import torch
from torch import nn

from skdistill.nets import MLP
from skdistill.students import MLPStudent


def load_data(n_rows=10000, data="mnist"):
    """The MNIST test split (real data) when present, else a synthetic stand-in of its shape.

    ``data="heloc"``: FICO HELOC, standardised (10,459 x 23, two classes).
    """
    if data == "heloc":
        from sklearn.preprocessing import StandardScaler

        from skdistill.datasets import load_heloc

        X, y = load_heloc(return_X_y=True)
        X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64)).astype(np.float32)
        return X, np.asarray(y).astype(np.int64), "FICO HELOC (standardised)"
    try:
        from skdistill.datasets import load_mnist

        X, y = load_mnist(subset="test", return_X_y=True)
        return X[:n_rows].astype(np.float32), y[:n_rows], "MNIST test split"
    except (OSError, ImportError):
        rng = np.random.default_rng(0)
        X = rng.random((n_rows, 784), dtype=np.float32)
        return X, (X[:, :10].argmax(axis=1)), "synthetic 784-feature data"


def bare_fit(X, y, hidden, epochs, batch_size, lr, seed):
    """The loop a PyTorch user would write by hand for the same network and data."""
    torch.manual_seed(seed)
    model = MLP(X.shape[1], int(y.max()) + 1, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for i in range(0, len(Xt), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model, (time.perf_counter() - start) / epochs


def bare_predict_proba(model, X, batch_size=4096):
    model.eval()
    Xt = torch.from_numpy(X)
    with torch.inference_mode():
        out = [torch.softmax(model(Xt[i:i + batch_size]), dim=1)
               for i in range(0, len(Xt), batch_size)]
    return torch.cat(out).numpy()


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=()):
    parser = argparse.ArgumentParser(prog="python -m benchmarks students")
    parser.add_argument("--part", choices=["fit", "predict"], default="fit",
                        help="fit: training and prediction throughput (the default); "
                             "predict: serving latency of every model, one row and 1,000")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (and BLAS threads with --part predict); default "
                             "2, or 1 with --part predict")
    parser.add_argument("--hidden", type=int, nargs="+", default=[400, 400])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--data", choices=["mnist", "heloc"], default="mnist")
    parser.add_argument("--grid", action="store_true",
                        help="time GridSearchCV(n_jobs=2) against n_jobs=1 instead")
    parser.add_argument("--calls", type=int, default=2000,
                        help="--part predict: timed single-row calls per model")
    parser.add_argument("--batch-calls", type=int, default=200,
                        help="--part predict: timed 1,000-row calls per model")
    parser.add_argument("--models", nargs="+", choices=PREDICT_MODELS, default=None,
                        help="--part predict: the models timed (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="--part predict: 50 and 5 calls, small fits (a smoke run)")
    parser.add_argument("--json", default=None,
                        help="--part predict: write the rows to this file")
    args = parser.parse_args(argv)
    if args.part == "predict":
        args.threads = 1 if args.threads is None else args.threads
        return predict_part(args, argv)
    args.threads = 2 if args.threads is None else args.threads
    torch.set_num_threads(args.threads)
    X, y, source = load_data(data=args.data)
    if args.grid:
        return grid(args, X, y, source)
    hidden = tuple(args.hidden)
    print(f"data: {source}, X {X.shape}; MLP {X.shape[1]}-{'-'.join(map(str, hidden))}-10, "
          f"batch {args.batch_size}, {args.epochs} epochs, {args.repeats} repeats, "
          f"{args.threads} torch threads; {platform.processor() or platform.machine()}")

    fit_ratios, pred_ratios = [], []
    for rep in range(args.repeats):  # interleave so drifting machine load hits both alike
        model, bare_epoch = bare_fit(X, y, hidden, args.epochs, args.batch_size, 1e-3, rep)
        student = MLPStudent(hidden_layer_sizes=hidden, max_epochs=args.epochs,
                             batch_size=args.batch_size, lr=1e-3, random_state=rep)
        start = time.perf_counter()
        student.fit(X, y)
        student_epoch = (time.perf_counter() - start) / args.epochs
        bare_pred = timed(lambda: bare_predict_proba(model, X), 5)
        student_pred = timed(lambda: student.predict_proba(X), 5)
        fit_ratios.append(student_epoch / bare_epoch)
        pred_ratios.append(student_pred / bare_pred)
        print(f"repeat {rep}: fit {student_epoch:.3f} s/epoch vs bare {bare_epoch:.3f} "
              f"(x{fit_ratios[-1]:.3f}); predict_proba {len(X) / student_pred:,.0f} rows/s vs "
              f"bare {len(X) / bare_pred:,.0f} (x{pred_ratios[-1]:.3f} time)")
    fit_r, pred_r = float(np.median(fit_ratios)), float(np.median(pred_ratios))
    print(f"fit ratios {[round(r, 3) for r in fit_ratios]}, "
          f"predict ratios {[round(r, 3) for r in pred_ratios]}")
    print(f"median ratio, MLPStudent / bare torch: fit per epoch x{fit_r:.3f} (target <= 1.3), "
          f"predict_proba time x{pred_r:.3f} (target <= 1.2)")
    return 0


def grid(args, X, y, source):
    """Wall time of GridSearchCV over MLPStudent with n_jobs=2 against n_jobs=1."""
    import os

    from sklearn.model_selection import GridSearchCV

    n = min(len(X), 4000)
    X, y = X[:n], y[:n]
    params = {"hidden_layer_sizes": [(32,), (64,)], "lr": [1e-3, 3e-3]}
    print(f"data: {source}, {n} rows; GridSearchCV(MLPStudent, 4 candidates x 3 folds, "
          f"{args.epochs} epochs); {os.cpu_count()} cores; parent torch threads "
          f"{torch.get_num_threads()}")
    times = {1: [], 2: []}
    for rep in range(args.repeats):
        for n_jobs in (1, 2):
            search = GridSearchCV(MLPStudent(max_epochs=args.epochs, batch_size=args.batch_size,
                                             random_state=rep), params, cv=3, n_jobs=n_jobs)
            start = time.perf_counter()
            search.fit(X, y)
            times[n_jobs].append(time.perf_counter() - start)
        print(f"repeat {rep}: n_jobs=1 {times[1][-1]:.2f} s, n_jobs=2 {times[2][-1]:.2f} s "
              f"(ratio {times[2][-1] / times[1][-1]:.3f})")
    ratio = float(np.median(times[2]) / np.median(times[1]))
    print(f"median n_jobs=2 / n_jobs=1: {ratio:.3f} (target <= 0.6)")
    return 0


# The models of ``--part predict``, in the order they are timed.
PREDICT_MODELS = ("mlp_64_64", "mlp_32", "sklearn_mlp_64_64", "sklearn_mlp_32", "kd",
                  "scaled_kd", "gped_uncertainty", "latent_be")

# ``--part predict``'s goals: one row within this times the bare forward, 1,000 rows within
# the second.
PREDICT_GOALS = (2.0, 1.2)


def heloc_like(n_rows=3000, seed=0):
    """Synthetic float32 data shaped like FICO HELOC, standardised: 23 features, 2 classes."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n_rows, n_features=23, n_informative=10,
                               random_state=seed)
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32), y


def _softmax_forward(network):
    def bare(x):
        with torch.inference_mode():
            return torch.softmax(network(torch.from_numpy(x)), dim=1).numpy()
    return bare


def predict_models(X, y, names, epochs, quick):
    """``{name: (call, bare call, what the bare call is)}``: each a function of a float32
    array of rows, fitted on ``X, y``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skdistill.distillers import GPEDDistiller, KnowledgeDistiller
    from skdistill.distillers.gped import decompose_uncertainty, head_expectation
    from skdistill.students import LatentBEStudent
    from skdistill.teachers import SGLDTeacher

    def student(hidden):
        return MLPStudent(hidden_layer_sizes=hidden, max_epochs=epochs, random_state=0)

    made = {}
    for name in names:
        if name.startswith(("mlp_", "sklearn_mlp_")):
            hidden = (64, 64) if name.endswith("64_64") else (32,)
            fitted = student(hidden).fit(X, y)
            bare = _softmax_forward(fitted.module_)
            if name.startswith("sklearn"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    reference = MLPClassifier(hidden, max_iter=epochs, random_state=0).fit(X, y)
                made[name] = (reference.predict_proba, bare,
                              f"softmax of the MLPStudent {hidden} network")
            else:
                made[name] = (fitted.predict_proba, bare, "softmax of the network")
        elif name in ("kd", "scaled_kd"):
            kd = KnowledgeDistiller(LogisticRegression(), student((64, 64)), random_state=0)
            if name == "kd":
                kd.fit(X, y)
                made[name] = (kd.predict_proba, _softmax_forward(kd.student_.module_),
                              "softmax of the student's network")
                continue
            model = make_pipeline(StandardScaler(), kd).fit(X, y)
            scaler = model[0]
            mean, scale = scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)
            forward = _softmax_forward(model[-1].student_.module_)
            made[name] = (model.predict_proba, lambda x: forward((x - mean) / scale),
                          "the scaling in NumPy, then the softmax of the student's network")
        elif name == "gped_uncertainty":
            n_iter = 60 if quick else 600
            teacher = SGLDTeacher(hidden_layer_sizes=(32,), step_size=2e-4, n_iter=n_iter,
                                  burn_in=n_iter // 3, thinning=2, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # a short chain: the budget
                gped = GPEDDistiller(teacher, MLPStudent(hidden_layer_sizes=(64, 64),
                                                         random_state=0),
                                     target=["predictive", "entropy"], n_iter=n_iter,
                                     burn_in=n_iter // 3, thinning=1, random_state=0).fit(X, y)
            network = gped.module_

            def bare_uncertainty(x, network=network):
                with torch.inference_mode():
                    out = network(torch.from_numpy(x))
                    return [v.numpy() for v in decompose_uncertainty(
                        out["predictive"].double(), head_expectation(out["entropy"].double()))]

            made[name] = (gped.predict_uncertainty, bare_uncertainty,
                          "the multi-head network and the same decomposition of its outputs")
        elif name == "latent_be":
            latent = LatentBEStudent(n_members=4, hidden_layer_sizes=(64, 64),
                                     max_epochs=epochs, random_state=0).fit(X, y)
            made[name] = (latent.predict_proba, _softmax_forward(latent.merged_module_),
                          "softmax of the merged network")
    return made


def median_latency(pairs, batches):
    """Median seconds of one call of each function of ``pairs`` over ``batches`` (a list of
    arrays, one per call), the functions called in turn on each batch (after one warm-up
    call each), so that a drifting machine load hits them alike."""
    times = [[] for _ in pairs]
    for fn in pairs:
        fn(batches[0])
    for batch in batches:
        for k, fn in enumerate(pairs):
            start = time.perf_counter()
            fn(batch)
            times[k].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def predict_part(args, argv):
    """``--part predict``: serving latency against the bare forward (see the module doc)."""
    from threadpoolctl import threadpool_limits

    if args.quick:
        args.calls, args.batch_calls = 50, 5
    names = list(args.models or PREDICT_MODELS)
    n_train, epochs = (500, 1) if args.quick else (3000, 5)
    X, y = heloc_like(max(n_train, 3000))
    torch.set_num_threads(args.threads)
    made = predict_models(X[:n_train], y[:n_train], names, epochs, args.quick)
    singles = [X[i % len(X):i % len(X) + 1] for i in range(args.calls)]
    starts = range(0, len(X) - 1000 + 1, 500)
    thousands = [X[starts[i % len(starts)]:][:1000] for i in range(args.batch_calls)]
    print(f"data: synthetic, FICO HELOC's shape (23 float32 features), {n_train} training "
          f"rows, {epochs} epoch(s); medians of {args.calls} single-row and "
          f"{args.batch_calls} 1,000-row calls; {args.threads} thread(s); torch "
          f"{torch.__version__}; {platform.processor() or platform.machine()}")
    print("| model | rows | call us | bare forward us | call / bare |\n|---|---|---|---|---|")
    rows = []
    with threadpool_limits(args.threads):
        for name in names:
            call, bare, bare_is = made[name]
            for n, batches in ((1, singles), (1000, thousands)):
                t_call, t_bare = median_latency([call, bare], batches)
                row = dict(model=name, rows=n, calls=len(batches), call_us=1e6 * t_call,
                           bare_us=1e6 * t_bare, ratio=t_call / t_bare, bare=bare_is)
                rows.append(row)
                print(f"| {name} | {n} | {row['call_us']:.1f} | {row['bare_us']:.1f} | "
                      f"{row['ratio']:.3f} |", flush=True)
    goals = _predict_goals(rows)
    for label, met in goals.items():
        print(f"{label}: {'met' if met else 'not met'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": list(argv), "threads": args.threads, "torch": torch.__version__,
                       "goals": goals, "rows": rows}, fh, indent=1)
    return 0


def _predict_goals(rows):
    """``{goal: met}`` for the skdistill models timed: scikit-learn's are references, and the
    scaled distiller's call includes ``StandardScaler``'s own checks, which its bare
    forward does not."""
    one, many = PREDICT_GOALS
    by = {(r["model"], r["rows"]): r for r in rows}
    goals = {}
    for (model, n), row in by.items():
        if model.startswith("sklearn") or model == "scaled_kd":
            continue
        goals[f"{model}, {n} row(s): call <= {one if n == 1 else many} x bare"] = (
            row["ratio"] <= (one if n == 1 else many))
        reference = by.get((f"sklearn_{model}", n))
        if reference is not None and n == 1:
            goals[f"{model}, 1 row: faster than MLPClassifier"] = (
                row["call_us"] < reference["call_us"])
    return goals
