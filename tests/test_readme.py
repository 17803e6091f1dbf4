"""The README's Python examples run as written."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def optional_packages_missing(block: str) -> list[str]:
    """The optional packages (PyTorch, safetensors) a block uses that are not installed:
    such a block is skipped (the dev extras and CI install both)."""
    return [package for package in ("torch", "safetensors")
            if re.search(rf"\b{package}\b", block) and importlib.util.find_spec(package) is None]


@pytest.fixture
def torch_defaults():
    """PyTorch's default dtype as a reader's fresh process has it (float32), whatever an
    earlier test of this process set (the ``torch`` fixture sets float64)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(default)


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys, torch_defaults):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    assert blocks
    namespace: dict = {}
    for block in blocks:
        if optional_packages_missing(block):
            continue
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "lenet300.npz").exists()
    assert "accuracy" in capsys.readouterr().out


def test_readme_setup_is_two_commands_matching_ci():
    text = README.read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2
    assert commands[0].endswith("tinysparse demo")
    test_command = commands[1].rsplit("&& ", 1)[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert test_command in ci, f"CI must run the README's test command: {test_command}"
