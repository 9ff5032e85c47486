"""``gemstone run --reload``: restart the service when its code changes (development only).

watchfiles (the ``reload`` extra, what uvicorn and FastStream use) watches the ``.py``
files under the given directories with the operating system's notifications. The
service runs in a child ``gemstone run`` process, stopped and started again after each
change; a child that dies (a syntax error, say) is reported, and the next change starts
it again. SIGINT or SIGTERM to the supervisor stops both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ._output import ExitCode, fail

__all__ = ["supervise"]


def _say(message: str) -> None:
    print(f"gemstone: {message}", file=sys.stderr, flush=True)


def _start(args: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gemstone_aio", "run", *args])


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()  # the service shuts down cleanly on SIGTERM
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def supervise(args: Sequence[str], roots: Sequence[Path]) -> int:
    """Run ``gemstone run ARGS`` in a child, restart it on changes; return on SIGINT/SIGTERM."""
    try:
        import watchfiles
    except ImportError:
        fail(
            "--reload needs watchfiles: python -m pip install 'gemstone-aio[reload]'",
            ExitCode.USAGE,
        )
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: children go too
    _say(f"watching {', '.join(str(r) for r in roots)} for changes")
    child = _start(args)
    reported = False
    try:
        # Yields the changed files, or an empty set every half second with no change.
        for changes in watchfiles.watch(
            *roots,
            watch_filter=watchfiles.PythonFilter(),
            debounce=400,
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if changes:
                _say(f"{sorted(path for _, path in changes)[0]} changed, restarting")
                _stop(child)
                child, reported = _start(args), False
            elif child.poll() is not None and not reported:
                reported = True
                _say(f"the service exited with {child.returncode}; waiting for a change")
    except KeyboardInterrupt:  # arrived between two yields of watch()
        pass
    finally:
        _stop(child)
    return 0
