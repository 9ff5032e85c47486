"""``gemstone new``: the generated project's own tests pass out of the box."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import RunCli, cli_env


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
