"""The client example runs: its service in one subprocess, its client script in another."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example_client"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _documented_service_command() -> list[str]:
    """The command docs/client.md gives to start the service, on port 0 (a free one)."""
    text = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    match = re.search(r"^\$ python (examples/example_client/service\.py[^&\n]*)", text, re.M)
    assert match is not None, "docs/client.md no longer shows how to start the service"
    script, *args = shlex.split(match.group(1))
    return [sys.executable, str(ROOT / script), *(a.replace("8000", "0") for a in args)]


@pytest.fixture
def example_service() -> Iterator[str]:
    """Start ``service.py`` as docs/client.md says, on a free port; yield its URL from the
    "serving at" log line."""
    proc = subprocess.Popen(
        _documented_service_command(),
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    found: list[str] = []
    ready = threading.Event()
    lines: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = re.search(r"serving at (http://\S+)", line)
            if match and not found:
                found.append(match.group(1))
                ready.set()

    watcher = threading.Thread(target=watch, daemon=True)
    with proc:
        watcher.start()
        try:
            assert ready.wait(20), f"the example service did not start: {''.join(lines)}"
            yield found[0]
        finally:
            proc.terminate()
            assert proc.wait(20) == 0, "".join(lines)
            watcher.join(5)


def test_client_example(example_service: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "client.py"), example_service],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=40,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert done.stderr == ""
    assert "hello async world\nhello call\n" in out
    assert "hello first / hello second" in out
    assert "hello world\nfinished? False\n" in out
    assert "finished sleeping for 1.0 seconds | error: None" in out
    assert out.count("callback: finished sleeping for 1.0 seconds") == 3
    assert (
        "as completed: finished sleeping for 0.1 seconds\nas completed: finished sleeping for 0.2 seconds\n"
        in out
    )
    assert "first completed: finished sleeping for 0.1 seconds" in out
    assert (
        "call_method_async: finished sleeping for 0.1 seconds\n"
        "call_method_async: finished sleeping for 0.2 seconds\n"
        "successful? True | finished sleeping for 0.2 seconds\n"
    ) in out
    assert "error: -32601 Method not found" in out
    for mode in ("async", "blocking"):
        took = float(re.search(rf"{mode}: 3 parallel calls took ([\d.]+) s", out).group(1))  # type: ignore[union-attr]
        assert took < 2.5, f"{mode} calls did not overlap: {took} s for three 1 s calls"
