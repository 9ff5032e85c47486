"""``gemstone run --reload``: restart the service when its code changes (development only).

watchfiles (the ``reload`` extra, what uvicorn and FastStream use) watches the ``.py``
files under the given directories with the operating system's notifications and runs
the service in a child ``gemstone run`` process, stopped with SIGINT and started again
after each change. SIGINT or SIGTERM to the supervisor stops both.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._output import ExitCode, fail

__all__ = ["supervise"]


def _report(changes: set[tuple[Any, str]]) -> None:
    changed = sorted(path for _, path in changes)
    print(
        f"gemstone: {changed[0] if changed else 'files'} changed, restarting",
        file=sys.stderr,
        flush=True,
    )


def supervise(args: Sequence[str], roots: Sequence[Path]) -> int:
    """Run ``gemstone run ARGS`` in a child, restart it on changes; return on SIGINT/SIGTERM."""
    try:
        import watchfiles
    except ImportError:
        fail(
            "--reload needs watchfiles: python -m pip install 'gemstone-aio[reload]'",
            ExitCode.USAGE,
        )
    watched = ", ".join(str(r) for r in roots)
    print(f"gemstone: watching {watched} for changes", file=sys.stderr, flush=True)
    command = shlex.join([sys.executable, "-m", "gemstone_aio", "run", *args])
    watchfiles.run_process(
        *roots,
        target=command,
        target_type="command",
        callback=_report,
        watch_filter=watchfiles.PythonFilter(),
        debounce=400,
    )
    return 0
