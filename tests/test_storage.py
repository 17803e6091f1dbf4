"""How tinysparse writes files (``data/storage.py``): the umask's modes or the replaced file's,
nothing half-written or left behind, not even when SIGTERM arrives in the middle."""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from tinysparse.data.storage import atomic_path


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


# ---------------------------------------------------------------- SIGTERM

SAVE_UNTIL_KILLED = """
    import signal, sys, time
    import numpy as np
    import tinysparse as ts

    if sys.argv[2] == "own handler":
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
    savez_compressed = np.savez_compressed

    def write_then_wait(file, **arrays):  # the save is half done when SIGTERM comes
        savez_compressed(file, **arrays)
        file.flush()
        print("writing", flush=True)
        time.sleep(60)

    np.savez_compressed = write_then_wait
    ts.save(ts.nn.lenet300(seed=1), sys.argv[1])
"""


@pytest.mark.parametrize("handler,returncode", [("default", -signal.SIGTERM),
                                                ("own handler", 3)], ids=["default", "own"])
def test_sigterm_during_save_keeps_the_previous_file_and_leaves_nothing(tmp_path, handler,
                                                                        returncode):
    import tinysparse as ts

    path = tmp_path / "model.npz"
    ts.save(ts.nn.lenet300(seed=0), path)
    previous = path.read_bytes()
    process = run_python(SAVE_UNTIL_KILLED, path, handler)
    try:
        assert process.stdout.readline() == "writing\n", process.stderr.read()
        assert len(list(tmp_path.glob(".model.npz.*.part"))) == 1  # half a model, hidden
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    # the default: killed by SIGTERM, as it would have been outside a save; a handler of
    # the user's own stays in charge (here it exits with status 3)
    assert process.returncode == returncode, stderr
    assert path.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_the_previous_sigterm_handler_is_put_back(tmp_path):
    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with atomic_path(tmp_path / "a") as temporary:
            temporary.write_bytes(b"a")
            during = signal.getsignal(signal.SIGTERM)
        assert during != signal.SIG_DFL  # cleans up on SIGTERM while writing
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

        def own_handler(signum, frame):
            pass

        signal.signal(signal.SIGTERM, own_handler)
        with atomic_path(tmp_path / "b") as temporary:
            temporary.write_bytes(b"b")
            assert signal.getsignal(signal.SIGTERM) is own_handler  # the user's stays
        assert signal.getsignal(signal.SIGTERM) is own_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_other_threads_leave_the_signal_handlers_alone(tmp_path):
    seen = []

    def save():
        with atomic_path(tmp_path / "from-a-thread") as temporary:
            temporary.write_bytes(b"x")
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=save)
    thread.start()
    thread.join()
    assert seen == [before]
    assert (tmp_path / "from-a-thread").read_bytes() == b"x"


# ---------------------------------------------------------------- leftovers of killed runs


def test_leftovers_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    destination = tmp_path / "model.npz"
    crashed = tmp_path / ".model.npz.k3x9_q2a.part"  # as tempfile.mkstemp named them
    crashed.write_bytes(b"half a model")
    being_written = tmp_path / ".model.npz.0123abcd.part"  # another process's save
    being_written.write_bytes(b"half another model")
    others = [tmp_path / ".other.npz.k3x9_q2a.part", tmp_path / ".model.npz.x.npz.k3x9_q2a.part",
              tmp_path / "model.npz.k3x9_q2a.part"]
    for other in others:
        other.write_bytes(b"not ours")
    with open(being_written, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as atomic_path holds the file it writes
        with atomic_path(destination) as temporary:
            temporary.write_bytes(b"model")
    assert not crashed.exists()
    assert being_written.exists() and all(other.exists() for other in others)
    assert destination.read_bytes() == b"model"


def test_concurrent_saves_of_one_file_do_not_remove_each_others_temporary_files(tmp_path):
    destination, errors = tmp_path / "shared.npz", []

    def save_often(worker):
        try:
            for i in range(30):
                with atomic_path(destination) as temporary:
                    temporary.write_bytes(f"{worker} {i}".encode())
        except Exception as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=save_often, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npz"]


def test_a_save_that_cannot_write_names_the_destination_not_the_temporary_file(tmp_path):
    import tinysparse as ts

    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    model = ts.nn.mlp([4, 3], flatten=False)
    with pytest.raises(OSError, match=r"x\.npz: .*file is a file, where a folder should be"):
        ts.save(model, blocker / "sub" / "x.npz")
    with pytest.raises(OSError) as error:
        ts.save(model, "/proc/x.npz")
    assert "/proc/x.npz: cannot write in /proc" in str(error.value)
    assert ".part" not in str(error.value)
