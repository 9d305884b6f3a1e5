"""A throw-away PostgreSQL cluster on a loopback port, from Debian's postgresql package.

``.ci/run`` installs the package. The server runs as the ``postgres`` system user when the
tests run as root (initdb refuses root), and the cluster folder is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh database; stops and deletes the cluster after."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="mnas-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    log = root / "server.log"
    try:
        subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "mnas",
                                        "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        subprocess.run(_as_server_user([
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=100",
            "start"]), check=True, capture_output=True)
        url = f"postgresql://mnas@127.0.0.1:{port}/postgres"
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        if data.exists():
            subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m",
                                            "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
