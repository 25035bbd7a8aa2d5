"""EnsembleDistiller: distil a deep ensemble into one student (KD, one-to-one LatentBE, AE-KD,
Proxy-EnD2), optionally on diversifying input perturbations."""
import copy
import numbers
import time

import numpy as np
import torch
import torch.nn.functional as F
from skorch.history import History
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .._interrupt import fit_policy
from .._validation import check_teacher_proba, param_error
from ..engine import divergence_error, non_finite_problem
from ..losses import ae_kd_weights, proxy_end2_loss, soft_cross_entropy, soften
from ..perturbations import PERTURBATIONS, default_size
from ..students._base import draw_seed, seeded
from ._base import BaseDistiller

METHODS = ("kd", "one-to-one", "ae-kd", "proxy-end2")
_GRADIENT_PERTURBATIONS = ("ods", "confods", "tdiv-sdiv")


class EnsembleDistiller(BaseDistiller):
    """Distil an ensemble teacher into a student network, optionally a LatentBE student.

    The teacher (by default a :class:`~skdistill.DeepEnsembleTeacher`) is fitted on ``X, y``;
    then the student is trained by a torch loop that, for every minibatch, optionally
    perturbs the inputs, evaluates every teacher member on them and minimises

    ``alpha * soft_loss + (1 - alpha) * CE(y, student)``

    where ``soft_loss`` depends on ``method``:

    - ``"kd"``: ``T^2 CE(softmax(log pbar / T), softmax(z / T))`` towards the ensemble mean
      ``pbar`` (every student member matches it);
    - ``"one-to-one"``: student member ``m`` matches teacher member ``m`` (LatentBE; needs a
      student with as many members as the teacher);
    - ``"ae-kd"``: a weighted sum of the per-teacher KD losses, the weights being the
      min-norm point of their gradients with respect to the student's logits, each at most
      ``ae_kd_bound`` (Du et al. 2020);
    - ``"proxy-end2"``: reverse KL from the student's Dirichlet ``exp(z)`` to the ensemble's
      proxy Dirichlet (Ryabinin et al. 2021); ``temperature`` is not used.

    ``perturbation`` moves each input by ``perturbation_size`` (L2) before the step:
    ``"gaussian"`` in a random direction, ``"ods"``/``"confods"`` along a random output
    direction of the teachers, ``"tdiv-sdiv"`` along the gradient of teacher diversity minus
    student diversity for a random member pair (Nam et al. 2022, eqs. 13-14). The student is
    trained on the perturbed batch in place of the clean one; inputs stay within
    ``[X.min(), X.max()]`` of the training data.

    Parameters
    ----------
    teacher : estimator with fit and sample_proba, default=None
        ``None`` means ``DeepEnsembleTeacher()``. Its members' torch networks
        (``modules_``) are needed for ``"ods"``, ``"confods"`` and ``"tdiv-sdiv"``; otherwise
        ``sample_proba`` is enough. A fitted teacher in
        :class:`sklearn.frozen.FrozenEstimator` is used as is.
    student : skdistill student, default=None
        ``None`` means ``LatentBEStudent()``. Its ``max_epochs``, ``batch_size``, ``lr``,
        ``optimizer``, ``weight_decay`` and ``device`` drive the training loop (its skorch
        ``callbacks`` and ``validation_fraction`` are not used here).
    method : {"kd", "one-to-one", "ae-kd", "proxy-end2"}, default="one-to-one"
    perturbation : {"gaussian", "ods", "confods", "tdiv-sdiv"} or None, default=None
    perturbation_size : float, default=None
        L2 norm of the input step; ``None`` is ``sqrt(D) / 255 * (X.max() - X.min())``, the
        paper's ``sqrt(D) / 255`` for ``[0, 1]`` images.
    temperature : float, default=4.0
    alpha : float, default=1.0
        Weight of the teacher term; ``1 - alpha`` goes to the labels.
    ae_kd_bound : float, default=1.0
        Upper bound ``C`` on each AE-KD teacher weight (at least ``1 / n_members``).
    random_state : int, RandomState instance or None, default=None
        Seeds a teacher or student whose own ``random_state`` is ``None``.

    Attributes
    ----------
    teacher_ : fitted teacher
    student_ : fitted student; for a LatentBE student, ``student_.merged_module_`` is the
        single network that predicts.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    perturbation_size_ : float or None
        The step size used.

    References
    ----------
    Nam, Lee, Heo, Lee. Improving Ensemble Distillation With Weight Averaging and
    Diversifying Perturbation. ICML 2022.
    Du, You, Li, Wu, Wang, Qian, Zhang. Agree to Disagree: Adaptive Ensemble Knowledge
    Distillation in Gradient Space. NeurIPS 2020.
    Ryabinin, Malinin, Gales. Scaling Ensemble Distribution Distillation to Many Classes with
    Proxy Targets. NeurIPS 2021.
    Tashiro, Song, Ermon. Diversity can be Transferred: Output Diversification for White- and
    Black-box Attacks. NeurIPS 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import (DeepEnsembleTeacher, EnsembleDistiller, LatentBEStudent,
    ...                        MLPStudent)
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = DeepEnsembleTeacher(MLPStudent(hidden_layer_sizes=(16,), max_epochs=50,
    ...                                          lr=1e-2), n_members=2)
    >>> student = LatentBEStudent(n_members=2, hidden_layer_sizes=(16,), max_epochs=50,
    ...                           lr=1e-2)
    >>> model = EnsembleDistiller(teacher, student, perturbation="tdiv-sdiv",
    ...                           random_state=0).fit(X, y)
    >>> model.predict_proba(X[:2]).shape, model.score(X, y) > 0.9
    ((2, 3), True)
    """

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "teacher": [HasMethods(["fit", "sample_proba"]), None],
        "method": [StrOptions(set(METHODS))],
        "perturbation": [StrOptions(set(PERTURBATIONS)), None],
        "perturbation_size": [Interval(numbers.Real, 0, None, closed="left"), None],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "ae_kd_bound": [Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(self, teacher=None, student=None, method="one-to-one", perturbation=None,
                 perturbation_size=None, temperature=4.0, alpha=1.0, ae_kd_bound=1.0,
                 random_state=None):
        self.teacher = teacher
        self.student = student
        self.method = method
        self.perturbation = perturbation
        self.perturbation_size = perturbation_size
        self.temperature = temperature
        self.alpha = alpha
        self.ae_kd_bound = ae_kd_bound
        self.random_state = random_state

    def _default_teacher(self):
        from ..teachers import DeepEnsembleTeacher

        return DeepEnsembleTeacher()

    def _default_student(self):
        from ..students import LatentBEStudent

        return LatentBEStudent()

    @fit_policy
    def fit(self, X, y):
        """Fit the teacher, then train the student on its members' predictions.

        Returns
        -------
        self
        """
        X, y, y_enc = self._check_fit_data(X, y)
        student = self._seeded_clone(self._student(), offset=1)
        self._fit(X, y, y_enc, student, self._fit_progress)
        return self

    def _salvage(self):
        return self._keep_student(**self._fit_progress)

    def _fit(self, X, y, y_enc, student, progress):
        self.teacher_ = self._fit_teacher(X, y)
        teacher_classes = getattr(self.teacher_, "classes_", self.classes_)
        if not np.array_equal(teacher_classes, self.classes_):
            raise param_error(self, "teacher", self.teacher_,
                              f"a teacher fitted on the classes of y {self.classes_.tolist()}")
        n_teachers = len(self._sample_proba(X[:1]))
        modules = list(getattr(self.teacher_, "modules_", []))
        if self.perturbation in _GRADIENT_PERTURBATIONS and len(modules) != n_teachers:
            raise param_error(self, "perturbation", self.perturbation,
                              "None or 'gaussian' for a teacher without torch member networks "
                              "(modules_), e.g. a DeepEnsembleTeacher of skdistill students")
        if self.perturbation == "tdiv-sdiv" and n_teachers < 2:
            raise param_error(self, "perturbation", self.perturbation,
                              "a teacher with at least 2 members for 'tdiv-sdiv'")
        if self.ae_kd_bound * n_teachers < 1:
            raise param_error(self, "ae_kd_bound", self.ae_kd_bound,
                              f"a bound >= 1/{n_teachers} (1 / number of teacher members)")

        Xs, _ = student._check_X_y(X, y)
        n_members = getattr(student, "n_members", 1)
        if self.method == "one-to-one" and n_members != n_teachers:
            raise param_error(self, "method", self.method,
                              f"'kd', 'ae-kd' or 'proxy-end2' for a student with {n_members} "
                              f"member(s); 'one-to-one' needs a student with n_members="
                              f"{n_teachers}, the teacher's member count")
        span = float(np.max(Xs) - np.min(Xs))
        self.perturbation_size_ = None
        if self.perturbation is not None:
            self.perturbation_size_ = (default_size(int(np.prod(Xs.shape[1:])), span)
                                       if self.perturbation_size is None
                                       else float(self.perturbation_size))
        seed = draw_seed(student.random_state)
        with seeded(seed, student.device):
            module = student._build_module(len(self.classes_)).to(student.device)
            progress.update(student=student, module=module, history=History())
            self._train(student, module, Xs, y_enc, modules, X, progress["history"])
        self._keep_student(**progress)

    def _keep_student(self, student=None, module=None, history=None):
        """Install the student's network; on Ctrl-C, only after at least one full epoch."""
        if module is None or not len(history):
            return None
        student._set_trained(module, None, history)
        self.student_ = student
        return f"the student trained for {len(history)} of {student.max_epochs} epochs"

    # -- the training loop ------------------------------------------------------------------
    def _sample_proba(self, X):
        """The teacher's per-member probabilities ``(M, n, C)``, each member validated."""
        out = np.asarray(self.teacher_.sample_proba(X), dtype=np.float64)
        if out.ndim != 3:
            raise ValueError(f"{type(self).__name__}: the teacher's sample_proba returned shape "
                             f"{out.shape}; expected (n_members, n_samples, n_classes).")
        return np.stack([check_teacher_proba(self, p, self.classes_, self.classes_,
                                             self.teacher_) for p in out])

    def _teacher_fn(self, modules, device, X_raw, Xt):
        """``x_tensor, rows -> (M, B, C)`` teacher member probabilities."""
        if modules:
            nets = [copy.deepcopy(m).to(device).eval().requires_grad_(False) for m in modules]

            def forward(x):
                with torch.no_grad():
                    return torch.softmax(torch.stack([n(x) for n in nets]), dim=-1)

            if self.perturbation is None:
                # Clean inputs never change: run the members once, not every batch of every
                # epoch.
                cached = torch.cat([forward(Xt[i:i + 4096].to(device))
                                    for i in range(0, len(Xt), 4096)], dim=1)
                return (lambda x, rows: cached[:, rows]), nets
            return (lambda x, rows: forward(x)), nets
        cached = torch.as_tensor(self._sample_proba(X_raw), dtype=torch.float32)

        def probs(x, rows):
            if self.perturbation is None:
                return cached[:, rows].to(device)
            raw = x.detach().cpu().numpy().reshape((len(x),) + X_raw.shape[1:])
            out = self._sample_proba(raw)
            return torch.as_tensor(out, dtype=torch.float32, device=device)

        return probs, []

    def _soft_loss(self, z, p):
        """Teacher term for student logits ``z`` (Ms, B, C) and teacher probabilities ``p``
        (Mt, B, C)."""
        T = self.temperature
        if self.method == "proxy-end2":
            return torch.stack([proxy_end2_loss(zs, p) for zs in z]).mean()
        if self.method == "kd":
            return soft_cross_entropy(z, soften(p.mean(0), T), T) * T**2
        targets = soften(p, T)
        if self.method == "one-to-one":
            return soft_cross_entropy(z, targets, T) * T**2
        # ae-kd: one KD loss per teacher, weighted by the min-norm point of their gradients.
        losses = torch.stack([soft_cross_entropy(z, t, T) * T**2 for t in targets])
        grads = torch.stack([torch.autograd.grad(loss, z, retain_graph=True)[0].flatten()
                             for loss in losses])
        weights = ae_kd_weights(grads, cap=self.ae_kd_bound).to(losses.device)
        return (weights * losses).sum()

    def _train(self, student, module, Xs, y_enc, modules, X_raw, history):
        device = torch.device(student.device)
        Xt = torch.as_tensor(np.require(Xs, requirements="W"), dtype=torch.float32)
        yt = torch.as_tensor(y_enc, dtype=torch.int64)
        clip = (float(Xt.min()), float(Xt.max()))
        teacher_probs, nets = self._teacher_fn(modules, device, X_raw, Xt)
        perturb = PERTURBATIONS.get(self.perturbation)
        optimizer = student._make_optimizer(module.parameters())
        prior = getattr(student, "prior_strength", 0.0)
        module.train()
        n, bs = len(Xt), student.batch_size
        for epoch in range(1, student.max_epochs + 1):
            start, total = time.time(), 0.0
            order = torch.randperm(n)
            for batch, begin in enumerate(range(0, n, bs), 1):
                rows = order[begin:begin + bs]
                xb, yb = Xt[rows].to(device), yt[rows].to(device)
                if perturb is not None:
                    xb = perturb(xb, nets, module, self.perturbation_size_, clip)
                p = teacher_probs(xb, rows)
                z = module(xb)
                z = z if z.dim() == 3 else z.unsqueeze(0)
                loss = self.alpha * self._soft_loss(z, p) if self.alpha > 0 else 0.0
                if self.alpha < 1:
                    hard = F.cross_entropy(z.reshape(-1, z.shape[-1]), yb.repeat(z.shape[0]))
                    loss = loss + (1 - self.alpha) * hard
                if prior:
                    loss = loss + prior * module.prior_penalty()
                value = float(loss.detach())
                if not np.isfinite(value):
                    raise divergence_error(student, f"the loss became {value} at epoch "
                                           f"{epoch}, batch {batch}", student.lr,
                                           float(Xt.abs().max()))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += value * len(rows)
            history.new_epoch()
            history.record("epoch", len(history))
            history.record("train_loss", total / max(n, 1))
            history.record("dur", time.time() - start)
        problem = non_finite_problem(module, Xt[:bs])
        if problem is not None:
            raise divergence_error(student, problem, student.lr, float(Xt.abs().max()))
        module.eval()
