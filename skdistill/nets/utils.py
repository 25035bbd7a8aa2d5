"""Helpers over plain torch modules."""
from contextlib import contextmanager


@contextmanager
def eval_mode(module):
    """Run ``module`` in eval mode, then give every submodule back its own train/eval mode.

    A module already in eval mode throughout is left untouched, so that predictions from
    several threads at once with a fitted network (in eval mode) write nothing to it.

    Yields
    ------
    torch.nn.Module
        ``module`` itself, in eval mode inside the ``with`` block.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> with eval_mode(net):
    ...     net[1].training
    False
    >>> net[1].training
    True
    """
    training = [m for m in module.modules() if m.training]
    if training:
        module.eval()
    try:
        yield module
    finally:
        for m in training:
            m.training = True
