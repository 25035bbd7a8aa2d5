"""SGLDTeacher: a Bayesian neural network classifier sampled with SGLD (posterior predictive teacher)."""
import copy
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn.utils import vector_to_parameters

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy
from .._random import draw_seed, seeded_steps
from .._validation import (StrictParamsMixin, check_device, check_input, check_layer_sizes,
                           check_sample_weight, encode_labels, is_number, param_error)
from ..engine import (Minibatches, RowDataset, as_device, limit_threads, read_every,
                      weighted_rows, zero_grad_if_not_finite_)
from ..nets import MLP
from ..samplers import as_schedule, sgld_step_
from ._posterior import PosteriorPredictionMixin


class PosteriorSample:
    """One posterior sample of a network teacher: ``sample(X) -> class probabilities``.

    ``X`` is a float32 tensor batch; the result is a ``(n, C)`` tensor on the network's
    device. ``module`` is the network holding the sample (for a chain, only until the chain
    moves on).
    """

    def __init__(self, module):
        self.module = module

    def __call__(self, X):
        device = next(self.module.parameters()).device
        with torch.no_grad():
            return torch.softmax(self.module(X.to(device)), dim=-1)

#: Memory for the kept samples when ``max_samples=None``, in bytes of float32 parameters.
SAMPLE_BUDGET_BYTES = 256 * 10**6
# Divergence check: the mean minibatch NLL over each window of iterations against chance.
_WINDOW = 100
# Times chance, log(n_classes). Working chains stay below ~5 after their first window, even
# hot ones (a wide network on 150 rows); diverging ones reach 10 to 1e5 within a few windows.
_DIVERGED = 10.0
# Fewest iterations after the last full window that are judged at the end of a fit.
_MIN_TAIL = 10
# A step of 0.25 / N keeps the drift step * N / 2 on the mean gradient at 1/8, as the paper's
# 4e-6 at N = 60,000 does.
_SAFE_STEP_TIMES_N = 0.25


class SGLDTeacher(StrictParamsMixin, DeviceFallbackMixin, PosteriorPredictionMixin, FitPolicyMixin,
                  ClassifierMixin, BaseEstimator):
    """Bayesian neural network classifier whose posterior is sampled by SGLD.

    Each iteration draws a minibatch of ``M = batch_size`` rows (shuffled passes over the data)
    and applies equation 5 of Vadera et al.::

        theta += step/2 * (grad log p(theta) + N/M * sum_i grad log p(y_i|x_i, theta))
                 + Normal(0, step)

    with a Gaussian prior ``p(theta) = Normal(0, 1/prior_precision)`` and a softmax
    likelihood. After ``burn_in`` iterations every ``thinning``-th state is a posterior sample,
    kept spread evenly over the whole chain up to ``max_samples`` (see Notes). Predictions
    average over the kept samples (Monte Carlo posterior predictive); ``predict_expectation``
    and ``predict_uncertainty`` (total = aleatoric + epistemic) do so for other quantities.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(400, 400)
        Hidden widths of the default fully connected network (ReLU). Ignored when ``module``
        is given.
    module : torch.nn.Module, default=None
        Any torch classifier returning logits of shape ``(n, n_classes)`` for a batch of
        ``X`` rows, e.g. ``CNN.from_architecture("mnist", (1, 28, 28), 10)`` from
        :mod:`skdistill.nets` (flat 784-pixel rows are reshaped by the CNN). It is copied and
        its layers re-initialised (``reset_parameters``) under ``random_state``. Avoid dropout:
        SGLD needs a deterministic likelihood.
    prior_precision : float, default=10.0
        Precision ``lambda`` of the isotropic Gaussian prior on all parameters.
    step_size : "auto", float or callable, default="auto"
        SGLD step ``epsilon``. ``"auto"`` is ``0.25 / N`` for the ``N`` rows of ``X`` (the
        paper's 4e-6 at N = 60,000; see Notes), which suits ``X`` scaled to about unit range
        (``StandardScaler``, pixels / 255). A callable ``t -> epsilon_t`` (0-based iteration
        ``t``) such as :class:`skdistill.samplers.PolynomialDecay` gives a schedule.
    batch_size : int, default=100
        Minibatch size ``M``.
    n_iter : int, default=20000
        SGLD iterations per call to ``fit`` (the paper runs 10^6).
    burn_in : int, default=1000
        Iterations before the first posterior sample (counted over the whole chain).
    thinning : int, default=100
        Keep every ``thinning``-th state after burn-in (until ``max_samples`` is reached).
    max_samples : int or None, default=None
        Most samples kept. When the chain has more, every other sample is dropped and the
        thinning doubled (``sample_thinning_``), so the samples stay spread evenly over the
        whole chain after burn-in: between ``max_samples / 2`` and ``max_samples`` are kept.
        They are stored as one float32 tensor: ``4 * n_parameters`` bytes a sample.
        ``None`` fits them in :data:`SAMPLE_BUDGET_BYTES` (256 MB):
        ``max(1, 256e6 // (4 * n_parameters))`` samples (784-400-400-10: 478,410 parameters,
        1.9 MB a sample, 133 samples; a network of 10,000 parameters: 6,400).
    device : str, default="cpu"
        Torch device of the chain (e.g. ``"cuda"``); samples are stored on it. Dense ``X``
        (with ``y`` and the weights) goes there once when it fits in
        :data:`skdistill.engine.data.DEVICE_DATA_BYTES` (2 GiB), else, like sparse ``X``, one
        minibatch at a time.
    warm_start : bool, default=False
        If True, a new ``fit`` on the same classes continues the chain from its last state
        (``n_iter`` more iterations, samples appended) instead of restarting it.
    verbose : int, default=0
        Show a progress bar when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatches and the Langevin noise.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    module_ : torch.nn.Module
        The network, holding the chain's current (last) state.
    samples_ : torch.Tensor of shape (n_samples, n_parameters)
        Kept posterior samples, float32, oldest first (``parameters_to_vector`` order): the
        states at iterations ``burn_in + k * sample_thinning_``, ``k = 1, 2, ...``.
    sample_thinning_ : int
        Iterations between kept samples: ``thinning`` doubled once each time the chain
        outgrew ``max_samples_``.
    max_samples_ : int
        Cap on the number of kept samples: ``max_samples``, or the one its ``None`` resolved to.
    n_iter_ : int
        Iterations run on the chain so far (all ``fit`` calls with ``warm_start``).
    step_size_ : float or callable
        The step of the last ``fit``: ``step_size``, or the ``0.25 / N`` that ``"auto"``
        resolved to.
    step_sizes_ : list of float
        Step size of the last iteration of each ``fit`` call.

    Notes
    -----
    Sample retention: the kept samples are always every ``sample_thinning_``-th state after
    burn-in, from the first to the latest. When ``max_samples_`` is full, every other one is
    dropped and ``sample_thinning_`` doubles, so a long chain is summarised by samples from
    all of it rather than from its end only (a slowly mixing chain's latest states are
    strongly correlated). A chain continued with ``warm_start=True`` keeps this grid (its
    ``burn_in`` and ``thinning`` cannot change once it holds samples; a smaller
    ``max_samples`` thins the old samples the same way).

    Ctrl-C during ``fit`` stops the chain with a warning and keeps the samples drawn so far;
    ``warm_start=True`` then continues it.

    Divergence (a step size too large for the data) stops with a ``ValueError`` naming the
    iteration: a NaN or infinite minibatch log-likelihood, or a mean minibatch negative
    log-likelihood above ten times chance (``10 log(n_classes)``) over a window of 100
    iterations, or over the last 10 to 99 iterations of a ``fit`` (the chain's first 100
    iterations, started from the initialisation, are not judged). This catches a chain
    wandering at huge parameters with chance accuracy by iteration 200, or at the end of a
    shorter chain; the teacher is then left unfitted. The message suggests
    ``step_size = 0.25 / N`` for ``N`` training rows (the paper's 4e-6 at N = 60,000, and
    what ``"auto"`` takes), which suits inputs scaled to about unit range; where the step is
    already that small, it suggests scaling ``X``. On a GPU the minibatch log-likelihoods are
    read every 32 iterations in one transfer, and before a state is kept or handed to a
    consumer: a divergence is then reported within 32 iterations, with the same message, and
    no diverged state is kept.

    References
    ----------
    Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for Deep
    Neural Networks. UAI 2020.

    Welling, Teh. Bayesian Learning via Stochastic Gradient Langevin Dynamics. ICML 2011.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdistill import SGLDTeacher
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> teacher = SGLDTeacher(hidden_layer_sizes=(16,), step_size=1e-3, prior_precision=1.0,
    ...                       n_iter=800, burn_in=300, thinning=25, random_state=0).fit(X, y)
    >>> teacher.samples_.shape
    torch.Size([20, 130])
    >>> teacher.sample_proba(X[:3]).shape
    (20, 3, 2)
    >>> teacher.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "module": [nn.Module, None],
        "prior_precision": [Interval(numbers.Real, 0, None, closed="left")],
        "step_size": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither"),
                      callable],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "burn_in": [Interval(numbers.Integral, 0, None, closed="left")],
        "thinning": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "device": [str, torch.device],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(self, hidden_layer_sizes=(400, 400), module=None, prior_precision=10.0,
                 step_size="auto", batch_size=100, n_iter=20000, burn_in=1000, thinning=100,
                 max_samples=None, device="cpu", warm_start=False, verbose=0,
                 random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module = module
        self.prior_precision = prior_precision
        self.step_size = step_size
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.thinning = thinning
        self.max_samples = max_samples
        self.device = device
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state

    # -- the chain a distiller runs online (skdistill.base.PosteriorChain) ---------------------
    def chain_length(self):
        """The chain's ``n_iter`` and ``burn_in``: its length, as GPEDDistiller reads it.

        Returns
        -------
        n_iter : int
            SGLD iterations of one ``fit`` or ``iter_samples`` call.
        burn_in : int
            Iterations before the first sample.
        """
        return self.n_iter, self.burn_in

    def set_chain_length(self, n_iter=None, burn_in=None):
        """Set ``n_iter`` and ``burn_in`` where given (GPEDDistiller's own); return ``self``.

        Parameters
        ----------
        n_iter : int, default=None
            SGLD iterations; None leaves ``n_iter``.
        burn_in : int, default=None
            Iterations before the first sample; None leaves ``burn_in``.

        Returns
        -------
        self : SGLDTeacher
            The teacher.
        """
        return self.set_params(**{name: value for name, value in (("n_iter", n_iter),
                                                                  ("burn_in", burn_in))
                                  if value is not None})

    # -- fitting ------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Run ``n_iter`` SGLD iterations on ``X, y`` and keep the thinned posterior samples.

        Parameters
        ----------
        X : array-like or sparse matrix
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' log-likelihood terms (``N/M sum_i w_i log p(y_i|x_i)``);
            ``None`` is all ones, a row of weight 0 has no influence on the chain.

        Returns
        -------
        self
        """
        for _ in self._chain(X, y, sample_weight, keep=True):
            pass
        return self

    def _continues_fit(self):
        return self.warm_start and hasattr(self, "module_")

    def _salvage(self):
        """Ctrl-C policy: the samples stored so far are a usable (shorter) chain."""
        if not len(getattr(self, "samples_", ())):
            return None
        return (f"the {len(self.samples_)} posterior samples drawn before it was interrupted at "
                f"iteration {self.n_iter_} (warm_start=True continues the chain)")

    def iter_samples(self, X, y, sample_weight=None, *, every=None, keep=False):
        """Run the chain like ``fit`` but yield each thinned sample (the teacher protocol).

        Each item is a :class:`PosteriorSample`: a callable mapping a float32 tensor batch to
        class probabilities under the chain's current state. It is only valid until the next
        item is requested (its ``module`` is ``module_``, which the chain moves on). This is the
        online use GPED needs: memory stays that of one network whatever the number of samples.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.
        every : int, default=None
            Yield every ``every`` iterations after burn-in; ``None`` is ``thinning``.
        keep : bool, default=False
            Also store the states at multiples of ``thinning`` in ``samples_``, as ``fit``
            does, so that the teacher predicts afterwards (GPED keeps them as its reference).

        Yields
        ------
        sample : PosteriorSample
        """
        sample = None
        for module in self._chain(X, y, sample_weight, keep=keep, every=every):
            sample = sample or PosteriorSample(module)
            yield sample

    def _chain(self, X, y, sample_weight=None, keep=True, every=None):
        """Run the chain, yielding ``module_`` every ``every`` iterations after burn-in.

        ``every`` defaults to ``thinning``; with ``keep`` the states at multiples of
        ``thinning`` are stored, whatever ``every`` is (GPED distils more often than it keeps).
        """
        X, y_enc = self._check_fit_data(X, y)
        weight = check_sample_weight(self, sample_weight, X.shape[0])
        warm = self.warm_start and hasattr(self, "module_")
        # A continued chain must not replay the noise of its first run.
        seed = (draw_seed(self.random_state) + (self.n_iter_ if warm else 0)) % 2**31
        device = torch.device(self.device)
        # the chain's seed and thread share hold only while it runs, not while a consumer
        # (GPED's student, a user's loop) holds a sample or drops the chain half way
        yield from seeded_steps(
            self._run(X, y_enc, weight, warm, keep, self.thinning if every is None else every,
                      device), seed, device, self, limit_threads)

    def _resolve_sample_grid(self, warm):
        """Set ``max_samples_`` and, for a new chain, its sampling grid (burn_in, thinning)."""
        n_params = self._n_params()
        self.max_samples_ = (max(1, SAMPLE_BUDGET_BYTES // (4 * n_params))
                             if self.max_samples is None else self.max_samples)
        if warm and len(self.samples_):
            if (self.burn_in, self.thinning) != self._sample_grid:
                burn_in, thinning = self._sample_grid
                raise ValueError(
                    f"{type(self).__name__}: warm_start=True continues the chain on the "
                    f"sampling grid of its first fit; got burn_in={self.burn_in}, "
                    f"thinning={self.thinning}, expected burn_in={burn_in}, "
                    f"thinning={thinning} (or warm_start=False for a new chain).")
            return
        self._sample_grid = (self.burn_in, self.thinning)
        self.sample_thinning_ = self.thinning

    def _run(self, X, y_enc, weight, warm, keep, every, device):
        """The chain itself (run by :meth:`_chain` under its seed), from a new network or,
        ``warm``, from ``module_``."""
        if not warm:
            self.module_ = self._build_module().to(device)
            self.n_iter_ = 0
            self.samples_ = torch.empty(0, self._n_params(), device=device)
            self.step_sizes_ = []
        self._resolve_sample_grid(warm)
        # the one data layer: dense rows on the chain's device once when they fit, else
        # batch by batch; minibatches from the one sampler, drawn where the rows are
        data = RowDataset(X, {"y": np.asarray(y_enc, dtype=np.int64), "weight": weight},
                          keep=("y",)).placed(device)
        Xs, ys, ws = data, data.fields["y"], data.fields.get("weight")
        moved = data.device != as_device(device)
        module, params = self.module_, [p for p in self.module_.parameters() if p.requires_grad]
        module.train()
        n, batch = len(data), min(self.batch_size, len(data))
        batches = Minibatches(n, batch, drop_last=True, device=data.device).stream()
        scale = n / batch
        self.step_size_ = _SAFE_STEP_TIMES_N / n if self.step_size == "auto" else self.step_size
        schedule = as_schedule(self.step_size_)
        chance = math.log(len(self.classes_))
        start = self.n_iter_
        kept, buffer = self._sample_buffer(start, keep)
        thinning = self.sample_thinning_
        step, window, w, last_nll = None, 0.0, 0, None
        # the minibatch losses, read at every iteration on the CPU, else every `every_read`
        # iterations in one transfer and before a sample leaves the chain (read_every)
        every_read, pending = read_every(device), []

        def judge(t, step, total, mass):
            """The divergence checks of iteration ``t`` on its summed NLL over ``mass``."""
            nonlocal window, w, last_nll
            if not mass > 0:
                return  # no row counts in this minibatch
            nll = last_nll = total / mass
            if not math.isfinite(nll):
                raise self._divergence_error(
                    t, step, n, f"minibatch negative log-likelihood is {nll}")
            if t >= _WINDOW:  # the chain's first iterations start from the initialisation
                window, w = window + nll, w + 1
                if w == _WINDOW:
                    self._judge_window(window, w, t, step, n, chance)
                    window, w = 0.0, 0

        def read():
            """Judge the iterations whose losses are still on the device."""
            if not pending:
                return
            totals = torch.stack([total for _, _, total, _ in pending]).tolist()
            masses = [mass for _, _, _, mass in pending]
            if ws is not None:
                masses = torch.stack(masses).tolist()
            done = [(t, step) for t, step, _, _ in pending]
            pending.clear()
            for (t, step), total, mass in zip(done, totals, masses):
                judge(t, step, total, mass)

        bar = self._progress_bar()
        try:
            for t in range(start, start + self.n_iter):
                idx = next(batches)
                xb, yb = Xs.dense(idx), ys[idx]
                if moved:
                    xb, yb = xb.to(device), yb.to(device)
                step = self._step_at(schedule, t)
                for p in params:
                    p.grad = None
                nll_rows = F.cross_entropy(module(xb), yb, reduction="none")
                if ws is None:
                    loss, mass = nll_rows.sum(), batch
                else:
                    # a zero-weight row takes no part: neither in the gradient nor in the
                    # divergence check (the chain may rightly give it a huge NLL)
                    w_batch = ws[idx].to(device) if moved else ws[idx]
                    loss, mass = weighted_rows(nll_rows, w_batch).sum(), w_batch.sum()
                loss.backward()
                if every_read == 1:
                    judge(t, step, loss.item(), mass if ws is None else mass.item())
                else:
                    pending.append((t, step, loss.detach(), mass))
                    zero_grad_if_not_finite_(params, loss)  # no non-finite step meanwhile
                    if len(pending) == every_read:
                        read()
                sgld_step_(params, step, self.prior_precision, scale)
                self.n_iter_ = t + 1
                if bar is not None and (t + 1 - start) % 100 == 0:
                    read()
                    bar.update(100)
                    if last_nll is not None:
                        bar.set_postfix(nll=f"{last_nll:.4f}", refresh=False)
                if t + 1 > self.burn_in:
                    k = t + 1 - self.burn_in
                    if keep and k % thinning == 0:
                        if kept == len(buffer):
                            kept, thinning = _keep_every_other(buffer, kept), 2 * thinning
                        if k % thinning == 0:
                            read()  # no state of a diverged chain is kept
                            torch.cat([p.detach().reshape(-1) for p in params],
                                      out=buffer[kept])
                            kept += 1
                    if k % every == 0:
                        read()  # nor given out
                        yield module
            read()
            if w >= _MIN_TAIL:
                # the iterations after the last full window, so that a short chain or the end
                # of one is judged too
                self._judge_window(window, w, t, step, n, chance)
        finally:
            # Also on Ctrl-C or when a consumer (GPED) closes the chain: what was drawn is kept.
            if bar is not None:
                bar.close()
            if step is not None:
                self.step_sizes_.append(step)
            if keep:
                self.sample_thinning_ = thinning
                # a compact copy where the buffer has room left, so that no unused rows
                # are held (or pickled) with the samples
                self.samples_ = buffer if kept == len(buffer) else buffer[:kept].clone()
            module.eval()

    def _step_at(self, schedule, t):
        step = schedule(t)
        if not (is_number(step) and np.isfinite(step) and step > 0):
            raise param_error(self, "step_size", self.step_size,
                              f"a positive finite step at every iteration; iteration {t} "
                              f"gave {step!r}")
        return float(step)

    def _judge_window(self, total, w, t, step, n, chance):
        """Raise if the mean minibatch NLL of the ``w`` iterations up to ``t`` is far above
        chance."""
        if total / w > _DIVERGED * chance:
            raise self._divergence_error(
                t, step, n, f"mean minibatch negative log-likelihood {total / w:.3g} over the "
                f"last {w} iterations, more than {_DIVERGED:g} x chance "
                f"log({len(self.classes_)}) = {chance:.3g}")

    def _divergence_error(self, t, step, n, what):
        """The error of a diverged chain, with a step size that suits ``n`` training rows."""
        safe = _SAFE_STEP_TIMES_N / n
        if step > safe:
            hint = (f"try a smaller step_size={safe:.3g} (0.25 / N for N = {n} training rows, "
                    "as the paper's 4e-6 at N = 60,000; for X scaled to about unit range, "
                    "e.g. by StandardScaler or pixels / 255)")
        else:
            hint = (f"it is already at most 0.25 / N = {safe:.3g} for N = {n} training rows: "
                    "scale X to about unit range (StandardScaler, pixels / 255) or try a "
                    f"smaller step_size={step / 10:.2g}")
        return ValueError(f"{type(self).__name__}: the chain diverged at iteration {t} "
                          f"({what}); step_size={step:.3g} is too large for this data, {hint}.")

    def _sample_buffer(self, start, keep):
        """Buffer holding the previous samples then room for this run's, up to max_samples_.

        Returns the number of rows in use and the buffer; previous samples beyond a lowered
        cap are thinned first (every other one dropped, ``sample_thinning_`` doubled).
        """
        old = self.samples_
        if not keep:
            return 0, old
        while len(old) > self.max_samples_:
            old, self.sample_thinning_ = old[1::2], 2 * self.sample_thinning_
        on_grid = max(0, (start + self.n_iter - self.burn_in) // self.sample_thinning_)
        buffer = old.new_empty((min(self.max_samples_, on_grid), old.shape[1]))
        buffer[:len(old)] = old
        return len(old), buffer

    def _progress_bar(self):
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.n_iter, desc=type(self).__name__, unit="it")

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)

    def _check_fit_data(self, X, y):
        self._validate_params()
        X, y = check_input(self, X, y, allow_nd=True, dtype=("float32", "float64"),
                           accept_sparse="csr",
                           reset=not (self.warm_start and hasattr(self, "module_")))
        classes, y_enc = encode_labels(self, y)
        if self.warm_start and hasattr(self, "module_") and not np.array_equal(classes,
                                                                                 self.classes_):
            raise ValueError(f"{type(self).__name__}: warm_start=True needs the classes of the "
                             f"first fit {self.classes_.tolist()}, got {classes.tolist()}.")
        self.classes_ = classes
        self._input_shape = X.shape[1:]
        return X, y_enc

    def _build_module(self):
        n_classes = len(self.classes_)
        if self.module is None:
            return MLP(self.n_features_in_, n_classes,
                       check_layer_sizes(self, self.hidden_layer_sizes))
        module = copy.deepcopy(self.module)
        for layer in module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        probe = torch.zeros((1,) + tuple(self._input_shape), dtype=torch.float32)
        try:
            with torch.no_grad():
                out = module.eval()(probe)
        except Exception as exc:
            raise param_error(self, "module", type(self.module).__name__,
                              f"a torch module accepting X rows of shape {self._input_shape} "
                              f"(it raised {type(exc).__name__}: {exc})", TypeError) from None
        if out.shape != (1, n_classes):
            raise param_error(self, "module", type(self.module).__name__,
                              f"a module returning logits of shape (n, {n_classes}) for the "
                              f"{n_classes} classes of y; it returned {tuple(out.shape)}")
        return module

    def _n_params(self):
        return sum(p.numel() for p in self.module_.parameters() if p.requires_grad)

    # -- prediction ---------------------------------------------------------------------------
    def _check_predict_X(self, X):
        check_is_fitted(self, "samples_")
        if len(self.samples_) == 0:
            raise ValueError(f"{type(self).__name__}: the chain kept no posterior sample; "
                             f"raise n_iter (now {self.n_iter}) above burn_in ({self.burn_in}) "
                             f"+ thinning ({self.thinning}).")
        X = check_input(self, X, reset=False, allow_nd=True, dtype=("float32", "float64"),
                        accept_sparse="csr")
        return RowDataset(X)

    def _iter_sample_proba(self, Xt, batch_size=4096):
        """Yield ``(n, C)`` float64 CPU probability tensors, one per kept sample.

        The samples are loaded into a copy of the network made per call, never into
        ``module_``: a prediction running at the same time in another thread uses
        ``module_``. No grad mode is held open at a ``yield``, where a consumer that stops half
        way would leave it.
        """
        module = copy.deepcopy(self.module_).eval()
        params = [p for p in module.parameters() if p.requires_grad]
        device = params[0].device
        for theta in self.samples_:
            with torch.no_grad():
                vector_to_parameters(theta, params)
                proba = torch.cat([
                    # in float64: float32 rows sum to one only within ~1e-7, which
                    # scikit-learn's log_loss reports as "y_prob values do not sum to one"
                    torch.softmax(module(Xt.dense(slice(i, i + batch_size)).to(device)).double(),
                                  1).cpu()
                    for i in range(0, len(Xt), batch_size)
                ]) if len(Xt) else torch.empty(0, len(self.classes_), dtype=torch.float64)
            yield proba

    def sample_proba(self, X):
        """Class probabilities under each kept posterior sample.

        Returns
        -------
        proba : ndarray of shape (n_samples_kept, n, n_classes)
        """
        Xt = self._check_predict_X(X)
        return torch.stack(list(self._iter_sample_proba(Xt))).numpy()

    def _sample_blocks(self, X):
        # one block of all rows: a kept sample is loaded into the network once per call
        yield self._iter_sample_proba(self._check_predict_X(X))


def _keep_every_other(buffer, count):
    """Keep the 2nd, 4th, ... of the first ``count`` rows of ``buffer``, moved to its front.

    The rows stay evenly spaced at twice the spacing. Returns the new number of rows.
    """
    half = count // 2
    # Block by block through a small temporary: row i takes row 2i + 1, which no earlier
    # block overwrote, and the copy never needs a second buffer's memory.
    block = max(1, half // 8)
    for i in range(0, half, block):
        j = min(i + block, half)
        buffer[i:j] = buffer[2 * i + 1:2 * j:2].clone()
    return half
