"""Shared pieces of the benchmarks: free ports, server processes, wrk runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Set by steady_client(): (the servers' CPU, the load generator's CPU), else None.
_pinned: tuple[int, int] | None = None


@contextlib.contextmanager
def steady_client(enabled: bool = True) -> Iterator[None]:
    """Pin servers to CPU 0 and ``wrk`` to CPU 1, and keep CPU 1 from ever idling.

    On a virtual machine, waking a virtual CPU that has gone idle costs the waker far
    more than waking a busy one, and a server pays that cost on every answer it sends to
    an idle ``wrk``. The slower server leaves ``wrk`` idle longer, so it pays more per
    request: ratios between servers come out lower than the work they do (measured with
    ``perf``: the wake-up inside ``sendto`` cost the bare handler 8 µs per request and
    gemstone-aio 16 µs, for the same system calls). A spinner at the lowest priority
    (``SCHED_IDLE``, which yields to ``wrk`` at once) keeps CPU 1 busy, so every wake-up
    costs the same and the ratios follow the servers' own work. Needs two CPUs, taskset
    and chrt (util-linux).
    """
    global _pinned
    if not enabled:
        yield
        return
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("steady_client needs two CPUs")
    spinner = subprocess.Popen(
        ["taskset", "-c", "1", "chrt", "--idle", "0", sys.executable, "-c", "while True: pass"]
    )
    _pinned = (0, 1)
    try:
        yield
    finally:
        _pinned = None
        spinner.kill()
        spinner.wait()


def _on_cpu(argv: list[str], which: int) -> list[str]:
    return argv if _pinned is None else ["taskset", "-c", str(_pinned[which]), *argv]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def callgrind_count(pid: int, out_file: Path, load: Callable[[], object]) -> int:
    """Instructions process ``pid`` executes while ``load()`` runs.

    The process runs under ``valgrind --tool=callgrind --callgrind-out-file=OUT_FILE``
    (instrumentation on from the start or not): its counters are switched on and zeroed,
    ``load()`` runs, and the dump callgrind then writes is read.
    """
    control = ["callgrind_control"]
    subprocess.run([*control, "--instr=on", str(pid)], check=True, capture_output=True)
    subprocess.run([*control, "--zero", str(pid)], check=True, capture_output=True)
    load()
    subprocess.run([*control, "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while True:
        dumps = sorted(
            out_file.parent.glob(f"{out_file.name}.*"), key=lambda path: path.stat().st_mtime
        )
        summary = dumps and re.search(r"^summary: (\d+)", dumps[-1].read_text(), re.MULTILINE)
        if summary:
            return int(summary.group(1))
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no dump next to {out_file}")
        time.sleep(0.2)


@dataclass
class Server:
    """A server process on a free port (``src``: where ``gemstone_aio`` is imported from)."""

    name: str
    argv: list[str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    src: Path = ROOT / "src"

    def start(self) -> Server:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(self.src)}
        self.process = subprocess.Popen(
            _on_cpu([*self.argv, str(self.port)], 0),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def rss_kib(self) -> int:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


@dataclass
class WrkResult:
    """Requests per second and latency percentiles (ms) of one wrk run."""

    rps: float
    p50: float
    p99: float
    requests: int


def wrk(url: str, body: str, *, seconds: int, connections: int) -> WrkResult:
    """POST ``body`` to ``url`` with wrk for ``seconds``; errors abort the benchmark."""
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run(
            _on_cpu(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url], 1),
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run against {url}:\n{out}")

    def latency(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, latency("50%"), latency("99%"), total)
