"""Where data files live, how a missing one is reported, and how one is downloaded and verified.

A file is looked for in ``<data_home>/<dataset>/`` (see :func:`get_data_home`), then in the
system-wide folders of :data:`SYSTEM_FOLDERS` (``/usr/share/datasets/fashion-mnist``, where
Debian's ``dataset-fashion-mnist`` installs Fashion-MNIST). Setting the environment variable
``SKDISTILL_SYSTEM_DATA=0`` switches the system folders off, so that only ``data_home`` is read:
tests and examples use it to behave the same on a fresh machine as on one with OS data packages.
"""
import hashlib
import numbers
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["get_data_home", "DataFileNotFoundError", "ChecksumError"]

ENV_VAR = "SKDISTILL_DATA"
# "0" (or false/no/off) skips SYSTEM_FOLDERS; unset, empty or "1" (true/yes/on) searches them.
SYSTEM_ENV_VAR = "SKDISTILL_SYSTEM_DATA"
_OFF = {"0", "false", "no", "off"}
_ON = {"", "1", "true", "yes", "on"}

# Folder for each dataset below ``data_home``; also the key of BASE_URLS and CHECKSUMS.
# Base URL of each dataset's official source, ``None`` where there is no public download.
# Tests point an entry at a local server; users can point one at a mirror.
BASE_URLS = {
    "heloc": None,
    "adult": "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/",
    "magic": "https://archive.ics.uci.edu/ml/machine-learning-databases/magic/",
    "higgs": "https://archive.ics.uci.edu/ml/machine-learning-databases/00280/",
    # LeCun's own site no longer serves the files reliably; this is the mirror torchvision uses.
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}

# Checksums ("algorithm:hexdigest") of the remote files, as downloaded. SHA-256 values are those
# in shared/data/README.md (which match UCI's and LeCun's published files). Where only the
# source's own MD5 is published (MNIST training images, Fashion-MNIST) that is what we check.
# A file missing here has no checksum we know (magic04.data, HIGGS.csv.gz): it is downloaded
# unverified rather than checked against a made-up value.
CHECKSUMS = {
    ("adult", "adult.data"):
        "sha256:5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    ("adult", "adult.test"):
        "sha256:a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    ("mnist", "train-images-idx3-ubyte.gz"): "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ("mnist", "train-labels-idx1-ubyte.gz"):
        "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ("mnist", "t10k-images-idx3-ubyte.gz"):
        "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ("mnist", "t10k-labels-idx1-ubyte.gz"):
        "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ("fashion-mnist", "train-images-idx3-ubyte.gz"): "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ("fashion-mnist", "train-labels-idx1-ubyte.gz"): "md5:25c81989df183df01b3e8a0aad5dffbe",
    ("fashion-mnist", "t10k-images-idx3-ubyte.gz"): "md5:bef4ecab320f06d8554ea6380940ec79",
    ("fashion-mnist", "t10k-labels-idx1-ubyte.gz"): "md5:bb300cfdad3c16e7a12a480ee83cd310",
}

# Folders searched after ``data_home/<dataset>``: system-wide copies from OS packages.
# ``SKDISTILL_SYSTEM_DATA=0`` skips them.
SYSTEM_FOLDERS = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],  # Debian dataset-fashion-mnist
}

# Extra advice for a missing file, beyond "download_if_missing=True".
HINTS = {
    "heloc": (
        "FICO HELOC has no public download: register for the FICO Explainable Machine Learning "
        "Challenge (community.fico.com/s/explainable-machine-learning-challenge) and place "
        "heloc_dataset_v1.csv there yourself."
    ),
    "fashion-mnist": (
        "On Debian/Ubuntu, `apt-get install dataset-fashion-mnist` installs the files in "
        "/usr/share/datasets/fashion-mnist."
    ),
}


class DataFileNotFoundError(FileNotFoundError):
    """A data file is in none of the folders searched, and was not downloaded."""


class ChecksumError(OSError):
    """A downloaded file does not match its known checksum; the partial file was deleted."""


def get_data_home(data_home=None):
    """Return the folder that skdistill reads data files from.

    The folder is, in order of precedence: the ``data_home`` argument, the ``SKDISTILL_DATA``
    environment variable, ``~/skdistill_data``. Each dataset has a subfolder of its own (for
    example ``adult/adult.data.gz``). The folder is not created here; a download creates it.

    A file missing there is then looked for in system-wide folders, where an OS package may
    have installed it (``/usr/share/datasets/fashion-mnist`` for Debian's
    ``dataset-fashion-mnist``). Set the environment variable ``SKDISTILL_SYSTEM_DATA=0`` (or
    ``false``, ``no``, ``off``) to skip them and read ``data_home`` only.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use. ``None`` falls back to ``SKDISTILL_DATA``, then ``~/skdistill_data``.
        A leading ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path
        The data folder.

    Examples
    --------
    >>> from skdistill.datasets import get_data_home
    >>> str(get_data_home("/tmp/my_data"))
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or "~/skdistill_data"
    elif not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(
            f"get_data_home: data_home must be a str or path-like, got {data_home!r}."
        )
    return Path(data_home).expanduser()


def _system_folders_enabled():
    """Whether ``SKDISTILL_SYSTEM_DATA`` lets the loaders search :data:`SYSTEM_FOLDERS`."""
    value = os.environ.get(SYSTEM_ENV_VAR, "").strip().lower()
    if value not in _ON | _OFF:
        raise ValueError(
            f"the environment variable {SYSTEM_ENV_VAR} must be 0 (or false, no, off) to skip "
            f"the system data folders, or 1 (or true, yes, on, empty) to search them; got "
            f"{os.environ[SYSTEM_ENV_VAR]!r}."
        )
    return value in _ON


def _search_folders(dataset, data_home):
    system = SYSTEM_FOLDERS.get(dataset, []) if _system_folders_enabled() else []
    return [get_data_home(data_home) / dataset, *system]


def _find_file(func, dataset, remote_name, local_names, data_home, download_if_missing):
    """Path to the first of ``local_names`` found; else download ``remote_name``, or raise.

    ``local_names`` lists the names a file may have on disk (``adult.data.gz`` or the UCI
    original ``adult.data``); ``remote_name`` is the one file the source serves.
    """
    folders = _search_folders(dataset, data_home)
    for folder in folders:
        for name in local_names:
            if (folder / name).is_file():
                return folder / name
    base_url = BASE_URLS[dataset]
    if download_if_missing and base_url is not None:
        return _download(
            base_url + remote_name, folders[0] / remote_name, CHECKSUMS.get((dataset, remote_name))
        )
    looked = "\n".join(f"  {folder}" for folder in folders)
    if SYSTEM_FOLDERS.get(dataset) and not _system_folders_enabled():
        looked += f"\n  (not the system folders: {SYSTEM_ENV_VAR} switches them off)"
    how = [HINTS[dataset]] if dataset in HINTS else []
    if base_url is not None:
        how.insert(0, (
            f"Pass download_if_missing=True to download it from {base_url + remote_name} "
            f"into {folders[0]}, or place the file there yourself."
        ))
    raise DataFileNotFoundError(
        f"{func}: data file {' or '.join(local_names)} not found. Looked in:\n{looked}\n"
        f"(data_home is the data_home argument, else ${ENV_VAR}, else ~/skdistill_data.)\n"
        + " ".join(how)
    )


def _file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url, path, checksum=None):
    """Download ``url`` to ``path`` through a temporary file, verifying ``checksum`` if given.

    The file only appears at ``path`` (by an atomic rename) once complete and verified, so an
    interrupted or corrupt download never leaves a file that a later load would trust.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    algorithm, expected = checksum.split(":") if checksum else ("sha256", None)
    digest = hashlib.new(algorithm)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except urllib.error.URLError as exc:
                raise OSError(f"could not download {url}: {exc}") from exc
        if expected is not None and digest.hexdigest() != expected:
            raise ChecksumError(
                f"{url}: {algorithm} checksum mismatch, expected {expected}, got "
                f"{digest.hexdigest()}; the download was deleted. Try again, or fetch the file "
                f"from another copy of the dataset."
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_choice(func, name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{func}: {name} must be one of {sorted(options)}, got {value!r}.")


def _check_bool(func, name, value):
    if not isinstance(value, (bool, numbers.Integral)) or value not in (0, 1):
        raise TypeError(f"{func}: {name} must be a bool, got {value!r}.")


def _check_int(func, name, value, low=None, high=None, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{func}: {name} must be an int, got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{func}: {name} must be an int in {bounds}, got {value!r}.")


def _check_common(func, data_home, download_if_missing, return_X_y, as_frame):
    if data_home is not None and not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(f"{func}: data_home must be a str or path-like, got {data_home!r}.")
    _check_bool(func, "download_if_missing", download_if_missing)
    _check_bool(func, "return_X_y", return_X_y)
    _check_bool(func, "as_frame", as_frame)


def _finish(bunch, return_X_y):
    """Return ``(data, target)`` or the bunch, as sklearn's loaders do."""
    return (bunch.data, bunch.target) if return_X_y else bunch
