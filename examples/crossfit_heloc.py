"""Cross-fitting vs vanilla distillation on FICO HELOC, and a grid search over gamma_alpha
=======================================================================================

A random forest teacher is nearly certain on the rows it was grown on, so a student fitted to
its in-sample probabilities (vanilla KD) copies that overconfidence. CrossFitDistiller gives
every row a probability from a teacher that never saw it. The students here are the paper's:
random-forest regressors with a single tree. About 40 s of CPU time (a minute or two of wall
time on a shared 2-core machine).

Reads ``heloc/heloc_dataset_v1.csv`` from the data folder (``$SKDISTILL_DATA``); without it,
scikit-learn's breast cancer data (569 rows) stands in, and the script says so.
"""
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split

from skdistill import CrossFitDistiller
from skdistill.datasets import DataFileNotFoundError, get_data_home, load_heloc

try:
    X, y = load_heloc(return_X_y=True)
    keep = (X != -9).any(axis=1)  # drop the rows without any bureau record
    X, y = X[keep], y[keep]
    print(f"FICO HELOC from {get_data_home() / 'heloc'}: {len(X)} rows with a bureau record")
except DataFileNotFoundError:
    X, y = load_breast_cancer(return_X_y=True)
    print(f"FICO HELOC not found in {get_data_home() / 'heloc'} (see skdistill.datasets); "
          f"using scikit-learn's breast cancer data ({len(X)} rows)")
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(1500, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=2357)
teacher = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
student = RandomForestRegressor(n_estimators=1, random_state=0)

# Vanilla KD: the student regresses the teacher's probabilities on the teacher's own rows.
teacher.fit(X_train, y_train)
vanilla = RandomForestRegressor(n_estimators=1, random_state=0)
vanilla.fit(X_train, teacher.predict_proba(X_train)[:, 1])
teacher_auc = roc_auc_score(y_test, teacher.predict_proba(X_test)[:, 1])
print(f"teacher (100 trees)          AUC {teacher_auc:.3f}")
print(f"vanilla KD student (1 tree)  AUC {roc_auc_score(y_test, vanilla.predict(X_test)):.3f}")

# Cross-fitting: out-of-fold teacher probabilities (fold teachers fitted in parallel).
crossfit = CrossFitDistiller(RandomForestClassifier(n_estimators=100), student, n_folds=5,
                             n_jobs=2, random_state=0).fit(X_train, y_train)
print(f"cross-fit student (1 tree)   AUC "
      f"{roc_auc_score(y_test, crossfit.predict_proba(X_test)[:, 1]):.3f}")
in_sample = np.abs(teacher.predict_proba(X_train)[:, 1] - 0.5).mean()
print(f"  mean |p - 1/2| of the teacher's p: in-sample {in_sample:.3f}, "
      f"out-of-fold {np.abs(crossfit.oof_proba_[:, 1] - 0.5).mean():.3f}")

# gamma_alpha: 0 is plain cross-fitted KD, inf the orthogonal (label-corrected) loss.
search = GridSearchCV(
    CrossFitDistiller(RandomForestClassifier(n_estimators=30), student, n_folds=3, n_jobs=2,
                      random_state=0),
    {"gamma_alpha": [0.0, 0.01, 1.0, np.inf]}, cv=3, scoring="roc_auc",
).fit(X_train, y_train)
for alpha, score in zip(search.cv_results_["param_gamma_alpha"],
                        search.cv_results_["mean_test_score"]):
    print(f"  gamma_alpha={alpha:<5}  CV AUC {score:.3f}")
print(f"best gamma_alpha={search.best_params_['gamma_alpha']}: test AUC "
      f"{search.score(X_test, y_test):.3f}")
