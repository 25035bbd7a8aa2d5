"""GPU benchmark: every estimator on a device, then GPED at the paper's scale.

``python -m benchmarks gpu [--device cuda] [--quick] [--steps N] [--time-limit S]
[--json FILE] [--datasets fashion mnist] [--parts estimators gped] [--estimators NAME ...]
[--bare-seconds S]``

On a GPU machine, the whole benchmark within 10 minutes (data in ``$SKDISTILL_DATA``, else
``../shared/data``)::

    python -m benchmarks gpu --time-limit 540 --json gpu.json

To give the paper's Table 1 setting (Fashion-MNIST, N = 60k) the whole budget:
``python -m benchmarks gpu --parts gped --datasets fashion --time-limit 540``.
``--device cpu --quick`` runs everything at a tiny size on a CPU (the test suite does; it is a
smoke test, not a result). Results: ``benchmarks/RESULTS.md``, section GPU.

**Part 1, every estimator on the device.** Every public estimator class of skdistill
(``skdistill.discovery.all_estimators()``) is fitted twice on a digits subset
(500 training, 200 test rows, pixels / 16) from the same seed: once with every ``device``
parameter it has, its own and its sub-estimators', set to ``--device``, and once with all of
them set to ``"cpu"``. A class with no small configuration in ``CONFIGS``, or with no
``device`` parameter anywhere, is reported as an error, not skipped. Recorded: the shapes of the
two ``predict_proba`` on the test rows, their largest and mean absolute difference, how often
they predict the same class, both test accuracies, fit times, and the devices the fitted
tensors live on. Bitwise equality across devices is not expected: float arithmetic differs,
and the SGLD chains (``SGLDTeacher``, ``GPEDDistiller``) draw their Langevin noise and
minibatch order on the device from its own generator, so a chain on a GPU is another chain
(compare its accuracies rather than its probabilities).

**Part 2, GPED at the paper's scale** (Vadera et al.; ``gped_mnist``'s teacher, student,
data split and scores): FCNN 784-400-400-10 teacher and student, SGLD batch 100, prior
precision 10, burn-in 1,000, ``--steps`` (10^6) SGLD steps, the teacher keeping every 100th
state (at most 150), U_o with a predictive and an entropy head, one student step (Adam, lr
1e-3, 100 images) every 10 SGLD steps. The paper thins at 100 for its predictive-only students
and at 10 for the entropy ones; one chain here serves both heads, at 10. Data: Fashion-MNIST
60k/10k at step 4e-6 (the paper's step for N = 60k), then the MNIST test split (8k to train
on, 2k held out) at 3e-5 (the same drift ``step * N / 2`` for N = 8k). Per data set: SGLD
steps/s of a bare SGLD loop in plain torch (``gped_mnist.bare_sgld``: same network, batch and
step, on the same device) for ``--bare-seconds``, then ``GPEDDistiller.fit`` (its SGLD steps/s
include the student's steps and the per-row estimators), teacher and student NLL, gap, entropy
MAE and accuracies on the held-out images, next to the paper's Table 1 (MNIST 60k: teacher NLL
.052, student .082, entropy MAE .016) and Table 3 (10k MNIST images, U_o: .137, .184, .013).

**Time limit.** ``--time-limit S`` bounds the whole run: part 2's data sets share equally what
part 1 leaves; within a share the bare loop takes at most a tenth, the last tenth is kept for
scoring, and the GPED fit stops cleanly after the student step during which its deadline
passed (a skorch callback). The row records the SGLD steps done against those planned
(``completed``) and the time the planned steps would take at the measured rate
(``projected_seconds``). Without a limit every run goes to the end.
"""
import argparse
import json
import os
import platform
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from skdistill import MLPStudent
from skdistill._testing import fast_instance, labels_for
from skdistill.discovery import all_estimators
from skdistill._validation import check_device
from skdistill.nets import MLP

from .gped_mnist import PAPER, bare_sgld, evaluate, load, make_gped, make_student, make_teacher

#: The paper's figures each data set is set beside (Vadera et al., as in ``gped_mnist.PAPER``).
PAPER_ROWS = {
    "fashion": dict(source="Table 1: MNIST 60k, 10^6 steps (same N and step; MNIST, not "
                           "Fashion-MNIST, images: the paper has no Fashion-MNIST figure)",
                    teacher_nll=0.052, student_nll=0.082, gap=0.030, entropy_mae=0.016),
    "mnist": dict(source="Table 3: 10k MNIST images, no occlusion, U_o, 10^6 steps",
                  teacher_nll=0.137, student_nll=0.184, gap=0.047, entropy_mae=0.013),
}
#: SGLD step for each data set: the paper's 4e-6 at N = 60k, the same drift at N = 8k.
STEP_SIZES = {"fashion": 4e-6, "mnist": 3e-5}
#: Part 2 settings: the paper's, and ``--quick`` (a smoke test on a CPU).
FULL = dict(steps=1_000_000, burn_in=1000, thinning=10, teacher_thinning=100, max_samples=150,
            bare_seconds=10.0, n_train=None, n_test=None)
QUICK = dict(steps=200, burn_in=50, thinning=1, teacher_thinning=10, max_samples=10,
             bare_seconds=0.5, n_train=1000, n_test=500)
#: Fractions of a data set's share of the time limit: the bare loop at most, scoring.
BARE_FRACTION, SCORING_FRACTION = 0.1, 0.1


#: Part 1's sizes, over the test instances' (``skdistill._testing.FAST_PARAMS``), by
#: parameter name wherever an estimator or its sub-estimators have it.
GPU_PARAMS = dict(hidden_layer_sizes=(32,), max_epochs=10, lr=1e-2, n_samples=20, n_iter=600,
                  burn_in=100, thinning=20, step_size=2e-4, batch_size=64, random_state=0)
#: Settings that make a class's run exercise more of it on the device (optional: a class
#: without an entry runs with its test instance).
GPU_EXTRA = {"GPEDDistiller": {"target": ["predictive", "entropy"]}}


def _config(cls):
    """Part 1's small configuration of ``cls``: its test instance at :data:`GPU_PARAMS`,
    with a small ``MLPStudent`` as the teacher where the test instance's teacher has no
    ``device`` (a scikit-learn forest), so that the teacher runs on the device too."""
    def build():
        estimator = fast_instance(cls, **GPU_PARAMS)
        teacher = estimator.get_params(deep=False).get("teacher")
        if teacher is not None and not device_params(teacher):
            estimator.set_params(teacher=fast_instance(MLPStudent, **GPU_PARAMS))
        return estimator.set_params(**GPU_EXTRA.get(cls.__name__, {}))
    return build


#: estimator class name -> a function building its small configuration for part 1, for every
#: estimator of ``skdistill.discovery.all_estimators()``.
CONFIGS = {name: _config(cls) for name, cls in all_estimators()}


def public_estimators():
    """Names of skdistill's public estimator classes: ``all_estimators()``'s, in its order.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from benchmarks.gpu import public_estimators
    >>> names = public_estimators()
    >>> "GPEDDistiller" in names, "BaseStudent" in names
    (True, False)
    """
    return [name for name, _ in all_estimators()]


def device_params(estimator):
    """The ``device`` parameters of ``estimator``, nested ones too (``get_params(deep=True)``).

    Examples
    --------
    >>> from skdistill import DeepEnsembleTeacher, MLPStudent
    >>> device_params(DeepEnsembleTeacher(MLPStudent()))
    ['base_estimator__device']
    """
    return [k for k in estimator.get_params(deep=True) if k.split("__")[-1] == "device"]


def on_device(estimator, device):
    """A clone of ``estimator`` with every ``device`` parameter, nested ones too, set to ``device``.

    Parameters
    ----------
    estimator : estimator
    device : str
        A torch device, e.g. ``"cuda"``.

    Returns
    -------
    estimator : estimator
        The clone (unfitted).
    names : list of str
        The parameters set (:func:`device_params`); empty where there is none.

    Examples
    --------
    >>> from skdistill import DeepEnsembleTeacher, MLPStudent
    >>> teacher, names = on_device(DeepEnsembleTeacher(MLPStudent()), "cpu")
    >>> names
    ['base_estimator__device']
    """
    names = device_params(estimator)
    return clone(estimator).set_params(**{k: device for k in names}), names


def _tensor_devices(obj, seen=None):
    """Devices of the tensors a fitted estimator holds (its fitted attributes, recursively)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return set()
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        return {str(t.device) for t in [*obj.parameters(), *obj.buffers()]}
    if torch.is_tensor(obj):
        return {str(obj.device)}
    if isinstance(obj, (list, tuple)):
        return set().union(*(_tensor_devices(o, seen) for o in obj))
    if isinstance(obj, dict):
        return set().union(*(_tensor_devices(o, seen) for o in obj.values()))
    if isinstance(obj, BaseEstimator):
        return set().union(*(_tensor_devices(v, seen) for k, v in vars(obj).items()
                             if k.endswith("_") and not k.startswith("__")))
    return set()


def _sync(device):
    """Wait for the device's queued work, so that a clock read after it is the work's end."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed_fit(estimator, X, y, device):
    t0 = time.perf_counter()
    estimator.fit(X, y)
    _sync(device)
    return time.perf_counter() - t0


def compare_devices(estimator, X, y, X_test, y_test, device):
    """Fit ``estimator`` on ``device`` and on the CPU from the same seed; compare the results.

    Parameters
    ----------
    estimator : estimator
        Unfitted and seeded (``random_state``); cloned twice, once with every ``device``
        parameter set to ``device`` and once to ``"cpu"`` (:func:`on_device`).
    X, y : arrays
        Training data.
    X_test, y_test : arrays
        Rows whose ``predict_proba`` is compared.
    device : str

    Returns
    -------
    row : dict
        ``shape_device``, ``shape_cpu``, ``shape_equal``, ``max_abs_diff``,
        ``mean_abs_diff``, ``class_agreement``, ``accuracy_device``, ``accuracy_cpu``,
        ``fit_seconds_device``, ``fit_seconds_cpu``, ``device_params`` (the parameters set)
        and ``tensor_devices`` (where the device fit's tensors live).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import MLPStudent
    >>> X, y = load_iris(return_X_y=True)
    >>> row = compare_devices(MLPStudent(hidden_layer_sizes=(8,), max_epochs=5, random_state=0),
    ...                       X[::2], y[::2], X[1::2], y[1::2], device="cpu")
    >>> row["shape_equal"], row["max_abs_diff"], row["tensor_devices"]
    (True, 0.0, ['cpu'])
    """
    on_dev, names = on_device(estimator, device)
    on_cpu, _ = on_device(estimator, "cpu")
    seconds_dev = _timed_fit(on_dev, X, y, device)
    seconds_cpu = _timed_fit(on_cpu, X, y, "cpu")
    p_dev, p_cpu = on_dev.predict_proba(X_test), on_cpu.predict_proba(X_test)
    same = p_dev.shape == p_cpu.shape
    diff = np.abs(p_dev - p_cpu) if same else np.full(1, np.nan)
    classes = on_dev.classes_
    return dict(
        shape_device=list(p_dev.shape), shape_cpu=list(p_cpu.shape), shape_equal=same,
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        class_agreement=float(np.mean(p_dev.argmax(1) == p_cpu.argmax(1))) if same else None,
        accuracy_device=float(np.mean(classes[p_dev.argmax(1)] == y_test)),
        accuracy_cpu=float(np.mean(on_cpu.classes_[p_cpu.argmax(1)] == y_test)),
        fit_seconds_device=seconds_dev, fit_seconds_cpu=seconds_cpu, device_params=names,
        tensor_devices=sorted(_tensor_devices(on_dev)))


def _digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))
    X, y = (X[order] / 16).astype(np.float32), y[order]
    return X[:500], y[:500], X[500:700], y[500:700]


def estimators_part(args, deadline):
    """Part 1: one row per public estimator, the device fit against the CPU fit."""
    X, y, X_test, y_test = _digits()
    # untimed: one-off costs (CUDA context, cuBLAS handles) are not the first estimator's
    for device in {args.device, "cpu"}:
        on_device(CONFIGS["MLPStudent"](), device)[0].set_params(max_epochs=1).fit(X, y)
    print("| estimator | status | proba shape | max abs diff | mean abs diff | same class | "
          "acc device | acc cpu | fit s device | fit s cpu | tensors on |", flush=True)
    rows = []
    for name in args.estimators or public_estimators():
        row = dict(estimator=name)
        if deadline is not None and time.perf_counter() >= deadline:
            row["status"] = "skipped: time limit"
        elif name not in CONFIGS:
            row["status"] = ("error: no small configuration in benchmarks.gpu.CONFIGS; "
                             "add one")
        else:
            estimator = CONFIGS[name]()
            if not device_params(estimator):
                row["status"] = "error: no device parameter, its own or a sub-estimator's"
            else:
                try:
                    # a binary-only classifier (RankingDistiller) is compared on two classes
                    row.update(compare_devices(estimator, X, labels_for(estimator, y), X_test,
                                               labels_for(estimator, y_test), args.device))
                    row["status"] = "ok"
                except Exception as exc:  # one estimator's failure must not hide the others'
                    row["status"] = f"error: {type(exc).__name__}: {exc}"
        rows.append(row)
        if row["status"] == "ok":
            print("| {estimator} | ok | {shape_device} | {max_abs_diff:.2e} | {mean_abs_diff:.2e} "
                  "| {class_agreement:.3f} | {accuracy_device:.3f} | {accuracy_cpu:.3f} | "
                  "{fit_seconds_device:.2f} | {fit_seconds_cpu:.2f} | {devices} |".format(
                      devices=", ".join(row["tensor_devices"]), **row), flush=True)
        else:
            print(f"| {name} | {row['status']} |", flush=True)
    return rows


class _TimeLimit(Callback):
    """skorch callback: stop training after the batch during which ``deadline`` passed.

    A callback's ``KeyboardInterrupt`` is a normal end of training for the engine (as
    ``EarlyStopping``'s); GPED then closes the chain, whose teacher keeps what it drew.
    """

    def __init__(self, deadline):
        self.deadline = deadline

    def on_batch_end(self, net, **kwargs):
        if time.perf_counter() >= self.deadline:
            raise KeyboardInterrupt


def _bare_rate(Xt, yt, step, seconds, device):
    """SGLD steps/s of ``gped_mnist.bare_sgld`` on the FCNN, run for about ``seconds``."""
    torch.manual_seed(0)
    model = MLP(784, 10, (400, 400)).to(device)
    bare_sgld(model, Xt, yt, 20, step, 10.0, 100)  # untimed: kernels, allocator, cuBLAS
    _sync(device)
    steps, t0 = 0, time.perf_counter()
    while True:
        bare_sgld(model, Xt, yt, 50, step, 10.0, 100)
        steps += 50
        if time.perf_counter() - t0 >= seconds:
            break
    _sync(device)
    return steps, time.perf_counter() - t0


def _gped_run(args, dataset, size, share):
    """Part 2 on one data set: the bare loop's rate, then GPED with scores, within ``share``
    seconds (None: no limit)."""
    deadline = None if share is None else time.perf_counter() + share
    Xtr, ytr, Xte, yte = load(dataset)
    if size["n_train"]:
        Xtr, ytr, Xte, yte = (Xtr[:size["n_train"]], ytr[:size["n_train"]],
                              Xte[:size["n_test"]], yte[:size["n_test"]])
    step = STEP_SIZES[dataset]
    bare_seconds = args.bare_seconds if share is None else min(args.bare_seconds,
                                                               BARE_FRACTION * share)
    Xt, yt = torch.as_tensor(Xtr).to(args.device), torch.as_tensor(ytr).to(args.device)
    bare_steps, bare_time = _bare_rate(Xt, yt, step, bare_seconds, args.device)
    del Xt, yt
    settings = Namespace(model="fcnn", step_size=step, n_iter=args.steps,
                         burn_in=size["burn_in"], thinning=size["thinning"],
                         max_samples=size["max_samples"], device=args.device)
    student = make_student(settings)
    fit_deadline = None if deadline is None else deadline - SCORING_FRACTION * share
    if fit_deadline is not None:
        student.set_params(callbacks=[("time_limit", _TimeLimit(fit_deadline))])
    model = make_gped(settings, "online", seed=0, student=student,
                      teacher=make_teacher(settings, thinning=size["teacher_thinning"]))
    t0 = time.perf_counter()
    model.fit(Xtr, ytr)
    _sync(args.device)
    fit_seconds = time.perf_counter() - t0
    done = model.teacher_.n_iter_
    row = dict(dataset=dataset, n_train=len(Xtr), n_test=len(Xte), step_size=step,
               steps_planned=args.steps, steps_done=done, completed=done == args.steps,
               burn_in=size["burn_in"], thinning=size["thinning"],
               teacher_thinning=size["teacher_thinning"],
               teacher_samples=len(model.teacher_.samples_),
               student_steps=model.n_student_steps_, fit_seconds=fit_seconds,
               gped_steps_per_s=done / fit_seconds, bare_steps=bare_steps,
               bare_seconds=bare_time, bare_steps_per_s=bare_steps / bare_time)
    row["gped_vs_bare"] = row["gped_steps_per_s"] / row["bare_steps_per_s"]
    row["projected_seconds"] = args.steps / row["gped_steps_per_s"]
    row["paper"] = PAPER_ROWS[dataset]
    if not len(model.teacher_.samples_):
        row["status"] = "stopped before the teacher kept a sample: nothing to score"
        return row
    t0 = time.perf_counter()
    row.update(evaluate(model, Xte, yte))
    row["scoring_seconds"] = time.perf_counter() - t0
    row["status"] = "ok"
    return row


def gped_part(args, size, deadline):
    """Part 2: GPED at the paper's scale on each data set, sharing what time is left."""
    print("| data | N | step | SGLD steps done / planned | student steps | fit s | "
          "GPED steps/s | bare steps/s | GPED / bare | projected s | teacher NLL | student NLL "
          "| gap | entropy MAE | teacher acc | student acc | paper (teacher, student, MAE) |",
          flush=True)
    rows = []
    for i, dataset in enumerate(args.datasets):
        share = None
        if deadline is not None:
            share = (deadline - time.perf_counter()) / (len(args.datasets) - i)
            if share <= 0:
                rows.append(dict(dataset=dataset, status="skipped: time limit"))
                print(f"| {dataset} | skipped: time limit |", flush=True)
                continue
        row = _gped_run(args, dataset, size, share)
        rows.append(row)
        if row["status"] != "ok":
            print(f"| {dataset} | {row['status']} |", flush=True)
            continue
        paper = row["paper"]
        print("| {dataset} | {n_train} | {step_size:g} | {steps_done} / {steps_planned} | "
              "{student_steps} | {fit_seconds:.1f} | {gped_steps_per_s:.1f} | "
              "{bare_steps_per_s:.1f} | {gped_vs_bare:.3f} | {projected_seconds:.0f} | "
              "{teacher_nll:.3f} | {student_nll:.3f} | {gap:.3f} | {entropy_mae:.4f} | "
              "{teacher_acc:.3f} | {student_acc:.3f} | {p} |".format(
                  p=f"{paper['teacher_nll']}, {paper['student_nll']}, {paper['entropy_mae']}",
                  **row), flush=True)
    return rows


def _device_name(device):
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"


def _parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks gpu",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (part 2: 1,000 images, 200 SGLD steps): a CPU smoke test")
    parser.add_argument("--steps", type=int, default=None,
                        help="SGLD steps per data set (default 10^6; --quick: 200)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds for the whole run; GPED stops cleanly at its share")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--datasets", nargs="+", choices=sorted(STEP_SIZES),
                        default=["fashion", "mnist"])
    parser.add_argument("--parts", nargs="+", choices=["estimators", "gped"],
                        default=["estimators", "gped"])
    parser.add_argument("--estimators", nargs="+", default=None,
                        help="part 1 only for these classes (default: every public estimator)")
    parser.add_argument("--bare-seconds", type=float, default=None,
                        help="seconds of the bare SGLD loop per data set "
                             "(default 10; --quick: 0.5)")
    return parser


def main(argv=()):
    """Run the GPU benchmark; ``argv`` as on the command line (see the module docstring).

    Parameters
    ----------
    argv : sequence of str

    Returns
    -------
    status : int
        0; a run that cannot start (CUDA asked for but not available, a bad option) exits
        through ``SystemExit`` with the reason.

    Examples
    --------
    >>> import contextlib, io
    >>> from benchmarks.gpu import main
    >>> with contextlib.redirect_stdout(io.StringIO()) as out:
    ...     status = main(["--device", "cpu", "--parts", "estimators", "--estimators",
    ...                    "MLPStudent"])
    >>> status
    0
    >>> print(out.getvalue().splitlines()[-2])  # doctest: +ELLIPSIS
    | MLPStudent | ok | [200, 10] | 0.00e+00 | 0.00e+00 | 1.000 | ... | cpu |
    """
    parser = _parser()
    args = parser.parse_args(list(argv))
    t_start = time.perf_counter()
    deadline = None if args.time_limit is None else t_start + args.time_limit
    try:
        check_device("gpu benchmark", args.device, "--device")
    except ValueError as exc:
        parser.error(f"{exc} Pass --device cpu to run it here (with --quick for a smoke test).")
    size = dict(QUICK if args.quick else FULL)
    args.steps = size["steps"] if args.steps is None else args.steps
    if args.bare_seconds is None:
        args.bare_seconds = size["bare_seconds"]
    if args.steps < size["burn_in"] + size["thinning"]:
        parser.error(f"--steps {args.steps} is invalid: it must be at least burn-in + thinning "
                     f"= {size['burn_in'] + size['thinning']} so that the student takes a step")
    result = dict(benchmark="gpu", argv=list(argv), device=args.device,
                  device_name=_device_name(args.device), torch_version=torch.__version__,
                  cuda_version=torch.version.cuda, quick=args.quick, time_limit=args.time_limit,
                  steps=args.steps, paper=PAPER)
    print(f"# gpu {vars(args)}\n# device: {result['device_name']}, torch {torch.__version__}",
          flush=True)
    if "estimators" in args.parts:
        result["estimators"] = estimators_part(args, deadline)
    if "gped" in args.parts:
        result["gped"] = gped_part(args, size, deadline)
    result["wall_seconds"] = time.perf_counter() - t_start
    result["time_limit_hit"] = any(
        r.get("status", "").startswith("skipped") or r.get("completed") is False
        for part in ("estimators", "gped") for r in result.get(part, []))
    print(f"# wall {result['wall_seconds']:.1f} s; time limit hit: {result['time_limit_hit']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    return 0
