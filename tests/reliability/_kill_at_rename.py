"""Runs ``mobile-nas ARGS`` and SIGKILLs itself at a known point of an atomic write.

    python -m tests.reliability._kill_at_rename NAME N before|after ARGS...

Every result file is written to a temporary file and renamed onto its target with
``os.replace`` (:mod:`mobile_nas.atomic`, and the standalone latency runner). This wrapper
wraps ``os.replace`` and, at the N-th rename onto a file called NAME, sends SIGKILL to its own
process either just *before* the rename (the temporary file is complete, the target still the
old one) or just *after* it (the target is the new file). SIGKILL cannot be caught: no
``finally`` block or atexit handler runs, as when a machine loses power or the OOM killer
strikes. The kill point is exact, so the tests need no sleeps and no polling.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main() -> None:
    name, nth, when, *args = sys.argv[1:]
    if when not in ("before", "after"):
        raise SystemExit(f"when must be 'before' or 'after', got {when!r}")
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *a, **kw):
        nonlocal seen
        if Path(dst).name == name:
            seen += 1
            if seen == int(nth):
                if when == "before":
                    os.kill(os.getpid(), signal.SIGKILL)
                real_replace(src, dst, *a, **kw)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *a, **kw)

    os.replace = replace
    from mobile_nas.cli import main as cli_main

    sys.exit(cli_main(args))


if __name__ == "__main__":
    main()
