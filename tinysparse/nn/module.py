"""Module and Parameter: the containers every layer and model is built from.

A :class:`Module` registers the :class:`Parameter` objects and sub-modules assigned to it
as attributes (as in PyTorch), so ``model.named_parameters()`` finds ``"fc1.weight"`` and
``model.state_dict()`` copies them. A module can also own *masks* for its parameters
(see :meth:`Module.set_mask`): the pruning machinery puts them there, the layer applies
them in its forward pass, and the optimizers keep pruned weights at exactly zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import Tensor, get_default_dtype, no_grad, softmax
from tinysparse.sparse.csr import SparseGradient, SparseStructure
from tinysparse.sparse.mask import Mask


class Parameter(Tensor):
    """A leaf tensor that a module trains. ``requires_grad`` is True.

    ``mask`` is the :class:`~tinysparse.sparse.mask.Mask` of the module that owns this
    parameter, or None; the optimizers read it to keep pruned weights at zero.

    ``grad`` is a dense array like any tensor's. A layer on the sparse path computes the
    weight gradient only at the kept positions: the parameter keeps it compact (a
    :class:`~tinysparse.sparse.SparseGradient`) and expands it the first time ``.grad`` is
    read — the optimiser reads the compact values directly (:meth:`kept_gradient`).

    The weights themselves work the same way on the sparse path. There the master copy is
    compact — the kept weights in CSR order (:meth:`kept_weights`), which the sparse
    kernels read and the optimiser updates in place — and ``.data`` is brought up to date
    from it only when someone reads ``.data``. Reading ``.data`` hands the dense array back
    as the master copy (the caller may write into it), so the next sparse forward pass
    gathers the kept weights from it again. Either way ``.data`` always shows the current
    weights; only the speed differs (the kernels then never touch the mostly-zero dense
    array, which on a large layer no longer stays in the cache between two uses). One
    consequence: an array taken from ``.data`` *before* sparse-path steps does not follow
    them (on the dense path it would, being updated in place) — read ``.data`` again.
    """

    __slots__ = ("mask", "_grad", "_dense", "_kept")

    def __init__(self, data: Any, dtype: Any = None) -> None:
        array = np.asarray(data)
        if dtype is None and array.dtype.kind != "f":
            dtype = get_default_dtype()
        super().__init__(array, requires_grad=True, dtype=dtype)
        self.mask: Mask | None = None

    @property
    def data(self) -> np.ndarray:
        """The weights as a dense array (the kept weights written into it first, if the
        compact copy was the master)."""
        if self._kept is not None:
            structure, values = self._kept
            self._dense.reshape(-1)[structure.positions] = values  # C-contiguous: a view
            self._kept = None
        return self._dense

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._dense = value
        self._kept = None

    # shape and dtype never change by writing the kept weights back: read them directly
    @property
    def shape(self) -> tuple[int, ...]:
        return self._dense.shape

    @property
    def dtype(self) -> np.dtype:
        return self._dense.dtype

    @property
    def ndim(self) -> int:
        return self._dense.ndim

    @property
    def size(self) -> int:
        return self._dense.size

    def kept_weights(self, structure: SparseStructure) -> np.ndarray:
        """The weights at ``structure``'s non-zeros, in CSR order — from now on the master
        copy, which the caller may update in place (until ``.data`` is next read)."""
        kept = self._kept
        if kept is not None and kept[0] is structure:
            return kept[1]
        dense = self.data  # another structure's kept weights are written back first
        if not dense.flags.c_contiguous:
            dense = self._dense = np.ascontiguousarray(dense)
        values = structure.gather(dense)
        self._kept = (structure, values)
        return values

    @property
    def grad(self) -> np.ndarray | None:
        """dLoss/dParameter, a dense array (or None before a backward pass)."""
        if isinstance(self._grad, SparseGradient):
            self._grad = self._grad.dense()
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        self._grad = value

    @property
    def has_grad(self) -> bool:
        """Whether a gradient is stored (asking ``.grad is None`` would expand a compact one)."""
        return self._grad is not None

    def accumulate_grad(self, grad: Any) -> None:
        """Add one backward pass's gradient, keeping a compact one compact."""
        self._grad = grad if self._grad is None else self._grad + grad

    def kept_gradient(self, structure: SparseStructure) -> np.ndarray:
        """The gradient at ``structure``'s non-zeros, in CSR order, without building the
        dense gradient when it came compact from the sparse kernels."""
        grad = self._grad
        if isinstance(grad, SparseGradient) and grad.structure is structure:
            return grad.values
        return structure.gather(np.ascontiguousarray(self.grad))

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters and sub-modules as
    attributes, and implement :meth:`forward`. Calling a module runs ``forward``; a NumPy
    array passed in is wrapped in a tensor of the module's dtype first.
    """

    #: every Module subclass by name, so that saved models can be rebuilt (see ``spec``)
    registry: ClassVar[dict[str, type[Module]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
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
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
            if not value.name:
                object.__setattr__(value, "name", name)
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
        """Class probabilities ``softmax(model(x))`` for a NumPy batch, in evaluation mode."""
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
        return sum(p.size for p in self.parameters())

    def get_parameter(self, qualified_name: str) -> Parameter:
        """The parameter called e.g. ``"fc1.weight"``."""
        module_name, _, name = qualified_name.rpartition(".")
        module = self.get_submodule(module_name)
        if name not in module._parameters:
            raise KeyError(
                f"no parameter {qualified_name!r}; parameters are "
                f"{[n for n, _ in self.named_parameters()]}"
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
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's values, by dotted name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy values into the parameters (shapes must match; masks are re-applied).

        With ``strict`` (the default) the keys must be exactly this model's parameters.
        """
        own = dict(self.named_parameters())
        if strict:
            missing = sorted(set(own) - set(state))
            unexpected = sorted(set(state) - set(own))
            if missing or unexpected:
                raise KeyError(
                    f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
                )
        for name, values in state.items():
            if name not in own:
                continue
            param = own[name]
            values = np.asarray(values)
            if values.shape != param.shape:
                raise ValueError(
                    f"load_state_dict: {name} has shape {param.shape} in the model but "
                    f"{values.shape} in the state"
                )
            param.data = values.astype(param.dtype, copy=True)
            if param.mask is not None:  # a pruned weight never comes back
                param.data *= param.mask.as_float(param.dtype)

    # ---------------------------------------------------------------- description
    def spec(self) -> dict[str, Any]:
        """A JSON-able description from which :func:`build_from_spec` rebuilds the module."""
        return {"type": type(self).__name__, "args": self.constructor_args()}

    def constructor_args(self) -> dict[str, Any]:
        """Keyword arguments that recreate this module's architecture (not its weights)."""
        return {}

    def describe(self) -> str:
        """How errors name this module, e.g. ``Linear 'fc1' (784 -> 300)``."""
        label = f" {self.name!r}" if self.name else ""
        return f"{type(self).__name__}{label}{self.extra_repr_short()}"

    def extra_repr_short(self) -> str:
        return ""

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.constructor_args().items())

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)


def build_from_spec(spec: dict[str, Any]) -> Module:
    """Rebuild a module (untrained) from :meth:`Module.spec`."""
    try:
        cls = Module.registry[spec["type"]]
    except KeyError:
        raise ValueError(
            f"unknown module type {spec.get('type')!r} in model spec; known types: "
            f"{sorted(Module.registry)}"
        ) from None
    if hasattr(cls, "from_spec"):
        return cls.from_spec(spec)
    return cls(**spec.get("args", {}))
