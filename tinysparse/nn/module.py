"""Module and Parameter: the containers every layer and model is built from.

A :class:`Module` registers the :class:`Parameter` objects and sub-modules assigned to it
as attributes (as in PyTorch), so ``model.named_parameters()`` finds ``"fc1.weight"``. A
module can also own *masks* for its parameters (see :meth:`Module.set_mask`): the pruning
machinery puts them there, the layer applies them in its forward pass, and the optimizers
keep pruned weights at exactly zero.

``model.state_dict()`` copies the weights *as the papers write them*: one dense array per
weight, whichever kernels a layer runs. A layer on the sparse kernels
(:class:`~tinysparse.nn.SparseLinear`) trains the vector of its kept weights
(``fc1.values`` in ``named_parameters``) but appears in the state as ``fc1.weight``, so
saving, loading, snapshots and rewinding do not depend on the compute path.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import numpy as np

from tinysparse.autograd import Tensor, get_default_dtype, no_grad, softmax
from tinysparse.sparse.mask import Mask


class Parameter(Tensor):
    """A leaf tensor that a module trains. ``requires_grad`` is True.

    ``mask`` is the :class:`~tinysparse.sparse.mask.Mask` of the module that owns this
    parameter, or None; the optimizers read it to keep pruned weights at zero.

    ``replaced_by`` names the layer that took over from this parameter's layer when
    pruning moved it to the sparse kernels (or back), else None: an optimiser built
    before then would update a parameter that is no longer in the model, and refuses.
    """

    __slots__ = ("mask", "replaced_by")

    def __init__(self, data: Any, dtype: Any = None) -> None:
        array = np.asarray(data)
        if dtype is None and array.dtype.kind != "f":
            dtype = get_default_dtype()
        super().__init__(array, requires_grad=True, dtype=dtype)
        self.mask: Mask | None = None
        self.replaced_by: str | None = None

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


def as_numbers(x: Any, name: str) -> np.ndarray:
    """``x`` as an array of real numbers (or booleans), or a ValueError naming ``name``:
    for strings, objects, complex numbers, or nested lists of unequal lengths."""
    try:
        x = np.asarray(x)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name}: expected an array of numbers; {error}") from None
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected numbers, got an array of dtype {x.dtype}")
    return x


def check_finite_inputs(x: Any, name: str) -> np.ndarray:
    """``x`` as an array (:func:`as_numbers`), or a ValueError naming ``name`` when it holds
    NaN or infinity."""
    x = as_numbers(x, name)
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"{name}: {bad:,} of its {x.size:,} values are NaN or infinite; "
                         f"a prediction from them would mean nothing")
    return x


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters and sub-modules as
    attributes, and implement :meth:`forward`. Calling a module runs ``forward``; a NumPy
    array passed in is wrapped in a tensor of the module's dtype first.
    """

    #: every Module subclass by name, so that saved models can be rebuilt (see ``spec``);
    #: a base class that is never built itself says ``abstract=True`` and is not listed
    registry: ClassVar[dict[str, type[Module]]] = {}

    # What a spec of this type holds, so that a spec read from a file can be checked, and
    # the state it declares computed, before anything is built (see spec_state_entries).
    #: the keys of the spec
    spec_keys: ClassVar[tuple[str, ...]] = ("type", "args")
    #: the constructor's arguments in the spec (the keys of constructor_args()), each with
    #: what a file may hold for it
    spec_arguments: ClassVar[dict[str, SpecArgument]] = {}
    #: the state entries whose masks the module is built from (a sparse layer's weight)
    spec_masks: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            Module.registry[cls.__name__] = cls

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_masks", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "name", "")

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                f"assigning attributes"
            )
        # Replacing a parameter or a child keeps its place in the order (a Sequential runs
        # its children in this order; to_sparse swaps layers in place).
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
            if not value.name:
                object.__setattr__(value, "name", name)
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- running
    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x), dtype=self.dtype)
        return self.forward(x)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (the default dtype for a module without any)."""
        for p in self.parameters():
            return p.dtype
        return get_default_dtype()

    def predict_proba(self, x: Any, batch_size: int = 1000) -> np.ndarray:
        """Class probabilities ``softmax(model(x))`` for a NumPy batch, in evaluation mode.

        Raises a ValueError for inputs that are not all finite (a NaN image would
        otherwise be "predicted" as class 0).
        """
        x = check_finite_inputs(x, "x")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                chunks = [
                    softmax(self(np.asarray(x[i : i + batch_size])), axis=1).data
                    for i in range(0, len(x), batch_size)
                ]
        finally:
            self.train(was_training)
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=self.dtype)

    def predict(self, x: Any, batch_size: int = 1000) -> np.ndarray:
        """Predicted class index for each example of a NumPy batch."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    # ---------------------------------------------------------------- traversal
    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, with dotted names (``""`` for this one)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter, with dotted names such as ``"fc1.weight"``, in definition order."""
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def num_parameters(self) -> int:
        """How many trainable numbers the model stores (a layer on the sparse kernels
        counts its kept weights only; ``state_shapes()`` gives the dense sizes)."""
        return sum(p.size for p in self.parameters())

    def get_parameter(self, qualified_name: str) -> Parameter:
        """The parameter called e.g. ``"fc1.weight"``."""
        module_name, _, name = qualified_name.rpartition(".")
        module = self.get_submodule(module_name)
        if name not in module._parameters:
            hint = ""
            if name in module.local_state_shapes():
                hint = (f" ({module.describe()} keeps only the weights its mask keeps, in "
                        f"{qualified_name[:-len(name)]}values: read the dense array from "
                        f"model.state_dict(), or move the layer back with "
                        f"tinysparse.nn.to_dense(model))")
            raise KeyError(
                f"no parameter {qualified_name!r}; parameters are "
                f"{[n for n, _ in self.named_parameters()]}{hint}"
            )
        return module._parameters[name]

    def get_submodule(self, qualified_name: str) -> Module:
        module = self
        for part in qualified_name.split(".") if qualified_name else []:
            if part not in module._modules:
                raise KeyError(
                    f"no module {qualified_name!r}; modules are "
                    f"{[n for n, _ in self.named_modules() if n]}"
                )
            module = module._modules[part]
        return module

    # ---------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Put this module and its sub-modules in training mode (or evaluation mode)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode (``train(False)``)."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient of every parameter."""
        for p in self.parameters():
            p.grad = None

    def to(self, dtype: Any) -> Module:
        """Convert every parameter to ``dtype`` in place (float32 or float64)."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ---------------------------------------------------------------- masks
    def set_mask(self, parameter_name: str, mask: Any) -> Mask:
        """Attach a keep-mask to one of this module's own parameters and zero what it prunes.

        Parameters
        ----------
        parameter_name : str
            A parameter of *this* module, e.g. ``"weight"``.
        mask : Mask or array_like of 0/1
            Must have the parameter's shape.
        """
        if parameter_name not in self._parameters:
            raise KeyError(
                f"{self.describe()} has no parameter {parameter_name!r}; it has "
                f"{list(self._parameters)}"
            )
        param = self._parameters[parameter_name]
        mask = mask if isinstance(mask, Mask) else Mask(mask)
        mask.check_shape(param.shape, f"{self.describe()}.{parameter_name}")
        self._masks[parameter_name] = mask
        param.mask = mask
        param.data *= mask.as_float(param.dtype)
        return mask

    def remove_mask(self, parameter_name: str) -> None:
        """Forget the mask (pruned weights stay zero until training moves them)."""
        self._masks.pop(parameter_name, None)
        self._parameters[parameter_name].mask = None

    def named_masks(self) -> Iterator[tuple[str, Mask]]:
        """Every mask in the model, named like its parameter (``"fc1.weight"``)."""
        for module_name, module in self.named_modules():
            for name, mask in module._masks.items():
                yield (f"{module_name}.{name}" if module_name else name), mask

    def masked(self, parameter_name: str) -> Tensor:
        """The parameter with its mask applied (a graph op, so gradients are masked too)."""
        param = self._parameters[parameter_name]
        mask = self._masks.get(parameter_name)
        if mask is None:
            return param
        return param * mask.as_float(param.dtype)

    # ---------------------------------------------------------------- state
    # The state is the weights as the papers write them: a dense array per weight. A layer
    # that stores its weights otherwise (a sparse layer) overrides the three local_* methods.
    def local_state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shapes of this module's own state entries (not its children's)."""
        return {name: p.shape for name, p in self._parameters.items()}

    def local_state(self) -> dict[str, np.ndarray]:
        """A copy of this module's own state entries (not its children's)."""
        return {name: p.data.copy() for name, p in self._parameters.items()}

    def load_local_state(self, name: str, values: np.ndarray) -> None:
        """Copy ``values`` (already checked to have the entry's shape) into the entry
        ``name``; a masked weight keeps its pruned entries at zero."""
        param = self._parameters[name]
        param.data = values.astype(param.dtype, copy=True)
        if param.mask is not None:  # a pruned weight never comes back
            param.data *= param.mask.as_float(param.dtype)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every entry of :meth:`state_dict`, by dotted name (nothing copied)."""
        return {(f"{module_name}.{name}" if module_name else name): shape
                for module_name, module in self.named_modules()
                for name, shape in module.local_state_shapes().items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every weight as a dense array, by dotted name (``"fc1.weight"``)."""
        return {(f"{module_name}.{name}" if module_name else name): values
                for module_name, module in self.named_modules()
                for name, values in module.local_state().items()}

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy values into the weights (shapes must match; masks are re-applied).

        With ``strict`` (the default) the keys must be exactly this model's state entries.
        """
        shapes = self.state_shapes()
        if strict:
            missing = sorted(set(shapes) - set(state))
            unexpected = sorted(set(state) - set(shapes))
            if missing or unexpected:
                raise KeyError(
                    f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
                )
        for name, values in state.items():
            if name not in shapes:
                continue
            values = np.asarray(values)
            if values.shape != shapes[name]:
                raise ValueError(
                    f"load_state_dict: {name} has shape {shapes[name]} in the model but "
                    f"{values.shape} in the state"
                )
            module_name, _, local_name = name.rpartition(".")
            self.get_submodule(module_name).load_local_state(local_name, values)

    # ---------------------------------------------------------------- description
    def spec(self) -> dict[str, Any]:
        """A JSON-able description from which :func:`build_from_spec` rebuilds the module."""
        return {"type": type(self).__name__, "args": self.constructor_args()}

    def constructor_args(self) -> dict[str, Any]:
        """Keyword arguments that recreate this module's architecture (not its weights)."""
        return {}

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The :meth:`local_state_shapes` of the module that ``args`` (already checked
        against ``spec_arguments``) would build, computed without building it."""
        return {}

    @classmethod
    def spec_children(cls, spec: dict[str, Any], where: str) -> list[tuple[str, Any]]:
        """The ``(name, spec)`` of every sub-module that ``spec`` declares (a container's;
        ``where`` names the module in errors)."""
        return []

    def describe(self) -> str:
        """How errors name this module, e.g. ``Linear 'fc1' (784 -> 300)``."""
        label = f" {self.name!r}" if self.name else ""
        return f"{type(self).__name__}{label}{self.extra_repr_short()}"

    def extra_repr_short(self) -> str:
        return ""

    def extra_repr(self) -> str:
        """The constructor's arguments, and how much of each masked parameter is kept."""
        parts = [f"{k}={v}" for k, v in self.constructor_args().items()]
        parts += [f"{name}: {mask.kept:,} of {mask.size:,} kept"
                  for name, mask in self._masks.items()]
        return ", ".join(parts)

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)


def build_from_spec(spec: dict[str, Any], masks: dict[str, Mask] | None = None,
                    prefix: str = "") -> Module:
    """Rebuild a module (untrained) from :meth:`Module.spec`.

    ``masks`` (by dotted name, the module being called ``prefix``) is for the layers whose
    architecture includes their mask: a sparse layer stores only the weights its mask keeps.
    """
    try:
        cls = Module.registry[spec["type"]]
    except KeyError:
        raise ValueError(
            f"unknown module type {spec.get('type')!r} in model spec; known types: "
            f"{sorted(Module.registry)}"
        ) from None
    if hasattr(cls, "from_spec"):
        return cls.from_spec(spec, masks or {}, prefix)
    return cls(**spec.get("args", {}))


# ---------------------------------------------------------------- checking a saved spec
class SpecArgument(NamedTuple):
    """What a spec read from a file may hold for one constructor argument."""

    expected: str  # how an error describes it, e.g. "a positive integer"
    accepts: Callable[[Any], bool]
    optional: bool = False  # a spec may leave it out (the constructor's default applies)


# In JSON ``true`` is not a number, but in Python it is an int: the tests are on exact types.
POSITIVE_INT = SpecArgument("a positive integer", lambda v: type(v) is int and v > 0)
NON_NEGATIVE_INT = SpecArgument("an integer >= 0", lambda v: type(v) is int and v >= 0)
BOOLEAN = SpecArgument("true or false", lambda v: type(v) is bool)
POSITIVE_INTS = SpecArgument(
    "a non-empty list of positive integers",
    lambda v: type(v) is list and len(v) > 0 and all(POSITIVE_INT.accepts(n) for n in v))
PROBABILITY = SpecArgument("a number in [0, 1)",
                           lambda v: type(v) in (int, float) and 0 <= v < 1)
SEED = SpecArgument("an integer >= 0 or null",
                    lambda v: v is None or NON_NEGATIVE_INT.accepts(v))
FINITE_NUMBER = SpecArgument("a finite number", lambda v: type(v) in (int, float)
                             and math.isfinite(v))


def one_of(*choices: str) -> SpecArgument:
    """A spec argument that is one of a few strings."""
    return SpecArgument(f"one of {list(choices)}", lambda v: v in choices)


class StateEntry(NamedTuple):
    """A state entry that a spec declares (see :func:`spec_state_entries`)."""

    shape: tuple[int, ...]
    layer: str  # which layer declares it, for errors: "layer 'fc1' (Linear)"
    needs_mask: bool  # the layer is built from this entry's mask


#: how deeply a saved architecture may nest containers (a Sequential in a Sequential ...)
MAX_SPEC_DEPTH = 32


def spec_state_entries(spec: Any, prefix: str = "", depth: int = 0) -> dict[str, StateEntry]:
    """Check a spec read from a file, and list the state entries of the module it declares
    (by dotted name, as :meth:`Module.state_shapes`) without building anything.

    A valid spec is an object with exactly the keys of its type's ``spec_keys``:
    ``{"type": T, "args": {...}}`` with ``T`` a registered module type and ``args`` its
    ``spec_arguments``, each of its kind, or for a container ``{"type": "Sequential",
    "layers": [[name, spec], ...]}``. Nothing is allocated, so that a file's arrays can be
    checked against the architecture it declares before any layer is built.

    Raises
    ------
    ValueError
        Naming the layer, what was expected and what was found.
    """
    where = f"layer {short_repr(prefix[:-1], 80)}" if prefix else "the architecture"
    if depth > MAX_SPEC_DEPTH:
        raise ValueError(f"{where}: containers nested more than {MAX_SPEC_DEPTH} deep")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected an object with a 'type', found "
                         f"{short_repr(spec)}")
    type_name = spec.get("type")
    cls = Module.registry.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown module type {short_repr(type_name)}; known types: "
                         f"{', '.join(sorted(Module.registry))}")
    where = f"{where} ({cls.__name__})"
    if set(spec) != set(cls.spec_keys):
        raise ValueError(f"{where}: expected the keys {list(cls.spec_keys)}, found "
                         f"{sorted(spec)}")
    entries = {}
    if "args" in cls.spec_keys:
        _check_spec_args(cls, spec["args"], where)
        for name, shape in cls.spec_state_shapes(spec["args"]).items():
            entries[prefix + name] = StateEntry(shape, where, name in cls.spec_masks)
    for name, child in cls.spec_children(spec, where):
        entries.update(spec_state_entries(child, f"{prefix}{name}.", depth + 1))
    return entries


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters for an error message; a list or dict read
    from a file is shown by its type only (its repr could be huge, or nested too deeply)."""
    if value is None or isinstance(value, (bool, int, float, str, tuple)):
        text = repr(value)
        return text if len(text) <= limit else text[:limit - 3] + "..."
    return f"a {type(value).__name__}"


def _check_spec_args(cls: type[Module], args: Any, where: str) -> None:
    """``args`` holds exactly ``cls.spec_arguments``, each of its kind."""
    if not isinstance(args, dict):
        raise ValueError(f"{where}: args must be an object, found {short_repr(args)}")
    expected = cls.spec_arguments
    unknown = sorted(set(args) - set(expected))
    missing = [name for name, kind in expected.items() if name not in args and not kind.optional]
    if unknown or missing:
        takes = ", ".join(expected) or "no arguments"
        problem = (f"unknown argument {short_repr(unknown[0])}" if unknown
                   else f"missing argument {missing[0]!r}")
        raise ValueError(f"{where}: {problem}; a {cls.__name__} takes {takes}")
    for name, kind in expected.items():
        if name in args and not kind.accepts(args[name]):
            raise ValueError(f"{where}: {name} must be {kind.expected}, found "
                             f"{short_repr(args[name])}")


def copy_bias_name_and_mode(source: Module, target: Module) -> None:
    """Give ``target``, a layer built to replace ``source`` (its sparse, shared, variational
    or gated twin, or the ordinary layer back), the bias of ``source`` (with its mask, if
    any), its name and its training mode."""
    if source.bias is not None:
        target.bias.data = source.bias.data.astype(target.bias.dtype, copy=True)
        if "bias" in source._masks:
            target.set_mask("bias", source._masks["bias"])
    object.__setattr__(target, "name", source.name)
    target.train(source.training)


def replace_layers(model: Module, replacement: Callable[[Module], Module | None]) -> Module:
    """Replace every layer for which ``replacement(layer)`` gives a new one, in its parent
    (in place, keeping its place and name); returns the model, or its replacement when the
    model is itself such a layer. The old layer's parameters are marked ``replaced_by`` the
    new layer (an optimiser still holding them then refuses to step). The conversions to
    and from the sparse, variational and L0-gated twins all go through here."""

    def replace(layer: Module) -> Module | None:
        new = replacement(layer)
        if new is not None:
            for p in layer.parameters():
                p.replaced_by = new.describe()
        return new

    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            new = replace(child)
            if new is not None:
                setattr(parent, name, new)
    return replace(model) or model


def clone(model: Module) -> Module:
    """An independent copy of a model: weights, masks, snapshots and all."""
    return copy.deepcopy(model)
