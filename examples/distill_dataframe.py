"""Distilling a table: a raw DataFrame in, a small pipeline out
==============================================================

A table with numeric, string, categorical and boolean columns, and missing values, goes to
the distiller as it is. The teacher, a gradient-boosted ensemble, reads the categories
natively and handles the missing values itself; the student is a
:class:`~sklearn.pipeline.Pipeline` with its own preprocessing (imputation, one-hot
encoding, scaling) ending in a small network. Nothing is encoded by hand, and each side
sees the data as it needs it.

With ``keep_teachers=False`` the fitted distiller keeps only what predicts, so its pickle is
about the size of the student's: the model to ship. The data are made up in the script (a
few thousand rows); it runs in a few seconds.
"""
import pickle

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from skdistill import CrossFitDistiller, MLPStudent

# A synthetic credit table: two numeric columns (with NaN), a string column, a categorical
# column (with NaN) and a boolean one.
rng = np.random.default_rng(0)
n = 3000
X = pd.DataFrame({
    "income": rng.lognormal(10, 0.5, n),
    "age": rng.integers(18, 80, n).astype(float),
    "education": rng.choice(["HS", "BSc", "MSc", "PhD"], n, p=[0.4, 0.35, 0.2, 0.05]),
    "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], n)),
    "owns_home": rng.random(n) < 0.4,
})
logit = (1.2 * (np.log(X["income"]) - 10) + 0.03 * (X["age"] - 45)
         + X["education"].map({"HS": -0.8, "BSc": 0.0, "MSc": 0.5, "PhD": 0.9})
         + 0.7 * X["owns_home"] + np.where(X["region"] == "south", -0.6, 0.2))
y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
X.loc[rng.random(n) < 0.1, "income"] = np.nan
X.loc[rng.random(n) < 0.1, "region"] = np.nan
print(X.dtypes.to_string(), "\n")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

# The teacher reads ``region`` as a native category and ``education`` through an ordinal
# code; HistGradientBoosting handles the missing values itself.
teacher = make_pipeline(
    ColumnTransformer([("education", OrdinalEncoder(), ["education"])],
                      remainder="passthrough",
                      verbose_feature_names_out=False).set_output(transform="pandas"),
    HistGradientBoostingClassifier(categorical_features=["education", "region"],
                                   max_iter=100, random_state=0))

# The student has its own preprocessing: impute and scale the numbers, one-hot the rest.
numeric = make_pipeline(SimpleImputer(), StandardScaler())
categorical = make_pipeline(SimpleImputer(strategy="most_frequent"),
                            OneHotEncoder(handle_unknown="ignore"))
student = make_pipeline(
    ColumnTransformer([("num", numeric, ["income", "age"]),
                       ("cat", categorical, ["education", "region", "owns_home"])]),
    MLPStudent(hidden_layer_sizes=(16,), max_epochs=30, lr=3e-3, random_state=0))

sizes = {}
for keep in (True, False):
    model = CrossFitDistiller(teacher, student, n_folds=3, keep_teachers=keep,
                              random_state=0).fit(X_train, y_train)
    sizes[keep] = len(pickle.dumps(model))
    if keep:
        full = model

for name, proba in [("teacher", full.teacher_.predict_proba(X_test)),
                    ("student", full.predict_proba(X_test))]:
    print(f"{name}: AUC {roc_auc_score(y_test, proba[:, 1]):.3f}, "
          f"NLL {log_loss(y_test, proba):.3f}")

# The student is a fitted Pipeline that takes the raw table by itself.
assert np.array_equal(full.student_.predict_proba(X_test), full.predict_proba(X_test))
student_size = len(pickle.dumps(model.student_))
print(f"\npickle sizes: keep_teachers=True {sizes[True] / 1e3:,.0f} kB, "
      f"keep_teachers=False {sizes[False] / 1e3:,.0f} kB, "
      f"the student pipeline alone {student_size / 1e3:,.0f} kB")
