"""The contracts between teachers, students, objectives and distillers, as code.

Each contract is a :class:`typing.Protocol`: an object satisfies it by having its members, whatever
its classes, as scikit-learn's estimators satisfy its conventions. ``isinstance(obj, Teacher)``
checks at run time that the members exist (not their signatures): the distillers check their
``teacher`` and ``student`` this way and name what is missing.

- :class:`Teacher`: ``fit`` and ``predict_proba``, what :class:`~skdistill.KnowledgeDistiller`
  and :class:`~skdistill.CrossFitDistiller` need; every scikit-learn classifier is one.
- :class:`SampledTeacher`: a teacher with members or posterior samples, ``sample_proba`` and
  ``iter_samples``, what :class:`~skdistill.EnsembleDistiller` and
  :class:`~skdistill.GPEDDistiller` read.
- :class:`PosteriorChain`: a teacher whose ``iter_samples`` runs a Markov chain once, declared
  by ``chain_length`` and ``set_chain_length``: :class:`~skdistill.GPEDDistiller` distils while
  it runs instead of cycling its samples.
- :class:`Student`: what the distillers, the Laplace teacher and the ONNX export call on a
  student; :class:`skdistill.students.BaseStudent` implements it, and a new network student
  subclasses it, providing ``build_module`` and ``check_X``.
- :class:`TrunkHeadNet`: a classifier network in two parts, a trunk and a head, on which
  :class:`~skdistill.GPEDDistiller` puts one head per posterior expectation.
- :class:`Objective`: a training method (targets, per-row loss, hooks), the class whose hooks
  a method overrides; every student trains on one through ``fit_objective``.

The guide "Extending skdistill" shows a teacher and a student written from these.
"""
from typing import Protocol, runtime_checkable

from .engine import Objective

__all__ = ["Teacher", "SampledTeacher", "PosteriorChain", "Student", "TrunkHeadNet",
           "Objective"]


@runtime_checkable
class Teacher(Protocol):
    """A classifier whose class probabilities a student learns from.

    A teacher is fitted on ``X, y`` and gives class probabilities. It has a ``classes_``
    attribute once fitted (the labels, in the order of ``predict_proba``'s columns); a teacher
    without one is taken to order its columns like the sorted labels of ``y``. Distillers clone
    it (``sklearn.base.clone``), so it follows scikit-learn's estimator conventions
    (``get_params``, ``set_params``, ``__init__`` arguments stored unchanged).

    See Also
    --------
    SampledTeacher : A teacher with members or posterior samples.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.base import SampledTeacher, Teacher
    >>> isinstance(LogisticRegression(), Teacher), isinstance(LogisticRegression(), SampledTeacher)
    (True, False)
    """

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X, y`` (``sample_weight`` where the teacher takes it) and return ``self``.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, ...)
            What the distiller received, validated (a DataFrame goes to a
            :class:`~skdistill.KnowledgeDistiller`'s or
            :class:`~skdistill.CrossFitDistiller`'s teacher as it is).
        y : ndarray of shape (n_samples,)
            The labels.
        sample_weight : ndarray of shape (n_samples,), default=None
            Passed only where the signature of ``fit`` has it.

        Returns
        -------
        self : object
            The fitted teacher.
        """

    def predict_proba(self, X):
        """Class probabilities: finite, non-negative, each row summing to 1.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, ...)
            Rows shaped as those of ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """


@runtime_checkable
class SampledTeacher(Teacher, Protocol):
    """A teacher with members (an ensemble) or posterior samples (a Bayesian network).

    :class:`~skdistill.EnsembleDistiller` reads every member's probabilities
    (``sample_proba``); :class:`~skdistill.GPEDDistiller` takes one student step per sample
    of ``iter_samples``. Every teacher of :mod:`skdistill.teachers` is one.

    See Also
    --------
    PosteriorChain : A sampled teacher whose samples come from one run of a Markov chain.

    Examples
    --------
    >>> from skdistill import DeepEnsembleTeacher, MLPStudent
    >>> from skdistill.base import PosteriorChain, SampledTeacher
    >>> teacher = DeepEnsembleTeacher(MLPStudent(), n_members=2)
    >>> isinstance(teacher, SampledTeacher), isinstance(teacher, PosteriorChain)
    (True, False)
    """

    def sample_proba(self, X):
        """Every member's (posterior sample's) class probabilities.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, ...)
            Rows shaped as those of ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_members, n_samples, n_classes)
            Each member's probabilities, columns in the order of ``classes_``.
        """

    def iter_samples(self, X, y, sample_weight=None):
        """Fit on ``X, y`` unless fitted already, then yield the members one by one.

        Each item is a callable ``sample(batch) -> probabilities``: ``batch`` is a float32
        tensor of rows (shaped as those of ``X``) on any device, the result a
        ``(len(batch), n_classes)`` tensor on any device. An item may stop working once the
        next one is requested. A teacher that is fitted already must not refit: the stream is
        asked for again each time its samples are cycled.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, ...)
            Training rows.
        y : ndarray of shape (n_samples,)
            The labels.
        sample_weight : ndarray of shape (n_samples,), default=None
            Passed only where the signature of ``iter_samples`` has it.

        Yields
        ------
        sample : callable
            One member (posterior sample) as a function of a tensor batch.
        """


@runtime_checkable
class PosteriorChain(Protocol):
    """A teacher whose ``iter_samples`` runs a Markov chain once, consumed online.

    A sampled teacher declares itself a chain by these methods:
    :class:`~skdistill.GPEDDistiller` then runs the chain once, with one student step every
    ``every`` iterations after burn-in, sets its length from its own ``n_iter`` and
    ``burn_in`` where given, and closes the stream after its
    ``(n_iter - burn_in) // thinning`` steps. Without them a teacher's samples are a fixed set,
    cycled. :class:`~skdistill.SGLDTeacher` is a chain.

    See Also
    --------
    SampledTeacher : The other members of a teacher that GPED distils.

    Examples
    --------
    >>> from skdistill import SGLDTeacher
    >>> from skdistill.base import PosteriorChain
    >>> teacher = SGLDTeacher(n_iter=500, burn_in=100)
    >>> isinstance(teacher, PosteriorChain), teacher.chain_length()
    (True, (500, 100))
    >>> teacher.set_chain_length(n_iter=800).chain_length()
    (800, 100)
    """

    def chain_length(self):
        """The iterations of one run of the chain, and those before its first sample.

        Returns
        -------
        n_iter : int
            Iterations of one run (of one ``fit`` or ``iter_samples`` call).
        burn_in : int
            Iterations before the first sample is yielded.
        """

    def set_chain_length(self, n_iter=None, burn_in=None):
        """Set the length of the chain's next run, where given, and return ``self``.

        Parameters
        ----------
        n_iter : int, default=None
            Iterations of one run; None leaves it.
        burn_in : int, default=None
            Iterations before the first sample; None leaves it.

        Returns
        -------
        self : object
            The teacher.
        """

    def iter_samples(self, X, y, sample_weight=None, *, every=None, keep=False):
        """Run the chain on ``X, y``, yielding its state every ``every`` iterations after burn-in.

        As :meth:`SampledTeacher.iter_samples`; each item is valid until the next one is
        requested (the chain moves on).

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, ...)
            Training rows.
        y : ndarray of shape (n_samples,)
            The labels.
        sample_weight : ndarray of shape (n_samples,), default=None
            Passed only where the signature of ``iter_samples`` has it.
        every : int, default=None
            Iterations between two yielded states; None: the teacher's own thinning.
        keep : bool, default=False
            Also keep samples as ``fit`` does, so that the teacher predicts afterwards.

        Yields
        ------
        sample : callable
            The chain's current state as a function of a tensor batch.
        """


@runtime_checkable
class Student(Protocol):
    """A classifier network that a distiller trains on its own targets and loss.

    A distiller hands the student an :class:`Objective` through ``fit_objective``; the fitted
    student predicts with ``deployed_module()`` on rows reshaped to ``row_shape()``.
    :class:`skdistill.students.BaseStudent` implements all of it: a new network student
    subclasses it and provides ``build_module`` (the network) and ``check_X`` (validation).

    See Also
    --------
    skdistill.students.BaseStudent : The base class of every skdistill student.
    TrunkHeadNet : The network a GPED student builds.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import MLPStudent
    >>> from skdistill.base import Student
    >>> isinstance(MLPStudent(), Student), isinstance(LogisticRegression(), Student)
    (True, False)
    """

    def fit(self, X, y, soft_targets=None, sample_weight=None):
        """Fit on labels ``y``, or on a teacher's probabilities ``soft_targets``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
            Training rows.
        y : array-like of shape (n_samples,)
            Labels; they define ``classes_``.
        soft_targets : array-like of shape (n_samples, n_classes), default=None
            Probabilities over ``classes_`` per row.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' losses.

        Returns
        -------
        self : object
            The fitted student.
        """

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
            Rows as at ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The deployed network's probabilities.
        """

    def fit_objective(self, X, y, objective, sample_weight=None):
        """Train the network on ``objective``'s targets and loss.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
            Training rows.
        y : array-like of shape (n_samples,)
            Labels: they define ``classes_``.
        objective : Objective
            Targets, per-row loss and hooks.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' losses.

        Returns
        -------
        self : object
            The fitted student; ``module_`` is ``objective.deploy(trained network)``.
        """

    def forward(self, X, module=None, batch_size=4096, copy=True):
        """Outputs of the trained network, or of ``module``, for ``X``, in eval mode.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
            Rows as at ``fit``.
        module : torch.nn.Module, default=None
            A network taking the same inputs (e.g. one with extra heads); None: ``module_``.
        batch_size : int, default=4096
            Rows per forward pass.
        copy : bool, default=True
            False may return the outputs as the network gave them, to be read only.

        Returns
        -------
        outputs : torch.Tensor or dict of torch.Tensor
            On the CPU.
        """

    def row_shape(self):
        """The shape of one row as the network takes it, or None for the rows as they are.

        Returns
        -------
        shape : tuple of int or None
            E.g. ``(C, H, W)`` for a convolutional network given flat rows.
        """

    def deployed_module(self):
        """The network the fitted student predicts with.

        Returns
        -------
        module : torch.nn.Module
            Maps a batch of rows shaped by ``row_shape()`` to logits ``(n, n_classes)``.
        """


@runtime_checkable
class TrunkHeadNet(Protocol):
    """A classifier network in two parts: a trunk of features, and a linear head on them.

    ``head(features(x))`` are the logits. :class:`~skdistill.GPEDDistiller` trains the trunk
    of its student's network with one head per posterior expectation on it
    (:class:`skdistill.nets.MultiHeadNet`); every classifier network of :mod:`skdistill.nets`
    (:class:`~skdistill.nets.MLP`, :class:`~skdistill.nets.CNN`) is one.

    Attributes
    ----------
    features : torch.nn.Module
        The trunk: input batch to the last hidden layer's outputs, ``(n, n_hidden_out)``.
    head : torch.nn.Module
        The last hidden layer's outputs to logits.
    n_hidden_out : int
        The width of the trunk's outputs.

    Examples
    --------
    >>> from skdistill.base import TrunkHeadNet
    >>> from skdistill.nets import MLP, BatchEnsemble
    >>> net = MLP(4, 3, hidden_sizes=(8,))
    >>> isinstance(net, TrunkHeadNet), net.n_hidden_out
    (True, 8)
    >>> isinstance(BatchEnsemble(net, n_members=2), TrunkHeadNet)
    False
    """

    features: object
    head: object
    n_hidden_out: int
