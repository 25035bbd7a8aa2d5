"""Loaders for the tabular benchmarks: FICO HELOC, UCI Adult, MAGIC gamma telescope, HIGGS."""
import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._base import _check_choice, _check_common, _check_int, _find_file, _finish

__all__ = ["load_heloc", "load_adult", "load_magic", "load_higgs"]

HELOC_DESCR = """FICO Home Equity Line of Credit (HELOC) data, FICO Explainable Machine Learning
Challenge (2018). 10,459 applicants x 23 integer features; target RiskPerformance, encoded
1 = "Bad" (5,459) and 0 = "Good" (5,000). Special codes -7, -8, -9 mark missing or inapplicable
values; 588 rows are all -9 ("no bureau record"). No open licence: research use only, and there
is no public download (register with FICO). There is no official split.
"""

ADULT_DESCR = """UCI Adult / Census Income (Becker & Kohavi, 1996; doi:10.24432/C5XW20; CC BY 4.0).
Official split: adult.data (train, 32,561 rows) and adult.test (test, 16,281 rows); 14 features
(6 numeric, 8 categorical; "?" is missing) and the target income, 1 = ">50K", 0 = "<=50K".
"""

MAGIC_DESCR = """UCI MAGIC Gamma Telescope (Bock, 2004; doi:10.24432/C52C8B; CC BY 4.0).
19,020 simulated Cherenkov-telescope events x 10 numeric image parameters; class g (gamma,
signal, target 0) or h (hadron, background, target 1). There is no official split.
"""

HIGGS_DESCR = """UCI HIGGS (Whiteson, 2014; doi:10.24432/C5V312; CC BY 4.0). 11,000,000 simulated
collision events x 28 features (21 low-level kinematic, 7 high-level derived); target 1 = signal
process (Higgs bosons), 0 = background. The last 500,000 rows are the usual test set.
"""

HELOC_TARGET = "RiskPerformance"

ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
# Category lists from adult.names, sorted, so that codes agree between the train and test files.
ADULT_CATEGORIES = {
    "workclass": sorted(
        "Private Self-emp-not-inc Self-emp-inc Federal-gov Local-gov State-gov Without-pay "
        "Never-worked".split()
    ),
    "education": sorted(
        "Bachelors Some-college 11th HS-grad Prof-school Assoc-acdm Assoc-voc 9th 7th-8th 12th "
        "Masters 1st-4th 10th Doctorate 5th-6th Preschool".split()
    ),
    "marital-status": sorted(
        "Married-civ-spouse Divorced Never-married Separated Widowed Married-spouse-absent "
        "Married-AF-spouse".split()
    ),
    "occupation": sorted(
        "Tech-support Craft-repair Other-service Sales Exec-managerial Prof-specialty "
        "Handlers-cleaners Machine-op-inspct Adm-clerical Farming-fishing Transport-moving "
        "Priv-house-serv Protective-serv Armed-Forces".split()
    ),
    "relationship": sorted(
        "Wife Own-child Husband Not-in-family Other-relative Unmarried".split()
    ),
    "race": sorted("White Asian-Pac-Islander Amer-Indian-Eskimo Other Black".split()),
    "sex": ["Female", "Male"],
    "native-country": sorted(
        "United-States Cambodia England Puerto-Rico Canada Germany Outlying-US(Guam-USVI-etc) "
        "India Japan Greece South China Cuba Iran Honduras Philippines Italy Poland Jamaica "
        "Vietnam Mexico Portugal Ireland France Dominican-Republic Laos Ecuador Taiwan Haiti "
        "Columbia Hungary Guatemala Nicaragua Scotland Thailand Yugoslavia El-Salvador "
        "Trinadad&Tobago Peru Hong Holand-Netherlands".split()
    ),
}
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country",
]
ADULT_TARGET = "income"

MAGIC_COLUMNS = [
    "fLength", "fWidth", "fSize", "fConc", "fConc1", "fAsym", "fM3Long", "fM3Trans", "fAlpha",
    "fDist",
]

HIGGS_COLUMNS = [
    "lepton_pT", "lepton_eta", "lepton_phi", "missing_energy_magnitude", "missing_energy_phi",
    *[f"jet{j}_{v}" for j in range(1, 5) for v in ("pt", "eta", "phi", "b-tag")],
    "m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb",
]


def _bunch(features, target, target_names, descr, as_frame, return_X_y, target_column,
           dtype=np.float64, **extra):
    """Assemble a Bunch from a feature DataFrame and an integer target."""
    target = pd.Series(np.asarray(target, dtype=np.int64), name=target_column,
                       index=features.index)
    if as_frame:
        bunch = Bunch(data=features, target=target, frame=pd.concat([features, target], axis=1))
    else:
        categorical = features.columns[features.dtypes == "category"]
        numeric = features.copy() if len(categorical) else features
        for column in categorical:
            numeric[column] = numeric[column].cat.codes.astype(np.float64).replace(-1, np.nan)
        bunch = Bunch(data=numeric.to_numpy(dtype=dtype), target=target.to_numpy(),
                      frame=None)
    bunch.update(feature_names=list(features.columns), target_names=np.asarray(target_names),
                 DESCR=descr, **extra)
    return _finish(bunch, return_X_y)


def _encode_labels(func, path, labels, target_names, allow_missing=False):
    """Codes of ``labels`` in ``target_names`` (-1 if missing); an unknown one means a bad file."""
    labels = pd.Series(labels)
    codes = pd.Index(target_names).get_indexer(labels)
    unknown = (codes < 0) & labels.notna().to_numpy()
    if unknown.any() or ((codes < 0).any() and not allow_missing):
        bad = sorted(set(labels[codes < 0].astype(str)))[:5]
        raise ValueError(f"{func}: {path} has unexpected values {bad}; expected {target_names}.")
    return codes


def load_heloc(*, data_home=None, download_if_missing=False, return_X_y=False, as_frame=False):
    """Load the FICO HELOC credit-risk data (10,459 rows, 23 features, binary target).

    Reads ``heloc/heloc_dataset_v1.csv`` from the data folder (see :func:`get_data_home`). FICO
    publishes no open download, so ``download_if_missing=True`` cannot fetch it: the error says
    how to obtain the file. Rows are returned as in the file, special codes (-7, -8, -9)
    included; there is no official train/test split.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Data folder; ``None`` means ``$SKDISTILL_DATA``, else ``~/skdistill_data``.
    download_if_missing : bool, default=False
        Accepted for symmetry with the other loaders; HELOC has no public download.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a DataFrame, ``target`` a Series and ``frame`` holds both.

    Returns
    -------
    data : Bunch
        ``data`` (10459, 23) float64 array (or DataFrame), ``target`` int64 with
        1 = "Bad" and 0 = "Good" (``target_names = ["Good", "Bad"]``), ``feature_names``,
        ``target_names``, ``frame`` (None unless ``as_frame``), ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DataFileNotFoundError
        If the file is not in the data folder.

    Examples
    --------
    >>> from skdistill.datasets import load_heloc
    >>> X, y = load_heloc(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, int(y.sum())  # doctest: +SKIP
    ((10459, 23), 5459)
    """
    func = "load_heloc"
    _check_common(func, data_home, download_if_missing, return_X_y, as_frame)
    path = _find_file(func, "heloc", "heloc_dataset_v1.csv", ["heloc_dataset_v1.csv"],
                      data_home, download_if_missing)
    features = pd.read_csv(path)
    target = _encode_labels(func, path, features.pop(HELOC_TARGET), ["Good", "Bad"])
    return _bunch(features, target, ["Good", "Bad"], HELOC_DESCR, as_frame, return_X_y,
                  HELOC_TARGET)


def _read_adult(path, is_test):
    frame = pd.read_csv(
        path, header=None, names=[*ADULT_COLUMNS, ADULT_TARGET], skipinitialspace=True,
        na_values="?", skiprows=1 if is_test else 0,  # adult.test opens with "|1x3 Cross validator"
        dtype={c: "object" for c in ADULT_CATEGORIES} | {ADULT_TARGET: "object"},
    )
    frame[ADULT_TARGET] = frame[ADULT_TARGET].str.rstrip(".")  # test labels read "<=50K."
    return frame


def load_adult(*, subset="all", data_home=None, download_if_missing=False, return_X_y=False,
               as_frame=False):
    """Load the UCI Adult census-income data with its official train/test split.

    Reads ``adult/adult.data.gz`` and ``adult/adult.test.gz`` (the UCI originals ``adult.data``
    and ``adult.test`` are read too). The first line of the test file is skipped, the ``.``
    ending its labels stripped and ``?`` read as missing.

    Parameters
    ----------
    subset : {"all", "train", "test"}, default="all"
        Which official split to load. ``"all"`` is the 48,842 training rows followed by the
        test rows (the OpenML "Adult" set); ``is_test`` tells them apart.
    data_home : str or path-like, default=None
        Data folder; ``None`` means ``$SKDISTILL_DATA``, else ``~/skdistill_data``.
    download_if_missing : bool, default=False
        If True, download a missing file from the UCI archive (checked by SHA-256).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a DataFrame with ``category`` columns (missing = NaN), ``target``
        a Series and ``frame`` holds both.

    Returns
    -------
    data : Bunch
        ``data``: without ``as_frame``, a float64 array (n, 14) in which each categorical
        column holds its code in ``categories[column]`` (NaN where missing) -- use
        ``as_frame=True`` and a ``OneHotEncoder`` for one-hot features. ``target``: int64,
        1 = ">50K", 0 = "<=50K". ``is_test``: bool array, True for rows from the official test
        file. Also ``feature_names``, ``target_names``, ``categories``, ``frame``, ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DataFileNotFoundError
        If a file is missing and ``download_if_missing`` is False.

    Examples
    --------
    >>> from skdistill.datasets import load_adult
    >>> adult = load_adult()  # doctest: +SKIP
    >>> train = ~adult.is_test  # doctest: +SKIP
    >>> adult.data[train].shape, adult.data[~train].shape  # doctest: +SKIP
    ((32561, 14), (16281, 14))
    """
    func = "load_adult"
    _check_choice(func, "subset", subset, {"all", "train", "test"})
    _check_common(func, data_home, download_if_missing, return_X_y, as_frame)
    splits = {"train": ["train"], "test": ["test"], "all": ["train", "test"]}[subset]
    frames = []
    for split in splits:
        stem = "adult.data" if split == "train" else "adult.test"
        path = _find_file(func, "adult", stem, [stem + ".gz", stem], data_home,
                          download_if_missing)
        frames.append(_read_adult(path, split == "test"))
    is_test = np.concatenate([np.full(len(f), s == "test") for f, s in zip(frames, splits)])
    features = pd.concat(frames, ignore_index=True)
    target = _encode_labels(func, path.parent, features.pop(ADULT_TARGET), ["<=50K", ">50K"])
    for column, categories in ADULT_CATEGORIES.items():
        codes = _encode_labels(func, path.parent, features[column], categories, allow_missing=True)
        features[column] = pd.Categorical.from_codes(codes, categories=categories)
    return _bunch(features, target, ["<=50K", ">50K"], ADULT_DESCR, as_frame, return_X_y,
                  ADULT_TARGET, is_test=is_test, categories=dict(ADULT_CATEGORIES))


def load_magic(*, data_home=None, download_if_missing=False, return_X_y=False, as_frame=False):
    """Load the UCI MAGIC gamma telescope data (19,020 rows, 10 features, classes g/h).

    Reads ``magic/magic04.data``: no header, the 10 numeric columns fLength, fWidth, fSize,
    fConc, fConc1, fAsym, fM3Long, fM3Trans, fAlpha, fDist and the class ``g`` or ``h``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Data folder; ``None`` means ``$SKDISTILL_DATA``, else ``~/skdistill_data``.
    download_if_missing : bool, default=False
        If True, download a missing file from the UCI archive (no checksum is known for it,
        so it is not verified).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a DataFrame, ``target`` a Series and ``frame`` holds both.

    Returns
    -------
    data : Bunch
        ``data`` (n, 10) float64, ``target`` int64 with 0 = "g" (gamma, signal) and
        1 = "h" (hadron), ``feature_names``, ``target_names = ["g", "h"]``, ``frame``,
        ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from skdistill.datasets import load_magic
    >>> X, y = load_magic(return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (19020, 10)
    """
    func = "load_magic"
    _check_common(func, data_home, download_if_missing, return_X_y, as_frame)
    path = _find_file(func, "magic", "magic04.data", ["magic04.data"], data_home,
                      download_if_missing)
    features = pd.read_csv(path, header=None, names=[*MAGIC_COLUMNS, "class"],
                           dtype={c: np.float64 for c in MAGIC_COLUMNS})
    target = _encode_labels(func, path, features.pop("class"), ["g", "h"])
    return _bunch(features, target, ["g", "h"], MAGIC_DESCR, as_frame, return_X_y, "class")


def load_higgs(*, n_rows=None, data_home=None, download_if_missing=False, return_X_y=False,
               as_frame=False):
    """Load the UCI HIGGS data (11,000,000 rows, 28 features), or its first ``n_rows`` rows.

    Reads ``higgs/HIGGS.csv.gz`` (or an uncompressed ``higgs/HIGGS.csv``): no header, the
    label first, then 28 features. Features are float32 to halve the 2.5 GB the full file
    takes in float64.

    Parameters
    ----------
    n_rows : int, default=None
        Read only the first ``n_rows`` rows; ``None`` reads all. The usual test set is the
        last 500,000 rows.
    data_home : str or path-like, default=None
        Data folder; ``None`` means ``$SKDISTILL_DATA``, else ``~/skdistill_data``.
    download_if_missing : bool, default=False
        If True, download the 2.6 GB file from the UCI archive (no checksum is known for it,
        so it is not verified).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a DataFrame, ``target`` a Series and ``frame`` holds both.

    Returns
    -------
    data : Bunch
        ``data`` (n, 28) float32, ``target`` int64 (1 = signal, 0 = background),
        ``feature_names``, ``target_names = ["background", "signal"]``, ``frame``, ``DESCR``.
    (data, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from skdistill.datasets import load_higgs
    >>> X, y = load_higgs(n_rows=1000, return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (1000, 28)
    """
    func = "load_higgs"
    _check_int(func, "n_rows", n_rows, low=1, allow_none=True)
    _check_common(func, data_home, download_if_missing, return_X_y, as_frame)
    path = _find_file(func, "higgs", "HIGGS.csv.gz", ["HIGGS.csv.gz", "HIGGS.csv"], data_home,
                      download_if_missing)
    features = pd.read_csv(path, header=None, names=["label", *HIGGS_COLUMNS], nrows=n_rows,
                           dtype=np.float32)
    target = _encode_labels(func, path, features.pop("label"), [0.0, 1.0])
    return _bunch(features, target, ["background", "signal"], HIGGS_DESCR, as_frame, return_X_y,
                  "label", dtype=np.float32)
