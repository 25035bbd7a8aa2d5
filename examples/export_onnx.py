"""Export a distilled pipeline to ONNX
====================================

A ``Pipeline(StandardScaler, KnowledgeDistiller(random forest -> MLPStudent))`` trained on
scikit-learn's digits is converted by skl2onnx's own ``to_onnx`` (``import skdistill.onnx``
registers the converters), saved as a ``.onnx`` file in a temporary folder, and run by
onnxruntime: its probabilities are those of ``predict_proba`` to float32 precision.

Run: ``python examples/export_onnx.py`` (needs ``pip install skdistill[onnx]``; reads no data
file).
"""
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skl2onnx
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skdistill.onnx  # registers the skl2onnx converters of every student and distiller
from skdistill import KnowledgeDistiller, MLPStudent

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
pipe = Pipeline([("scale", StandardScaler()), ("kd", KnowledgeDistiller(
    RandomForestClassifier(n_estimators=100, random_state=0),
    MLPStudent(hidden_layer_sizes=(64,), max_epochs=30, random_state=0), random_state=0))])
pipe.fit(X_train, y_train)
print(f"digits: {len(X_train)} train / {len(X_test)} test rows; "
      f"student accuracy {pipe.score(X_test, y_test):.3f}")

# zipmap off: probabilities as an (N, n_classes) matrix rather than a list of dicts
onx = skl2onnx.to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "distilled_digits.onnx"
    path.write_bytes(onx.SerializeToString())
    print(f"saved {path.name}: {path.stat().st_size / 1024:.0f} KiB, ONNX opset "
          f"{onx.opset_import[0].version} (torch's exporter needs {skdistill.onnx.MIN_OPSET}+)")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    print("inputs:", [(i.name, i.type, i.shape) for i in session.get_inputs()])
    print("outputs:", [(o.name, o.type, o.shape) for o in session.get_outputs()])
    label, proba = session.run(None, {"X": X_test})

diff = np.abs(proba - pipe.predict_proba(X_test)).max()
same = np.mean(label == pipe.predict(X_test))
print(f"onnxruntime vs predict_proba: max |difference| {diff:.1e}; labels equal on "
      f"{100 * same:.1f}% of the {len(X_test)} test rows")
