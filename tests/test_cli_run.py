"""``gemstone run`` (and ``--reload``) serving real services in subprocesses."""

from __future__ import annotations

import asyncio
import shutil
import sys
import textwrap
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

import gemstone_aio
from gemstone_aio.client import RemoteService
from tests.fixtures.cli import RunCli, cli_env, start_cli, stop, wait_for_line

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SERVICE = """
import gemstone_aio as gemstone


class Greeter(gemstone.MicroService):
    name = "greeter-{tag}"
    greeting = "hello"
    loud = False

    @gemstone.exposed_method()
    async def greet(self, who: str) -> str:
        text = f"{{self.greeting}} {{who}} {version}"
        return text.upper() if self.loud else text

    @gemstone.exposed_method()
    def workers(self) -> int:
        return self.max_parallel_blocking_tasks
"""


def write_service(path: Path, tag: str, version: str = "v1") -> Path:
    path.write_text(textwrap.dedent(SERVICE.format(tag=tag, version=version)))
    return path


async def test_run_file_with_options(tmp_path: Path) -> None:
    path = write_service(tmp_path / "greeter.py", "file")
    port = unused_port()
    proc = await start_cli(
        "run",
        f"{path}:Greeter",
        "--port",
        str(port),
        "--greeting=hi",
        "--loud",
        "--max-parallel-blocking-tasks",
        "3",
    )
    try:
        line = await wait_for_line(proc.stderr, "serving at")
        url = f"http://127.0.0.1:{port}/api"
        assert url in line
        async with RemoteService(url) as client:
            assert await client.call("greet", "ann") == "HI ANN V1"
            assert await client.call("workers") == 3
    finally:
        code = await stop(proc)
    assert code == 0


CONFIGURED = """
import gemstone_aio as gemstone


class Configured(gemstone.MicroService):
    name = "configured"
    greeting = "hello"
    retries = 1
    configurables = [gemstone.Configurable("greeting"),
                     gemstone.Configurable("retries", template=int)]

    @gemstone.exposed_method()
    async def settings(self) -> list[object]:
        return [self.greeting, self.retries, self.debug]
"""


async def test_run_passes_configurables_to_the_configurator(
    tmp_path: Path, gemstone_cli: RunCli
) -> None:
    path = tmp_path / "configured.py"
    path.write_text(CONFIGURED)
    port = unused_port()
    proc = await start_cli(
        "run", str(path), "--port", str(port), "--greeting", "hey", "--retries=3", "--debug"
    )
    try:
        await wait_for_line(proc.stderr, "serving at")
        async with RemoteService(f"http://127.0.0.1:{port}/api") as client:
            assert await client.call("settings") == ["hey", 3, True]
    finally:
        assert await stop(proc) == 0
    bad = await gemstone_cli("run", str(path), "--retries", "many")
    assert bad.code == 2
    # The service's own configuration step reports it, in one line.
    assert "error: invalid value 'many' for configurable 'retries'" in bad.stderr
    assert bad.stderr.count("\n") == 1


async def test_run_module_target_picks_the_only_class(tmp_path: Path) -> None:
    write_service(tmp_path / "greeter_mod.py", "mod")
    port = unused_port()
    proc = await start_cli(
        "run", "greeter_mod", "--host", "127.0.0.1", "--port", str(port), "--no-loud", cwd=tmp_path
    )
    try:
        await wait_for_line(proc.stderr, "serving at")
        async with RemoteService(f"http://127.0.0.1:{port}/api") as client:
            assert await client.call("greet", "bo") == "hello bo v1"
    finally:
        assert await stop(proc) == 0


RUN_USAGE_CASES: dict[str, tuple[tuple[str, ...], str]] = {
    # id: (args, expected stderr; "..." at the end: a prefix)
    "missing-file": (("{tmp}/missing.py",), "error: no such file: {tmp}/missing.py\n"),
    "two-classes": (
        ("{tmp}/two.py",),
        "error: {tmp}/two.py defines 2 service classes "
        "(Greeter, Other): name one as {tmp}/two.py:ClassName\n",
    ),
    "no-such-class": (
        ("{tmp}/good.py:Nope",),
        "error: {tmp}/good.py has no MicroService subclass named 'Nope'\n",
    ),
    "no-such-module": (("no_such_pkg_xyz:Svc",), "error: no module named 'no_such_pkg_xyz'\n"),
    "import-error": (
        ("{tmp}/broken.py",),
        "error: cannot import {tmp}/broken.py: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'\n",
    ),
    "unknown-option": (
        ("{tmp}/good.py", "--colour", "red"),
        "error: unknown option --colour for Greeter (it takes ...",
    ),
    "bad-port": (("{tmp}/good.py", "--port", "x"), "...Invalid value for '--port'"),
    "bad-int": (
        ("{tmp}/good.py", "--max-parallel-blocking-tasks", "many"),
        "error: --max-parallel-blocking-tasks: expected int, got 'many'\n",
    ),
    "bad-bool": (
        ("{tmp}/good.py", "--loud=maybe"),
        "error: --loud: expected true or false, got 'maybe'\n",
    ),
    "stray": (("{tmp}/good.py", "stray"), "error: unexpected argument 'stray'\n"),
}


@pytest.mark.parametrize("case", list(RUN_USAGE_CASES))
async def test_run_usage_errors_exit_2(case: str, tmp_path: Path, gemstone_cli: RunCli) -> None:
    good = write_service(tmp_path / "good.py", "good")
    (tmp_path / "two.py").write_text(
        good.read_text() + "\n\nclass Other(Greeter):\n    name = 'other'\n"
    )
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    args, expected = RUN_USAGE_CASES[case]
    result = await gemstone_cli("run", *(a.format(tmp=tmp_path) for a in args))
    expected = expected.format(tmp=tmp_path)
    assert result.code == 2, result
    assert "Traceback" not in result.stderr
    if expected.startswith("..."):
        assert expected[3:] in result.stderr
    elif expected.endswith("..."):
        assert result.stderr.startswith(expected[:-3])
    else:
        assert result.stderr == expected


async def test_run_port_in_use_exits_3(tmp_path: Path, gemstone_cli: RunCli) -> None:
    path = write_service(tmp_path / "busy.py", "busy")
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await gemstone_cli("run", str(path), "--port", str(port))
    assert result.code == 3
    assert f"error: greeter-busy cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_reload_restarts_on_change(tmp_path: Path) -> None:
    path = write_service(tmp_path / "live.py", "live")
    port = unused_port()
    proc = await start_cli("run", "--reload", str(path), "--port", str(port))
    url = f"http://127.0.0.1:{port}/api"
    try:
        await wait_for_line(proc.stderr, "serving at")
        async with RemoteService(url) as client:
            assert await client.call("greet", "x") == "hello x v1"
        write_service(path, "live", version="v2")
        await wait_for_line(proc.stderr, "changed, restarting")
        await wait_for_line(proc.stderr, "serving at")
        async with RemoteService(url) as client:
            assert await client.call("greet", "x") == "hello x v2"
        # A broken edit: the child dies, the supervisor waits for the next change.
        path.write_text("this is not python\n")
        await wait_for_line(proc.stderr, "waiting for a change")
        write_service(path, "live", version="v3")
        await wait_for_line(proc.stderr, "serving at")
        async with RemoteService(url) as client:
            assert await client.call("greet", "x") == "hello x v3"
    finally:
        code = await stop(proc)
    assert code == 0
    # The child went with the supervisor: nothing listens any more.
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.parametrize(
    "command",
    [
        "call",
        "call_raw",
        "call-raw",
        "describe",
        "run",
        "registry",
        "new",
        "emit",
        "listen",
        "shell",
    ],
)
async def test_help_of_every_command_has_an_example(command: str, gemstone_cli: RunCli) -> None:
    result = await gemstone_cli(command, "--help")
    assert result.code == 0, result.stderr
    assert "Example" in result.stdout
    assert f"gemstone {command.replace('_', '-')}" in result.stdout
    assert "<bool>" not in result.stdout  # flags are shown as flags


async def test_top_level_help_and_version(gemstone_cli: RunCli) -> None:
    top, version, bare = await asyncio.gather(
        gemstone_cli("--help"), gemstone_cli("--version"), gemstone_cli()
    )
    assert top.code == 0
    assert "Exit codes: 0 ok, 1" in top.stdout
    assert version.stdout == f"gemstone-aio {gemstone_aio.__version__}\n"
    assert bare.code == 2  # no command: the help, as a usage error
    assert "Usage" in bare.stdout + bare.stderr


async def test_docs_first_session(gemstone_cli: RunCli) -> None:
    """The "first session" of docs/cli.md: run examples/hello_world.py, then call it."""
    example = EXAMPLES / "hello_world.py"
    port = unused_port()
    proc = await start_cli("run", str(example), "--port", str(port))
    try:
        await wait_for_line(proc.stderr, "serving at")
        result = await gemstone_cli(
            "call-raw", f"http://127.0.0.1:{port}/api", "say_hello", "name=world"
        )
    finally:
        assert await stop(proc) == 0
    assert result.code == 0, result.stderr
    assert result.stderr.startswith("[!] Method call: ")
    assert result.stdout == '"hello world"\n'


async def test_run_a_file_that_imports_its_project_from_the_working_directory() -> None:
    """``gemstone run examples/tutorial/orders.py`` from the checkout: the file imports
    ``examples.tutorial.settings``, which the working directory makes importable. (Run by
    the console script: ``python -m`` would put the working directory on the path itself.)"""
    port = unused_port()
    env = cli_env({"REGISTRY_URL": f"http://127.0.0.1:{unused_port()}/api"})
    proc = await asyncio.create_subprocess_exec(
        _gemstone_script(),
        "run",
        "examples/tutorial/orders.py",
        "--port",
        str(port),
        cwd=EXAMPLES.parent,
        env=env,
        stdout=PIPE,
        stderr=PIPE,
    )
    try:
        line = await wait_for_line(proc.stderr, "serving at")
        assert f"http://127.0.0.1:{port}/api" in line
    finally:
        assert await stop(proc) == 0


def _gemstone_script() -> str:
    found = shutil.which("gemstone", path=str(Path(sys.executable).parent)) or shutil.which(
        "gemstone"
    )
    assert found is not None, "the gemstone console script is not installed"
    return found


async def test_shell_completion_is_enabled() -> None:
    """Tab completion for bash/zsh/fish: the completion script, and real completions."""
    script = _gemstone_script()
    shown = await asyncio.create_subprocess_exec(
        script, "--show-completion", "bash", stdout=PIPE, stderr=PIPE, env=cli_env()
    )
    out, err = await asyncio.wait_for(shown.communicate(), 30)
    assert shown.returncode == 0, err.decode()
    assert "_GEMSTONE_COMPLETE=complete_bash" in out.decode()
    env = cli_env(
        {"_GEMSTONE_COMPLETE": "complete_bash", "COMP_WORDS": "gemstone ca", "COMP_CWORD": "1"}
    )
    completed = await asyncio.create_subprocess_exec(script, stdout=PIPE, stderr=PIPE, env=env)
    out, err = await asyncio.wait_for(completed.communicate(), 30)
    assert out.decode().split() == ["call", "call-raw"], err.decode()


PIDS = """
import os

import gemstone_aio as gemstone


class Pids(gemstone.MicroService):
    name = "pids"

    @gemstone.exposed_method()
    async def pid(self) -> int:
        return os.getpid()
"""


async def test_run_with_workers_serves_from_several_processes(tmp_path: Path) -> None:
    path = tmp_path / "pids.py"
    path.write_text(PIDS)
    port = unused_port()
    proc = await start_cli("run", f"{path}:Pids", "--port", str(port), "--workers", "2")
    try:
        await wait_for_line(proc.stderr, "supervising 2 workers")
        url = f"http://127.0.0.1:{port}/api"
        seen: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(seen) < 2:
            assert loop.time() < deadline, seen
            try:
                async with RemoteService(url, timeout=5) as client:  # a new connection each
                    seen.add(await client.call("pid"))
            except gemstone_aio.GemstoneError:
                await asyncio.sleep(0.1)
        assert proc.pid not in seen
    finally:
        code = await stop(proc)
    assert code == 0


async def test_reload_and_workers_are_refused_together(tmp_path: Path) -> None:
    path = tmp_path / "pids.py"
    path.write_text(PIDS)
    proc = await start_cli("run", f"{path}:Pids", "--workers", "2", "--reload")
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"--reload and --workers do not go together" in stderr
