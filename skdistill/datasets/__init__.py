"""Benchmark data loaders, image occlusion, and synthetic data with known Bayes probabilities.

Loaders read local files from :func:`get_data_home` (the ``data_home`` argument, else
``$SKDISTILL_DATA``, else ``~/skdistill_data``) and download only when asked
(``download_if_missing=True``). A file missing there is looked for in system-wide folders
where an OS package installs it (``/usr/share/datasets/fashion-mnist``, Debian's
``dataset-fashion-mnist``); ``SKDISTILL_SYSTEM_DATA=0`` in the environment skips those, so
that only ``data_home`` is read.
"""
from ._base import ChecksumError, DataFileNotFoundError, get_data_home
from .images import load_fashion_mnist, load_mnist, occlude
from .synthetic import make_gaussian_mixture
from .tabular import load_adult, load_heloc, load_higgs, load_magic

__all__ = [
    "get_data_home",
    "load_heloc",
    "load_adult",
    "load_magic",
    "load_higgs",
    "load_mnist",
    "load_fashion_mnist",
    "occlude",
    "make_gaussian_mixture",
    "DataFileNotFoundError",
    "ChecksumError",
]
