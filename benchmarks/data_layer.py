"""The data layer: SGLD, GPED and KD training loops against bare torch loops, same process.

Prints one JSON line of ratios, each the median over ``--repeats`` of the ratio within a
repeat (the two loops timed one after the other, so that a change in the machine's load hits
both alike), with every repeat's times:

- ``sgld_vs_bare``: ``SGLDTeacher.fit`` time / a bare SGLD loop's (equation 5 written out:
  the same network, data, batch and step);
- ``gped_vs_sgld_t10``, ``gped_vs_sgld_t100``: ``GPEDDistiller.fit`` time (a student step
  every 10 or 100 SGLD iterations) / ``SGLDTeacher.fit`` time on the same chain;
- ``kd_epoch_vs_bare``: a ``KnowledgeDistiller`` epoch (a frozen fitted teacher) / an epoch
  of a bare torch loop on the same soft targets (Adam, shuffled minibatches).

Synthetic data: 4,000 rows of ``--features`` standard-normal float32 features, 10 classes,
an MLP of ``--hidden`` units, minibatches of 100. ``--code PATH`` measures the skdistill of
another checkout (its root put first on ``PYTHONPATH``, in a child process), so that two
versions are compared with the same script: run it with the lock held, alternating.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings


def main(argv=()):
    parser = argparse.ArgumentParser(prog="python -m benchmarks data_layer")
    parser.add_argument("--code", default=None,
                        help="root of another skdistill checkout to measure (default: the "
                             "installed skdistill)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000, help="SGLD iterations per chain")
    parser.add_argument("--epochs", type=int, default=5, help="KD epochs per fit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="*", default=[64, 64])
    args = parser.parse_args(list(argv))
    if args.steps < 100:
        parser.error(f"--steps {args.steps}: at least 100 (GPED at thinning 100 takes one "
                     "student step per 100 SGLD iterations)")
    if args.features < 20:
        parser.error(f"--features {args.features}: at least 20 (the labels are drawn from the "
                     "first 20 features)")
    if args.code is not None:
        rest = [a for a in argv if a not in ("--code", args.code)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [os.path.abspath(args.code)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
        done = subprocess.run([sys.executable, os.path.abspath(__file__), *rest], env=env,
                              capture_output=True, text=True)
        sys.stderr.write(done.stderr)
        if done.returncode:
            return done.returncode
        print(done.stdout.strip().splitlines()[-1], flush=True)
        return 0
    measure(args)
    return 0


def measure(args):
    """Time the loops of the module docstring with the importable skdistill; print and return
    the JSON row."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    import skdistill
    from skdistill import GPEDDistiller, KnowledgeDistiller, MLPStudent, SGLDTeacher
    from skdistill.nets import MLP

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n, d, classes, batch, step = 4000, args.features, 10, 100, 1e-4
    hidden = tuple(args.hidden)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = (X[:, :classes].argmax(1) + (X[:, classes:2 * classes].argmax(1) > 4)) % classes
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def bare_sgld(model, n_steps, precision=10.0):
        params = list(model.parameters())
        scale = n / batch
        order, pos = torch.randperm(n), 0
        for _ in range(n_steps):
            if pos + batch > n:
                order, pos = torch.randperm(n), 0
            idx = order[pos:pos + batch]
            pos += batch
            for p in params:
                p.grad = None
            loss = F.cross_entropy(model(Xt[idx]), yt[idx], reduction="sum")
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.add_(step / 2 * (-precision * p - scale * p.grad)
                           + step ** 0.5 * torch.randn_like(p))

    def teacher(seed, steps):
        return SGLDTeacher(hidden_layer_sizes=hidden, step_size=step, prior_precision=10.0,
                           batch_size=batch, n_iter=steps, burn_in=0, thinning=100,
                           random_state=seed)

    def gped(seed, steps, thinning):
        return GPEDDistiller(teacher(seed, steps), MLPStudent(hidden_layer_sizes=hidden),
                             n_iter=steps, burn_in=0, thinning=thinning,
                             distill_batch_size=batch, random_state=seed)

    soft = LogisticRegression(max_iter=300).fit(X, y)
    P = torch.from_numpy(soft.predict_proba(X).astype(np.float32))

    def bare_kd_epoch(seed):
        torch.manual_seed(seed)
        model = MLP(d, classes, hidden)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        start = time.perf_counter()
        for _ in range(args.epochs):
            order = torch.randperm(n)
            for i in range(0, n, batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss = -(P[idx] * torch.log_softmax(model(Xt[idx]), 1)).sum(1).mean()
                loss.backward()
                opt.step()
        return (time.perf_counter() - start) / args.epochs

    def kd_epoch(seed):
        kd = KnowledgeDistiller(FrozenEstimator(soft), MLPStudent(
            hidden_layer_sizes=hidden, max_epochs=args.epochs, batch_size=batch, lr=1e-3),
            random_state=seed)
        start = time.perf_counter()
        kd.fit(X, y)
        return (time.perf_counter() - start) / args.epochs

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    # untimed: one-off costs (imports inside torch.optim, allocator, first kernels)
    teacher(0, 200).fit(X, y)
    gped(0, 200, 10).fit(X, y)
    kd_epoch(0)
    bare_kd_epoch(0)
    bare_sgld(MLP(d, classes, hidden), 200)

    times = {k: [] for k in ("bare_sgld", "sgld", "gped_t10", "gped_t100", "bare_kd_epoch",
                             "kd_epoch")}
    for rep in range(args.repeats):
        torch.manual_seed(rep)
        model = MLP(d, classes, hidden)
        times["bare_sgld"].append(timed(lambda: bare_sgld(model, args.steps)))
        times["sgld"].append(timed(lambda: teacher(rep, args.steps).fit(X, y)))
        times["gped_t10"].append(timed(lambda: gped(rep, args.steps, 10).fit(X, y)))
        times["gped_t100"].append(timed(lambda: gped(rep, args.steps, 100).fit(X, y)))
        times["bare_kd_epoch"].append(bare_kd_epoch(rep))
        times["kd_epoch"].append(kd_epoch(rep))

    def ratio(a, b):
        return float(np.median(np.array(times[a]) / np.array(times[b])))

    out = dict(code=skdistill.__file__, torch=torch.__version__, threads=args.threads,
               repeats=args.repeats, steps=args.steps, epochs=args.epochs,
               data=f"{n}x{d} float32, {classes} classes, MLP {hidden}, batch {batch}",
               sgld_vs_bare=ratio("sgld", "bare_sgld"),
               gped_vs_sgld_t10=ratio("gped_t10", "sgld"),
               gped_vs_sgld_t100=ratio("gped_t100", "sgld"),
               kd_epoch_vs_bare=ratio("kd_epoch", "bare_kd_epoch"),
               times={k: [float(f"{t:.6g}") for t in v] for k, v in times.items()})
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
