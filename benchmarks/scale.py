"""Scale: KnowledgeDistiller on a transfer set beyond memory (dask array, 1M to 10M rows).

``python -m benchmarks scale [--sizes 1000000 3000000 10000000] [--modes process cluster]
[--seed 0] [--json PATH]``

Data: HIGGS-shaped synthetic rows (28 float32 features: 21 "low-level" ones, transverse
momenta, pseudorapidities, angles and b-tags on HIGGS's scales, and 7 "high-level" invariant
masses computed from them) whose labels are drawn from a known ``p*(x)``: the logistic of a
fixed random 2-layer tanh network of ten features plus a bump in one mass (the boundary is the
same for every ``--seed``; the seed draws the rows). ``--labelled`` rows (100,000) with labels
are held in memory; the transfer set (``--sizes`` rows) is a dask array built block by block
from ``(seed, block index)`` (``--chunk`` rows a block) and never materialised; ``--n-test``
rows (200,000) with labels, from another stream of the generator, are the test set.

Model: ``KnowledgeDistiller(HistGradientBoostingClassifier, MLPStudent)``, ``alpha=1``, the
teacher fitted on the labelled rows, the student trained on the labelled rows and the transfer
set for ``--passes`` passes (its ``max_epochs``), minibatches of ``--batch-size``, Adam at
``--lr``. Each configuration (transfer size x mode) runs in its own child process (so that its
peak RSS is its own): ``process`` (no dask client: the teacher labels the chunks in a local
thread pool) and ``cluster`` (a ``LocalCluster`` of ``--workers`` worker processes, one thread
each: the chunks are generated and labelled on the workers). Every process runs one torch
thread and one BLAS/OpenMP thread. Reported per run: fit time, teacher fit time, the stages of
``transfer_stats_`` with rows/s (teacher labelling, per worker-second; waiting for labelled
chunks; student training: the student's whole training less its waiting), peak RSS
(``ru_maxrss``; the client's before and after ``fit``, and each worker's), and the student's
test AUC. Baselines, fitted in the parent: ``p*`` (Bayes AUC), the teacher, an ``MLPStudent``
trained on the labelled rows alone and ``KnowledgeDistiller`` on the labelled rows alone
(same architecture and seed, ``--baseline-epochs`` epochs). Checks: peak RSS of the largest
transfer set within 1.5x of the smallest's, fit time within 1.1x of linear, the student of
both modes compared (largest probability difference; ``--noise-seeds`` extra runs of the
smallest size with other model seeds give the seed noise), and the projected time for the
11M rows of HIGGS (a line fitted to the fit times of the two largest sizes). ``--quick``: tiny
sizes, the cluster at the smallest only and its workers threads of the child process (they
start in a second, not in the seconds worker processes take to import torch), for the tests.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from . import REPO

#: the rows of the full HIGGS data set (the projection's size)
HIGGS_ROWS = 11_000_000
N_FEATURES = 28
#: seed of the fixed network of ``p*``: the same boundary for every ``--seed``
BOUNDARY_SEED = 20140
#: sub-streams of the generator: rows of the transfer set, the labelled rows, the test rows
PARTS = {"transfer": 0, "labelled": 1, "test": 2}
#: the features the boundary reads: lepton pT, missing energy, jet 1 b-tag, the 7 masses
SIGNAL_FEATURES = [0, 3, 8, 21, 22, 23, 24, 25, 26, 27]
#: scale of the boundary's logit (sets the Bayes AUC, about 0.87; about half the rows positive)
LOGIT_SCALE = 3.5
#: b-tag values of HIGGS
BTAGS = np.array([0.0, 1.087, 2.173], dtype=np.float32)


def _pair_mass(pt_a, eta_a, phi_a, pt_b, eta_b, phi_b):
    """Invariant mass of two massless objects from (pT, eta, phi)."""
    return np.sqrt(2 * pt_a * pt_b * (np.cosh(eta_a - eta_b) - np.cos(phi_a - phi_b)))


def _features(rng, rows):
    """``rows`` HIGGS-shaped rows, float32 (see the module docstring)."""
    X = np.empty((rows, N_FEATURES), dtype=np.float32)
    # lepton pT, eta, phi; missing energy magnitude, phi
    X[:, 0] = rng.lognormal(-0.1, 0.5, rows)
    X[:, 1] = np.clip(rng.normal(0, 1.0, rows), -2.5, 2.5)
    X[:, 2] = rng.uniform(-np.pi, np.pi, rows)
    X[:, 3] = rng.lognormal(-0.1, 0.6, rows)
    X[:, 4] = rng.uniform(-np.pi, np.pi, rows)
    # 4 jets ordered by pT: pT, eta, phi, b-tag
    jet_pt = -np.sort(-rng.lognormal(-0.1, 0.55, (rows, 4)), axis=1)
    for j in range(4):
        X[:, 5 + 4 * j] = jet_pt[:, j]
        X[:, 6 + 4 * j] = np.clip(rng.normal(0, 1.1, rows), -2.5, 2.5)
        X[:, 7 + 4 * j] = rng.uniform(-np.pi, np.pi, rows)
        X[:, 8 + 4 * j] = BTAGS[rng.choice(3, rows, p=[0.5, 0.25, 0.25])]
    lep = (X[:, 0], X[:, 1], X[:, 2])
    met = (X[:, 3], np.zeros(rows, np.float32), X[:, 4])
    jets = [(X[:, 5 + 4 * j], X[:, 6 + 4 * j], X[:, 7 + 4 * j]) for j in range(4)]
    m12 = _pair_mass(*jets[0], *jets[1])
    m13 = _pair_mass(*jets[0], *jets[2])
    m23 = _pair_mass(*jets[1], *jets[2])
    m_lv = _pair_mass(*lep, *met)
    m_jlv = np.sqrt(m_lv ** 2 + _pair_mass(*jets[0], *lep) ** 2 + _pair_mass(*jets[0], *met) ** 2)
    m_bb = _pair_mass(*jets[2], *jets[3])
    m_wbb = np.sqrt(m12 ** 2 + m_bb ** 2)
    m_wwbb = np.sqrt(m_wbb ** 2 + m_jlv ** 2)
    masses = [m12, np.sqrt(m12 ** 2 + m13 ** 2 + m23 ** 2), m_lv, m_jlv, m_bb, m_wbb, m_wwbb]
    for k, mass in enumerate(masses):
        # HIGGS's masses sit around 1: scaled, with a resolution noise
        X[:, 21 + k] = mass / (1.5 + 0.5 * k) * rng.lognormal(0, 0.1, rows)
    return X


def _boundary():
    """The fixed weights of ``p*``'s network: ``(W1, b1, w2, b2)``."""
    rng = np.random.default_rng(BOUNDARY_SEED)
    d, h = len(SIGNAL_FEATURES), 16
    return (rng.normal(0, 1.2 / np.sqrt(d), (d, h)), rng.normal(0, 0.5, h),
            rng.normal(0, 1 / np.sqrt(h), h), 0.0)


_WEIGHTS = _boundary()


def bayes_proba(X):
    """``p*(y = 1 | x)`` of the generator's rows: a fixed tanh network of ten features (logs of
    the positive ones, centred) and a bump of the b-pair mass, through the logistic."""
    W1, b1, w2, b2 = _WEIGHTS
    Z = np.asarray(X, dtype=np.float64)[:, SIGNAL_FEATURES]
    Z = np.where(np.arange(Z.shape[1]) == 2, Z - 1.0, np.log(np.maximum(Z, 1e-3)) + 0.1)
    logit = np.tanh(Z @ W1 + b1) @ w2 + b2
    m_bb = np.asarray(X[:, 25], dtype=np.float64)
    logit = LOGIT_SCALE * (logit + 1.2 * np.exp(-((m_bb - 0.8) / 0.25) ** 2) + 0.4)
    return 1 / (1 + np.exp(-logit))


def make_block(part, seed, block, rows):
    """Block ``block`` of ``rows`` rows of generator stream ``part`` (``"transfer"``,
    ``"labelled"``, ``"test"``): ``(X float32 (rows, 28), p* (rows,), y (rows,))``, a function
    of its arguments alone."""
    rng = np.random.default_rng([seed, PARTS[part], block])
    X = _features(rng, rows)
    p = bayes_proba(X)
    y = (rng.uniform(size=rows) < p).astype(np.int64)
    return X, p, y


def sample(part, seed, n, chunk):
    """``n`` rows of stream ``part`` in memory: ``(X, p*, y)``, made of blocks of ``chunk``
    rows (the same rows as the dask array of that stream)."""
    blocks = [make_block(part, seed, b, min(chunk, n - b * chunk))
              for b in range(-(-n // chunk))]
    return tuple(np.concatenate(parts) for parts in zip(*blocks))


def _transfer_block(seed=0, chunk=1, n=1, block_id=None):
    block = block_id[0]
    return make_block("transfer", seed, block, min(chunk, n - block * chunk))[0]


def transfer_array(seed, n, chunk):
    """The transfer set of ``n`` rows as a lazy dask array of blocks of ``chunk`` rows: each
    block is generated where it is computed, none is held."""
    import dask.array as da

    rows = (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())
    return da.map_blocks(_transfer_block, chunks=(rows, (N_FEATURES,)), dtype=np.float32,
                         meta=np.empty((0, N_FEATURES), dtype=np.float32), seed=seed,
                         chunk=chunk, n=n)


# -- the child process: one configuration ------------------------------------------------------

def maxrss_mib():
    """This process's peak resident set size so far, in MiB (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def teacher(seed, args):
    """The teacher: histogram gradient boosting, fixed number of trees (no early stopping)."""
    return _TimedHGB(max_iter=args["teacher_iter"], learning_rate=0.1, early_stopping=False,
                     random_state=seed)


def student(seed, epochs, args):
    from skdistill import MLPStudent

    return MLPStudent(hidden_layer_sizes=tuple(args["hidden"]), max_epochs=epochs,
                      batch_size=args["batch_size"], lr=args["lr"], random_state=seed)


class _TimedHGB(HistGradientBoostingClassifier):
    """``HistGradientBoostingClassifier`` that records its fit time (``fit_seconds_``)."""

    def fit(self, X, y, sample_weight=None):
        start = time.perf_counter()
        super().fit(X, y, sample_weight=sample_weight)
        self.fit_seconds_ = time.perf_counter() - start
        return self


def distiller(spec):
    from skdistill import KnowledgeDistiller

    return KnowledgeDistiller(teacher(spec["seed"], spec),
                              student(spec["model_seed"], spec["passes"], spec), alpha=1.0,
                              shuffle_buffer=spec["shuffle_buffer"],
                              teacher_cache=spec["teacher_cache"], random_state=spec["model_seed"])


def _worker_maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _warm_worker():
    import sklearn.ensemble  # noqa: F401

    import skdistill  # noqa: F401


def child(spec):
    """Fit one configuration; return its result row (a dict, printed as a JSON line)."""
    import torch
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(spec["torch_threads"])
    seed, chunk, size = spec["seed"], spec["chunk"], spec["size"]
    X, _, y = sample("labelled", seed, spec["labelled"], chunk)
    X_transfer = transfer_array(seed, size, chunk)
    cluster = client = None
    row = {key: spec[key] for key in ("size", "mode", "seed", "model_seed")}
    with threadpool_limits(1):
        if spec["mode"] == "cluster":
            import logging

            from distributed import Client, LocalCluster

            start = time.perf_counter()
            cluster = LocalCluster(n_workers=spec["workers"], threads_per_worker=1,
                                   processes=not spec["quick"], dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
            client.run(_warm_worker)
            row["cluster_start_seconds"] = time.perf_counter() - start
        try:
            row["rss_before_fit_mib"] = maxrss_mib()
            model = distiller(spec)
            start = time.perf_counter()
            model.fit(X, y, X_unlabeled=X_transfer)
            row["fit_seconds"] = time.perf_counter() - start
            row["peak_rss_mib"] = maxrss_mib()
            if client is not None:
                row["worker_peak_rss_mib"] = sorted(client.run(_worker_maxrss).values())
        finally:
            if client is not None:
                client.close()
                cluster.close()
        row["teacher_fit_seconds"] = model.teacher_.fit_seconds_
        row.update(_stage_stats(model, len(y)))
        X_test, _, y_test = sample("test", seed, spec["n_test"], chunk)
        proba = model.predict_proba(X_test)[:, 1].astype(np.float32)
    np.save(Path(spec["workdir"]) / f"{spec['mode']}_{size}_{spec['model_seed']}.npy", proba)
    row["auc"] = float(roc_auc_score(y_test, proba))
    return row


def _stage_stats(model, n_labelled):
    """The stages of ``transfer_stats_`` with rows/s: the teacher's labelling (per
    worker-second: its time summed over the threads or workers that labelled) and the
    student's training (its whole training less the time it waited for labelled chunks)."""
    stats = dict(model.transfer_stats_)
    labelled_rows = stats["rows"] * stats["labelled_chunks"] / stats["chunks"]
    train_seconds = stats["fit_seconds"] - stats["wait_seconds"]
    return {"transfer_stats": stats, "train_seconds": train_seconds,
            "label_rows_per_s": labelled_rows / stats["label_seconds"],
            # the student's rows: the transfer set and the labelled rows, each pass
            "train_rows_per_s": (stats["rows"] + n_labelled) * stats["passes"] / train_seconds}


# -- the parent: baselines, children, checks, table ----------------------------------------------

def baselines(args, log):
    """Bayes, teacher, labelled-only student and KD on the labelled rows alone (test AUC)."""
    import torch
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    from skdistill import KnowledgeDistiller

    spec = vars(args)
    X, _, y = sample("labelled", args.seed, args.labelled, args.chunk)
    X_test, p_test, y_test = sample("test", args.seed, args.n_test, args.chunk)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.torch_threads)
    out = {"bayes": {"auc": float(roc_auc_score(y_test, p_test))}}
    try:
        with threadpool_limits(1):
            start = time.perf_counter()
            hgb = teacher(args.seed, spec).fit(X, y)
            p_teacher = hgb.predict_proba(X_test)[:, 1]
            out["teacher"] = {"auc": float(roc_auc_score(y_test, p_teacher)),
                              "fit_seconds": hgb.fit_seconds_,
                              "seconds": time.perf_counter() - start}
            for name, model in [
                    ("student, labelled rows only",
                     student(args.seed, args.baseline_epochs, spec)),
                    ("KD, labelled rows only",
                     KnowledgeDistiller(teacher(args.seed, spec),
                                        student(args.seed, args.baseline_epochs, spec),
                                        alpha=1.0, random_state=args.seed))]:
                start = time.perf_counter()
                model.fit(X, y)
                proba = model.predict_proba(X_test)[:, 1]
                out[name] = {"auc": float(roc_auc_score(y_test, proba)),
                             "seconds": time.perf_counter() - start,
                             "epochs": args.baseline_epochs}
                log(f"  {name}: test AUC {out[name]['auc']:.4f}")
            start = time.perf_counter()
            make_block("transfer", args.seed, 0, args.chunk)
            out["generate_rows_per_s"] = args.chunk / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    out["bayes"]["test_positive_rate"] = float(y_test.mean())
    log(f"  Bayes AUC {out['bayes']['auc']:.4f}, teacher AUC {out['teacher']['auc']:.4f}")
    return out, y_test, p_teacher


def run_child(spec, log):
    """Run one configuration in a fresh process; its result row."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [
               os.environ.get("PYTHONPATH")] if p])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks", "scale", "--child",
                           json.dumps(spec)], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"scale: the run {spec['mode']} {spec['size']} failed "
                           f"(exit status {done.returncode})")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_seconds"] = time.perf_counter() - start
    log(f"  {row['mode']:8s} {row['size']:>10,} rows (model seed {row['model_seed']}): fit "
        f"{row['fit_seconds']:.1f} s, peak RSS {row['peak_rss_mib']:.0f} MiB, "
        f"AUC {row['auc']:.4f} ({row['process_seconds']:.0f} s in all)")
    return row


def checks(runs, workdir, teacher_proba):
    """Peak RSS and time ratios (largest / smallest size, per mode), the two modes' students
    compared, and the seed noise."""
    out = {}
    main = [r for r in runs if r["model_seed"] == r["seed"]]
    for mode in sorted({r["mode"] for r in main}):
        rows = sorted((r for r in main if r["mode"] == mode), key=lambda r: r["size"])
        if len(rows) < 2:
            continue
        small, large = rows[0], rows[-1]
        rss = [max([r["peak_rss_mib"]] + r.get("worker_peak_rss_mib", [])) for r in (small,
                                                                                    large)]
        out[mode] = {
            "sizes": [small["size"], large["size"]],
            "size_ratio": large["size"] / small["size"],
            "peak_rss_ratio": rss[1] / rss[0],
            "client_peak_rss_ratio": large["peak_rss_mib"] / small["peak_rss_mib"],
            # what fit added to the client's peak, beyond the imports and the data in memory
            "client_fit_rss_growth_mib": [r["peak_rss_mib"] - r["rss_before_fit_mib"]
                                          for r in (small, large)],
            "fit_time_ratio": large["fit_seconds"] / small["fit_seconds"],
            "transfer_time_ratio": ((large["fit_seconds"] - large["teacher_fit_seconds"])
                                    / (small["fit_seconds"] - small["teacher_fit_seconds"]))}
        out[mode]["rss_flat"] = out[mode]["peak_rss_ratio"] <= 1.5
        out[mode]["time_linear"] = (out[mode]["fit_time_ratio"]
                                    <= 1.1 * out[mode]["size_ratio"])
    same = []
    for size in sorted({r["size"] for r in main}):
        pair = [r for r in main if r["size"] == size]
        if len(pair) == 2:
            p = [np.load(Path(workdir) / f"{r['mode']}_{size}_{r['model_seed']}.npy")
                 for r in pair]
            same.append({"size": size, "max_abs_proba_diff": float(np.abs(p[0] - p[1]).max()),
                         "auc_diff": abs(pair[0]["auc"] - pair[1]["auc"])})
    out["modes_compared"] = same
    for r in runs:
        p = np.load(Path(workdir) / f"{r['mode']}_{r['size']}_{r['model_seed']}.npy")
        r["mean_abs_diff_teacher"] = float(np.abs(p - teacher_proba).mean())
    noise = [r for r in runs if r["mode"] == "process" and r["size"] == min(
        x["size"] for x in runs)]
    if len(noise) > 1:
        aucs = [r["auc"] for r in noise]
        out["seed_noise"] = {"size": noise[0]["size"], "model_seeds": [r["model_seed"]
                                                                       for r in noise],
                             "aucs": aucs, "auc_std": float(np.std(aucs, ddof=1)),
                             "auc_range": float(np.ptp(aucs))}
    return out


def projection(runs, rows=HIGGS_ROWS):
    """Projected fit time for a transfer set of ``rows`` rows, per mode: a line through the fit
    times of the two largest sizes (linear in rows), and each stage at its measured rows/s."""
    out = {}
    main = [r for r in runs if r["model_seed"] == r["seed"]]
    for mode in sorted({r["mode"] for r in main}):
        pts = sorted((r for r in main if r["mode"] == mode), key=lambda r: r["size"])[-2:]
        if len(pts) < 2:
            continue
        (n0, t0), (n1, t1) = [(r["size"], r["fit_seconds"]) for r in pts]
        slope = (t1 - t0) / (n1 - n0)
        largest = pts[-1]
        stages = {}
        if "label_rows_per_s" in largest:
            stages["label_worker_seconds"] = rows / largest["label_rows_per_s"]
        if "train_rows_per_s" in largest:
            passes = largest["transfer_stats"].get("passes", 1)
            stages["train_seconds"] = rows * passes / largest["train_rows_per_s"]
        out[mode] = {"rows": rows, "fit_seconds": t1 + slope * (rows - n1),
                     "seconds_per_million_rows": slope * 1e6, "from_sizes": [n0, n1],
                     **stages}
    return out


def print_tables(results):
    base = results["baselines"]
    print("\n| transfer rows | mode | fit s | teacher fit s | label s (rows/s) | wait s | "
          "train s (rows/s) | peak RSS MiB (client; workers) | student AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        if r["model_seed"] != r["seed"]:
            continue
        s = r["transfer_stats"]
        workers = "; " + " / ".join(f"{m:.0f}" for m in r["worker_peak_rss_mib"]) if (
            "worker_peak_rss_mib" in r) else ""
        print(f"| {r['size']:,} | {r['mode']} | {r['fit_seconds']:.1f} | "
              f"{r['teacher_fit_seconds']:.1f} | {s['label_seconds']:.1f} "
              f"({r['label_rows_per_s'] / 1e3:,.0f}k) | {s['wait_seconds']:.1f} | "
              f"{r['train_seconds']:.1f} ({r['train_rows_per_s'] / 1e3:,.0f}k) | "
              f"{r['peak_rss_mib']:.0f}{workers} | {r['auc']:.4f} |")
    print("\n| baseline | test AUC |\n|---|---|")
    for name in ("bayes", "teacher", "student, labelled rows only", "KD, labelled rows only"):
        label = {"bayes": "p* (Bayes)", "teacher": "teacher (HGB)"}.get(name, name)
        print(f"| {label} | {base[name]['auc']:.4f} |")
    print()
    for mode, c in results["checks"].items():
        if mode in ("modes_compared", "seed_noise"):
            continue
        print(f"{mode}: {c['sizes'][1]:,} / {c['sizes'][0]:,} rows: peak RSS x"
              f"{c['peak_rss_ratio']:.2f} (target <= 1.5: {'met' if c['rss_flat'] else 'MISSED'})"
              f", fit time x{c['fit_time_ratio']:.2f} (target <= {1.1 * c['size_ratio']:.1f}: "
              f"{'met' if c['time_linear'] else 'MISSED'}); the client's peak grew by "
              + " / ".join(f"{g:.0f}" for g in c["client_fit_rss_growth_mib"])
              + " MiB during fit")
    for c in results["checks"]["modes_compared"]:
        print(f"process vs cluster at {c['size']:,} rows: largest probability difference "
              f"{c['max_abs_proba_diff']:.2e}, AUC difference {c['auc_diff']:.2e}")
    if "seed_noise" in results["checks"]:
        n = results["checks"]["seed_noise"]
        print(f"seed noise at {n['size']:,} rows (model seeds {n['model_seeds']}): AUC std "
              f"{n['auc_std']:.2e}, range {n['auc_range']:.2e}")
    for mode, p in results["projection"].items():
        print(f"{mode}: projected fit time for {p['rows']:,} transfer rows (HIGGS): "
              f"{p['fit_seconds']:.0f} s ({p['seconds_per_million_rows']:.1f} s per million "
              f"rows)")


def machine():
    import dask
    import sklearn
    import torch

    import skdistill

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "sklearn": sklearn.__version__,
            "dask": dask.__version__, "skdistill": skdistill.__version__, "commit": commit}


def main(argv=()):
    parser = argparse.ArgumentParser(prog="python -m benchmarks scale",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1_000_000, 3_000_000, 10_000_000],
                        help="rows of the transfer set, one run per size and mode")
    parser.add_argument("--modes", nargs="+", default=["process", "cluster"],
                        choices=["process", "cluster"])
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the rows, the teacher and the student")
    parser.add_argument("--noise-seeds", type=int, default=1,
                        help="extra process runs of the smallest size with model seeds "
                             "seed + 1, ... (the seed noise of the student's AUC)")
    parser.add_argument("--labelled", type=int, default=100_000, help="labelled rows")
    parser.add_argument("--n-test", type=int, default=200_000, help="test rows")
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per dask block")
    parser.add_argument("--shuffle-buffer", type=int, default=100_000)
    parser.add_argument("--teacher-cache", default=None,
                        help="teacher_cache directory (used from the second pass on)")
    parser.add_argument("--passes", type=int, default=1,
                        help="passes over the transfer set (the student's max_epochs)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-2,
                        help="the students' learning rate (Adam)")
    parser.add_argument("--teacher-iter", type=int, default=200, help="trees of the teacher")
    parser.add_argument("--baseline-epochs", type=int, default=20,
                        help="epochs of the students trained on the labelled rows alone")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (seconds), for the tests: overrides the sizes above")
    parser.add_argument("--json", default=None,
                        help="write the results here (default benchmarks/scale.json; none with "
                             "--quick)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv))
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    for name in ("labelled", "n_test", "chunk", "shuffle_buffer", "passes", "batch_size",
                 "teacher_iter", "baseline_epochs", "workers", "torch_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: at least 1")
    if min(args.sizes) < 1 or args.noise_seeds < 0:
        parser.error(f"--sizes {args.sizes} and --noise-seeds {args.noise_seeds}: sizes of "
                     "at least 1 row, noise seeds of at least 0")
    if args.quick:
        args.sizes, args.labelled, args.n_test, args.chunk = [20_000, 60_000], 5_000, 5_000, 10_000
        args.shuffle_buffer, args.teacher_iter, args.hidden = 10_000, 20, [16]
        args.baseline_epochs, args.noise_seeds = 2, 0
    json_path = args.json or (None if args.quick else str(REPO / "benchmarks" / "scale.json"))

    def log(msg):
        print(msg, flush=True)

    log(f"scale: {vars(args)}")
    start = time.perf_counter()
    results = {"args": vars(args), "machine": machine()}
    results["baselines"], _, teacher_proba = baselines(args, log)
    configs = [(size, mode, args.seed) for size in sorted(args.sizes) for mode in args.modes
               # --quick: the cluster at the smallest size only (its start costs seconds)
               if not (args.quick and mode == "cluster" and size > min(args.sizes))]
    configs += [(min(args.sizes), "process", args.seed + k)
                for k in range(1, args.noise_seeds + 1)]
    with tempfile.TemporaryDirectory(prefix="skdistill-scale-") as workdir:
        runs = []
        for size, mode, model_seed in configs:
            spec = {**vars(args), "size": size, "mode": mode, "model_seed": model_seed,
                    "workdir": workdir}
            runs.append(run_child(spec, log))
        results["runs"] = runs
        results["checks"] = checks(runs, workdir, teacher_proba)
    results["projection"] = projection(results["runs"])
    results["seconds"] = time.perf_counter() - start
    print_tables(results)
    log(f"\nscale: {results['seconds']:.0f} s")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
