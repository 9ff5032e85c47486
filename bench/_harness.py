"""Shared pieces of the benchmarks: free ports, server processes, wrk runs."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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
            [*self.argv, str(self.port)],
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
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
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
