"""Menon et al. (2021): teacher-corrected sampled softmax on a synthetic extreme multiclass problem.

``python -m benchmarks menon softmax [--part accuracy timing] [--quick] [--json PATH] ...``

Data: a latent embedding model with known Bayes probabilities. Rows ``x ~ N(0, I_d)``
(``d = 32``), a fixed projection ``A`` (``r x d``, ``r = 16``) and unit class embeddings
``E_y`` (``L x r``); ``p*(y | x) = softmax_y(beta (A x) . E_y)`` with ``beta = 8`` (Bayes
precision@1 about 0.36: several classes are plausible for most rows) and labels drawn from
``p*``. The model (``A``, ``E``) and the test and validation rows are fixed; each seed draws
new training rows.

Parts (``--part``, several allowed):

- ``accuracy``: students with one network (:class:`~skdistill.MLPStudent`) and the same
  number of steps (epochs and batch size), trained by
  :class:`~skdistill.SampledSoftmaxDistiller`: the full softmax on labels (``n_negatives =
  L``, no correction), full-softmax KD on the teacher's top-k (``alpha = 1``); for each
  ``m`` of ``--negatives`` and each sampler ``q`` of ``--samplers`` (``"uniform"``, or
  ``"teacher"``: half uniform, half the batch's teacher top-k, so plausible classes are drawn
  often), the plain sampled softmax (``correction=None``), the teacher-corrected one, and the
  corrected one with distillation (``alpha = --kd-alpha``); ``--no-full`` leaves the two
  full-softmax students out.
  Teachers: ``p*`` itself and an ``MLPStudent`` trained with the full softmax on a separate
  sample of as many rows, each giving its rows' ``--top-k`` largest probabilities as a
  sparse matrix (cached: every fit on a training set asks for the same rows). The
  learning rate of each method (and sampler) is chosen from ``--lrs`` on the validation rows
  at the first seed (by precision@1), at ``m = --tune-negatives`` with the ``p*`` teacher, and
  used for every ``m``, teacher and seed. Scores on the test rows: precision@1, precision@5 (hits in
  the top 5, divided by 5) and the NLL of the full softmax.
- ``timing``: seconds per training epoch against ``L`` (``--timing-classes``) at
  ``m = --timing-negatives``, and for the full softmax where ``L <= --timing-full-max``: the
  second epoch's duration in the student's history (``--timing-rows`` rows, or ``L`` rows
  where more, so that every class has a row), and a breakdown of one step (forward and
  backward of the network and the loss, then the optimizer's step) over ``--timing-steps``
  steps. Not a test of accuracy: labels are the row number modulo ``L``.

``--quick`` runs a tiny version (seconds; used by the tests).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from skdistill import MLPStudent, SampledSoftmaxDistiller
from skdistill.distillers.sampled_softmax import _SampledSoftmaxObjective

from . import group_rows, mean_sd

PARTS = ("accuracy", "timing")
#: method name -> SampledSoftmaxDistiller settings (``None`` n_negatives: every class).
FULL_METHODS = {
    "full softmax (labels)": dict(correction=None, alpha=0.0),
    "full-softmax KD (top-k)": dict(correction=None, alpha=1.0),
}
SAMPLED_METHODS = {
    "sampled softmax": dict(correction=None, alpha=0.0),
    "corrected": dict(correction="teacher", alpha=0.0),
    "corrected + KD": dict(correction="teacher", alpha=None),  # alpha: --kd-alpha
}
#: methods whose loss never reads the teacher (trained once per seed, not per teacher).
NO_TEACHER = {"full softmax (labels)", "sampled softmax"}


class LatentModel:
    """``p*(y | x) = softmax(beta (A x) . E_y)``: the data's Bayes probabilities."""

    def __init__(self, n_classes, n_features=32, rank=16, beta=8.0, seed=0):
        rng = np.random.default_rng(seed)
        self.A = rng.normal(size=(rank, n_features)) / np.sqrt(n_features)
        E = rng.normal(size=(n_classes, rank))
        self.E = E / np.linalg.norm(E, axis=1, keepdims=True)
        self.beta, self.n_classes, self.n_features = beta, n_classes, n_features

    def log_proba(self, X):
        """``log p*(y | x)`` of every class, float64 ``(n, L)`` (callers chunk ``X``)."""
        s = self.beta * (np.asarray(X, dtype=np.float64) @ self.A.T) @ self.E.T
        s -= s.max(axis=1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))

    def sample(self, n, rng, chunk=4096):
        """``n`` rows and their labels drawn from ``p*``."""
        X = rng.normal(size=(n, self.n_features)).astype(np.float32)
        y = np.empty(n, dtype=np.int64)
        for start in range(0, n, chunk):
            cumulative = np.exp(self.log_proba(X[start:start + chunk])).cumsum(axis=1)
            u = rng.random((len(cumulative), 1)) * cumulative[:, -1:]
            y[start:start + chunk] = (cumulative < u).sum(axis=1)
        return X, np.minimum(y, self.n_classes - 1)


class _TopKTeacher(ClassifierMixin, BaseEstimator):
    """Each row's ``keep`` largest probabilities over the classes of ``y`` (set by ``fit``),
    as a sparse matrix, from :meth:`_proba` (over ``_source_classes()``). Results are cached
    by the rows' bytes: the benchmark's many fits on one training set ask for the same
    chunks, and the distiller reads no more than each row's ``top_k`` largest."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self._cache = {}
        return self

    def predict_proba(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        key = (X.shape, hash(X.tobytes()))
        if key not in self._cache:
            source = self._source_classes()
            position = np.searchsorted(source, self.classes_).clip(max=len(source) - 1)
            present = source[position] == self.classes_
            proba = np.zeros((len(X), len(self.classes_)))
            proba[:, present] = self._proba(X)[:, position[present]]
            keep = min(self.keep, proba.shape[1])
            top = np.argpartition(-proba, keep - 1, axis=1)[:, :keep]
            rows = np.repeat(np.arange(len(proba)), keep)
            self._cache[key] = sp.csr_matrix((np.take_along_axis(proba, top, 1).ravel(),
                                              (rows, top.ravel())), shape=proba.shape)
        return self._cache[key]


class BayesTeacher(_TopKTeacher):
    """``p*`` itself (``fit`` learns nothing but the classes of ``y``)."""

    def __init__(self, model=None, keep=64):
        self.model = model
        self.keep = keep

    def _source_classes(self):
        return np.arange(self.model.n_classes)

    def _proba(self, X):
        return np.exp(self.model.log_proba(X))


class TrainedTeacher(_TopKTeacher):
    """A fitted classifier ``estimator`` (trained on other rows; ``fit`` learns nothing but
    the classes of ``y``): its probabilities, zero for a class of ``y`` it never saw."""

    def __init__(self, estimator=None, keep=64):
        self.estimator = estimator
        self.keep = keep

    def _source_classes(self):
        return self.estimator.classes_

    def _proba(self, X):
        return self.estimator.predict_proba(X)


def scores(log_proba_chunks, classes, y, prefix):
    """Precision@1, precision@5 (hits / 5) and NLL from chunks of log-probabilities over
    ``classes``; rows whose label is not in ``classes`` count as misses and are left out of
    the NLL (their number is reported)."""
    position = np.full(int(max(classes.max(), y.max())) + 1, -1)
    position[classes] = np.arange(len(classes))
    hits1 = hits5 = 0
    nll, n_nll, start = 0.0, 0, 0
    for log_p in log_proba_chunks:
        labels = y[start:start + len(log_p)]
        start += len(log_p)
        top = classes[np.argsort(-log_p, axis=1)[:, :5]]
        hits1 += int((top[:, 0] == labels).sum())
        hits5 += int((top == labels[:, None]).any(axis=1).sum())
        col = position[labels]
        known = col >= 0
        nll -= float(log_p[np.flatnonzero(known), col[known]].sum())
        n_nll += int(known.sum())
    n = len(y)
    return {f"{prefix}p1": hits1 / n, f"{prefix}p5": hits5 / (5 * n),
            f"{prefix}nll": nll / max(n_nll, 1), f"{prefix}unseen": n - n_nll}


def model_chunks(model, X, chunk=4096):
    for start in range(0, len(X), chunk):
        yield model.predict_log_proba(X[start:start + chunk])


def bayes_chunks(latent, X, chunk=4096):
    for start in range(0, len(X), chunk):
        yield latent.log_proba(X[start:start + chunk])


def student(args, lr, seed):
    return MLPStudent(hidden_layer_sizes=tuple(args.hidden), max_epochs=args.epochs,
                      batch_size=args.batch_size, lr=lr, random_state=seed)


def make_model(args, method, m, teacher, lr, seed, sampler="uniform"):
    """The distiller of ``method`` (``m``: negatives, None for the full softmax) drawing
    its negatives from ``sampler``; the fitted ``teacher`` is frozen (its cache is shared by
    the fits)."""
    settings = dict({**FULL_METHODS, **SAMPLED_METHODS}[method])
    if settings["alpha"] is None:
        settings["alpha"] = args.kd_alpha
    return SampledSoftmaxDistiller(FrozenEstimator(teacher), student(args, lr, seed),
                                   n_negatives=args.n_classes if m is None else m,
                                   sampler=sampler, top_k=args.top_k, random_state=seed,
                                   **settings)


def fit_and_score(args, method, m, fitted_teacher, lr, seed, X, y, sets, log,
                  sampler="uniform", **row):
    start = time.perf_counter()
    model = make_model(args, method, m, fitted_teacher, lr, seed, sampler).fit(X, y)
    seconds = time.perf_counter() - start
    out = {"method": method, "m": m, "sampler": None if m is None else sampler, "lr": lr,
           "seed": seed, **row, "fit_seconds": round(seconds, 2)}
    for prefix, (X_eval, y_eval) in sets.items():
        out.update(scores(model_chunks(model, X_eval), model.classes_, y_eval, prefix))
    first = next(iter(sets))
    q = "" if m is None else f" q={sampler}"
    log(f"  {method:24s} m={str(m):5s}{q} lr={lr:g} seed={seed} {row.get('teacher', ''):8s} "
        f"p@1 {out[first + 'p1']:.4f} p@5 {out[first + 'p5']:.4f} "
        f"nll {out[first + 'nll']:.3f} ({seconds:.0f} s)")
    return out


def trained_teacher(args, latent, seed, log):
    """An MLPStudent trained with the full softmax on its own sample (as many rows)."""
    X, y = latent.sample(args.n_train, np.random.default_rng(10_000 + seed))
    start = time.perf_counter()
    teacher = MLPStudent(hidden_layer_sizes=tuple(args.teacher_hidden),
                         max_epochs=args.teacher_epochs, batch_size=args.batch_size,
                         lr=args.teacher_lr, random_state=seed).fit(X, y)
    log(f"  trained teacher: {time.perf_counter() - start:.0f} s")
    return teacher


def part_accuracy(args, log):
    latent = LatentModel(args.n_classes)
    fixed = np.random.default_rng(1)
    X_test, y_test = latent.sample(args.n_test, fixed)
    X_val, y_val = latent.sample(args.n_val, fixed)
    rows = []
    bayes = {"method": "Bayes p*", "m": None, "seed": None,
             **scores(bayes_chunks(latent, X_test), np.arange(args.n_classes), y_test, ""),
             **scores(bayes_chunks(latent, X_val), np.arange(args.n_classes), y_val,
                      "val_")}
    rows.append(bayes)
    log(f"Bayes p*: test p@1 {bayes['p1']:.4f} p@5 {bayes['p5']:.4f} nll {bayes['nll']:.3f}")
    # (method, sampler): the full softmax draws nothing
    settings = [] if args.no_full else [(method, None) for method in FULL_METHODS]
    settings += [(method, sampler) for sampler in args.samplers for method in SAMPLED_METHODS]

    # learning rates: validation rows, first seed, p* teacher, m = tune_negatives
    seed = args.seeds[0]
    X, y = latent.sample(args.n_train, np.random.default_rng(seed))
    bayes_teacher = BayesTeacher(latent, keep=args.top_k).fit(X, y)
    lrs = {}
    log(f"tuning lr on {args.n_val} validation rows: {args.lrs}")
    for method, sampler in settings:
        m = None if sampler is None else args.tune_negatives
        tried = [fit_and_score(args, method, m, bayes_teacher, lr, seed, X, y,
                               {"val_": (X_val, y_val)}, log, sampler=sampler or "uniform",
                               teacher="p*", stage="tuning")
                 for lr in args.lrs]
        rows += tried
        lrs[lr_key(method, sampler)] = max(tried, key=lambda r: r["val_p1"])["lr"]
    log(f"chosen: {lrs}")

    for seed in args.seeds:
        log(f"seed {seed}")
        X, y = latent.sample(args.n_train, np.random.default_rng(seed))
        teachers = {"p*": BayesTeacher(latent, keep=args.top_k).fit(X, y)}
        if not args.no_trained_teacher:
            mlp = trained_teacher(args, latent, seed, log)
            teachers["trained"] = TrainedTeacher(mlp, keep=args.top_k).fit(X, y)
            teacher_row = {"method": "trained teacher", "m": None, "seed": seed,
                           **scores(model_chunks(mlp, X_test), mlp.classes_, y_test, "")}
            rows.append(teacher_row)
            log(f"  trained teacher p@1 {teacher_row['p1']:.4f} p@5 {teacher_row['p5']:.4f} "
                f"nll {teacher_row['nll']:.3f}")
        for method, sampler in settings:
            for m in [None] if sampler is None else args.negatives:
                for name, teacher in teachers.items():
                    # a loss that never reads the teacher, with a sampler that does not
                    # either, is trained once (its rows say teacher "none")
                    blind = method in NO_TEACHER and sampler != "teacher"
                    if blind and name != "p*":
                        continue
                    rows.append(fit_and_score(
                        args, method, m, teacher, lrs[lr_key(method, sampler)], seed, X, y,
                        {"": (X_test, y_test)}, log, sampler=sampler or "uniform",
                        stage="test", teacher="none" if blind else name))
    return rows, lrs


def lr_key(method, sampler):
    """The name of a (method, sampler) setting in ``chosen_lr``."""
    return method if sampler is None else f"{method} (q={sampler})"


def summarise(rows):
    """Mean ± sd over seeds of the test rows, by (method, m, teacher)."""
    table = []
    tests = [r for r in rows if r.get("stage") == "test"]
    for key, group in group_rows(
            [dict(r, key=(r["method"], r["m"], r.get("sampler"), r["teacher"])) for r in tests],
            "key").items():
        table.append({"method": key[0], "m": key[1], "sampler": key[2], "teacher": key[3],
                      "lr": group[0]["lr"],
                      "seeds": len(group),
                      **{k: mean_sd([r[k] for r in group]) for k in ("p1", "p5", "nll")},
                      "fit_seconds": mean_sd([r["fit_seconds"] for r in group], 1)})
    return table


def print_accuracy(rows, table):
    bayes = rows[0]
    print("\n| method | m | q | teacher | lr | P@1 | P@5 | NLL | fit (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| Bayes p* | | | | | {bayes['p1']:.4f} | {bayes['p5']:.4f} | {bayes['nll']:.3f} "
          "| |")
    trained = [r for r in rows if r["method"] == "trained teacher"]
    if trained:
        print(f"| trained teacher | | | | | {mean_sd([r['p1'] for r in trained])} | "
              f"{mean_sd([r['p5'] for r in trained])} | "
              f"{mean_sd([r['nll'] for r in trained], 3)} | |")
    for r in table:
        m = "all" if r["m"] is None else r["m"]
        print(f"| {r['method']} | {m} | {r['sampler'] or ''} | {r['teacher']} | {r['lr']:g} "
              f"| {r['p1']} | {r['p5']} "
              f"| {r['nll']} | {r['fit_seconds']} |")


# -- timing ---------------------------------------------------------------------------------

def step_breakdown(args, n_classes, m, batch, steps):
    """Median seconds of a step's forward and backward (network and loss) and of Adam's step,
    with the distiller's own training network and loss, labels only (no teacher)."""
    distiller = SampledSoftmaxDistiller(n_negatives=m, correction=None)
    distiller.classes_ = np.arange(n_classes)
    labels = np.arange(batch) % n_classes
    objective = _SampledSoftmaxObjective(distiller, labels, None, None,
                                         np.full(n_classes, 1.0 / n_classes))
    from skdistill.nets import MLP

    net = objective.build(MLP(32, n_classes, hidden_sizes=tuple(args.hidden)))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    X, rows = torch.randn(batch, 32), {"index": torch.arange(batch)}
    backward, update = [], []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = objective.loss(net(X), objective.batch_targets(X, rows, True)).mean()
        loss.backward()
        t1 = time.perf_counter()
        optimizer.step()
        t2 = time.perf_counter()
        backward.append(t1 - t0)
        update.append(t2 - t1)
    return float(np.median(backward[1:])), float(np.median(update[1:]))


def epoch_seconds(args, n_classes, m):
    """The second epoch's duration of a fit on ``max(timing_rows, L)`` rows."""
    n = max(args.timing_rows, n_classes)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 32)).astype(np.float32)
    y = np.arange(n) % n_classes
    model = SampledSoftmaxDistiller(
        _UniformTeacher(), MLPStudent(hidden_layer_sizes=tuple(args.hidden), max_epochs=2,
                                      batch_size=args.batch_size, lr=1e-3, random_state=0),
        n_negatives=m, correction=None, random_state=0).fit(X, y)
    return float(model.history_[-1]["dur"]), n


class _UniformTeacher(ClassifierMixin, BaseEstimator):
    """A teacher the timed fits never ask (``correction=None``, ``alpha=0``)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


def part_timing(args, log):
    rows = []
    for n_classes in args.timing_classes:
        settings = [args.timing_negatives]
        if n_classes <= args.timing_full_max:
            settings.append(None)
        for m in settings:
            negatives = n_classes if m is None else m
            backward, update = step_breakdown(args, n_classes, negatives, args.batch_size,
                                              args.timing_steps)
            epoch, n_rows = epoch_seconds(args, n_classes, negatives)
            row = {"part": "timing", "n_classes": n_classes, "m": m, "rows": n_rows,
                   "steps_per_epoch": -(-n_rows // args.batch_size),
                   "epoch_seconds": round(epoch, 3),
                   "step_forward_backward_ms": round(1e3 * backward, 3),
                   "step_optimizer_ms": round(1e3 * update, 3)}
            rows.append(row)
            log(f"  L={n_classes} m={'all' if m is None else m}: epoch {epoch:.2f} s "
                f"({n_rows} rows), step: forward+backward {1e3 * backward:.2f} ms, "
                f"Adam {1e3 * update:.2f} ms")
    print("\n| L | m | rows | s / epoch | step: fwd+bwd (ms) | step: Adam (ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n_classes']} | {'all (full softmax)' if r['m'] is None else r['m']} | "
              f"{r['rows']} | {r['epoch_seconds']} | {r['step_forward_backward_ms']} | "
              f"{r['step_optimizer_ms']} |")
    return rows


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks menon softmax",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--n-classes", type=int, default=10000)
    parser.add_argument("--n-train", type=int, default=50000)
    parser.add_argument("--n-val", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--negatives", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--samplers", nargs="+", default=["uniform", "teacher"],
                        choices=["uniform", "frequency", "teacher"],
                        help="the negatives' distributions q of the sampled students")
    parser.add_argument("--no-full", action="store_true",
                        help="leave the two full-softmax students out")
    parser.add_argument("--tune-negatives", type=int, default=64)
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-2, 3e-2])
    parser.add_argument("--kd-alpha", type=float, default=0.5)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--teacher-hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--teacher-lr", type=float, default=3e-3)
    parser.add_argument("--no-trained-teacher", action="store_true",
                        help="only the p* teacher")
    parser.add_argument("--timing-classes", type=int, nargs="+",
                        default=[1000, 10000, 100000])
    parser.add_argument("--timing-negatives", type=int, default=64)
    parser.add_argument("--timing-full-max", type=int, default=10000,
                        help="largest L timed with the full softmax too")
    parser.add_argument("--timing-rows", type=int, default=20000)
    parser.add_argument("--timing-steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (seconds), for the tests: overrides the sizes above")
    parser.add_argument("--json", default=None, help="write the raw rows and summaries here")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_classes, args.n_train, args.n_val, args.n_test = 200, 2000, 500, 500
        args.seeds, args.negatives, args.tune_negatives = args.seeds[:1], [8], 8
        args.lrs, args.hidden, args.epochs, args.top_k = [1e-2], [16], 1, 8
        args.teacher_hidden, args.teacher_epochs = [16], 1
        args.timing_classes, args.timing_rows, args.timing_steps = [100, 300], 600, 2
        args.timing_full_max = 100

    torch.set_num_threads(1)
    print(f"menon softmax: {vars(args)}", flush=True)
    log = (lambda msg: print(msg, flush=True))
    results = {"args": vars(args), "torch_threads": torch.get_num_threads(), "rows": []}
    start = time.perf_counter()
    with threadpool_limits(1):
        if "accuracy" in args.part:
            rows, lrs = part_accuracy(args, log)
            table = summarise(rows)
            print_accuracy(rows, table)
            results["rows"] += [dict(r, part="accuracy") for r in rows]
            results["chosen_lr"], results["accuracy_table"] = lrs, table
        if "timing" in args.part:
            results["rows"] += part_timing(args, log)
    results["seconds"] = round(time.perf_counter() - start, 1)
    print(f"\nmenon softmax: {results['seconds']} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0
