"""Group-lasso pruning of fully connected and convolutional networks (Vadera et al. §3.3).

A **group** is all incoming weights of one unit of a ``torch.nn.Linear`` layer (a row of its
weight) or of one output channel of a ``torch.nn.Conv2d`` (a filter). Training adds the
group-lasso penalty ``lambda * sum_k ||w_{G_k}||_2``, which drives whole groups to zero; after
training every unit or channel whose incoming weights are all at most ``threshold`` in
magnitude is **removed**: the layer loses the unit, the next layer loses the matching inputs,
and the network is rebuilt smaller, not masked.

The groups are derived from the network itself (:func:`group_plan`): one forward pass with
hooks records which layer feeds which. A layer can be pruned when its output reaches only other
``Linear``/``Conv2d`` layers, through element-wise activations, dropout, pooling and
``Flatten``; an output layer, or one whose output is used by something else (a residual sum, a
functional op), keeps all its units. Each prunable layer is checked on a probe before it is
used: removing some of its units must give exactly the network with their incoming weights set
to zero (otherwise the layer is left whole).

Removing a unit is exact: with its incoming weights zero, the unit outputs a constant (its
activated bias), which is folded into the next layer's bias. So :func:`prune_network` returns a
network whose outputs equal those of the original with the removed groups set to zero.

References
----------
Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for Deep
Neural Networks. UAI 2020, §3.3 and Appendix A.2.

Wen, Wu, Wang, Chen, Li. Learning Structured Sparsity in Deep Neural Networks. NeurIPS 2016.
"""
import copy
from dataclasses import dataclass, field

import torch
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from torch import nn

from ._interrupt import warn_user
from ._validation import _owner_name
from .nets.utils import eval_mode

#: Modules that act on each unit or channel on its own (so a constant unit stays constant).
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.Hardtanh,
               nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink, nn.Identity, nn.Dropout,
               nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


@dataclass
class PrunableLayer:
    """One prunable layer of a :class:`GroupPlan`.

    Attributes
    ----------
    name : str
        Its qualified name in the network (``module.get_submodule(name)``).
    consumers : list of (str, tuple of str, int)
        For each layer reading its output: that layer's name, the names of the modules in
        between (activations, pooling, ``Flatten``...), and the inputs of the consumer per
        unit (1, or ``H * W`` when a channel is flattened into a fully connected layer).
    spatial : tuple of int
        Spatial shape of its output (``()`` for a fully connected layer).
    """

    name: str
    consumers: list = field(default_factory=list)
    spatial: tuple = ()


@dataclass
class GroupPlan:
    """Which layers of a network can be pruned, and what reads their outputs.

    Built by :func:`group_plan`; used by :func:`group_lasso_penalty`, :func:`group_norms` and
    :func:`prune_network`. It holds names only (no tensors), so it pickles with the student.

    Attributes
    ----------
    layers : list of PrunableLayer
        In forward order.
    skipped : dict of str to str
        ``Linear``/``Conv2d`` layers that are not pruned, with the reason (output layers,
        among others).
    """

    layers: list
    skipped: dict

    @property
    def names(self):
        return [layer.name for layer in self.layers]


def _leaf_modules(module):
    return [(name, m) for name, m in module.named_modules() if not list(m.children())]


def _tensors(obj):
    if torch.is_tensor(obj):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    return []


def _is_group_layer(m):
    return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)


def _pass_through(m, x):
    """Why ``m`` cannot sit between a pruned layer and its consumer (None when it can)."""
    if isinstance(m, ELEMENTWISE):
        return None
    if isinstance(m, POOLING):
        if isinstance(m, nn.AvgPool2d) and m.padding not in (0, (0, 0)) and m.count_include_pad:
            return "an AvgPool2d with zero padding counted in the average"
        return None if x.dim() == 4 else f"a {type(m).__name__} on a {x.dim()}-d tensor"
    if isinstance(m, nn.Flatten):
        return None if m.start_dim == 1 and m.end_dim == -1 else "a Flatten other than (1, -1)"
    return f"a {type(m).__name__} (not an activation, dropout, pooling or Flatten)"


def _trace(module, example):
    """Run ``module`` once and record every leaf call: (name, module, sources, input, output).

    ``sources`` are the indices of the calls that produced the call's tensor inputs (-1: the
    network's input or a tensor made outside a module).
    """
    calls, producer, hooks = [], {}, []

    def hook(name):
        def record(m, inputs, output):
            ins = _tensors(inputs)
            sources = [producer.get(id(t), -1) for t in ins]
            calls.append((name, m, sources, ins[0] if ins else None, output))
            if torch.is_tensor(output):
                producer[id(output)] = len(calls) - 1
        return record

    for name, m in _leaf_modules(module):
        hooks.append(m.register_forward_hook(hook(name)))
    try:
        with eval_mode(module), torch.no_grad():
            out = module(example)
    finally:
        for h in hooks:
            h.remove()
    # ``calls`` keeps every output alive, so the ids above cannot be reused
    return calls, {id(t) for t in _tensors(out)}


def group_plan(module, example):
    """The pruning plan of ``module``: its prunable layers and what reads their outputs.

    Parameters
    ----------
    module : torch.nn.Module
    example : torch.Tensor
        A batch the network accepts (one or two rows suffice); it is run once, in eval mode.

    Returns
    -------
    plan : GroupPlan

    Raises
    ------
    ValueError
        When no layer can be pruned; the reasons are listed. A layer is left whole (and in
        ``plan.skipped``) when its output reaches something other than ``Linear``/``Conv2d``
        layers through activations, dropout, pooling or ``Flatten`` modules, when its weights
        are tied to another layer's, or when removing units on a probe does not give the
        network with their incoming weights set to zero (a functional sum or slice).

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import MLP
    >>> from skdistill.pruning import group_plan
    >>> plan = group_plan(MLP(4, 3, (8, 6)), torch.zeros(2, 4))
    >>> plan.names
    ['features.1', 'features.3']
    >>> plan.skipped
    {'head': 'its output is an output of the network'}
    """
    calls, outputs = _trace(module, example)
    consumers = {i: [] for i in range(len(calls))}
    for j, (_, _, sources, _, _) in enumerate(calls):
        for s in sources:
            if s >= 0:
                consumers[s].append(j)
    seen, layers, skipped = {}, [], {}
    for name, m, _, _, _ in calls:
        seen[name] = seen.get(name, 0) + 1
    shared = _shared_parameters(module)
    for i, (name, m, _, _, out) in enumerate(calls):
        if not _is_group_layer(m) or name in skipped:
            continue
        if seen[name] > 1:
            skipped[name] = "it is called more than once in a forward pass"
            continue
        found, why = _follow(calls, consumers, outputs, i, m, out)
        if why is None:
            tied = [n for n in [name] + [c[0] for c in found] if n in shared]
            if tied:
                why = (f"the weights of {tied[0]} are shared with another layer (tied "
                       "weights would be untied by pruning)")
        if why is None:
            layers.append(PrunableLayer(name, found, tuple(out.shape[2:])))
        else:
            skipped[name] = why
    for layer in list(layers):
        why = _probe(module, layer, example)
        if why is not None:
            layers.remove(layer)
            skipped[layer.name] = why
    if not layers:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "it has no Linear or " \
            "Conv2d layer"
        raise ValueError(f"no layer of {type(module).__name__} can be pruned ({reasons}); "
                         "pruning removes units of Linear/Conv2d layers that feed other "
                         "Linear/Conv2d layers through activations, dropout, pooling or "
                         "Flatten modules")
    return GroupPlan(layers, skipped)


def _shared_parameters(module):
    """Names of the modules holding a parameter that another module holds too."""
    owners = {}
    for name, m in module.named_modules(remove_duplicate=False):
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), set()).add(name)
    return {name for names in owners.values() if len(names) > 1 for name in names}


def _follow(calls, consumers, outputs, i, layer, out):
    """The consumers of call ``i``'s output, or the reason it cannot be pruned."""
    found, stack = [], [(i, ())]
    n_units = out.shape[1]
    while stack:
        j, path = stack.pop()
        out_j = calls[j][4]
        if not torch.is_tensor(out_j) or id(out_j) in outputs:
            return None, "its output is an output of the network"
        if not consumers[j]:
            return None, ("its output is used outside a module (a functional operation) or "
                          "not at all")
        for k in consumers[j]:
            name, m, sources, x, _ = calls[k]
            if len(sources) != 1:
                return None, f"{name} reads it together with other tensors"
            if _is_group_layer(m):
                if isinstance(m, nn.Linear):
                    if x.dim() != 2 or x.shape[1] % n_units:
                        return None, f"the Linear {name} does not read it unit by unit"
                    block = x.shape[1] // n_units
                else:
                    if x.dim() != 4 or x.shape[1] != n_units:
                        return None, f"the Conv2d {name} does not read it channel by channel"
                    padded = (m.padding != "valid" if isinstance(m.padding, str)
                              else any(m.padding))
                    if padded:
                        return None, (f"the Conv2d {name} pads its input (a removed channel's "
                                      "constant could not be folded into its bias exactly)")
                    block = 1
                found.append((name, path, block))
                continue
            why = _pass_through(m, x)
            if why is not None:
                return None, f"it reaches {name}, {why}"
            stack.append((k, path + (name,)))
    return found, None


def _probe(module, layer, example):
    """Why removing units of ``layer`` does not give the network with their incoming weights
    set to zero (None when it does). A connection the hooks cannot see (a residual sum, a
    slice ``h[:, -1:]``) breaks the equality. The first and last units and a random half of
    the others are removed together, each with its own non-zero bias (a constant that must be
    folded exactly)."""
    gen = torch.Generator().manual_seed(0)
    probe = copy.deepcopy(module).double().eval()
    m = probe.get_submodule(layer.name)
    n = m.weight.shape[0]
    drop = torch.rand(n, generator=gen) < 0.5
    drop[0] = drop[-1] = True
    if n > 1:
        drop[1] = False  # keep a unit: a layer is never emptied
    try:
        with torch.no_grad():
            # the units kept get non-zero weights whatever the network holds now
            m.weight[~drop] = torch.randn(m.weight[~drop].shape, generator=gen,
                                          dtype=torch.double)
            m.weight[drop] = 0
            if m.bias is not None:
                m.bias[drop] = torch.linspace(0.3, 0.9, int(drop.sum()), dtype=torch.double)
            x = torch.randn(example.shape, generator=gen, dtype=torch.double)
            expected = _tensors(probe(x))
            pruned, sizes = _prune(probe, GroupPlan([layer], {}), 0.0)
            got = _tensors(pruned(x))
    except Exception as exc:  # noqa: BLE001 - a user's forward may raise anything
        return f"removing units made the forward pass fail ({type(exc).__name__}: {exc})"
    if sizes[layer.name] != (n, n - int(drop.sum())):
        return "its units could not be removed"
    if len(got) != len(expected) or not all(
            a.shape == b.shape and torch.allclose(a, b, rtol=1e-9, atol=1e-9)
            for a, b in zip(expected, got)):
        return ("removing some of its units changed the network's outputs (its output is also "
                "used by an operation that is not a module, e.g. a sum or a slice)")
    return None


def group_norms(module, plan):
    """``{layer name: (n_units,) tensor}`` of the groups' Euclidean norms (differentiable)."""
    return {layer.name: module.get_submodule(layer.name).weight.flatten(1).norm(dim=1)
            for layer in plan.layers}


def group_lasso_penalty(module, plan):
    """``sum_k ||w_{G_k}||_2`` over the groups of the prunable layers of ``module``.

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import MLP
    >>> from skdistill.pruning import group_plan, group_lasso_penalty
    >>> net = MLP(2, 2, (2,))
    >>> plan = group_plan(net, torch.zeros(1, 2))
    >>> with torch.no_grad():
    ...     _ = net.features[1].weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    >>> float(group_lasso_penalty(net, plan))  # ||(3, 4)|| + ||(0, 1)||
    6.0
    """
    return sum(norms.sum() for norms in group_norms(module, plan).values())


class GroupLassoPenalty:
    """``strength * group_lasso_penalty(module, plan)``: a picklable training regularizer."""

    def __init__(self, strength, plan):
        self.strength, self.plan = strength, plan

    def __call__(self, module):
        return self.strength * group_lasso_penalty(module, self.plan)


def prune_network(module, plan, threshold=1e-3, *, owner=None):
    """A smaller copy of ``module`` without the units whose incoming weights are all small.

    Every unit (or conv channel) of a prunable layer whose incoming weights are all at most
    ``threshold`` in magnitude (at 0: all zero) is removed, with the matching inputs of the
    layers that read it; its constant output (the activated bias) is folded into their biases.
    The result computes exactly what ``module`` computes with those weights set to zero. A
    layer keeps at least its largest unit (with a warning naming ``owner``).

    Parameters
    ----------
    module : torch.nn.Module
        Not modified.
    plan : GroupPlan
        From :func:`group_plan` on this network (or one of the same layout).
    threshold : float, default=1e-3
        The paper's epsilon.
    owner : str or estimator, default=None
        Named in the warning when a layer would lose every unit.

    Returns
    -------
    pruned : torch.nn.Module
        Same class and layout, smaller layers.
    sizes : dict of str to (int, int)
        Units of each prunable layer before and after.

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import MLP
    >>> from skdistill.pruning import group_plan, prune_network
    >>> net = MLP(4, 3, (8,))
    >>> with torch.no_grad():
    ...     net.features[1].weight[:5] = 0  # units 0-4 receive nothing
    >>> small, sizes = prune_network(net, group_plan(net, torch.zeros(1, 4)))
    >>> sizes, small.head.in_features
    ({'features.1': (8, 3)}, 3)
    >>> x = torch.randn(5, 4)
    >>> bool(torch.allclose(small(x), net(x), atol=1e-6))
    True
    """
    return _prune(module, plan, threshold, owner=owner)


def _prune(module, plan, threshold, owner=None):
    module = copy.deepcopy(module)
    sizes = {}
    with torch.no_grad():
        for layer in plan.layers:
            m = module.get_submodule(layer.name)
            rows = m.weight.flatten(1)
            keep = rows.abs().amax(1) > threshold
            if not keep.any():
                keep[rows.norm(dim=1).argmax()] = True
                warn_user(f"{_name(owner)}: every unit of layer {layer.name!r} has incoming "
                          f"weights of at most {threshold:g}; its largest unit is kept. The "
                          "penalty is too strong for this network (lower group_lasso).")
            sizes[layer.name] = (len(keep), int(keep.sum()))
            if keep.all():
                continue
            _remove_units(module, layer, m, keep)
        for sub in module.modules():  # our networks record their trunk's width
            if isinstance(getattr(sub, "head", None), nn.Linear) and hasattr(sub, "n_hidden_out"):
                sub.n_hidden_out = sub.head.in_features
    return module, sizes


def _eval_call(m, x):
    with eval_mode(m):
        return m(x.clone())


def _remove_units(module, layer, m, keep):
    drop = ~keep
    bias = m.bias if m.bias is not None else torch.zeros(m.weight.shape[0],
                                                          dtype=m.weight.dtype,
                                                          device=m.weight.device)
    # the removed units output their bias as a constant (incoming weights taken as zero)
    constant = bias[drop].reshape((1, int(drop.sum())) + (1,) * len(layer.spatial))
    constant = constant.expand((1, int(drop.sum())) + tuple(layer.spatial)).clone()
    for name, path, block in layer.consumers:
        z = constant
        for step in path:
            z = _eval_call(module.get_submodule(step), z)
        c = module.get_submodule(name)
        if c.bias is None:
            c.bias = nn.Parameter(torch.zeros(c.weight.shape[0], dtype=c.weight.dtype,
                                              device=c.weight.device))
        if isinstance(c, nn.Linear):
            cols = torch.arange(c.weight.shape[1], device=c.weight.device).reshape(-1, block)
            gone = cols[drop].reshape(-1)
            c.bias += c.weight[:, gone] @ z.reshape(-1)
            c.weight = nn.Parameter(c.weight[:, cols[keep].reshape(-1)].contiguous())
            c.in_features = c.weight.shape[1]
        else:
            value = z.reshape(z.shape[0], z.shape[1], -1)[0, :, 0]
            c.bias += (c.weight[:, drop].sum((2, 3)) * value).sum(1)
            c.weight = nn.Parameter(c.weight[:, keep].contiguous())
            c.in_channels = c.weight.shape[1]
    m.weight = nn.Parameter(m.weight[keep].contiguous())
    if m.bias is not None:
        m.bias = nn.Parameter(m.bias[keep].contiguous())
    if isinstance(m, nn.Linear):
        m.out_features = m.weight.shape[0]
    else:
        m.out_channels = m.weight.shape[0]


class SumRegularizer:
    """The sum of several ``module -> scalar`` regularizers (picklable)."""

    def __init__(self, *terms):
        self.terms = [t for t in terms if t is not None]

    def __call__(self, module):
        return sum(term(module) for term in self.terms)


class PruneCallback(Callback):
    """Prune the engine's network after the penalised epochs, then fine-tune it.

    Training runs ``max_epochs - fine_tune_epochs`` epochs with the group-lasso penalty; at the
    end of the last of them the network is pruned (:func:`prune_network`) and replaced, the
    penalty is dropped, and the optimiser restarts at ``fine_tune_lr`` (a fresh optimiser
    state; ``LRScheduler`` callbacks restart with it) for the remaining epochs. The epoch of
    pruning records ``n_pruned_units`` in the history. ``EarlyStopping`` callbacks start again
    with the fine-tuning (the best weights they held are the unpruned network's). When
    training stops earlier (``EarlyStopping``), the network is pruned at the end without
    fine-tuning; after a Ctrl-C it is left unpruned.
    A scheduler that sets its own learning rates (``CyclicLR``, ``OneCycleLR``) overrides
    ``fine_tune_lr``.

    Parameters
    ----------
    plan : GroupPlan
    strength : float
        ``lambda`` of the group-lasso penalty.
    threshold : float
    fine_tune_epochs : int or None
        ``None``: a fifth of the epochs (rounded down).
    fine_tune_lr : float
    regularizer : callable or None
        The student's own regularizer, which stays after pruning.
    owner : str
        The estimator's name, for warnings.

    Attributes
    ----------
    penalty : GroupLassoPenalty
    penalised : SumRegularizer
        The net's regularizer until pruning: ``regularizer`` plus ``penalty``.
    """

    def __init__(self, plan, strength, threshold, fine_tune_epochs, fine_tune_lr,
                 regularizer=None, owner=None):
        self.plan, self.threshold = plan, threshold
        self.fine_tune_epochs, self.fine_tune_lr = fine_tune_epochs, fine_tune_lr
        self.regularizer, self.owner = regularizer, owner
        self.penalty = GroupLassoPenalty(strength, plan)
        self.penalised = SumRegularizer(regularizer, self.penalty)

    def initialize(self):
        self.sizes_, self.prune_at_ = None, None
        return self

    def fine_tune_epochs_for(self, total):
        return total // 5 if self.fine_tune_epochs is None else self.fine_tune_epochs

    def on_train_begin(self, net, **kwargs):
        self.prune_at_ = net.max_epochs - self.fine_tune_epochs_for(net.max_epochs)

    def fine_tuning(self, net):
        """Whether ``net`` has trained since it was pruned.

        True when its last epoch (the one under way, or the last one) is not the epoch of
        pruning.
        """
        return self.sizes_ is not None and "n_pruned_units" not in net.history[-1]

    def on_epoch_end(self, net, **kwargs):
        if self.sizes_ is None and len(net.history) >= self.prune_at_:
            self.prune(net)

    def on_train_end(self, net, **kwargs):
        if self.sizes_ is None and not getattr(net, "interrupted_", False):
            warn_user(f"{_name(self.owner)}: training stopped after {len(net.history)} epochs, "
                      f"before the {self.prune_at_} with the group-lasso penalty; the network "
                      "is pruned now, without fine-tuning.")
            self.prune(net)

    def prune(self, net):
        """Replace the network by its pruned copy, with a fresh optimiser at ``fine_tune_lr``.

        ``LRScheduler`` and ``EarlyStopping`` callbacks start again on the pruned network.
        """
        module, self.sizes_ = prune_network(net.module_, self.plan, self.threshold,
                                            owner=self.owner)
        net.module_ = module.train(net.module_.training)
        net.regularizer = self.regularizer
        net.history.record("n_pruned_units", self.n_pruned_units_)
        net.lr = self.fine_tune_lr
        net.initialize_optimizer()
        for _, cb in net.callbacks_:
            if isinstance(cb, LRScheduler):  # a fresh schedule on the new optimizer
                cb.lr_scheduler_ = cb.policy_(net.optimizer_, **cb.kwargs)
            elif isinstance(cb, EarlyStopping):  # its best weights are the unpruned network's
                cb.on_train_begin(net)

    @property
    def n_pruned_units_(self):
        return sum(before - after for before, after in (self.sizes_ or {}).values())


def _name(owner):
    return _owner_name("prune_network" if owner is None else owner)


def layer_widths(module):
    """``(conv channels, fully connected widths)`` of a network, input to output.

    The last ``Linear`` (the output layer) is left out.
    """
    convs = tuple(m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d))
    linears = tuple(m.out_features for m in module.modules() if isinstance(m, nn.Linear))
    return convs, linears[:-1]


__all__ = ["group_plan", "group_norms", "group_lasso_penalty", "prune_network",
           "GroupPlan", "PrunableLayer", "GroupLassoPenalty", "PruneCallback",
           "SumRegularizer", "layer_widths"]
