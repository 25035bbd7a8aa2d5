"""ONNX export of the students and distillers through skl2onnx: ``import skdistill.onnx``.

Importing this module registers a converter with `skl2onnx <https://onnx.ai/sklearn-onnx/>`_
for every student (pruned or not) and every distiller, whose predictions are its student's:
those :func:`skdistill.discovery.all_estimators` lists as students and distillers. skl2onnx's
own call then converts them, alone or as the last step of a pipeline::

    import skl2onnx
    import skdistill.onnx  # noqa: F401  (registers the converters)

    onx = skl2onnx.to_onnx(Pipeline([("scale", StandardScaler()), ("kd", distiller)]),
                           X[:1].astype(np.float32))

The outputs follow skl2onnx's classifiers: a label (``classes_``, integers or strings) and the
probabilities, by default through a ``ZipMap`` (a list of ``{class: probability}``);
``options={id(model): {"zipmap": False}}`` gives the ``(N, n_classes)`` matrix instead, and
``"nocl": True`` labels classes by their index. A ``GPEDDistiller`` adds one output per
distilled expectation (``expected_entropy``...) and, when the entropy was distilled, the
``total``, ``aleatoric`` and ``epistemic`` uncertainty of :meth:`~skdistill.GPEDDistiller.
predict_uncertainty`. A row holding NaN or infinity, which ``predict_proba`` refuses but a
graph cannot, gets NaN in every probability and uncertainty output and the label
:data:`NO_LABEL_INT64` (integer labels) or :data:`NO_LABEL_STRING` (string labels).

Inside, the student's torch network is exported by :func:`torch.onnx.export` (with a dynamic
batch axis) at skl2onnx's ``target_opset`` (18 or more) and spliced into skl2onnx's graph; a
``CrossFitDistiller`` with a scikit-learn regressor student goes through skl2onnx's converter
for that regressor, followed by the mapping to probabilities that
:meth:`~skdistill.CrossFitDistiller.predict_proba` applies.

Inputs are rows of ``float32`` (or ``float64``, computed in ``float32``); a CNN student takes
flat rows or images, reshaped inside the graph. :func:`to_onnx` also takes a pandas DataFrame
of mixed dtypes: one input per column (numbers as float32, strings as strings) for a pipeline
whose first steps encode the columns, or a distiller whose ``student_`` is such a pipeline;
:func:`onnx_inputs` feeds a DataFrame (or rows) to onnxruntime. Needs the ``onnx`` extra:
``pip install skdistill[onnx]`` (skl2onnx, onnx, onnxruntime, onnxscript); ``import skdistill``
alone never imports them. See ``doc/onnx.md``.
"""
import contextlib
import copy
import functools
import importlib.util
import json
import logging
import numbers
import re
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import is_regressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

_EXTRA = "`pip install skdistill[onnx]` (skl2onnx, onnx, onnxruntime, onnxscript)"
try:
    import onnx
    import skl2onnx
    from onnx import helper, numpy_helper
    from skl2onnx import get_model_alias, update_registered_converter
    from skl2onnx._parse import _apply_zipmap, _parse_sklearn
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType,
                                            Int64TensorType, StringTensorType)
    from skl2onnx.common.utils_classifier import get_label_classes
except ImportError as exc:  # pragma: no cover - the extra is installed by `make test`
    raise ImportError(f"skdistill.onnx needs the onnx extra ({exc}); install it with "
                      f"{_EXTRA}") from exc
if importlib.util.find_spec("onnxscript") is None:  # pragma: no cover
    # imported by torch.onnx.export only when it runs: say so now rather than mid-conversion
    raise ImportError(f"skdistill.onnx needs onnxscript (torch's ONNX exporter); install the "
                      f"onnx extra with {_EXTRA}")

from ._validation import Shown, is_number, param_error
from .discovery import all_estimators
from .distillers import CrossFitDistiller, GPEDDistiller
from .distillers.gped import decompose_uncertainty, head_expectation
from .students._base import BaseStudent

#: The lowest ONNX opset that torch's exporter (torch.onnx.export, dynamo) writes.
MIN_OPSET = 18
#: The label the graph gives a row holding NaN or infinity, for integer labels (``nocl``
#: included): int64 has no NaN, and the smallest int64 is no class in practice (``-1`` often
#: is). Its probabilities and uncertainties are NaN.
NO_LABEL_INT64 = int(np.iinfo(np.int64).min)
#: The label the graph gives a row holding NaN or infinity, for string labels.
NO_LABEL_STRING = ""

# The kinds of estimator that export to ONNX (teachers do not: a student is what is deployed).
_EXPORTABLE_KINDS = ["student", "distiller"]
_FLOAT, _DOUBLE = onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE


# -- the torch networks that are exported ----------------------------------------------------
class _Probabilities(nn.Module):
    """Flat float32 rows -> class probabilities of a student's prediction network."""

    def __init__(self, network, row_shape):
        super().__init__()
        self.network, self.row_shape = network, row_shape

    def forward(self, x):
        if self.row_shape is not None:
            x = x.reshape(-1, *self.row_shape)
        return (torch.softmax(self.network(x), dim=1),)


class _GPEDOutputs(nn.Module):
    """Flat float32 rows -> predictive probabilities, the other heads' expectations and, with
    an entropy head, the decomposition of :meth:`GPEDDistiller.predict_uncertainty`."""

    def __init__(self, network, row_shape, names, decompose):
        super().__init__()
        self.network, self.row_shape = network, row_shape
        self.names, self.decompose = names, decompose

    def forward(self, x):
        if self.row_shape is not None:
            x = x.reshape(-1, *self.row_shape)
        heads = self.network(x)
        out = [F.log_softmax(heads["predictive"], dim=1).exp()]
        out += [head_expectation(heads[name]) for name in self.names]
        if self.decompose:
            out += decompose_uncertainty(heads["predictive"],
                                         head_expectation(heads["entropy"]))
        return tuple(out)


def _student_of(model):
    """The estimator that makes ``model``'s predictions: the model itself (a student), its
    ``student_``, or the last step of a ``student_`` that is a Pipeline (its other steps are
    converted by skl2onnx in front of the distiller's operator)."""
    if isinstance(model, BaseStudent):
        return model
    student = model.student_
    return student.steps[-1][1] if isinstance(student, Pipeline) else student


def _n_features(model):
    """The width of the rows that reach ``model``'s network (or regressor)."""
    if isinstance(model, BaseStudent) or not isinstance(model.student_, Pipeline):
        return int(model.n_features_in_)
    return int(_student_of(model).n_features_in_)


def _gped_outputs(model):
    """``[(output name, width or None for (N,))]`` of a GPED distiller beyond the classifier's:
    one per distilled expectation, then the uncertainty decomposition."""
    outputs = []
    for name in model.targets_[1:]:
        width = model.module_.heads[name].linear.out_features
        outputs.append(("expected_" + re.sub(r"\W", "_", name), None if width == 1 else width))
    if "entropy" in model.targets_:
        outputs += [("total", None), ("aleatoric", None), ("epistemic", None)]
    return outputs


def _extra_outputs(model):
    return _gped_outputs(model) if isinstance(model, GPEDDistiller) else []


def _exported_module(model):
    """The torch module, on the CPU, computing ``model``'s outputs from flat rows."""
    student = _student_of(model)
    row_shape = student.row_shape()
    row_shape = None if row_shape is None else tuple(int(s) for s in row_shape)
    if isinstance(model, GPEDDistiller):
        net = copy.deepcopy(model.module_).cpu().eval()
        module = _GPEDOutputs(net, row_shape, model.targets_[1:], "entropy" in model.targets_)
    else:
        net = copy.deepcopy(student.deployed_module()).cpu().eval()
        module = _Probabilities(net, row_shape)
    return module.eval()


# -- torch.onnx.export and the splice into skl2onnx's graph -----------------------------------
@contextlib.contextmanager
def _quiet():
    """Silence the exporter's warnings and log lines (optional torchvision ops, deprecations)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export_graph(model, module, n_features, opset):
    """``torch.onnx.export`` of ``module`` (float32 rows, dynamic batch) at ``opset``."""
    example = torch.zeros(2, n_features)
    with _quiet():
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                                    verbose=False)
    proto = program.model_proto
    got = {o.domain: o.version for o in proto.opset_import}
    if got.get("") != opset:
        raise ValueError(f"{type(model).__name__}: target_opset={opset} is not supported for "
                         f"ONNX export; torch.onnx.export wrote opset {got.get('')}. Use a "
                         f"target_opset from {MIN_OPSET} to {skl2onnx.__max_supported_opset__}.")
    if proto.functions or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                              for node in proto.graph.node for a in node.attribute):
        raise ValueError(f"{type(model).__name__}: its network exports to an ONNX graph with "
                         "functions or subgraphs, which skdistill.onnx does not splice")
    return proto.graph, got


def _splice(graph, opsets, scope, container, input_name, output_names):
    """Add ``graph``'s initializers and nodes to skl2onnx's container, every name prefixed;
    its input becomes ``input_name`` and its outputs ``output_names``."""
    prefix = scope.get_unique_variable_name("torch")
    names = {graph.input[0].name: input_name}
    names.update({o.name: name for o, name in zip(graph.output, output_names)})

    def rename(name):
        return "" if name == "" else names.setdefault(name, f"{prefix}_{name}")

    for init in graph.initializer:
        tensor = numpy_helper.from_array(numpy_helper.to_array(init))
        container.add_initializer(rename(init.name), init.data_type, list(init.dims), tensor)
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, [rename(i) for i in node.input],
                           [rename(o) for o in node.output], op_domain=node.domain,
                           op_version=opsets[node.domain], name=f"{prefix}_{node.name}",
                           **attrs)


# -- skl2onnx: parser, shape calculator, converter --------------------------------------------
def _proba_type(input_type):
    return DoubleTensorType if isinstance(input_type, DoubleTensorType) else FloatTensorType


def _check_exportable(model, inputs):
    """Refuse, before any conversion, what the converters cannot export."""
    input_type = inputs[0].type
    if getattr(model, "calibrator_", None) is not None:
        raise param_error(model, "calibration", model.calibration,
                          "'sigmoid' for ONNX export (the isotonic map of the student's score "
                          "is applied in Python, outside the exported network; the sigmoid "
                          "map is part of it)", TypeError)
    if not isinstance(input_type, (FloatTensorType, DoubleTensorType, Int64TensorType)):
        raise param_error(model, "X", f"<{type(input_type).__name__}>",
                          "numeric rows (float32 or float64) for ONNX export", TypeError)


def _student_inputs(scope, model, inputs, custom_parsers):
    """The variables that reach the network: what the steps in front of the last one of a
    Pipeline ``student_`` output (converted by skl2onnx), or the inputs themselves, the
    columns of a DataFrame of numbers joined into one ``(N, n_columns)`` input."""
    if not isinstance(model, BaseStudent) and isinstance(model.student_, Pipeline):
        if len(model.student_) > 1:
            inputs = _parse_sklearn(scope, model.student_[:-1], inputs,
                                    custom_parsers=custom_parsers)
    if len(inputs) > 1:
        strings = [v.raw_name for v in inputs if isinstance(v.type, StringTensorType)]
        if strings:
            raise param_error(model, "X",
                              Shown(f"<DataFrame with string columns {strings}>"),
                              "numeric columns for ONNX export of a model without steps "
                              "that encode strings (convert a Pipeline whose first steps "
                              "encode them, e.g. a ColumnTransformer with a OneHotEncoder)",
                              TypeError)
        concat = scope.declare_local_operator("SklearnConcat")
        concat.inputs = list(inputs)
        joined = scope.declare_local_variable("columns", FloatTensorType())
        concat.outputs.append(joined)
        inputs = [joined]
    return inputs


def _parse(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: label, probabilities (through ZipMap unless ``zipmap=False``) and a
    GPED distiller's extra outputs."""
    check_is_fitted(model)
    inputs = _student_inputs(scope, model, inputs, custom_parsers)
    _check_exportable(model, inputs)
    options = scope.get_options(model, dict(zipmap=True))
    operator = scope.declare_local_operator(get_model_alias(type(model)), model)
    operator.inputs = list(inputs)
    proba_type = _proba_type(inputs[0].type)
    label = scope.declare_local_variable("label", Int64TensorType())
    proba = scope.declare_local_variable("probabilities", proba_type())
    operator.outputs.extend([label, proba])
    outputs = [label, proba]
    if options["zipmap"] is not False:
        outputs = _apply_zipmap(options["zipmap"], scope, model, inputs[0].type, outputs)
    # declared last, so that the graph lists them after the label and the probabilities
    extras = [scope.declare_local_variable(name, proba_type())
              for name, _ in _extra_outputs(model)]
    operator.outputs.extend(extras)
    return [*outputs, *extras]


def _label_classes(scope, model):
    """``(classes as an ONNX initializer array, ONNX type, label of a non-finite row)``: int64
    or strings. A class equal to that label is refused: the two would be indistinguishable."""
    classes = np.asarray(get_label_classes(scope, model))
    if classes.dtype.kind in "biuf":
        classes, label_type, marker = (classes.astype(np.int64), onnx.TensorProto.INT64,
                                       NO_LABEL_INT64)
    else:
        classes, label_type, marker = (np.array([str(c) for c in classes]),
                                       onnx.TensorProto.STRING, NO_LABEL_STRING)
    if marker in classes.tolist():
        raise param_error(model, "classes_", classes.tolist(),
                          f"no class {marker!r} for ONNX export: the graph labels a row with "
                          "NaN or infinity by that value", ValueError)
    if label_type == onnx.TensorProto.STRING:
        classes = np.array([c.encode("utf-8") for c in classes])
    return classes, label_type, marker


def _shape_calculator(operator):
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    _, label_type, _ = _label_classes(operator.scope_inst, model)
    label_cls = Int64TensorType if label_type == onnx.TensorProto.INT64 else StringTensorType
    proba_type = _proba_type(operator.inputs[0].type)
    operator.outputs[0].set_type(label_cls([n]))
    operator.outputs[1].set_type(proba_type([n, len(model.classes_)]))
    for var, (_, width) in zip(operator.outputs[2:], _extra_outputs(model)):
        var.set_type(proba_type([n] if width is None else [n, width]))


def _opset(model, container):
    opset = container.target_opset_any_domain("")
    if opset is None or opset < MIN_OPSET:
        raise ValueError(f"{type(model).__name__}: target_opset={opset} is too low for ONNX "
                         f"export; torch.onnx.export writes opset {MIN_OPSET} or more. Use a "
                         f"target_opset from {MIN_OPSET} to "
                         f"{skl2onnx.__max_supported_opset__}.")
    return opset


def _float_rows(scope, container, variable, n_features, model):
    """The input as ``(N, n_features)`` float32 rows (a Cast and a Reshape where needed)."""
    name = variable.full_name
    shape = variable.type.shape
    known = [d for d in shape[1:] if isinstance(d, int)]
    if len(known) == len(shape) - 1 and int(np.prod(known)) != n_features:
        raise param_error(model, "X", f"<input of shape {list(shape)}>",
                          f"rows of {n_features} features (or images of that size)")
    if not isinstance(variable.type, FloatTensorType):
        cast = scope.get_unique_variable_name("rows32")
        container.add_node("Cast", [name], [cast], to=_FLOAT,
                           name=scope.get_unique_operator_name("Cast"))
        name = cast
    if len(shape) != 2:
        target = scope.get_unique_variable_name("flat_shape")
        container.add_initializer(target, onnx.TensorProto.INT64, [2], [-1, n_features])
        flat = scope.get_unique_variable_name("flat_rows")
        container.add_node("Reshape", [name, target], [flat],
                           name=scope.get_unique_operator_name("Reshape"))
        name = flat
    return name


def _nonfinite_rows(scope, container, rows):
    """``(column, flat)``: NaN on the float32 ``rows`` holding NaN, +inf or -inf (a float64
    value beyond float32's range is inf here, as it would be in the network), 0 elsewhere,
    as an ``(N, 1)`` column (for ``(N, k)`` outputs) and its ``(N,)`` reshape (for ``(N,)``
    outputs and the label; broadcasting the column against ``(N,)`` would give ``(N, N)``).

    ``0 * x`` is NaN exactly where ``x`` is not finite, and a row's sum of those is NaN
    exactly where one is: two elementwise passes, where IsNaN, IsInf, Or, a reduction and the
    Where that used them cost onnxruntime three times as much on a batch.
    """
    node = functools.partial(_node, scope, container)
    zeros = node("Mul", [rows, _const(scope, container, 0.0)])
    column = node("ReduceSum", [zeros, _const(scope, container, [1], onnx.TensorProto.INT64)],
                  keepdims=1)
    return column, node("Reshape", [column, _const(scope, container, [-1],
                                                   onnx.TensorProto.INT64)])


def _mark(scope, container, row_nan, values, output):
    """``output = values + row_nan``: NaN on the non-finite rows, ``values`` unchanged
    elsewhere (``x + 0`` is ``x``); ``row_nan`` of :func:`_nonfinite_rows` in the shape that
    broadcasts against ``values``."""
    container.add_node("Add", [values, row_nan], [output],
                       name=scope.get_unique_operator_name("Add"))


def _add_label(scope, operator, container, row_nan):
    """``label = classes_[argmax(probabilities)]``, the marker of its type on the rows whose
    ``row_nan`` (the ``(N,)`` flags of :func:`_nonfinite_rows`) is NaN."""
    model = operator.raw_operator
    classes, label_type, marker = _label_classes(scope, model)
    classes_name = scope.get_unique_variable_name("classes")
    container.add_initializer(classes_name, label_type, list(classes.shape), classes)
    marker_name = scope.get_unique_variable_name("no_label")
    container.add_initializer(marker_name, label_type, [],
                              [marker.encode("utf-8") if isinstance(marker, str) else marker])
    index = scope.get_unique_variable_name("argmax")
    container.add_node("ArgMax", [operator.outputs[1].full_name], [index], axis=1, keepdims=0,
                       name=scope.get_unique_operator_name("ArgMax"))
    label = scope.get_unique_variable_name("label_of_argmax")
    container.add_node("Gather", [classes_name, index], [label], axis=0,
                       name=scope.get_unique_operator_name("Gather"))
    bad_rows = _node(scope, container, "IsNaN", [row_nan])
    container.add_node("Where", [bad_rows, marker_name, label], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Where"))


def _convert(scope, operator, container):
    """skl2onnx converter: the exported network (or a regressor student) -> label and
    probabilities, plus a GPED distiller's extra outputs; NaN (and the label's marker) for a
    row that is not finite, since a graph cannot raise as ``predict_proba`` does."""
    model = operator.raw_operator
    opset = _opset(model, container)
    double = isinstance(operator.outputs[1].type, DoubleTensorType)
    targets = [v.full_name for v in operator.outputs[1:]]
    computed = [scope.get_unique_variable_name(f"{v.raw_name}32") for v in operator.outputs[1:]]
    n_features = _n_features(model)
    rows = _float_rows(scope, container, operator.inputs[0], n_features, model)
    if isinstance(model, CrossFitDistiller) and is_regressor(_student_of(model)):
        _regressor_probabilities(scope, operator, container, computed[0], opset)
    else:
        graph, opsets = _export_graph(model, _exported_module(model), n_features, opset)
        _splice(graph, opsets, scope, container, rows, computed)
    column, flat = _nonfinite_rows(scope, container, rows)
    one_dim = [False] + [width is None for _, width in _extra_outputs(model)]
    for source, target, is_1d in zip(computed, targets, one_dim):
        marked = scope.get_unique_variable_name(f"{source}_marked") if double else target
        _mark(scope, container, flat if is_1d else column, source, marked)
        if double:
            container.add_node("Cast", [marked], [target], to=_DOUBLE,
                               name=scope.get_unique_operator_name("Cast"))
    _add_label(scope, operator, container, flat)


def _node(scope, container, op, inputs, **attrs):
    """Add one ``op`` node and return the name of its (single) output."""
    out = scope.get_unique_variable_name(op.lower())
    container.add_node(op, inputs, [out], name=scope.get_unique_operator_name(op), **attrs)
    return out


def _const(scope, container, value, dtype=_FLOAT):
    name = scope.get_unique_variable_name("c")
    array = np.asarray(value, dtype=np.int64 if dtype == onnx.TensorProto.INT64 else np.float32)
    container.add_initializer(name, dtype, list(array.shape), array.ravel())
    return name


def _regressor_probabilities(scope, operator, container, output, opset):
    """CrossFitDistiller's ``_regressor_proba`` after skl2onnx's converter of the regressor."""
    model = operator.raw_operator
    regressor, n_classes = _student_of(model), len(model.classes_)
    raw = scope.get_unique_variable_name("regressor_output")
    try:
        OnnxSubEstimator(regressor, operator.inputs[0], op_version=opset,
                         output_names=[raw]).add_to(scope, container)
    except (RuntimeError, NotImplementedError, TypeError, KeyError) as exc:
        raise param_error(model, "student", regressor,
                          "a skdistill student or a scikit-learn regressor that skl2onnx can "
                          f"convert, for ONNX export (skl2onnx: {exc})", TypeError) from exc
    node = functools.partial(_node, scope, container)
    width = 1 if n_classes == 2 else n_classes
    values = node("Cast", [raw], to=_FLOAT)
    values = node("Reshape", [values, _const(scope, container, [-1, width],
                                             onnx.TensorProto.INT64)])
    if n_classes == 2:
        if model.targets_scale_ == "logp":
            values = node("Exp", [values])
        q = node("Clip", [values, _const(scope, container, 0.0), _const(scope, container, 1.0)])
        proba = [node("Sub", [_const(scope, container, 1.0), q]), q]
        container.add_node("Concat", proba, [output], axis=1,
                           name=scope.get_unique_operator_name("Concat"))
    elif model.targets_scale_ == "logp":
        container.add_node("Softmax", [values], [output], axis=1,
                           name=scope.get_unique_operator_name("Softmax"))
    else:
        axis = _const(scope, container, [1], onnx.TensorProto.INT64)
        values = node("Max", [values, _const(scope, container, 0.0)])
        empty = node("Equal", [node("ReduceSum", [values, axis], keepdims=1),
                               _const(scope, container, 0.0)])
        values = node("Where", [empty, _const(scope, container, 1.0), values])  # uniform
        container.add_node("Div", [values, node("ReduceSum", [values, axis], keepdims=1)],
                           [output], name=scope.get_unique_operator_name("Div"))


def register_converters():
    """Register the skl2onnx converters of every student and distiller (done on import).

    The estimators are those :func:`skdistill.discovery.all_estimators` lists as students and
    distillers.

    Idempotent: calling it again re-registers the same converters.

    Examples
    --------
    >>> import skdistill.onnx
    >>> from skl2onnx import get_model_alias
    >>> from skdistill import CrossFitDistiller
    >>> skdistill.onnx.register_converters()
    >>> get_model_alias(CrossFitDistiller)
    'SkdistillCrossFitDistiller'
    """
    for _, cls in all_estimators(_EXPORTABLE_KINDS):
        update_registered_converter(cls, f"Skdistill{cls.__name__}", _shape_calculator,
                                    _convert, parser=_parse,
                                    options={"zipmap": [True, False, "columns"],
                                             "nocl": [False, True]})


def _check_target_opset(target_opset):
    """``target_opset`` as skl2onnx takes it, checked before any conversion: skl2onnx's own
    errors for a string, ``0`` or a dict without the main domain name no argument."""
    if target_opset is None:
        return
    top = skl2onnx.__max_supported_opset__
    expected = (f"None, an int from 1 to {top} (the opset of the main ONNX domain), or a dict "
                f"of domain to int that includes the main domain '' (e.g. {{'': {top}, "
                "'ai.onnx.ml': 3})")
    versions = target_opset if isinstance(target_opset, dict) else {"": target_opset}
    if not all(isinstance(domain, str) and is_number(version, numbers.Integral)
               for domain, version in versions.items()):
        raise param_error("to_onnx", "target_opset", target_opset, expected, TypeError)
    if "" not in versions or not 1 <= versions[""] <= top or min(versions.values()) < 1:
        raise param_error("to_onnx", "target_opset", target_opset, expected)


def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def _column_kind(column):
    """``"number"`` or ``"string"``: the ONNX input a DataFrame column becomes, or None for a
    column no ONNX input holds (dates, durations, complex numbers, Python objects)."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _column_kind(pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype) or (pd.api.types.is_numeric_dtype(dtype)
                                             and not pd.api.types.is_complex_dtype(dtype)):
        return "number"
    if pd.api.types.is_string_dtype(dtype):  # object columns: only strings and missing values
        values = column[column.notna()]
        if all(isinstance(v, str) for v in values):
            return "string"
    return None


def _frame_input_types(X, caller):
    """skl2onnx's ``initial_types`` of a DataFrame: one ``(N, 1)`` input per column, named by
    the column; float32 for numbers (bool, int, float, numeric categories), strings for
    strings (object and string columns, string categories)."""
    types = []
    for name in X.columns:
        if not isinstance(name, str):
            raise param_error(caller, "X", Shown(f"<DataFrame with column {name!r}>"),
                              "a DataFrame whose column names are strings (they name the "
                              "ONNX inputs)", TypeError)
        kind = _column_kind(X[name])
        if kind is None:
            shown = Shown(f"<DataFrame with column {name!r} of dtype {X[name].dtype}>")
            raise param_error(caller, "X", shown, "columns of numbers, bools, strings or "
                              "categories for ONNX export (convert dates and objects to "
                              "numbers or strings first)", TypeError)
        tensor = FloatTensorType if kind == "number" else StringTensorType
        types.append((name, tensor([None, 1])))
    return types


def to_onnx(model, X, **kwargs):
    """Convert a fitted student, distiller or pipeline with input rows or columns like ``X``.

    For numeric rows, a shortcut for ``skl2onnx.to_onnx(model, X[:1].astype(np.float32),
    **kwargs)``: one float32 input ``X``. For a pandas DataFrame, one ``(N, 1)`` input per
    column, named by the column: float32 for numbers (float, int, bool and numeric
    categories), strings for strings (object and string columns, string categories). The
    model is then a pipeline whose first steps take the columns (a ``ColumnTransformer``),
    or a distiller whose ``student_`` is such a pipeline. skl2onnx's own call works as well
    once this module is imported (there a float64 ``X`` gives a float64 input, and a
    DataFrame one input per column of skl2onnx's guessed type).

    Parameters
    ----------
    model : fitted estimator
        A skdistill student or distiller, or a pipeline ending in one.
    X : array-like of shape (n_samples, ...) or DataFrame
        Rows like the model's input; only the first row's shape, or the columns' names and
        dtypes, are used.
    **kwargs
        Passed to :func:`skl2onnx.to_onnx` (``options``, ``target_opset``...); a
        ``target_opset`` is an int, or a dict of domain to int that includes the main
        domain ``""``.

    Returns
    -------
    onnx.ModelProto

    See Also
    --------
    onnx_inputs : The ``{input name: array}`` that runs the model on rows or a DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import MLPStudent
    >>> from skdistill.onnx import to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPStudent(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(X, y)
    >>> onx = to_onnx(clf, X, options={"zipmap": False})
    >>> session = ort.InferenceSession(onx.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> label, proba = session.run(None, {"X": X[:3].astype(np.float32)})
    >>> bool(np.abs(proba - clf.predict_proba(X[:3].astype(np.float32))).max() < 1e-5)
    True
    """
    _check_target_opset(kwargs.get("target_opset"))
    if not _is_frame(X):
        X = np.asarray(X[:1], dtype=np.float32)
        return skl2onnx.to_onnx(model, X, **kwargs)
    if "initial_types" not in kwargs:
        kwargs["initial_types"] = _frame_input_types(X, "to_onnx")
    try:
        onx = skl2onnx.to_onnx(model, **kwargs)
    except (RuntimeError, NotImplementedError, AssertionError) as exc:
        strings = [name for name, t in kwargs["initial_types"]
                   if isinstance(t, StringTensorType)]
        raise param_error("to_onnx", "X",
                          Shown(f"<DataFrame with columns {list(X.columns)}>"),
                          f"columns that skl2onnx converts through the model's steps (string "
                          f"columns {strings}; a SimpleImputer on strings needs a string "
                          f"missing_values); skl2onnx: {str(exc).splitlines()[0]}",
                          TypeError) from exc
    _record_columns(onx, [name for name, _ in kwargs["initial_types"]])
    return onx


#: Key of the ONNX metadata that maps each input to the DataFrame column it takes.
COLUMNS_KEY = "skdistill.columns"


def _record_columns(onx, columns):
    """Write ``{input name: column}`` into ``onx``'s metadata: skl2onnx renames a column whose
    name is not an identifier (``"education-num"`` becomes input ``education_num``) and
    declares the inputs in the order of the columns."""
    inputs = [name for name, _ in _input_specs(onx)]
    if len(inputs) != len(columns):  # pragma: no cover - skl2onnx keeps every declared input
        return
    entry = onx.metadata_props.add()
    entry.key, entry.value = COLUMNS_KEY, json.dumps(dict(zip(inputs, columns)))


def _recorded_columns(onx):
    """The ``{input name: column}`` that :func:`to_onnx` recorded, else ``{}``."""
    if hasattr(onx, "get_modelmeta"):  # an onnxruntime InferenceSession
        text = onx.get_modelmeta().custom_metadata_map.get(COLUMNS_KEY)
    else:
        text = next((p.value for p in onx.metadata_props if p.key == COLUMNS_KEY), None)
    return {} if text is None else json.loads(text)


def _input_specs(onx):
    """``[(name, numpy dtype or None for strings)]`` of an ONNX model's or session's inputs."""
    if hasattr(onx, "get_inputs"):  # an onnxruntime InferenceSession
        dtypes = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                  "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                  "tensor(bool)": np.bool_, "tensor(string)": None}
        return [(i.name, dtypes.get(i.type, np.float32)) for i in onx.get_inputs()]
    graph = onx.graph
    initializers = {t.name for t in graph.initializer}
    specs = []
    for i in graph.input:
        if i.name in initializers:
            continue
        elem = i.type.tensor_type.elem_type
        specs.append((i.name, None if elem == onnx.TensorProto.STRING
                      else helper.tensor_dtype_to_np_dtype(elem)))
    return specs


def _string_column(values):
    """Strings as an object array; a missing value (None, NaN, ``pd.NA``) as ``"nan"``."""
    import pandas as pd

    return np.array(["nan" if pd.isna(v) else str(v) for v in values], dtype=object)


def onnx_inputs(X, onx):
    """The ``{input name: array}`` that runs an exported model on rows or a DataFrame.

    For a DataFrame, each input of ``onx`` takes the column of its name (the column that
    :func:`to_onnx` recorded for it, where skl2onnx renamed a column that is not an
    identifier: ``"hours-per-week"`` is the input ``hours_per_week``), as an
    ``(n_samples, 1)`` array of the input's type: numbers (bools as 0 and 1, categories by
    their values) with NaN where a value is missing, strings as an object array with the
    string ``"nan"`` where a value is missing (how skl2onnx's encoders write a missing
    category learnt in ``fit``; an encoder with ``handle_unknown="ignore"`` that saw no missing
    value treats it as unknown, as ``predict_proba`` does). For rows, the single input takes
    ``X`` cast to its type.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...) or DataFrame
        The rows, or a DataFrame holding every column that ``onx`` takes (extra columns are
        ignored, as scikit-learn's ``ColumnTransformer`` ignores them).
    onx : onnx.ModelProto or onnxruntime.InferenceSession
        The exported model, e.g. from :func:`to_onnx`.

    Returns
    -------
    dict
        ``{input name: numpy array}``, for ``session.run(None, onnx_inputs(X, onx))``.

    See Also
    --------
    to_onnx : Export a model with one input per column of a DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> import pandas as pd
    >>> from sklearn.compose import make_column_transformer
    >>> from sklearn.impute import SimpleImputer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> from skdistill import MLPStudent
    >>> from skdistill.onnx import onnx_inputs, to_onnx
    >>> frame = pd.DataFrame({"age": [25.0, 40.0, np.nan, 61.0] * 5,
    ...                       "job": ["clerk", "nurse", "clerk", np.nan] * 5})
    >>> y = [0, 1, 0, 1] * 5
    >>> numbers = make_pipeline(SimpleImputer(), StandardScaler())
    >>> pipe = make_pipeline(
    ...     make_column_transformer((numbers, ["age"]),
    ...                             (OneHotEncoder(handle_unknown="ignore"), ["job"])),
    ...     MLPStudent(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)).fit(frame, y)
    >>> onx = to_onnx(pipe, frame, options={"zipmap": False})
    >>> inputs = onnx_inputs(frame, onx)
    >>> inputs["job"][:4, 0].tolist()
    ['clerk', 'nurse', 'clerk', 'nan']
    >>> session = ort.InferenceSession(onx.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> label, proba = session.run(None, inputs)
    >>> bool(np.abs(proba - pipe.predict_proba(frame)).max() < 1e-5)
    True
    """
    specs = _input_specs(onx)
    if not _is_frame(X):
        if len(specs) != 1:
            raise param_error("onnx_inputs", "X", X, f"a DataFrame with the columns "
                              f"{[name for name, _ in specs]} that the model takes", TypeError)
        name, dtype = specs[0]
        return {name: np.asarray(X, dtype=dtype if dtype is not None else object)}
    columns = _recorded_columns(onx)
    missing = [columns.get(name, name) for name, _ in specs
               if columns.get(name, name) not in X.columns]
    if missing:
        raise param_error("onnx_inputs", "X",
                          Shown(f"<DataFrame with columns {list(X.columns)}>"),
                          f"a DataFrame with the columns {missing} that the model takes")
    feeds = {}
    for name, dtype in specs:
        column = X[columns.get(name, name)]
        if dtype is None:
            values = _string_column(column.to_numpy(dtype=object))
        else:
            if _column_kind(column) != "number":
                shown = Shown(f"<DataFrame with column {name!r} of dtype {column.dtype}>")
                raise param_error("onnx_inputs", "X", shown, f"numbers in column {name!r}, "
                                  "as the model's input of that name takes", TypeError)
            if hasattr(column, "cat"):  # categories by their values
                column = column.astype(object)
            values = column.to_numpy(dtype=np.float64, na_value=np.nan).astype(dtype)
        feeds[name] = values.reshape(-1, 1)
    return feeds


register_converters()

__all__ = ["NO_LABEL_INT64", "NO_LABEL_STRING", "onnx_inputs", "register_converters",
           "to_onnx"]
