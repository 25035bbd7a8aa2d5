"""Export a pipeline on a mixed-type DataFrame to ONNX
=====================================================

A credit table with numbers (some missing), integers, a bool, strings (some missing) and a
pandas ``category`` column goes through a ``ColumnTransformer`` (impute and scale the numbers,
one-hot encode the strings) into a ``KnowledgeDistiller`` (random forest -> ``MLPStudent``).
``skdistill.onnx.to_onnx(pipe, frame)`` gives one ONNX input per column, strings as strings;
``skdistill.onnx.onnx_inputs`` turns a DataFrame into what onnxruntime takes. On new rows with
missing values and a job never seen in training, onnxruntime's probabilities are those of
``predict_proba`` to float32 precision.

Run: ``python examples/export_onnx_dataframe.py`` (needs ``pip install skdistill[onnx]``;
reads no data file).
"""
import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdistill import KnowledgeDistiller, MLPStudent
from skdistill.onnx import onnx_inputs, to_onnx


def credit_table(n, seed):
    """A synthetic table of mixed dtypes and a binary target that depends on several columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.lognormal(3.8, 0.4, n),
        "age": rng.integers(18, 80, n),
        "owner": rng.random(n) < 0.4,
        "job": rng.choice(["clerk", "nurse", "teacher", "driver"], n).astype(object),
        "grade": pd.Categorical(rng.choice(["A", "B", "C", "D"], n)),
    })
    risk = (-0.03 * (frame["income"] - 45) + 0.8 * frame["grade"].cat.codes
            - 0.6 * frame["owner"] + 0.5 * (frame["job"] == "driver") + rng.normal(0, 1, n))
    frame.loc[rng.random(n) < 0.1, "income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "job"] = np.nan
    return frame, (risk > 1.2).astype(int).to_numpy()


train, y = credit_table(2000, 0)
new, _ = credit_table(500, 1)
new.loc[:9, "job"] = "astronaut"  # a category never seen in training
print(train.dtypes.to_string())

encode = ColumnTransformer([
    ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["income", "age", "owner"]),
    ("strings", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["job", "grade"]),
])
pipe = Pipeline([("encode", encode), ("kd", KnowledgeDistiller(
    RandomForestClassifier(n_estimators=100, random_state=0),
    MLPStudent(hidden_layer_sizes=(32,), max_epochs=30, lr=1e-2, random_state=0),
    random_state=0))]).fit(train, y)

onx = to_onnx(pipe, train, options={id(pipe[-1]): {"zipmap": False}})
session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
print("inputs:", [(i.name, i.type) for i in session.get_inputs()])

feeds = onnx_inputs(new, session)  # one (n, 1) array per column; a missing string is "nan"
missing = new["job"].isna().to_numpy()
print("job as fed:", feeds["job"][8:12, 0].tolist(), "; a missing job as fed:",
      sorted(set(feeds["job"][missing, 0])))
label, proba = session.run(None, feeds)

diff = np.abs(proba - pipe.predict_proba(new)).max()
same = np.mean(label == pipe.predict(new))
print(f"onnxruntime vs predict_proba on {len(new)} new rows ({new['income'].isna().sum()} "
      f"missing incomes, {new['job'].isna().sum()} missing jobs, 10 unseen jobs): "
      f"max |difference| {diff:.1e}; labels equal on {100 * same:.1f}%")
