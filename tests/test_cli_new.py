"""``gemstone new``: the generated project's own tests pass out of the box."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import RunCli, cli_env

ROOT = Path(__file__).resolve().parents[1]


async def test_new_project_tests_pass(tmp_path: Path, gemstone_cli: RunCli) -> None:
    result = await gemstone_cli("new", "order-desk", "--directory", str(tmp_path))
    assert result.code == 0, result.stderr
    root = tmp_path / "order-desk"
    assert f"Created {root} (service class order_desk.service.OrderDeskService)" in result.stdout
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/order_desk/__init__.py",
        "src/order_desk/__main__.py",
        "src/order_desk/service.py",
        "tests/test_service.py",
    ]
    assert 'name = "order-desk"' in (root / "src/order_desk/service.py").read_text()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=root,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 50)
    report = out.decode()
    assert proc.returncode == 0, report
    assert "3 passed" in report


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("9lives", "error: project name '9lives' must start with a letter"),
        ("has space", "error: project name 'has space' must start with a letter"),
        ("json", "error: project name 'json' would shadow the module 'json'"),
        ("class", "error: project name 'class' would shadow the module 'class'"),
    ],
)
async def test_new_rejects_bad_names(
    name: str, message: str, tmp_path: Path, gemstone_cli: RunCli
) -> None:
    result = await gemstone_cli("new", name, "-d", str(tmp_path))
    assert result.code == 2
    assert result.stderr.startswith(message)
    assert os.listdir(tmp_path) == []


async def test_new_refuses_an_existing_folder(tmp_path: Path, gemstone_cli: RunCli) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = await gemstone_cli("new", "taken", "-d", str(tmp_path))
    assert result.code == 2
    assert result.stderr == f"error: {tmp_path / 'taken'} already exists\n"
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


def _section_commands(readme: str, heading: str) -> list[str]:
    """The lines of the ```sh blocks under ``## heading`` of a README."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.timeout(900)
async def test_a_new_project_installs_and_passes_in_a_fresh_venv(
    tmp_path: Path, gemstone_cli: RunCli
) -> None:
    """Following the project's own README word for word (Install, then Test it) in a fresh
    virtual environment, with gemstone-aio's wheel built from this checkout."""
    wheels = tmp_path / "wheels"
    build = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pip", "wheel", "--no-deps",
        "-q", "-w", str(wheels), str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(build.communicate(), 300)
    assert build.returncode == 0, out.decode()
    result = await gemstone_cli("new", "stockroom", "--directory", str(tmp_path))
    assert result.code == 0, result.stderr
    root = tmp_path / "stockroom"
    readme = (root / "README.md").read_text()
    commands = [*_section_commands(readme, "Install"), *_section_commands(readme, "Test it")]
    assert commands[0] == "python3 -m venv .venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_FIND_LINKS"] = str(wheels)  # the README's advice when the index has no wheel
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", "\n".join(commands),
        cwd=root, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 800)
    report = out.decode()
    assert proc.returncode == 0, report[-4000:]
    assert "3 passed" in report
    assert (root / ".venv" / "bin" / "gemstone").exists()
