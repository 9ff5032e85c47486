"""The pytest plugin as a user meets it: a separate pytest run of a project's own tests.

The plugin is found through the package's ``pytest11`` entry point (the project's tests
import nothing from it), no event leaks from one test to the next, and
``--gemstone-amqp-url`` switches the same tests to RabbitMQ.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT_TESTS = """
import asyncio

import gemstone_aio as gemstone
from gemstone_aio.testing import serving


class Taker(gemstone.MicroService):
    name = "leak.taker"

    def __init__(self):
        super().__init__()
        self.got = []

    @gemstone.event_handler("leak.job")
    async def on_job(self, body):
        self.got.append(body)


class Giver(gemstone.MicroService):
    name = "leak.giver"


async def test_1_kit_leaves_a_job_nobody_takes(gemstone_services, gemstone_events, gemstone_amqp_url):
    (giver,) = await gemstone_services.serve(Giver(), registry=False)
    assert ("RabbitMq" in repr(giver.event_transports)) == (gemstone_amqp_url is not None)
    await giver.emit_event("leak.job", "left over", broadcast=False)
    assert gemstone_events.published_bodies("leak.job") == ["left over"]


async def test_2_kit_sees_only_its_own_job(gemstone_services, gemstone_events):
    taker, giver = await gemstone_services.serve(Taker(), Giver(), registry=False)
    await giver.emit_event("leak.job", "fresh", broadcast=False)
    await gemstone_events.wait_handled("leak.job")
    assert taker.got == ["fresh"]


async def test_3_plain_serving_leaves_a_job():
    async with serving(Giver()) as giver:
        await giver.emit_event("leak.plain", "left over", broadcast=False)


class PlainTaker(Taker):
    @gemstone.event_handler("leak.plain")
    async def on_plain(self, body):
        self.got.append(body)
        self.arrived.set()


async def test_4_plain_serving_sees_only_its_own_job():
    taker = PlainTaker()
    taker.arrived = asyncio.Event()
    async with serving(taker), serving(Giver()) as giver:
        await giver.emit_event("leak.plain", "fresh", broadcast=False)
        await asyncio.wait_for(taker.arrived.wait(), 10)
    assert taker.got == ["fresh"]
"""

PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def _run_project(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    (tmp_path / "test_shop.py").write_text(textwrap.dedent(PROJECT_TESTS))
    env = {k: v for k, v in os.environ.items() if k != "GEMSTONE_TEST_AMQP_URL"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plugin_is_active_and_tests_do_not_leak_events(tmp_path: Path) -> None:
    """A one-of-N event nobody took in one test is not delivered in the next."""
    done = _run_project(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


@pytest.mark.rabbitmq
def test_a_command_line_switch_runs_the_same_tests_on_rabbitmq(
    tmp_path: Path, rabbitmq_url: str
) -> None:
    """``--gemstone-amqp-url`` carries the kit's events over a real broker."""
    done = _run_project(tmp_path, f"--gemstone-amqp-url={rabbitmq_url}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_the_plugin_can_be_switched_off(tmp_path: Path) -> None:
    """``-p no:gemstone_aio`` removes the fixtures (pytest reports them missing)."""
    done = _run_project(tmp_path, "-p", "no:gemstone_aio")
    assert done.returncode == 1
    assert "fixture 'gemstone_services' not found" in done.stdout
