"""ONNX export latency: onnxruntime against predict_proba and a bare torch forward, same process.

``python -m benchmarks onnx [--models mlp cnn pipeline] [--repeats 200]
[--threads 1] [--quick] [--json FILE]``

For each model (an ``MLPStudent`` 784-400-400-10, the paper's MNIST ``CNNStudent``, and a
``Pipeline(StandardScaler, KnowledgeDistiller(random forest -> MLPStudent))``), trained briefly
on MNIST (its test split when present, else synthetic data of its shape: latency does not
depend on accuracy), the model is converted by ``skl2onnx.to_onnx`` (zipmap off) and three
ways of getting the probabilities of a batch are timed, median over repeats, for one row and
for 1,000 rows: an onnxruntime session (``intra_op_num_threads`` = ``--threads``),
``predict_proba``, and the bare torch forward of the same network (``softmax(net(x))`` under
``inference_mode``; for the pipeline, the scaling in numpy first). The goal is
ONNX single-row latency <= 0.2 x ``predict_proba``'s.
"""
import argparse
import json
import platform
import time

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skdistill.distillers import KnowledgeDistiller
from skdistill.students import CNNStudent, MLPStudent

from .students import load_data, timed

MODELS = ("mlp", "cnn", "pipeline")
GOAL = 0.2


def build(name, X, y, epochs, seed):
    """A fitted model and ``(network, transform)`` for its bare torch forward."""
    if name == "mlp":
        model = MLPStudent(hidden_layer_sizes=(400, 400), max_epochs=epochs, random_state=seed)
        model.fit(X, y)
        return model, model.module_, None
    if name == "cnn":
        model = CNNStudent(input_shape=(1, 28, 28), max_epochs=epochs, random_state=seed)
        model.fit(X, y)
        return model, model.module_, None
    model = Pipeline([("scale", StandardScaler()), ("kd", KnowledgeDistiller(
        RandomForestClassifier(n_estimators=20, max_depth=10, random_state=seed),
        MLPStudent(hidden_layer_sizes=(400, 400), max_epochs=epochs), random_state=seed))])
    model.fit(X, y)
    scaler = model.named_steps["scale"]
    mean, scale = scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)
    return model, model.named_steps["kd"].student_.module_, lambda x: (x - mean) / scale


def bare_forward(network, transform, X):
    """What a PyTorch user would run on the trained network: no validation, no wrapper."""
    x = X if transform is None else transform(X)
    with torch.inference_mode():
        return torch.softmax(network(torch.from_numpy(x)), dim=1).numpy()


def median_time(fn, repeats):
    """Median seconds of one call of ``fn`` over ``repeats`` calls (after one warm-up)."""
    fn()
    return timed(fn, repeats)


def measure(name, model, network, transform, X, args):
    import onnxruntime as ort

    from skdistill.onnx import to_onnx

    step = model.steps[-1][1] if isinstance(model, Pipeline) else model
    start = time.perf_counter()
    onx = to_onnx(model, X, options={id(step): {"zipmap": False}})
    export_s = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(onx.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    rows = []
    for n, repeats in ((1, args.repeats), (1000, max(3, args.repeats // 20))):
        batch = np.ascontiguousarray(X[:n])
        feed = {"X": batch}
        parity = float(np.abs(sess.run(None, feed)[1] - model.predict_proba(batch)).max())
        t_onnx = median_time(lambda: sess.run(None, feed), repeats)
        t_proba = median_time(lambda: model.predict_proba(batch), repeats)
        t_torch = median_time(lambda: bare_forward(network, transform, batch), repeats)
        row = dict(model=name, rows=n, repeats=repeats, onnx_ms=1e3 * t_onnx,
                   predict_proba_ms=1e3 * t_proba, torch_ms=1e3 * t_torch,
                   onnx_over_predict_proba=t_onnx / t_proba, onnx_over_torch=t_onnx / t_torch,
                   max_abs_diff=parity, export_s=export_s)
        rows.append(row)
        print(f"| {name} | {n} | {row['onnx_ms']:.3f} | {row['predict_proba_ms']:.3f} | "
              f"{row['torch_ms']:.3f} | {row['onnx_over_predict_proba']:.3f} | "
              f"{row['onnx_over_torch']:.3f} | {parity:.1e} |", flush=True)
    return rows


def main(argv=()):
    parser = argparse.ArgumentParser(prog="python -m benchmarks onnx",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--n-train", type=int, default=5000, help="training rows")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200,
                        help="timed calls per single-row measure (1,000 rows: a 20th)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and onnxruntime intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="300 training rows, 1 epoch, 20 repeats (a smoke run)")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.epochs, args.repeats = 300, 1, 20
    torch.set_num_threads(args.threads)
    X, y, source = load_data(n_rows=max(args.n_train, 1000))
    import onnxruntime as ort

    print(f"data: {source}, {args.n_train} training rows, {args.epochs} epochs, seed "
          f"{args.seed}; {args.threads} thread(s); torch {torch.__version__}, onnxruntime "
          f"{ort.__version__}; {platform.processor() or platform.machine()}")
    print("| model | rows | onnxruntime ms | predict_proba ms | torch ms | onnx / predict_proba "
          "| onnx / torch | max abs diff |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        model, network, transform = build(name, X[:args.n_train], y[:args.n_train],
                                          args.epochs, args.seed)
        rows += measure(name, model, network, transform, X, args)
    single = [r["onnx_over_predict_proba"] for r in rows if r["rows"] == 1]
    met = all(r <= GOAL for r in single)
    print(f"single-row onnx / predict_proba: {', '.join(f'{r:.3f}' for r in single)} "
          f"(goal <= {GOAL}: {'met' if met else 'not met'})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"source": source, "args": vars(args), "onnxruntime": ort.__version__,
                       "torch": torch.__version__, "goal_met": met, "rows": rows}, fh, indent=1)
    return 0
