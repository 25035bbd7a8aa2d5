"""GPEDDistiller: online distillation of Bayesian posterior expectations (Vadera et al., Algorithm 1)."""
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .._interrupt import fit_policy, warn_user
from .._validation import check_float32_range, param_error
from ..engine import divergence_error, non_finite_problem
from ..expectations import ESTIMATORS, EXPECTATIONS, output_size
from ..losses import soft_cross_entropy
from ..students._base import draw_seed, seeded
from ._base import BaseDistiller

#: ``thinning=None``: the paper's one student step every 10 SGLD iterations (its entropy
#: runs), lowered on a chain too short to give the student this many steps.
DEFAULT_THINNING, TARGET_STUDENT_STEPS = 10, 2000
#: Fewer student steps than this warn: the student would lag far behind the teacher.
MIN_STUDENT_STEPS = 500


class _Head(nn.Module):
    """A linear head with an output map: identity (logits), softplus (> 0) or 0.25 * sigmoid."""

    def __init__(self, n_in, n_out, output="identity"):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.output = output

    def forward(self, h):
        z = self.linear(h)
        if self.output == "softplus":
            return F.softplus(z)
        if self.output == "quarter_sigmoid":  # p (1 - p) lies in [0, 1/4]
            return 0.25 * torch.sigmoid(z)
        return z


class MultiHeadNet(nn.Module):
    """One shared trunk with one head per posterior expectation; returns a dict of outputs."""

    def __init__(self, trunk, heads):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def forward(self, x):
        h = self.trunk(x)
        return {name: head(h) for name, head in self.heads.items()}


class GPEDDistiller(BaseDistiller):
    """Distil posterior expectations of an SGLD teacher into a student network, online.

    Algorithm 1 of Vadera et al.: the teacher's SGLD chain runs; at every ``thinning``-th
    iteration after ``burn_in`` a minibatch of the distillation set ``D'`` (``X_unlabeled``,
    else ``X``) is drawn, each example's estimate of ``E[g(p(y|x, theta))]`` is updated with the
    current posterior sample, and the student takes one optimiser step towards the estimates.
    No posterior sample needs to be stored.

    Estimators: ``"stochastic"`` (U_s) uses the current sample's value alone and keeps no
    per-example state; ``"online"`` (U_o) keeps the running mean over the samples each example
    has seen: float32 ``N' x outputs`` plus an int32 count per example.

    Parameters
    ----------
    teacher : SGLDTeacher, default=None
        Its SGLD settings (step size, prior, batch size, network) drive the chain.
        ``None`` means ``SGLDTeacher()``.
    student : MLPStudent or CNNStudent, default=None
        A student whose network has a trunk and a head (``features``, ``head``,
        ``n_hidden_out``); others (e.g. ``LatentBEStudent``) raise a ``TypeError``.
        The architecture (trunk) and optimiser settings (``optimizer``, ``lr``,
        ``weight_decay``, ``device``) of the student; its ``max_epochs`` and ``batch_size``
        are not used (one step per posterior sample, ``distill_batch_size`` rows).
        ``None`` means ``MLPStudent()``.
    target : {"predictive", "entropy", "variance"}, callable or list of these, \
default="predictive"
        Posterior expectations to distil, one head each on a shared trunk, trained together:
        ``"predictive"`` (softmax head, soft-target cross-entropy), ``"entropy"`` (expected
        entropy, softplus scalar head, L1 loss), ``"variance"`` (``p (1 - p)`` per class,
        ``sigmoid / 4`` head, L1 loss), or a callable ``g`` mapping a ``(n, C)`` probability
        tensor to ``(n,)`` or ``(n, k)`` (linear head, L1 loss). A callable's head is named
        after its ``__name__``, with a suffix ``_1``, ``_2``, ... where that name repeats or is
        a built-in target's (two lambdas: ``"<lambda>"``, ``"<lambda>_1"``; a function named
        ``entropy``: ``"entropy_1"``). A predictive head is always trained so that the student
        is a classifier.
    estimator : {"online", "stochastic"}, default="online"
        U_o or U_s.
    n_iter, burn_in : int, default=None
        SGLD iterations and burn-in; ``None`` takes the teacher's.
    thinning : int, default=None
        One student step every ``thinning`` SGLD iterations after burn-in: the student takes
        ``(n_iter - burn_in) // thinning`` steps. ``None`` is the paper's 10, lowered (down to
        1) where the chain is too short for 2,000 student steps:
        ``max(1, min(10, (n_iter - burn_in) // 2000))`` (the teacher's default chain,
        20,000 iterations after 1,000 of burn-in, gives 9 and 2,111 steps). A budget with no
        student step raises a ``ValueError`` before the chain runs; one under 500 steps
        warns. The teacher's own ``thinning`` and ``max_samples`` still decide which samples
        it keeps for its ``predict_proba`` (the reference the student is compared to).
    distill_batch_size : int, default=100
        Rows of ``D'`` per student step.
    input_noise : float, default=0.0
        Standard deviation of Gaussian noise added to the distillation minibatch (teacher and
        student see the same perturbed inputs); U_o then averages over the noise draws too.
    verbose : int, default=0
        Progress bar of the chain when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the teacher (if it has no seed of its own), the student's initialisation and
        the distillation minibatches.

    Attributes
    ----------
    teacher_ : SGLDTeacher
        The teacher after the chain; it keeps up to ``max_samples`` samples spread over the
        chain (every ``teacher.thinning``-th state, thinned further when the chain outgrows
        ``max_samples``), so its own ``predict_proba`` is the posterior predictive.
    student_ : student estimator
        A fitted student whose ``module_`` is the trunk with the predictive head.
    module_ : MultiHeadNet
        The student network with all heads (shares parameters with ``student_.module_``).
    targets_ : list of str
        Head names, ``"predictive"`` first (a callable's head is named after the callable,
        made unique as described under ``target``).
    thinning_ : int
        SGLD iterations per student step: ``thinning``, or the value ``None`` resolved to.
    n_student_steps_ : int
    estimator_nbytes_ : int
        Memory held by the estimators' per-example state (0 for U_s).
    loss_curve_ : list of float
        Student loss at each step.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for Deep
    Neural Networks. UAI 2020.

    Balan, Rathod, Murphy, Welling. Bayesian Dark Knowledge. NeurIPS 2015.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdistill import GPEDDistiller, MLPStudent, SGLDTeacher
    >>> X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    >>> model = GPEDDistiller(
    ...     SGLDTeacher(hidden_layer_sizes=(16,), step_size=1e-3, prior_precision=1.0),
    ...     MLPStudent(hidden_layer_sizes=(16,), lr=1e-2),
    ...     target=["predictive", "entropy"], n_iter=1200, burn_in=200, thinning=2,
    ...     random_state=0).fit(X, y)
    >>> model.score(X, y) > 0.8
    True
    >>> u = model.predict_uncertainty(X[:4])
    >>> sorted(u), u.total.shape
    (['aleatoric', 'epistemic', 'total'], (4,))
    """

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "teacher": [HasMethods(["fit", "predict_proba", "iter_samples"]), None],
        "target": [StrOptions(set(EXPECTATIONS)), callable, list, tuple],
        "estimator": [StrOptions(set(ESTIMATORS))],
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "burn_in": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "thinning": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "distill_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "input_noise": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(self, teacher=None, student=None, target="predictive", estimator="online",
                 n_iter=None, burn_in=None, thinning=None, distill_batch_size=100,
                 input_noise=0.0, verbose=0, random_state=None):
        self.teacher = teacher
        self.student = student
        self.target = target
        self.estimator = estimator
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.thinning = thinning
        self.distill_batch_size = distill_batch_size
        self.input_noise = input_noise
        self.verbose = verbose
        self.random_state = random_state

    def _default_teacher(self):
        from ..teachers import SGLDTeacher

        return SGLDTeacher()

    # -- targets --------------------------------------------------------------------------------
    def _targets(self):
        """``{head name: g}``, predictive first; validates the ``target`` parameter."""
        items = list(self.target) if isinstance(self.target, (list, tuple)) else [self.target]
        if not items:
            raise param_error(self, "target", self.target, "a non-empty list of targets")
        targets = {"predictive": EXPECTATIONS["predictive"]}
        for item in items:
            if isinstance(item, str) and item in EXPECTATIONS:
                targets[item] = EXPECTATIONS[item]
            elif callable(item):
                if any(g is item for g in targets.values()):
                    continue  # the same callable twice: one head
                # unique head name, never a built-in one (ModuleDict keys can't contain ".")
                base = str(getattr(item, "__name__", "") or "target").replace(".", "_")
                name, i = base, 0
                while name in targets or name in EXPECTATIONS:
                    i += 1
                    name = f"{base}_{i}"
                targets[name] = item
            else:
                raise param_error(self, "target", item,
                                  f"one of {sorted(EXPECTATIONS)}, a callable, or a list of "
                                  "these")
        return targets

    def _head(self, name, g, n_in, n_classes):
        if name == "predictive":
            return _Head(n_in, n_classes)
        if name == "entropy":
            return _Head(n_in, 1, "softplus")
        if name == "variance":
            return _Head(n_in, n_classes, "quarter_sigmoid")
        try:
            k = output_size(g, n_classes)
        except Exception as exc:
            raise param_error(self, "target", g, "a callable mapping a (n, C) torch tensor of "
                              f"probabilities to (n,) or (n, k); it raised {exc!r}",
                              TypeError) from None
        return _Head(n_in, k)

    @staticmethod
    def _target_loss(name, out, target):
        if name == "predictive":
            return soft_cross_entropy(out, target)
        return F.l1_loss(out, target.reshape(out.shape), reduction="sum") / len(out)

    # -- fitting --------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, X_unlabeled=None):
        """Run the teacher's SGLD chain and train the student online on its expectations.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training inputs of the teacher.
        y : array-like of shape (n_samples,)
        X_unlabeled : array-like of shape (n_unlabeled, ...), default=None
            The distillation set ``D'``; ``None`` distils on ``X``.

        Returns
        -------
        self
        """
        X, y, _ = self._check_fit_data(X, y)
        targets = self._targets()
        student = self._student()
        teacher = self._teacher()
        Xd = X if X_unlabeled is None else self._check_unlabeled(X_unlabeled)
        self._fit(X, y, Xd, X_unlabeled, targets, student, teacher)
        return self

    def _fit(self, X, y, Xd, X_unlabeled, targets, student, teacher):
        self.teacher_ = self._seeded_clone(teacher)
        self.teacher_.set_params(**{k: v for k, v in (("n_iter", self.n_iter),
                                                      ("burn_in", self.burn_in))
                                    if v is not None})
        if self.verbose:
            self.teacher_.set_params(verbose=self.verbose)
        self.student_ = self._seeded_clone(student, offset=1)
        Xs, _ = self.student_._check_X_y(X, y)
        if X_unlabeled is not None:
            Xs = self.student_._check_X(Xd, reset=False)
        seed = draw_seed(self.random_state)
        n_classes = len(self.classes_)
        device = torch.device(self.student_.device)
        with seeded(seed, device):
            base = self.student_._build_module(n_classes)
            if not all(hasattr(base, a) for a in ("features", "head", "n_hidden_out")):
                raise param_error(self, "student", student, "an MLPStudent or CNNStudent (a "
                                  "network with a trunk and a head)", TypeError)
            heads = {name: self._head(name, g, base.n_hidden_out, n_classes)
                     for name, g in targets.items()}
            self.module_ = MultiHeadNet(base.features, heads).to(device)
        self._check_student_budget()
        self.targets_ = list(targets)
        self._target_fns = targets
        estimators = {name: ESTIMATORS[self.estimator](len(Xd), output_size(g, n_classes))
                      for name, g in targets.items()}
        self.estimator_nbytes_ = sum(u.nbytes for u in estimators.values())
        self._distil(X, y, Xd, Xs, targets, estimators, seed, device)
        self._install_student()

    def _install_student(self):
        """The fitted student predicts with the trunk and the predictive head."""
        self.module_.eval()
        self.student_._set_trained(nn.Sequential(self.module_.trunk,
                                                 self.module_.heads["predictive"]), None, None)

    def _salvage(self):
        """Ctrl-C policy: after at least one student step, the student so far is usable."""
        if not getattr(self, "n_student_steps_", 0):
            return None
        self._install_student()
        kept = len(getattr(self.teacher_, "samples_", ()))
        teacher = (f"the teacher's {kept} samples of its first {self.teacher_.n_iter_} "
                   "iterations" if kept else "a teacher with no posterior sample yet (its own "
                   "predict_proba is unavailable)")
        return f"the student after {self.n_student_steps_} steps, and {teacher}"

    def _check_student_budget(self):
        """Resolve ``thinning_``; refuse a chain with no student step, warn under 500 steps."""
        n_iter, burn_in = self.teacher_.n_iter, self.teacher_.burn_in
        if self.thinning is None:
            self.thinning_ = max(1, min(DEFAULT_THINNING,
                                        (n_iter - burn_in) // TARGET_STUDENT_STEPS))
        else:
            self.thinning_ = self.thinning
        steps = max(0, (n_iter - burn_in) // self.thinning_)
        # values left to the teacher were never set here: say where they came from
        n_iter_from = "" if self.n_iter is not None else " (the teacher's)"
        burn_in_from = "" if self.burn_in is not None else " (the teacher's)"
        thinning_from = "" if self.thinning is not None else " (thinning=None)"
        budget = (f"n_iter={n_iter}{n_iter_from}, burn_in={burn_in}{burn_in_from}, "
                  f"thinning={self.thinning_}{thinning_from}")
        if steps == 0:
            raise param_error(
                self, "n_iter", n_iter,
                f"at least burn_in + thinning = {burn_in + self.thinning_} so that the student "
                f"takes a step; {budget} give (n_iter - burn_in) // thinning = 0 student steps")
        if steps < MIN_STUDENT_STEPS:
            fix = "raise n_iter" + (" or lower thinning" if self.thinning_ > 1 else "")
            warn_user(f"{type(self).__name__}: {budget} give the student only {steps} steps "
                      f"((n_iter - burn_in) // thinning); at least {MIN_STUDENT_STEPS} are "
                      f"advised: {fix}.")

    def _check_unlabeled(self, X_unlabeled):
        try:
            X_unlabeled = validate_data(self, X_unlabeled, reset=False, allow_nd=True)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{type(self).__name__}: parameter X_unlabeled is invalid: "
                            f"{exc}") from None
        return check_float32_range(self, X_unlabeled, "X_unlabeled")

    def _distil(self, X, y, Xd, Xs, targets, estimators, seed, device):
        teacher_device = torch.device(self.teacher_.device)
        Xd_t = torch.as_tensor(np.require(Xd, requirements="W"), dtype=torch.float32)
        student_shape = Xs.shape[1:]
        optimizer = self.student_._make_optimizer(self.module_.parameters())
        n, batch = len(Xd_t), min(self.distill_batch_size, len(Xd_t))
        gen = torch.Generator().manual_seed(seed)
        order, pos = torch.randperm(n, generator=gen), 0
        self.loss_curve_ = []
        self.module_.train()
        chain = self.teacher_._chain(X, y, keep=True, every=self.thinning_)
        try:
            for teacher_module in chain:
                if pos + batch > n:
                    order, pos = torch.randperm(n, generator=gen), 0
                idx = order[pos:pos + batch]
                pos += batch
                xb = Xd_t[idx]
                if self.input_noise:
                    xb = xb + self.input_noise * torch.randn(xb.shape, generator=gen)
                with torch.no_grad():
                    proba = torch.softmax(teacher_module(xb.to(teacher_device)), 1).cpu()
                out = self.module_(xb.reshape(len(idx), *student_shape).to(device))
                loss = 0.0
                for name, g in targets.items():
                    values = torch.as_tensor(g(proba), dtype=torch.float32)
                    values = values.reshape(len(idx), -1)
                    estimate = estimators[name].update(idx, values)
                    loss = loss + self._target_loss(name, out[name], estimate.to(device))
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise divergence_error(self.student_, f"the student's loss became {value} "
                                           f"at step {len(self.loss_curve_) + 1}",
                                           self.student_.lr, float(Xd_t.abs().max()))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self.loss_curve_.append(value)
        finally:
            # Ctrl-C or an error: the chain stores the samples it drew (SGLDTeacher._run).
            chain.close()
            self.n_student_steps_ = len(self.loss_curve_)
        problem = non_finite_problem(self.module_, Xd_t[:batch].reshape(-1, *student_shape)
                                     .to(device))
        if problem is not None:
            raise divergence_error(self.student_, problem, self.student_.lr,
                                   float(Xd_t.abs().max()))

    # -- prediction -----------------------------------------------------------------------------
    def _outputs(self, X, batch_size=4096):
        """All heads' outputs for ``X`` in one forward pass per batch, as float64 tensors."""
        check_is_fitted(self, "module_")
        X = self._check_predict_X(X)
        Xs = self.student_._check_X(X, reset=False)
        Xt = torch.as_tensor(np.require(Xs, requirements="W"), dtype=torch.float32)
        device = next(self.module_.parameters()).device
        parts = {name: [] for name in self.targets_}
        with torch.inference_mode():
            for i in range(0, len(Xt), batch_size):
                for name, value in self.module_(Xt[i:i + batch_size].to(device)).items():
                    parts[name].append(value.cpu().double())
        return {name: (torch.cat(v) if v else torch.empty(0)) for name, v in parts.items()}

    def _head_name(self, target):
        """Head of ``target``: a head name, or a callable given to ``fit`` (by identity)."""
        if isinstance(target, str):
            name = target
        else:
            name = next((n for n, g in self._target_fns.items() if g is target), None)
        if name not in self.targets_:
            raise param_error(self, "target", target,
                              f"one of the distilled targets {self.targets_}")
        return name

    def predict_expectation(self, X, target="predictive"):
        """The student's estimate of a distilled posterior expectation.

        Parameters
        ----------
        X : array-like
        target : str or callable, default="predictive"
            A distilled target: a head name in ``targets_`` or a callable passed in
            ``target`` to ``fit`` (the same object, matched by identity; a callable's unique
            head name, e.g. ``"<lambda>_1"``, also works). ``"predictive"`` gives ``(n, C)``
            probabilities, ``"entropy"`` ``(n,)``, ``"variance"`` ``(n, C)``.

        Returns
        -------
        expectation : ndarray of shape (n,) or (n, k)
        """
        check_is_fitted(self, "module_")
        name = self._head_name(target)
        out = self._outputs(X)[name]
        if name == "predictive":
            return torch.softmax(out, 1).numpy()
        out = out.numpy()
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_uncertainty(self, X):
        """Total, aleatoric and epistemic uncertainty from one forward pass of the student.

        ``total`` is the entropy of the predictive head's distribution, ``aleatoric`` the
        entropy head's expected entropy and ``epistemic = total - aleatoric`` (the BALD
        mutual information). The expected entropy of a posterior never exceeds the entropy of
        its predictive, but the two heads are learnt separately: where the entropy head says
        more than ``total``, ``aleatoric`` is taken as ``total`` and ``epistemic`` is 0. So
        both parts are non-negative and ``total == aleatoric + epistemic`` holds exactly (in
        floating point; ``total`` may differ from the predictive head's entropy by one
        rounding). Needs ``"entropy"`` among the distilled targets.

        Returns
        -------
        uncertainty : Bunch
            ``total``, ``aleatoric``, ``epistemic``: arrays of shape (n,).
        """
        check_is_fitted(self, "module_")
        if "entropy" not in self.targets_:
            raise param_error(self, "target", self.target,
                              'a list including "entropy" to decompose the uncertainty')
        out = self._outputs(X)
        log_p = torch.log_softmax(out["predictive"], 1)
        entropy = -(log_p.exp() * log_p).sum(1).numpy()
        aleatoric = np.minimum(out["entropy"][:, 0].numpy(), entropy)
        epistemic = entropy - aleatoric
        # rebuilt from its parts, so that the identity has no rounding error
        return Bunch(total=aleatoric + epistemic, aleatoric=aleatoric, epistemic=epistemic)
