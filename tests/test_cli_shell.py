"""``gemstone shell`` typed at as a person would: in a real terminal (tmux), against real
services found through a real registry."""

from __future__ import annotations

import asyncio
import shlex
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

import gemstone_aio as gemstone
from gemstone_aio.registry import ServiceRegistry
from gemstone_aio.testing import serving
from tests.fixtures.cli import cli_env

# tmux types into the shell; .ci/run installs it (a missing tmux fails here, never skips).


class Inventory(gemstone.MicroService):
    """Stock counts."""

    name = "shop.inventory"

    @gemstone.exposed_method()
    async def available(self, item: str) -> int:
        """How many of ``item`` are in stock."""
        return {"apple": 10, "pear": 4}.get(item, 0)

    @gemstone.exposed_method()
    async def add(self, a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b


@dataclass
class Terminal:
    """A tmux session of its own (a private tmux server) running one command."""

    socket: str

    async def tmux(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "tmux",
            "-L",
            self.socket,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    async def screen(self) -> str:
        return await self.tmux("capture-pane", "-p", "-t", "shell")

    async def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """Wait until ``text`` is on the screen (a condition, polled with a timeout)."""
        try:
            async with asyncio.timeout(timeout):
                # A terminal can only be polled.
                while text not in (shown := await self.screen()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(
                f"{text!r} never appeared; screen:\n{await self.screen()}"
            ) from None
        return shown

    async def type(self, *keys: str) -> None:
        await self.tmux("send-keys", "-t", "shell", *keys)


@pytest.fixture
async def terminal() -> AsyncIterator[Terminal]:
    term = Terminal(f"gemstone-test-{uuid.uuid4().hex[:8]}")
    try:
        yield term
    finally:
        await term.tmux("kill-server")


async def test_shell_calls_services_with_await_and_completes_methods(terminal: Terminal) -> None:
    """The registry's services are objects; ``await`` works at the top level; Tab completes
    a method name; Ctrl-D leaves with exit code 0."""
    async with serving(ServiceRegistry()) as registry, serving(Inventory()) as inventory:
        await registry.ping("shop.inventory", inventory.accessible_at or "")
        command = shlex.join(
            [sys.executable, "-m", "gemstone_aio", "shell", "-r", registry.accessible_at or ""]
        )
        await terminal.tmux(
            "new-session", "-d", "-s", "shell", "-x", "160", "-y", "40",
            f"{command}; echo EXIT=$?; sleep 60",
        )  # fmt: skip
        banner = await terminal.wait_for(">>>")  # (trailing blanks are not captured)
        assert f"shop.inventory at {inventory.accessible_at}: add, available" in banner

        await terminal.type("await shop.inventory.available('apple')", "Enter")
        shown = await terminal.wait_for(">>> await shop.inventory.available('apple')\n10\n>>>")
        assert "Traceback" not in shown

        await terminal.type("await shop.inventory.av", "Tab")
        await terminal.wait_for(">>> await shop.inventory.available(")
        await terminal.type("'pear')", "Enter")
        await terminal.wait_for("available('pear')\n4\n>>>")

        await terminal.type("x = await shop.inventory.add(2); x * 10", "Enter")
        await terminal.wait_for("\n30\n>>>")

        await terminal.type("await shop.inventory.available()", "Enter")
        shown = await terminal.wait_for("InvalidParamsError: ")
        assert "Traceback" not in shown

        await terminal.type("C-d")
        await terminal.wait_for("EXIT=0")


async def test_shell_needs_something_to_load() -> None:
    """Without a registry or URLs: a one-line usage error, exit 2."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gemstone_aio",
        "shell",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode() == (
        "error: nothing to load: pass --registry URL (or set GEMSTONE_REGISTRY) or endpoint URLs\n"
    )
