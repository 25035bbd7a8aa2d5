"""GPEDDistiller: online distillation of Bayesian posterior expectations (Vadera et al., Algorithm 1)."""
import inspect
import numbers

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .._interrupt import fit_policy, warn_user
from .._random import draw_seed
from .._validation import Implements, check_fitted, missing_members, param_error
from ..base import PosteriorChain, SampledTeacher, TrunkHeadNet
from ..engine import Minibatches, Objective, SampleStream, StreamBatches
from ..expectations import ESTIMATORS, EXPECTATIONS, decompose_uncertainty, output_size
from ..losses import GPEDLoss
from ..nets.heads import LinearHead, MultiHeadNet, head_expectation
from ._base import BaseDistiller

#: ``thinning=None``: the paper's one student step every 10 SGLD iterations (its entropy
#: runs), lowered on a chain too short to give the student this many steps.
DEFAULT_THINNING, TARGET_STUDENT_STEPS = 10, 2000
#: Fewer student steps than this warn: the student would lag far behind the teacher.
MIN_STUDENT_STEPS = 500


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

    ``X`` must be numeric (an array or a DataFrame of numbers): encode its string
    and categorical columns first, e.g. with a ColumnTransformer in a Pipeline before it
    (:class:`KnowledgeDistiller` and :class:`CrossFitDistiller` take such tables as they are).

    Parameters
    ----------
    teacher : SGLDTeacher or any teacher with ``iter_samples``, default=None
        The teacher's ``iter_samples(X, y)`` stream of posterior samples (callables mapping a
        batch to class probabilities, :class:`skdistill.base.SampledTeacher`) drives the
        student: one student step per sample. A chain (a
        :class:`skdistill.base.PosteriorChain`, like ``SGLDTeacher``, whose SGLD settings
        drive the chain) is run once and decides the number of steps; any other teacher (e.g.
        a ``DeepEnsembleTeacher``: its members) is fitted once and its samples are cycled for
        the student's ``max_epochs`` epochs. ``None`` means ``SGLDTeacher()``.
    student : MLPStudent or CNNStudent, default=None
        A student whose network has a trunk and a head (a
        :class:`skdistill.base.TrunkHeadNet`: ``features``, ``head``, ``n_hidden_out``);
        others (e.g. ``LatentBEStudent``) raise a ``TypeError``.
        It is trained by the one engine, so its architecture, optimiser settings,
        ``callbacks``, ``verbose`` and ``device`` apply; an epoch is one pass of minibatches
        over ``D'`` (``len(D') // batch`` student steps). Two settings cannot apply and are
        refused with a ``ValueError`` rather than ignored: ``validation_fraction`` (the
        targets are running estimates over posterior samples, known only for the rows
        visited, so there is no fixed target to validate against), and, with a chain teacher,
        a ``max_epochs`` set to other than its default (the chain decides the number of
        steps: set ``n_iter`` or ``thinning``). Its ``batch_size`` is the distillation
        minibatch unless ``distill_batch_size`` is given. ``None`` means ``MLPStudent()``.
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
        SGLD iterations and burn-in of a chain teacher (set through its
        ``set_chain_length``); ``None`` takes the teacher's (and must be ``None`` for a
        teacher without a chain).
    thinning : int, default=None
        One student step every ``thinning`` SGLD iterations after burn-in: the student takes
        ``(n_iter - burn_in) // thinning`` steps. ``None`` is the paper's 10, lowered (down to
        1) where the chain is too short for 2,000 student steps:
        ``max(1, min(10, (n_iter - burn_in) // 2000))`` (the teacher's default chain,
        20,000 iterations after 1,000 of burn-in, gives 9 and 2,111 steps). A budget with no
        student step raises a ``ValueError`` before the chain runs; one under 500 steps
        warns. The teacher's own ``thinning`` and ``max_samples`` still decide which samples
        it keeps for its ``predict_proba`` (the reference the student is compared to).
    distill_batch_size : int, default=None
        Rows of ``D'`` per student step; ``None`` is the student's ``batch_size``. Giving both
        (the student's ``batch_size`` set to other than its default) with different values
        raises a ``ValueError``.
    input_noise : float, default=0.0
        Standard deviation of Gaussian noise added to the distillation minibatch (teacher and
        student see the same perturbed inputs); U_o then averages over the noise draws too.
    verbose : int, default=0
        When positive, one progress display: a chain teacher's progress bar (e.g.
        ``SGLDTeacher``'s, over its iterations), else the student's per-epoch table (after
        the teacher's own display, if it has a ``verbose`` parameter). The student's losses
        are in ``history_`` and ``loss_curve_`` either way.
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
    module_ : skdistill.nets.MultiHeadNet
        The student network with all heads (shares parameters with ``student_.module_``).
    targets_ : list of str
        Head names, ``"predictive"`` first (a callable's head is named after the callable,
        made unique as described under ``target``).
    thinning_ : int or None
        SGLD iterations per student step: ``thinning``, or the value ``None`` resolved to
        (None for a teacher without a chain).
    history_ : skorch.History
        The student's per-epoch history (an epoch: ``len(D') // batch`` steps).
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

    _pipeline_students = False

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "teacher": [Implements(SampledTeacher, ["fit", "predict_proba", "iter_samples"]),
                    None],
        "target": [StrOptions(set(EXPECTATIONS)), callable, list, tuple],
        "estimator": [StrOptions(set(ESTIMATORS))],
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "burn_in": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "thinning": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "distill_batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "input_noise": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(self, teacher=None, student=None, target="predictive", estimator="online",
                 n_iter=None, burn_in=None, thinning=None, distill_batch_size=None,
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
            return LinearHead(n_in, n_classes)
        if name == "entropy":
            return LinearHead(n_in, 1, "softplus")
        if name == "variance":
            return LinearHead(n_in, n_classes, "quarter_sigmoid")
        return LinearHead(n_in, self._output_size(g, n_classes))

    def _output_size(self, g, n_classes):
        """Values per example of target ``g``; a callable that fails is named."""
        try:
            return output_size(g, n_classes)
        except Exception as exc:
            raise param_error(self, "target", g, "a callable mapping a (n, C) torch tensor of "
                              f"probabilities to (n,) or (n, k); it raised {exc!r}",
                              TypeError) from None

    # -- fitting --------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, X_unlabeled=None, sample_weight=None):
        """Run the teacher's sample stream and train the student online on its expectations.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
            Training inputs of the teacher.
        y : array-like of shape (n_samples,)
        X_unlabeled : array-like or sparse matrix of shape (n_unlabeled, ...), default=None
            The distillation set ``D'``, each row shaped as a row of ``X``; ``None`` distils on
            ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of ``X``: passed to the teacher's ``iter_samples`` where it accepts
            them (SGLD weights each row's log-likelihood) and, when ``D'`` is ``X``, weights
            the student's loss.

        Returns
        -------
        self
        """
        X, y, _, sample_weight = self._check_fit_data(X, y, sample_weight)
        targets = self._targets()
        student = self._student()
        teacher = self._teacher()
        Xd = X if X_unlabeled is None else self._check_unlabeled(X_unlabeled, X)
        self._fit(X, y, Xd, X_unlabeled, sample_weight, targets, student, teacher)
        return self

    def _fit(self, X, y, Xd, X_unlabeled, sample_weight, targets, student, teacher):
        self.teacher_ = self._seeded_clone(teacher)
        # a chain declares itself (skdistill.base.PosteriorChain); a FrozenEstimator passes
        # the question on to the teacher it wraps
        chain = isinstance(self.teacher_, PosteriorChain)
        if chain and isinstance(self.teacher_, FrozenEstimator):
            raise param_error(self, "teacher", teacher,
                              "an unfitted chain teacher: GPED distils while the chain runs, and "
                              "a frozen one cannot run again without changing it (a frozen "
                              "teacher with a fixed set of samples, e.g. a DeepEnsembleTeacher, "
                              "is cycled)", TypeError)
        if chain:
            self.teacher_.set_chain_length(n_iter=self.n_iter, burn_in=self.burn_in)
        else:
            for name in ("n_iter", "burn_in", "thinning"):
                if getattr(self, name) is not None:
                    lacks = ", ".join(missing_members(self.teacher_, PosteriorChain))
                    raise param_error(self, name, getattr(self, name),
                                      f"None for a teacher without a chain ("
                                      f"{type(teacher).__name__} is no "
                                      f"skdistill.base.PosteriorChain: it has no {lacks}): "
                                      "its samples are cycled for the student's max_epochs")
        student = self._seeded_clone(student, offset=1)
        shows = self.verbose and "verbose" in self.teacher_.get_params()
        if shows:
            self.teacher_.set_params(verbose=self.verbose)
        if not (shows and chain):
            # a chain's bar and the student's epoch table, both written as the chain runs,
            # would interleave line by line: one display per fit
            student = self._student_verbose(student)
        batch = self._check_student(student, chain, Xd.shape[0])
        self.targets_ = list(targets)
        self._target_fns = targets
        n_classes = len(self.classes_)
        estimators = {name: ESTIMATORS[self.estimator](Xd.shape[0],
                                                       self._output_size(g, n_classes))
                      for name, g in targets.items()}
        self.estimator_nbytes_ = sum(u.nbytes for u in estimators.values())
        steps_per_epoch = max(1, Xd.shape[0] // batch)
        self.thinning_ = None
        stream = SampleStream(self.teacher_, X, y, sample_weight, cycle=not chain, owner=self)
        weight = sample_weight if X_unlabeled is None else None
        objective = _GPEDObjective(self, targets, estimators, stream, batch, steps_per_epoch,
                                   Xd.shape[1:], draw_seed(self.random_state), chain)
        try:
            self._train_student(student, Xd, self._labels_for(Xd, y, X_unlabeled), objective,
                                weight)
        finally:
            # the student stopped (done, EarlyStopping, Ctrl-C or an error): so does the
            # chain, which stores the samples it drew (SGLDTeacher keeps them)
            stream.close()
            self._record_steps()
        self.module_ = student.net_.module_.eval()

    def _labels_for(self, Xd, y, X_unlabeled):
        """Labels for the student's ``fit_objective`` on ``D'``: ``y``, or for unlabeled rows
        any labels covering ``classes_`` (they define ``classes_``; the loss never uses them)."""
        if X_unlabeled is None:
            return y
        return self.classes_[np.arange(Xd.shape[0]) % len(self.classes_)]

    def _check_student(self, student, chain, n_rows):
        """The student's training settings GPED can use; returns the distillation batch size.

        ``validation_fraction`` is refused: the targets are running estimates that exist only
        for rows the minibatches have visited, so there is nothing fixed to validate against.
        With a chain teacher the chain decides the number of student steps, so a ``max_epochs``
        set on the student (not its default) is refused rather than ignored.
        """
        if getattr(student, "validation_fraction", None) is not None:
            raise param_error(self, "student", student,
                              "a student with validation_fraction=None: GPED's targets are "
                              "running posterior estimates, with no fixed targets for a "
                              "validation split")
        if chain and _set_explicitly(student, "max_epochs"):
            raise param_error(self, "student", student,
                              f"a student whose max_epochs is left at its default: with a chain "
                              f"teacher the student takes (n_iter - burn_in) // thinning steps "
                              f"(set n_iter or thinning instead of max_epochs="
                              f"{student.max_epochs})")
        if self.distill_batch_size is None:
            batch = student.batch_size
        else:
            batch = self.distill_batch_size
            if _set_explicitly(student, "batch_size") and student.batch_size != batch:
                raise param_error(self, "distill_batch_size", batch,
                                  f"None or the student's batch_size={student.batch_size} "
                                  "(set one of the two)")
        return min(batch, n_rows)

    def _record_steps(self):
        """``loss_curve_`` (one loss per student step) from the student's history."""
        net = getattr(self.student_, "net_", None)
        history = net.history if net is not None else []
        curve = [b["train_loss"] for row in history for b in row["batches"]
                 if "train_loss" in b]
        self.loss_curve_ = curve
        self.n_student_steps_ = len(curve)

    def _salvage(self):
        """Ctrl-C policy: once the student has a complete epoch, it is usable."""
        kept = super()._salvage()
        if kept is None:
            return None
        self.module_ = self.student_.net_.module_.eval()
        n_kept = len(getattr(self.teacher_, "samples_", ()))
        n_iter = getattr(self.teacher_, "n_iter_", None)
        teacher = (f"the teacher's {n_kept} samples of its first {n_iter} iterations"
                   if n_kept and n_iter is not None else "the teacher as it is")
        return f"the student after {self.n_student_steps_} steps, and {teacher}"

    def _check_student_budget(self):
        """Resolve ``thinning_``; refuse a chain with no student step, warn under 500 steps.

        Returns the number of student steps.
        """
        n_iter, burn_in = self.teacher_.chain_length()
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
        return steps

    # -- prediction -----------------------------------------------------------------------------
    def _outputs(self, X):
        """All heads' outputs for ``X`` in one forward pass per batch, as float64 tensors."""
        check_fitted(self, "module_")
        X = self._check_predict_X(X, "forward")
        # the student's forward without its copy of one chunk's outputs: they are only read
        out = self.student_.forward(X, module=self.module_, copy=False)
        if not isinstance(out, dict):  # no rows
            return {name: torch.empty(0, dtype=torch.float64) for name in self.targets_}
        return {name: out[name].double() for name in self.targets_}

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
        check_fitted(self, "module_")
        name = self._head_name(target)
        out = self._outputs(X)[name]
        if name == "predictive":
            return torch.softmax(out, 1).numpy()
        return head_expectation(out).numpy()

    def predict_uncertainty(self, X):
        """Total, aleatoric and epistemic uncertainty from one forward pass of the student.

        ``total`` is the entropy of the predictive head's distribution, ``aleatoric`` the
        entropy head's expected entropy and ``epistemic = total - aleatoric`` (the BALD
        mutual information). The expected entropy of a posterior never exceeds the entropy of
        its predictive, but the two heads are learnt separately: where the entropy head says
        more than ``total``, ``aleatoric`` is taken as ``total`` and ``epistemic`` is 0. So
        both parts are non-negative and ``total == aleatoric + epistemic`` holds exactly (in
        floating point; ``total`` may differ from the predictive head's entropy by one
        rounding). Needs ``"entropy"`` among the distilled targets: a model fitted with the
        default ``target="predictive"`` raises a ``ValueError`` saying what to set.

        Returns
        -------
        uncertainty : Bunch
            ``total``, ``aleatoric``, ``epistemic``: arrays of shape (n,).
        """
        check_fitted(self, "module_")
        if "entropy" not in self.targets_:
            items = self.target if isinstance(self.target, (list, tuple)) else [self.target]
            names = [repr(t) if isinstance(t, str) else getattr(t, "__name__", repr(t))
                     for t in items]
            raise param_error(self, "target", self.target,
                              f"target=[{', '.join(names + [repr('entropy')])}] and a new fit "
                              "for predict_uncertainty, which takes the aleatoric part from "
                              "the student's expected-entropy head")
        out = self._outputs(X)
        total, aleatoric, epistemic = (v.numpy() for v in decompose_uncertainty(
            out["predictive"], head_expectation(out["entropy"])))
        return Bunch(total=total, aleatoric=aleatoric, epistemic=epistemic)


def _set_explicitly(estimator, name):
    """Whether parameter ``name`` differs from its default in the estimator's signature."""
    default = inspect.signature(type(estimator).__init__).parameters.get(name)
    return default is not None and getattr(estimator, name) != default.default




class _GPEDObjective(Objective):
    """GPED's plug-ins: heads on the student's trunk, targets from the current posterior
    sample folded into the per-row estimators, input noise, batches from the sample stream."""

    member_aware = True

    def __init__(self, distiller, targets, estimators, stream, batch, steps_per_epoch,
                 teacher_shape, seed, chain):
        super().__init__(GPEDLoss(), fields=("index",))
        self.distiller, self.targets_fns, self.estimators = distiller, targets, estimators
        self.stream, self.n_steps, self.batch, self.chain = stream, 0, batch, chain
        self.steps_per_epoch, self.teacher_shape = steps_per_epoch, tuple(teacher_shape)
        # minibatch order and input noise: one generator where the rows and the student are
        # on one device, made there when the engine hands over the rows
        self.seed, self.sampler, self.noise_gen = seed, None, None
        self.noise = distiller.input_noise
        self.device = None  # the estimators' device: the student's, once it is known

    def build(self, module):
        d = self.distiller
        if not isinstance(module, TrunkHeadNet):
            lacks = ", ".join(missing_members(module, TrunkHeadNet))
            raise param_error(d, "student", d.student,
                              "a student whose network has a trunk and a head "
                              "(skdistill.base.TrunkHeadNet), such as MLPStudent or "
                              f"CNNStudent; its {type(module).__name__} has no {lacks}",
                              TypeError)
        n_classes = len(d.classes_)
        heads = {name: d._head(name, g, module.n_hidden_out, n_classes)
                 for name, g in self.targets_fns.items()}
        return MultiHeadNet(module.features, heads)

    def deploy(self, module):
        return nn.Sequential(module.trunk, module.heads["predictive"])

    def batches(self, dataset, batch_size):
        if self.sampler is None:
            gen = torch.Generator(dataset.device).manual_seed(self.seed)
            self.sampler = Minibatches(len(dataset), self.batch, drop_last=True, generator=gen,
                                       device=dataset.device)
        return StreamBatches(dataset, self.stream, self.sampler, self.steps_per_epoch,
                             self.n_steps)

    def n_epochs(self, dataset, batch_size, max_epochs):
        """The chain's budget ((n_iter - burn_in) // thinning steps, checked here, after the
        student's network), or ``max_epochs`` passes for a teacher without a chain."""
        if self.chain:
            self.n_steps = self.distiller._check_student_budget()
            # a chain's iter_samples takes every= (skdistill.base.PosteriorChain)
            self.stream.kwargs["every"] = self.distiller.thinning_
        else:
            self.n_steps = max_epochs * self.steps_per_epoch
        return -(-self.n_steps // self.steps_per_epoch)

    def perturb(self, X, rows, module):
        if not self.noise:
            return X
        gen = self.sampler.generator
        if gen.device != X.device:  # rows kept on the host for a student on a device
            if self.noise_gen is None:
                self.noise_gen = torch.Generator(X.device).manual_seed(self.seed + 1)
            gen = self.noise_gen
        return X + self.noise * torch.randn(X.shape, generator=gen, device=X.device)

    def batch_targets(self, X, rows, training):
        # on the student's device throughout: the estimators' state stays there
        if self.device != X.device:
            self.device = X.device
            for estimator in self.estimators.values():
                estimator.to(X.device)
        index = rows["index"].to(X.device)
        proba = rows["sample"](X.reshape((len(X),) + self.teacher_shape)).detach().to(X.device)
        out = {}
        for name, g in self.targets_fns.items():
            values = torch.as_tensor(g(proba), dtype=torch.float32,
                                     device=X.device).reshape(len(index), -1)
            out[name] = self.estimators[name].update(index, values)
        return out
