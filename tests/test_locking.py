"""The one inter-process file lock: another process cannot take it while it is held, and can
once it is released (also after an exception inside the block)."""

import subprocess
import sys

import pytest

from mobile_nas.locking import exclusive_lock, lock_file_for

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as fh:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


def _other_process_gets_it(lock_file) -> bool:
    rc = subprocess.run([sys.executable, "-c", TRY_LOCK, str(lock_file)]).returncode
    assert rc in (0, 3)
    return rc == 0


def test_held_lock_excludes_other_processes_until_released(tmp_path):
    lock = lock_file_for(tmp_path / "table.json")
    assert lock == tmp_path / ".table.json.lock"
    with exclusive_lock(lock):
        assert not _other_process_gets_it(lock)
    assert _other_process_gets_it(lock)
    with pytest.raises(RuntimeError), exclusive_lock(lock):
        raise RuntimeError("inside the block")
    assert _other_process_gets_it(lock)
