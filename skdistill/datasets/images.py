"""Image benchmarks (MNIST, Fashion-MNIST from IDX files) and the GPED occlusion transform."""
import gzip
import numbers
import struct

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from ._base import _check_choice, _check_common, _find_file, _finish

__all__ = ["load_mnist", "load_fashion_mnist", "occlude"]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

MNIST_DESCR = """MNIST handwritten digits (LeCun, Cortes & Burges; LeCun et al., 1998, Proc. IEEE
86(11)). 28x28 grey-level images of the digits 0-9: 60,000 training and 10,000 test images (the
official split). Licence: not stated by LeCun's page; Keras documents CC BY-SA 3.0.
"""

FASHION_DESCR = """Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017, arXiv:1708.07747; MIT licence,
Zalando Research). 28x28 grey-level images of 10 kinds of clothing: 60,000 training and 10,000
test images, 6,000 and 1,000 per class.
"""

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot",
]


def _read_idx(path):
    """Read an IDX file of unsigned bytes (gzipped or not) into an array of its shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != np.prod(shape):
        raise ValueError(f"{path} holds {data.size} values, its header says {shape}: truncated?")
    return data.reshape(shape)


def _load_idx(func, dataset, subset, data_home, download_if_missing, return_X_y, as_frame,
              target_names, descr):
    _check_choice(func, "subset", subset, {"train", "test", "all"})
    _check_common(func, data_home, download_if_missing, return_X_y, as_frame)
    splits = ["train", "test"] if subset == "all" else [subset]
    images, labels = [], []
    for split in splits:
        # A split needs both files, so look for both before reading either.
        paths = [
            _find_file(func, dataset, name, [name, name.removesuffix(".gz")], data_home,
                       download_if_missing)
            for name in IDX_FILES[split]
        ]
        images.append(_read_idx(paths[0]))
        labels.append(_read_idx(paths[1]))
        if len(images[-1]) != len(labels[-1]):
            raise ValueError(f"{func}: {paths[0]} has {len(images[-1])} images but {paths[1]} "
                             f"has {len(labels[-1])} labels.")
    is_test = np.concatenate([np.full(len(y), s == "test") for y, s in zip(labels, splits)])
    pixels = np.concatenate(images)
    n, height, width = pixels.shape
    data = pixels.reshape(n, height * width).astype(np.float32) / np.float32(255)
    target = np.concatenate(labels).astype(np.int64)
    feature_names = [f"pixel_{i}" for i in range(height * width)]
    bunch = Bunch(data=data, target=target, images=data.reshape(n, height, width),
                  feature_names=feature_names, target_names=np.asarray(target_names),
                  is_test=is_test, frame=None, DESCR=descr)
    if as_frame:
        bunch.data = pd.DataFrame(data, columns=feature_names)
        bunch.target = pd.Series(target, name="label")
        bunch.frame = pd.concat([bunch.data, bunch.target], axis=1)
    return _finish(bunch, return_X_y)


_IDX_DOC = """
    Parameters
    ----------
    subset : {{"train", "test", "all"}}, default="train"
        Which official split to load: 60,000 training or 10,000 test images, or all 70,000
        (training first; ``is_test`` tells them apart).
    data_home : str or path-like, default=None
        Data folder; ``None`` means ``$SKDISTILL_DATA``, else ``~/skdistill_data``
        (see :func:`get_data_home`).
    download_if_missing : bool, default=False
        If True, download a missing file from {source}.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` (flat ``data``) instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a DataFrame of the 784 pixel columns, ``target`` a Series and
        ``frame`` holds both; ``images`` stays an array.

    Returns
    -------
    data : Bunch
        ``data``: float32 array (n, 784), pixels scaled to [0, 1], rows in file order.
        ``images``: the same values as (n, 28, 28) (a view of ``data``, as in
        :func:`sklearn.datasets.load_digits`). ``target``: int64 class in 0-9.
        ``target_names``, ``feature_names`` (``pixel_0`` ...), ``is_test`` (bool per row),
        ``frame`` (None unless ``as_frame``), ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DataFileNotFoundError
        If a file is missing and ``download_if_missing`` is False; the message lists the
        folders searched and where to get the file.
"""


def load_mnist(*, subset="train", data_home=None, download_if_missing=False, return_X_y=False,
               as_frame=False):
    return _load_idx("load_mnist", "mnist", subset, data_home, download_if_missing, return_X_y,
                     as_frame, np.arange(10), MNIST_DESCR)


load_mnist.__doc__ = """Load MNIST handwritten digits from the original IDX files.

    Reads ``mnist/train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (un-gzipped copies without
    the ``.gz`` are read too) from the data folder (see :func:`get_data_home`).
""" + _IDX_DOC.format(source="a mirror of LeCun's files (ossci-datasets.s3.amazonaws.com), "
                             "checked against the published checksums") + """
    Examples
    --------
    >>> from skdistill.datasets import load_mnist
    >>> mnist = load_mnist(subset="test")  # doctest: +SKIP
    >>> mnist.data.shape, mnist.images.shape  # doctest: +SKIP
    ((10000, 784), (10000, 28, 28))
"""


def load_fashion_mnist(*, subset="train", data_home=None, download_if_missing=False,
                       return_X_y=False, as_frame=False):
    return _load_idx("load_fashion_mnist", "fashion-mnist", subset, data_home,
                     download_if_missing, return_X_y, as_frame, FASHION_CLASSES, FASHION_DESCR)


load_fashion_mnist.__doc__ = """Load Fashion-MNIST (Zalando clothing images) from IDX files.

    Reads the four files named as in MNIST (``train-images-idx3-ubyte.gz`` ...) from
    ``fashion-mnist/`` in the data folder, then from ``/usr/share/datasets/fashion-mnist``,
    where Debian's package ``dataset-fashion-mnist`` installs them
    (``apt-get install dataset-fashion-mnist``). ``SKDISTILL_SYSTEM_DATA=0`` in the
    environment skips that system folder, so only the data folder is read.
""" + _IDX_DOC.format(source="Zalando's server (fashion-mnist.s3-website.eu-central-1."
                             "amazonaws.com), checked against the published MD5") + """
    Examples
    --------
    >>> from skdistill.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((10000, 784), dtype('float32'))
"""


def occlude(X, mask_size, random_state=None):
    """Set one random ``mask_size`` x ``mask_size`` square of each image to 0.

    The occlusion of GPED (Vadera, Jalaian & Marlin): each image gets its own square, placed
    uniformly at random wholly inside the image, and every channel is masked at the same place.

    Parameters
    ----------
    X : array-like of shape (n, H, W), (n, C, H, W) or (n, H*W)
        Images. A 2-d array is read as flat square images (H = W = sqrt of its width).
    mask_size : int
        Side of the square, in pixels, from 0 (no occlusion) to min(H, W).
    random_state : int, RandomState instance or None, default=None
        Seed or generator for the positions of the squares.

    Returns
    -------
    X_occluded : ndarray
        A copy of ``X``, same shape and dtype, with the squares set to 0.

    References
    ----------
    Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for Deep
    Neural Networks. UAI 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.datasets import occlude
    >>> X = occlude(np.ones((2, 28, 28)), mask_size=14, random_state=0)
    >>> (X == 0).sum(axis=(1, 2)).tolist()
    [196, 196]
    """
    X = np.array(X, copy=True)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"occlude: a 2-d X must hold flat square images, but its width "
                             f"{X.shape[1]} is not a square number.")
        images = X.reshape(X.shape[0], 1, side, side)
    elif X.ndim in (3, 4):
        images = X.reshape(X.shape[0], -1, *X.shape[-2:])
    else:
        raise ValueError(f"occlude: X must have shape (n, H, W), (n, C, H, W) or (n, H*W), "
                         f"got shape {X.shape}.")
    n, _, height, width = images.shape
    if not isinstance(mask_size, numbers.Integral) or isinstance(mask_size, bool):
        raise TypeError(f"occlude: mask_size must be an int, got {mask_size!r}.")
    if not 0 <= mask_size <= min(height, width):
        raise ValueError(f"occlude: mask_size must be in [0, {min(height, width)}] for "
                         f"{height}x{width} images, got {mask_size!r}.")
    rng = check_random_state(random_state)
    top = rng.randint(0, height - mask_size + 1, size=n)
    left = rng.randint(0, width - mask_size + 1, size=n)
    rows = np.arange(height)
    cols = np.arange(width)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + mask_size)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + mask_size)
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    images[np.broadcast_to(mask[:, None], images.shape)] = 0
    return images.reshape(X.shape)
