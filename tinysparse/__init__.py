"""tinysparse: learn and teach neural-network compression, from scratch, in NumPy.

A small reverse-mode autograd engine on NumPy arrays, the LeNet models, training, and the
compression algorithms of the literature — each short, readable and tested against a
reference.

Quick tour::

    import tinysparse as ts
    data = ts.load_dataset("mnist-5k")
    model = ts.nn.lenet300(seed=0)
    ts.fit(model, data, epochs=5, seed=0)
    print(ts.evaluate(model, *data.test))
    ts.save(model, "lenet300.npz")
    model = ts.load("lenet300.npz")
    print(model.predict(data.x_test[:10]))
    plan = ts.compile_inference(model)   # one prediction at a time, without the graph
    print(plan.predict(data.x_test[:1]))
"""

from tinysparse import threads as _threads

# Before NumPy loads: idle BLAS/OpenMP threads must sleep, not spin (see threads.py).
_threads.configure()

from tinysparse import (  # noqa: E402
    autograd,
    calibration,
    compress,
    data,
    distill,
    inference,
    kernels,
    metrics,
    nn,
    optim,
    prune,
    sparse,
)
from tinysparse.autograd import Tensor, gradcheck, no_grad  # noqa: E402
from tinysparse.data import load_dataset  # noqa: E402
from tinysparse.export import export_safetensors, import_safetensors  # noqa: E402
from tinysparse.inference import InferenceModel, compile_inference  # noqa: E402
from tinysparse.io import load, save  # noqa: E402
from tinysparse.nn import build_model  # noqa: E402
from tinysparse.train import History, TrainingDiverged, evaluate, fit  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name: str):
    """``tinysparse.plot`` is imported on first use (it loads matplotlib)."""
    if name == "plot":
        import importlib

        return importlib.import_module("tinysparse.plot")
    raise AttributeError(f"module 'tinysparse' has no attribute {name!r}")

__all__ = [
    "History", "InferenceModel", "Tensor", "TrainingDiverged", "autograd", "build_model",
    "calibration", "compile_inference", "compress", "data", "distill", "inference",
    "evaluate", "export_safetensors",
    "fit", "gradcheck", "import_safetensors", "kernels", "load", "load_dataset", "metrics", "nn",
    "no_grad", "optim", "prune", "save", "sparse",
]
