"""The skorch ``NeuralNet`` subclass that trains students: non-finite losses and Ctrl-C, once."""
import torch
from skorch import NeuralNet

from ._interrupt import user_interrupted


class NonFiniteLossError(ArithmeticError):
    """A training loss became NaN or infinite; raised before the optimizer applies it."""

    def __init__(self, value, epoch, batch):
        super().__init__(f"training loss {value} at epoch {epoch}, batch {batch}")
        self.value, self.epoch, self.batch = value, epoch, batch


class StudentNet(NeuralNet):
    """``NeuralNet`` that refuses to train on a non-finite loss and remembers an interrupt.

    skorch stops the epoch loop on Ctrl-C and returns as if training had finished; the
    estimator that owns the net needs to know, so ``interrupted_`` records it (the policy
    itself lives in :mod:`skdistill._interrupt`). A NaN or infinite minibatch loss raises
    :class:`NonFiniteLossError` before the optimizer step, so the parameters keep their last
    finite values and the owner can name the likely cause.
    """

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # EarlyStopping also stops skorch with a KeyboardInterrupt; only a real Ctrl-C
            # interrupts the owner's fit.
            self.interrupted_ = user_interrupted()
            raise

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        loss = step["loss"]
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(float(loss.detach()), len(self.history),
                                     len(self.history[-1]["batches"]))
        return step


def non_finite_problem(module, X_sample):
    """What is non-finite about a trained ``module``: a parameter, or its outputs on a sample.

    Returns a description, or None when parameters and outputs on ``X_sample`` are finite.
    A last optimizer step can leave finite but huge weights whose outputs overflow float32,
    so the outputs are checked as well as the parameters.
    """
    for name, param in module.named_parameters():
        if not torch.isfinite(param).all():
            return f"parameter {name} is NaN or inf after training"
    device = next(module.parameters()).device
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(X_sample.to(device))
    module.train(was_training)
    outputs = out.values() if isinstance(out, dict) else [out]
    if not all(torch.isfinite(o).all() for o in outputs):
        return "the trained network outputs NaN or inf on the training data"
    return None


def divergence_error(owner, what, lr, x_scale):
    """The error for a diverged training run, naming the likely cause and a safer setting.

    Parameters
    ----------
    owner : estimator
    what : str
        What went wrong, e.g. ``"the loss became nan at epoch 3, batch 7"``.
    lr : float
        The learning rate in use.
    x_scale : float
        ``max |X|`` of the training inputs.
    """
    name = type(owner).__name__
    # A tenth of a huge rate diverges too; Adam's 1e-3 is the usual safe start.
    lr_hint = (f"the learning rate lr={lr:g} is probably too large "
               f"(try lr={min(lr / 10, 1e-3):g})")
    data_hint = (f"the inputs are badly scaled (max |X| = {x_scale:.3g}; standardise them, "
                 "e.g. with sklearn.preprocessing.StandardScaler)")
    hints = [data_hint, lr_hint] if x_scale > 1e4 else [lr_hint, data_hint]
    return ValueError(f"{name}: training diverged: {what}; {hints[0]}, or {hints[1]}.")


__all__ = ["StudentNet", "NonFiniteLossError", "divergence_error", "non_finite_problem"]
