"""Student overhead: MLPStudent fit and predict_proba against a bare torch loop, same process.

``python -m skdistill.benchmarks students [--epochs 5] [--repeats 3] [--threads 2]
[--data mnist|heloc] [--grid]``

``--data heloc`` times the tiny tabular network 23-32-2 on FICO HELOC (standardised), where a
fixed per-batch cost of the wrapper shows most. ``--grid`` instead times
``GridSearchCV(MLPStudent, n_jobs=2)`` against ``n_jobs=1`` on the same data (torch threads
per worker: see the threads section of ``doc/extending.md``).
"""
import argparse
import platform
import time

import numpy as np
import torch
from torch import nn

from ..nets import MLP
from ..students import MLPStudent


def load_data(n_rows=10000, data="mnist"):
    """The MNIST test split (real data) when present, else a synthetic stand-in of its shape.

    ``data="heloc"``: FICO HELOC, standardised (10,459 x 23, two classes).
    """
    if data == "heloc":
        from sklearn.preprocessing import StandardScaler

        from ..datasets import load_heloc

        X, y = load_heloc(return_X_y=True)
        X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64)).astype(np.float32)
        return X, np.asarray(y).astype(np.int64), "FICO HELOC (standardised)"
    try:
        from ..datasets import load_mnist

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
    parser = argparse.ArgumentParser(prog="python -m skdistill.benchmarks students")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[400, 400])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--data", choices=["mnist", "heloc"], default="mnist")
    parser.add_argument("--grid", action="store_true",
                        help="time GridSearchCV(n_jobs=2) against n_jobs=1 instead")
    args = parser.parse_args(argv)
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
