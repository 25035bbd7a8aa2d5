"""SampledSoftmaxDistiller: teacher-corrected sampled softmax for many classes (Menon et al.)."""
import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted
from torch import nn

from .._interrupt import fit_policy
from .._validation import check_teacher_proba, missing_members, param_error, refused_by
from ..base import TrunkHeadNet
from ..engine import Objective
from ..losses import SampledSoftmaxLoss
from ._base import BaseDistiller

#: Rows per call of the teacher's ``predict_proba`` when its top-k is collected: a dense
#: ``(TEACHER_CHUNK, n_classes)`` block at a time, never all rows' probabilities at once.
TEACHER_CHUNK = 4096


class SampledSoftmaxDistiller(BaseDistiller):
    """Train a many-class student on a sampled softmax whose negatives a teacher corrects.

    With many classes ``L`` (retrieval, extreme classification) the softmax's partition
    function costs ``O(L)`` per row and step. A sampled softmax estimates it from the label
    and ``n_negatives`` classes ``N`` drawn from a distribution ``q`` (shared by a
    minibatch's rows), each corrected by ``log(m q_j)`` (``m = n_negatives``). Some sampled
    negatives are plausible labels of the row (false negatives); Menon et al. (2021) weigh
    each by the teacher's belief that it is not the label:

    ``z_n = log(e^{f_{y_n}} + sum_{j in N} alpha_j(x_n) e^{f_j - log(m q_j)})``,
    ``alpha_j(x_n) = 1 - 1[j != y_n] p^t(j | x_n)``

    and the loss of row ``n`` is ``z_n - f_{y_n}`` (a sampled class equal to the label, an
    accidental hit, has weight 0). With ``alpha > 0`` the student also learns the teacher's
    top-k probabilities, by a sampled softmax with those ``k`` classes as positives (see
    :func:`~skdistill.losses.teacher_corrected_sampled_softmax`): the loss is
    ``(1 - alpha) * label term + alpha * distillation term``. Rows of ``X_unlabeled`` take
    the distillation term alone.

    Only the logits of the classes a step needs are computed (the label, the row's teacher
    top-k, the negatives), so a step's forward and backward cost
    ``O(batch * (n_negatives + top_k) * hidden)`` whatever ``L``. The optimizer still updates
    the head's whole weight matrix each step (``O(L * hidden)``, independent of the batch);
    the ``"frequency"`` and ``"teacher"`` samplers draw from ``L`` classes (``O(L)``). The
    teacher's probabilities are kept only as each row's ``top_k`` largest, collected
    ``TEACHER_CHUNK`` rows at a time, and looked up for the sampled classes only; a teacher
    whose ``predict_proba`` returns a scipy sparse matrix gives them directly. Prediction is
    the student's full softmax over all classes, and so are the validation batches of a
    student with ``validation_fraction`` (their loss is the sampled one).

    With ``n_negatives >= L - 1`` the negatives are every class but the label, without the
    ``log q`` correction: with ``correction=None`` and ``alpha=0`` the loss is exactly the
    full softmax cross-entropy.

    Parameters
    ----------
    teacher : classifier with predict_proba, default=None
        ``None`` means ``RandomForestClassifier(n_estimators=100)``. It is cloned and fitted
        on ``X, y``; a fitted teacher wrapped in :class:`sklearn.frozen.FrozenEstimator` is
        used as it is. Its ``predict_proba`` may return a scipy sparse matrix (rows holding
        only the largest probabilities, their sum at most 1).
    student : skdistill student or Pipeline ending in one, default=None
        A student whose network is a :class:`skdistill.base.TrunkHeadNet` with a
        ``torch.nn.Linear`` head, such as :class:`~skdistill.MLPStudent` or
        :class:`~skdistill.CNNStudent`; others raise a ``TypeError``. ``None`` means
        ``MLPStudent()``.
    n_negatives : int, default=64
        Negatives ``m`` sampled per minibatch (with replacement), shared by its rows.
    sampler : {"uniform", "frequency", "teacher"}, default="uniform"
        The sampling distribution ``q``: ``"uniform"`` is ``1 / L``; ``"frequency"`` the
        training labels' class frequencies, each count plus one (so that every class can be
        drawn); ``"teacher"`` per minibatch, half uniform and half the mean of its rows'
        teacher top-k probabilities (renormalised over the top-k), which samples the
        plausible (hard) negatives more often.
    correction : {"teacher", None}, default="teacher"
        ``"teacher"``: the weights ``alpha_j`` above; ``None``: every negative weighs 1 (the
        plain sampled softmax).
    alpha : float, default=0.0
        Weight of the distillation term (``0``: labels alone, Menon et al.'s corrected
        sampled softmax; ``1``: the teacher's top-k alone).
    top_k : int or None, default=64
        Teacher probabilities kept per row (its largest); ``None`` keeps all ``L`` (small
        ``L`` only: ``n_samples * L`` values).
    keep_teachers : bool, default=True
        Keep ``teacher_`` after ``fit``; ``False`` keeps only what predicts.
    verbose : int, default=0
        When positive, the student prints its per-epoch table.
    random_state : int, RandomState instance or None, default=None
        Seeds a teacher or student whose own ``random_state`` is ``None`` (the student's
        seed also draws the negatives).

    Attributes
    ----------
    teacher_ : classifier
        The fitted teacher (the frozen one itself when frozen).
    student_ : student estimator
        The fitted student; predictions are its own full softmax.
    history_ : skorch.History
        The student's per-epoch history (the sampled loss).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        The column names of a DataFrame ``X`` (absent for arrays).

    See Also
    --------
    KnowledgeDistiller : Distillation with the full softmax (fewer classes).

    References
    ----------
    Menon, Rawat, Reddi, Kim, Kumar. A Statistical Perspective on Distillation. ICML 2021.

    Bengio, Senécal. Adaptive Importance Sampling to Accelerate Training of a Neural
    Probabilistic Language Model. IEEE Trans. Neural Networks, 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import MLPStudent, SampledSoftmaxDistiller
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(40, 8))
    >>> y = rng.integers(0, 40, 2000)
    >>> X = centres[y] + 0.3 * rng.normal(size=(2000, 8))
    >>> model = SampledSoftmaxDistiller(
    ...     LogisticRegression(max_iter=200), MLPStudent(hidden_layer_sizes=(32,),
    ...     max_epochs=10, lr=1e-2), n_negatives=8, top_k=5, random_state=0).fit(X, y)
    >>> model.predict_proba(X[:3]).shape
    (3, 40)
    >>> model.predict_topk(X[:3], k=2).shape
    (3, 2)
    >>> model.score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "n_negatives": [Interval(numbers.Integral, 1, None, closed="left")],
        "sampler": [StrOptions({"uniform", "frequency", "teacher"})],
        "correction": [StrOptions({"teacher"}), None],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "top_k": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "keep_teachers": ["boolean"],
    }

    def __init__(self, teacher=None, student=None, n_negatives=64, sampler="uniform",
                 correction="teacher", alpha=0.0, top_k=64, keep_teachers=True, verbose=0,
                 random_state=None):
        self.teacher = teacher
        self.student = student
        self.n_negatives = n_negatives
        self.sampler = sampler
        self.correction = correction
        self.alpha = alpha
        self.top_k = top_k
        self.keep_teachers = keep_teachers
        self.verbose = verbose
        self.random_state = random_state

    @fit_policy
    def fit(self, X, y, sample_weight=None, X_unlabeled=None, **fit_params):
        """Fit the teacher on ``X, y``, then the student on the sampled softmax.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the student's loss, also passed to the teacher's ``fit`` where it
            accepts them.
        X_unlabeled : array-like or sparse matrix of shape (n_unlabeled, ...), default=None
            Extra rows without labels that the student learns from on the teacher's top-k
            alone (the distillation term, whatever ``alpha``); they weigh 1.
        **fit_params : dict
            Metadata routed to the teacher and to a student Pipeline's transformers, only
            with ``sklearn.set_config(enable_metadata_routing=True)``.

        Returns
        -------
        self
        """
        X, y, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        routed = self._route_fit(sample_weight, fit_params)
        X_unlabeled = self._check_unlabeled(X_unlabeled, X)
        student = self._student()
        self._check_student_rows(student, X, X_unlabeled)
        teacher_params = self._teacher_params(self._teacher(), sample_weight, routed)
        self.teacher_ = self._fit_teacher(X, y, params=teacher_params)
        n_rows = _num_samples(X)
        n_unlabeled = 0 if X_unlabeled is None else _num_samples(X_unlabeled)
        labels = y_enc
        index = proba = None
        if self._needs_teacher(n_unlabeled):
            index, proba = self._teacher_topk(X, self.teacher_)
        if n_unlabeled:
            more_index, more_proba = self._teacher_topk(X_unlabeled, self.teacher_)
            index, proba = np.concatenate([index, more_index]), np.concatenate([proba,
                                                                                more_proba])
            # the student's y for rows without one: the teacher's most probable class (it
            # defines nothing but a stratified validation split; the loss sees -1)
            X, y, sample_weight = self._with_unlabeled(
                X, y, sample_weight, X_unlabeled,
                more_index[np.arange(n_unlabeled), more_proba.argmax(1)])
            labels = np.concatenate([y_enc, np.full(n_unlabeled, -1)])
        counts = np.bincount(y_enc, minlength=len(self.classes_)) + 1.0
        objective = _SampledSoftmaxObjective(self, labels, index, proba, counts / counts.sum())
        self._train_student(
            self._student_verbose(self._seeded_clone(student, offset=1)), X, y, objective,
            sample_weight, self._student_params(routed, n_rows, n_unlabeled))
        self._drop_teachers()
        return self

    def _needs_teacher(self, n_unlabeled):
        """Whether the loss or the sampler reads the teacher's top-k."""
        return (self.correction is not None or self.alpha > 0 or self.sampler == "teacher"
                or n_unlabeled > 0)

    def _teacher_topk(self, X, teacher):
        """``(index, proba)``: each row's ``top_k`` largest teacher probabilities (all
        classes for ``top_k=None``), collected ``TEACHER_CHUNK`` rows at a time, so that the
        full ``(n_samples, n_classes)`` matrix never exists; a scipy sparse ``predict_proba``
        gives its stored values. ``index`` (int64) holds class positions in ``classes_``,
        increasing along each row, ``-1`` padding a row with fewer stored values (first);
        ``proba`` (float32) their probabilities, not renormalised (0 for padding)."""
        n_classes = len(self.classes_)
        k = n_classes if self.top_k is None else min(self.top_k, n_classes)
        n = _num_samples(X)
        index = np.empty((n, k), dtype=np.int64)
        proba = np.empty((n, k), dtype=np.float32)
        what = f"teacher {type(teacher).__name__}"
        teacher_classes = getattr(teacher, "classes_", self.classes_)
        for start in range(0, n, TEACHER_CHUNK):
            stop = min(n, start + TEACHER_CHUNK)
            with refused_by(self, what):
                chunk = teacher.predict_proba(X[start:stop])
            if sp.issparse(chunk):
                rows = self._sparse_rows(chunk, teacher_classes, stop - start, teacher)
            else:
                rows = check_teacher_proba(self, chunk, teacher_classes, self.classes_,
                                           teacher)
            index[start:stop], proba[start:stop] = _top_k(rows, k)
        return index, proba

    def _sparse_rows(self, proba, teacher_classes, n_rows, teacher):
        """A sparse ``predict_proba`` chunk as a CSR matrix over ``classes_``, validated."""
        what = f"teacher {type(teacher).__name__}"
        proba = sp.csr_matrix(proba, dtype=np.float64)
        if proba.shape != (n_rows, len(teacher_classes)):
            raise ValueError(f"{type(self).__name__}: the {what} returned a sparse "
                             f"predict_proba of shape {proba.shape}; expected ({n_rows}, "
                             f"{len(teacher_classes)}), one column per class in its classes_.")
        proba.eliminate_zeros()
        sums = np.asarray(proba.sum(axis=1)).ravel()
        if (not np.isfinite(proba.data).all() or (proba.data < 0).any()
                or (sums > 1 + 1e-3).any() or (sums <= 0).any()):
            raise ValueError(f"{type(self).__name__}: the {what} returned a sparse "
                             "predict_proba that holds no probabilities: each row needs "
                             "finite, non-negative values summing to more than 0 and at most "
                             "1.")
        if list(teacher_classes) != list(self.classes_):
            position = {c: i for i, c in enumerate(self.classes_)}
            columns = np.array([position.get(c, -1) for c in teacher_classes])
            coo = proba.tocoo()
            keep = columns[coo.col] >= 0
            proba = sp.csr_matrix((coo.data[keep], (coo.row[keep], columns[coo.col][keep])),
                                  shape=(n_rows, len(self.classes_)))
        return proba

    def predict_topk(self, X, k=5):
        """The ``k`` most probable classes of each row, most probable first.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        k : int, default=5
            Classes per row (at most the number of classes).

        Returns
        -------
        classes : ndarray of shape (n_samples, k)
            Labels from ``classes_`` by decreasing :meth:`predict_proba`.
        """
        check_is_fitted(self, "student_")
        n_classes = len(self.classes_)
        if (not isinstance(k, numbers.Integral) or isinstance(k, (bool, np.bool_))
                or not 1 <= k <= n_classes):
            raise param_error(self, "k", k, f"an int in [1, {n_classes}], the number of classes")
        X = self._check_predict_X(X)
        n = _num_samples(X)
        out = np.empty((n, k), dtype=self.classes_.dtype)
        for start in range(0, n, TEACHER_CHUNK):
            rows = X[start:start + TEACHER_CHUNK]
            scores = torch.as_tensor(self._student_says("predict_log_proba", rows))
            top = torch.topk(scores, k, dim=1).indices.numpy()
            out[start:start + len(top)] = self.classes_[top]
        return out


def _top_k(proba, k):
    """``(index, proba)`` of the ``k`` largest values of each row of ``proba`` (dense, or a
    CSR matrix whose stored values are the candidates), indices increasing along each row,
    ``-1`` (probability 0) padding rows of a sparse matrix with fewer stored values."""
    n = proba.shape[0]
    if sp.issparse(proba):
        counts = np.diff(proba.indptr)
        width = max(k, int(counts.max(initial=0)))
        cols = np.full((n, width), -1, dtype=np.int64)
        vals = np.zeros((n, width))
        rows = np.repeat(np.arange(n), counts)
        place = np.arange(proba.nnz) - np.repeat(proba.indptr[:-1], counts)
        cols[rows, place], vals[rows, place] = proba.indices, proba.data
    else:
        cols = np.broadcast_to(np.arange(proba.shape[1]), proba.shape)
        vals = np.asarray(proba)
    if vals.shape[1] > k:
        keep = np.argpartition(-vals, k - 1, axis=1)[:, :k]
        cols = np.take_along_axis(cols, keep, 1)
        vals = np.take_along_axis(vals, keep, 1)
    order = np.argsort(cols, axis=1, kind="stable")
    return np.take_along_axis(cols, order, 1), np.take_along_axis(vals, order, 1)


class _TrainingNet(nn.Module):
    """The student's trunk, and its linear head's parameters as they are: the loss computes
    the logits of the classes it needs only. In eval mode (validation batches, the engine's
    check of the trained network) the outputs also hold the full logits, as the deployed
    network predicts them, so that logits overflowing float32 are seen."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        head = self.network.head
        features = self.network.features(x)
        out = {"features": features, "weight": head.weight, "bias": head.bias}
        if not self.training:
            out["logits"] = head(features)
        return out


class _SampledSoftmaxObjective(Objective):
    """The sampled softmax's plug-ins: the student's features and head parameters as its
    training outputs, and per batch its labels, teacher top-k (looked up by row number) and
    the negatives drawn from ``q`` with their ``log(m q)``."""

    def __init__(self, distiller, labels, index, proba, frequency):
        super().__init__(SampledSoftmaxLoss(distiller.correction, distiller.alpha,
                                            reduction="none"), fields=("index",))
        self.distiller = distiller
        self.n_classes = len(distiller.classes_)
        self.n_negatives = distiller.n_negatives
        self.sampler = distiller.sampler
        self.alpha = distiller.alpha
        self.tensors = {"labels": torch.as_tensor(labels, dtype=torch.int64)}
        if index is not None:
            self.tensors.update(index=torch.as_tensor(index),
                                proba=torch.as_tensor(proba, dtype=torch.float32))
        self.tensors["frequency"] = torch.as_tensor(frequency, dtype=torch.float32)
        self.device = torch.device("cpu")

    def build(self, module):
        d = self.distiller
        head = getattr(module, "head", None)
        if not isinstance(module, TrunkHeadNet) or not isinstance(head, nn.Linear):
            lacks = ", ".join(missing_members(module, TrunkHeadNet)) or (
                f"torch.nn.Linear head (its head is a {type(head).__name__})")
            raise param_error(d, "student", d.student,
                              "a student whose network has a trunk and a torch.nn.Linear head "
                              "(skdistill.base.TrunkHeadNet), such as MLPStudent or "
                              f"CNNStudent; its {type(module).__name__} has no {lacks}",
                              TypeError)
        return _TrainingNet(module)

    def deploy(self, module):
        return module.network if isinstance(module, _TrainingNet) else module

    def _on(self, device):
        """The per-row tensors, on ``device`` (copied there once)."""
        if device != self.device:
            self.tensors = {name: t.to(device) for name, t in self.tensors.items()}
            self.device = device
        return self.tensors

    def batch_targets(self, X, rows, training):
        tensors = self._on(X.device)
        index = rows["index"].to(X.device)
        target = {"y": tensors["labels"][index]}
        if "index" in tensors:
            target["teacher_index"] = tensors["index"][index]
            target["teacher_proba"] = tensors["proba"][index]
        target["negatives"], target["log_q"] = self._negatives(target, tensors, X.device)
        return target

    def _negatives(self, target, tensors, device):
        """``(negatives, log(m q))`` of one batch: every class once (no correction) when
        ``n_negatives >= L - 1``, else ``m`` draws from ``q`` with replacement."""
        L, m = self.n_classes, self.n_negatives
        if m >= L - 1:
            return torch.arange(L, device=device), torch.zeros(L, device=device)
        if self.sampler == "uniform":
            negatives = torch.randint(L, (m,), device=device)
            return negatives, torch.full((m,), math.log(m / L), device=device)
        if self.sampler == "frequency":
            q = tensors["frequency"]
        else:
            index, proba = target["teacher_index"], target["teacher_proba"]
            valid = index >= 0
            share = torch.where(valid, proba, 0.0)
            share = share / share.sum(1, keepdim=True).clamp_min(torch.finfo(share.dtype).tiny)
            q = torch.zeros(L, device=device).index_add_(
                0, index.clamp_min(0).reshape(-1), share.reshape(-1) / len(index))
            q = 0.5 * q + 0.5 / L
        negatives = torch.multinomial(q, m, replacement=True)
        return negatives, torch.log(m * q[negatives])

    def target_proba(self, rows, y, n_classes):
        """Labels one-hot, mixed with the teacher's renormalised top-k by ``alpha`` (rows
        without labels: the top-k alone): what the full softmax learns towards."""
        labels = self.tensors["labels"].cpu().numpy()[rows]
        out = np.zeros((len(rows), n_classes), dtype=np.float32)
        labelled = labels >= 0
        out[np.flatnonzero(labelled), labels[labelled]] = 1.0 - self.alpha
        if "index" in self.tensors and (self.alpha > 0 or not labelled.all()):
            index = self.tensors["index"].cpu().numpy()[rows]
            proba = self.tensors["proba"].cpu().numpy()[rows].astype(np.float64)
            proba /= proba.sum(1, keepdims=True)
            share = np.where(labelled, self.alpha, 1.0)[:, None] * proba
            valid = index >= 0
            np.add.at(out, (np.nonzero(valid)[0], index[valid]), share[valid])
        return out
