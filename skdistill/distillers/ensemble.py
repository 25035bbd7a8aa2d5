"""EnsembleDistiller: distil a deep ensemble into one student (KD, one-to-one LatentBE, AE-KD,
EnD2, Proxy-EnD2), optionally on diversifying input perturbations."""
import copy
import numbers

import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._interrupt import fit_policy
from .._validation import Implements, check_teacher_proba, param_error, refused_by
from ..base import SampledTeacher
from ..engine import Objective
from ..losses import EnsembleDistillationLoss, dirichlet_uncertainty
from ..perturbations import PERTURBATIONS, default_size
from ._base import BaseDistiller, final_step

METHODS = ("kd", "one-to-one", "ae-kd", "end2", "proxy-end2")
# The methods whose student outputs Dirichlet concentrations exp(z).
_DIRICHLET = ("end2", "proxy-end2")
_GRADIENT_PERTURBATIONS = ("ods", "confods", "tdiv-sdiv")


class EnsembleDistiller(BaseDistiller):
    """Distil an ensemble teacher into a student network, optionally a LatentBE student.

    The teacher (by default a :class:`~skdistill.DeepEnsembleTeacher`) is fitted on ``X, y``;
    then the student is trained by the one engine (:mod:`skdistill.engine`): for every
    minibatch it optionally perturbs the inputs, evaluates every teacher member on them and
    minimises

    ``alpha * soft_loss + (1 - alpha) * CE(y, student)``

    where ``soft_loss`` depends on ``method``:

    - ``"kd"``: ``T^2 CE(softmax(log pbar / T), softmax(z / T))`` towards the ensemble mean
      ``pbar`` (every student member matches it);
    - ``"one-to-one"``: student member ``m`` matches teacher member ``m`` (LatentBE; needs a
      student with as many members as the teacher);
    - ``"ae-kd"``: a weighted sum of the per-teacher KD losses, the weights being the
      min-norm point of their gradients with respect to the student's logits, each at most
      ``ae_kd_bound`` (Du et al. 2020);
    - ``"end2"``: Ensemble Distribution Distillation (Malinin et al. 2020). The student's
      logits are a Dirichlet's concentrations ``exp(z / T)``, trained by the negative
      log-likelihood of the members' probabilities (softened, ``softmax(log p_m / T)``, and
      smoothed towards uniform by ``1e-3``: :func:`skdistill.losses.end2_loss`). ``T``
      starts at ``temperature`` and is annealed linearly to 1 over the first half of the
      epochs (``max_epochs // 2``; one epoch: 1 throughout), then stays 1; the validation
      loss is at ``T = 1``. Needs a teacher with at least 2 members. A LatentBE student
      trains each member as a Dirichlet;
    - ``"proxy-end2"``: reverse KL from the student's Dirichlet ``exp(z)`` to the ensemble's
      proxy Dirichlet (Ryabinin et al. 2021); ``temperature`` is not used.

    For ``"end2"`` and ``"proxy-end2"`` ``predict_proba`` is the Dirichlet's mean
    ``softmax(z)`` and :meth:`predict_uncertainty` splits its entropy into aleatoric and
    epistemic parts. The labels' term (``alpha < 1``) is the cross-entropy of that mean; the
    papers use none (``alpha=1``, the default).

    ``perturbation`` moves each input by ``perturbation_size`` (L2) before the step:
    ``"gaussian"`` in a random direction, ``"ods"``/``"confods"`` along a random output
    direction of the teachers, ``"tdiv-sdiv"`` along the gradient of teacher diversity minus
    student diversity for a random member pair (Nam et al. 2022, eqs. 13-14). The student is
    trained on the perturbed batch in place of the clean one; inputs stay within
    ``[X.min(), X.max()]`` of the training data.

    ``X`` must be numeric (an array or a DataFrame of numbers): encode its string
    and categorical columns first, e.g. with a ColumnTransformer in a Pipeline before it
    (:class:`KnowledgeDistiller` and :class:`CrossFitDistiller` take such tables as they are).

    Parameters
    ----------
    teacher : estimator with fit and sample_proba, default=None
        ``None`` means ``DeepEnsembleTeacher()``. Its members' torch networks
        (``modules_``) are needed for ``"ods"``, ``"confods"`` and ``"tdiv-sdiv"``; otherwise
        ``sample_proba`` is enough. A fitted teacher in
        :class:`sklearn.frozen.FrozenEstimator` is used as is.
    student : skdistill student, default=None
        ``None`` means ``LatentBEStudent()``. All its training settings apply: ``max_epochs``,
        ``batch_size``, ``lr``, ``optimizer``, ``weight_decay``, ``device``, ``callbacks``,
        ``validation_fraction`` (the validation loss is on clean, unperturbed rows) and
        ``verbose``.
    method : {"kd", "one-to-one", "ae-kd", "end2", "proxy-end2"}, default="one-to-one"
    perturbation : {"gaussian", "ods", "confods", "tdiv-sdiv"} or None, default=None
    perturbation_size : float, default=None
        L2 norm of the input step; ``None`` is ``sqrt(D) / 255 * (X.max() - X.min())``, the
        paper's ``sqrt(D) / 255`` for ``[0, 1]`` images.
    temperature : float, default=4.0
        The KD temperature of ``"kd"``, ``"one-to-one"`` and ``"ae-kd"``; for ``"end2"``
        the start of its annealing to 1.
    alpha : float, default=1.0
        Weight of the teacher term; ``1 - alpha`` goes to the labels.
    ae_kd_bound : float, default=1.0
        Upper bound ``C`` on each AE-KD teacher weight (at least ``1 / n_members``).
    verbose : int, default=0
        When positive, the student prints its per-epoch table.
    random_state : int, RandomState instance or None, default=None
        Seeds a teacher or student whose own ``random_state`` is ``None``.

    Attributes
    ----------
    teacher_ : fitted teacher
    student_ : fitted student; for a LatentBE student, ``student_.merged_module_`` is the
        single network that predicts.
    history_ : skorch.History
        The student's per-epoch history.
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
    Malinin, Mlodozeniec, Gales. Ensemble Distribution Distillation. ICLR 2020.
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
    >>> end2 = EnsembleDistiller(teacher, MLPStudent(hidden_layer_sizes=(16,), max_epochs=50,
    ...                                              lr=1e-2), method="end2",
    ...                          random_state=0).fit(X, y)
    >>> u = end2.predict_uncertainty(X[:4])
    >>> bool((u.total == u.aleatoric + u.epistemic).all() and (u.epistemic >= 0).all())
    True
    """

    _pipeline_students = False

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "teacher": [Implements(SampledTeacher, ["fit", "sample_proba"]), None],
        "method": [StrOptions(set(METHODS))],
        "perturbation": [StrOptions(set(PERTURBATIONS)), None],
        "perturbation_size": [Interval(numbers.Real, 0, None, closed="left"), None],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "ae_kd_bound": [Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(self, teacher=None, student=None, method="one-to-one", perturbation=None,
                 perturbation_size=None, temperature=4.0, alpha=1.0, ae_kd_bound=1.0,
                 verbose=0, random_state=None):
        self.teacher = teacher
        self.student = student
        self.method = method
        self.perturbation = perturbation
        self.perturbation_size = perturbation_size
        self.temperature = temperature
        self.alpha = alpha
        self.ae_kd_bound = ae_kd_bound
        self.verbose = verbose
        self.random_state = random_state

    def _default_teacher(self):
        from ..teachers import DeepEnsembleTeacher

        return DeepEnsembleTeacher()

    def _default_student(self):
        from ..students import LatentBEStudent

        return LatentBEStudent()

    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Fit the teacher, then train the student on its members' predictions.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the student's loss, also passed to the teacher's ``fit`` where it
            accepts them (a ``DeepEnsembleTeacher`` passes them to its members).

        Returns
        -------
        self
        """
        X, y, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        student = self._student_verbose(self._seeded_clone(self._student(), offset=1))
        self._check_student_rows(student, X)
        self.teacher_ = self._fit_teacher(X, y, sample_weight)
        teacher_classes = getattr(self.teacher_, "classes_", self.classes_)
        if not np.array_equal(teacher_classes, self.classes_):
            raise param_error(self, "teacher", self.teacher_,
                              f"a teacher fitted on the classes of y {self.classes_.tolist()}")
        objective = self._objective(X, student)
        self._dirichlet = self.method in _DIRICHLET  # what the student's logits mean
        return self._train_student(student, X, y, objective, sample_weight)

    def _objective(self, X, student):
        """Check the method against the teacher and student; the engine's objective."""
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
        if self.method == "end2" and n_teachers < 2:
            raise param_error(self, "method", self.method,
                              f"a method other than 'end2' for a teacher with {n_teachers} "
                              "member; 'end2' fits a Dirichlet to the members' predictions "
                              "and needs a teacher with at least 2 members")
        n_members = getattr(student, "n_members", 1)
        if self.method == "one-to-one" and n_members != n_teachers:
            raise param_error(self, "method", self.method,
                              f"'kd', 'ae-kd', 'end2' or 'proxy-end2' for a student with "
                              f"{n_members} member(s); 'one-to-one' needs a student with "
                              f"n_members="
                              f"{n_teachers}, the teacher's member count")
        low, high = float(X.min()), float(X.max())
        self.perturbation_size_ = None
        if self.perturbation is not None:
            self.perturbation_size_ = (default_size(int(np.prod(X.shape[1:])), high - low)
                                       if self.perturbation_size is None
                                       else float(self.perturbation_size))
        loss = EnsembleDistillationLoss(self.method, self.temperature, self.alpha,
                                        self.ae_kd_bound)
        return _EnsembleObjective(self, loss, X, modules, student.device, (low, high))

    def predict_uncertainty(self, X):
        """Total, aleatoric and epistemic uncertainty of the student's Dirichlet.

        For ``method="end2"`` or ``"proxy-end2"``, whose student outputs the concentrations
        ``alpha = exp(z)`` of a Dirichlet over the class probabilities: ``total`` is the
        entropy of its mean ``alpha / alpha0`` (:meth:`predict_proba`), ``aleatoric`` the
        expected entropy ``-sum_c (alpha_c / alpha0) (digamma(alpha_c + 1) -
        digamma(alpha0 + 1))`` and ``epistemic = total - aleatoric``, the mutual information
        (the ensemble's disagreement, as the student learnt it). Both parts are non-negative
        and ``total == aleatoric + epistemic`` holds exactly. A LatentBE student answers with
        its merged network, whose logits are close to the mean of its members'.
        Other methods train a plain softmax student, which has no such decomposition: a
        ``ValueError`` says so.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame
            Rows as at ``fit``.

        Returns
        -------
        uncertainty : Bunch
            ``total``, ``aleatoric``, ``epistemic``: arrays of shape (n_samples,), in nats.
        """
        check_is_fitted(self, "student_")
        if not getattr(self, "_dirichlet", False):
            raise param_error(self, "method", self.method,
                              "'end2' or 'proxy-end2' and a new fit for predict_uncertainty, "
                              "which reads the student's logits as Dirichlet concentrations")
        X = self._check_predict_X(X)
        student, last = self.student_, final_step(self.student_)
        with refused_by(self, f"student {type(student).__name__}"):
            if last is not student:
                X = student[:-1].transform(X)
            logits = last._logits(X)
        total, aleatoric, epistemic = (v.numpy() for v in dirichlet_uncertainty(logits))
        return Bunch(total=total, aleatoric=aleatoric, epistemic=epistemic)

    # -- the teacher's side ---------------------------------------------------------------------
    def _sample_proba(self, X):
        """The teacher's per-member probabilities ``(M, n, C)``, each member validated."""
        out = np.asarray(self.teacher_.sample_proba(X), dtype=np.float64)
        if out.ndim != 3:
            raise ValueError(f"{type(self).__name__}: the teacher's sample_proba returned shape "
                             f"{out.shape}; expected (n_members, n_samples, n_classes).")
        return np.stack([check_teacher_proba(self, p, self.classes_, self.classes_,
                                             self.teacher_) for p in out])


class _EnsembleObjective(Objective):
    """Teacher members' probabilities as per-batch targets, and the input perturbation.

    With torch member networks (``modules_``) the members run on each batch; their outputs on
    clean rows are kept per row after the first epoch (clean inputs never change). Without
    them, ``sample_proba`` is called on the whole training set once, and on perturbed
    batches as they come.

    For ``"end2"`` the training targets carry the annealed temperature of the current epoch
    (validation ones ``1``), set by the engine's :meth:`begin_epoch`.
    """

    member_aware = True

    def __init__(self, distiller, loss, X, modules, device, clip):
        super().__init__(loss, fields=("index", "y"))
        self.distiller = distiller
        self.perturbation = PERTURBATIONS.get(distiller.perturbation)
        self.size = distiller.perturbation_size_
        self.clip = clip
        self.row_shape = X.shape[1:]
        self.start_temperature = float(distiller.temperature)
        self.anneal = distiller.method == "end2"
        self.epoch, self.max_epochs = 0, 1
        self.nets = [copy.deepcopy(m).to(device).eval().requires_grad_(False) for m in modules]
        n_rows, n_classes = X.shape[0], distiller.classes_.size
        if self.nets:  # filled as the first epoch meets each row
            self.seen = torch.zeros(n_rows, dtype=torch.bool)
            self.cache = torch.empty(len(self.nets), n_rows, n_classes, device=device)
        else:
            self.seen = None
            self.cache = torch.as_tensor(distiller._sample_proba(X), dtype=torch.float32)

    def _members(self, X):
        if self.nets:
            with torch.no_grad():
                return torch.softmax(torch.stack([n(X) for n in self.nets]), dim=-1)
        raw = X.detach().cpu().numpy().reshape((len(X),) + tuple(self.row_shape))
        return torch.as_tensor(self.distiller._sample_proba(raw), dtype=torch.float32,
                               device=X.device)

    def _clean(self, X, index):
        if self.seen is not None:
            new = ~self.seen[index.cpu()]
            if new.any():
                rows = index[new.to(index.device)]
                self.cache[:, rows] = self._members(X[new.to(X.device)])
                self.seen[rows.cpu()] = True
        return self.cache[:, index.to(self.cache.device)].to(X.device)

    def n_epochs(self, dataset, batch_size, max_epochs):
        self.max_epochs = max_epochs
        return max_epochs

    def temperature(self, epoch):
        """EnD2's temperature at ``epoch`` (from 0): linear from the distiller's
        ``temperature`` to 1 over the first ``max_epochs // 2`` epochs, then 1."""
        n_anneal = self.max_epochs // 2
        if epoch >= n_anneal:
            return 1.0
        return 1.0 + (self.start_temperature - 1.0) * (1.0 - epoch / n_anneal)

    def begin_epoch(self, epoch):
        self.epoch = epoch

    def batch_targets(self, X, rows, training):
        perturbed = training and self.perturbation is not None
        proba = self._members(X) if perturbed else self._clean(X, rows["index"])
        targets = {"proba": proba, "y": rows["y"]}
        if self.anneal:
            targets["temperature"] = self.temperature(self.epoch) if training else 1.0
        return targets

    def perturb(self, X, rows, module):
        if self.perturbation is None:
            return X
        return self.perturbation(X, self.nets, module, self.size, self.clip)
