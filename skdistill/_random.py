"""Random-state helpers shared by students, teachers and distillers."""
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state


@contextmanager
def seeded(seed, device="cpu"):
    """Run a block under a fixed torch seed without touching the caller's random state."""
    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def draw_seed(random_state):
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


__all__ = ["seeded", "draw_seed"]
