"""The one policy of every estimator's ``fit`` for Ctrl-C and for errors.

``@fit_policy`` on a ``fit`` method:

- a ``fit`` starts afresh: the previous fit's attributes are removed first (unless the
  estimator continues its own state, e.g. ``SGLDTeacher(warm_start=True)``), so no part of an
  old fit can be mistaken for this one's;
- an error leaves the estimator unfitted, never half-fitted;
- an interrupt (``KeyboardInterrupt``) stops the whole ``fit``, not only the ensemble member,
  fold or epoch that was running. The estimator's ``_salvage()`` keeps what this ``fit`` learnt
  where that is usable (it reads ``self._fit_progress``, a dict the ``fit`` fills as it goes):
  usable, ``fit`` warns once (``RuntimeWarning``) saying what was kept and returns ``self``;
  nothing usable, the estimator is unfitted, ``fit`` warns once and the ``KeyboardInterrupt``
  propagates (the script stops, as the user asked).

``@partial_fit_policy`` on a ``partial_fit`` method: a call continues the fitted state; one
that fails or is interrupted leaves the estimator as it was before the call (unfitted before
the first), through the estimator's ``_rollback()``, and its error or interrupt propagates.

Estimators fitted inside another estimator's ``fit`` (members, fold teachers, students) do their
own salvage silently and re-raise, so only the outermost estimator warns and decides.

skorch callbacks stop training by raising ``KeyboardInterrupt`` too (``EarlyStopping``): that
is a normal end of training, not the user's Ctrl-C. To tell them apart, the outermost fit in
the main thread wraps the SIGINT handler and records a real Ctrl-C (:func:`user_interrupted`).
"""
import functools
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager

_local = threading.local()


def user_interrupted():
    """Whether the user pressed Ctrl-C (SIGINT) during the current outermost ``fit``."""
    return getattr(_local, "sigint", False)


@contextmanager
def _record_sigint():
    """In the main thread, note a SIGINT before the previous handler raises as usual."""
    _local.sigint = False
    previous = (signal.getsignal(signal.SIGINT)
                if threading.current_thread() is threading.main_thread() else None)
    if not callable(previous):
        # Not the main thread, or SIGINT ignored (SIG_IGN) or not handled from Python: Ctrl-C
        # cannot raise KeyboardInterrupt here, so there is nothing to record.
        yield
        return

    def handler(signum, frame):
        _local.sigint = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def unfit(estimator):
    """Remove the fitted (public, trailing-underscore) attributes: the estimator is unfitted."""
    for name in [n for n in vars(estimator) if n.endswith("_") and not n.startswith("_")]:
        delattr(estimator, name)


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def warn_user(message, category=UserWarning):
    """``warnings.warn`` pointing at the first caller outside skdistill (the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


@contextmanager
def _call_frame(estimator):
    """The frame of a guarded ``fit`` or ``partial_fit`` call, yielding whether it is nested
    in another one: a fresh ``estimator._fit_progress`` (removed at the end), the nesting
    depth, and on the outermost call the record of a real Ctrl-C (:func:`_record_sigint`)."""
    depth = getattr(_local, "depth", 0)
    estimator._fit_progress = {}
    _local.depth = depth + 1
    try:
        if depth:
            yield True
        else:
            with _record_sigint():
                yield False
    finally:
        _local.depth = depth
        del estimator._fit_progress


def fit_policy(fit):
    """Decorate a ``fit`` method with the policy above."""
    @functools.wraps(fit)
    def guarded(self, *args, **kwargs):
        if not self._continues_fit():
            unfit(self)
        with _call_frame(self) as nested:
            try:
                return fit(self, *args, **kwargs)
            except KeyboardInterrupt:
                kept = self._salvage()
                if kept is None:
                    unfit(self)
                if nested:
                    raise
                name = type(self).__name__
                if kept is None:
                    warn_user(f"{name}: fit interrupted before anything usable was learnt; "
                              f"{name} is left unfitted.", RuntimeWarning)
                    raise
                warn_user(f"{name}: fit interrupted; keeping {kept}. The estimator is fitted "
                          "and usable; fit again to train it fully.", RuntimeWarning)
                return self
            except BaseException:
                unfit(self)
                raise
    return guarded


def partial_fit_policy(partial_fit):
    """Decorate a ``partial_fit`` method: each call continues the fitted state.

    A call that fails or is interrupted leaves the estimator as it was before it: the
    estimator's ``_rollback()`` undoes what the call changed (it reads
    ``self._fit_progress``) and says what is kept, or returns None when the estimator was not
    fitted before the call (it is then left unfitted). The error, or the
    ``KeyboardInterrupt``, always propagates: unlike ``fit``, which returns what an
    interrupted fit learnt, a loop of ``partial_fit`` calls must stop where the user pressed
    Ctrl-C. The outermost call warns once (``RuntimeWarning``) what an interrupt kept.
    """
    @functools.wraps(partial_fit)
    def guarded(self, *args, **kwargs):
        with _call_frame(self) as nested:
            try:
                return partial_fit(self, *args, **kwargs)
            except BaseException as exc:
                kept = self._rollback()
                if kept is None:
                    unfit(self)
                if isinstance(exc, KeyboardInterrupt) and not nested:
                    name = type(self).__name__
                    warn_user(f"{name}: partial_fit interrupted; "
                              + (f"{name} is left unfitted." if kept is None
                                 else f"keeping {kept}."), RuntimeWarning)
                raise
    return guarded


class FitPolicyMixin:
    """Defaults of the hooks :func:`fit_policy` and :func:`partial_fit_policy` call: a fresh
    fit, nothing to salvage, nothing to roll back."""

    def _continues_fit(self):
        """Whether this ``fit`` continues the fitted state (warm start) instead of replacing it."""
        return False

    def _salvage(self):
        """On Ctrl-C: make the estimator usable from ``self._fit_progress`` and say what was
        kept, or return None when nothing usable was learnt."""
        return None

    def _rollback(self):
        """After a failed or interrupted ``partial_fit`` call: undo what it changed (from
        ``self._fit_progress``) and say what is kept, or return None when the estimator was
        not fitted before the call."""
        return None
