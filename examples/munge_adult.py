"""Growing the transfer set with MUNGE: synthetic census rows labelled by the teacher
===================================================================================

A student learns its teacher's function only where it is shown it: with few labelled rows,
it sees the teacher on few points. Bucilă, Caruana and Niculescu-Mizil (2006) grow the
transfer set with synthetic rows, which the teacher labels: MUNGE mixes each row with its
nearest neighbour (a nominal value is swapped with the neighbour's, a number drawn around
the neighbour's value). ``augment="munge"`` does it inside ``fit``, on the raw table: the
string and categorical columns stay strings and categories, missing values stay missing,
and the teacher and the student bring their own preprocessing.

The script distils a random forest into a small network from 3,000 labelled rows of UCI Adult
(``adult/adult.data.gz`` and ``adult/adult.test.gz`` in the data folder,
``$SKDISTILL_DATA``), with and without synthetic rows (MUNGE, and Gaussian noise for
comparison), and scores each student on Adult's test file. Without the files, a synthetic
census-like table stands in, and the script says so. About a minute of CPU time.
"""
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import resample

from skdistill import CrossFitDistiller, MLPStudent
from skdistill.augment import Munge
from skdistill.datasets import DataFileNotFoundError, get_data_home, load_adult


def census_like(n, seed=0):
    """A stand-in for Adult: numbers (NaN in one), strings, a category, a bool."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "age": rng.integers(17, 90, n),
        "hours-per-week": rng.normal(40, 12, n).clip(1, 99).round(),
        "education": rng.choice(["HS-grad", "Some-college", "Bachelors", "Masters"], n,
                                p=[0.45, 0.3, 0.18, 0.07]),
        "occupation": pd.Categorical(rng.choice(["Sales", "Craft", "Exec", "Service"], n)),
        "married": rng.random(n) < 0.45,
    })
    logit = (0.05 * (X["age"] - 40) + 0.04 * (X["hours-per-week"] - 40) - 1.5
             + X["education"].map({"HS-grad": 0.0, "Some-college": 0.3, "Bachelors": 1.0,
                                   "Masters": 1.5}) + 1.6 * X["married"]
             + np.where(X["occupation"] == "Exec", 0.8, 0.0))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X["hours-per-week"] = X["hours-per-week"].mask(rng.random(n) < 0.05)
    return X, y


try:
    adult = load_adult(as_frame=True)
    test = np.asarray(adult.is_test)
    X_train, y_train = adult.data[~test], np.asarray(adult.target)[~test]
    X_test, y_test = adult.data[test], np.asarray(adult.target)[test]
    print(f"UCI Adult from {get_data_home() / 'adult'}: {len(X_train)} train / "
          f"{len(X_test)} test rows")
except DataFileNotFoundError:
    X, y = census_like(12_000)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    print(f"UCI Adult not found in {get_data_home() / 'adult'} (see skdistill.datasets); "
          f"using a synthetic census-like table ({len(X)} rows)")
N_LABELLED, EPOCHS, TREES = 3000, 30, 100
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

if os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1":
    N_LABELLED, EPOCHS, TREES = 600, 3, 10
    X_test, y_test = X_test[:2000], y_test[:2000]
# sphinx_gallery_end_ignore

# Few labelled rows: a stratified sample of the training file.
X_train, y_train = resample(X_train, y_train, n_samples=N_LABELLED, replace=False,
                            stratify=y_train, random_state=0)
X_train = X_train.reset_index(drop=True)
numeric = [c for c in X_train.columns if pd.api.types.is_numeric_dtype(X_train[c])
           and not pd.api.types.is_bool_dtype(X_train[c])]
nominal = [c for c in X_train.columns if c not in numeric]


def encoder(scale):
    """Impute (and scale) the numbers, one-hot the rest (a missing category is its own)."""
    num = make_pipeline(SimpleImputer(strategy="median"), *([StandardScaler()] if scale else []))
    return ColumnTransformer([("num", num, numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), nominal)],
                             sparse_threshold=0.0)


teacher = make_pipeline(encoder(scale=False),
                        RandomForestClassifier(n_estimators=TREES, min_samples_leaf=5,
                                               random_state=0))
student = make_pipeline(encoder(scale=True),
                        MLPStudent(hidden_layer_sizes=(32,), max_epochs=EPOCHS,
                                   batch_size=256, lr=1e-3, random_state=0))

# What MUNGE draws: rows of the same kind, each a mix of a real row and its neighbour.
synthetic = Munge(p=0.5).sample(X_train, n_samples=3, random_state=0)
print("\nthree MUNGE rows (same columns and dtypes as the table):")
print(synthetic.to_string(), "\n")
assert synthetic.dtypes.to_dict() == X_train.dtypes.to_dict()

models = {
    "labels only": student,
    "distilled": CrossFitDistiller(teacher, student, n_folds=5, random_state=0),
    "distilled + MUNGE x4": CrossFitDistiller(teacher, student, n_folds=5, augment="munge",
                                              augment_size=4.0, random_state=0),
    "distilled + noise x4": CrossFitDistiller(teacher, student, n_folds=5,
                                              augment="gaussian", augment_size=4.0,
                                              random_state=0),
}
for name, model in models.items():
    model.fit(X_train, y_train)
    if name == "distilled":
        proba = model.teacher_.predict_proba(X_test)
        print(f"{'teacher (forest)':<22} AUC {roc_auc_score(y_test, proba[:, 1]):.4f}  "
              f"NLL {log_loss(y_test, proba):.4f}")
    proba = model.predict_proba(X_test)
    rows = N_LABELLED + getattr(model, "n_augmented_", 0)
    print(f"{name:<22} AUC {roc_auc_score(y_test, proba[:, 1]):.4f}  "
          f"NLL {log_loss(y_test, proba):.4f}  ({rows} rows for the student)")

# %%
# The synthetic rows are labelled by ``teacher_`` (fitted on all the labelled rows), through
# the calibration map when ``teacher_calibration`` is set; they weigh 1 in the student's
# loss. What they can add depends on how much better the teacher is than the student trained
# on the labels alone: here the forest is barely better, so the students differ little (and
# by as much from one seed to the next). ``augment_size`` (a
# multiple of the labelled rows) and ``Munge``'s ``p`` and ``s`` can be searched:
# ``GridSearchCV(CrossFitDistiller(..., augment=Munge()), {"augment_size": [1, 4],
# "augment__p": [0.2, 0.5]})``.
