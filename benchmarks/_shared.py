"""What the benchmark scripts share: where their results and protocols live, how a script's
``main`` answers a library error (one line, exit 2), and the machine facts results record
(from the library's one machine description, :class:`mobile_nas.cost.latency.runner.Machine`).

Scripts run as ``python benchmarks/<name>.py`` (this folder on the path) and import it as
``_shared``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency.runner import this_machine
from mobile_nas.errors import MobileNasError

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"
PROTOCOLS = BENCHMARKS / "protocols"

#: Names results use for :class:`~mobile_nas.cost.latency.runner.Machine` fields.
_MACHINE_ALIASES = {"cores": "cpu_count", "host": "device"}


def result_path(name: str) -> Path:
    """``benchmarks/results/<name>``: a results stem (``.json``/``.md`` added by the
    script), a file or a folder of one benchmark."""
    return RESULTS / name


def run_main(run: Callable[[], int | None], *, prog: str = "",
             also: tuple[type[Exception], ...] = ()) -> int:
    """``run()``'s exit status (``None`` is 0). A :class:`MobileNasError` (or one of
    ``also``) is the user's to fix: printed as one line, ``[prog: ]error: ...``, exit 2."""
    try:
        return run() or 0
    except (MobileNasError, *also) as exc:
        print(f"{prog}: error: {exc}" if prog else f"error: {exc}", file=sys.stderr)
        return 2


def machine_facts(*fields: str, **extra: Any) -> dict[str, Any]:
    """This machine's ``fields`` (:class:`~mobile_nas.cost.latency.runner.Machine` names, or
    ``cores`` for ``cpu_count`` and ``host`` for ``device``) in that order, then ``extra``
    (e.g. ``torch=torch.__version__``)."""
    machine = this_machine().to_json()
    return {f: machine[_MACHINE_ALIASES.get(f, f)] for f in fields} | extra
