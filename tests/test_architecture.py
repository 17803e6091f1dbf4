"""The shape of the house: no import circles, and reading never changes state.

The import graph is read from the source with ``ast`` — importing the package could not
show a circle, because ``tinysparse/__init__.py`` imports everything first. Every
``import`` counts, also those inside functions (a lazy import hides a circle, it does not
remove it); only those under ``if TYPE_CHECKING:`` are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinysparse"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    return skipped


def imports_of(name: str) -> set[str]:
    """The tinysparse modules that module ``name`` imports (a submodule when the imported
    name is one, else the package)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped = _type_checking_blocks(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a list of modules, first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_are_read_from_the_source():
    graph = {name: imports_of(name) for name in MODULES}
    assert "tinysparse.autograd.tensor" in graph["tinysparse.autograd.ops"]
    assert "tinysparse.kernels" in graph["tinysparse.autograd.nn_ops"]


def test_no_import_cycle_in_tinysparse():
    graph = {name: imports_of(name) for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def external_imports_of(name: str) -> set[str]:
    """The top-level packages outside tinysparse that module ``name`` imports (lazy
    imports too, ``TYPE_CHECKING`` blocks included: a type hint must not need torch)."""
    path = MODULES[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found - {"tinysparse"}


def test_tinysparse_never_imports_torch():
    """PyTorch is a test oracle only; the bridge to it (tinysparse/export.py) reads and
    writes safetensors files with NumPy."""
    assert "safetensors" in external_imports_of("tinysparse.export")
    importers = sorted(name for name in MODULES if "torch" in external_imports_of(name))
    assert not importers, f"these modules import torch: {importers}"


# ---------------------------------------------------------------- reading changes nothing
def read_everything(model) -> int:
    """Read every public attribute (properties included) of every layer and parameter,
    and the model's usual descriptions; returns how many attributes were read."""
    from tinysparse.metrics import sparsity_report

    count = 0
    for module in model.modules():
        for thing in (module, *[p for p in module._parameters.values() if p is not None]):
            for name in dir(thing):
                if name.startswith("_"):
                    continue
                try:
                    getattr(thing, name)
                except AttributeError:  # e.g. a sparse layer's .weight explains itself
                    pass
                count += 1
        for p in module.parameters():
            _ = p.data, p.grad, p.shape, p.mask
    model.state_dict()
    dict(model.named_masks())
    repr(model)
    sparsity_report(model)
    return count


def train_a_few_steps(build, read: bool):
    import numpy as np

    import tinysparse as ts

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    model = build(seed=0)
    last = ts.prune.prunable_parameters(model)[-1]
    ts.prune.prune(model, 0.95, overrides={last: 0.5})  # sparse and masked-dense layers
    optimizer = ts.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    losses = []
    for _ in range(4):
        if read:
            assert read_everything(model) > 50
        loss = ts.autograd.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if read:  # gradients present now
            read_everything(model)
        optimizer.step()
        losses.append(loss.item())
    return losses, model.state_dict()


def test_reading_any_attribute_changes_nothing_a_training_step_computes():
    import numpy as np

    import tinysparse as ts

    for build in (ts.nn.lenet300, ts.nn.lenet5):
        quiet_losses, quiet_state = train_a_few_steps(build, read=False)
        read_losses, read_state = train_a_few_steps(build, read=True)
        assert read_losses == quiet_losses  # bit for bit
        for name, values in quiet_state.items():
            np.testing.assert_array_equal(read_state[name], values, err_msg=name)
