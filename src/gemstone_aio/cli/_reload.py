"""``gemstone run --reload``: a supervisor that restarts the service when code changes.

It polls the modification times of the ``.py`` files under the watched directories (no
extra dependency) and runs the service in a child ``gemstone run`` process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

__all__ = ["POLL_INTERVAL", "snapshot", "supervise"]

POLL_INTERVAL = 0.3
"""Seconds between two scans of the watched files."""

_SKIP = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache", ".ruff_cache"}


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP and not d.startswith(".")]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath, name)


def snapshot(roots: Sequence[Path]) -> dict[Path, int]:
    """Modification time (ns) of every watched ``.py`` file."""
    found: dict[Path, int] = {}
    for root in roots:
        for path in _files(root):
            with contextlib.suppress(OSError):
                found[path] = path.stat().st_mtime_ns
    return found


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _start(args: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gemstone_aio", "run", *args])


def _terminate(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def supervise(args: Sequence[str], roots: Sequence[Path]) -> int:
    """Run ``gemstone run ARGS`` in a child, restart it on changes; return on SIGINT/SIGTERM."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    watched = ", ".join(str(r) for r in roots)
    print(f"gemstone: watching {watched} for changes", file=sys.stderr, flush=True)
    seen = snapshot(roots)
    child = _start(args)
    reported = False
    try:
        while True:
            time.sleep(POLL_INTERVAL)
            now = snapshot(roots)
            if now != seen:
                changed = sorted(
                    {
                        *now.keys() ^ seen.keys(),
                        *(p for p in now.keys() & seen.keys() if now[p] != seen[p]),
                    }
                )
                seen = now
                print(
                    f"gemstone: {changed[0] if changed else 'files'} changed, restarting",
                    file=sys.stderr,
                    flush=True,
                )
                _terminate(child)
                child, reported = _start(args), False
            elif child.poll() is not None and not reported:
                reported = True
                print(
                    f"gemstone: the service exited with {child.returncode}; waiting for a change",
                    file=sys.stderr,
                    flush=True,
                )
    except _Stop:
        pass
    finally:
        _terminate(child)
    return 0
