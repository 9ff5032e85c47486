"""How long a ``gemstone`` command takes to start, against a bare interpreter.

    python bench/cli_startup.py [--rounds 10]

Each command runs ``--rounds`` times in a fresh process; the medians of wall time and of
CPU time (user + system, from ``os.wait4``) are reported, with their ratio to
``python -c pass`` measured in the same run. ``call_raw`` is timed against a service
started by this script (a separate process on 127.0.0.1).

Benchmarks are not tests and never run in CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1"}


def timed(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` once; return (wall seconds, CPU seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    example = str(ROOT / "examples" / "hello_world.py")
    service = subprocess.Popen(
        [sys.executable, "-m", "gemstone_aio", "run", example, "--port", str(port)],
        env=ENV,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        py = [sys.executable]
        cases = {
            "python -c pass (baseline)": [*py, "-c", "pass"],
            "python -c 'import gemstone_aio'": [*py, "-c", "import gemstone_aio"],
            "gemstone --version": [*py, "-m", "gemstone_aio", "--version"],
            "gemstone call_raw URL say_hello name=x": [
                *py,
                "-m",
                "gemstone_aio",
                "call_raw",
                f"http://127.0.0.1:{port}/api",
                "say_hello",
                "name=x",
            ],
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):  # interleaved, so load changes hit every case alike
            for name, argv in cases.items():
                results[name].append(timed(argv))
    finally:
        service.terminate()
        service.wait(10)
    base_wall = statistics.median(w for w, _ in results["python -c pass (baseline)"])
    base_cpu = statistics.median(c for _, c in results["python -c pass (baseline)"])
    print(f"{'command':45} {'wall ms':>8} {'x base':>7} {'cpu ms':>8} {'x base':>7}")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{name:45} {wall * 1000:8.0f} {wall / base_wall:7.1f} "
            f"{cpu * 1000:8.0f} {cpu / base_cpu:7.1f}"
        )


if __name__ == "__main__":
    main()
