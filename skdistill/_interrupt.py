"""The one Ctrl-C policy of every estimator's ``fit``.

An interrupt (``KeyboardInterrupt``) stops the whole ``fit``, not only the ensemble member,
fold or epoch that was running. The estimator then keeps what it learnt where that is usable
and is left either fitted-and-usable or unfitted, never half-fitted:

- usable: ``fit`` warns once (``RuntimeWarning``) saying what was kept, and returns ``self``;
- nothing usable: the fitted attributes are removed, ``fit`` warns once saying so, and the
  ``KeyboardInterrupt`` propagates (the script stops, as the user asked).

Estimators fitted inside another estimator's ``fit`` (members, fold teachers, students) do
their own salvage silently and re-raise, so only the outermost estimator warns and decides.

skorch callbacks stop training by raising ``KeyboardInterrupt`` too (``EarlyStopping``): that
is a normal end of training, not the user's Ctrl-C. To tell them apart, the outermost fit in
the main thread wraps the SIGINT handler and records a real Ctrl-C (:func:`user_interrupted`).
"""
import signal
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


@contextmanager
def interrupt_policy(estimator, salvage):
    """Run the body of ``estimator.fit`` under the Ctrl-C policy.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted.
    salvage : callable
        Called on interrupt, with no argument. It leaves the estimator fitted-and-usable
        and returns a short description of what was kept ("the 2 members fitted so far"),
        or returns ``None`` when nothing is usable (the policy then unfits the estimator).
    """
    nested = getattr(_local, "depth", 0) > 0
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        if nested:
            yield
        else:
            with _record_sigint():
                yield
    except KeyboardInterrupt:
        kept = salvage()
        if kept is None:
            unfit(estimator)
        if nested:
            raise
        name = type(estimator).__name__
        if kept is None:
            warnings.warn(f"{name}: fit interrupted before anything usable was learnt; "
                          f"{name} is left unfitted.", RuntimeWarning, stacklevel=4)
            raise
        warnings.warn(f"{name}: fit interrupted; keeping {kept}. The estimator is fitted "
                      "and usable; fit again to train it fully.", RuntimeWarning,
                      stacklevel=4)
    finally:
        _local.depth -= 1
