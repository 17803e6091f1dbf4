"""How tinysparse writes files (``data/storage.py``): the umask's modes or the replaced file's."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest


def run_python(code, *args):
    """Start ``python -c code args`` (with this checkout's tinysparse)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- modes

WRITE_WITH_UMASK = """
    import os, sys
    from pathlib import Path
    from tinysparse.data.storage import atomic_path

    os.umask(int(sys.argv[1], 8))  # in this subprocess only: the umask is process-wide
    folder = Path(sys.argv[2])
    for name in sys.argv[3:]:
        with atomic_path(folder / name) as temporary:
            temporary.write_bytes(b"new contents")
"""


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640)],
                         ids=["umask-022", "umask-027"])
def test_new_files_get_the_umasks_mode_and_replaced_files_keep_theirs(tmp_path, umask,
                                                                      expected):
    for name, old_mode in (("was-0644", 0o644), ("was-0600", 0o600), ("was-0444", 0o444)):
        (tmp_path / name).write_bytes(b"old")
        os.chmod(tmp_path / name, old_mode)
    process = run_python(WRITE_WITH_UMASK, oct(umask), tmp_path,
                         "new", "was-0644", "was-0600", "was-0444", "sub/new")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert mode(tmp_path / "new") == mode(tmp_path / "sub" / "new") == expected
    assert mode(tmp_path / "was-0644") == 0o644
    assert mode(tmp_path / "was-0600") == 0o600
    assert mode(tmp_path / "was-0444") == 0o444  # a read-only file can still be replaced
    assert (tmp_path / "was-0644").read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "new", "sub", "was-0444", "was-0600", "was-0644"]
